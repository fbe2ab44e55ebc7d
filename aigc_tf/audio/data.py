"""Audio sources -> fixed-length mono clips in [-1, 1] -> ``tf.data`` batches.

Sources (``data.name``):

- ``spoken_digits`` (embedded, offline): "zero" to "nine" by espeak-ng
  (:mod:`aigc_tf.audio.espeak`), rendered once and cached.
- ``speech_commands``, ``spoken_digit``, ``nsynth``: tfds (``nsynth`` is
  conditioned on pitch).
- ``folder``: WAV files under ``data.path``, one sub-folder per label (the
  layout ``keras.utils.audio_dataset_from_directory`` reads), or a flat
  folder whose labels come from the file names through
  ``data.label_pattern`` (e.g. ``"{label}_{speaker}_{n}.wav"``, the Free
  Spoken Digit Dataset's).

Every clip is decoded (``tf.audio.decode_wav`` for files), mixed to mono,
resampled to ``data.sample_rate`` with ``scipy.signal.resample_poly``
(tensorflow-io, which Keras' own resampling needs, has no release for TF 2.21),
then padded with silence or cropped to ``data.clip_length`` samples: the
espeak clips (silence trimmed) are centred, every other source keeps its
start. The clips sit in memory as one float32 array, so the pipeline is
slices -> shuffle -> batch -> prefetch (``benchmarks/audio_pipeline.py``
measures it against a training step).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np

from aigc_tf.errors import UserError

# Hosts that each builder's download needs (checked with one short connect before downloading).
_DOWNLOAD_HOSTS = {
    "speech_commands": ("download.tensorflow.org", 443),
    "spoken_digit": ("github.com", 443),
    "nsynth": ("storage.googleapis.com", 443),
}
HOLD_OUT_FRACTION = 0.1  # sources without a test split hold out a fixed 10%
_TFDS = {
    # name: (audio feature, label feature, native rate, test split or None)
    "speech_commands": ("audio", "label", 16_000, "test"),
    "spoken_digit": ("audio", "label", 8_000, None),
    "nsynth": ("audio", "pitch", 16_000, "test"),
}


@dataclasses.dataclass
class Clips:
    """Fixed-length clips of one split: ``audio`` ``(n, clip_length)`` float32 in [-1, 1], ``labels`` ``(n,)``."""

    audio: np.ndarray
    labels: np.ndarray


@dataclasses.dataclass
class AudioData:
    """What a task gets from :func:`load_audio_data`."""

    train: object  # tf.data.Dataset of {"audio": (batch, clip_length), "labels": (batch,)}
    test: object | None
    train_clips: Clips
    test_clips: Clips
    sample_rate: int
    clip_length: int
    num_classes: int
    class_names: list[str]
    test_split: str  # which clips the test side holds ("test", or "hold-out 10% of train")


def resample(clip: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``clip`` at ``rate`` Hz -> ``target`` Hz (polyphase, Kaiser-windowed FIR)."""
    if rate == target:
        return clip.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    return resample_poly(clip.astype(np.float64), target // g, rate // g).astype(np.float32)


def fit_length(clip: np.ndarray, length: int, centre: bool = False) -> np.ndarray:
    """Pad with silence or crop to ``length`` samples (centred, or from the start)."""
    out = np.zeros(length, np.float32)
    n = len(clip)
    if centre:
        if n >= length:
            start = (n - length) // 2
            return clip[start : start + length].astype(np.float32)
        start = (length - n) // 2
        out[start : start + n] = clip
        return out
    out[: min(n, length)] = clip[:length]
    return out


def to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM -> float in [-1, 1); float input is kept (clipped to [-1, 1])."""
    if np.issubdtype(samples.dtype, np.integer):
        return samples.astype(np.float32) / float(-np.iinfo(samples.dtype).min)
    return np.clip(samples.astype(np.float32), -1.0, 1.0)


def to_mono(samples: np.ndarray) -> np.ndarray:
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def _cache_root() -> Path:
    from aigc_tf.metrics.classifier import cache_root

    return cache_root() / "audio"


# ---------------------------------------------------------------- spoken_digits
def spoken_digit_renders(num_voices: int | None) -> dict[str, np.ndarray]:
    """The espeak-ng renders (cached by voice count and renderer version)."""
    from aigc_tf.audio import espeak
    from aigc_tf.locking import exclusive

    path = _cache_root() / f"spoken_digits-v{espeak.RENDER_VERSION}-{num_voices or 'all'}.npz"
    with exclusive(path.parent / ".locks" / f"{path.name}.lock"):  # one render, however many processes ask
        if not path.exists():
            espeak.render(num_voices, path)
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _spoken_digits(d, split: str) -> tuple[list[np.ndarray], np.ndarray, int, list[str], str]:
    from aigc_tf.audio import espeak

    r = spoken_digit_renders(d.voices)
    keep = r["test"] if split == "test" else ~r["test"]
    if not keep.any():
        need = len(espeak.DIALECTS) * espeak.TEST_EVERY
        raise UserError(f"data.voices={d.voices} leaves no {split} voices (every {espeak.TEST_EVERY}th variant is "
                        f"held out, {len(espeak.DIALECTS)} voices per variant); use data.voices >= {need} or null")
    offsets = r["offsets"]
    clips = [to_float(r["samples"][offsets[i] : offsets[i + 1]]) for i in np.nonzero(keep)[0]]
    return clips, r["labels"][keep], espeak.NATIVE_RATE, list(espeak.DIGITS), "test (held-out voices)"


# ------------------------------------------------------------------- folders
def decode_wav_file(path: Path) -> tuple[np.ndarray, int]:
    """``(mono float samples, rate)`` of a 16-bit PCM WAV file; one clear error for a bad one."""
    import tensorflow as tf

    try:
        audio, rate = tf.audio.decode_wav(tf.io.read_file(str(path)))
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as exc:
        reason = exc.message.splitlines()[0] if exc.message else type(exc).__name__
        raise UserError(f"{path}: not a readable 16-bit PCM WAV file ({reason}); "
                        f"convert it (e.g. sox in.wav -b 16 out.wav) or remove it") from None
    audio = audio.numpy()
    if audio.shape[0] == 0:
        raise UserError(f"{path}: the WAV file holds no samples; remove it")
    return to_mono(audio), int(rate.numpy())


def _pattern_regex(pattern: str) -> re.Pattern:
    """``"{label}_{speaker}_{n}.wav"`` -> a regex with a ``label`` group (other fields match anything)."""
    if "{label}" not in pattern:
        raise UserError(f"data.label_pattern {pattern!r} must contain {{label}}")
    parts = re.split(r"(\{\w+\})", pattern)
    regex = "".join(
        "(?P<label>.+?)" if p == "{label}" else ".+?" if re.fullmatch(r"\{\w+\}", p) else re.escape(p) for p in parts
    )
    return re.compile(regex + r"\Z")


def folder_files(path: str, label_pattern: str | None) -> tuple[list[Path], list[str]]:
    """``(files, label names)`` of a folder source, sorted (labels: sub-folders or file names)."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"data.path={path!r} is not a folder of WAV files; set data.path to one")
    if label_pattern:
        regex = _pattern_regex(label_pattern)
        files = sorted(p for p in root.iterdir() if p.suffix.lower() == ".wav")
        labels = []
        for f in files:
            m = regex.match(f.name)
            if not m:
                raise UserError(f"{f}: the file name does not match data.label_pattern={label_pattern!r}; "
                                f"rename it or fix the pattern")
            labels.append(m.group("label"))
    else:
        subfolders = sorted(p for p in root.iterdir() if p.is_dir())
        if not subfolders:
            raise UserError(f"{root} has no sub-folders (one per label); put the WAV files in label folders, "
                            f"or set data.label_pattern to read labels from flat file names")
        files, labels = [], []
        for sub in subfolders:
            for f in sorted(sub.iterdir()):
                if f.suffix.lower() == ".wav":
                    files.append(f)
                    labels.append(sub.name)
    if not files:
        raise UserError(f"{root} holds no .wav files")
    return files, labels


def _hold_out(n: int, split: str) -> np.ndarray:
    """Indices of a split of ``n`` items for sources without a test split (fixed 10% hold-out)."""
    test = np.random.default_rng(12345).permutation(n)[: max(1, int(round(n * HOLD_OUT_FRACTION)))]
    mask = np.zeros(n, bool)
    mask[test] = True
    return np.nonzero(mask if split == "test" else ~mask)[0]


def _folder(d, split: str):
    files, names = folder_files(d.path, d.label_pattern)
    classes = sorted(set(names))
    index = _hold_out(len(files), split)
    clips = []
    for i in index:
        samples, rate = decode_wav_file(files[i])
        clips.append(resample(samples, rate, d.sample_rate))
    labels = np.array([classes.index(names[i]) for i in index], np.int32)
    return clips, labels, d.sample_rate, classes, f"{'hold-out' if split == 'test' else 'train'} " \
        f"({HOLD_OUT_FRACTION:.0%} of the files held out)"


# ---------------------------------------------------------------------- tfds
def _tfds(d, split: str):
    import tensorflow_datasets as tfds

    from aigc_tf.data.images import prepared_tfds_builder

    audio_key, label_key, rate, test_split = _TFDS[d.name]
    get_it = (f"prepare it with `tfds build {d.name}` on a machine with network and point data.data_dir at the "
              f"copy, or use data.name: spoken_digits (offline) or data.name: folder")
    builder = prepared_tfds_builder(d.name, d.data_dir, d.download, _DOWNLOAD_HOSTS[d.name], get_it)
    if test_split is None:
        ds, index = builder.as_dataset(split="train"), None
        items = list(tfds.as_numpy(ds))
        index = _hold_out(len(items), split)
        items = [items[i] for i in index]
        where = f"{'hold-out' if split == 'test' else 'train'} ({HOLD_OUT_FRACTION:.0%} of train held out)"
    else:
        items = list(tfds.as_numpy(builder.as_dataset(split="test" if split == "test" else "train")))
        where = split
    if d.max_examples:
        items = items[: d.max_examples]
    if not items:
        raise UserError(f"tfds dataset {d.name!r} has no examples in its {split} split")
    label_feature = builder.info.features[label_key]
    classes = list(label_feature.names) if hasattr(label_feature, "names") else \
        [str(i) for i in range(label_feature.num_classes)]
    clips = [resample(to_float(np.asarray(x[audio_key])).reshape(-1), rate, d.sample_rate) for x in items]
    labels = np.array([int(x[label_key]) for x in items], np.int32)
    return clips, labels, d.sample_rate, classes, where


# ------------------------------------------------------------------- public
def load_clips(d, split: str) -> tuple[Clips, list[str], str]:
    """``(clips, class names, split description)`` of ``split`` (``"train"``/``"test"``) of a ``data:`` section."""
    if d.name == "spoken_digits":
        raw, labels, rate, classes, where = _spoken_digits(d, split)
    elif d.name == "folder":
        raw, labels, rate, classes, where = _folder(d, split)
    elif d.name in _TFDS:
        raw, labels, rate, classes, where = _tfds(d, split)
    else:
        raise UserError(f"unknown audio dataset {d.name!r}")
    centre = d.name == "spoken_digits"
    audio = np.stack([fit_length(resample(c, rate, d.sample_rate), d.clip_length, centre) for c in raw])
    if d.max_examples:
        audio, labels = audio[: d.max_examples], labels[: d.max_examples]
    return Clips(audio, labels.astype(np.int32)), classes, where


def batches(clips: Clips, batch_size: int, shuffle_buffer: int = 0, seed: int = 0, drop_remainder: bool = True):
    """``{"audio", "labels"}`` batches from in-memory clips (shuffled when ``shuffle_buffer``)."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices({"audio": clips.audio, "labels": clips.labels})
    if shuffle_buffer:
        ds = ds.shuffle(min(shuffle_buffer, len(clips.labels)), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def load_audio_data(d, seed: int = 0) -> AudioData:
    """The train and test pipelines of a ``data:`` section (:class:`aigc_tf.tasks.audio.AudioDataConfig`)."""
    train, classes, _ = load_clips(d, "train")
    test, _, where = load_clips(d, "test")
    if len(train.labels) < d.batch_size:
        raise UserError(f"the training split has {len(train.labels)} clips, fewer than data.batch_size="
                        f"{d.batch_size}; lower data.batch_size")
    return AudioData(
        train=batches(train, d.batch_size, d.shuffle_buffer, seed),
        test=batches(test, d.batch_size, drop_remainder=False) if len(test.labels) else None,
        train_clips=train, test_clips=test, sample_rate=d.sample_rate, clip_length=d.clip_length,
        num_classes=len(classes), class_names=classes, test_split=where,
    )


def data_key(d) -> str:
    """A short hash of what decides the clips (for caches of things trained on them)."""
    fields = {k: getattr(d, k) for k in ("name", "path", "label_pattern", "sample_rate", "clip_length", "voices",
                                         "max_examples")}
    if fields["path"]:
        fields["path"] = str(Path(fields["path"]).resolve())
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def class_names(d) -> list[str]:
    """The label names of a ``data:`` section, without decoding any audio."""
    if d.name == "spoken_digits":
        from aigc_tf.audio import espeak

        return list(espeak.DIGITS)
    if d.name == "folder":
        return sorted(set(folder_files(d.path, d.label_pattern)[1]))
    import tensorflow_datasets as tfds

    feature = tfds.builder(d.name, data_dir=d.data_dir).info.features[_TFDS[d.name][1]]
    return list(feature.names) if hasattr(feature, "names") else [str(i) for i in range(feature.num_classes)]
