"""How fast do the music models generate? Event tokens with and without the key/value cache, chorale frames.

    python benchmarks/music_generation.py [--batch 4] [--tokens 128] [--frames 32] [--repeats 3]
                                          [--out benchmarks/music_generation.json]

Builds the shipped ``music_transformer_chorales`` and ``chorale_nade_chorales``
models (fresh weights: speed does not depend on training) and times, after one
warm-up call each, ``--tokens`` new event tokens for a batch of ``--batch``
one-token primers through the cached decoder (one position per token) and the
uncached one (the whole prefix per token, the reference the cache is tested
against), and ``--frames`` chorale frames (88 NADE key draws each). Prints a
table and writes it as JSON. Wall times on a shared machine are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import aigc_tf  # noqa: F401  (before TensorFlow: sets TF_ENABLE_ONEDNN_OPTS)

ROOT = Path(__file__).resolve().parents[1]


def _time(fn, repeats: int) -> float:
    fn()  # warm-up: tracing
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "music_generation.json"))
    args = parser.parse_args(argv)

    import tensorflow as tf

    from aigc_tf import registry
    from aigc_tf.config import load_config

    b = args.batch
    rows = []
    cfg = load_config(ROOT / "configs" / "music_transformer_chorales.yaml")
    model = registry.build_model(cfg.model, 0)
    ids, lengths = tf.fill([b, 1], 2), tf.ones([b], tf.int32)
    controls = (tf.fill([b], 1.0), tf.zeros([b], tf.int32), tf.ones([b]), tf.range(b))
    for cached in (True, False):
        fn = tf.function(lambda cached=cached: model.generate_ids(ids, lengths, tf.fill([b], args.tokens), *controls,
                                                                  use_cache=cached))
        seconds = _time(fn, args.repeats)
        rows.append({"model": "music_transformer", "what": f"{args.tokens} tokens x {b}",
                     "decoder": "key/value cache" if cached else "no cache (full prefix)", "seconds": seconds,
                     "per_second": args.tokens * b / seconds, "unit": "tokens/s"})
    cfg = load_config(ROOT / "configs" / "chorale_nade_chorales.yaml")
    nade = registry.build_model(cfg.model, 0)
    fn = tf.function(lambda: nade.generate_frames(tf.zeros([b, 1, 88]), tf.zeros([b], tf.int32), args.frames,
                                                  tf.fill([b], 1.0), tf.range(b)))
    seconds = _time(fn, args.repeats)
    rows.append({"model": "chorale_nade", "what": f"{args.frames} frames x {b}", "decoder": "LSTM state, 88 key draws",
                 "seconds": seconds, "per_second": args.frames * b / seconds, "unit": "frames/s"})

    print(f"{'model':<18} {'what':<18} {'decoder':<26} {'seconds':>8} {'rate':>14}")
    for r in rows:
        print(f"{r['model']:<18} {r['what']:<18} {r['decoder']:<26} {r['seconds']:>8.2f} "
              f"{r['per_second']:>9.1f} {r['unit']}")
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "tensorflow": tf.__version__,
                          "load_average": os.getloadavg()},
              "settings": vars(args), "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
