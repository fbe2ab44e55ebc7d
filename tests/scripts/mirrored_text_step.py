"""One SGD step of each text model on 1 device vs MirroredStrategy over 2 logical CPUs.

Run in its own process (logical devices must be set before TensorFlow
initialises). Prints JSON ``{model: {"same_start", "max_update", "max_diff", "loss_1", "loss_2"}}``.
The batch has rows of very different lengths, so the two replicas hold
different numbers of real tokens: only a loss divided by the *global* token
count gives the single-device gradient.
"""

import json

import aigc_tf  # noqa: F401  (first: it sets TensorFlow's CPU kernel options)
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from aigc_tf import registry  # noqa: E402

VOCAB = list("abcdefghij ")
# No dropout of any kind: masks are drawn per replica and cannot match.
# Gradient clipping (by the global norm of the summed gradient) is on for the
# LSTM LM and the text VAE, with a norm small enough that it always clips.
CLIP = {"lstm_lm": 0.05, "text_vae": 0.05}
MODELS = {
    "lstm_lm": {"units": 16, "embed_dim": 8},
    "gpt": {"context_length": 16, "num_layers": 2, "num_heads": 2, "embed_dim": 16, "dropout": 0.0},
    "seq2seq": {"units": 16, "embed_dim": 8},
    "text_vae": {"units": 16, "embed_dim": 8, "latent_dim": 4, "word_dropout": 0.0, "kl_anneal_steps": 0},
}


def batches(rng):
    v = len(VOCAB) + 2
    tokens = rng.integers(2, v, (8, 12)).astype("int32")
    lengths = np.array([12, 11, 10, 12, 2, 3, 1, 4])  # replica 0 gets long rows, replica 1 short ones
    padded = np.where(np.arange(12)[None] < lengths[:, None], tokens, 0).astype("int32")
    start = np.pad(padded[:, :-1], [[0, 0], [1, 0]])
    return {
        "lstm_lm": (tokens[:, :-1], padded[:, 1:]),
        "gpt": (tokens[:, :-1], padded[:, 1:]),
        "seq2seq": ({"prefix": padded, "decoder_inputs": start}, padded),
        "text_vae": {"tokens": padded, "noise": rng.standard_normal((8, 4)).astype("float32")},
    }


def one_step(strategy, name, batch):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = registry.build_model({"name": name, **MODELS[name]}, 0, vocabulary=VOCAB, tokenizer="char")
        model.compile(keras.optimizers.SGD(0.5), clip_norm=CLIP.get(name))
    before = [v.numpy() for v in model.weights]
    logs = model.fit(tf.data.Dataset.from_tensor_slices(batch).batch(8), epochs=1, verbose=0).history
    return before, [v.numpy() for v in model.weights], logs["loss"][0]


def main():
    rng = np.random.default_rng(0)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, devices
    mirrored = tf.distribute.MirroredStrategy(devices)  # one strategy per process (see FIELD_NOTES)
    data = batches(rng)
    out = {}
    for name in MODELS:
        w0, single, loss1 = one_step(tf.distribute.get_strategy(), name, data[name])
        w0m, replicated, loss2 = one_step(mirrored, name, data[name])
        out[name] = {
            "same_start": all(np.array_equal(a, b) for a, b in zip(w0, w0m)),
            "max_update": float(max(np.abs(a - b).max() for a, b in zip(w0, single))),
            "max_diff": float(max(np.abs(a - b).max() for a, b in zip(single, replicated))),
            "loss_1": float(loss1),
            "loss_2": float(loss2),
            "clip_norm": CLIP.get(name),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
