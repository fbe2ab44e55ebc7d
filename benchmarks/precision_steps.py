"""One training step under mixed_float16 and mixed_bfloat16 against float32, per family's own step.

    PYTHONPATH=. python benchmarks/precision_steps.py [--out benchmarks/precision_steps.json]

The measurement behind the README's precision table: for each model of
``tests/test_training.py``'s ``PRECISION_MODELS`` (the same tiny models, the
same fixed batch and starting weights, SGD), the relative distance and cosine
of the 16-bit update to float32's and the logged loss under each precision.
float16 steps are retried until the dynamic loss scale has come down (the
try that applied is shown). Prints a Markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tests import test_training as T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("precision_steps.json")))
    args = parser.parse_args()
    results = {}
    print("| model | float16: update vs float32 (relative, cosine) | bfloat16 | loss (float32 / float16 / bfloat16) |")
    print("|---|---|---|---|")
    for name in T.PRECISION_MODELS:
        _, _, batch, w0, ref_logs, ref_update, _ = T._precision_step(name, "float32")
        key = "d_loss" if "d_loss" in ref_logs else "loss"
        row = {"loss_key": key, "float32": ref_logs[key]}
        for precision in ("mixed_float16", "mixed_bfloat16"):
            _, _, _, _, logs, update, tries = T._precision_step(name, precision, w0, batch)
            row[precision] = {
                "relative": float(np.linalg.norm(update - ref_update) / np.linalg.norm(ref_update)),
                "cosine": float(update @ ref_update / np.linalg.norm(update) / np.linalg.norm(ref_update)),
                "loss": logs[key], "tries": tries,
            }
        results[name] = row
        cells = []
        for precision in ("mixed_float16", "mixed_bfloat16"):
            r = row[precision]
            tried = f" (try {r['tries']}: loss scale came down)" if r["tries"] > 1 else ""
            cells.append(f"{r['relative']:.2g}, {r['cosine']:.5f}{tried}")
        losses = " / ".join(f"{v:.6g}" for v in (row["float32"], row["mixed_float16"]["loss"],
                                                   row["mixed_bfloat16"]["loss"]))
        print(f"| {name} | {cells[0]} | {cells[1]} | {losses} ({key}) |", flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
