"""How much a trained language model gains from more context than it was scored with.

    python benchmarks/lm_context.py RUN_DIR [--windows 64 128 256 1024 0] [--continuations] [--out FILE.json]

Scores the run's validation tokens with :func:`aigc_tf.tasks.text.lm_perplexity`
at each window length (stride half the window, each token once; ``0`` is one
window over the whole stream: a recurrent model carries its state through
all of it). A model with a fixed context (the GPT) is scored only at windows
it can read. ``--continuations`` also scores the language model on exactly
the tokens ``seq2seq_embedded``'s loss averages over (each 64-token
validation continuation given its prefix), the number to set beside a
seq2seq model's validation perplexity. Prints a table and writes JSON
(default ``RUN_DIR/lm_context.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def lm_continuation_perplexity(model, pairs) -> tuple[float, int]:
    """The language model's perplexity of each continuation given its (unpadded) prefix."""
    import numpy as np

    from aigc_tf.losses import masked_token_loss

    total, count = 0.0, 0.0
    for inputs, targets in pairs:
        for prefix, cont in zip(inputs["prefix"].numpy(), targets.numpy(), strict=True):
            prefix, cont = prefix[prefix != 0], cont[cont != 0]
            x = np.concatenate([prefix, cont[:-1]])[None].astype("int32")
            y = np.concatenate([np.zeros(len(prefix) - 1, "int32"), cont])[None].astype("int32")
            t, c = masked_token_loss(y, model(x, training=False))
            total, count = total + float(t), count + float(c)
    return float(np.exp(total / count)), int(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--windows", type=int, nargs="+", default=[64, 128, 256, 1024, 0])
    parser.add_argument("--continuations", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from aigc_tf.config import from_dict
    from aigc_tf.run_dir import final_model_path, load_run_config
    from aigc_tf.tasks.text import lm_perplexity
    from aigc_tf.training import load_data, load_model

    run = Path(args.run_dir)
    cfg = load_run_config(run)
    model = load_model(final_model_path(run))
    ids = load_data(cfg, model=model).test_ids
    limit = getattr(model, "context_length", None)
    rows = []
    for window in args.windows:
        length = window or len(ids)
        if limit is not None and length > limit:
            print(f"window {window}: skipped (the model reads at most {limit} tokens)")
            continue
        t0 = time.perf_counter()
        ppl = lm_perplexity(model, ids, length, batch_size=32 if length <= 4096 else 1)
        rows.append({"window": window, "min_context": length // 2 if window else "all before",
                     "val_perplexity": round(ppl, 4), "seconds": round(time.perf_counter() - t0, 1)})
    result = {"run": str(run), "train_seq_len": cfg.data.seq_len, "val_tokens": int(len(ids)), "rows": rows}
    if args.continuations:
        s2s = from_dict({"seed": cfg.seed, "model": {"name": "seq2seq"},
                         "data": {"name": cfg.data.name, "tokenizer": cfg.data.tokenizer, "seq_len": 64}}, "lm_context")
        ppl, n = lm_continuation_perplexity(model, load_data(s2s, model=model).test)
        result["seq2seq_continuations"] = {"val_perplexity": round(ppl, 4), "tokens": n}

    print(f"{run} (trained on windows of {cfg.data.seq_len}; {len(ids)} validation tokens)")
    print(f"{'window':>8} {'context >=':>11} {'perplexity':>11} {'seconds':>8}")
    for r in rows:
        print(f"{r['window'] or 'all':>8} {r['min_context']!s:>11} {r['val_perplexity']:>11.4f} {r['seconds']:>8}")
    if args.continuations:
        c = result["seq2seq_continuations"]
        print(f"seq2seq continuations given their prefix: {c['val_perplexity']:.4f} ({c['tokens']} tokens)")
    out = Path(args.out) if args.out else run / "lm_context.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
