"""Text corpora, tokenisers and the ``tf.data`` pipelines of the text models.

:func:`load_text_data` is the entry point: it reads a corpus, cleans it
(IMDb ``<br />`` markup removed, whitespace collapsed), adapts a character- or
word-level ``keras.layers.TextVectorization`` on the training texts only (so
the vocabulary is saved with a model), tokenises every document once into
numpy, and builds batched pipelines for one of three tasks.

Sources (``name``):

* ``embedded`` -- the offline default: the help topics bundled with CPython
  (``pydoc_data.topics``), real English prose shipped with every Python.
  Documents in sorted key order; document ``i`` is validation iff
  ``i % 10 == 9``.
* ``text`` -- a ``.txt`` file or a folder of them at ``path``. Files are
  documents; a single file is split into paragraphs (or, if it has only one,
  lines); blank documents are skipped. Same ``i % 10 == 9`` rule; with fewer
  than 10 documents the last 10% of the characters (cut at a space) are the
  validation text.
* ``imdb_reviews`` -- tensorflow-datasets; train = ``train`` (+
  ``unsupervised``), validation = ``test``. Fails in seconds when it is not
  prepared and cannot be downloaded.
* ``aclimdb`` -- an extracted ``aclImdb/`` folder at ``path`` (the same
  reviews as ``imdb_reviews``, as published by Maas et al. 2011).

Tasks (``task``); every tensor is int32 with 0 as padding:

* ``lm`` -- ``(inputs, targets)``, both ``(B, seq_len)``: windows with stride
  ``seq_len`` over the concatenated token stream; ``targets`` is the same
  window one token later (``targets[:, t] == inputs[:, t + 1]``).
* ``pairs`` -- ``({"prefix", "decoder_inputs"}, targets)``, each ``(B, seq_len)``:
  first half of a chunk of up to ``2 * seq_len`` tokens -> its second half;
  ``decoder_inputs = [0] + targets[:-1]`` (0 doubles as the start token,
  so do not mask zeros in the decoder's inputs; mask by ``targets != 0``).
* ``sentences`` -- ``(tokens, tokens)``, ``(B, seq_len)``: one sentence per
  row, truncated and right-padded (the text VAE reconstructs its input).

Token ids: 0 is padding (``""``) and 1 is the out-of-vocabulary token
(``"[UNK]"``), as ``TextVectorization`` assigns them; real tokens start at 2.

Example:

>>> data = load_text_data("embedded", task="lm", level="char", seq_len=64, batch_size=32)
>>> inputs, targets = next(iter(data.train))
>>> inputs.shape, inputs.dtype
(TensorShape([32, 64]), tf.int32)
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from aigc_tf.data import TEXT_DATASETS, TOKENIZER_LEVELS  # noqa: E402  (re-exported)
from aigc_tf.errors import DataError

TEXT_TASKS = ("lm", "pairs", "sentences")

EMBEDDED_CORPUS_DESCRIPTION = (
    "the help topics bundled with CPython in `pydoc_data.topics` (the Python language reference's "
    "help texts, about 465,000 characters of English prose and examples)"
)

# Punctuation becomes separate word tokens, so generated text keeps it.
_PUNCT = r"([.,!?;:()\"'\-])"
# tfds builds `imdb_reviews` from http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz.
_IMDB_TFDS = "imdb_reviews/plain_text"
_IMDB_HOST = ("ai.stanford.edu", 80)
_ACLIMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
_ACLIMDB_LAYOUT = (
    "aclImdb/train/pos/*.txt, train/neg/*.txt, test/pos/*.txt, test/neg/*.txt (+ optional train/unsup/*.txt)"
)
# Tokenise at most this many documents, and this many (padded) ids, per call.
_TOKENIZE_DOCS = 1024
_TOKENIZE_IDS = 1 << 22
# A sentence ends after . ! or ? followed by whitespace.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def embedded_corpus() -> list[str]:
    """The offline default corpus: CPython's pydoc help topics, in a fixed order."""
    from pydoc_data.topics import topics

    return [topics[key] for key in sorted(topics)]


