"""What every text model shares: its vocabulary and in-graph tokeniser, the
masked token loss, perplexity, and string-in/string-out generation.

A text model holds its vocabulary as a constructor argument, so ``get_config``
carries it and a ``.keras`` file (or an export) tokenises exactly as training
did. Token ids: 0 is padding (also the decoder start token of the
encoder-decoder models), 1 is unknown, real tokens start at 2.

Generation runs :func:`aigc_tf.sampling.decode_prompted` on the step function
each model provides through ``decoder(...)``; prompts are fed through the
same step function, one token per step, which fills an LSTM's state or a
Transformer's key/value cache.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from aigc_tf import sampling
from aigc_tf.data import text as text_data
from aigc_tf.errors import UserError
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


def masked_token_loss(targets, logits):
    """``(sum of cross-entropy over non-padding targets, number of those targets)``.

    ``targets`` int (B, T) with 0 = padding, ``logits`` (B, T, V). The mean
    token loss is ``total / count``; dividing each replica's ``total`` by the
    *global* count (``global_sum``) makes the summed replica gradients equal
    one device's gradient of the global mean, even when replicas hold
    different numbers of real tokens.
    """
    mask = ops.cast(ops.not_equal(targets, 0), "float32")
    ce = ops.sparse_categorical_crossentropy(targets, ops.cast(logits, "float32"), from_logits=True)
    return ops.sum(ce * mask), ops.sum(mask)


class TextModel(common.SingleOptimizerMixin, common.SeedStateMixin, keras.Model):
    """Base class: vocabulary, tokeniser, token loss, generation. Not used on its own."""

    family = "lm"

    def __init__(self, vocabulary: list, tokenizer: str = "char", seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if tokenizer not in text_data.TOKENIZER_LEVELS:
            raise ValueError(f"unknown tokenizer {tokenizer!r}; use one of {', '.join(text_data.TOKENIZER_LEVELS)}")
        self.vocabulary = [str(v) for v in vocabulary]
        self.tokenizer = tokenizer
        self.seed = seed
        self.vocab_size = len(self.vocabulary) + 2
        self.vectorizer = text_data.tokenizer_from_vocabulary(self.vocabulary, tokenizer)
        # Built now: Keras would otherwise try a symbolic call on the first batch to build it.
        self.vectorizer.build((None,))
        self.vectorizer._lookup_layer.build((None,))
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.perplexity_tracker = Perplexity(name="perplexity")
        self.clip_norm = None

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary,
            "tokenizer": self.tokenizer,
            "seed": self.seed,
        }

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

    def train_step(self, data):
        x, y = self.split_batch(data)
        with tf.GradientTape() as tape:
            total, count = masked_token_loss(y, self(x, training=True))
            loss = total / ops.maximum(global_sum(count), 1.0)
        self.apply_clipped_gradients(tape.gradient(loss, self.trainable_variables))
        return self._update_token_metrics(total, count)

    def apply_clipped_gradients(self, grads):
        """Apply ``grads``, first clipped to the global norm ``clip_norm`` (from ``compile``).

        Under a strategy the norm must be that of the *summed* gradient, but a
        Keras optimizer's own ``clipnorm`` clips each replica's share before
        the sum. So the replicas sum their gradients here, clip the sum, and
        each passes on ``1 / replicas`` of it for the optimizer's own sum.
        """
        if self.clip_norm:
            grads = [tf.convert_to_tensor(g) for g in grads]  # embedding IndexedSlices -> dense
            ctx = tf.distribute.get_replica_context()
            replicas = ctx.num_replicas_in_sync if ctx is not None else 1
            if replicas > 1:
                grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            grads, _ = tf.clip_by_global_norm(grads, self.clip_norm)
            if replicas > 1:
                grads = [g / replicas for g in grads]
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))

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

    # ----------------------------------------------------- text <-> tokens
    def tokenize(self, texts):
        """Strings (B,) -> ``(ids int32 (B, P) right-padded with 0, lengths (B,))``, in-graph."""
        texts = tf.convert_to_tensor(texts, tf.string)
        if self.tokenizer == "char":
            # Clean like the training text, but keep a trailing space: "The " and
            # "The" ask for different continuations. (Word level: the standardizer cleans.)
            texts = tf.strings.regex_replace(texts, r"<br\s*/?>", " ")
            texts = tf.strings.regex_replace(texts, r"\s+", " ")
            texts = tf.strings.regex_replace(texts, r"^ ", "")
        ids = tf.cast(self.vectorizer(texts), tf.int32)
        if ids.shape.rank == 1:  # a scalar string
            ids = ids[None]
        # One trailing pad column, so a batch of empty prompts is (B, 1), never (B, 0).
        ids = tf.pad(ids, [[0, 0], [0, 1]])
        return ids, tf.reduce_sum(tf.cast(ids != 0, tf.int32), axis=-1)

    def detokenize(self, ids):
        """Ids (B, N) -> strings (B,), in-graph; padding is dropped."""
        table = tf.constant(["", "[UNK]", *self.vocabulary])
        tokens = tf.gather(table, tf.cast(ids, tf.int32))
        if self.tokenizer == "char":
            return tf.strings.reduce_join(tokens, axis=-1)
        words = tf.ragged.boolean_mask(tokens, ids != 0)
        joined = tf.strings.reduce_join(words, axis=-1, separator=" ")
        # Undo the word standardizer's spacing where it is unambiguous:
        # before closing punctuation, after "(", and around "'" and "-"
        # ("don ' t" -> "don't"). Double quotes stay spaced: open or close is unknown.
        joined = tf.strings.regex_replace(joined, r" ([.,!?;:)])", r"\1")
        joined = tf.strings.regex_replace(joined, r" ?([-']) ?", r"\1")
        return tf.strings.regex_replace(joined, r"([(]) ", r"\1")

    def join(self, prompt: str, continuation: str) -> str:
        """Prompt and generated text as one string (a space between words at word level)."""
        if self.tokenizer == "char" or not continuation or not prompt.strip():
            return prompt + continuation
        return prompt.rstrip() + " " + continuation

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

    def generate_ids(self, ids, lengths, max_new_tokens, temperature, top_k, top_p, seeds, use_cache: bool = True):
        """New token ids int32 (B, max(max_new_tokens)) after the prompts ``ids``; controls are (B,)."""
        step_fn, state, prompt, prompt_len = self.decoder(ids, lengths, max_new_tokens, use_cache)
        return sampling.decode_prompted(
            step_fn, state, prompt, prompt_len, max_new_tokens,
            temperature=temperature, top_k=top_k, top_p=top_p, seeds=seeds, banned_ids=BANNED_IDS,
        )

    def generate_text(self, prompts, max_new_tokens, temperature, top_k, top_p, seeds, use_cache: bool = True):
        """Strings in, ``{"texts": continuations (B,), "token_ids": (B, N)}`` out; controls are (B,).

        A row with ``temperature <= 0`` decodes greedily; ``top_k <= 0`` and
        ``top_p >= 1`` switch those filters off; ``seeds[i]`` alone decides row
        ``i``'s random draws.
        """
        ids, lengths = self.tokenize(prompts)
        max_new_tokens = self.new_token_budget_graph(lengths, max_new_tokens)
        out = self.generate_ids(ids, lengths, max_new_tokens, temperature, top_k, top_p, seeds, use_cache)
        return {"texts": self.detokenize(out), "token_ids": out}

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

        The prompt is fed through the cached step function up to its last
        token (a ``tf.while_loop``), then :func:`aigc_tf.sampling.beam_search`
        expands from that token. Every prompt in the batch must have the same
        number of tokens (the step function advances all rows together; the
        CLI searches one prompt at a time). Padding and unknown are never
        proposed.
        """
        max_new = tf.fill(tf.shape(lengths), max_new_tokens)
        step_fn, state, prompt, prompt_len = self.decoder(ids, lengths, max_new, use_cache=True)
        prompt_len = tf.cast(prompt_len, tf.int32)

        def prefill(t, state):
            _, new_state = step_fn(tf.gather(prompt, t, axis=1), state)
            return t + 1, new_state

        same = tf.debugging.assert_equal(
            tf.reduce_min(prompt_len), tf.reduce_max(prompt_len), message="beam search: prompts must be equally long"
        )
        with tf.control_dependencies([same]):
            steps = tf.reduce_max(prompt_len) - 1
        _, state = tf.while_loop(
            lambda t, _: t < steps, prefill, (tf.constant(0), state),
            shape_invariants=(tf.TensorShape([]), tf.nest.map_structure(sampling._loop_invariant, state)),
        )
        last = tf.gather(prompt, prompt_len - 1, batch_dims=1)
        vocab_ids = tf.range(self.vocab_size)
        banned = (vocab_ids[None, :] == 0) | (vocab_ids[None, :] == 1)

        def banned_step(tokens, state):
            logits, state = step_fn(tokens, state)
            return tf.where(banned, tf.constant(-1e9, logits.dtype), logits), state

        return sampling.beam_search(
            banned_step, state, last, max_new_tokens, beam_width=beam_width, length_penalty=length_penalty
        )

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


def text_generation_function(model: TextModel, use_cache: bool = True):
    """``model.generate_text`` as a ``tf.function`` with the serving signature.

    The CLI and the SavedModel export both call this function, so for the same
    inputs they run the same graph and return the same text. (No XLA here:
    it cannot compile the string ops; ``generate_ids`` can be jit-compiled.)
    """
    specs = [
        tf.TensorSpec([None], tf.string, name="prompts"),
        tf.TensorSpec([None], tf.int32, name="max_new_tokens"),
        tf.TensorSpec([None], tf.float32, name="temperature"),
        tf.TensorSpec([None], tf.int32, name="top_k"),
        tf.TensorSpec([None], tf.float32, name="top_p"),
        tf.TensorSpec([None], tf.int32, name="seed"),
    ]

    def generate(prompts, max_new_tokens, temperature, top_k, top_p, seed):
        return model.generate_text(prompts, max_new_tokens, temperature, top_k, top_p, seed, use_cache=use_cache)

    # No AutoGraph: the loops are explicit tf.while_loops already.
    return tf.function(generate, input_signature=specs, autograph=False), specs
