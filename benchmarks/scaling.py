"""Training throughput (samples/s) per family: one process, 1 and 2 local workers, and the
cost of the precision and XLA switches.

    python benchmarks/scaling.py [--steps 20] [--families gan,vae,lm] [--out benchmarks/scaling.json]

Each measurement is an ``aigc-tf train`` command in fresh processes (the CLI,
as a user runs it) on a shipped config, for 3 epochs of ``--steps`` steps with
samples, validation and quality off; samples/s is the global batch times the
steps of an epoch over the median of epochs 2 and 3 (epoch 1 traces the graph).
Every run uses ``train.steps_per_execution=1`` (more does not run on several
replicas in Keras 3.15.1), so the rows of a family compare the same loop.
The launcher pins each local worker to its own CPUs, so on a 2-core machine
"1 worker" has both cores and "2 workers" one each: the figures are ratios of
the same two cores, not what a cluster of machines gives. Prints a table and
writes JSON (with the machine's load average, since a shared machine skews
wall-clock numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# family -> shipped config measured (its model and data at their shipped sizes).
CONFIGS = {
    "gan": "configs/dcgan_digits.yaml",
    "vae": "configs/vae_digits.yaml",
    "lm": "configs/gpt_embedded.yaml",
    "audio_gan": "configs/wavegan_spoken_digits.yaml",
    "table_vae": "configs/tvae_fair.yaml",
}
# Families whose train step supports train.precision (the others are refused).
MIXED = ("gan", "vae", "lm")


def run(config: str, steps: int, workers: int | None, overrides: list[str], timeout: int) -> dict:
    """One training run; ``workers``: None for a plain process (train.strategy=default)."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "aigc_tf.cli", "train", str(ROOT / config), "--run-dir", str(run_dir),
               "--set", "train.epochs=3", f"train.steps_per_epoch={steps}", "train.quality_every=0",
               "train.sample_every=1000", "train.validate=false", "train.verbose=0", "train.steps_per_execution=1",
               *overrides]
        if workers is not None:
            cmd += ["--workers", str(workers)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
        start = time.time()
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp)
        if result.returncode != 0:
            return {"error": (result.stdout + result.stderr).strip().splitlines()[-1][:300]}
        history = json.loads((run_dir / "history.json").read_text())
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    batch = config["data"]["batch_size"]
    seconds = statistics.median(history["seconds"][1:])
    return {"samples_per_s": round(batch * steps / seconds, 1), "epoch_seconds": history["seconds"],
            "global_batch": batch, "wall_seconds": round(time.time() - start, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch (default 20)")
    parser.add_argument("--families", default=",".join(CONFIGS), help="comma-separated, of: " + ", ".join(CONFIGS))
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per run before it is abandoned")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "scaling.json"))
    args = parser.parse_args(argv)
    families = [f for f in args.families.split(",") if f]
    rows = []
    load_before = os.getloadavg()
    for family in families:
        config = CONFIGS[family]
        plans = [("1 process", None, []), ("1 worker", 1, []), ("2 workers", 2, [])]
        if family in MIXED:
            plans += [(f"1 process, {p}", None, [f"train.precision={p}"]) for p in ("mixed_float16", "mixed_bfloat16")]
            plans += [("1 process, XLA", None, ["train.jit_compile=true"]),
                      ("1 process, mixed_bfloat16 + XLA", None, ["train.precision=mixed_bfloat16",
                                                                  "train.jit_compile=true"])]
        for label, workers, overrides in plans:
            result = run(config, args.steps, workers, overrides, args.timeout)
            row = {"family": family, "config": config, "setting": label, **result}
            rows.append(row)
            shown = result.get("samples_per_s", result.get("error"))
            print(f"{family:10s} {label:34s} {shown}", flush=True)
    base = {r["family"]: r.get("samples_per_s") for r in rows if r["setting"] == "1 process"}
    print()
    print("| family | setting | samples/s | vs 1 process |")
    print("|---|---|---|---|")
    for r in rows:
        value = r.get("samples_per_s")
        ratio = f"{value / base[r['family']]:.2f}x" if value and base.get(r["family"]) else "-"
        print(f"| {r['family']} | {r['setting']} | {value if value else r.get('error')} | {ratio} |")
    out = {
        "command": "python benchmarks/scaling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "steps_per_epoch": args.steps,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"\nWrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
