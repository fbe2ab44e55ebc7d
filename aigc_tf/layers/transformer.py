"""Transformer decoder blocks with a key/value cache for one-token steps.

Shapes: ``B`` batch, ``T`` time, ``C`` the cache length (the model's context),
``H`` heads, ``D`` head size, ``E = H * D`` channels.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops


def sinusoidal_positions(length: int, dim: int) -> np.ndarray:
    """Fixed sine/cosine position table (Vaswani et al. 2017), float32 (length, dim)."""
    pos = np.arange(length, dtype=np.float64)[:, None]
    rates = 1.0 / np.power(10000.0, np.arange(0, dim, 2, dtype=np.float64) / dim)
    table = np.zeros((length, dim))
    table[:, 0::2] = np.sin(pos * rates)
    table[:, 1::2] = np.cos(pos * rates[: dim // 2])
    return table.astype("float32")


@keras.saving.register_keras_serializable(package="aigc_tf")
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head causal self-attention that can also run one position at a time.

    ``call(x)`` attends over the whole sequence with a causal mask;
    ``step(x_t, k_cache, v_cache, t)`` writes position ``t``'s key and value
    into preallocated caches ``(B, H, C, D)`` and attends over positions
    ``<= t``, so decoding costs one position per token; ``prefill(x, k_cache,
    v_cache)`` writes a whole prompt's positions ``0 .. S-1`` in one call.

    Args:
        num_heads: attention heads ``H``.
        dropout: dropout on the attention weights and the output in training.
    """

    def __init__(self, num_heads: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.dropout = dropout

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim % self.num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {self.num_heads}")
        self.head_dim = dim // self.num_heads
        self.qkv = keras.layers.Dense(3 * dim, name="qkv")
        self.qkv.build(input_shape)
        self.out = keras.layers.Dense(dim, name="out")
        self.out.build(input_shape)
        self.attn_drop = keras.layers.Dropout(self.dropout)
        self.out_drop = keras.layers.Dropout(self.dropout)

    def _heads(self, x):
        # (B, T, 3E) -> three (B, H, T, D)
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (b, t, 3, self.num_heads, self.head_dim))
        x = ops.transpose(x, (2, 0, 3, 1, 4))
        return x[0], x[1], x[2]

    def _merge(self, x):
        # (B, H, T, D) -> (B, T, E)
        b, t = ops.shape(x)[0], ops.shape(x)[2]
        return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (b, t, self.num_heads * self.head_dim))

    def position_logits(self, q):
        """A term added to the full pass's logits ``(B, H, T, T)`` before scaling, from the queries
        ``q (B, H, T, D)``; None here (subclasses with relative positions return one)."""
        return None

    def step_position_logits(self, q, t, cache_length):
        """The same term for one query at position ``t`` against the ``cache_length`` cached keys."""
        return None

    def _attend(self, q, k, v, allowed, training, position=None):
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        if position is not None:
            scores = scores + position
        scores = scores / math.sqrt(self.head_dim)
        scores = ops.where(allowed, scores, ops.cast(-1e9, scores.dtype))
        # tf.nn.softmax, not ops.softmax: the latter warns on the 1-key case (the first decoding step).
        weights = self.attn_drop(tf.nn.softmax(scores, axis=-1), training=training)
        return self.out_drop(self.out(self._merge(ops.matmul(weights, v))), training=training)

    def call(self, x, training=False):
        q, k, v = self._heads(self.qkv(x))
        t = ops.shape(x)[1]
        causal = ops.arange(t)[:, None] >= ops.arange(t)[None, :]  # (T, T): query >= key
        return self._attend(q, k, v, causal[None, None], training, self.position_logits(q))

    def step(self, x, k_cache, v_cache, t):
        """``x`` (B, 1, E) at position ``t``; returns ``(y (B, 1, E), k_cache, v_cache)``."""
        q, k, v = self._heads(self.qkv(x))
        at_t = ops.arange(ops.shape(k_cache)[2]) == t  # (C,)
        # Write as a select: static shapes, so the same code runs under XLA.
        k_cache = ops.where(at_t[None, None, :, None], k, k_cache)
        v_cache = ops.where(at_t[None, None, :, None], v, v_cache)
        c = ops.shape(k_cache)[2]
        seen = (ops.arange(c) <= t)[None, None, None, :]
        return self._attend(q, k_cache, v_cache, seen, False, self.step_position_logits(q, t, c)), k_cache, v_cache

    def prefill(self, x, k_cache, v_cache):
        """``x`` (B, S, E) at positions ``0 .. S-1`` in one call; returns ``(y (B, S, E), k_cache, v_cache)``
        with those positions' keys and values written into the caches ``(B, H, C, D)``, ``S <= C``."""
        q, k, v = self._heads(self.qkv(x))
        s, c = ops.shape(x)[1], ops.shape(k_cache)[2]
        written = (ops.arange(c) < s)[None, None, :, None]
        pad = [[0, 0], [0, 0], [0, c - s], [0, 0]]
        k_cache = ops.where(written, ops.pad(k, pad), k_cache)
        v_cache = ops.where(written, ops.pad(v, pad), v_cache)
        causal = ops.arange(s)[:, None] >= ops.arange(s)[None, :]  # (S, S): the same attention as `call`
        return self._attend(q, k, v, causal[None, None], False, self.position_logits(q)), k_cache, v_cache

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="aigc_tf")
class TransformerBlock(keras.layers.Layer):
    """Pre-LayerNorm decoder block (GPT-2): ``x + attn(ln(x))``, then ``x + mlp(ln(x))``.

    Args:
        num_heads: attention heads.
        mlp_dim: hidden width of the GELU MLP.
        dropout: dropout rate in training.
    """

    def __init__(self, num_heads: int, mlp_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.dropout = dropout

    def build(self, input_shape):
        dim = input_shape[-1]
        self.ln1 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln1")
        self.ln1.build(input_shape)
        self.attn = self.make_attention()
        self.attn.build(input_shape)
        self.ln2 = keras.layers.LayerNormalization(epsilon=1e-5, name="ln2")
        self.ln2.build(input_shape)
        self.fc = keras.layers.Dense(self.mlp_dim, activation="gelu", name="fc")
        self.fc.build(input_shape)
        self.proj = keras.layers.Dense(dim, name="proj")
        self.proj.build((*input_shape[:-1], self.mlp_dim))
        self.drop = keras.layers.Dropout(self.dropout)

    def make_attention(self) -> CausalSelfAttention:
        """The block's self-attention layer (subclasses swap in another kind)."""
        return CausalSelfAttention(self.num_heads, self.dropout, name="attn")

    def _mlp(self, x, training):
        return self.drop(self.proj(self.fc(self.ln2(x))), training=training)

    def call(self, x, training=False):
        x = x + self.attn(self.ln1(x), training=training)
        return x + self._mlp(x, training)

    def step(self, x, k_cache, v_cache, t):
        a, k_cache, v_cache = self.attn.step(self.ln1(x), k_cache, v_cache, t)
        x = x + a
        return x + self._mlp(x, False), k_cache, v_cache

    def prefill(self, x, k_cache, v_cache):
        """``x`` (B, S, E) at positions ``0 .. S-1``; returns ``(y, k_cache, v_cache)`` (see ``CausalSelfAttention.prefill``)."""
        a, k_cache, v_cache = self.attn.prefill(self.ln1(x), k_cache, v_cache)
        x = x + a
        return x + self._mlp(x, False), k_cache, v_cache

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "dropout": self.dropout,
        }
