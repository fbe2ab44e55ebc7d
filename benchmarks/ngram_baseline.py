"""Kneser-Ney baseline perplexity on the embedded corpus, on the text models' own split.

    python benchmarks/ngram_baseline.py [--level char|word] [--orders 1 3 5] [--valid 20000]
                                        [--out benchmarks/ngram_baseline.json]

Uses exactly the tokens a text model sees from
``load_text_data("embedded", level=...)``: the tokenizer adapted on the
training documents, trained on ``train_ids`` and scored on the first
``--valid`` tokens of ``test_ids`` (documents ``i % 10 == 9``), so the
perplexities compare directly with a model's validation perplexity. Prints a
table and writes JSON.
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
    parser.add_argument("--valid", type=int, default=20_000, help="score at most this many validation tokens")
    parser.add_argument("--level", choices=["char", "word"], default="char")
    parser.add_argument("--out", default="benchmarks/ngram_baseline.json")
    args = parser.parse_args()

    from aigc_tf.data.text import load_text_data
    from aigc_tf.metrics.ngram import KneserNey

    data = load_text_data("embedded", task="lm", level=args.level, seq_len=8)
    train, valid = data.train_ids, data.test_ids[: args.valid]
    rows = []
    for order in args.orders:
        t0 = time.perf_counter()
        ppl = KneserNey(order, data.vocab_size).fit(train).perplexity(valid)
        rows.append({"order": order, "perplexity": round(ppl, 3), "seconds": round(time.perf_counter() - t0, 2)})
    meta = {
        "corpus": "embedded",
        "split": "load_text_data: documents i % 10 == 9 are validation",
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
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
