"""Kneser-Ney baseline perplexity on the embedded corpus (character level).

    python benchmarks/ngram_baseline.py [--orders 1 3 5] [--valid 20000] [--out benchmarks/ngram_baseline.json]

Trains on the first 90% of the token stream and scores the next `--valid`
tokens. Prints a table and writes JSON.
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
    parser.add_argument("--valid", type=int, default=20_000)
    parser.add_argument("--level", choices=["char", "word"], default="char")
    parser.add_argument("--out", default="benchmarks/ngram_baseline.json")
    args = parser.parse_args()

    from aigc_tf.data import text
    from aigc_tf.metrics.ngram import KneserNey

    docs = text.embedded_corpus()
    tokenizer = text.build_tokenizer(docs, args.level)
    ids = text.token_stream(tokenizer, docs)
    cut = int(len(ids) * 0.9)
    train, valid = ids[:cut], ids[cut : cut + args.valid]
    rows = []
    for order in args.orders:
        t0 = time.perf_counter()
        ppl = KneserNey(order, tokenizer.vocabulary_size()).fit(train).perplexity(valid)
        rows.append({"order": order, "perplexity": round(ppl, 3), "seconds": round(time.perf_counter() - t0, 2)})
    print(f"{args.level}-level, vocab {tokenizer.vocabulary_size()}, train {len(train)} / valid {len(valid)} tokens")
    print("| order | perplexity | fit + score (s) |\n|---|---|---|")
    for r in rows:
        print(f"| {r['order']} | {r['perplexity']} | {r['seconds']} |")
    meta = {"level": args.level, "vocab": tokenizer.vocabulary_size(), "train": len(train), "valid": len(valid)}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