def embedded_paragraphs() -> list[str]:
    """The embedded corpus as paragraphs, each kept once, in topic order.

    pydoc repeats whole sections under several topic keys; splitting topics
    into train and validation put copies of training text in validation.
    Paragraphs (blank-line separated) whose whitespace-normalised text was
    seen before are dropped, so a paragraph-level split is disjoint.
    """
    seen, out = set(), []
    for doc in embedded_corpus():
        for para in re.split(r"\n\s*\n", doc):
            key = " ".join(para.split())
            if key and key not in seen:
                seen.add(key)
                out.append(para)
    return out


def _read_utf8(files, fix: str) -> list[str]:
    """The files' text; a file that is not UTF-8 is a :class:`DataError` saying ``fix``."""
    texts = []
    for f in files:
        try:
            texts.append(f.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise DataError(f"{f} is not UTF-8 text; {fix}") from None
    return texts


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
    texts = _read_utf8(files, f"convert it or remove it from {path}")
    if not any(t.strip() for t in texts):
        raise DataError(f"the text in {path} is empty; a language model needs some text to learn from")
    return texts


@keras.saving.register_keras_serializable(package="aigc_tf")
def word_standardize(texts):
    """Lower-case, drop IMDb markup, and set punctuation apart as its own tokens."""
    texts = tf.strings.lower(clean_text(texts))
    return tf.strings.regex_replace(texts, _PUNCT, r" \1 ")


def build_tokenizer(texts, level: str = "char", max_tokens: int | None = None) -> keras.layers.TextVectorization:
    """A ``TextVectorization`` layer adapted to ``texts``.

    ``char`` keeps case, spaces and punctuation (every character is a token);
    ``word`` uses :func:`word_standardize` and splits on whitespace.
    ``max_tokens`` counts the padding and ``[UNK]`` entries; ``None`` keeps
    every token seen.
    """
    _check_level(level)
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise DataError("the corpus is empty; a tokenizer needs some text to build its vocabulary")
    layer = _text_vectorization(level, max_tokens=max_tokens)
    # In batches: one update over a whole corpus (IMDb: 33M characters) would
    # materialise every token at once.
    layer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(_TOKENIZE_DOCS))
    return layer


def tokenizer_from_vocabulary(vocabulary: list[str], level: str = "char") -> keras.layers.TextVectorization:
    """The tokenizer of a trained model, rebuilt from its vocabulary (no adapting).

    ``vocabulary`` is :attr:`TextData.vocabulary`: the real tokens, without
    the padding and ``[UNK]`` entries (ids 0 and 1), which the layer adds back,
    so ids are the same as those of the tokenizer it came from.
    """
    _check_level(level)
    vocabulary = [str(t) for t in vocabulary]
    if vocabulary[:2] == ["", "[UNK]"]:  # a full get_vocabulary() list: accept it too
        vocabulary = vocabulary[2:]
    if not vocabulary:
        raise DataError("the vocabulary is empty; pass the vocabulary of a trained model (TextData.vocabulary)")
    if len(set(vocabulary)) != len(vocabulary) or "" in vocabulary:
        raise DataError("the vocabulary has repeated or empty tokens; pass TextData.vocabulary of a trained model")
    return _text_vectorization(level, vocabulary=vocabulary)


def _check_level(level: str) -> None:
    if level not in TOKENIZER_LEVELS:
        raise DataError(f"unknown tokenizer {level!r}; set data.tokenizer to one of {', '.join(TOKENIZER_LEVELS)}")


def _text_vectorization(level: str, max_tokens: int | None = None, vocabulary=None) -> keras.layers.TextVectorization:
    if level == "char":
        return keras.layers.TextVectorization(
            max_tokens=max_tokens, standardize=None, split="character", vocabulary=vocabulary
        )
    return keras.layers.TextVectorization(
        max_tokens=max_tokens, standardize=word_standardize, split="whitespace", vocabulary=vocabulary
    )


# --------------------------------------------------------------------------
# Datasets for the text models
# --------------------------------------------------------------------------


