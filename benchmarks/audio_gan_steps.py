"""Seconds per training step of an audio GAN config under several overrides, measured in one process,
alternating the variants round by round so a drifting machine affects each alike.

    python benchmarks/audio_gan_steps.py [--config configs/cspecgan_spoken_digits.yaml] [--steps 30]
        [--rounds 3] [--variant "" --variant "model.label_film=true" ...] [--out benchmarks/audio_gan_steps.json]

A variant is a space-separated list of ``--set`` overrides ("" is the config as shipped). Each model is
built and traced once (a short warm-up fit), then every round times ``--steps`` steps of each variant
on the config's own input pipeline. Prints a table (median seconds per step, and the ratio to the
first variant) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build(config: str, overrides: list[str]):
    from aigc_tf import training
    from aigc_tf.config import load_config

    cfg = load_config(config, overrides)
    data = training.load_data(cfg)
    model = training.build_model(cfg, data)
    stream = data.train.repeat()
    model.fit(stream, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm the caches
    return model, stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/cspecgan_spoken_digits.yaml")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=None)
    parser.add_argument("--out", default="benchmarks/audio_gan_steps.json")
    args = parser.parse_args()
    variants = args.variant or ["", "model.label_film=true"]
    built = {v: build(args.config, v.split()) for v in variants}
    times = {v: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            model, stream = built[v]
            t0 = time.perf_counter()
            model.fit(stream, steps_per_epoch=args.steps, epochs=1, verbose=0)
            times[v].append((time.perf_counter() - t0) / args.steps)
    base = statistics.median(times[variants[0]])
    rows = [{"variant": v or "(as shipped)", "seconds_per_step": statistics.median(times[v]),
             "rounds": times[v], "ratio": statistics.median(times[v]) / base} for v in variants]
    print(f"{args.config}: {args.steps} steps x {args.rounds} rounds, alternating")
    print(f"{'variant':45s} {'s/step (median)':>16s} {'ratio':>7s}")
    for r in rows:
        print(f"{r['variant']:45s} {r['seconds_per_step']:16.3f} {r['ratio']:7.2f}")
    meta = {"config": args.config, "steps": args.steps, "rounds": args.rounds, "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "processor": platform.processor()}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
