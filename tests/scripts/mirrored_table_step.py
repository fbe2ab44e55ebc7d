"""Table models: one step on 1 device vs MirroredStrategy over 2 logical CPUs.

Run in its own process (logical devices must be set before TensorFlow
initialises). Prints JSON ``{model: {"same_start", "max_update", "max_diff",
"loss_1", "loss_2", "default_finite", "default_update"}}``. The equivalence
step uses SGD on a fixed batch of 16 rows (8 per replica) that carries every
random draw (the latent noise; for CTGAN also the Gumbel uniforms and the
penalty's interpolation weights, and no critic dropout): draws a replica makes
itself cannot match one device's. A second step with the model's defaults
(Adam, CTGAN's dropout and its own draws) only has to train and stay finite.
"""
# ruff: noqa: I001  (aigc_tf is imported before TensorFlow on purpose)

import json
import sys

import aigc_tf  # noqa: F401  (first: it sets TensorFlow's CPU kernel options)
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from aigc_tf import training  # noqa: E402
from tests.helpers import tiny_model_config  # noqa: E402
from tests.scripts.mirrored_common import compare, compile_for, default_stats, step, two_cpus  # noqa: E402

ROWS = 16


def build(cfg, data, strategy, equivalence):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = training.build_model(cfg, data)
        compile_for(model, equivalence)
    return model


def main(names):
    mirrored = two_cpus()
    out = {}
    for name in names:
        cfg = tiny_model_config(name)
        cfg.data.batch_size = ROWS
        data = training.load_data(cfg)
        rng = np.random.default_rng(0)
        real = next(iter(data.train))
        real = dict(real) if isinstance(real, dict) else {"rows": real}
        default_batch = {k: np.asarray(v)[:ROWS] for k, v in real.items()}
        if name == "ctgan":
            cfg.model["dropout"] = 0.0
        single_model = build(cfg, data, tf.distribute.get_strategy(), True)
        batch = dict(default_batch)
        batch["noise"] = rng.standard_normal((ROWS, single_model.latent_dim)).astype("float32")
        if name == "ctgan":
            batch["uniform"] = rng.uniform(0.0, 1.0, (ROWS, single_model.data_width)).astype("float32")
            batch["gp_eps"] = rng.uniform(0.0, 1.0, (ROWS, 1)).astype("float32")
        w0, single, loss_1 = step(single_model, batch, ROWS)
        w0m, replicated, loss_2 = step(build(cfg, data, mirrored, True), batch, ROWS)
        cfg.model.pop("dropout", None)
        out[name] = {**compare(w0, single, w0m, replicated, loss_1, loss_2),
                     **default_stats(*step(build(cfg, data, mirrored, False), default_batch, ROWS)[:2])}
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1].split(","))
