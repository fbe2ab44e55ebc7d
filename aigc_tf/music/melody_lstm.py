"""The source documents' melody encoder-decoder LSTM, made a likelihood model."""

from __future__ import annotations

import keras
import tensorflow as tf

from aigc_tf.models.sequence_base import SequenceModel
from aigc_tf.music import representations as R
from aigc_tf.music.chorale_nade import join_rows


@keras.saving.register_keras_serializable(package="aigc_tf")
class MelodyLSTM(SequenceModel):
    """Continue a melody from a seed melody: an encoder LSTM reads the seed, its
    final ``(h, c)`` start a decoder LSTM that writes the continuation.

    The documents' version regresses a ``T x 1`` feature with a sigmoid; here
    the melody is a sequence of 16th-note tokens (``ON(pitch)``, ``REST``,
    ``HOLD``: :func:`aigc_tf.music.representations.melody_row`) and the
    decoder outputs a softmax over them, so the loss is a negative
    log-likelihood (nats per step) and sampling is the shared seeded sampler.
    Training uses teacher forcing on ``({"prefix", "decoder_inputs"}, targets)``
    with ``decoder_inputs = [0, targets[:-1]]`` (0 starts the decoder).

    Args:
        steps_per_beat: time grid of the melody (4: 16th notes).
        embed_dim: token embedding size (encoder and decoder each have one).
        units: LSTM width (documents: 128).
        dropout: dropout on the embeddings and the decoder's outputs in training.
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> model = MelodyLSTM(units=128)
        >>> model.compile()
        >>> model.fit(pairs)  # ({"prefix": (B, S), "decoder_inputs": (B, T)}, targets (B, T))
    """

    family = "seq2seq"

    def __init__(self, steps_per_beat: int = 4, embed_dim: int = 64, units: int = 128, dropout: float = 0.0,
                 seed: int | None = None, **kwargs):
        super().__init__(vocab_size=R.MELODY_VOCAB, seed=seed, **kwargs)
        self.steps_per_beat = steps_per_beat
        self.embed_dim = embed_dim
        self.units = units
        self.dropout = dropout
        self.drop = keras.layers.Dropout(dropout)
        init = lambda k: keras.initializers.RandomUniform(-0.05, 0.05, seed=None if seed is None else seed + k)  # noqa: E731
        self.encoder_embedding = keras.layers.Embedding(self.vocab_size, embed_dim, mask_zero=True,
                                                        embeddings_initializer=init(0))
        self.encoder = keras.layers.LSTM(units, return_state=True, name="encoder")
        self.decoder_embedding = keras.layers.Embedding(self.vocab_size, embed_dim, embeddings_initializer=init(1))
        self.decoder_lstm = keras.layers.LSTM(units, return_sequences=True, return_state=True, name="decoder")
        self.head = keras.layers.Dense(self.vocab_size)
        self.build(None)

    def build(self, input_shape):
        self.encoder_embedding.build((None, None))
        self.encoder.build((None, None, self.embed_dim))
        self.decoder_embedding.build((None, None))
        self.decoder_lstm.build((None, None, self.embed_dim))
        self.head.build((None, None, self.units))
        self.built = True

    def get_config(self):
        return {**super().get_config(), "steps_per_beat": self.steps_per_beat, "embed_dim": self.embed_dim,
                "units": self.units, "dropout": self.dropout}

    def encode(self, prefix, training=False):
        """Seed ids (B, S) -> the encoder's final ``[h, c]`` (padding skipped; an empty seed: zeros)."""
        x = self.drop(self.encoder_embedding(prefix), training=training)
        _, h, c = self.encoder(x, mask=tf.not_equal(prefix, 0), training=training)
        return [h, c]

    def call(self, inputs, training=False):
        states = self.encode(inputs["prefix"], training)
        x = self.drop(self.decoder_embedding(inputs["decoder_inputs"]), training=training)
        y, _, _ = self.decoder_lstm(x, initial_state=states, training=training)
        return self.head(self.drop(y, training=training))  # (B, T, V)

    def decoder(self, ids, lengths, max_new_tokens, use_cache: bool = True):
        batch = tf.shape(ids)[0]
        states = self.encode(ids)
        start = tf.zeros(tf.stack([batch, 1]), tf.int32)
        one = tf.ones([batch], tf.int32)
        if not use_cache:

            def logits_fn(tokens):
                y, _, _ = self.decoder_lstm(self.decoder_embedding(tokens), initial_state=states)
                return self.head(y)

            step, state = self.uncached_decoder(logits_fn, start, max_new_tokens)
            return step, state, start, one

        def step(tokens, state):
            y, (h, c) = self.decoder_lstm.cell(self.decoder_embedding(tokens), list(state), training=False)
            return self.head(y), (h, c)

        return step, tuple(states), start, one

    # ---------------------------------------------------------- generation
    def generate_notes(self, pitch, start, end, velocity, num_notes, steps, temperature, top_k, top_p, seed):
        """Note arrays in, note arrays out: the primer's skyline melody is the seed; ``steps`` new
        16th-note steps (``<= 0``: 128, eight bars) follow; returns the seed and continuation as notes."""
        ragged = R.batch_rows(lambda p, s, e, v: R.melody_row(p, s, e, self.steps_per_beat), pitch, start, end,
                              velocity, num_notes)
        ids, lengths = ragged.to_tensor(), tf.cast(ragged.row_lengths(), tf.int32)
        ids = tf.pad(ids, [[0, 0], [0, 1]])  # (B, 1) at least, for an empty primer
        steps = tf.cast(steps, tf.int32)
        steps = tf.where(steps > 0, steps, 32 * self.steps_per_beat)
        new = self.generate_ids(ids, lengths, steps, temperature, top_k, top_p, seed)
        p, s, e, v, n = R.melody_to_notes_batch(join_rows(ids, lengths, new), self.steps_per_beat)
        return {"pitch": p, "start": s, "end": e, "velocity": v, "num_notes": n, "tokens": new}
