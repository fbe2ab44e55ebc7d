"""Tokens per second of incremental (cached) vs uncached decoding.

    python benchmarks/decode_speed.py [--lengths 64 256 512] [--batch 1] [--repeats 2]
                                      [--out benchmarks/decode_speed.json]

Models: the GPT of ``configs/gpt_embedded.yaml`` (4 layers, 128 channels) with
its context raised to fit the longest run, and the LSTM LM of
``configs/lstm_lm_embedded.yaml``, both with random weights (speed does not
depend on training). Every row decodes ``N`` new tokens after an 8-token
prompt with greedy decoding inside one ``tf.function``; ``cached`` keeps the
LSTM state / the Transformer's key/value cache, ``uncached`` re-runs the
model over the whole prefix at every step. ``xla`` rows compile the cached
loop with XLA (the uncached loop has growing shapes, which XLA cannot
compile). The first call (tracing, compiling) is not timed; the best of
``--repeats`` timed calls is reported. Also checks that the cached and
uncached tokens are identical.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 512])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/decode_speed.json")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from aigc_tf import registry
    from aigc_tf.config import load_config

    vocab = [chr(c) for c in range(32, 127)]
    prompt_len = 8
    rows = []
    for config in ("configs/gpt_embedded.yaml", "configs/lstm_lm_embedded.yaml"):
        cfg = load_config(config)
        model_cfg = dict(cfg.model)
        if model_cfg["name"] == "gpt":
            model_cfg["context_length"] = prompt_len + max(args.lengths)
        model = registry.build_model(model_cfg, 0, vocabulary=vocab, tokenizer="char")
        prompt = tf.constant(np.random.default_rng(0).integers(2, len(vocab) + 2, (args.batch, prompt_len)), tf.int32)
        lengths = tf.fill([args.batch], prompt_len)
        for n in args.lengths:
            controls = (
                tf.fill([args.batch], n),
                tf.zeros([args.batch]),  # temperature 0: greedy
                tf.zeros([args.batch], tf.int32),
                tf.ones([args.batch]),
                tf.zeros([args.batch], tf.int32),
            )
            tokens = {}
            for mode in ("uncached", "cached", "cached+xla"):
                use_cache = mode != "uncached"
                fn = tf.function(
                    lambda p, ln, *c, use_cache=use_cache, model=model: model.generate_ids(p, ln, *c, use_cache=use_cache),
                    jit_compile=mode.endswith("xla"),
                )
                tokens[mode] = fn(prompt, lengths, *controls).numpy()  # trace / compile
                best = float("inf")
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    fn(prompt, lengths, *controls).numpy()
                    best = min(best, time.perf_counter() - t0)
                rows.append({
                    "model": model_cfg["name"],
                    "params": model.count_params(),
                    "new_tokens": n,
                    "batch": args.batch,
                    "mode": mode,
                    "seconds": round(best, 4),
                    "tokens_per_s": round(n * args.batch / best, 1),
                })
                print(rows[-1], flush=True)
            same = bool((tokens["cached"] == tokens["uncached"]).all())
            same_xla = bool((tokens["cached+xla"] == tokens["cached"]).all())
            for r in rows[-3:]:
                r["identical_to_uncached"] = same
                r["xla_identical"] = same_xla
    print("\n| model | new tokens | uncached tok/s | cached tok/s | cached+XLA tok/s | speed-up (cached) | same tokens |")
    print("|---|---|---|---|---|---|---|")
    for i in range(0, len(rows), 3):
        u, c, x = rows[i : i + 3]
        print(
            f"| {u['model']} | {u['new_tokens']} | {u['tokens_per_s']} | {c['tokens_per_s']} | {x['tokens_per_s']} | "
            f"{c['tokens_per_s'] / u['tokens_per_s']:.1f}x | {c['identical_to_uncached']} / XLA {x['xla_identical']} |"
        )
    with open(args.out, "w") as f:
        json.dump({"rows": rows}, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
