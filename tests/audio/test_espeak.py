"""The embedded spoken_digits renderer: deterministic across processes, a fixed voice split."""

import numpy as np
import pytest

from aigc_tf.audio import espeak


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    folder = tmp_path_factory.mktemp("espeak")
    espeak.render(8, folder / "a.npz")
    espeak.render(8, folder / "b.npz")
    espeak.render(16, folder / "c.npz")
    return [dict(np.load(folder / f"{k}.npz")) for k in "abc"]


def test_two_processes_render_byte_identical_clips(renders):
    a, b, _ = renders
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_the_first_voices_are_the_same_whatever_the_voice_count(renders):
    a, _, c = renders
    n = len(a["samples"])
    np.testing.assert_array_equal(c["samples"][:n], a["samples"])
    np.testing.assert_array_equal(c["offsets"][: len(a["offsets"])], a["offsets"])
    assert len(c["labels"]) == 160 and len(a["labels"]) == 80


def test_each_voice_says_each_digit_once_with_its_own_rate_and_pitch(renders):
    _, _, c = renders
    assert c["labels"].tolist() == list(range(10)) * 16
    assert c["voices"].tolist() == [v for v in range(16) for _ in range(10)]
    assert (c["rate"] >= 150).all() and (c["rate"] <= 200).all() and len(set(c["rate"].tolist())) > 10
    lengths = np.diff(c["offsets"])
    assert lengths.min() > 0.1 * espeak.NATIVE_RATE and lengths.max() < espeak.NATIVE_RATE  # words, not silence
    names = c["voice_names"].tolist()
    assert names[:8] == [f"{d}+{espeak.variants()[0]}" for d in espeak.DIALECTS]


def test_test_voices_are_whole_variants_in_every_dialect():
    names = espeak.voice_names()
    assert len(names) == len(espeak.DIALECTS) * len(espeak.variants()) == 832
    test = [n for i, n in enumerate(names) if espeak.is_test_voice(i)]
    test_variants = {n.split("+")[1] for n in test}
    assert len(test) == len(test_variants) * len(espeak.DIALECTS)  # every dialect of a held-out variant
    train_variants = {n.split("+")[1] for i, n in enumerate(names) if not espeak.is_test_voice(i)}
    assert not test_variants & train_variants
    assert 0.15 < len(test) / len(names) < 0.25


def test_trim_silence_keeps_the_loud_part():
    x = np.zeros(100, np.int16)
    x[30:40] = 1000
    x[35] = -2000
    np.testing.assert_array_equal(espeak.trim_silence(x), x[30:40])
    assert len(espeak.trim_silence(np.zeros(10, np.int16))) == 0
