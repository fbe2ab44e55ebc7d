"""Both n-gram baselines on the embedded corpus, on the text models' own split:
Kneser-Ney with one discount and modified Kneser-Ney (three per order), order by order,
and the order `aigc-tf evaluate` would choose on the validation tokens.

    python benchmarks/ngram_baseline.py [--task lm|seq2seq] [--level char|word] [--orders 1 2 ... 10]
                                        [--valid N] [--samples 3 --prompt "The "] [--out FILE.json]

Uses exactly the tokens a text model sees from
``load_text_data("embedded", task=..., level=...)``: the tokenizer adapted on
the training documents, trained on ``train_ids`` and scored on the first
``--valid`` tokens of ``test_ids`` (all of them by default: the embedded
corpus's deduplicated paragraphs ``i % 10 == 9``), or with ``--task
seq2seq`` on every 64-token validation continuation given its prefix (the
tokens ``seq2seq_embedded``'s loss averages over), so the perplexities
compare directly with ``aigc-tf evaluate``'s. ``--samples`` prints text
sampled from the single-discount model of the highest order. Prints a table
and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["lm", "seq2seq"], default="lm")
    parser.add_argument("--orders", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--valid", type=int, default=0, help="score at most this many validation tokens (0: all)")
    parser.add_argument("--samples", type=int, default=0, help="print this many samples of the highest order")
    parser.add_argument("--prompt", default="The ")
    parser.add_argument("--sample-tokens", type=int, default=200)
    parser.add_argument("--level", choices=["char", "word"], default="char")
    parser.add_argument("--seq-len", type=int, default=64, help="seq2seq: prefix and continuation length")
    parser.add_argument("--out", default=None, help="default benchmarks/ngram_baseline[_word][_seq2seq].json")
    args = parser.parse_args()
    out = args.out or ("benchmarks/ngram_baseline" + ("_word" if args.level == "word" else "")
                       + ("_seq2seq" if args.task == "seq2seq" else "") + ".json")

    from aigc_tf.data.text import load_text_data
    from aigc_tf.metrics.ngram import KneserNey, ModifiedKneserNey, NgramCounts
    from aigc_tf.tasks.text import continuation_perplexity

    data = load_text_data("embedded", task="pairs" if args.task == "seq2seq" else "lm", level=args.level,
                          seq_len=args.seq_len if args.task == "seq2seq" else 8)
    train, valid = data.train_ids, data.test_ids[: args.valid or None]
    if args.task == "seq2seq":
        pairs = [(inputs["prefix"].numpy(), targets.numpy()) for inputs, targets in data.test]
        score = lambda lm: continuation_perplexity(lm, pairs)  # noqa: E731
        scored = int(sum((t != 0).sum() for _, t in pairs))
    else:
        score = lambda lm: lm.perplexity(valid)  # noqa: E731
        scored = len(valid) - 1
    t0 = time.perf_counter()
    counts = NgramCounts(train, max(args.orders))
    count_seconds = time.perf_counter() - t0
    rows = []
    for order in args.orders:
        t0 = time.perf_counter()
        lm = KneserNey(order, data.vocab_size).fit(train)
        kn = score(lm)
        t1 = time.perf_counter()
        mkn_model = ModifiedKneserNey(order, data.vocab_size, counts)
        mkn = score(mkn_model)
        t2 = time.perf_counter()
        rows.append({"order": order, "kneser_ney": round(kn, 4), "modified_kneser_ney": round(mkn, 4),
                     "kn_seconds": round(t1 - t0, 2), "mkn_score_seconds": round(t2 - t1, 2),
                     "mkn_discounts_top": [round(d, 4) for d in mkn_model.discounts[-1]]})
    best = min(rows, key=lambda r: r["modified_kneser_ney"])
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
        "task": args.task,
        "scored_tokens": scored,
        "count_seconds": round(count_seconds, 2),
        "tuned_order": best["order"],
        "tuned_perplexity": best["modified_kneser_ney"],
    }
    print(
        f"{args.level}-level, vocab {data.vocab_size}, train {len(train)} tokens ({len(data.train_texts)} docs) / "
        f"valid {len(valid)} of {len(data.test_ids)} tokens ({len(data.test_texts)} docs)"
    )
    print(f"task {args.task}: {scored} scored tokens; counts up to order {max(args.orders)} in {count_seconds:.1f} s")
    print("| order | Kneser-Ney (D = 0.75) | modified Kneser-Ney | KN fit + score (s) | MKN score (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['order']} | {r['kneser_ney']} | {r['modified_kneser_ney']} | {r['kn_seconds']} | "
              f"{r['mkn_score_seconds']} |")
    print(f"tuned baseline (lowest modified Kneser-Ney): order {best['order']}, {best['modified_kneser_ney']}")
    if args.samples:
        import numpy as np

        vocab = np.array(["", "[UNK]", *data.vocabulary])
        sep = "" if args.level == "char" else " "
        prompt = [int(i) for i in data.tokenizer([args.prompt]).numpy()[0] if i]
        for i in range(args.samples):
            new = lm.generate(prompt, args.sample_tokens, seed=i)
            print(f"--- {lm.order}-gram sample {i + 1} (seed {i})\n{args.prompt}{sep.join(vocab[new])}")
    with open(out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
        f.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
