"""Text groundwork: embedded corpus, cleaning, tokenisers, LM windows, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aigc_tf.data import text
from aigc_tf.errors import DataError
from tests.helpers import detokenize, token_stream


def test_embedded_corpus_is_real_english_and_fixed():
    docs = text.embedded_corpus()
    assert docs == text.embedded_corpus()
    joined = " ".join(docs)
    assert len(joined) > 300_000
    words = joined.lower().split()
    assert words.count("the") > 1000 and words.count("and") > 300


def test_clean_text_removes_imdb_markup():
    out = text.clean_text(tf.constant(["Great film.<br /><br />Loved it  <br/>really"])).numpy()[0].decode()
    assert out == "Great film. Loved it really"


def test_char_tokenizer_round_trip_and_reserved_ids():
    corpus = ["Hello, world!", "Hello again."]
    tok = text.build_tokenizer(corpus, "char")
    vocab = tok.get_vocabulary()
    assert vocab[:2] == ["", "[UNK]"]
    ids = tok(tf.constant(["Hello, world!"])).numpy()
    assert ids.min() >= 2  # every character is in the vocabulary
    assert detokenize(tok, ids) == ["Hello, world!"]
    assert tok(tf.constant(["Z"])).numpy()[0, 0] == 1  # unseen character -> [UNK]


def test_word_tokenizer_keeps_punctuation_as_tokens():
    tok = text.build_tokenizer(["The cat sat.<br />The dog, too!"], "word")
    vocab = tok.get_vocabulary()
    for token in ("the", "cat", ".", ",", "!"):
        assert token in vocab
    ids = tok(tf.constant(["The cat, too."])).numpy()
    assert detokenize(tok, ids) == ["the cat , too ."]


def test_tokenizer_saves_with_a_model(tmp_path):
    tok = text.build_tokenizer(["The cat sat. The dog ran!"], "word")
    inputs = keras.Input(shape=(1,), dtype="string")
    model = keras.Model(inputs, tok(inputs))
    model.save(tmp_path / "tok.keras")
    loaded = keras.models.load_model(tmp_path / "tok.keras")
    x = tf.constant([["The dog sat!"]])
    np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())


def test_token_stream_drops_padding():
    tok = text.build_tokenizer(["ab", "abc"], "char")
    stream = token_stream(tok, ["ab", "abc"])
    assert detokenize(tok, stream[None])[0] == "ababc"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: text.build_tokenizer(["x"], "bpe"), "unknown tokenizer 'bpe'"),
        (lambda: text.build_tokenizer(["", "  "], "char"), "the corpus is empty"),
    ],
)
def test_errors_name_the_problem(call, message):
    with pytest.raises(DataError, match=message):
        call()


def test_read_text_files(tmp_path):
    (tmp_path / "a.txt").write_text("first")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("second")
    assert text.read_text_files(tmp_path) == ["first", "second"]
    assert text.read_text_files(tmp_path / "a.txt") == ["first"]
    with pytest.raises(DataError, match="does not exist"):
        text.read_text_files(tmp_path / "missing")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match="not UTF-8"):
        text.read_text_files(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "e.txt").write_text("   ")
    with pytest.raises(DataError, match="empty"):
        text.read_text_files(empty)


# --------------------------------------------------------------------------
# load_text_data
# --------------------------------------------------------------------------


def _cleaned(docs):
    return [t.decode() for t in text.clean_text(tf.constant(docs)).numpy()]


def _rows(ds):
    """All batches of a dataset, concatenated along the batch axis (nested like one batch)."""
    batches = list(ds.as_numpy_iterator())
    return tf.nest.map_structure(lambda *parts: np.concatenate(parts), *batches)


def _assert_right_padded(rows):
    """Zeros only at the end of every row (a suffix mask)."""
    nonzero = rows != 0
    assert np.all(nonzero[:, :-1] | ~nonzero[:, 1:]), "a 0 is followed by a token"


@pytest.fixture(scope="module")
def embedded_char():
    return text.load_text_data("embedded", task="lm", level="char", seq_len=64, batch_size=32)


def test_embedded_split_is_deterministic_and_disjoint(embedded_char):
    data = embedded_char
    docs = text.embedded_paragraphs()
    assert data.train_texts == _cleaned([d for i, d in enumerate(docs) if i % 10 != 9])
    assert data.test_texts == _cleaned([d for i, d in enumerate(docs) if i % 10 == 9])
    assert len(data.test_texts) == len(docs) // 10 and not set(data.train_texts) & set(data.test_texts)
    # pydoc repeats sections under several topics; each paragraph is kept once.
    assert len(docs) == len({" ".join(d.split()) for d in docs}) < sum(d.count("\n\n") + 1 for d in text.embedded_corpus())
    again = text.load_text_data("embedded", task="lm", level="char", seq_len=64, max_examples=5)
    assert again.train_texts == data.train_texts[:5] and again.test_texts == data.test_texts[:5]
    # The streams are the documents' tokens joined by one space, without padding.
    np.testing.assert_array_equal(data.train_ids, token_stream(data.tokenizer, [" ".join(data.train_texts)]))
    np.testing.assert_array_equal(data.test_ids, token_stream(data.tokenizer, [" ".join(data.test_texts)]))
    assert data.train_ids.dtype == data.test_ids.dtype == np.int32 and data.train_ids.min() >= 1
    assert data.vocabulary == data.tokenizer.get_vocabulary()[2:] and data.vocab_size == len(data.vocabulary) + 2


def test_lm_targets_are_inputs_shifted_across_the_stream(embedded_char):
    data, seq_len = embedded_char, 64
    inputs, targets = _rows(data.test)  # not shuffled: windows in stream order
    num = (len(data.test_ids) - 1) // seq_len
    assert inputs.shape == targets.shape == (num, seq_len) and inputs.dtype == np.int32
    np.testing.assert_array_equal(inputs.ravel(), data.test_ids[: num * seq_len])
    np.testing.assert_array_equal(targets.ravel(), data.test_ids[1 : num * seq_len + 1])
    # Train: the same windows over the train stream, shuffled, each epoch differently, none dropped.
    first, second = _rows(data.train), _rows(data.train)
    num = (len(data.train_ids) - 1) // seq_len
    expected = data.train_ids[: num * seq_len].reshape(num, seq_len)
    assert first[0].shape == (num, seq_len)
    assert not np.array_equal(first[0], expected) and not np.array_equal(first[0], second[0])
    np.testing.assert_array_equal(np.unique(first[0], axis=0), np.unique(expected, axis=0))
    np.testing.assert_array_equal(first[1][:, :-1], first[0][:, 1:])
    assert int(data.train.cardinality()) == -(-num // 32) and int(data.test.cardinality()) > 0


def _write_docs(folder, docs):
    folder.mkdir(parents=True, exist_ok=True)
    for i, doc in enumerate(docs):
        (folder / f"doc{i:02d}.txt").write_text(doc, encoding="utf-8")
    return str(folder)


def test_pairs_reconstruct_each_chunk(tmp_path):
    docs = [f"Document {i} says: " + "the quick brown fox jumps over a lazy dog. " * (i % 4 + 1) for i in range(20)]
    path = _write_docs(tmp_path / "docs", docs)
    seq_len = 8
    data = text.load_text_data("text", path=path, task="pairs", level="word", seq_len=seq_len, batch_size=4)
    inputs, targets = _rows(data.test)
    prefix, decoder_inputs = inputs["prefix"], inputs["decoder_inputs"]
    # Expected chunks: up to 2 * seq_len tokens per document, fewer than 4 dropped.
    chunks = []
    for doc in data.test_texts:
        ids = token_stream(data.tokenizer, [doc])
        chunks += [c for c in np.split(ids, range(2 * seq_len, len(ids), 2 * seq_len)) if len(c) >= 4]
    assert prefix.shape == decoder_inputs.shape == targets.shape == (len(chunks), seq_len)
    for chunk, p, d, t in zip(chunks, prefix, decoder_inputs, targets, strict=True):
        mid = len(chunk) // 2
        np.testing.assert_array_equal(p[p != 0], chunk[:mid])
        np.testing.assert_array_equal(t[t != 0], chunk[mid:])
        expected = np.zeros(seq_len, np.int32)
        expected[1 : len(chunk) - mid] = chunk[mid:-1]  # [0, c_0, ..., c_{n-2}]
        np.testing.assert_array_equal(d, expected)
    for rows in (prefix, targets, decoder_inputs[:, 1:]):
        _assert_right_padded(rows)
    assert (decoder_inputs[:, 0] == 0).all()
    # Train batches (shuffled) have the same structure.
    train_inputs, train_targets = _rows(data.train)
    assert set(train_inputs) == {"prefix", "decoder_inputs"} and train_targets.dtype == np.int32
    shifted = np.pad(train_targets[:, :-1], ((0, 0), (1, 0)))
    np.testing.assert_array_equal(train_inputs["decoder_inputs"], np.where(train_targets != 0, shifted, 0))


def test_sentences_are_truncated_and_padded(tmp_path):
    doc = "Hi there. This sentence is rather long for ten chars!   Short? Bye"
    path = _write_docs(tmp_path / "s", [doc] * 10)  # doc 9 -> validation
    data = text.load_text_data("text", path=path, task="sentences", level="char", seq_len=10, batch_size=3)
    x, y = _rows(data.test)
    np.testing.assert_array_equal(x, y)
    assert detokenize(data.tokenizer, x) == ["Hi there.", "This sente", "Short?", "Bye"]
    assert x.shape == (4, 10) and (x[:, -1] != 0).tolist() == [False, True, False, False]
    _assert_right_padded(x)
    # Word level: a one-word sentence ("bye") is dropped; punctuation is a token.
    words = text.load_text_data("text", path=path, task="sentences", level="word", seq_len=5, batch_size=3)
    x, _ = _rows(words.test)
    assert detokenize(words.tokenizer, x) == ["hi there .", "this sentence is rather long", "short ?"]
    assert int(words.train.cardinality()) == 9  # 27 sentences / 3
    _assert_right_padded(_rows(words.train)[0])


@pytest.mark.parametrize("level", ["char", "word"])
def test_tokenizer_from_vocabulary_round_trip(embedded_char, level, tmp_path):
    data = embedded_char if level == "char" else text.load_text_data("embedded", level="word", seq_len=32)
    rebuilt = text.tokenizer_from_vocabulary(data.vocabulary, level)
    assert rebuilt.get_vocabulary() == data.tokenizer.get_vocabulary()
    sample = tf.constant(["The for statement<br />is used to iterate. Zebra ~ ŵ!", data.test_texts[0][:500]])
    np.testing.assert_array_equal(rebuilt(sample).numpy(), data.tokenizer(sample).numpy())
    again = text.load_text_data("embedded", level=level, seq_len=32, vocabulary=data.vocabulary)
    np.testing.assert_array_equal(again.test_ids, data.test_ids)
    assert again.vocabulary == data.vocabulary
    # It saves with a model like an adapted tokenizer.
    inputs = keras.Input(shape=(1,), dtype="string")
    model = keras.Model(inputs, rebuilt(inputs))
    model.save(tmp_path / "tok.keras")
    loaded = keras.models.load_model(tmp_path / "tok.keras")
    np.testing.assert_array_equal(loaded(sample[:, None]).numpy(), model(sample[:, None]).numpy())


def test_text_folder_and_file_sources(tmp_path):
    docs = [f"file {i} abc" for i in range(11)] + ["xyz only here"]  # doc 9 -> validation
    docs[9] = "zzz validation"
    folder = _write_docs(tmp_path / "folder", docs)
    data = text.load_text_data("text", path=folder, task="lm", seq_len=4, batch_size=2)
    assert data.test_texts == ["zzz validation"] and len(data.train_texts) == 11
    # The tokenizer is adapted on the train texts only: unseen 'v' maps to [UNK].
    assert "v" not in data.vocabulary and 1 in data.test_ids and 1 not in data.train_ids
    # One file: paragraphs are documents.
    paragraphs = [f"Paragraph {i}\nhas two lines." for i in range(20)]
    one = tmp_path / "one.txt"
    one.write_text("\n\n".join(paragraphs))
    data = text.load_text_data("text", path=str(one), task="lm", seq_len=4)
    assert data.test_texts == ["Paragraph 9 has two lines.", "Paragraph 19 has two lines."]
    assert len(data.train_texts) == 18
    # One paragraph of few lines: the last 10% of the characters, cut at a space.
    short = tmp_path / "short.txt"
    short.write_text("alpha beta gamma delta epsilon\nzeta eta theta iota kappa lambda mu")
    data = text.load_text_data("text", path=str(short), task="lm", seq_len=4)
    assert data.train_texts == ["alpha beta gamma delta epsilon", "zeta eta theta iota kappa lambda"]
    assert data.test_texts == ["mu"] and data.test is None  # 2 tokens: not one window of 5


def _write_aclimdb(root, counts):
    for sub, n in counts.items():
        folder = root / sub
        folder.mkdir(parents=True)
        for i in range(n):
            (folder / f"{i}_7.txt").write_text(f"{sub} review {i}.<br /><br />It  was fine.", encoding="utf-8")


def test_aclimdb_folder(tmp_path):
    root = tmp_path / "aclImdb"
    _write_aclimdb(root, {"train/pos": 3, "train/neg": 2, "test/pos": 2, "test/neg": 2, "train/unsup": 4})
    data = text.load_text_data("aclimdb", path=str(root), task="lm", level="word", seq_len=4, batch_size=2)
    assert data.train_texts[:3] == [
        "train/pos review 0. It was fine.",
        "train/neg review 0. It was fine.",
        "train/pos review 1. It was fine.",
    ]
    assert len(data.train_texts) == 5 and not any("unsup" in t or "<br" in t for t in data.train_texts)
    assert len(data.test_texts) == 4 and all(t.startswith("test/") for t in data.test_texts)
    # The parent of aclImdb/ works too; unsup only when asked for.
    data = text.load_text_data("aclimdb", path=str(tmp_path), unsupervised=True, seq_len=4, max_examples=6)
    assert [t.split()[0] for t in data.train_texts] == ["train/pos", "train/neg", "train/unsup"] * 2
    assert len(data.test_texts) == 4
    (root / "test" / "neg").rename(tmp_path / "elsewhere")
    with pytest.raises(DataError, match=r"test/neg is missing.*train/pos/\*\.txt"):
        text.load_text_data("aclimdb", path=str(root))


def test_imdb_reviews_under_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=8):
        data = text.load_text_data("imdb_reviews", task="lm", seq_len=8, batch_size=4, data_dir=str(tmp_path))
        more = text.load_text_data("imdb_reviews", task="sentences", seq_len=8, unsupervised=True, max_examples=5)
    assert len(data.train_texts) == len(data.test_texts) == 8
    assert all(isinstance(t, str) and t == " ".join(t.split()) for t in data.train_texts)
    inputs, targets = next(iter(data.train))
    assert inputs.shape == targets.shape == (4, 8) and inputs.dtype == tf.int32
    assert len(more.train_texts) == len(more.test_texts) == 5


def test_imdb_reviews_not_prepared_fails_fast(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from aigc_tf.data import images

    def no_download(self, *args, **kwargs):
        raise AssertionError("download_and_prepare must not be reached offline")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    with pytest.raises(DataError, match=r"not prepared.*data.download is false.*aclImdb_v1.tar.gz.*data.name=aclimdb"):
        text.load_text_data("imdb_reviews", data_dir=str(tmp_path), download=False)
    calls = []
    monkeypatch.setattr(images, "_can_download", lambda *args: calls.append(args) or False)
    with pytest.raises(DataError, match=r"cannot be downloaded offline \(ai.stanford.edu:80 unreachable\)"):
        text.load_text_data("imdb_reviews", data_dir=str(tmp_path), download=True)
    assert calls == [("ai.stanford.edu", 80)]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "wikitext"}, "unknown text dataset 'wikitext'.*embedded, text, imdb_reviews, aclimdb"),
        ({"name": "embedded", "level": "bpe"}, "unknown tokenizer 'bpe'"),
        ({"name": "embedded", "task": "classify"}, "unknown text task 'classify'.*lm, pairs, sentences"),
        ({"name": "embedded", "seq_len": 0}, "data.seq_len=0 must be"),
        ({"name": "text"}, "needs data.path"),
        ({"name": "aclimdb", "path": "/nonexistent/aclImdb"}, "does not exist.*aclImdb_v1.tar.gz"),
    ],
)
def test_load_text_data_errors(kwargs, message):
    with pytest.raises(DataError, match=message):
        text.load_text_data(**kwargs)


def test_empty_and_too_short_corpus(tmp_path):
    markup = tmp_path / "markup.txt"
    markup.write_text("<br /><br />  \n <br/>")
    with pytest.raises(DataError, match="is empty"):
        text.load_text_data("text", path=str(markup))
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("just a few words here")
    with pytest.raises(DataError, match="fewer than one window"):
        text.load_text_data("text", path=str(tiny), seq_len=64)


@pytest.mark.parametrize("task", ["lm", "pairs", "sentences"])
def test_known_cardinality_and_padding(task):
    data = text.load_text_data("embedded", task=task, level="word", seq_len=16, batch_size=64, max_examples=8)
    for ds in (data.train, data.test):
        batches = list(ds.as_numpy_iterator())
        assert int(ds.cardinality()) == len(batches) > 0
        x, y = tf.nest.map_structure(lambda *parts: np.concatenate(parts), *batches)
        for rows in [y] + ([x["prefix"]] if task == "pairs" else [x]):
            assert rows.dtype == np.int32 and rows.shape[1] == 16
            if task != "lm":
                _assert_right_padded(rows)
            else:
                assert (rows != 0).all()


def test_random_windows_shift_training_windows_but_keep_them_aligned():
    import tensorflow as tf

    tf.random.set_seed(0)
    data = text.load_text_data("embedded", task="lm", level="char", seq_len=16, batch_size=64, max_examples=20,
                               random_windows=True)
    stream = data.train_ids
    starts = []
    for _ in range(2):  # two epochs
        epoch = []
        for inputs, targets in data.train:
            for x, y in zip(inputs.numpy(), targets.numpy()):
                # Every row is a real slice of the stream, and targets are inputs shifted by one.
                matches = np.flatnonzero(np.all(np.lib.stride_tricks.sliding_window_view(stream, 16) == x, axis=1))
                # (A 16-character window can occur more than once: some occurrence must continue with y.)
                hits = [int(m) for m in matches if np.array_equal(stream[m + 1 : m + 17], y)]
                assert hits, "targets are not the inputs shifted by one"
                epoch.append(hits[0])
        starts.append(sorted(epoch))
    assert len(starts[0]) == (len(stream) - 1) // 16 - 1
    assert {s % 16 for s in starts[0]} != {0}  # not only the fixed cut points
    assert starts[0] != starts[1]  # new shifts each epoch


def test_random_pairs_cut_chunks_anywhere_in_their_document(tmp_path):
    import tensorflow as tf

    tf.random.set_seed(0)
    docs = [f"Document {i} says: " + "the quick brown fox jumps over a lazy dog. " * (i % 4 + 1) for i in range(40)]
    path = _write_docs(tmp_path / "docs", docs)
    seq_len = 6
    kw = {"path": path, "task": "pairs", "level": "word", "seq_len": seq_len, "batch_size": 8}
    fixed = text.load_text_data("text", **kw)
    data = text.load_text_data("text", random_windows=True, **kw)
    train_docs = [token_stream(data.tokenizer, [d]) for d in data.train_texts]
    epochs = []
    for _ in range(2):
        inputs, targets = _rows(data.train)
        # As many rows as the fixed chunks; validation rows are unchanged.
        assert len(targets) == len(_rows(fixed.train)[1])
        np.testing.assert_array_equal(_rows(data.test)[1], _rows(fixed.test)[1])
        shifted = np.pad(targets[:, :-1], ((0, 0), (1, 0)))
        np.testing.assert_array_equal(inputs["decoder_inputs"], np.where(targets != 0, shifted, 0))
        for rows in (inputs["prefix"], targets):
            _assert_right_padded(rows)
        starts = []
        for p, t in zip(inputs["prefix"], targets, strict=True):
            p, t = p[p != 0], t[t != 0]
            chunk = np.concatenate([p, t])
            # A contiguous slice of one training document, as long as it can be, split in the middle.
            hits = [(d, s) for d, ids in enumerate(train_docs) for s in range(len(ids) - len(chunk) + 1)
                    if len(chunk) == min(2 * seq_len, len(ids)) and np.array_equal(ids[s : s + len(chunk)], chunk)]
            assert hits and len(p) == len(chunk) // 2
            starts.append(hits[0][1])
        epochs.append(starts)
    assert any(s % (2 * seq_len) for s in epochs[0])  # not only the fixed cut points
    assert epochs[0] != epochs[1]  # new cuts each epoch
