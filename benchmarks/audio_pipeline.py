"""Is the audio input pipeline a bottleneck? Render, load, iterate and train, timed apart.

    python benchmarks/audio_pipeline.py [--config configs/cwavegan_spoken_digits.yaml] [--steps 5]
                                        [--out benchmarks/audio_pipeline.json]

For a shipped audio config: the espeak-ng render of ``spoken_digits`` (in a
fresh cache), loading the clips (decode, resample, pad/crop), one full epoch
of the ``tf.data`` pipeline with nothing downstream, and ``--steps`` training
steps of the config's model on the same batches (after one warm-up step).
Prints a table and writes it as JSON; the last column says how much of an
epoch the pipeline alone takes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import aigc_tf  # noqa: F401  (before TensorFlow: sets TF_ENABLE_ONEDNN_OPTS)

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "cwavegan_spoken_digits.yaml"))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "audio_pipeline.json"))
    args = parser.parse_args(argv)

    from aigc_tf.audio import espeak
    from aigc_tf.config import load_config
    from aigc_tf.training import task_of

    cfg = load_config(args.config)
    row = {"config": Path(args.config).name, "machine": platform.machine(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        espeak.render(cfg.data.voices, Path(cache) / "render.npz")
        row["render_s"] = time.perf_counter() - t0
    task = task_of(cfg)
    t0 = time.perf_counter()
    data = task.load_data(cfg)
    row["load_s"] = time.perf_counter() - t0
    row["train_clips"] = int(len(data.train_clips.labels))
    t0 = time.perf_counter()
    batches = sum(1 for _ in data.train)
    row["pipeline_epoch_s"] = time.perf_counter() - t0
    row["batches_per_epoch"] = batches
    model = task.build_model(cfg, data)
    model.fit(data.train.take(1), verbose=0)  # trace and warm up
    t0 = time.perf_counter()
    model.fit(data.train.take(args.steps), verbose=0)
    row["train_step_s"] = (time.perf_counter() - t0) / args.steps
    row["train_epoch_s_estimate"] = row["train_step_s"] * batches
    row["pipeline_share_of_epoch"] = row["pipeline_epoch_s"] / row["train_epoch_s_estimate"]
    print(f"{'config':32} {'render s':>9} {'load s':>7} {'pipeline epoch s':>17} {'train step s':>13} "
          f"{'pipeline / epoch':>17}")
    print(f"{row['config']:32} {row['render_s']:9.1f} {row['load_s']:7.1f} {row['pipeline_epoch_s']:17.2f} "
          f"{row['train_step_s']:13.3f} {row['pipeline_share_of_epoch']:17.2%}")
    Path(args.out).write_text(json.dumps(row, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
