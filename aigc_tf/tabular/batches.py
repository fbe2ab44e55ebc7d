"""``tf.data`` pipelines over a transformed table: shuffled rows (TVAE) and training-by-sampling (CTGAN).

Both hold the transformed matrix as one constant and draw with stateless
random ops from seeds that ``tf.data.Dataset.random`` re-draws every epoch, so a
pipeline is seeded, differs between epochs, and needs no Python generator.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def row_batches(matrix: np.ndarray, batch_size: int, seed: int, shuffle: bool = True) -> tf.data.Dataset:
    """``{"rows": (batch, width)}`` batches of the matrix, reshuffled each epoch."""
    ds = tf.data.Dataset.from_tensor_slices(matrix.astype(np.float32))
    if shuffle:
        ds = ds.shuffle(len(matrix), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(lambda rows: {"rows": rows}).prefetch(tf.data.AUTOTUNE)


def conditional_batches(matrix: np.ndarray, spans, batch_size: int, seed: int, steps: int,
                        log_frequency: bool = True) -> tf.data.Dataset:
    """CTGAN's training-by-sampling, ``steps`` batches per epoch of ``{"rows", "cond", "mask"}``.

    For each row of a batch: a discrete column ``j`` uniformly (``mask`` is
    its one-hot), a category ``k`` of it with probability proportional to
    ``log(1 + count_k)`` (``count_k`` when not ``log_frequency``), and a
    training row whose column ``j`` is ``k`` uniformly among those rows;
    ``cond`` is the category's one-hot within the discrete columns' one-hots
    side by side. A table without discrete columns gives uniform rows and
    zero-width conditions.
    """
    categories = [s for s in spans if s.role == "category"]
    n = len(matrix)
    data = tf.constant(matrix.astype(np.float32))
    if not categories:
        def uniform(seed2):
            rows = tf.random.stateless_uniform([batch_size], seed2, 0, n, dtype=tf.int64)
            return {"rows": tf.gather(data, rows), "cond": tf.zeros([batch_size, 0]), "mask": tf.zeros([batch_size, 0])}

        return _seeded(seed, steps).map(uniform).prefetch(tf.data.AUTOTUNE)
    k = len(categories)
    widest = max(s.width for s in categories)
    codes = np.stack([matrix[:, s.start:s.start + s.width].argmax(axis=1) for s in categories])  # (k, n)
    order = np.argsort(codes, axis=1, kind="stable").astype(np.int64)  # rows sorted by category, per column
    counts = np.zeros((k, widest), np.int64)
    for j, s in enumerate(categories):
        counts[j, :s.width] = np.bincount(codes[j], minlength=s.width)
    starts = np.cumsum(counts, axis=1) - counts
    weights = np.log1p(counts) if log_frequency else counts.astype(np.float64)
    logits = np.where(counts > 0, np.log(np.maximum(weights, 1e-300)), -1e9).astype(np.float32)
    offsets = np.cumsum([0] + [s.width for s in categories])[:-1].astype(np.int64)
    cond_width = sum(s.width for s in categories)
    t_order, t_counts, t_starts = tf.constant(order.reshape(-1)), tf.constant(counts), tf.constant(starts)
    t_logits, t_offsets = tf.constant(logits), tf.constant(offsets)

    def sample(seed2):
        s = tf.random.experimental.stateless_split(seed2, 3)
        column = tf.random.stateless_uniform([batch_size], s[0], 0, k, dtype=tf.int64)
        category = tf.random.stateless_categorical(tf.gather(t_logits, column), 1, s[1])[:, 0]
        at = tf.stack([column, category], axis=1)
        count, start = tf.gather_nd(t_counts, at), tf.gather_nd(t_starts, at)
        u = tf.random.stateless_uniform([batch_size], s[2], dtype=tf.float64)
        position = start + tf.minimum(tf.cast(tf.floor(u * tf.cast(count, tf.float64)), tf.int64), count - 1)
        rows = tf.gather(t_order, column * n + position)
        return {"rows": tf.gather(data, rows),
                "cond": tf.one_hot(tf.gather(t_offsets, column) + category, cond_width),
                "mask": tf.one_hot(column, k)}

    return _seeded(seed, steps).map(sample).prefetch(tf.data.AUTOTUNE)


def _seeded(seed: int, steps: int) -> tf.data.Dataset:
    """``steps`` stateless seeds ``[2]`` per epoch, new ones every epoch, the same for the same ``seed``."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2).take(steps)
