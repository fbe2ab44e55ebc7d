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