@dataclasses.dataclass
class TextData:
    """Tokenised train/validation pipelines and what a text model needs to know.

    Attributes:
        tokenizer: adapted on the training texts only (or rebuilt from a
            given vocabulary); save it with the model.
        level: ``"char"`` or ``"word"`` (``"bpe"`` with a subword encoder).
        vocabulary: the real tokens, ``tokenizer.get_vocabulary()[2:]``
            (without ``""`` and ``"[UNK]"``); rebuild the tokenizer with
            :func:`tokenizer_from_vocabulary`.
        train: batches for ``task``, reshuffled every epoch, known cardinality;
            the last batch may be smaller.
        test: validation batches in a fixed order, or ``None`` if the
            validation text is too short for one example.
        train_texts: the cleaned training documents.
        test_texts: the cleaned validation documents.
        test_ids: int32, all validation documents tokenised and concatenated
            (padding removed): the tokens perplexities are measured on.
        train_ids: the same for the training documents.
        task: ``"lm"``, ``"pairs"`` or ``"sentences"``.
        seq_len: length of every batch row.
    """

    tokenizer: keras.layers.TextVectorization  # or a subword encoder (see load_text_data)
    level: str
    vocabulary: list[str]
    train: tf.data.Dataset
    test: tf.data.Dataset | None
    train_texts: list[str]
    test_texts: list[str]
    test_ids: np.ndarray
    train_ids: np.ndarray
    task: str
    seq_len: int

    @property
    def vocab_size(self) -> int:
        """Number of token ids including padding and ``[UNK]``: the embedding's input size."""
        return len(self.vocabulary) + 2


