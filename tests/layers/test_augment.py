"""DiffAugment: exact shifts and squares against numpy, gradients, seeding."""

import numpy as np
import pytest
import tensorflow as tf

from aigc_tf.layers import augment


def _shift_numpy(img, dy, dx):
    """out[i, j] = img[i - dy, j - dx], 0 outside: a reference written with slicing."""
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = img[ys, xs]
    return out


def test_parse_policy():
    assert augment.parse_policy("translation,cutout") == ("translation", "cutout")
    assert augment.parse_policy(" cutout ") == ("cutout",)
    assert augment.parse_policy("") == augment.parse_policy(None) == augment.parse_policy("none") == ()
    with pytest.raises(ValueError, match="unknown augmentation 'color'"):
        augment.parse_policy("translation,color")


@pytest.mark.parametrize("dy, dx", [(0, 0), (3, -2), (-3, 3), (1, 0)])
def test_shift_matrices_move_pixels_exactly(dy, dx):
    rng = np.random.default_rng(0)
    img = rng.standard_normal((1, 6, 5, 2)).astype("float32")
    my = augment.shift_matrices(tf.constant([dy]), 6, tf.float32)
    mx = augment.shift_matrices(tf.constant([dx]), 5, tf.float32)
    out = tf.einsum("bij,bjkc,blk->bilc", my, img, mx).numpy()
    np.testing.assert_array_equal(out[0], _shift_numpy(img[0], dy, dx))


def test_translation_is_a_whole_pixel_shift_within_one_eighth():
    rng = np.random.default_rng(1)
    images = rng.standard_normal((200, 28, 28, 1)).astype("float32") + 5.0  # no zeros in the input
    out = augment.translation(tf.constant(images), tf.constant([3, 4], tf.int64)).numpy()
    seen = set()
    for img, got in zip(images, out, strict=True):
        # Recover the shift from where the input's first pixel landed.
        match = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                 if np.array_equal(got, _shift_numpy(img, dy, dx))]
        assert len(match) == 1
        seen.add(match[0])
    limit = int(28 * augment.TRANSLATION_RATIO + 0.5)  # 4 pixels
    assert {abs(dy) for dy, _ in seen} | {abs(dx) for _, dx in seen} == set(range(limit + 1))


def test_cutout_zeroes_one_square_of_half_the_side_clipped_at_the_border():
    masks = augment.cutout_mask(500, 28, 28, tf.constant([0, 9], tf.int64)).numpy()[..., 0]
    for m in masks:
        rows, cols = np.where(m == 0)
        assert rows.size > 0
        # One axis-aligned rectangle of at most 14 x 14, fully zero inside.
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert h <= 14 and w <= 14 and rows.size == h * w
        # Clipped only where it touches a border.
        assert h == 14 or rows.min() == 0 or rows.max() == 27
        assert w == 14 or cols.min() == 0 or cols.max() == 27
    # Every pixel is cut in some images and kept in others.
    coverage = (masks == 0).mean(axis=0)
    assert coverage.min() > 0.02 and coverage.max() < 0.6


def test_gradient_flows_to_the_images_as_the_transposed_transform():
    rng = np.random.default_rng(2)
    x = tf.constant(rng.standard_normal((8, 28, 28, 1)).astype("float32"))
    w = tf.constant(rng.standard_normal((8, 28, 28, 1)).astype("float32"))
    seed = tf.constant([5, 6], tf.int64)
    policy = ("translation", "cutout")
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = augment.diff_augment(x, policy, seed)
        loss = tf.reduce_sum(y * w)
    grad = tape.gradient(loss, x).numpy()
    # The transform is linear, T(x) . w = x . T^T(w); check T^T by probing with
    # unit images: d loss / d x[b, i, j] = loss at x = e_ij.
    for b, i, j in [(0, 0, 0), (3, 14, 14), (7, 27, 5)]:
        e = np.zeros((8, 28, 28, 1), "float32")
        e[b, i, j, 0] = 1.0
        assert grad[b, i, j, 0] == pytest.approx(float(tf.reduce_sum(augment.diff_augment(e, policy, seed) * w)))
    assert np.count_nonzero(grad) > 0


def test_same_seed_same_transform_other_seed_other_transform():
    x = tf.constant(np.random.default_rng(3).random((16, 28, 28, 1)).astype("float32"))
    a = augment.diff_augment(x, ("translation", "cutout"), tf.constant([1, 2], tf.int64))
    b = augment.diff_augment(x, ("translation", "cutout"), tf.constant([1, 2], tf.int64))
    c = augment.diff_augment(x, ("translation", "cutout"), tf.constant([1, 3], tf.int64))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    np.testing.assert_array_equal(augment.diff_augment(x, (), tf.constant([1, 2], tf.int64)).numpy(), x.numpy())
