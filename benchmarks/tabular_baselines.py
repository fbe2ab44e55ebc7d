"""The two baseline synthesizers on a table, scored the way `aigc-tf evaluate` will score learned ones.

    python benchmarks/tabular_baselines.py [--data fair | --path FILE.csv --discrete A B --target T]
                                           [--test-fraction 0.2] [--seed 0] [--out FILE.json]

Splits the table into train and hold-out rows (fixed seed), fits each
synthesizer on the train rows, samples as many rows, and reports against the
hold-out rows: SDMetrics-scale quality (overall, column shapes, column-pair
trends), machine-learning efficacy (gradient boosting trained on the rows,
tested on the hold-out rows: accuracy and macro F1, or R^2), privacy
(median distance to the closest training row, as a ratio to the hold-out
rows' own, and the share of exact copies) and the time to fit and sample.
The "real" row is the train rows themselves (real against real: what a
perfect synthesizer reaches on fidelity and efficacy, and what a copier gets
on privacy). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fair", help="an embedded table, or 'file' with --path")
    parser.add_argument("--path")
    parser.add_argument("--discrete", nargs="*")
    parser.add_argument("--target")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="default benchmarks/tabular_baselines_<data>.json")
    args = parser.parse_args()

    from aigc_tf.tabular import data, quality
    from aigc_tf.tabular.baselines import GaussianCopula, IndependentMarginals

    table, info = data.load_table("file" if args.path else args.data, args.path, args.discrete, args.target)
    train, holdout = data.split_table(table, args.test_fraction, args.seed)
    discrete = list(info.discrete)
    rows = []
    for name, make in [("real (train rows)", None), ("independent marginals", IndependentMarginals),
                       ("Gaussian copula", GaussianCopula)]:
        began = time.perf_counter()
        synthetic = train if make is None else make(discrete).fit(train).sample(train.num_rows, seed=args.seed)
        seconds = time.perf_counter() - began
        report = quality.quality_report(holdout, synthetic, discrete)
        row = {"synthesizer": name, "seconds": seconds,
               **{k: report[k] for k in ("overall", "column_shapes", "column_pair_trends")},
               "privacy": quality.privacy_report(train, holdout, synthetic, discrete, seed=args.seed)}
        if info.target:
            row["efficacy"] = quality.efficacy(synthetic, holdout, info.target, discrete, seed=args.seed)
        rows.append(row)

    print(f"{info.name}: {train.num_rows} train rows, {holdout.num_rows} hold-out rows, {table.num_columns} columns; "
          f"efficacy target {info.target!r}")
    header = f"{'synthesizer':24} | {'overall':>7} | {'shapes':>6} | {'pairs':>6} | {'accuracy':>8} | " \
             f"{'macro F1':>8} | {'DCR ratio':>9} | {'copies':>6} | {'seconds':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        e, p = row.get("efficacy", {}), row["privacy"]
        print(f"{row['synthesizer']:24} | {row['overall']:7.4f} | {row['column_shapes']:6.4f} | "
              f"{row['column_pair_trends']:6.4f} | {e.get('accuracy', float('nan')):8.4f} | "
              f"{e.get('macro_f1', float('nan')):8.4f} | {p['dcr_ratio']:9.3f} | {p['copies']:6.3f} | "
              f"{row['seconds']:7.2f}")
    out = Path(args.out or ROOT / "benchmarks" / f"tabular_baselines_{info.name}.json")
    out.write_text(json.dumps({"data": info.name, "target": info.target, "discrete": discrete,
                               "train_rows": train.num_rows, "holdout_rows": holdout.num_rows,
                               "seed": args.seed, "results": rows}, indent=2))
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
