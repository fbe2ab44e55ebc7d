"""Text corpora, in-graph tokenisation and language-model windows.

Groundwork for the text models (issue 4): the embedded offline corpus, local
``.txt`` files, IMDb markup cleaning, character- and word-level tokenisers
built on ``keras.layers.TextVectorization`` (so the vocabulary is saved with
a model), and next-token windows as ``tf.data`` pipelines.

Token ids: 0 is padding (``""``) and 1 is the out-of-vocabulary token
(``"[UNK]"``), as ``TextVectorization`` assigns them; real tokens start at 2.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from aigc_tf.errors import DataError

TOKENIZER_LEVELS = ("char", "word")

EMBEDDED_CORPUS_DESCRIPTION = (
    "the help topics bundled with CPython in `pydoc_data.topics` (the Python language reference's "
    "help texts, about 465,000 characters of English prose and examples)"
)

# Punctuation becomes separate word tokens, so generated text keeps it.
_PUNCT = r"([.,!?;:()\"'\-])"


def embedded_corpus() -> list[str]:
    """The offline default corpus: CPython's pydoc help topics, in a fixed order."""
    from pydoc_data.topics import topics

    return [topics[key] for key in sorted(topics)]


def clean_text(texts):
    """Remove IMDb's ``<br />`` markup and collapse runs of whitespace (in-graph)."""
    texts = tf.strings.regex_replace(texts, r"<br\s*/?>", " ")
    texts = tf.strings.regex_replace(texts, r"\s+", " ")
    return tf.strings.strip(texts)


def read_text_files(path: str | Path) -> list[str]:
    """One ``.txt`` file, or every ``*.txt`` file below a folder (sorted), as strings."""
    path = Path(path)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise DataError(f"no .txt files in {path}; put UTF-8 text files there or set data.path to one file")
    else:
        raise DataError(f"text path {path} does not exist; set data.path to a .txt file or a folder of them")
    texts = []
    for f in files:
        try:
            texts.append(f.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise DataError(f"{f} is not UTF-8 text; convert it or remove it from {path}") from None
    if not any(t.strip() for t in texts):
        raise DataError(f"the text in {path} is empty; a language model needs some text to learn from")
    return texts


@keras.saving.register_keras_serializable(package="aigc_tf")
def word_standardize(texts):
    """Lower-case, drop IMDb markup, and set punctuation apart as its own tokens."""
    texts = tf.strings.lower(clean_text(texts))
    return tf.strings.regex_replace(texts, _PUNCT, r" \1 ")


def build_tokenizer(texts, level: str = "char", max_tokens: int | None = None):
    """A ``TextVectorization`` layer adapted to ``texts``.

    ``char`` keeps case, spaces and punctuation (every character is a token);
    ``word`` uses :func:`word_standardize` and splits on whitespace.
    """
    if level not in TOKENIZER_LEVELS:
        raise DataError(f"unknown tokenizer {level!r}; set data.tokenizer to one of {', '.join(TOKENIZER_LEVELS)}")
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise DataError("the corpus is empty; a tokenizer needs some text to build its vocabulary")
    if level == "char":
        layer = keras.layers.TextVectorization(max_tokens=max_tokens, standardize=None, split="character")
    else:
        layer = keras.layers.TextVectorization(max_tokens=max_tokens, standardize=word_standardize, split="whitespace")
    layer.adapt(tf.constant(texts))
    return layer


def detokenize(tokenizer, ids) -> list[str]:
    """Token ids ``(batch, time)`` back to strings; padding is dropped, words are joined by spaces."""
    vocab = np.array(tokenizer.get_vocabulary())
    sep = "" if tokenizer.get_config()["split"] == "character" else " "
    out = []
    for row in np.asarray(ids):
        out.append(sep.join(vocab[i] for i in row if i != 0))
    return out


def token_stream(tokenizer, texts) -> np.ndarray:
    """All texts tokenised and concatenated into one int32 id stream (padding removed)."""
    ids = tokenizer(tf.constant(list(texts)))
    flat = tf.boolean_mask(ids, ids != 0) if ids.shape.rank == 2 else ids
    return flat.numpy().astype(np.int32)


def lm_windows(ids: np.ndarray, seq_len: int, batch_size: int, *, shuffle: bool = True, seed: int = 0):
    """``(inputs, targets)`` batches of length ``seq_len`` where ``targets[t] = inputs[t + 1]``.

    Consecutive windows overlap by nothing (stride ``seq_len``); the last
    incomplete window is dropped.
    """
    if len(ids) < seq_len + 1:
        raise DataError(
            f"the corpus has {len(ids)} tokens, fewer than one window of {seq_len + 1}; "
            "lower data.seq_len or add text"
        )
    # Stride seq_len: the last target of one window is the first input of the next.
    ds = tf.data.Dataset.from_tensor_slices(ids[: len(ids) - 1]).batch(seq_len, drop_remainder=True)
    targets = tf.data.Dataset.from_tensor_slices(ids[1:]).batch(seq_len, drop_remainder=True)
    ds = tf.data.Dataset.zip((ds, targets))
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