def load_text_data(
    name: str,
    *,
    task: str = "lm",
    path: str | None = None,
    level: str = "char",
    seq_len: int = 128,
    batch_size: int = 64,
    vocab_size: int | None = None,
    vocabulary: list[str] | None = None,
    max_examples: int | None = None,
    data_dir: str | None = None,
    download: bool = True,
    unsupervised: bool = False,
    shuffle_buffer: int = 10000,
    seed: int = 0,
    random_windows: bool = False,
    encoder=None,
) -> TextData:
    """Loads a text corpus as tokenised, batched ``tf.data`` pipelines for ``task``.

    Args:
        name: one of :data:`TEXT_DATASETS` (see the module docstring).
        task: one of :data:`TEXT_TASKS`: ``lm`` (next-token windows),
            ``pairs`` (first half of a text -> second half) or ``sentences``
            (one sentence per row, input = target).
        path: the ``.txt`` file or folder (``text``), or the ``aclImdb``
            folder (``aclimdb``).
        level: ``"char"`` or ``"word"`` tokens.
        seq_len: tokens per row.
        batch_size: rows per batch.
        vocab_size: the tokenizer's ``max_tokens`` (counts padding and
            ``[UNK]``); ``None`` keeps every training token.
        vocabulary: a trained model's :attr:`TextData.vocabulary`; the
            tokenizer is rebuilt from it instead of adapted (``vocab_size``
            is then ignored), so ids match the model's.
        max_examples: keep at most this many documents per split.
        data_dir: tensorflow-datasets data directory (``imdb_reviews``).
        download: whether tfds may download ``imdb_reviews`` if not prepared.
        unsupervised: also train on IMDb's 50,000 unlabelled reviews.
        shuffle_buffer: training shuffle buffer (capped at the number of rows).
        seed: seeds the shuffle (together with TensorFlow's global seed).
        random_windows: task ``lm``: shift every training window by a random
            0 to ``seq_len - 1`` tokens each time it is read; task ``pairs``:
            cut every training chunk at a random place in its document each
            time it is read (validation rows stay fixed).
        encoder: a ready subword tokenizer instead of a ``TextVectorization``
            (e.g. :class:`aigc_tf.models.gpt2.BPEEncoder`): called on a batch of
            strings it returns int ids ``(B, P)`` padded with 0 (real ids >= 2),
            ``get_vocabulary()`` lists tokens by id with ``""`` and ``"[UNK]"``
            first, and ``document_separator`` is the id put between documents
            (or None). A function ``train_texts -> encoder`` builds one from the
            cleaned training texts. ``level``, ``vocab_size`` and ``vocabulary``
            are then not used.

    Returns:
        A :class:`TextData`.

    Raises:
        DataError: unknown name, task or level; missing, empty or too short
            data; the message says how to fix it.

    Example:

    >>> data = load_text_data("embedded", task="pairs", level="word", seq_len=32)
    >>> (inputs, targets) = next(iter(data.train))
    >>> sorted(inputs), targets.shape
    (['decoder_inputs', 'prefix'], TensorShape([64, 32]))
    """
    _check_text_options(name, task, level if encoder is None else "char", seq_len, batch_size, vocab_size,
                        max_examples, shuffle_buffer)
    train_docs, test_docs = _load_documents(
        name, path=path, max_examples=max_examples, data_dir=data_dir, download=download, unsupervised=unsupervised
    )
    train_texts, test_texts = _clean(train_docs), _clean(test_docs)
    if not train_texts:
        raise DataError(
            f"the training text of data.name={name} is empty (no non-whitespace characters after cleaning); "
            "point data.path at some text"
        )
    if encoder is not None:
        tokenizer = encoder if hasattr(encoder, "get_vocabulary") else encoder(train_texts)
        level = getattr(tokenizer, "level", level)
    elif vocabulary is not None:
        tokenizer = tokenizer_from_vocabulary(vocabulary, level)
    else:
        tokenizer = build_tokenizer(train_texts, level, max_tokens=vocab_size)
    train_doc_ids, test_doc_ids = _tokenize(tokenizer, train_texts), _tokenize(tokenizer, test_texts)
    # Documents are joined by a space at character level, so the stream never
    # glues the last word of one to the first of the next (a subword encoder
    # names its own separator: GPT-2's <|endoftext|>).
    vocab = tokenizer.get_vocabulary()
    if encoder is not None:
        sep = tokenizer.document_separator
    else:
        sep = vocab.index(" ") if level == "char" and " " in vocab else None
    train_ids, test_ids = _concat(train_doc_ids, sep), _concat(test_doc_ids, sep)

    def pipeline(texts: list[str], doc_ids: list[np.ndarray], ids: np.ndarray, shuffle: bool):
        if task == "lm":
            examples = _lm_examples(ids, seq_len, random_shift=shuffle and random_windows)
        elif task == "pairs":
            examples = _pair_examples(doc_ids, seq_len, random_start=shuffle and random_windows)
        else:
            examples = _sentence_examples(tokenizer, texts, seq_len, min_tokens=2 if level == "word" else 1)
        if examples is None:
            return None
        num, gather = examples
        ds = tf.data.Dataset.from_tensor_slices(np.arange(num, dtype=np.int64))  # known cardinality
        if shuffle:
            ds = ds.shuffle(max(1, min(shuffle_buffer, num)), seed=seed, reshuffle_each_iteration=True)
        # Batch the row indices, then gather whole batches: one op per batch.
        return ds.batch(batch_size).map(gather).prefetch(tf.data.AUTOTUNE)

    train = pipeline(train_texts, train_doc_ids, train_ids, shuffle=True)
    if train is None:
        raise DataError(_too_short(name, task, level, seq_len, len(train_ids)))
    return TextData(
        tokenizer=tokenizer,
        level=level,
        vocabulary=[str(t) for t in tokenizer.get_vocabulary()[2:]],
        train=train,
        test=pipeline(test_texts, test_doc_ids, test_ids, shuffle=False) if test_texts else None,
        train_texts=train_texts,
        test_texts=test_texts,
        test_ids=test_ids,
        train_ids=train_ids,
        task=task,
        seq_len=seq_len,
    )


def _check_text_options(name, task, level, seq_len, batch_size, vocab_size, max_examples, shuffle_buffer) -> None:
    if name not in TEXT_DATASETS:
        raise DataError(f"unknown text dataset {name!r}; set data.name to one of {', '.join(TEXT_DATASETS)}")
    if task not in TEXT_TASKS:
        raise DataError(
            f"unknown text task {task!r}; use one of {', '.join(TEXT_TASKS)} (each text model has its task)"
        )
    _check_level(level)
    for key, value, low in (
        ("seq_len", seq_len, 1),
        ("batch_size", batch_size, 1),
        ("vocab_size", vocab_size, 3),
        ("max_examples", max_examples, 1),
        ("shuffle_buffer", shuffle_buffer, 1),
    ):
        if value is not None and (not isinstance(value, int) or value < low):
            raise DataError(f"data.{key}={value!r} must be an integer of at least {low}")


