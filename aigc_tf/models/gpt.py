"""GPT-style decoder-only Transformer language model."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from aigc_tf.layers.transformer import TransformerBlock, sinusoidal_positions
from aigc_tf.models.text_base import TextModel

POSITIONS = ("learned", "sinusoidal")


@keras.saving.register_keras_serializable(package="aigc_tf")
class GPT(TextModel):
    """Decoder-only Transformer (GPT-2 layout: pre-LayerNorm blocks, GELU MLP,
    final LayerNorm) trained on next-token prediction.

    Incremental decoding keeps a key/value cache per block, ``(B, H, C, D)``
    preallocated for the whole context ``C = context_length``, so each new
    token costs one position; the prompts' common length is read into it in
    one batched call (:meth:`prefill`). ``use_cache=False`` re-runs the model
    over the whole prefix instead (the reference the cache is tested against).

    Args:
        vocabulary: tokens (without padding and unknown, which get ids 0 and 1).
        tokenizer: ``"char"`` or ``"word"``.
        context_length: longest sequence (prompt + new tokens) the model handles.
        num_layers: Transformer blocks.
        num_heads: attention heads per block.
        embed_dim: channels ``E`` (divisible by ``num_heads``).
        mlp_dim: MLP hidden width (null: ``4 * embed_dim``).
        dropout: dropout rate in training.
        positions: ``"learned"`` position embeddings or fixed ``"sinusoidal"`` ones.
        tie_weights: reuse the token embedding as the output projection.
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> gpt = GPT(vocabulary=list("abc "), context_length=64, num_layers=2, embed_dim=32)
        >>> gpt.compile()
        >>> gpt.fit(windows, epochs=1)       # (inputs, targets) int batches
        >>> text_base.text_generation_function(gpt)[0](["ab"], [20], [0.8], [0], [0.95], [0])
    """

    def __init__(
        self,
        vocabulary: list,
        tokenizer: str = "char",
        context_length: int = 256,
        num_layers: int = 4,
        num_heads: int = 4,
        embed_dim: int = 128,
        mlp_dim: int | None = None,
        dropout: float = 0.1,
        positions: str = "learned",
        tie_weights: bool = True,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(vocabulary, tokenizer, seed, **kwargs)
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {', '.join(POSITIONS)}, got {positions!r}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.context_length = context_length
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.embed_dim = embed_dim
        self.mlp_dim = mlp_dim
        self.dropout = dropout
        self.positions = positions
        self.tie_weights = tie_weights
        def init(offset: int):
            # One seed per table: a seeded Keras initializer returns the same values on
            # every call, so sharing one would start token row i equal to position row i.
            return keras.initializers.RandomNormal(stddev=0.02, seed=None if seed is None else seed + offset)

        self.token_embedding = keras.layers.Embedding(self.vocab_size, embed_dim, embeddings_initializer=init(0))
        if positions == "learned":
            self.position_embedding = keras.layers.Embedding(context_length, embed_dim, embeddings_initializer=init(1))
        self.embed_drop = keras.layers.Dropout(dropout)
        self.blocks = [
            TransformerBlock(num_heads, mlp_dim or 4 * embed_dim, dropout, name=f"block_{i}") for i in range(num_layers)
        ]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)
        if not tie_weights:
            self.head = keras.layers.Dense(self.vocab_size, kernel_initializer=init(2), use_bias=False)
        self.build((None, None))

    def build(self, input_shape):
        self.token_embedding.build((None, None))
        if self.positions == "learned":
            self.position_embedding.build((None, None))
        for block in self.blocks:
            block.build((None, None, self.embed_dim))
        self.final_norm.build((None, None, self.embed_dim))
        if not self.tie_weights:
            self.head.build((None, None, self.embed_dim))
        self.built = True

    def get_config(self):
        return {
            **super().get_config(),
            "context_length": self.context_length,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "embed_dim": self.embed_dim,
            "mlp_dim": self.mlp_dim,
            "dropout": self.dropout,
            "positions": self.positions,
            "tie_weights": self.tie_weights,
        }

    def _embed(self, tokens, positions, training=False):
        # tokens (B, T), positions (T,) -> (B, T, E)
        x = self.token_embedding(tokens)
        if self.positions == "learned":
            x = x + self.position_embedding(positions)[None]
        else:
            table = sinusoidal_positions(self.context_length, self.embed_dim)
            x = x + ops.take(ops.convert_to_tensor(table), positions, axis=0)[None]
        return self.embed_drop(x, training=training)

    def _logits(self, h):
        h = self.final_norm(h)
        if self.tie_weights:
            return ops.matmul(h, ops.transpose(self.token_embedding.embeddings))
        return self.head(h)

    def call(self, tokens, training=False):
        x = self._embed(tokens, ops.arange(ops.shape(tokens)[1]), training)
        for block in self.blocks:
            x = block(x, training=training)
        return self._logits(x)  # (B, T, V)

    supports_prefill = True

    def prefill(self, state, tokens):
        # tokens (B, S) at positions 0 .. S-1 (state: empty caches at t = 0): one full causal
        # pass that also writes every block's keys and values, instead of S one-token steps.
        caches, _ = state
        s = tf.shape(tokens)[1]
        x = self._embed(tokens, tf.range(s))  # (B, S, E)
        new = []
        for block, (k, v) in zip(self.blocks, caches, strict=True):
            x, k, v = block.prefill(x, k, v)
            new.append((k, v))
        return tuple(new), s

    def context_room(self, prompt_tokens):
        return self.context_length - prompt_tokens

    def decoder(self, ids, lengths, max_new_tokens, use_cache: bool = True):
        fits = tf.debugging.assert_less_equal(
            lengths + max_new_tokens, self.context_length,
            message=f"prompt tokens + max_new_tokens exceed the context of {self.context_length} tokens",
        )
        nonempty = tf.debugging.assert_positive(lengths, message="empty prompt: a language model needs a prompt token")
        with tf.control_dependencies([fits, nonempty]):
            ids = tf.identity(ids)
        if not use_cache:
            step, state = self.uncached_decoder(self, ids, max_new_tokens)
            return step, state, ids, lengths
        batch = tf.shape(ids)[0]
        head_dim = self.embed_dim // self.num_heads
        zeros = tf.zeros(tf.stack([batch, self.num_heads, self.context_length, head_dim]))
        caches = tuple((zeros, zeros) for _ in self.blocks)

        def step(tokens, state):
            caches, t = state
            x = self._embed(tokens[:, None], t[None])  # (B, 1, E)
            new = []
            for block, (k, v) in zip(self.blocks, caches, strict=True):
                x, k, v = block.step(x, k, v, t)
                new.append((k, v))
            return self._logits(x)[:, 0], (tuple(new), t + 1)

        return step, (caches, tf.constant(0)), ids, lengths
