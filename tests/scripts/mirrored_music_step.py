"""Music models: one step on 1 device vs MirroredStrategy over 2 logical CPUs.

Run in its own process (logical devices must be set before TensorFlow
initialises). Prints JSON ``{model: {"same_start", "max_update", "max_diff",
"loss_1", "loss_2"}}`` (and for a GAN given as ``NAME+default``, also
``"default_finite", "default_update"``). The equivalence step uses SGD; the
GAN's uses the hinge loss (WGAN-GP's interpolation weights are drawn per
replica and cannot match one device's draws); ``+default`` adds a step of the
GAN with its defaults (WGAN-GP, Adam), which only has to train and stay finite.
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

from aigc_tf import registry  # noqa: E402
from tests.helpers import TINY_MODEL  # noqa: E402
from tests.scripts.mirrored_common import compare, compile_for, default_stats, step, two_cpus  # noqa: E402


def batch_for(name, model, rng):
    """A fixed batch of 8 for ``name``'s representation."""
    if name == "chorale_nade":
        return {"frames": (rng.random((8, 12, 88)) < 0.08).astype("float32"),
                "length": np.array([12, 10, 12, 7, 12, 12, 9, 12], "int32")}
    if name == "music_transformer":
        w = rng.integers(2, model.vocab_size, (8, 17)).astype("int32")
        w[1, 12:] = 0  # padding is masked
        return w[:, :-1], w[:, 1:]
    if name == "melody_lstm":
        w = rng.integers(2, model.vocab_size, (8, 16)).astype("int32")
        return {"prefix": w[:, :8], "decoder_inputs": np.concatenate([np.zeros((8, 1), "int32"), w[:, 8:-1]], 1)}, w[:, 8:]
    if name == "note_lstm":
        w = np.stack([rng.integers(40, 80, (8, 13)), rng.integers(0, 8, (8, 13)), rng.integers(0, 8, (8, 13)),
                      np.full((8, 13), 80)], -1).astype("int32")
        names = ("pitch", "step", "duration", "velocity")
        return {n: w[:, :-1, i] for i, n in enumerate(names)}, {n: w[:, 1:, i] for i, n in enumerate(names)}
    rolls = np.where(rng.random((8, *model.roll_shape)) < 0.05, 1.0, -1.0).astype("float32")
    return {"rolls": rolls, "noise": rng.standard_normal((8, model.latent_dim)).astype("float32")}


def build(name, strategy, equivalence):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        extra = dict(TINY_MODEL[name])
        gan = registry.family(name) == "music_gan"
        if equivalence and gan:
            extra["loss"] = "hinge"
        model = registry.build_model({"name": name, **extra}, 0)
        compile_for(model, equivalence)
    return model


def main(names):
    mirrored = two_cpus()
    out = {}
    for case in names:
        name, _, default = case.partition("+")
        single_model = build(name, tf.distribute.get_strategy(), True)
        batch = batch_for(name, single_model, np.random.default_rng(0))
        w0, single, loss_1 = step(single_model, batch, 8)
        w0m, replicated, loss_2 = step(build(name, mirrored, True), batch, 8)
        out[name] = compare(w0, single, w0m, replicated, loss_1, loss_2)
        if default and registry.family(name) == "music_gan":
            d0, d1, _ = step(build(name, mirrored, False), {k: v for k, v in batch.items() if k != "noise"}, 8)
            out[name].update(default_stats(d0, d1))
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1].split(","))
