"""Relative position self-attention (Shaw et al. 2018; the Music Transformer of Huang et al. 2018).

Each head adds to its logit for query ``i`` and key ``j`` the term
``q_i . E[min(i - j, R - 1)]``, a learned embedding of the distance ``i - j``
(``R`` distances, longer ones share the last), so how far back a token lies
counts as well as what it is. The full-sequence path uses Huang et al.'s
"skewing" (pad a column, reshape, drop a row) to turn ``Q E^T`` into the
``(T, T)`` distance layout with reshapes only, ``O(T D)`` memory per head
instead of Shaw's ``O(T^2 D)``. The one-token decoding step and the batched
prefill give exactly the logits of the full pass (tested).

Shapes: ``B`` batch, ``T`` time, ``C`` the cache length, ``H`` heads, ``D``
head size, ``R`` distances.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from aigc_tf.layers.transformer import CausalSelfAttention, TransformerBlock


@keras.saving.register_keras_serializable(package="aigc_tf")
class RelativeCausalSelfAttention(CausalSelfAttention):
    """:class:`aigc_tf.layers.transformer.CausalSelfAttention` with a learned
    relative position term in every head's logits (see the module docstring).

    Args:
        num_heads: attention heads ``H``.
        max_distance: ``R``, the distances that have an embedding of their own
            (``0 .. R - 1``; longer ones use the last).
        dropout: dropout on the attention weights and the output in training.
    """

    def __init__(self, num_heads: int, max_distance: int = 512, dropout: float = 0.0, **kwargs):
        super().__init__(num_heads, dropout, **kwargs)
        self.max_distance = max_distance

    def build(self, input_shape):
        super().build(input_shape)
        self.relative = self.add_weight(
            shape=(self.num_heads, self.max_distance, self.head_dim), name="relative",
            initializer=keras.initializers.RandomNormal(stddev=0.02))

    def _distances(self, t):
        # (H, T, D): the embeddings of distances T-1, ..., 1, 0 (clipped at R - 1), the order skewing needs.
        # Slices, a flip and a concatenation rather than a gather: their gradients are cheap.
        reverse = ops.flip(self.relative, axis=1)  # distances R-1, ..., 0
        extra = ops.repeat(reverse[:, :1], ops.maximum(t - self.max_distance, 0), axis=1)  # beyond R: E[R-1]
        return ops.concatenate([extra, reverse], axis=1)[:, -t:]

    def _relative_logits(self, q):
        # q (B, H, T, D) -> (B, H, T, T) with [i, j] = q_i . E[i - j] for j <= i (above the diagonal: unused).
        b, h, t = ops.shape(q)[0], ops.shape(q)[1], ops.shape(q)[2]
        qe = ops.matmul(q, ops.transpose(self._distances(t), (0, 2, 1))[None])  # column r: distance T-1-r
        qe = ops.pad(qe, [[0, 0], [0, 0], [0, 0], [1, 0]])  # (B, H, T, T+1)
        qe = ops.reshape(qe, (b, h, t + 1, t))[:, :, 1:]  # row i now starts at distance i
        return qe

    def _attend(self, q, k, v, allowed, training, relative=None):
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        if relative is not None:
            scores = scores + relative
        scores = scores / math.sqrt(self.head_dim)
        scores = ops.where(allowed, scores, ops.cast(-1e9, scores.dtype))
        weights = self.attn_drop(tf.nn.softmax(scores, axis=-1), training=training)
        return self.out_drop(self.out(self._merge(ops.matmul(weights, v))), training=training)

    def call(self, x, training=False):
        q, k, v = self._heads(self.qkv(x))
        t = ops.shape(x)[1]
        causal = ops.arange(t)[:, None] >= ops.arange(t)[None, :]
        return self._attend(q, k, v, causal[None, None], training, self._relative_logits(q))

    def step(self, x, k_cache, v_cache, t):
        """``x`` (B, 1, E) at position ``t``; returns ``(y (B, 1, E), k_cache, v_cache)``."""
        q, k, v = self._heads(self.qkv(x))
        c = ops.shape(k_cache)[2]
        at_t = ops.arange(c) == t
        k_cache = ops.where(at_t[None, None, :, None], k, k_cache)
        v_cache = ops.where(at_t[None, None, :, None], v, v_cache)
        d = ops.clip(t - ops.arange(c), 0, self.max_distance - 1)  # (C,): distance of each cached key
        relative = ops.einsum("bhqd,hcd->bhqc", q, ops.take(self.relative, d, axis=1))  # (B, H, 1, C)
        seen = (ops.arange(c) <= t)[None, None, None, :]
        return self._attend(q, k_cache, v_cache, seen, False, relative), k_cache, v_cache

    def prefill(self, x, k_cache, v_cache):
        """``x`` (B, S, E) at positions ``0 .. S-1`` in one call (see ``CausalSelfAttention.prefill``)."""
        q, k, v = self._heads(self.qkv(x))
        s, c = ops.shape(x)[1], ops.shape(k_cache)[2]
        written = (ops.arange(c) < s)[None, None, :, None]
        pad = [[0, 0], [0, 0], [0, c - s], [0, 0]]
        k_cache = ops.where(written, ops.pad(k, pad), k_cache)
        v_cache = ops.where(written, ops.pad(v, pad), v_cache)
        causal = ops.arange(s)[:, None] >= ops.arange(s)[None, :]
        return self._attend(q, k, v, causal[None, None], False, self._relative_logits(q)), k_cache, v_cache

    def get_config(self):
        return {**super().get_config(), "max_distance": self.max_distance}


@keras.saving.register_keras_serializable(package="aigc_tf")
class RelativeTransformerBlock(TransformerBlock):
    """:class:`aigc_tf.layers.transformer.TransformerBlock` whose attention is
    :class:`RelativeCausalSelfAttention`.

    Args:
        num_heads: attention heads.
        mlp_dim: hidden width of the GELU MLP.
        max_distance: distances with an embedding of their own.
        dropout: dropout rate in training.
    """

    def __init__(self, num_heads: int, mlp_dim: int, max_distance: int = 512, dropout: float = 0.0, **kwargs):
        super().__init__(num_heads, mlp_dim, dropout, **kwargs)
        self.max_distance = max_distance

    def build(self, input_shape):
        # TransformerBlock.build with the attention swapped (building the parent's first would leave
        # its unused attention weights tracked).
        dim = input_shape[-1]
        self.ln1 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln1")
        self.ln1.build(input_shape)
        self.attn = RelativeCausalSelfAttention(self.num_heads, self.max_distance, self.dropout, name="attn")
        self.attn.build(input_shape)
        self.ln2 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln2")
        self.ln2.build(input_shape)
        self.fc = keras.layers.Dense(self.mlp_dim, activation="gelu", name="fc")
        self.fc.build(input_shape)
        self.proj = keras.layers.Dense(dim, name="proj")
        self.proj.build((*input_shape[:-1], self.mlp_dim))
        self.drop = keras.layers.Dropout(self.dropout)

    def get_config(self):
        return {**super().get_config(), "max_distance": self.max_distance}
