"""What every token-sequence model shares, text or not: the masked token loss
and perplexity, gradient clipping across replicas, and incremental decoding
(an LSTM's state, a Transformer's key/value cache) with the samplers of
:mod:`aigc_tf.sampling`, including the one new-token policy of every command.

Token ids: 0 is padding (also the decoder start token of the encoder-decoder
models), 1 is unknown, real tokens start at 2. Nothing here knows about
strings: :class:`aigc_tf.models.text_base.TextModel` adds the vocabulary and
the in-graph tokeniser; a music model adds its event vocabulary.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from aigc_tf import sampling
from aigc_tf.errors import UserError
from aigc_tf.losses import masked_token_loss
from aigc_tf.models import common

# Padding and unknown are never generated.
BANNED_IDS = (0, 1)
# New tokens when none are asked for (fewer if a model's context leaves less room).
DEFAULT_NEW_TOKENS = 200


@keras.saving.register_keras_serializable(package="aigc_tf")
class Perplexity(keras.metrics.Mean):
    """``exp`` of the token-weighted mean cross-entropy (update with per-token means and token counts)."""

    def result(self):
        return ops.exp(super().result())


def global_sum(x):
    """``x`` summed over the replicas of the current ``tf.distribute`` strategy (itself on one device)."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)



class SequenceModel(common.SingleOptimizerMixin, common.SeedStateMixin, keras.Model):
    """Base class of token-sequence models. Not used on its own.

    Subclasses build their layers, implement ``call`` (B, T) ids -> (B, T, V)
    logits and ``decoder`` (the step function of incremental decoding), and
    put their constructor arguments in ``get_config``.
    """

    family = "lm"
    # The id a sequence ends with (GPT-2's <|endoftext|>): generation stops there. None: no such token.
    end_token_id: int | None = None
    # Whether `prefill` can read many prompt tokens into the decoding state in one batched call.
    supports_prefill = False

    def __init__(self, vocab_size: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.vocab_size = int(vocab_size)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.perplexity_tracker = Perplexity(name="perplexity")
        self.clip_norm = None

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}

    @property
    def _default_save_signature(self):
        # Keras would trace `call` on specs guessed from `build` for the
        # SavedModel; text models export only their explicit string signatures
        # (aigc_tf.export), and a token-id `call` guessed as float32 of unknown
        # rank cannot be traced (an LSTM needs a known rank).
        return None

    # ------------------------------------------------------------ training
    @property
    def metrics(self):
        return [self.loss_tracker, self.perplexity_tracker]

    def split_batch(self, data):
        """``(model inputs, target ids)`` from a batch ``(x, y)``."""
        return data[0], data[1]

    # The token loss is float32 and scaled by the optimizer (train.precision; see models.common).
    mixed_precision = True

    def train_step(self, data):
        x, y = self.split_batch(data)
        with tf.GradientTape() as tape:
            total, count = masked_token_loss(y, self(x, training=True))
            loss = total / ops.maximum(global_sum(count), 1.0)
            scaled = self.optimizer.scale_loss(loss)
        self.apply_clipped_gradients(tape.gradient(scaled, self.trainable_variables))
        return self._update_token_metrics(total, count)

    def apply_clipped_gradients(self, grads):
        """Apply ``grads``, first clipped to the global norm ``clip_norm`` (from ``compile``).

        Under a strategy the norm must be that of the *summed* gradient, but a
        Keras optimizer's own ``clipnorm`` clips each replica's share before
        the sum. So the replicas sum their gradients here, clip the sum, and
        each passes on ``1 / replicas`` of it for the optimizer's own sum.
        """
        common.apply_gradients(self.optimizer, grads, self.trainable_variables, self.clip_norm)

    def compile(self, optimizer=None, clip_norm: float | None = None, **kwargs):
        self.clip_norm = clip_norm
        super().compile(optimizer=optimizer, **kwargs)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None:
            config["clip_norm"] = self.clip_norm
        return config

    def compile_from_config(self, config):
        super().compile_from_config(config)
        self.clip_norm = config.get("clip_norm")

    def test_step(self, data):
        x, y = self.split_batch(data)
        return self._update_token_metrics(*masked_token_loss(y, self(x, training=False)))

    def _update_token_metrics(self, total, count):
        mean = total / ops.maximum(count, 1.0)
        for tracker in self.metrics:
            tracker.update_state(mean, sample_weight=count)
        return {m.name: m.result() for m in self.metrics}

    # ---------------------------------------------------------- generation
    def decoder(self, ids, lengths, max_new_tokens, use_cache: bool = True):
        """``(step_fn, initial_state, prompt, prompt_len)`` for :func:`sampling.decode_prompted`."""
        raise NotImplementedError

    def uncached_decoder(self, logits_fn, ids, max_new_tokens):
        """A step function that re-runs ``logits_fn(tokens (B, t+1)) -> (B, t+1, V)`` over the
        whole prefix at every step: the reference the cached decoders must match."""
        width = tf.shape(ids)[1] + tf.reduce_max(max_new_tokens)
        buffer = tf.zeros(tf.stack([tf.shape(ids)[0], width]), tf.int32)

        def step(tokens, state):
            buffer, t = state
            buffer = sampling._write_column(buffer, t, tokens)
            logits = logits_fn(buffer[:, : t + 1])[:, -1]
            return logits, (buffer, t + 1)

        return step, (buffer, tf.constant(0))

    def prefill(self, state, tokens):
        """The cached decoding state after reading ``tokens`` int32 (B, S), S >= 1, from
        ``state`` (that of ``decoder(..., use_cache=True)`` at position 0) in one batched
        call. Models with ``supports_prefill = True`` implement it."""
        raise NotImplementedError

    def prefilled(self, state, prompt, prompt_len):
        """``(state, start)``: the cached state after the first ``start = min(prompt_len) - 1``
        tokens of every prompt, read by :meth:`prefill` in one call (``start = 0`` and the
        state unchanged when a prompt has one token). Decoding then starts at ``start``."""
        start = tf.reduce_min(tf.cast(prompt_len, tf.int32)) - 1
        state = tf.cond(start > 0, lambda: self.prefill(state, prompt[:, :start]), lambda: state)
        return state, start

    def generate_ids(self, ids, lengths, max_new_tokens, temperature, top_k, top_p, seeds, use_cache: bool = True,
                     stop_ids=None, prefill: bool = True):
        """New token ids int32 (B, max(max_new_tokens)) after the prompts ``ids``; controls are (B,).

        ``stop_ids``: int (m,) token ids that end a row (see
        :func:`sampling.decode_prompted`); None stops at ``end_token_id`` if the
        model has one. ``prefill``: read the prompts' common length in one
        batched call when the model supports it (False: token by token, the
        reference; the tokens are the same).
        """
        step_fn, state, prompt, prompt_len = self.decoder(ids, lengths, max_new_tokens, use_cache)
        start = 0
        if use_cache and prefill and self.supports_prefill:
            state, start = self.prefilled(state, prompt, prompt_len)
        if stop_ids is None and self.end_token_id is not None:
            stop_ids = tf.constant([self.end_token_id], tf.int32)
        return sampling.decode_prompted(
            step_fn, state, prompt, prompt_len, max_new_tokens,
            temperature=temperature, top_k=top_k, top_p=top_p, seeds=seeds, banned_ids=BANNED_IDS,
            start=start, stop_sequence=stop_ids,
        )

    def new_token_budget_graph(self, lengths, max_new_tokens):
        """In-graph :meth:`new_token_budget` for a batch: rows asking for ``<= 0`` new
        tokens get the default; a row asking for more than its context leaves fails
        with a message naming the context and what fits."""
        lengths = tf.cast(lengths, tf.int32)
        max_new_tokens = tf.cast(max_new_tokens, tf.int32)
        room = self.context_room(lengths)
        default = tf.fill(tf.shape(lengths), DEFAULT_NEW_TOKENS)
        if room is None:
            return tf.where(max_new_tokens > 0, max_new_tokens, default)
        fits = tf.debugging.Assert(
            tf.reduce_all(room > 0),
            [f"a prompt fills the context of {self.context_length} tokens; shorten it. Prompt tokens:", lengths],
        )
        with tf.control_dependencies([fits]):
            wanted = tf.where(max_new_tokens > 0, max_new_tokens, tf.minimum(default, room))
        ok = tf.debugging.Assert(
            tf.reduce_all(wanted <= room),
            [f"prompt tokens + max_new_tokens exceed the context of {self.context_length} tokens; the largest "
             "max_new_tokens that fit (per row) are", room, "asked for", wanted],
            summarize=16,
        )
        with tf.control_dependencies([ok]):
            return tf.identity(wanted)

    def beam_search_ids(self, ids, lengths, max_new_tokens: int, beam_width: int = 4, length_penalty: float = 0.0):
        """Beam search after each prompt; returns ``(tokens int32 (B, max_new_tokens), scores (B,))``.

        The prompt up to its last token is read into the cached state (in one
        batched call with :meth:`prefill` if the model supports it, otherwise
        through the step function in a ``tf.while_loop``), then
        :func:`aigc_tf.sampling.beam_search` expands from that token. Every
        prompt in the batch must have the same number of tokens (the step
        function advances all rows together; the CLI searches one prompt at a
        time). Padding and unknown are never proposed. A model with an
        ``end_token_id`` finishes a beam there; the end token and what follows
        are 0 in the output.
        """
        max_new = tf.fill(tf.shape(lengths), max_new_tokens)
        step_fn, state, prompt, prompt_len = self.decoder(ids, lengths, max_new, use_cache=True)
        prompt_len = tf.cast(prompt_len, tf.int32)

        same = tf.debugging.assert_equal(
            tf.reduce_min(prompt_len), tf.reduce_max(prompt_len), message="beam search: prompts must be equally long"
        )
        with tf.control_dependencies([same]):
            prompt_len = tf.identity(prompt_len)
        steps = tf.reduce_max(prompt_len) - 1
        if self.supports_prefill:
            state, _ = self.prefilled(state, prompt, prompt_len)
        else:
            def feed(t, state):
                _, new_state = step_fn(tf.gather(prompt, t, axis=1), state)
                return t + 1, new_state

            _, state = tf.while_loop(
                lambda t, _: t < steps, feed, (tf.constant(0), state),
                shape_invariants=(tf.TensorShape([]), tf.nest.map_structure(sampling._loop_invariant, state)),
            )
        last = tf.gather(prompt, prompt_len - 1, batch_dims=1)
        vocab_ids = tf.range(self.vocab_size)
        banned = (vocab_ids[None, :] == 0) | (vocab_ids[None, :] == 1)

        def banned_step(tokens, state):
            logits, state = step_fn(tokens, state)
            return tf.where(banned, tf.constant(-1e9, logits.dtype), logits), state

        tokens, scores = sampling.beam_search(
            banned_step, state, last, max_new_tokens, beam_width=beam_width, length_penalty=length_penalty,
            eos_id=self.end_token_id,
        )
        if self.end_token_id is not None:
            tokens = tf.where(tokens == self.end_token_id, 0, tokens)
        return tokens, scores

    def context_room(self, prompt_tokens):
        """New tokens the context leaves after ``prompt_tokens`` (an int or a tensor);
        None for models without a context limit."""
        return None

    def new_token_budget(self, prompt_tokens: int, requested: int | None = None, setting: str = "--max-new-tokens") -> int:
        """How many tokens to generate after a prompt of ``prompt_tokens`` tokens.

        One policy for every command: ``requested=None`` gives
        ``DEFAULT_NEW_TOKENS``, or what the context leaves if that is less; an
        explicit request that does not fit raises :class:`UserError` naming the
        context and the largest value that fits (``setting`` names the option
        in the message, e.g. ``--max-new-tokens`` or ``train.sample_max_new_tokens``).
        """
        room = self.context_room(int(prompt_tokens))
        if room is None:
            return DEFAULT_NEW_TOKENS if requested is None else int(requested)
        context = self.context_length
        if room < 1:
            raise UserError(
                f"the prompt has {prompt_tokens} tokens and fills the context of {context} tokens; "
                f"shorten it to at most {context - 1} tokens"
            )
        if requested is None:
            return min(DEFAULT_NEW_TOKENS, room)
        if requested > room:
            sep = " " if setting.startswith("-") else "="
            raise UserError(
                f"{setting}{sep}{requested} does not fit: the context of {context} tokens leaves room for {room} "
                f"new tokens after the {prompt_tokens}-token prompt; pass {setting}{sep}{room} or less, "
                "or leave it out to fill the context"
            )
        return int(requested)
