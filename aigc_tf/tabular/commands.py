"""``aigc-tf generate SCHEMA.yaml --rows N --out FILE``: rule-based records (no TensorFlow)."""

from __future__ import annotations

import argparse
import sys

from aigc_tf.tasks.base import positive


def add_generate_command(subparsers) -> None:
    p = subparsers.add_parser("generate", help="rule-based records from a YAML schema to CSV or Parquet (no model)")
    p.add_argument("schema", help="YAML rule schema, e.g. configs/users_rules.yaml")
    p.add_argument("--rows", type=positive, help="rows to write (default: the schema's rows:, else 1000)")
    p.add_argument("--out", required=True, help="output file: .csv or .parquet (an existing file is kept "
                                                "unless --overwrite)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0); same schema, rows and seed: same bytes")
    p.add_argument("--chunk-rows", type=positive, default=None,
                   help="rows generated at a time (default 262144); bounds memory, never changes the output")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    from aigc_tf.errors import UserError
    from aigc_tf.tabular import rules

    if not 0 <= args.seed < 2**63:
        raise UserError(f"--seed must be in [0, 2**63), got {args.seed}")
    schema = rules.load_schema(args.schema)
    rows = args.rows or schema.rows or 1000
    result = rules.write_records(schema, rows, args.out, seed=args.seed,
                                 chunk_rows=args.chunk_rows or rules.DEFAULT_CHUNK_ROWS, overwrite=args.overwrite,
                                 progress=not args.no_progress and sys.stderr.isatty())
    rate = result["rows"] / max(result["seconds"], 1e-9)
    print(f"Wrote {result['rows']:,} rows of {len(schema.columns)} columns to {args.out} "
          f"({result['bytes'] / 1e6:.1f} MB) in {result['seconds']:.2f} s ({rate / 1e6:.2f} M rows/s)")
    return 0
