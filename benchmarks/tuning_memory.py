"""Does memory stay flat across tuning trials? Resident memory after each of N trials, with and without clearing.

    python benchmarks/tuning_memory.py [--trials 10] [--model dcgan] [--out benchmarks/tuning_memory.json]

Runs the same random search of ``--trials`` tiny trials (a one-epoch
``--model`` run on 256 digits each, the learning rate searched) twice, each
in a fresh process: as ``aigc-tf tune`` does it (``keras.backend.clear_session()``
and ``gc.collect()`` after every trial) and with that clearing switched off.
Prints resident memory (VmRSS) and its peak (VmHWM) after each trial, the
growth from the first trial to the last, and writes the table as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def one_search(trials: int, model: str, clear: bool) -> list[dict]:
    """Run the search in this process; resident memory after each trial."""
    import aigc_tf  # noqa: F401  (before TensorFlow)
    from aigc_tf import tuning
    from aigc_tf.config import tune_from_dict

    rows = []
    free = tuning.free_memory if clear else (lambda: None)

    def on_trial_end(self, trial):
        super(tuning.RunDirTuner, self).on_trial_end(trial)
        free()
        rows.append({"trial": len(rows) + 1, "rss_mb": round(_status_mb("VmRSS"), 1),
                     "peak_mb": round(_status_mb("VmHWM"), 1)})

    tuning.RunDirTuner.on_trial_end = on_trial_end
    raw = {"seed": 0, "model": {"name": model},
           "data": {"name": "digits", "batch_size": 32, "max_examples": 256},
           "train": {"epochs": 1, "verbose": 0, "num_samples": 16, "sample_every": 100},
           "tune": {"max_trials": trials, "objective": "loss" if model.endswith("vae") else "g_loss",
                    "direction": "min",
                    "space": {"train.learning_rate": {"float": [1e-4, 1e-3], "sampling": "log"}}}}
    cfg, tune = tune_from_dict(raw, "benchmark")
    with tempfile.TemporaryDirectory() as tmp:
        tuning.search(cfg, tune, Path(tmp) / "search", verbose=0)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "tuning_memory.json"))
    parser.add_argument("--child", choices=["clear", "keep"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one_search(args.trials, args.model, args.child == "clear")))
        return 0
    runs = {}
    for mode in ("clear", "keep"):
        done = subprocess.run([sys.executable, __file__, "--child", mode, "--trials", str(args.trials),
                               "--model", args.model], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"})
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{args.trials} trials of a one-epoch {args.model} on 256 digits, resident memory after each trial (MB)")
    print(f"{'trial':>5}  {'clear rss':>10}  {'clear peak':>10}  {'keep rss':>10}  {'keep peak':>10}")
    for a, b in zip(runs["clear"], runs["keep"], strict=True):
        print(f"{a['trial']:>5}  {a['rss_mb']:>10.1f}  {a['peak_mb']:>10.1f}  {b['rss_mb']:>10.1f}  {b['peak_mb']:>10.1f}")
    growth = {mode: round(rows[-1]["rss_mb"] - rows[0]["rss_mb"], 1) for mode, rows in runs.items()}
    per_trial = {mode: round(g / max(1, args.trials - 1), 1) for mode, g in growth.items()}
    print(f"growth from trial 1 to {args.trials}: clear {growth['clear']} MB ({per_trial['clear']} MB/trial), "
          f"without clearing {growth['keep']} MB ({per_trial['keep']} MB/trial)")
    result = {"trials": args.trials, "model": args.model, "machine": platform.processor() or platform.machine(),
              "rows": runs, "growth_mb": growth, "growth_mb_per_trial": per_trial}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
