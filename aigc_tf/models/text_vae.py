"""Text VAE (Bowman et al. 2016, "Generating Sentences from a Continuous Space")."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from aigc_tf import losses, sampling
from aigc_tf.models import common
from aigc_tf.models.text_base import BANNED_IDS, TextModel, global_sum

UNK_ID = 1
# Step index of the per-row draws for prior latents; generated tokens use 0, 1, 2, ...
_PRIOR_STEP = -7


@keras.saving.register_keras_serializable(package="aigc_tf")
class TextVAE(TextModel):
    """LSTM encoder -> Gaussian latent ``z`` -> LSTM decoder conditioned on ``z``.

    The encoder (optionally bidirectional, ``encoder_layers`` deep) reads the
    sentence and gives ``mean, log_var`` of ``q(z|x)``. The decoder starts from
    an LSTM state computed from ``z`` and also sees ``z`` next to every input
    embedding. Training minimises ``recon + w * KL`` per sentence (nats, summed
    over tokens), where the KL weight ``w`` rises linearly from 0 to 1 over
    ``kl_anneal_steps`` optimizer steps, and word dropout replaces each
    decoder input token by ``[UNK]`` with probability ``word_dropout`` — the
    two remedies Bowman et al. give for the decoder ignoring ``z``. Logged:
    ``loss``, ``reconstruction``, ``kl``, ``kl_weight`` and ``perplexity``
    (``exp`` of the reconstruction per token); validation uses ``w = 1`` and no
    word dropout, so ``val_loss`` is the negative ELBO per sentence.

    Generation decodes from ``z``: the posterior mean of a prompt, or a prior
    draw ``z ~ N(0, I)`` for an empty prompt (drawn from that row's seed).

    Args:
        vocabulary: tokens (without padding and unknown, which get ids 0 and 1).
        tokenizer: ``"word"`` or ``"char"``.
        embed_dim: embedding size (100 in the source documents).
        units: LSTM width (256 in the source documents).
        latent_dim: size of ``z`` (32 in the source documents).
        encoder_layers: stacked encoder LSTMs (2 in the source documents).
        bidirectional: bidirectional encoder LSTMs.
        dropout: dropout on the encoder's embeddings in training (0.5 in the source documents).
        word_dropout: probability of replacing a decoder input by ``[UNK]``.
        kl_anneal_steps: optimizer steps of the linear KL warm-up (0: always 1).
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> vae = TextVAE(vocabulary=words, latent_dim=16)
        >>> vae.compile()
        >>> vae.fit(sentences, epochs=1)    # (tokens, tokens) batches
        >>> mean, log_var = vae.encode(vae.tokenize(["a good film ."])[0])
        >>> vae.interpolate("a good film .", "the plot is bad .", steps=5)
    """

    family = "text_vae"

    def __init__(
        self,
        vocabulary: list,
        tokenizer: str = "word",
        embed_dim: int = 100,
        units: int = 256,
        latent_dim: int = 32,
        encoder_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        word_dropout: float = 0.25,
        kl_anneal_steps: int = 2000,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(vocabulary, tokenizer, seed, **kwargs)
        self.embed_dim = embed_dim
        self.units = units
        self.latent_dim = latent_dim
        self.encoder_layers = encoder_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.word_dropout = word_dropout
        self.kl_anneal_steps = kl_anneal_steps
        self.encoder_embedding = keras.layers.Embedding(self.vocab_size, embed_dim, mask_zero=True)
        self.encoder_drop = keras.layers.Dropout(dropout)
        self.encoder_rnns = []
        for i in range(encoder_layers):
            rnn = keras.layers.LSTM(units, return_sequences=i < encoder_layers - 1, name=f"encoder_{i}")
            self.encoder_rnns.append(keras.layers.Bidirectional(rnn) if bidirectional else rnn)
        self.to_latent = keras.layers.Dense(2 * latent_dim, name="to_latent")
        self.decoder_embedding = keras.layers.Embedding(self.vocab_size, embed_dim)
        self.to_state = keras.layers.Dense(2 * units, activation="tanh", name="to_state")
        self.decoder_lstm = keras.layers.LSTM(units, return_sequences=True, return_state=True, name="decoder")
        self.head = keras.layers.Dense(self.vocab_size)
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.kl_weight_tracker = keras.metrics.Mean(name="kl_weight")
        self.build(None)

    def build(self, input_shape):
        self.encoder_embedding.build((None, None))
        width = self.embed_dim
        for rnn in self.encoder_rnns:
            rnn.build((None, None, width))
            width = self.units * (2 if self.bidirectional else 1)
        self.to_latent.build((None, width))
        self.decoder_embedding.build((None, None))
        self.to_state.build((None, self.latent_dim))
        self.decoder_lstm.build((None, None, self.embed_dim + self.latent_dim))
        self.head.build((None, None, self.units))
        self.built = True

    def get_config(self):
        return {
            **super().get_config(),
            "embed_dim": self.embed_dim,
            "units": self.units,
            "latent_dim": self.latent_dim,
            "encoder_layers": self.encoder_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "word_dropout": self.word_dropout,
            "kl_anneal_steps": self.kl_anneal_steps,
        }

    @property
    def metrics(self):
        return [
            self.loss_tracker,
            self.reconstruction_tracker,
            self.kl_tracker,
            self.kl_weight_tracker,
            self.perplexity_tracker,
        ]

    # ----------------------------------------------------------- networks
    def encode(self, tokens, training=False):
        """Token ids (B, T) -> ``(mean, log_var)``, each (B, latent_dim)."""
        x = self.encoder_drop(self.encoder_embedding(tokens), training=training)
        for rnn in self.encoder_rnns:
            x = rnn(x, training=training)
        mean, log_var = ops.split(self.to_latent(x), 2, axis=-1)
        return mean, log_var

    def _initial_state(self, z):
        h, c = ops.split(self.to_state(z), 2, axis=-1)
        return [h, c]

    def _decoder_input(self, tokens, z):
        # (B, T) ids and (B, L) latents -> (B, T, E + L)
        x = self.decoder_embedding(tokens)
        zs = ops.repeat(z[:, None, :], ops.shape(tokens)[1], axis=1)
        return ops.concatenate([x, zs], axis=-1)

    def decode_logits(self, z, decoder_inputs, training=False):
        """Teacher-forced logits (B, T, V) for ``decoder_inputs`` given ``z``."""
        y, _, _ = self.decoder_lstm(
            self._decoder_input(decoder_inputs, z), initial_state=self._initial_state(z), training=training
        )
        return self.head(y)

    def call(self, tokens, training=False):
        """Logits of the sentence's own tokens through a posterior sample."""
        mean, log_var = self.encode(tokens, training)
        z = mean + ops.exp(0.5 * log_var) * ops.cast(common.normal(tf.shape(mean), self.seed_generator), mean.dtype)
        return self.decode_logits(z, self._shift(tokens), training)

    @staticmethod
    def _shift(tokens):
        # Decoder inputs: [start=0, x_0, ..., x_{T-2}]
        return ops.pad(tokens[:, :-1], [[0, 0], [1, 0]])

    # ----------------------------------------------------------- training
    def kl_weight(self):
        return losses.kl_anneal_weight(self.optimizer.iterations, self.kl_anneal_steps)

    def elbo_terms(self, tokens, training=False, word_dropout=0.0, eps=None):
        """Per-sentence ``(reconstruction NLL summed over tokens, KL, token count)`` (B,).

        ``eps``: the reparameterisation noise (B, latent_dim); drawn from the
        model's seed generator when omitted.
        """
        tokens = tf.cast(tokens, tf.int32)
        mean, log_var = self.encode(tokens, training)
        if eps is None:
            eps = common.normal(tf.shape(mean), self.seed_generator)
        z = mean + tf.exp(0.5 * log_var) * tf.cast(eps, mean.dtype)
        inputs = self._shift(tokens)
        if word_dropout > 0:
            u = common.uniform(tf.shape(inputs), self.seed_generator)
            position = tf.range(tf.shape(inputs)[1])[None, :]
            drop = (u < word_dropout) & (inputs != 0) & (position > 0)
            inputs = tf.where(drop, UNK_ID, inputs)
        recon, count = losses.sequence_nll(tokens, self.decode_logits(z, inputs, training))
        return recon, losses.gaussian_kl(*common.float32(mean, log_var)), count

    @staticmethod
    def _unpack(data):
        """Batches are ``(tokens, tokens)``, bare ``tokens`` or ``{"tokens", "noise"}`` (explicit eps)."""
        if isinstance(data, dict):
            return data["tokens"], data.get("noise")
        return (data[0] if isinstance(data, (tuple, list)) else data), None

    # The ELBO in float32 (float32 logits and KL), scaled by the optimizer (train.precision; see models.common).
    mixed_precision = True

    def train_step(self, data):
        tokens, eps = self._unpack(data)
        beta = self.kl_weight()
        with tf.GradientTape() as tape:
            recon, kl, count = self.elbo_terms(tokens, training=True, word_dropout=self.word_dropout, eps=eps)
            per_sentence = recon + beta * kl
            # Divide by the global batch: replica gradients then sum to one device's.
            loss = tf.reduce_sum(per_sentence) / tf.maximum(global_sum(tf.cast(tf.size(recon), tf.float32)), 1.0)
            scaled = self.optimizer.scale_loss(loss)
        self.apply_clipped_gradients(tape.gradient(scaled, self.trainable_variables))
        return self._update_vae_metrics(per_sentence, recon, kl, count, beta)

    def test_step(self, data):
        tokens, eps = self._unpack(data)
        recon, kl, count = self.elbo_terms(tokens, training=False, eps=eps)
        return self._update_vae_metrics(recon + kl, recon, kl, count, tf.constant(1.0))

    def _update_vae_metrics(self, per_sentence, recon, kl, count, beta):
        n = tf.cast(tf.size(recon), tf.float32)
        for tracker, value in (
            (self.loss_tracker, per_sentence),
            (self.reconstruction_tracker, recon),
            (self.kl_tracker, kl),
        ):
            tracker.update_state(tf.reduce_sum(value) / tf.maximum(n, 1.0), sample_weight=n)
        self.kl_weight_tracker.update_state(beta, sample_weight=n)
        tokens = tf.reduce_sum(count)
        self.perplexity_tracker.update_state(tf.reduce_sum(recon) / tf.maximum(tokens, 1.0), sample_weight=tokens)
        return {m.name: m.result() for m in self.metrics}

    # --------------------------------------------------------- generation
    def prior_latents(self, seeds):
        """``z ~ N(0, I)`` per row from ``seeds`` (B,), by Box-Muller on the per-row uniforms."""
        u = sampling.row_uniforms(seeds, tf.fill(tf.shape(seeds), _PRIOR_STEP), 2 * self.latent_dim)
        u1, u2 = u[:, : self.latent_dim], u[:, self.latent_dim :]
        return tf.sqrt(-2.0 * tf.math.log(u1)) * tf.cos(2.0 * np.pi * u2)

    def decoder(self, ids, lengths, max_new_tokens, use_cache: bool = True):
        """Decode from the posterior mean of each prompt (the prior mean, 0, for an empty one)."""
        mean = common.float32(self.encode(ids)[0])
        z = tf.where((lengths > 0)[:, None], mean, 0.0)
        step, state, start = self._latent_decoder(z, max_new_tokens, use_cache)
        return step, state, start, tf.ones_like(lengths)

    def _latent_decoder(self, z, max_new_tokens, use_cache: bool):
        z = tf.cast(z, self.compute_dtype)  # float16 / bfloat16 under a mixed policy
        start = tf.zeros(tf.stack([tf.shape(z)[0], 1]), tf.int32)
        if use_cache:

            def step(tokens, state):
                # z rides in the state (not a closure) so beam search re-gathers it per beam.
                h, c, z_rows = state
                x = tf.concat([self.decoder_embedding(tokens), z_rows], axis=-1)
                y, (h, c) = self.decoder_lstm.cell(x, [h, c], training=False)
                return self.head(y), (h, c, z_rows)

            state = (*self._initial_state(z), z)
        else:
            step, state = self.uncached_decoder(lambda tokens: self.decode_logits(z, tokens), start, max_new_tokens)
        return step, state, start

    def decode_ids(self, z, max_new_tokens, temperature, top_k, top_p, seeds, use_cache: bool = True):
        """Token ids (B, max(max_new_tokens)) decoded from latents ``z`` (B, latent_dim)."""
        step, state, start = self._latent_decoder(z, max_new_tokens, use_cache)
        batch = tf.shape(start)[0]
        return sampling.decode_prompted(
            step, state, start, tf.ones([batch], tf.int32), max_new_tokens,
            temperature=temperature, top_k=top_k, top_p=top_p, seeds=seeds, banned_ids=BANNED_IDS,
        )

    def latents_for(self, ids, lengths, seeds):
        """The posterior mean of each prompt; a prior draw (from its seed) for an empty prompt."""
        mean = common.float32(self.encode(ids)[0])
        return tf.where((lengths > 0)[:, None], mean, self.prior_latents(seeds))

    def generate_ids(self, ids, lengths, max_new_tokens, temperature, top_k, top_p, seeds, use_cache: bool = True):
        z = self.latents_for(ids, lengths, seeds)
        return self.decode_ids(z, max_new_tokens, temperature, top_k, top_p, seeds, use_cache)

    def decode_text(self, z, max_new_tokens, temperature, top_k, top_p, seeds):
        """Latents (B, latent_dim) -> ``{"texts", "token_ids"}``."""
        out = self.decode_ids(z, max_new_tokens, temperature, top_k, top_p, seeds)
        return {"texts": self.detokenize(out), "token_ids": out}

    def encode_text(self, texts):
        """Strings (B,) -> ``{"mean", "log_var"}`` of ``q(z|x)``."""
        ids, _ = self.tokenize(texts)
        mean, log_var = common.float32(*self.encode(ids))
        return {"mean": mean, "log_var": log_var}

    def interpolate(self, text_a: str, text_b: str, steps: int = 5, max_new_tokens: int = 30) -> list[str]:
        """Greedy decodes of ``z`` along the line between two sentences' posterior means."""
        means = self.encode_text([text_a, text_b])["mean"]
        alphas = tf.linspace(0.0, 1.0, steps)[:, None]
        z = (1.0 - alphas) * means[0] + alphas * means[1]
        n = tf.fill([steps], max_new_tokens)
        out = self.decode_text(z, n, tf.zeros([steps]), tf.zeros([steps], tf.int32), tf.ones([steps]), tf.zeros([steps], tf.int32))
        return [t.decode("utf-8") for t in out["texts"].numpy()]
