"""Kneser-Ney baseline perplexity on the embedded corpus, on the text models' own split.

    python benchmarks/ngram_baseline.py [--level char|word] [--orders 1 3 5] [--valid N]
                                        [--samples 3 --prompt "The "] [--out benchmarks/ngram_baseline.json]

Uses exactly the tokens a text model sees from
``load_text_data("embedded", level=...)``: the tokenizer adapted on the
training documents, trained on ``train_ids`` and scored on the first
``--valid`` tokens of ``test_ids`` (all of them by default: the embedded
corpus's deduplicated paragraphs ``i % 10 == 9``), so the perplexities
compare directly with ``aigc-tf evaluate``'s. ``--samples`` prints text
sampled from the highest order, for comparison with a model's samples.
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--valid", type=int, default=0, help="score at most this many validation tokens (0: all)")
    parser.add_argument("--samples", type=int, default=0, help="print this many samples of the highest order")
    parser.add_argument("--prompt", default="The ")
    parser.add_argument("--sample-tokens", type=int, default=200)
    parser.add_argument("--level", choices=["char", "word"], default="char")
    parser.add_argument("--out", default="benchmarks/ngram_baseline.json")
    args = parser.parse_args()

    from aigc_tf.data.text import load_text_data
    from aigc_tf.metrics.ngram import KneserNey

    data = load_text_data("embedded", task="lm", level=args.level, seq_len=8)
    train, valid = data.train_ids, data.test_ids[: args.valid or None]
    rows = []
    for order in args.orders:
        t0 = time.perf_counter()
        lm = KneserNey(order, data.vocab_size).fit(train)
        ppl = lm.perplexity(valid)
        rows.append({"order": order, "perplexity": round(ppl, 3), "seconds": round(time.perf_counter() - t0, 2)})
    meta = {
        "corpus": "embedded",
        "split": "load_text_data: deduplicated paragraphs i % 10 == 9 are validation",
        "level": args.level,
        "vocab": data.vocab_size,
        "train_docs": len(data.train_texts),
        "valid_docs": len(data.test_texts),
        "train": len(train),
        "valid": len(valid),
        "valid_available": len(data.test_ids),
    }
    print(
        f"{args.level}-level, vocab {data.vocab_size}, train {len(train)} tokens ({len(data.train_texts)} docs) / "
        f"valid {len(valid)} of {len(data.test_ids)} tokens ({len(data.test_texts)} docs)"
    )
    print("| order | perplexity | fit + score (s) |\n|---|---|---|")
    for r in rows:
        print(f"| {r['order']} | {r['perplexity']} | {r['seconds']} |")
    if args.samples:
        import numpy as np

        vocab = np.array(["", "[UNK]", *data.vocabulary])
        sep = "" if args.level == "char" else " "
        prompt = [int(i) for i in data.tokenizer([args.prompt]).numpy()[0] if i]
        for i in range(args.samples):
            new = lm.generate(prompt, args.sample_tokens, seed=i)
            print(f"--- {lm.order}-gram sample {i + 1} (seed {i})\n{args.prompt}{sep.join(vocab[new])}")
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
