"""Decoder-only Transformer over event tokens (Music Transformer / Performance RNN events)."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from aigc_tf.layers.transformer import TransformerBlock, sinusoidal_positions
from aigc_tf.models.sequence_base import SequenceModel
from aigc_tf.music import representations as R
from aigc_tf.music.chorale_nade import join_rows
from aigc_tf.music.relative_attention import RelativeTransformerBlock

POSITIONS = ("learned", "sinusoidal", "relative")


@keras.saving.register_keras_serializable(package="aigc_tf")
class MusicTransformer(SequenceModel):
    """A GPT-2-layout Transformer (pre-LayerNorm blocks, GELU MLP) trained on
    next-event prediction over :class:`aigc_tf.music.representations.EventVocabulary`
    tokens, on the shared sequence base: the masked token loss and perplexity,
    key/value-cached decoding and the seeded samplers (greedy / temperature /
    top-k / top-p) of :mod:`aigc_tf.sampling`, the same code the text models run.

    The event vocabulary's settings are constructor arguments, so a saved
    model decodes its own tokens; :meth:`generate_notes` takes a primer as
    note arrays and returns note arrays, tokenising in the graph.

    Args:
        steps_per_beat: time grid (4: 16th notes).
        max_shift: longest TIME_SHIFT in grid steps (longer gaps take several).
        velocity_bins: VELOCITY tokens (0: none; notes play at velocity 80).
        bars: BAR tokens at the bar lines of 4/4.
        context_length: longest token sequence (primer + new tokens).
        num_layers, num_heads, embed_dim, mlp_dim, dropout: the Transformer
            (``mlp_dim`` null: ``4 * embed_dim``).
        positions: ``"learned"`` or ``"sinusoidal"`` position embeddings added to the tokens, or
            ``"relative"``: none, and relative position attention in every block (Huang et al. 2018;
            :mod:`aigc_tf.music.relative_attention`), distances up to ``context_length``.
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> model = MusicTransformer(context_length=256, num_layers=2, embed_dim=64)
        >>> model.compile()
        >>> model.fit(windows)  # (inputs, targets) int32 (B, T)
    """

    supports_prefill = True

    def __init__(self, steps_per_beat: int = 4, max_shift: int = 16, velocity_bins: int = 0, bars: bool = False,
                 context_length: int = 512, num_layers: int = 4, num_heads: int = 4, embed_dim: int = 128,
                 mlp_dim: int | None = None, dropout: float = 0.1, positions: str = "learned",
                 seed: int | None = None, **kwargs):
        vocab = R.EventVocabulary(steps_per_beat, max_shift, velocity_bins, bars)
        super().__init__(vocab_size=vocab.size, seed=seed, **kwargs)
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {', '.join(POSITIONS)}, got {positions!r}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.vocab = vocab
        self.steps_per_beat = steps_per_beat
        self.max_shift = max_shift
        self.velocity_bins = velocity_bins
        self.bars = bars
        self.context_length = context_length
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.embed_dim = embed_dim
        self.mlp_dim = mlp_dim
        self.dropout = dropout
        self.positions = positions

        def init(offset: int):
            return keras.initializers.RandomNormal(stddev=0.02, seed=None if seed is None else seed + offset)

        self.token_embedding = keras.layers.Embedding(self.vocab_size, embed_dim, embeddings_initializer=init(0))
        if positions == "learned":
            self.position_embedding = keras.layers.Embedding(context_length, embed_dim, embeddings_initializer=init(1))
        self.embed_drop = keras.layers.Dropout(dropout)
        relative = {"max_distance": context_length} if positions == "relative" else {}
        block = RelativeTransformerBlock if relative else TransformerBlock
        self.blocks = [block(num_heads, mlp_dim or 4 * embed_dim, dropout=dropout, name=f"block_{i}", **relative)
                       for i in range(num_layers)]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-5)
        self.build((None, None))

    def build(self, input_shape):
        self.token_embedding.build((None, None))
        if self.positions == "learned":
            self.position_embedding.build((None, None))
        for block in self.blocks:
            block.build((None, None, self.embed_dim))
        self.final_norm.build((None, None, self.embed_dim))
        self.built = True

    def get_config(self):
        return {**super().get_config(), "steps_per_beat": self.steps_per_beat, "max_shift": self.max_shift,
                "velocity_bins": self.velocity_bins, "bars": self.bars, "context_length": self.context_length,
                "num_layers": self.num_layers, "num_heads": self.num_heads, "embed_dim": self.embed_dim,
                "mlp_dim": self.mlp_dim, "dropout": self.dropout, "positions": self.positions}

    def _embed(self, tokens, positions, training=False):
        # tokens (B, T), positions (T,) -> (B, T, E)
        x = self.token_embedding(tokens)
        if self.positions == "learned":
            x = x + self.position_embedding(positions)[None]
        elif self.positions == "sinusoidal":
            table = sinusoidal_positions(self.context_length, self.embed_dim)
            x = x + ops.take(ops.convert_to_tensor(table), positions, axis=0)[None]
        return self.embed_drop(x, training=training)

    def _logits(self, h):
        # Tied output projection (as GPT-2).
        return ops.matmul(self.final_norm(h), ops.transpose(self.token_embedding.embeddings))

    def call(self, tokens, training=False):
        x = self._embed(tokens, ops.arange(ops.shape(tokens)[1]), training)
        for block in self.blocks:
            x = block(x, training=training)
        return self._logits(x)  # (B, T, V)

    def context_room(self, prompt_tokens):
        return self.context_length - prompt_tokens

    def decoder(self, ids, lengths, max_new_tokens, use_cache: bool = True):
        fits = tf.debugging.assert_less_equal(
            lengths + max_new_tokens, self.context_length,
            message=f"primer tokens + steps exceed the context of {self.context_length} tokens")
        with tf.control_dependencies([fits]):
            ids = tf.identity(ids)
        if not use_cache:
            step, state = self.uncached_decoder(self, ids, max_new_tokens)
            return step, state, ids, lengths
        batch = tf.shape(ids)[0]
        zeros = tf.zeros(tf.stack([batch, self.num_heads, self.context_length, self.embed_dim // self.num_heads]))
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

    def prefill(self, state, tokens):
        # tokens (B, S) at positions 0 .. S-1 in one causal pass that writes every block's cache.
        caches, _ = state
        s = tf.shape(tokens)[1]
        x = self._embed(tokens, tf.range(s))
        new = []
        for block, (k, v) in zip(self.blocks, caches, strict=True):
            x, k, v = block.prefill(x, k, v)
            new.append((k, v))
        return tuple(new), s

    # ---------------------------------------------------------- generation
    def primer_tokens(self, pitch, start, end, velocity, num_notes):
        """Padded primers -> ``(ids (B, P), lengths (B,))``, each ``[START, events...]``."""
        ragged = R.batch_rows(lambda p, s, e, v: R.tokenize_row(self.vocab, p, s, e, v), pitch, start, end,
                              velocity, num_notes)
        return ragged.to_tensor(), tf.cast(ragged.row_lengths(), tf.int32)

    def generate_notes(self, pitch, start, end, velocity, num_notes, steps, temperature, top_k, top_p, seed):
        """Note arrays in, note arrays out: the primer's events continued by ``steps`` new tokens
        (``<= 0``: 200 or what the context leaves), decoded back to notes (primer and continuation)."""
        ids, lengths = self.primer_tokens(pitch, start, end, velocity, num_notes)
        steps = self.new_token_budget_graph(lengths, steps)
        new = self.generate_ids(ids, lengths, steps, temperature, top_k, top_p, seed)
        p, s, e, v, n = R.detokenize_batch(self.vocab, join_rows(ids, lengths, new))
        return {"pitch": p, "start": s, "end": e, "velocity": v, "num_notes": n, "tokens": new}
