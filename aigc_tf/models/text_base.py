"""What every text model adds to a sequence model: its vocabulary and in-graph
tokeniser, and string-in/string-out generation.

A text model holds its vocabulary as a constructor argument, so ``get_config``
carries it and a ``.keras`` file (or an export) tokenises exactly as training
did. The loss, decoding and samplers are string-free and live in
:mod:`aigc_tf.models.sequence_base`.
"""

from __future__ import annotations

import tensorflow as tf

from aigc_tf.data import text as text_data
from aigc_tf.errors import UserError
from aigc_tf.losses import masked_token_loss  # noqa: F401  (re-exported)
from aigc_tf.models.sequence_base import (  # noqa: F401  (re-exported)
    BANNED_IDS,
    DEFAULT_NEW_TOKENS,
    Perplexity,
    SequenceModel,
    global_sum,
)


class TextModel(SequenceModel):
    """Base class: vocabulary, tokeniser, string generation. Not used on its own."""

    def __init__(self, vocabulary: list, tokenizer: str = "char", seed: int | None = None, **kwargs):
        if tokenizer not in text_data.TOKENIZER_LEVELS:
            raise ValueError(f"unknown tokenizer {tokenizer!r}; use one of {', '.join(text_data.TOKENIZER_LEVELS)}")
        vocabulary = [str(v) for v in vocabulary]
        super().__init__(vocab_size=len(vocabulary) + 2, seed=seed, **kwargs)
        self.vocabulary = vocabulary
        self.tokenizer = tokenizer
        self.vectorizer = text_data.tokenizer_from_vocabulary(self.vocabulary, tokenizer)
        # Built now: Keras would otherwise try a symbolic call on the first batch to build it.
        self.vectorizer.build((None,))
        self.vectorizer._lookup_layer.build((None,))

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "tokenizer": self.tokenizer}

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
    def stop_ids(self, stop: str):
        """The token ids of a stop string, int32 (m,) (eager); :class:`UserError` if it has none
        or a token outside the vocabulary (it could never be generated)."""
        ids, lengths = self.tokenize([stop])
        ids = ids.numpy()[0, : int(lengths.numpy()[0])]
        if not len(ids):
            raise UserError(f"the stop string {stop!r} has no tokens after this model's text cleaning; pick another")
        if (ids == 1).any():
            raise UserError(f"the stop string {stop!r} has characters or words outside the model's vocabulary, "
                            "so it can never be generated; pick another")
        return ids.astype("int32")

    def generate_text(self, prompts, max_new_tokens, temperature, top_k, top_p, seeds, use_cache: bool = True,
                      stop_ids=None):
        """Strings in, ``{"texts": continuations (B,), "token_ids": (B, N)}`` out; controls are (B,).

        A row with ``temperature <= 0`` decodes greedily; ``top_k <= 0`` and
        ``top_p >= 1`` switch those filters off; ``seeds[i]`` alone decides row
        ``i``'s random draws. ``stop_ids`` (:meth:`stop_ids` of a stop string):
        a row ends where its new tokens spell it, which is not part of the text.
        """
        ids, lengths = self.tokenize(prompts)
        max_new_tokens = self.new_token_budget_graph(lengths, max_new_tokens)
        stop = {} if stop_ids is None else {"stop_ids": stop_ids}  # the text VAE's generate_ids takes none
        out = self.generate_ids(ids, lengths, max_new_tokens, temperature, top_k, top_p, seeds, use_cache, **stop)
        return {"texts": self.detokenize(out), "token_ids": out}


def text_generation_function(model, use_cache: bool = True, stop: str | None = None):
    """``model.generate_text`` as a ``tf.function`` with the serving signature.

    The CLI and the SavedModel export both call this function, so for the same
    inputs they run the same graph and return the same text. (No XLA here:
    it cannot compile the string ops; ``generate_ids`` can be jit-compiled.)
    ``stop``: a stop string baked into the function (``model.stop_ids``).
    """
    stop_ids = None if stop is None else tf.constant(model.stop_ids(stop))
    specs = [
        tf.TensorSpec([None], tf.string, name="prompts"),
        tf.TensorSpec([None], tf.int32, name="max_new_tokens"),
        tf.TensorSpec([None], tf.float32, name="temperature"),
        tf.TensorSpec([None], tf.int32, name="top_k"),
        tf.TensorSpec([None], tf.float32, name="top_p"),
        tf.TensorSpec([None], tf.int32, name="seed"),
    ]

    def generate(prompts, max_new_tokens, temperature, top_k, top_p, seed):
        return model.generate_text(prompts, max_new_tokens, temperature, top_k, top_p, seed, use_cache=use_cache,
                                   stop_ids=stop_ids)

    # No AutoGraph: the loops are explicit tf.while_loops already.
    return tf.function(generate, input_signature=specs, autograph=False), specs
