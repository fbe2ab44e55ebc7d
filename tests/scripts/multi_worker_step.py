"""One training step on a 2-worker cluster vs one device, from the same weights and global batch.

Run as both workers of a cluster (``TF_CONFIG`` set by the caller, one process
per worker): ``multi_worker_step.py``. Each worker builds every model twice
from the same seed, steps it once with ``fit`` on one device (the whole global
batch of 8) and once under ``MultiWorkerMirroredStrategy`` through
:func:`aigc_tf.distribute.keras_fit` (4 examples per worker), and prints JSON
``{"steps": {model/optimizer: {"same_start", "max_update", "max_diff", "fingerprint"}},
"upstream": ..., "skip": ...}`` on its last line.

The models run in float64 (``keras.config.set_floatx``): there one device and
two workers agree to rounding, which checks the algorithm (losses divided by
the replica count or the global token count, synchronised batch norm,
per-replica noise, gradients summed across workers) instead of the float32
kernels of this CPU, whose results depend on the batch size per call. The text
model's batch has rows of very different lengths per worker.
"""

import json
import sys

import aigc_tf  # noqa: F401  (first: it sets TensorFlow's CPU kernel options)
from aigc_tf import distribute

strategy = distribute.multi_worker_strategy()  # before TensorFlow runs anything

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from aigc_tf import registry  # noqa: E402

VOCAB = list("abcdefghij ")
TEXT = {"gpt": {"context_length": 16, "num_layers": 1, "num_heads": 2, "embed_dim": 16, "dropout": 0.0}}
IMAGE = {"cgan": {"base_filters": 8, "latent_dim": 16}, "cvae": {"latent_dim": 4}}


def image_batch(name, rng):
    gan = registry.family(name) == "gan"
    x = rng.random((8, 28, 28, 1))
    return {
        "images": x * 2 - 1 if gan else x,
        "labels": (np.arange(8) % 10).astype("int32"),
        # Explicit noise: both runs see the same z / eps per example.
        "noise": rng.standard_normal((8, 16 if gan else 4)),
    }


def text_batch(rng):
    tokens = rng.integers(2, len(VOCAB) + 2, (8, 12)).astype("int32")
    lengths = np.array([12, 11, 10, 12, 2, 3, 1, 4])  # worker 0 gets long rows, worker 1 short ones
    padded = np.where(np.arange(12)[None] < lengths[:, None], tokens, 0).astype("int32")
    return tokens[:, :-1], padded[:, 1:]


def build(strategy, name, optimizer):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        if name in TEXT:
            model = registry.build_model({"name": name, **TEXT[name]}, 0, vocabulary=VOCAB, tokenizer="char")
        else:
            model = registry.build_model({"name": name, **IMAGE[name]}, 0, image_shape=(28, 28, 1), num_classes=10)
        make = (lambda: keras.optimizers.SGD(0.01)) if optimizer == "sgd" else None
        if registry.family(name) == "gan":
            model.compile(**({"d_optimizer": make(), "g_optimizer": make()} if make else {}))
        else:
            model.compile(make() if make else None)  # None: the shipped Adam
    return model


def one_step(strategy, name, optimizer, batch):
    model = build(strategy, name, optimizer)
    before = [v.numpy() for v in model.weights]
    with distribute.keras_fit(model, strategy):
        model.fit(tf.data.Dataset.from_tensor_slices(batch).batch(8), epochs=1, verbose=0)
    return before, [v.numpy() for v in model.weights]


def compare(name, optimizer, batch):
    w0, single = one_step(tf.distribute.get_strategy(), name, optimizer, batch)
    w0m, multi = one_step(strategy, name, optimizer, batch)
    return {
        "same_start": all(np.array_equal(a, b) for a, b in zip(w0, w0m, strict=True)),
        "max_update": float(max(np.abs(a - b).max() for a, b in zip(w0, single, strict=True))),
        "max_diff": float(max(np.abs(a - b).max() for a, b in zip(single, multi, strict=True))),
        # Equal on both workers if their copies of the weights agree.
        "fingerprint": float(sum(np.abs(w).sum() for w in multi)),
    }


def upstream_fit_fails():
    """Keras' own fit under the strategy, without the adjustments: the error (None if it worked)."""
    model = build(strategy, "cvae", "sgd")
    batch = image_batch("cvae", np.random.default_rng(1))
    try:
        model.fit(tf.data.Dataset.from_tensor_slices(batch).batch(8), epochs=1, verbose=0)
    except Exception as exc:  # noqa: BLE001  (reported, and the test checks it)
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None


def loss_scale_skip():
    """mixed_float16, a batch that overflows on worker 1 only: both workers must skip the step
    (no hang, no update, the loss scale halved on both)."""
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build(strategy, "cvae", "adam")
    finally:
        keras.config.set_dtype_policy("float32")
    batch = image_batch("cvae", np.random.default_rng(2))
    batch["images"] = batch["images"].astype("float32")
    batch["images"][4:] *= 6e4  # worker 1's half: float16 activations overflow to inf
    before = [v.numpy() for v in model.trainable_weights]
    scale = float(model.optimizer.dynamic_scale.numpy())
    with distribute.keras_fit(model, strategy):
        model.fit(tf.data.Dataset.from_tensor_slices(batch).batch(8), epochs=1, verbose=0)
    return {
        "unchanged": all(np.array_equal(a, b.numpy()) for a, b in zip(before, model.trainable_weights, strict=True)),
        "iterations": int(model.optimizer.iterations.numpy()),
        "scale_before": scale,
        "scale_after": float(model.optimizer.dynamic_scale.numpy()),
        "loss_scale_optimizer": type(model.optimizer).__name__,
    }


def main(args):
    out = {"worker_is_chief": bool(strategy.extended.should_checkpoint), "steps": {}}
    rng = np.random.default_rng(0)
    tokens = text_batch(rng)
    keras.config.set_floatx("float64")
    images = {name: image_batch(name, rng) for name in IMAGE}
    for optimizer in ("sgd", "adam"):
        for name in IMAGE:
            out["steps"][f"{name}/{optimizer}"] = compare(name, optimizer, images[name])
        out["steps"][f"gpt/{optimizer}"] = compare("gpt", optimizer, tokens)
    keras.config.set_floatx("float32")
    out["upstream"] = upstream_fit_fails()
    out["skip"] = loss_scale_skip()
    print(json.dumps(out), flush=True)
    distribute.barrier(strategy)  # leave together: a worker gone early is reported as lost


if __name__ == "__main__":
    main(sys.argv[1:])
