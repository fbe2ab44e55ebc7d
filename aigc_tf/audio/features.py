"""Spectrogram features with ``tf.signal``, and Griffin-Lim back to audio.

``tf.signal`` gives the STFT, its inverse and the mel filterbank; neither
TensorFlow nor Keras ships Griffin-Lim, so :func:`griffin_lim` is written
here (the fast variant with momentum, Perraudin et al. 2013, as librosa's
``griffinlim`` uses by default).

Framing is ``pad_end=False`` throughout: a clip of ``n`` samples has
``1 + (n - frame_length) // frame_step`` frames, and the inverse STFT of
those frames covers ``(frames - 1) * frame_step + frame_length`` samples, so
analysis and resynthesis line up frame for frame.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

LOG_FLOOR = 1e-6  # log(|X| + floor): silence maps to log(1e-6) instead of -inf


def num_frames(length: int, frame_length: int, frame_step: int) -> int:
    if length < frame_length:
        raise ValueError(f"a clip of {length} samples is shorter than one STFT frame ({frame_length})")
    return 1 + (length - frame_length) // frame_step


def stft(waveforms, frame_length: int, frame_step: int):
    """Complex STFT, ``(batch, frames, frame_length // 2 + 1)``, Hann window."""
    return tf.signal.stft(tf.cast(waveforms, tf.float32), frame_length, frame_step, fft_length=frame_length,
                          window_fn=tf.signal.hann_window, pad_end=False)


def magnitude(waveforms, frame_length: int, frame_step: int):
    return tf.abs(stft(waveforms, frame_length, frame_step))


def log_magnitude(waveforms, frame_length: int, frame_step: int):
    """``log(|STFT| + 1e-6)``, ``(batch, frames, bins)``."""
    return tf.math.log(magnitude(waveforms, frame_length, frame_step) + LOG_FLOOR)


def log_mel(waveforms, sample_rate: int, frame_length: int = 400, frame_step: int = 160, num_mel_bins: int = 64):
    """Log-mel spectrogram ``(batch, frames, num_mel_bins)`` (25 ms / 10 ms frames at 16 kHz by default)."""
    mag = magnitude(waveforms, frame_length, frame_step)
    weights = tf.signal.linear_to_mel_weight_matrix(num_mel_bins, mag.shape[-1], sample_rate, 20.0, sample_rate / 2)
    return tf.math.log(tf.tensordot(mag**2, weights, 1) + LOG_FLOOR)


def griffin_lim(magnitudes, frame_length: int, frame_step: int, length: int | None = None, iterations: int = 32,
                momentum: float = 0.99, seed: int = 0):
    """Waveforms whose STFT magnitude approximates ``magnitudes`` ``(batch, frames, bins)``.

    Alternates between the consistent signals (inverse STFT, then STFT) and
    the target magnitudes, keeping the phase; the momentum term extrapolates
    the phase update (``momentum=0``: the original Griffin & Lim 1984).
    Starts from a seeded random phase, so the result is deterministic.
    ``length``: pad or crop the result to this many samples.
    """
    magnitudes = tf.cast(magnitudes, tf.float32)
    window = tf.signal.inverse_stft_window_fn(frame_step, forward_window_fn=tf.signal.hann_window)
    phase = tf.random.stateless_uniform(tf.shape(magnitudes), seed=[seed, 0], maxval=2 * np.pi)
    angles = tf.complex(tf.cos(phase), tf.sin(phase))
    complex_mag = tf.complex(magnitudes, tf.zeros_like(magnitudes))

    def resynth(angles):
        return tf.signal.inverse_stft(complex_mag * angles, frame_length, frame_step, fft_length=frame_length,
                                      window_fn=window)

    previous = tf.zeros_like(angles)
    for _ in range(iterations):
        rebuilt = stft(resynth(angles), frame_length, frame_step)
        accelerated = rebuilt - tf.cast(momentum / (1 + momentum), tf.complex64) * previous
        previous = rebuilt
        angles = accelerated / tf.cast(tf.maximum(tf.abs(accelerated), 1e-8), tf.complex64)
    out = resynth(angles)
    if length is not None:
        have = out.shape[-1]
        out = out[:, :length] if have >= length else tf.pad(out, [[0, 0], [0, length - have]])
    return out


def spectral_convergence(waveforms, target_magnitudes, frame_length: int, frame_step: int) -> np.ndarray:
    """``|| |STFT(x)| - S ||_F / || S ||_F`` per example: 0 for a perfect match."""
    mag = magnitude(waveforms, frame_length, frame_step)
    diff = tf.norm(mag - target_magnitudes, axis=[-2, -1])
    return (diff / tf.norm(tf.cast(target_magnitudes, tf.float32), axis=[-2, -1])).numpy()
