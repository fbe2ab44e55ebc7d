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

    from aigc_tf.tabular import data, scoring

    table, info = data.load_table("file" if args.path else args.data, args.path, args.discrete, args.target)
    train, holdout = data.split_table(table, args.test_fraction, args.seed)
    discrete = list(info.discrete)
    rows = [scoring.score(name, synthetic, train, holdout, info, seed=args.seed, seconds=seconds)
            for name, (synthetic, seconds) in scoring.reference_rows(train, info, train.num_rows, args.seed).items()]
    print(f"{info.name}: {train.num_rows} train rows, {holdout.num_rows} hold-out rows, {table.num_columns} columns; "
          f"efficacy target {info.target!r}")
    print(scoring.format_rows(rows))
    out = Path(args.out or ROOT / "benchmarks" / f"tabular_baselines_{info.name}.json")
    out.write_text(json.dumps({"data": info.name, "target": info.target, "discrete": discrete,
                               "train_rows": train.num_rows, "holdout_rows": holdout.num_rows,
                               "seed": args.seed, "results": rows}, indent=2))
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
