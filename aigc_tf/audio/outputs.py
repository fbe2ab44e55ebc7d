"""What a person listens to or looks at: WAV files, a PNG grid of
spectrograms, TensorBoard audio summaries."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def pcm16(waveforms) -> np.ndarray:
    """Float waveforms in [-1, 1] -> int16 samples (``round(clip(x) * 32767)``)."""
    return np.round(np.clip(np.asarray(waveforms, np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """A mono 16-bit PCM WAV file (``samples``: int16, or float in [-1, 1])."""
    data = samples if samples.dtype == np.int16 else pcm16(samples)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(int(sample_rate))
        f.writeframes(data.astype("<i2").tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """``(int16 samples, rate)`` of a mono 16-bit WAV file written by :func:`write_wav`."""
    with wave.open(str(path), "rb") as f:
        return np.frombuffer(f.readframes(f.getnframes()), "<i2").copy(), f.getframerate()


def write_clips(folder: Path, waveforms, sample_rate: int, names: list[str] | None = None) -> list[Path]:
    """One WAV per clip: ``000.wav`` ... (``000_seven.wav`` with label names)."""
    paths = []
    for i, clip in enumerate(np.asarray(waveforms)):
        stem = f"{i:03d}" if names is None else f"{i:03d}_{names[i]}"
        paths.append(folder / f"{stem}.wav")
        write_wav(paths[-1], clip, sample_rate)
    return paths


def spectrogram_grid(waveforms, sample_rate: int, path: Path, titles: list[str] | None = None,
                     columns: int = 4) -> None:
    """A PNG of log-magnitude spectrograms (time across, frequency up), one panel per clip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aigc_tf.audio import features

    waves = np.asarray(waveforms, np.float32)
    frame = 1 << (max(16, round(0.032 * sample_rate)) - 1).bit_length()
    spec = features.log_magnitude(waves, frame, frame // 4).numpy()
    rows = -(-len(waves) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3 * columns, 2.2 * rows), squeeze=False)
    duration = waves.shape[1] / sample_rate
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(waves):
            ax.imshow(spec[i].T, origin="lower", aspect="auto", cmap="magma", vmin=-10, vmax=spec.max(),
                      extent=(0, duration, 0, sample_rate / 2000))
            if titles:
                ax.set_title(titles[i], fontsize=9)
    fig.suptitle(f"log |STFT|, 0-{duration:.2f} s, 0-{sample_rate / 2000:g} kHz", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def tensorboard_audio(log_dir: Path, waveforms, sample_rate: int, step: int, name: str = "samples") -> None:
    """``tf.summary.audio`` of the clips at ``step`` (shown in TensorBoard's Audio tab)."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        tf.summary.audio(name, np.asarray(waveforms, np.float32)[..., None], sample_rate, step=step,
                         max_outputs=len(waveforms))
    writer.close()
