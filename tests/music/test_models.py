"""Music sequence models decode the same tokens with the key/value cache, with a batched prefill of the
primer, and by re-running the whole prefix (the reference)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from aigc_tf import registry
from tests.helpers import TINY_MODEL


def _controls(b):
    return tf.fill([b], 1.0), tf.zeros([b], tf.int32), tf.fill([b], 0.9), tf.range(7, 7 + b)


def test_music_transformer_cache_prefill_and_full_prefix_agree():
    model = registry.build_model({"name": "music_transformer", **TINY_MODEL["music_transformer"]}, 0)
    rng = np.random.default_rng(0)
    ids = rng.integers(2, model.vocab_size, (3, 9)).astype("int32")
    ids[1, 5:] = 0  # rows of different lengths
    lengths = tf.constant([9, 5, 9])
    new = tf.fill([3], 12)
    cached = model.generate_ids(ids, lengths, new, *_controls(3))
    stepwise = model.generate_ids(ids, lengths, new, *_controls(3), prefill=False)
    full = model.generate_ids(ids, lengths, new, *_controls(3), use_cache=False)
    np.testing.assert_array_equal(cached.numpy(), stepwise.numpy())
    np.testing.assert_array_equal(cached.numpy(), full.numpy())
    assert (cached.numpy() >= 2).all()  # padding and unknown are never generated


def test_melody_lstm_cached_and_uncached_decoding_agree():
    model = registry.build_model({"name": "melody_lstm", **TINY_MODEL["melody_lstm"]}, 0)
    ids = np.random.default_rng(1).integers(2, model.vocab_size, (2, 6)).astype("int32")
    lengths = tf.constant([6, 6])
    a = model.generate_ids(ids, lengths, tf.fill([2], 10), *_controls(2))
    b = model.generate_ids(ids, lengths, tf.fill([2], 10), *_controls(2), use_cache=False)
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_relative_logits_by_skewing_equal_the_direct_sum_float64():
    """Huang et al.'s skewing gives q_i . E[min(i - j, R - 1)] for every j <= i, also for distances
    beyond R (T = 7 > R = 4), against a float64 numpy loop."""
    from aigc_tf.music.relative_attention import RelativeCausalSelfAttention

    layer = RelativeCausalSelfAttention(2, max_distance=4, dtype="float64")
    layer.build((None, None, 6))
    rng = np.random.default_rng(0)
    layer.relative.assign(rng.normal(size=(2, 4, 3)))
    q = rng.normal(size=(2, 2, 7, 3))
    got = layer.position_logits(tf.constant(q)).numpy()
    emb = layer.relative.numpy()
    for i in range(7):
        for j in range(i + 1):
            want = np.einsum("bhd,hd->bh", q[:, :, i], emb[:, min(i - j, 3)])
            np.testing.assert_allclose(got[:, :, i, j], want, rtol=1e-12, atol=1e-12)


def test_relative_attention_step_and_prefill_give_the_full_pass_outputs_float64():
    import keras

    from aigc_tf.music.relative_attention import RelativeCausalSelfAttention

    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")  # the sub-layers (the qkv and output projections) too
    try:
        layer = RelativeCausalSelfAttention(2, max_distance=3)
        layer.build((None, None, 8))
    finally:
        keras.config.set_dtype_policy(policy)
    rng = np.random.default_rng(1)
    layer.relative.assign(rng.normal(size=(2, 3, 4)))
    x = tf.constant(rng.normal(size=(2, 6, 8)))
    full = layer(x).numpy()
    k = v = tf.zeros((2, 2, 6, 4), tf.float64)
    y, k, v = layer.prefill(x[:, :3], k, v)
    np.testing.assert_allclose(y.numpy(), full[:, :3], rtol=1e-10, atol=1e-12)
    for t in range(3, 6):
        y, k, v = layer.step(x[:, t:t + 1], k, v, t)
        np.testing.assert_allclose(y.numpy()[:, 0], full[:, t], rtol=1e-10, atol=1e-12)
    # The distances matter: zeroing the embeddings changes the outputs.
    layer.relative.assign(np.zeros((2, 3, 4)))
    assert np.abs(layer(x).numpy() - full).max() > 1e-3


def test_relative_music_transformer_decodes_the_same_and_survives_keras_save(tmp_path):
    import keras

    model = registry.build_model({"name": "music_transformer", **TINY_MODEL["music_transformer"],
                                  "positions": "relative"}, 0)
    assert not hasattr(model, "position_embedding")
    ids = np.random.default_rng(2).integers(2, model.vocab_size, (2, 7)).astype("int32")
    lengths, new = tf.constant([7, 4]), tf.fill([2], 10)
    cached = model.generate_ids(ids, lengths, new, *_controls(2))
    full = model.generate_ids(ids, lengths, new, *_controls(2), use_cache=False)
    np.testing.assert_array_equal(cached.numpy(), full.numpy())
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.positions == "relative"
    np.testing.assert_allclose(loaded(ids).numpy(), model(ids).numpy(), atol=1e-6)
