"""GAN, VAE and token-sequence losses as pure functions of tensors.

Every function takes logits (never probabilities) so that ``log sigmoid`` is
computed stably with ``softplus``: ``-log(sigmoid(x)) = softplus(-x)`` and
``-log(1 - sigmoid(x)) = softplus(x)``.

GAN losses return the mean over the batch they are given. Under a
``tf.distribute`` strategy the caller divides by the number of replicas
(:func:`aigc_tf.models.common.replica_scale`), because gradients are summed
across replicas. VAE terms return one value per example (summed over pixels
or latent units) so ELBO numbers are in nats per example.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf
from keras import ops


def bce_discriminator_loss(real_logits, fake_logits):
    """Non-saturating GAN discriminator loss (binary cross-entropy).

    ``L_D = E[-log D(x)] + E[-log(1 - D(G(z)))]``
    ``    = mean(softplus(-real_logits)) + mean(softplus(fake_logits))``
    """
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


def bce_generator_loss(fake_logits):
    """Non-saturating generator loss ``L_G = E[-log D(G(z))] = mean(softplus(-fake_logits))``."""
    return ops.mean(ops.softplus(-fake_logits))


def hinge_discriminator_loss(real_logits, fake_logits):
    """Hinge loss (Lim & Ye 2017; SN-GAN): ``E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]``."""
    return ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits))


def hinge_generator_loss(fake_logits):
    """Hinge generator loss ``L_G = -E[D(G(z))]``."""
    return -ops.mean(fake_logits)


def wasserstein_critic_loss(real_logits, fake_logits):
    """WGAN critic loss ``E[D(G(z))] - E[D(x)]`` (add :func:`gradient_penalty` for WGAN-GP)."""
    return ops.mean(fake_logits) - ops.mean(real_logits)


def wasserstein_generator_loss(fake_logits):
    """WGAN generator loss ``-E[D(G(z))]``."""
    return -ops.mean(fake_logits)


def gradient_penalty(critic: Callable, real, fake, epsilon):
    """WGAN-GP penalty (Gulrajani et al. 2017): ``E[(||grad_x D(x_hat)||_2 - 1)^2]``.

    ``x_hat = eps * real + (1 - eps) * fake`` with ``eps`` of shape ``(batch, 1, 1, 1)``
    drawn uniformly in [0, 1] by the caller (so the function stays pure).
    ``critic`` maps a batch of images to logits of shape ``(batch, 1)``.
    """
    # In the data's dtype: a mixed-precision generator's float16 output is cast up, the critic casts
    # x_hat down itself, and the gradient comes back in the data's dtype.
    real = tf.convert_to_tensor(real)
    fake, epsilon = tf.cast(fake, real.dtype), tf.cast(epsilon, real.dtype)
    x_hat = epsilon * real + (1.0 - epsilon) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        scores = tf.cast(critic(x_hat), real.dtype)
    grads = tape.gradient(scores, x_hat)
    flat = ops.reshape(grads, (ops.shape(grads)[0], -1))
    # A tiny epsilon keeps the norm's gradient finite where grads are exactly 0.
    norms = ops.sqrt(ops.sum(ops.square(flat), axis=1) + 1e-12)
    return ops.mean(ops.square(norms - 1.0))


GAN_LOSSES = {
    "bce": (bce_discriminator_loss, bce_generator_loss),
    "hinge": (hinge_discriminator_loss, hinge_generator_loss),
    "wgan_gp": (wasserstein_critic_loss, wasserstein_generator_loss),
}


def gaussian_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, summed over latent units.

    ``KL = -0.5 * sum(1 + log_var - mean^2 - exp(log_var))``
    """
    return -0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)


def bernoulli_nll(targets, logits):
    """Negative log-likelihood of ``targets`` in [0, 1] under Bernoulli(sigmoid(logits)).

    Per example, summed over all non-batch axes:
    ``-sum(t * log p + (1 - t) * log(1 - p)) = sum(softplus(l) - t * l)``.
    For non-binary targets this is the usual cross-entropy reconstruction term
    (not a normalised density); binarise the data to compare with the literature.
    """
    per_pixel = ops.softplus(logits) - ops.cast(targets, logits.dtype) * logits
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=1)


def gaussian_nll(targets, mean, log_scale):
    """Negative log-density of ``targets`` under ``N(mean, exp(log_scale)^2)``, per example.

    Summed over all non-batch axes, with ``s = exp(log_scale)`` (a scalar or
    broadcastable to ``targets``):
    ``sum(0.5 * ((t - m) / s)^2 + log s + 0.5 * log(2 pi))``. A density of
    continuous values, in nats: it may be negative, and compares only
    models of the same data scale.
    """
    log_scale = ops.cast(log_scale, mean.dtype)
    z = (ops.cast(targets, mean.dtype) - mean) * ops.exp(-log_scale)
    per_value = 0.5 * ops.square(z) + log_scale + 0.5 * float(np.log(2 * np.pi))
    return ops.sum(ops.reshape(per_value, (ops.shape(per_value)[0], -1)), axis=1)


def masked_token_loss(targets, logits):
    """``(sum of cross-entropy over non-padding targets, number of those targets)``.

    ``targets`` int (B, T) with 0 = padding, ``logits`` (B, T, V):
    ``total = sum_{b,t: y_bt != 0} -log softmax(logits_bt)[y_bt]``, ``count = #{y_bt != 0}``.
    The mean token loss is ``total / count``; dividing each replica's
    ``total`` by the *global* count makes the summed replica gradients equal
    one device's gradient of the global mean, even when replicas hold
    different numbers of real tokens.
    """
    mask = ops.cast(ops.not_equal(targets, 0), "float32")
    ce = ops.sparse_categorical_crossentropy(targets, ops.cast(logits, "float32"), from_logits=True)
    return ops.sum(ce * mask), ops.sum(mask)


def sequence_nll(targets, logits):
    """Per-sequence reconstruction term of a text VAE and its token count, (B,) each.

    ``nll_b = sum_{t: y_bt != 0} -log softmax(logits_bt)[y_bt]``, ``count_b = #{t: y_bt != 0}``.
    """
    mask = ops.cast(ops.not_equal(targets, 0), "float32")
    ce = ops.sparse_categorical_crossentropy(targets, ops.cast(logits, "float32"), from_logits=True)
    return ops.sum(ce * mask, axis=-1), ops.sum(mask, axis=-1)


def kl_anneal_weight(step, anneal_steps: int):
    """Linear KL annealing (Bowman et al. 2016): ``beta = min(1, step / anneal_steps)``; 1 when ``anneal_steps <= 0``."""
    if anneal_steps <= 0:
        return ops.convert_to_tensor(1.0)
    return ops.minimum(1.0, ops.cast(step, "float32") / float(anneal_steps))
