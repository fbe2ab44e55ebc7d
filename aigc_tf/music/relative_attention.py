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

import keras
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

    def position_logits(self, q):
        # q (B, H, T, D) -> (B, H, T, T) with [i, j] = q_i . E[i - j] for j <= i (above the diagonal: unused).
        b, h, t = ops.shape(q)[0], ops.shape(q)[1], ops.shape(q)[2]
        qe = ops.matmul(q, ops.transpose(self._distances(t), (0, 2, 1))[None])  # column r: distance T-1-r
        qe = ops.pad(qe, [[0, 0], [0, 0], [0, 0], [1, 0]])  # (B, H, T, T+1)
        return ops.reshape(qe, (b, h, t + 1, t))[:, :, 1:]  # row i now starts at distance i

    def step_position_logits(self, q, t, cache_length):
        # q (B, H, 1, D) at position t -> (B, H, 1, C): q . E[t - c] for each cached key c (clipped).
        d = ops.clip(t - ops.arange(cache_length), 0, self.max_distance - 1)
        return ops.einsum("bhqd,hcd->bhqc", q, ops.take(self.relative, d, axis=1))

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

    def make_attention(self) -> RelativeCausalSelfAttention:
        return RelativeCausalSelfAttention(self.num_heads, self.max_distance, self.dropout, name="attn")

    def get_config(self):
        return {**super().get_config(), "max_distance": self.max_distance}
