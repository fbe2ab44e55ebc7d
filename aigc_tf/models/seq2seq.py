"""LSTM encoder-decoder that continues a text from a prefix."""

from __future__ import annotations

import keras
import tensorflow as tf

from aigc_tf.models.text_base import TextModel


@keras.saving.register_keras_serializable(package="aigc_tf")
class Seq2Seq(TextModel):
    """Encoder LSTM reads the prefix; its final ``(h, c)`` start a decoder LSTM
    that writes the continuation (the source documents' Keras seq2seq:
    Embedding -> LSTM(128, return_state) -> decoder LSTM(128) -> softmax).

    Training uses teacher forcing: batches are
    ``({"prefix": (B, S), "decoder_inputs": (B, T)}, targets (B, T))`` with
    ``decoder_inputs = [0, targets[:-1]]``; id 0 (padding) is the decoder's
    start token, and padded targets are ignored by the loss. Padded prefix
    positions are masked, so the encoder state is the one after the last real
    token. Generation encodes the prompt and decodes from the start token,
    one cell step per token (``use_cache=False`` re-runs the decoder LSTM over
    everything written so far).

    Args:
        vocabulary: tokens (without padding and unknown, which get ids 0 and 1).
        tokenizer: ``"char"`` or ``"word"``.
        embed_dim: token embedding size (encoder and decoder each have one).
        units: LSTM width.
        dropout: dropout on both embeddings and on the decoder's outputs in training.
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> s2s = Seq2Seq(vocabulary=list("abc "), units=128)
        >>> s2s.compile()
        >>> s2s.fit(pairs, epochs=1)
    """

    family = "seq2seq"

    def __init__(
        self,
        vocabulary: list,
        tokenizer: str = "char",
        embed_dim: int = 64,
        units: int = 128,
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(vocabulary, tokenizer, seed, **kwargs)
        self.embed_dim = embed_dim
        self.units = units
        self.dropout = dropout
        self.drop = keras.layers.Dropout(dropout)
        self.encoder_embedding = keras.layers.Embedding(self.vocab_size, embed_dim, mask_zero=True)
        self.encoder = keras.layers.LSTM(units, return_state=True, name="encoder")
        self.decoder_embedding = keras.layers.Embedding(self.vocab_size, embed_dim)
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
        return {**super().get_config(), "embed_dim": self.embed_dim, "units": self.units, "dropout": self.dropout}

    def encode(self, prefix, training=False):
        """Prefix ids (B, S) -> the encoder's final ``[h, c]`` (padding skipped)."""
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
