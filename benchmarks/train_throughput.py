"""Training throughput (images/s) of each image model on this machine.

    python benchmarks/train_throughput.py [--steps 30] [--batch-size 64] [--out benchmarks/train_throughput.json]

Times `fit` over a fixed number of steps on the embedded `digits` data after a
warm-up epoch (which traces the graph), with and without XLA. Prints a table
and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def measure(name: str, batch_size: int, steps: int, jit: bool) -> float:
    import tensorflow as tf

    from aigc_tf import training
    from aigc_tf.config import from_dict

    cfg = from_dict(
        {
            "model": {"name": name},
            "data": {"name": "digits", "batch_size": batch_size},
            "train": {"jit_compile": jit},
        },
        "benchmark",
    )
    data = training.load_data(cfg)
    model = training.build_model(cfg, data)
    stream = data.train.repeat()
    model.fit(stream, steps_per_epoch=3, epochs=1, verbose=0)  # trace + warm caches
    t0 = time.perf_counter()
    model.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - t0
    del tf
    return steps * batch_size / seconds


def pipeline_rate(batch_size: int, batches: int = 200) -> float:
    """Images/s the `digits` input pipeline alone delivers (after its cache fills)."""
    from aigc_tf.data.images import load_image_data

    stream = load_image_data("digits", batch_size=batch_size).train.repeat()
    it = iter(stream)
    for _ in range(30):
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--models", nargs="+", default=["mlp_gan", "dcgan", "cgan", "mlp_vae", "conv_vae", "cvae"])
    parser.add_argument("--out", default="benchmarks/train_throughput.json")
    args = parser.parse_args()
    rows = []
    feed = pipeline_rate(args.batch_size)
    rows.append({"model": "(input pipeline alone)", "xla": False, "batch_size": args.batch_size, "images_per_s": round(feed, 1)})
    print(f"  measured input pipeline {feed:10.1f} images/s", flush=True)
    for name in args.models:
        for jit in (False, True):
            rate = measure(name, args.batch_size, args.steps, jit)
            rows.append({"model": name, "xla": jit, "batch_size": args.batch_size, "images_per_s": round(rate, 1)})
            print(f"  measured {name:9s} xla={str(jit):5s} {rate:8.1f} images/s", flush=True)
    print("\n| model | XLA | batch | images/s |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {'on' if r['xla'] else 'off'} | {r['batch_size']} | {r['images_per_s']} |")
    meta = {"cpu_count": os.cpu_count(), "machine": platform.machine(), "steps": args.steps}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
