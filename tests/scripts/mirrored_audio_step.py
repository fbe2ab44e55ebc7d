"""Audio models: one step on 1 device vs MirroredStrategy over 2 logical CPUs.

Run in its own process (logical devices must be set before TensorFlow
initialises). Prints JSON ``{model: {"same_start", "max_update", "max_diff",
"default_finite"}}``. The equivalence step uses SGD, the hinge loss and no
phase shuffle: the WGAN-GP interpolation weights and the phase shifts are
random draws made per replica, which cannot match one device's draws; a
second step with each model's defaults (WGAN-GP, phase shuffle, Adam) only
has to train and stay finite under the strategy.
"""

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

LENGTH = 1024
# Variants: a model name with options. "+all" turns on every optional path of the conditional GANs: the
# auxiliary classifier, the generator's moving average (half-life 1,000 clips, no ramp, so one step moves it
# visibly) and the label modulation of every generator layer.
ALL = {"aux_weight": 0.5, "ema_kimg": 1.0, "ema_rampup": 0.0, "label_film": True}
VARIANTS = {"cwavegan+all": ("cwavegan", ALL), "cspecgan+all": ("cspecgan", ALL)}


def build(variant, strategy, equivalence):
    name, options = VARIANTS.get(variant, (variant, {}))
    with strategy.scope():
        keras.utils.set_random_seed(1)
        extra = {**TINY_MODEL[name], **options}
        gan = registry.family(name) == "audio_gan"
        if equivalence and gan:
            extra.update(loss="hinge", **({"phase_shuffle": 0} if "wavegan" in name else {}))
        model = registry.build_model({"name": name, **extra}, 0, clip_length=LENGTH, sample_rate=4000,
                                     num_classes=10)
        if hasattr(model, "adapt"):
            model.adapt(np.random.default_rng(5).uniform(-0.5, 0.5, (16, LENGTH)).astype("float32"))
        if equivalence:
            sgd = lambda: keras.optimizers.SGD(0.01)  # noqa: E731
            model.compile(d_optimizer=sgd(), g_optimizer=sgd()) if gan else model.compile(sgd())
        else:
            model.compile()
    return model


def step(model, batch):
    before = [v.numpy() for v in model.weights]
    model.fit(tf.data.Dataset.from_tensor_slices(batch).batch(8), epochs=1, verbose=0)
    return before, [v.numpy() for v in model.weights]


def main(names):
    mirrored = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    rng = np.random.default_rng(0)
    out = {}
    for name in names:
        single_model = build(name, tf.distribute.get_strategy(), True)
        batch = {
            "audio": rng.uniform(-0.8, 0.8, (8, LENGTH)).astype("float32"),
            "labels": (np.arange(8) % 10).astype("int32"),
            "noise": rng.standard_normal((8, single_model.latent_dim)).astype("float32"),
        }
        w0, single = step(single_model, batch)
        w0m, replicated = step(build(name, mirrored, True), batch)
        default = build(name, mirrored, False)
        d0, d1 = step(default, {k: v for k, v in batch.items() if k != "noise"})
        out[name] = {
            "same_start": all(np.array_equal(a, b) for a, b in zip(w0, w0m, strict=True)),
            "max_update": float(max(np.abs(a - b).max() for a, b in zip(w0, single, strict=True))),
            "max_diff": float(max(np.abs(a - b).max() for a, b in zip(single, replicated, strict=True))),
            "default_finite": bool(all(np.isfinite(v).all() for v in d1)),
            "default_update": float(max(np.abs(a - b).max() for a, b in zip(d0, d1, strict=True))),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1].split(","))
