"""Every family trains through ``aigc_tf.training.train`` on a 2-worker cluster.

Run as both workers of a cluster (``TF_CONFIG`` set by the caller):
``multi_worker_families.py RUNS_ROOT NAME[,NAME...]``. Each worker trains
each model's tiny config (``tests.helpers.tiny_model_config``, one epoch)
with ``train.strategy: multi_worker`` into ``RUNS_ROOT/worker<i>/<name>``
(only the chief may write there) and prints JSON ``{name: {"fingerprint",
"finite"}}`` on its last line: each weight's sum of absolute values after
training (equal on both workers when they stepped together) and whether every weight is
finite. The one-step equivalence with one device is
``multi_worker_step.py``'s; this checks that each family's train step,
callbacks and run directory work under the strategy at all.
"""

import dataclasses
import json
import os
import sys

import aigc_tf  # noqa: F401  (first: it sets TensorFlow's CPU kernel options)
from aigc_tf import distribute

strategy = distribute.multi_worker_strategy()  # before TensorFlow runs anything

import numpy as np  # noqa: E402

from aigc_tf import training  # noqa: E402
from tests.helpers import tiny_model_config  # noqa: E402


def main(root: str, names: list[str]) -> None:
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    out = {}
    for name in names:
        cfg = tiny_model_config(name)
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, strategy="multi_worker",
                                                                 quality_every=0, epochs=1))
        model = training.train(cfg, os.path.join(root, f"worker{index}", name))
        weights = {f"{i}:{w.path}": np.asarray(w) for i, w in enumerate(model.weights)}
        out[name] = {"fingerprint": {k: float(np.abs(w.astype("float64")).sum()) for k, w in weights.items()},
                     "finite": bool(all(np.isfinite(w).all() for w in weights.values() if w.dtype.kind == "f"))}
        print(f"{name} done", flush=True)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","))
