"""Differentiable augmentation for GAN discriminators (DiffAugment, Zhao et al. 2020).

The same random transformations are applied to real and generated images
before the discriminator sees them, in the discriminator and the generator
steps alike; gradients flow through them to the generator. Only geometric
policies are offered: on one grey channel colour jitter means nothing, and
flips or rotations would turn digits into other symbols.

* ``translation``: shift each image by a whole number of pixels, drawn
  uniformly from ``[-ratio * side, ratio * side]`` per axis (ratio 1/8), the
  vacated border filled with 0 (the middle of the ``[-1, 1]`` range, as in
  the paper). Written as two one-hot shift matrices per image, so the
  transform is exact in floating point and its gradient is the transposed
  shift.
* ``cutout``: zero one square of side ``ratio * side`` (ratio 1/2) per
  image, its centre uniform over the image (clipped at the border).

Randomness is stateless from a ``[2]`` seed, so a step is reproducible and
replicas (whose seeds differ) draw different transforms.
"""

from __future__ import annotations

import tensorflow as tf

POLICIES = ("translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(policy) -> tuple:
    """``"translation,cutout"`` (or a list, or ``""``/``None``) -> a tuple of policy names."""
    if policy is None:
        return ()
    names = [p.strip() for p in policy.split(",")] if isinstance(policy, str) else [str(p) for p in policy]
    names = [n for n in names if n and n != "none"]
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; use a comma-separated subset of {', '.join(POLICIES)}")
    return tuple(names)


def _split(seed, n: int):
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), n))


def _offsets(shape, low, high, seed):
    """Integers uniform in ``[low, high]`` (inclusive)."""
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high + 1, dtype=tf.int32)


def shift_matrices(shifts, size: int, dtype):
    """``(B, size, size)`` one-hot matrices ``M`` with ``(M @ v)[i] = v[i - shift]`` (0 outside)."""
    rows = tf.range(size)[None, :, None]
    cols = tf.range(size)[None, None, :]
    return tf.cast(tf.equal(cols, rows - shifts[:, None, None]), dtype)


def translation(images, seed, ratio: float = TRANSLATION_RATIO):
    h, w = int(images.shape[1]), int(images.shape[2])
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    s1, s2 = _split(seed, 2)
    batch = tf.shape(images)[0]
    my = shift_matrices(_offsets([batch], -sy, sy, s1), h, images.dtype)
    mx = shift_matrices(_offsets([batch], -sx, sx, s2), w, images.dtype)
    return tf.einsum("bij,bjkc,blk->bilc", my, images, mx)


def cutout_mask(batch, h: int, w: int, seed, ratio: float = CUTOUT_RATIO, dtype=tf.float32):
    """``(B, H, W, 1)`` masks: 0 inside one square per image, 1 elsewhere."""
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    s1, s2 = _split(seed, 2)
    # Square centres as in the reference implementation: an even side can sit
    # one pixel further, so every pixel is covered equally often.
    cy = _offsets([batch], 0, h - (ch % 2), s1)
    cx = _offsets([batch], 0, w - (cw % 2), s2)
    y0, x0 = cy - ch // 2, cx - cw // 2
    rows = tf.range(h)[None, :]
    cols = tf.range(w)[None, :]
    in_y = (rows >= y0[:, None]) & (rows < (y0 + ch)[:, None])  # (B, H)
    in_x = (cols >= x0[:, None]) & (cols < (x0 + cw)[:, None])  # (B, W)
    inside = in_y[:, :, None] & in_x[:, None, :]
    return tf.cast(~inside, dtype)[..., None]


def cutout(images, seed, ratio: float = CUTOUT_RATIO):
    h, w = int(images.shape[1]), int(images.shape[2])
    return images * cutout_mask(tf.shape(images)[0], h, w, seed, ratio, images.dtype)


_FUNCTIONS = {"translation": translation, "cutout": cutout}


def diff_augment(images, policy: tuple, seed):
    """Apply the policies in order, each with its own part of ``seed``."""
    if not policy:
        return images
    for name, part in zip(policy, _split(seed, len(policy)), strict=True):
        images = _FUNCTIONS[name](images, part)
    return images
