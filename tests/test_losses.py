"""GAN and VAE losses against values computed by hand in float64 numpy."""

import numpy as np
import pytest
import tensorflow as tf

from aigc_tf import losses

REAL = np.array([[2.0], [-1.0], [0.5]], dtype=np.float32)
FAKE = np.array([[-3.0], [0.0], [1.5]], dtype=np.float32)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def test_bce_discriminator_matches_log_formula():
    expected = np.mean(-np.log(_sigmoid(REAL))) + np.mean(-np.log(1.0 - _sigmoid(FAKE)))
    got = float(losses.bce_discriminator_loss(REAL, FAKE))
    assert got == pytest.approx(expected, rel=1e-6)


def test_bce_generator_is_non_saturating():
    expected = np.mean(-np.log(_sigmoid(FAKE)))
    assert float(losses.bce_generator_loss(FAKE)) == pytest.approx(expected, rel=1e-6)
    # Non-saturating: a confidently rejected fake still gives a large gradient.
    x = tf.constant([[-20.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = losses.bce_generator_loss(x)
    assert abs(float(tape.gradient(loss, x)[0, 0])) > 0.99


def test_bce_is_stable_for_extreme_logits():
    big = np.array([[80.0], [-80.0]], np.float32)
    assert np.isfinite(float(losses.bce_discriminator_loss(big, -big)))
    assert float(losses.bce_generator_loss(np.array([[-80.0]], np.float32))) == pytest.approx(80.0, rel=1e-5)


def test_hinge_losses():
    # mean(relu(1 - [2, -1, .5])) = (0 + 2 + .5) / 3 ; mean(relu(1 + [-3, 0, 1.5])) = (0 + 1 + 2.5) / 3
    assert float(losses.hinge_discriminator_loss(REAL, FAKE)) == pytest.approx(2.5 / 3 + 3.5 / 3)
    assert float(losses.hinge_generator_loss(FAKE)) == pytest.approx(-(-3.0 + 0.0 + 1.5) / 3)


def test_wasserstein_losses():
    assert float(losses.wasserstein_critic_loss(REAL, FAKE)) == pytest.approx(-0.5 - 0.5)
    assert float(losses.wasserstein_generator_loss(FAKE)) == pytest.approx(0.5)


def test_gradient_penalty_of_linear_critic():
    # critic(x) = sum(w * x): its input gradient is w everywhere, so the
    # penalty is (||w|| - 1)^2 whatever the interpolation point.
    w = tf.constant(np.full((2, 2, 1), 0.75, np.float32))
    real = tf.random.normal((4, 2, 2, 1), seed=1)
    fake = tf.random.normal((4, 2, 2, 1), seed=2)
    eps = tf.random.uniform((4, 1, 1, 1), seed=3)
    gp = losses.gradient_penalty(lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])[:, None], real, fake, eps)
    assert float(gp) == pytest.approx((np.sqrt(4 * 0.75**2) - 1.0) ** 2, rel=1e-5)


def test_gradient_penalty_is_taken_at_the_interpolates():
    # critic(x) = 0.5 * sum(x^2): grad = x, so the penalty is
    # mean((||eps * real + (1 - eps) * fake|| - 1)^2), which depends on eps.
    rng = np.random.default_rng(0)
    real = rng.normal(size=(5, 3, 3, 1)).astype(np.float32)
    fake = rng.normal(size=(5, 3, 3, 1)).astype(np.float32)
    eps = rng.random((5, 1, 1, 1)).astype(np.float32)
    critic = lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])[:, None]  # noqa: E731
    x_hat = eps.astype(np.float64) * real + (1 - eps.astype(np.float64)) * fake
    norms = np.sqrt((x_hat.reshape(5, -1) ** 2).sum(axis=1))
    expected = np.mean((norms - 1.0) ** 2)
    assert float(losses.gradient_penalty(critic, real, fake, eps)) == pytest.approx(expected, rel=1e-5)
    at_real = np.mean((np.sqrt((real.reshape(5, -1).astype(np.float64) ** 2).sum(axis=1)) - 1.0) ** 2)
    assert expected != pytest.approx(at_real, rel=1e-3)


def test_gaussian_kl_closed_form():
    mean = np.array([[0.0, 0.0], [1.0, -2.0]], np.float32)
    log_var = np.array([[0.0, 0.0], [np.log(0.5), np.log(4.0)]], np.float32)
    var = np.exp(log_var.astype(np.float64))
    expected = 0.5 * np.sum(var + mean.astype(np.float64) ** 2 - 1.0 - log_var, axis=1)
    got = losses.gaussian_kl(mean, log_var).numpy()
    assert got[0] == pytest.approx(0.0, abs=1e-7)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_bernoulli_nll_matches_cross_entropy():
    rng = np.random.default_rng(0)
    x = rng.random((3, 4, 4, 1)).astype(np.float32)
    logits = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
    p = _sigmoid(logits)
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    np.testing.assert_allclose(losses.bernoulli_nll(x, logits).numpy(), expected, rtol=1e-5)


def test_masked_token_loss_golden_values():
    # Two rows, vocabulary 3; the second row's last target is padding.
    logits = np.array([[[0.0, 1.0, 2.0], [2.0, 0.0, 0.0]], [[1.0, 1.0, 1.0], [5.0, -1.0, 0.0]]], "float32")
    targets = np.array([[2, 1], [1, 0]], "int32")
    lse = lambda row: np.log(np.exp(row).sum())  # noqa: E731
    expected = (lse(logits[0, 0]) - 2.0) + (lse(logits[0, 1]) - 0.0) + (lse(logits[1, 0]) - 1.0)
    total, count = losses.masked_token_loss(targets, logits)
    assert np.isclose(float(total), expected, rtol=1e-6) and float(count) == 3.0
    nll, counts = losses.sequence_nll(targets, logits)
    np.testing.assert_allclose(nll.numpy(), [(lse(logits[0, 0]) - 2.0) + lse(logits[0, 1]), np.log(3.0)], rtol=1e-6)
    np.testing.assert_array_equal(counts.numpy(), [2.0, 1.0])


def test_kl_anneal_weight_is_linear_then_one():
    assert [float(losses.kl_anneal_weight(s, 4)) for s in (0, 1, 2, 4, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert float(losses.kl_anneal_weight(0, 0)) == 1.0


def test_gaussian_nll_matches_the_density_by_hand():
    from aigc_tf.losses import gaussian_nll

    t = np.array([[0.5, -0.25]], np.float32)
    m = np.array([[0.0, 0.25]], np.float32)
    s = 0.5
    # Each value: 0.5 * ((t - m) / s)^2 + log s + 0.5 log(2 pi); (t - m) / s = 1 and -1.
    expected = 2 * (0.5 + np.log(s) + 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(np.asarray(gaussian_nll(t, m, np.log(s))), [expected], rtol=1e-6)
