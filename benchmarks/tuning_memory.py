"""Does memory stay flat across tuning trials? Resident memory after each of N trials, three ways.

    python benchmarks/tuning_memory.py [--trials 10] [--model dcgan] [--out benchmarks/tuning_memory.json]

Runs the same random search of ``--trials`` tiny trials (a one-epoch
``--model`` run on 256 digits each, the learning rate searched) three times,
each in a fresh process: as ``aigc-tf tune`` does it by default (every trial
in a child process, ``tune.isolate: true``), in the search's own process
with ``keras.backend.clear_session()`` and ``gc.collect()`` after every trial
(``tune.isolate: false``), and in-process with that clearing switched off.
Prints the search process's resident memory (VmRSS) and its peak (VmHWM)
after each trial (for the isolated search also the largest peak of any
trial's child), the growth from the first trial to the last, and writes the
table as JSON.
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
MODES = ("isolate", "clear", "keep")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def one_search(trials: int, model: str, mode: str) -> list[dict]:
    """Run the search from this process (``mode``: isolate, clear or keep); resident memory after each trial."""
    import resource

    import aigc_tf  # noqa: F401  (before TensorFlow)
    from aigc_tf import tuning
    from aigc_tf.config import tune_from_dict

    rows = []
    free = tuning.free_memory if mode != "keep" else (lambda: None)

    def on_trial_end(self, trial):
        super(tuning.RunDirTuner, self).on_trial_end(trial)
        free()
        rows.append({"trial": len(rows) + 1, "rss_mb": round(_status_mb("VmRSS"), 1),
                     "peak_mb": round(_status_mb("VmHWM"), 1),
                     "child_peak_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)})

    tuning.RunDirTuner.on_trial_end = on_trial_end
    raw = {"seed": 0, "model": {"name": model},
           "data": {"name": "digits", "batch_size": 32, "max_examples": 256},
           "train": {"epochs": 1, "verbose": 0, "num_samples": 16, "sample_every": 100},
           "tune": {"max_trials": trials, "isolate": mode == "isolate", "objective": "loss" if model.endswith("vae") else "g_loss",
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
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(one_search(args.trials, args.model, args.child)))
        return 0
    runs = {}
    for mode in MODES:
        done = subprocess.run([sys.executable, __file__, "--child", mode, "--trials", str(args.trials),
                               "--model", args.model], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"})
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{args.trials} trials of a one-epoch {args.model} on 256 digits, resident memory after each trial (MB)")
    print("isolate: trials in child processes (the default); clear: in-process with clear_session; "
          "keep: in-process, no clearing")
    head = ["trial"] + [f"{m} {c}" for m in MODES for c in ("rss", "peak")] + ["isolate child peak"]
    print("  ".join(f"{h:>13}" for h in head))
    for i in range(args.trials):
        cells = [runs["isolate"][i]["trial"]] + [runs[m][i][c] for m in MODES for c in ("rss_mb", "peak_mb")]
        cells.append(runs["isolate"][i]["child_peak_mb"])
        print("  ".join(f"{c:>13}" for c in cells))
    growth = {mode: round(rows[-1]["rss_mb"] - rows[0]["rss_mb"], 1) for mode, rows in runs.items()}
    per_trial = {mode: round(g / max(1, args.trials - 1), 1) for mode, g in growth.items()}
    print(f"growth of the search process from trial 1 to {args.trials}: "
          + ", ".join(f"{m} {growth[m]} MB ({per_trial[m]} MB/trial)" for m in MODES))
    result = {"trials": args.trials, "model": args.model, "machine": platform.processor() or platform.machine(),
              "rows": runs, "growth_mb": growth, "growth_mb_per_trial": per_trial}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
