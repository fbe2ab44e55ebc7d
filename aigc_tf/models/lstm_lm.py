"""LSTM language model (character or word level)."""

from __future__ import annotations

import keras
import tensorflow as tf

from aigc_tf.models.text_base import TextModel


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
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(vocabulary, tokenizer, seed, **kwargs)
        self.embed_dim = embed_dim
        self.units = units
        self.num_layers = num_layers
        self.dropout = dropout
        self.embedding = keras.layers.Embedding(self.vocab_size, embed_dim)
        self.rnns = [
            keras.layers.LSTM(units, return_sequences=True, return_state=True, name=f"lstm_{i}")
            for i in range(num_layers)
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
