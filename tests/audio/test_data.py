"""Audio sources: folders of WAV files the tests write, tfds under mock_data, the embedded renders."""

import wave

import numpy as np
import pytest
import tensorflow_datasets as tfds

from aigc_tf.audio import data as audio_data
from aigc_tf.audio.task import AudioDataConfig
from aigc_tf.errors import UserError


def _write(path, samples, rate, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.asarray(samples, "<i2").tobytes())


def _tone(freq, rate, seconds):
    return (8000 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)).astype(np.int16)


def _cfg(**kw):
    return AudioDataConfig(**{"batch_size": 2, "sample_rate": 8000, "clip_length": 4000, **kw})


def test_label_folders_stereo_8khz_and_wrong_lengths_become_fixed_mono_clips(tmp_path):
    for i in range(10):
        _write(tmp_path / "low" / f"{i}.wav", _tone(200, 16000, 0.3), 16000)  # 16 kHz, short
        stereo = np.stack([_tone(1000, 8000, 0.8), np.zeros(6400, np.int16)], axis=1).reshape(-1)
        _write(tmp_path / "high" / f"{i}.wav", stereo, 8000, channels=2)  # stereo, too long
    train, classes, _ = audio_data.load_clips(_cfg(name="folder", path=str(tmp_path)), "train")
    test, _, where = audio_data.load_clips(_cfg(name="folder", path=str(tmp_path)), "test")
    assert classes == ["high", "low"] and "hold-out" in where
    assert len(train.labels) + len(test.labels) == 20 and len(test.labels) == 2
    assert train.audio.shape[1] == 4000 and train.audio.dtype == np.float32
    low = train.audio[train.labels == 1][0]
    # 0.3 s at 16 kHz -> 2,400 samples at 8 kHz, then silence.
    assert np.abs(low[:2300]).max() > 0.2 and np.abs(low[2450:]).max() == 0
    spectrum = np.abs(np.fft.rfft(low[:2400]))
    assert abs(np.argmax(spectrum) * 8000 / 2400 - 200) < 5  # still a 200 Hz tone after resampling
    high = train.audio[train.labels == 0][0]
    # Stereo (tone, silence) mixes to half the tone; 0.8 s is cropped to 0.5 s.
    np.testing.assert_allclose(np.abs(high).max(), 0.5 * 8000 / 32768, rtol=1e-3)


def test_flat_folder_labels_from_the_file_name_pattern(tmp_path):
    for digit in ("0", "7"):
        for speaker in ("jackson", "nicolas"):
            for n in range(5):
                _write(tmp_path / f"{digit}_{speaker}_{n}.wav", _tone(300, 8000, 0.2), 8000)
    d = _cfg(name="folder", path=str(tmp_path), label_pattern="{label}_{speaker}_{n}.wav")
    train, classes, _ = audio_data.load_clips(d, "train")
    assert classes == ["0", "7"] and audio_data.class_names(d) == ["0", "7"]
    assert sorted(set(train.labels.tolist())) == [0, 1]
    _write(tmp_path / "stray.wav", _tone(300, 8000, 0.2), 8000)
    with pytest.raises(UserError, match="stray.wav.*label_pattern"):
        audio_data.load_clips(d, "train")


def test_a_corrupt_or_empty_file_is_one_clear_error_naming_it(tmp_path):
    _write(tmp_path / "a" / "good.wav", _tone(300, 8000, 0.2), 8000)
    (tmp_path / "a" / "broken.wav").write_bytes(b"RIFF\x00\x00junk")
    with pytest.raises(UserError, match=r"broken\.wav: not a readable 16-bit PCM WAV"):
        audio_data.decode_wav_file(tmp_path / "a" / "broken.wav")
    _write(tmp_path / "b" / "empty.wav", np.zeros(0, np.int16), 8000)
    with pytest.raises(UserError, match="empty.wav: the WAV file holds no samples"):
        audio_data.decode_wav_file(tmp_path / "b" / "empty.wav")
    with pytest.raises(UserError, match="no sub-folders"):
        audio_data.folder_files(str(tmp_path / "a"), None)
    with pytest.raises(UserError, match="not a folder"):
        audio_data.folder_files(str(tmp_path / "missing"), None)


@pytest.mark.parametrize("name, classes", [("speech_commands", 12), ("spoken_digit", 10), ("nsynth", 128)])
def test_tfds_sources_under_mock_data(name, classes, tmp_path):
    d = _cfg(name=name, data_dir=str(tmp_path), download=False, sample_rate=16000, clip_length=1000)
    with tfds.testing.mock_data(num_examples=20):
        train, names, _ = audio_data.load_clips(d, "train")
        test, _, _ = audio_data.load_clips(d, "test")
    assert len(names) == classes
    assert train.audio.shape[1:] == (1000,) and train.audio.dtype == np.float32
    assert np.abs(train.audio).max() <= 1.0 and np.abs(train.audio).max() > 0  # mocked clips are short or in [0, 1)
    assert len(test.labels) >= 2 and train.labels.max() < classes


def test_spoken_digits_splits_and_batches(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_TF_CACHE", str(tmp_path))
    d = _cfg(name="spoken_digits", voices=40, sample_rate=16000, clip_length=16000, batch_size=32)
    data = audio_data.load_audio_data(d, seed=0)
    assert (len(data.train_clips.labels), len(data.test_clips.labels)) == (320, 80)
    assert data.class_names[7] == "seven" and data.num_classes == 10
    batch = next(iter(data.train))
    assert batch["audio"].shape == (32, 16000) and batch["labels"].shape == (32,)
    clip = data.train_clips.audio[0]
    loud = np.nonzero(np.abs(clip) > 0.01)[0]
    assert abs((loud[0] + loud[-1]) / 2 - 8000) < 800  # centred
    with pytest.raises(UserError, match="data.voices=8 leaves no test voices"):
        audio_data.load_clips(_cfg(name="spoken_digits", voices=8), "test")