def _too_short(name: str, task: str, level: str, seq_len: int, num_tokens: int) -> str:
    what = {
        "lm": f"fewer than one window of seq_len + 1 = {seq_len + 1}",
        "pairs": "not one chunk of at least 4 tokens",
        "sentences": "not one sentence" + (" of at least 2 words" if level == "word" else ""),
    }[task]
    return (
        f"the training text of data.name={name} has {num_tokens} {level} tokens, {what} for task {task!r}; "
        "lower data.seq_len or add text"
    )


# -- sources ---------------------------------------------------------------


def _load_documents(
    name: str,
    *,
    path: str | None,
    max_examples: int | None,
    data_dir: str | None,
    download: bool,
    unsupervised: bool,
) -> tuple[list[str], list[str]]:
    """Raw (uncleaned) train and validation documents of a source."""
    if name == "imdb_reviews":
        return _load_imdb_tfds(data_dir=data_dir, download=download, unsupervised=unsupervised, limit=max_examples)
    if name == "aclimdb":
        return _load_aclimdb(path, unsupervised=unsupervised, limit=max_examples)
    if name == "embedded":
        train, test = _every_tenth(embedded_paragraphs())
    else:  # "text"
        if path is None:
            raise DataError("data.name=text needs data.path: a UTF-8 .txt file or a folder of them")
        docs = read_text_files(path)
        if Path(path).is_file():
            docs = _paragraphs(docs[0])
        # Cleaned before splitting, so that a tail split never cuts markup in two.
        docs = _clean(docs)
        train, test = _every_tenth(docs)
        if not test:
            train, test = _tail_split(docs)
    return train[:max_examples], test[:max_examples]


def _every_tenth(docs: list[str]) -> tuple[list[str], list[str]]:
    """Document ``i`` is validation iff ``i % 10 == 9``."""
    return [d for i, d in enumerate(docs) if i % 10 != 9], [d for i, d in enumerate(docs) if i % 10 == 9]


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs; lines if there is only one paragraph."""
    parts = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(parts) <= 1:
        parts = [line for line in text.splitlines() if line.strip()]
    return parts or [text]


def _tail_split(docs: list[str], fraction: float = 0.1) -> tuple[list[str], list[str]]:
    """The last ``fraction`` of the characters as validation, cut at whitespace if possible."""
    total = sum(len(d) for d in docs)
    cut = total - max(1, int(total * fraction))  # first validation character, counted over all docs
    start = 0
    for i, doc in enumerate(docs):
        if start + len(doc) > cut:
            k = cut - start
            space = re.search(r"\s", doc[k:])
            if space:  # don't cut a word in two
                k += space.start()
            return docs[:i] + [doc[:k]], [doc[k:]] + docs[i + 1 :]
        start += len(doc)
    return list(docs), []


def _round_robin(groups: list[list[str]]) -> list[str]:
    """``[a0, b0, a1, b1, ...]``: the first N are a mix of every group."""
    out = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


def _load_aclimdb(path: str | None, *, unsupervised: bool, limit: int | None) -> tuple[list[str], list[str]]:
    get_it = f"download {_ACLIMDB_URL}, extract it and set data.path to the aclImdb folder"
    if path is None:
        raise DataError(f"data.name=aclimdb needs data.path: {get_it}")
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"aclImdb folder {root} does not exist; {get_it}")
    if not (root / "train").is_dir() and (root / "aclImdb").is_dir():
        root = root / "aclImdb"  # the folder the archive was extracted into

    def files(sub: str) -> list[Path]:
        folder = root / sub
        found = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        if not found:
            problem = "is missing" if not folder.is_dir() else "has no .txt files"
            raise DataError(f"{folder} {problem}; data.path must be an aclImdb folder laid out as {_ACLIMDB_LAYOUT}")
        return found[:limit]

    def read(subs: list[str]) -> list[str]:
        paths = _round_robin([files(sub) for sub in subs])[:limit]
        return _read_utf8(paths, "replace it with the file from the original archive")

    train_subs = ["train/pos", "train/neg"] + (["train/unsup"] if unsupervised else [])
    return read(train_subs), read(["test/pos", "test/neg"])


def _load_imdb_tfds(
    *, data_dir: str | None, download: bool, unsupervised: bool, limit: int | None
) -> tuple[list[str], list[str]]:
    import tensorflow_datasets as tfds  # heavy; only this source needs it

    from aigc_tf.data.images import prepared_tfds_builder

    get_it = (
        "run `python -c 'import tensorflow_datasets as tfds; tfds.load(\"imdb_reviews\")'` on a machine with "
        "network and copy ~/tensorflow_datasets here (or point data.data_dir at the copy), or download "
        f"{_ACLIMDB_URL}, extract it and set data.name=aclimdb data.path=<the aclImdb folder>"
    )
    builder = prepared_tfds_builder(_IMDB_TFDS, data_dir, download, _IMDB_HOST, get_it)

    def read(split: str) -> list[str]:
        ds = builder.as_dataset(split=split, shuffle_files=False).map(lambda ex: ex["text"])
        if limit is not None:
            ds = ds.take(limit)
        # Not batch_size=-1: under mock_data split sizes are unknown (see images.py).
        return [t.decode("utf-8") for batch in tfds.as_numpy(ds.batch(4096)) for t in batch]

    train = read("train")
    if unsupervised:
        train = _round_robin([train, read("unsupervised")])[:limit]
    return train, read("test")


# -- tokenising --------------------------------------------------------------


def _clean(docs: list[str]) -> list[str]:
    """:func:`clean_text` on every document, as Python strings; empty ones dropped."""
    out = []
    for start in range(0, len(docs), 4096):
        out.extend(t.decode("utf-8") for t in clean_text(tf.constant(docs[start : start + 4096])).numpy())
    return [t for t in out if t]


def _tokenize(tokenizer: keras.layers.TextVectorization, texts: list[str]) -> list[np.ndarray]:
    """Each text's int32 token ids (padding removed), tokenised in batches of similar length."""
    out: list[np.ndarray] = [np.zeros(0, np.int32)] * len(texts)
    # Sorted by length so a batch pads little; a batch holds at most
    # _TOKENIZE_DOCS texts and _TOKENIZE_IDS padded ids (characters bound tokens).
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    start = 0
    while start < len(order):
        end = start + 1
        while (
            end < len(order)
            and end - start < _TOKENIZE_DOCS
            and (end - start + 1) * len(texts[order[end]]) <= _TOKENIZE_IDS
        ):
            end += 1
        ids = tokenizer(tf.constant([texts[i] for i in order[start:end]])).numpy()
        for i, row in zip(order[start:end], ids, strict=True):
            out[i] = row[row != 0].astype(np.int32)  # 0 only pads: real ids are >= 1
        start = end
    return out


