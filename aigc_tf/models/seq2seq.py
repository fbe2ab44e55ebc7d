"""LSTM encoder-decoder that continues a text from a prefix."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from aigc_tf.models.lstm_lm import lstm_layer
from aigc_tf.models.text_base import TextModel, global_sum, masked_token_loss


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

    ``share_weights=True`` ties the decoder to the encoder: one embedding and
    one LSTM read the prefix and then go on writing, so every training token
    teaches the decoder (a tied encoder-decoder; the start token between them
    keeps its own embedding row, id 0). ``prefix_loss > 0`` adds, in training
    only, a next-token loss on the prefix: the encoder's output at each prefix
    position, through the output layer, predicts the next prefix token. The
    training loss is then ``(sum_cont + w * sum_prefix) / (n_cont + w *
    n_prefix)`` over non-padding tokens (``w = prefix_loss``; with ``w = 1``
    and shared weights it is a language model's loss on the whole chunk);
    validation and the logged ``perplexity`` score the continuation alone.

    Args:
        vocabulary: tokens (without padding and unknown, which get ids 0 and 1).
        tokenizer: ``"char"`` or ``"word"``.
        embed_dim: token embedding size (encoder and decoder each have one, or share one).
        units: LSTM width.
        dropout: dropout on both embeddings and on the decoder's outputs in training.
        recurrent_dropout: dropout on the LSTMs' recurrent state in training (one mask per sequence,
            :class:`aigc_tf.models.lstm_lm.VariationalLSTMCell`).
        share_weights: the decoder reuses the encoder's embedding and LSTM.
        prefix_loss: weight of the training loss on the prefix's next tokens (0: continuation only).
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
        recurrent_dropout: float = 0.0,
        share_weights: bool = False,
        prefix_loss: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(vocabulary, tokenizer, seed, **kwargs)
        if prefix_loss < 0:
            raise ValueError(f"prefix_loss must be >= 0, got {prefix_loss}")
        self.embed_dim = embed_dim
        self.units = units
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.share_weights = bool(share_weights)
        self.prefix_loss = float(prefix_loss)
        self.drop = keras.layers.Dropout(dropout)
        self.encoder_embedding = keras.layers.Embedding(self.vocab_size, embed_dim, mask_zero=True)
        # return_sequences: the prefix loss reads every position (the same weights either way).
        self.encoder = lstm_layer(units, recurrent_dropout, name="encoder")
        if not self.share_weights:
            self.decoder_embedding = keras.layers.Embedding(self.vocab_size, embed_dim)
            self.decoder_lstm = lstm_layer(units, recurrent_dropout, name="decoder")
        self.head = keras.layers.Dense(self.vocab_size)
        self.build(None)

    def build(self, input_shape):
        self.encoder_embedding.build((None, None))
        self.encoder.build((None, None, self.embed_dim))
        if not self.share_weights:
            self.decoder_embedding.build((None, None))
            self.decoder_lstm.build((None, None, self.embed_dim))
        self.head.build((None, None, self.units))
        self.built = True

    def get_config(self):
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "units": self.units,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "share_weights": self.share_weights,
            "prefix_loss": self.prefix_loss,
        }

    def _decoder_embed(self, ids):
        """Decoder input ids (...) -> embeddings (..., E)."""
        if self.share_weights:
            # A plain lookup: the shared Embedding masks id 0, which here is the start token.
            return ops.take(self.encoder_embedding.embeddings, ids, axis=0)
        return self.decoder_embedding(ids)

    @property
    def _decoder_rnn(self):
        return self.encoder if self.share_weights else self.decoder_lstm

    def _encode(self, prefix, training=False):
        # -> (outputs (B, S, U), [h, c]), padding skipped
        x = self.drop(self.encoder_embedding(prefix), training=training)
        y, h, c = self.encoder(x, mask=tf.not_equal(prefix, 0), training=training)
        return y, [h, c]

    def encode(self, prefix, training=False):
        """Prefix ids (B, S) -> the encoder's final ``[h, c]`` (padding skipped)."""
        return self._encode(prefix, training)[1]

    def _decode(self, decoder_inputs, states, training=False):
        x = self.drop(self._decoder_embed(decoder_inputs), training=training)
        y, _, _ = self._decoder_rnn(x, initial_state=states, training=training)
        return self.head(self.drop(y, training=training))  # (B, T, V)

    def call(self, inputs, training=False):
        return self._decode(inputs["decoder_inputs"], self.encode(inputs["prefix"], training), training)

    # The prefix-loss step below scales its loss and applies gradients as SequenceModel's does.
    mixed_precision = True

    def prefix_training_loss(self, inputs, targets, training=True):
        """``(loss, total, count)``: the training loss with the prefix term (see the class docstring),
        and the continuation's summed token loss and token count (what the metrics report)."""
        prefix = inputs["prefix"]
        outputs, states = self._encode(prefix, training=training)
        total, count = masked_token_loss(targets, self._decode(inputs["decoder_inputs"], states, training=training))
        # Position t of the prefix predicts prefix token t + 1 (padding targets are masked).
        prefix_logits = self.head(self.drop(outputs[:, :-1], training=training))
        p_total, p_count = masked_token_loss(prefix[:, 1:], prefix_logits)
        w = self.prefix_loss
        return (total + w * p_total) / ops.maximum(global_sum(count + w * p_count), 1.0), total, count

    def train_step(self, data):
        if not self.prefix_loss:
            return super().train_step(data)
        inputs, targets = data
        with tf.GradientTape() as tape:
            loss, total, count = self.prefix_training_loss(inputs, targets)
            scaled = self.optimizer.scale_loss(loss)
        self.apply_clipped_gradients(tape.gradient(scaled, self.trainable_variables))
        return self._update_token_metrics(total, count)

    def decoder(self, ids, lengths, max_new_tokens, use_cache: bool = True):
        batch = tf.shape(ids)[0]
        states = self.encode(ids)
        start = tf.zeros(tf.stack([batch, 1]), tf.int32)
        one = tf.ones([batch], tf.int32)
        if not use_cache:

            def logits_fn(tokens):
                return self._decode(tokens, states)

            step, state = self.uncached_decoder(logits_fn, start, max_new_tokens)
            return step, state, start, one

        def step(tokens, state):
            y, (h, c) = self._decoder_rnn.cell(self._decoder_embed(tokens), list(state), training=False)
            return self.head(y), (h, c)

        return step, tuple(states), start, one
