"""Rule-based records against Faker: the documents' user schema written to CSV, rows/s and peak memory.

    pip install -r benchmarks/requirements.txt   # faker
    python benchmarks/rules_vs_faker.py [--rows 100000 1000000 10000000] [--faker-max 10000000] [--repeats 3]
                                        [--out FILE.json]

Both sides produce the columns of ``configs/users_rules.yaml`` (a user id, an
age in 18..65, a gender, an income in 20k..100k with two decimals and a city
from the same list) and write a CSV file; the time includes writing it. Faker
uses its own providers the way its users do (``random_int``,
``random_element``, ``pyfloat(..., right_digits=2)``) and the standard
library's ``csv.writer``. Every measurement runs in a fresh subprocess, so its
peak resident memory (``ru_maxrss``) is its own; ours and Faker's alternate
(which goes first changes from run to run), and up to 1e6 rows each side runs
``--repeats`` times and the median rate is reported (the machine is noisy;
every rate is in the JSON). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "configs" / "users_rules.yaml"

OURS = """
import json, resource, sys, time
from aigc_tf.tabular import rules
schema = rules.load_schema(sys.argv[1])
began = time.perf_counter()
result = rules.write_records(schema, int(sys.argv[2]), sys.argv[3], seed=0, progress=False)
seconds = time.perf_counter() - began
print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

FAKER = """
import csv, json, resource, sys, time
import yaml
from faker import Faker
columns = yaml.safe_load(open(sys.argv[1]))["columns"]
genders, cities = columns["gender"]["values"], columns["city"]["values"]
age, income = columns["age"], columns["income"]
fake = Faker()
fake.seed_instance(0)
began = time.perf_counter()
with open(sys.argv[3], "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(list(columns))
    for i in range(int(sys.argv[2])):
        writer.writerow((i + 1, fake.random_int(age["min"], age["max"]), fake.random_element(genders),
                         fake.pyfloat(min_value=income["min"], max_value=income["max"], right_digits=2),
                         fake.random_element(cities)))
seconds = time.perf_counter() - began
print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(code: str, rows: int, folder: Path, name: str) -> dict:
    out = folder / f"{name}_{rows}.csv"
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code, str(SCHEMA), str(rows), str(out)], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{name} failed:\n{result.stderr}")
    process_seconds = time.perf_counter() - began
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    with out.open("rb") as f:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
    if lines != rows + 1:
        raise SystemExit(f"{name} wrote {lines - 1} rows, not {rows}")
    measured.update(rows=rows, rows_per_s=rows / measured["seconds"], bytes=out.stat().st_size,
                    process_seconds=process_seconds)
    out.unlink()
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--faker-max", type=int, default=10_000_000, help="skip Faker above this many rows")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side up to 1e6 rows (median reported)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "rules_vs_faker.json"))
    args = parser.parse_args()
    try:
        import faker
    except ImportError:
        raise SystemExit("Faker is not installed: pip install -r benchmarks/requirements.txt") from None
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i, rows in enumerate(args.rows):
            repeats = args.repeats if rows <= 1_000_000 else 1
            runs = {"ours": [], "faker": []}
            for r in range(repeats):
                order = ["ours", "faker"] if (i + r) % 2 == 0 else ["faker", "ours"]
                for name in order:
                    if name == "faker" and rows > args.faker_max:
                        continue
                    m = run(OURS if name == "ours" else FAKER, rows, folder, name)
                    runs[name].append(m)
                    print(f"  {name:5s} {rows:>11,} rows: {m['seconds']:8.2f} s "
                          f"({m['process_seconds']:.2f} s with start-up), "
                          f"{m['rows_per_s']:>12,.0f} rows/s, peak {m['peak_mb']:7.0f} MB", flush=True)
            row = {"rows": rows, "repeats": repeats}
            for name, measured in runs.items():
                if measured:  # the run with the median rate
                    row[name] = sorted(measured, key=lambda m: m["rows_per_s"])[len(measured) // 2]
                    row[name]["all_rows_per_s"] = [m["rows_per_s"] for m in measured]
            if "faker" in row:
                row["speedup"] = row["ours"]["rows_per_s"] / row["faker"]["rows_per_s"]
            table.append(row)
    print()
    print(f"{'rows':>11} | {'ours rows/s':>12} | {'peak MB':>7} | {'process s':>9} | {'Faker rows/s':>12} | "
          f"{'peak MB':>7} | {'process s':>9} | {'ours / Faker':>12}")
    for row in table:
        ours = row["ours"]
        faker_cells = (f"{row['faker']['rows_per_s']:>12,.0f} | {row['faker']['peak_mb']:>7.0f} | "
                       f"{row['faker']['process_seconds']:>9.2f} | {row['speedup']:>11.1f}x") if "faker" in row \
            else f"{'-':>12} | {'-':>7} | {'-':>9} | {'-':>12}"
        print(f"{row['rows']:>11,} | {ours['rows_per_s']:>12,.0f} | {ours['peak_mb']:>7.0f} | "
              f"{ours['process_seconds']:>9.2f} | " + faker_cells)
    Path(args.out).write_text(json.dumps({
        "schema": str(SCHEMA.relative_to(ROOT)), "faker": faker.VERSION, "python": platform.python_version(),
        "cpus": os.cpu_count(), "results": table}, indent=2))
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