def _concat(doc_ids: list[np.ndarray], sep: int | None = None) -> np.ndarray:
    """One token stream; ``sep`` (a token id) goes between consecutive documents."""
    if not doc_ids:
        return np.zeros(0, np.int32)
    if sep is not None:
        doc_ids = [part for ids in doc_ids for part in (ids, np.array([sep]))][:-1]
    return np.concatenate(doc_ids).astype(np.int32)


def _pad(rows: list[np.ndarray], seq_len: int) -> np.ndarray:
    """Right-pads rows of at most ``seq_len`` ids with 0: ``(len(rows), seq_len)`` int32."""
    out = np.zeros((len(rows), seq_len), np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


# -- tasks: (number of rows, gather(batch of row indices) -> batch) ----------


def _lm_examples(ids: np.ndarray, seq_len: int, random_shift: bool = False):
    """Windows ``ids[k*L : (k+1)*L]`` -> ``ids[k*L + 1 : (k+1)*L + 1]`` with ``L = seq_len``.

    ``random_shift``: each window starts a random ``0 .. L-1`` tokens later,
    drawn afresh every time it is read (one window fewer, so every shifted
    window fits), so the model does not see the same cut points every epoch.
    """
    num = (len(ids) - 1) // seq_len - (1 if random_shift else 0)
    if num < 1:
        return None
    # One copy of the stream; inputs and targets are gathered from it per batch.
    stream = tf.constant(ids[: (num + (1 if random_shift else 0)) * seq_len + 1])
    offsets = tf.range(seq_len, dtype=tf.int64)

    def gather(index):
        start = index * seq_len
        if random_shift:
            # Stateful draw in a sequential map: reproducible from the global seed.
            start += tf.random.uniform(tf.shape(index), 0, seq_len, dtype=tf.int64)
        index = start[:, None] + offsets  # (B, seq_len)
        return tf.gather(stream, index), tf.gather(stream, index + 1)

    return num, gather


def _pair_examples(doc_ids: list[np.ndarray], seq_len: int, random_start: bool = False):
    """Chunks of up to ``2 * seq_len`` tokens of each document, split at their midpoint.

    ``random_start``: as many rows per document as fixed chunks, but each
    row is drawn afresh every time it is read: a chunk of ``min(2 * seq_len,
    len(document))`` tokens starting anywhere in its document.
    """
    if random_start:
        return _random_pair_examples(doc_ids, seq_len)
    prefixes, continuations = [], []
    for ids in doc_ids:
        for start in range(0, len(ids), 2 * seq_len):
            chunk = ids[start : start + 2 * seq_len]
            if len(chunk) < 4:
                continue
            mid = len(chunk) // 2
            prefixes.append(chunk[:mid])
            continuations.append(chunk[mid:])
    if not prefixes:
        return None
    prefix, targets = _pad(prefixes, seq_len), _pad(continuations, seq_len)
    # Teacher forcing: [0, c_0, ..., c_{n-2}], with 0 as the start token; padded
    # where the targets are.
    decoder_inputs = np.zeros_like(targets)
    decoder_inputs[:, 1:] = targets[:, :-1]
    decoder_inputs[targets == 0] = 0
    arrays = tf.constant(prefix), tf.constant(decoder_inputs), tf.constant(targets)

    def gather(index):
        p, d, t = (tf.gather(a, index) for a in arrays)
        return {"prefix": p, "decoder_inputs": d}, t

    return len(prefix), gather


def _random_pair_examples(doc_ids: list[np.ndarray], seq_len: int):
    docs = [ids for ids in doc_ids if len(ids) >= 4]
    if not docs:
        return None
    width = 2 * seq_len
    # One row per fixed chunk of each document (the same count as without
    # random starts); a row knows only its document.
    counts = [sum(min(width, len(ids) - s) >= 4 for s in range(0, len(ids), width)) for ids in docs]
    rows = np.repeat(np.arange(len(docs)), counts)
    begin = np.cumsum([0] + [len(ids) for ids in docs])[:-1]
    length = np.array([len(ids) for ids in docs])
    stream = tf.constant(np.concatenate(docs).astype(np.int32))
    doc_begin, doc_len = tf.constant(begin[rows], tf.int64), tf.constant(length[rows], tf.int64)
    cols = tf.range(seq_len, dtype=tf.int64)

    def gather(index):
        start, n = tf.gather(doc_begin, index), tf.gather(doc_len, index)
        size = tf.minimum(n, width)  # chunk length
        # Stateful draw in a sequential map: reproducible from the global seed.
        u = tf.random.uniform(tf.shape(index), 0.0, 1.0, dtype=tf.float64)
        start += tf.cast(tf.floor(u * tf.cast(n - size + 1, tf.float64)), tf.int64)
        mid = size // 2

        def take(first, count):  # (B, seq_len): stream[first + j] for j < count, else 0
            keep = cols[None] < count[:, None]
            return tf.where(keep, tf.gather(stream, tf.where(keep, first[:, None] + cols, 0)), 0)

        prefix, targets = take(start, mid), take(start + mid, size - mid)
        decoder_inputs = tf.where(targets != 0, tf.pad(targets[:, :-1], [[0, 0], [1, 0]]), 0)
        return {"prefix": prefix, "decoder_inputs": decoder_inputs}, targets

    return len(rows), gather


def split_sentences(text: str) -> list[str]:
    """Sentences of a cleaned text: split after ``.``, ``!`` or ``?`` followed by whitespace."""
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def _sentence_examples(tokenizer, texts: list[str], seq_len: int, min_tokens: int):
    """One sentence per row, truncated to ``seq_len`` tokens; shorter than ``min_tokens`` dropped."""
    sentences = [s for text in texts for s in split_sentences(text)]
    rows = [ids[:seq_len] for ids in _tokenize(tokenizer, sentences) if len(ids) >= min_tokens]
    if not rows:
        return None
    tokens = tf.constant(_pad(rows, seq_len))

    def gather(index):
        x = tf.gather(tokens, index)
        return x, x

    return int(tokens.shape[0]), gather
