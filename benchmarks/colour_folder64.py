"""The 64x64 DCGAN of ``configs/dcgan_folder64.yaml`` on a folder of colour images, timed and scored.

    python benchmarks/colour_folder64.py [--epochs 10] [--base-filters 64] [--folder DIR]
                                         [--set KEY=VALUE ...] [--out benchmarks/colour_folder64.json]

No colour image dataset ships inside a dependency, so the folder is made
here, offline and reproducibly: scikit-learn's 1,797 digits, each drawn in a
random colour on a random two-colour gradient, on a 48x64 (non-square)
canvas, saved as PNG. The config then centre-crops them to 48x48 and resizes
to 64x64, as it would a user's photos. It trains with ``aigc-tf train``
(so the numbers include the input pipeline), then ``aigc-tf evaluate``
scores it on the rotation-prediction features the folder's lack of labels
calls for (``aigc_tf/metrics/classifier.py``), next to real-vs-real and
noise. The folder is written once to ``--folder`` (the same bytes every
time, so the cached feature network is reused). ``--set`` passes further
config overrides. Prints a table and writes it as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import aigc_tf  # noqa: F401  (before TensorFlow: sets TF_ENABLE_ONEDNN_OPTS)

ROOT = Path(__file__).resolve().parents[1]


def write_folder(root: Path, seed: int = 0) -> int:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    digits = load_digits().images / 16.0
    root.mkdir(parents=True, exist_ok=True)
    rows = np.linspace(0.0, 1.0, 48)[:, None, None]
    for i, d in enumerate(digits):
        top, bottom, ink = rng.uniform(0.0, 0.6, 3), rng.uniform(0.0, 0.6, 3), rng.uniform(0.5, 1.0, 3)
        canvas = np.broadcast_to(top + (bottom - top) * rows, (48, 64, 3)).copy()
        mask = np.kron(d, np.ones((5, 5)))[..., None]  # 40x40
        canvas[4:44, 12:52] = canvas[4:44, 12:52] * (1 - mask) + ink * mask
        Image.fromarray((canvas * 255).round().astype(np.uint8)).save(root / f"digit_{i:04d}.png")
    return len(digits)


def main() -> int:
    from aigc_tf.cli import main as cli

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--base-filters", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--folder", default=str(Path(tempfile.gettempdir()) / "aigc_tf_colour_digits"))
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "colour_folder64.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="colour64_"))
    folder = Path(args.folder)
    n = write_folder(folder)
    run = work / "run"
    overrides = [f"data.path={folder}", f"train.epochs={args.epochs}", f"model.base_filters={args.base_filters}",
                 f"data.batch_size={args.batch_size}", "train.quality_every=0", "train.verbose=2", *args.set]
    start = time.perf_counter()
    if cli(["train", str(ROOT / "configs" / "dcgan_folder64.yaml"), "--set", *overrides, "--run-dir", str(run)]) != 0:
        return 1
    train_seconds = time.perf_counter() - start
    metrics_file = work / "metrics.json"
    if cli(["evaluate", str(run), "--out", str(metrics_file)]) != 0:
        return 1
    m = json.loads(metrics_file.read_text())
    steps = args.epochs * (n // args.batch_size)
    row = {
        "images": n, "overrides": args.set, "epochs": args.epochs, "base_filters": args.base_filters, "batch_size": args.batch_size,
        "train_seconds": round(train_seconds, 1),
        "images_per_second": round(steps * args.batch_size / train_seconds, 1),
        **{k: m[k] for k in ("fid", "fid_real_vs_real", "fid_noise", "kid", "kid_real_vs_real", "precision", "recall",
                             "classifier_accuracy", "nn_train_distance", "nn_train_distance_held_out")},
        "feature_network": m["feature_network"], "machine": platform.processor() or platform.machine(),
        "run_dir": str(run),
    }
    print()
    print("| epochs | b | train s | img/s | FID (rotation features) | real-vs-real | noise | rotation acc |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {row['epochs']} | {row['base_filters']} | {row['train_seconds']} | {row['images_per_second']} | "
          f"{row['fid']:.2f} | {row['fid_real_vs_real']:.2f} | {row['fid_noise']:.1f} | {row['classifier_accuracy']:.3f} |")
    Path(args.out).write_text(json.dumps(row, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
