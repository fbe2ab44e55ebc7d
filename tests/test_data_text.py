"""Text groundwork: embedded corpus, cleaning, tokenisers, LM windows, errors."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aigc_tf.data import text
from aigc_tf.errors import DataError


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
    assert text.detokenize(tok, ids) == ["Hello, world!"]
    assert tok(tf.constant(["Z"])).numpy()[0, 0] == 1  # unseen character -> [UNK]


def test_word_tokenizer_keeps_punctuation_as_tokens():
    tok = text.build_tokenizer(["The cat sat.<br />The dog, too!"], "word")
    vocab = tok.get_vocabulary()
    for token in ("the", "cat", ".", ",", "!"):
        assert token in vocab
    ids = tok(tf.constant(["The cat, too."])).numpy()
    assert text.detokenize(tok, ids) == ["the cat , too ."]


def test_tokenizer_saves_with_a_model(tmp_path):
    tok = text.build_tokenizer(["The cat sat. The dog ran!"], "word")
    inputs = keras.Input(shape=(1,), dtype="string")
    model = keras.Model(inputs, tok(inputs))
    model.save(tmp_path / "tok.keras")
    loaded = keras.models.load_model(tmp_path / "tok.keras")
    x = tf.constant([["The dog sat!"]])
    np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())


def test_lm_windows_shift_by_one_token():
    ids = np.arange(2, 2 + 41, dtype=np.int32)  # 41 tokens -> 40 input/target pairs
    ds = text.lm_windows(ids, seq_len=8, batch_size=2, shuffle=False)
    batches = list(ds)
    inputs = np.concatenate([b[0].numpy() for b in batches])
    targets = np.concatenate([b[1].numpy() for b in batches])
    assert inputs.shape == targets.shape == (5, 8)
    np.testing.assert_array_equal(targets[:, :-1], inputs[:, 1:])
    np.testing.assert_array_equal(inputs.ravel(), ids[:40])
    np.testing.assert_array_equal(targets.ravel(), ids[1:41])


def test_token_stream_drops_padding():
    tok = text.build_tokenizer(["ab", "abc"], "char")
    stream = text.token_stream(tok, ["ab", "abc"])
    assert text.detokenize(tok, stream[None])[0] == "ababc"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: text.build_tokenizer(["x"], "bpe"), "unknown tokenizer 'bpe'"),
        (lambda: text.build_tokenizer(["", "  "], "char"), "the corpus is empty"),
        (lambda: text.lm_windows(np.arange(5), seq_len=8, batch_size=1), "fewer than one window"),
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
