"""Streaming Fréchet distance as a ``keras.metrics.Metric``.

The metric keeps the sufficient statistics of the generated features —
count, sum and sum of outer products, in float64 — so it can be updated batch
by batch inside ``evaluate`` or a custom loop, and under a ``tf.distribute``
strategy (Keras metric variables are summed across replicas on read). The
reference side is fixed moments (mean, covariance) computed once, e.g. with
:func:`aigc_tf.metrics.distances.feature_moments`.

``result()`` computes, with ``C`` the generated covariance and ``R`` the
reference one,

    FD = ||mu_g - mu_r||^2 + Tr(C) + Tr(R) - 2 Tr((R^1/2 C R^1/2)^1/2)

using symmetric eigendecompositions (``Tr((C R)^1/2)`` equals the trace of
the symmetric form), with negative eigenvalues from rounding clipped to 0.

(The VAE's ELBO terms stream already: its ``test_step`` updates ``Mean``
trackers, so ``model.evaluate`` reports them under any strategy.)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def _psd_sqrt(matrix):
    w, v = tf.linalg.eigh(matrix)
    return (v * tf.sqrt(tf.maximum(w, 0.0))[None, :]) @ tf.transpose(v)


@keras.saving.register_keras_serializable(package="aigc_tf")
class FrechetDistance(keras.metrics.Metric):
    """Fréchet distance of streamed features to fixed reference moments.

    Args:
        reference_mean: ``(D,)`` mean of the reference features.
        reference_cov: ``(D, D)`` covariance of the reference features.
        feature_model: optional callable mapping images to ``(N, D)``
            features; without it ``update_state`` takes features directly.

    Example:
        >>> mu, cov = feature_moments(real_features)
        >>> fd = FrechetDistance(mu, cov, feature_model=classifier.feature_model)
        >>> for images in generated_batches:
        ...     fd.update_state(images)
        >>> fd.result()
    """

    def __init__(self, reference_mean, reference_cov, feature_model=None, name="frechet_distance", **kwargs):
        super().__init__(name=name, dtype="float64", **kwargs)
        self.reference_mean = np.asarray(reference_mean, np.float64)
        self.reference_cov = np.asarray(reference_cov, np.float64)
        dim = self.reference_mean.shape[0]
        if self.reference_cov.shape != (dim, dim):
            raise ValueError(f"reference_cov must be ({dim}, {dim}), got {self.reference_cov.shape}")
        self.feature_model = feature_model
        self._ref_sqrt = _psd_sqrt(tf.constant(self.reference_cov))
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="count")
        self.total = self.add_variable(shape=(dim,), initializer="zeros", dtype="float64", name="total")
        self.outer = self.add_variable(shape=(dim, dim), initializer="zeros", dtype="float64", name="outer")

    def update_state(self, features, sample_weight=None):
        if self.feature_model is not None:
            features = self.feature_model(features)
        f = tf.cast(features, tf.float64)
        self.count.assign_add(tf.cast(tf.shape(f)[0], tf.float64))
        self.total.assign_add(tf.reduce_sum(f, axis=0))
        self.outer.assign_add(tf.matmul(f, f, transpose_a=True))

    def result(self):
        n = self.count
        mean = self.total / n
        cov = (self.outer - n * mean[:, None] * mean[None, :]) / (n - 1.0)
        ref_mean = tf.constant(self.reference_mean)
        ref_cov = tf.constant(self.reference_cov)
        middle = self._ref_sqrt @ cov @ self._ref_sqrt
        middle = 0.5 * (middle + tf.transpose(middle))  # symmetric up to rounding
        trace_sqrt = tf.reduce_sum(tf.sqrt(tf.maximum(tf.linalg.eigvalsh(middle), 0.0)))
        value = tf.reduce_sum(tf.square(mean - ref_mean)) + tf.linalg.trace(cov) + tf.linalg.trace(ref_cov) - 2.0 * trace_sqrt
        return tf.maximum(value, 0.0)

    def reset_state(self):
        for v in (self.count, self.total, self.outer):
            v.assign(tf.zeros_like(v))

    def get_config(self):
        return {
            "name": self.name,
            "reference_mean": self.reference_mean.tolist(),
            "reference_cov": self.reference_cov.tolist(),
        }
