"""LSTM language model (character or word level)."""

from __future__ import annotations

import keras
import tensorflow as tf

from aigc_tf.models.text_base import TextModel


class VariationalLSTMCell(keras.layers.LSTMCell):
    """An ``LSTMCell`` whose recurrent dropout is one mask on ``h_{t-1}`` (drawn once per
    sequence, shared by the four gates) inside the fused step.

    Keras' own ``recurrent_dropout`` draws a mask per gate and switches the cell to
    ``implementation=1`` (eight small matmuls a step instead of two), which made a
    training step 2.4x slower on 2 CPU cores; this keeps ``implementation=2``.
    Same weights as ``LSTMCell``.
    """

    def __init__(self, units: int, recurrent_dropout: float = 0.0, **kwargs):
        super().__init__(units, recurrent_dropout=recurrent_dropout, **kwargs)
        # LSTMCell chose implementation 1 (and four masks) for recurrent_dropout: undo both.
        self.implementation = 2
        self.dropout_mask_count = None

    def call(self, inputs, states, training=False):
        h_tm1, c_tm1 = states[0], states[1]
        if training and 0.0 < self.recurrent_dropout < 1.0:
            h_tm1 = h_tm1 * self.get_recurrent_dropout_mask(h_tm1)  # (B, U), fixed over the sequence
        # Implementation 2 ignores recurrent_dropout: the mask above is the only one.
        return super().call(inputs, [h_tm1, c_tm1], training=training)


def lstm_layer(units: int, recurrent_dropout: float = 0.0, name: str | None = None) -> keras.layers.Layer:
    """A sequence-and-state LSTM layer (``return_sequences``, ``return_state``); with
    ``recurrent_dropout`` an ``RNN`` of :class:`VariationalLSTMCell` (the same weights)."""
    if not recurrent_dropout:
        return keras.layers.LSTM(units, return_sequences=True, return_state=True, name=name)
    cell = VariationalLSTMCell(units, recurrent_dropout=recurrent_dropout)
    return keras.layers.RNN(cell, return_sequences=True, return_state=True, name=name)


@keras.saving.register_keras_serializable(package="aigc_tf")
class LSTMLanguageModel(TextModel):
    """Embedding -> stacked LSTMs -> softmax over the vocabulary, trained on
    next-token prediction.

    Decoding carries each layer's ``(h, c)`` and runs one LSTM cell step per
    token; ``use_cache=False`` re-runs the LSTMs over the whole prefix instead.

    Args:
        vocabulary: tokens (without padding and unknown, which get ids 0 and 1).
        tokenizer: ``"char"`` or ``"word"``.
        embed_dim: token embedding size.
        units: LSTM width.
        num_layers: stacked LSTM layers.
        dropout: dropout between layers in training.
        recurrent_dropout: dropout on each LSTM's recurrent state in training, one mask per
            sequence for all time steps (Gal & Ghahramani's variational dropout).
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> lm = LSTMLanguageModel(vocabulary=list("abc "), units=64)
        >>> lm.compile()
        >>> lm.fit(windows, epochs=1)        # (inputs, targets) int batches
    """

    def __init__(
        self,
        vocabulary: list,
        tokenizer: str = "char",
        embed_dim: int = 64,
        units: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(vocabulary, tokenizer, seed, **kwargs)
        self.embed_dim = embed_dim
        self.units = units
        self.num_layers = num_layers
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.embedding = keras.layers.Embedding(self.vocab_size, embed_dim)
        self.rnns = [
            lstm_layer(units, recurrent_dropout, name=f"lstm_{i}") for i in range(num_layers)
        ]
        self.drop = keras.layers.Dropout(dropout)
        self.head = keras.layers.Dense(self.vocab_size)
        self.build((None, None))

    def build(self, input_shape):
        self.embedding.build((None, None))
        width = self.embed_dim
        for rnn in self.rnns:
            rnn.build((None, None, width))
            width = self.units
        self.head.build((None, None, self.units))
        self.built = True

    def get_config(self):
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
        }

    def call(self, tokens, training=False):
        x = self.embedding(tokens)
        for rnn in self.rnns:
            x, _, _ = rnn(self.drop(x, training=training), training=training)
        return self.head(self.drop(x, training=training))  # (B, T, V)

    def decoder(self, ids, lengths, max_new_tokens, use_cache: bool = True):
        nonempty = tf.debugging.assert_positive(lengths, message="empty prompt: a language model needs a prompt token")
        with tf.control_dependencies([nonempty]):
            ids = tf.identity(ids)
        if not use_cache:
            step, state = self.uncached_decoder(self, ids, max_new_tokens)
            return step, state, ids, lengths
        zeros = tf.zeros(tf.stack([tf.shape(ids)[0], self.units]))
        states = tuple((zeros, zeros) for _ in self.rnns)

        def step(tokens, states):
            x = self.embedding(tokens)  # (B, E)
            new = []
            for rnn, (h, c) in zip(self.rnns, states):
                x, (h, c) = rnn.cell(x, [h, c], training=False)
                new.append((h, c))
            return self.head(x), tuple(new)

        return step, states, ids, lengths
