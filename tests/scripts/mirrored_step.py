"""One training step on 1 device vs MirroredStrategy over 2 logical CPUs.

Run in its own process (logical devices must be set before TensorFlow
initialises). Usage: ``mirrored_step.py [--float64] sgd=MODEL,MODEL adam=MODEL,...``;
prints JSON ``{optimizer: {model: {"same_start": ..., "max_diff": ..., "max_update": ...}}}``.
``--float64`` builds the models in float64 (``keras.config.set_floatx``), which
separates the algorithm (loss scaling, synchronised batch norm: equal to
~1e-16) from float32 rounding in the kernels, which is hardware-dependent.
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


# Variants: a model name with options. "+ema" averages the generator with a
# fixed half-life of 1,000 images (no ramp, so one step moves the average
# by a visible 0.55%, and the decay depends on the *global* batch).
VARIANTS = {"dcgan+ema": ("dcgan", {"ema_kimg": 1.0, "ema_rampup": 0.0})}


def one_step(strategy, name, batch, optimizer):
    name, extra = VARIANTS.get(name, (name, {}))
    with strategy.scope():
        keras.utils.set_random_seed(1)
        # No dropout: its masks are drawn per replica, so they cannot match.
        extra = {**extra, "dropout": 0.0} if name == "mlp_gan" else extra
        model = registry.build_model({"name": name, **extra}, 0, image_shape=(28, 28, 1), num_classes=10)
        if optimizer == "sgd":
            # Plain SGD: the weight change is lr * gradient, so this
            # compares the gradients of the two runs directly.
            sgd = lambda: keras.optimizers.SGD(0.01)  # noqa: E731
            if registry.family(name) == "gan":
                model.compile(d_optimizer=sgd(), g_optimizer=sgd())
            else:
                model.compile(sgd())
        else:
            model.compile()  # the shipped Adam optimizers
    before = [v.numpy() for v in model.weights]
    model.fit(tf.data.Dataset.from_tensor_slices(batch).batch(8), epochs=1, verbose=0)
    return before, [v.numpy() for v in model.weights]


def main(args):
    if args and args[0] == "--float64":
        args = args[1:]
        keras.config.set_floatx("float64")
    plan = {a.split("=")[0]: a.split("=")[1].split(",") for a in args}  # optimizer=model,model,...
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, devices
    # One strategy for all models: separate MirroredStrategy objects in one
    # process reuse collective instance keys and abort each other's all-reduces.
    mirrored = tf.distribute.MirroredStrategy(devices)
    out = {}
    for optimizer, names in plan.items():  # one process for all optimizers: TensorFlow starts once
        rng = np.random.default_rng(0)
        out[optimizer] = stats = {}
        for name in names:
            gan = registry.family(VARIANTS.get(name, (name,))[0]) == "gan"
            x = rng.random((8, 28, 28, 1)).astype("float32")
            batch = {
                "images": x * 2 - 1 if gan else x,
                "labels": (np.arange(8) % 10).astype("int32"),
                # Explicit noise: both runs must see the same z / eps per example.
                "noise": rng.standard_normal((8, 100 if gan else 16)).astype("float32"),
            }
            w0, single = one_step(tf.distribute.get_strategy(), name, batch, optimizer)
            w0m, replicated = one_step(mirrored, name, batch, optimizer)
            stats[name] = {
                "same_start": all(np.array_equal(a, b) for a, b in zip(w0, w0m, strict=True)),
                "max_update": float(max(np.abs(a - b).max() for a, b in zip(w0, single, strict=True))),
                "max_diff": float(max(np.abs(a - b).max() for a, b in zip(single, replicated, strict=True))),
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
