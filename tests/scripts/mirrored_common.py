"""What the ``mirrored_*_step.py`` scripts share (imported after they configure the logical CPUs)."""

import numpy as np
import tensorflow as tf


def step(model, batch, batch_size: int):
    """One ``fit`` epoch over ``batch``: ``(weights before, weights after, logged d_loss or loss)``."""
    before = [v.numpy() for v in model.weights]
    history = model.fit(tf.data.Dataset.from_tensor_slices(batch).batch(batch_size), epochs=1, verbose=0)
    key = "d_loss" if "d_loss" in history.history else "loss"
    return before, [v.numpy() for v in model.weights], float(history.history[key][0])


def compare(w0, single, w0m, replicated, loss_1, loss_2) -> dict:
    """The stats ``tests.helpers.mirrored_step_stats`` checks, from the two runs' weights and losses."""
    return {
        "same_start": all(np.array_equal(a, b) for a, b in zip(w0, w0m, strict=True)),
        "max_update": float(max(np.abs(a - b).max() for a, b in zip(w0, single, strict=True))),
        "max_diff": float(max(np.abs(a - b).max() for a, b in zip(single, replicated, strict=True))),
        "loss_1": loss_1, "loss_2": loss_2,
    }


def default_stats(before, after) -> dict:
    """A step with the model's own defaults: it has to train and stay finite."""
    return {
        "default_finite": bool(all(np.isfinite(v).all() for v in after)),
        "default_update": float(max(np.abs(a - b).max() for a, b in zip(before, after, strict=True))),
    }


def two_cpus():
    """MirroredStrategy over the logical CPUs the script configured."""
    return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])


def compile_for(model, equivalence: bool, learning_rate: float = 0.05) -> None:
    """SGD for the equivalence step (one per optimizer of a GAN), else the model's own defaults."""
    import keras

    if not equivalence:
        model.compile()
    elif hasattr(model, "discriminator"):
        model.compile(d_optimizer=keras.optimizers.SGD(learning_rate), g_optimizer=keras.optimizers.SGD(learning_rate))
    else:
        model.compile(keras.optimizers.SGD(learning_rate))
