"""Spectrograms, Griffin-Lim and phase shuffle against values worked out by hand."""

import numpy as np
import tensorflow as tf

from aigc_tf.audio import features
from aigc_tf.audio.networks import PhaseShuffle


def _sine(freq=440.0, rate=8000, n=4096):
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


def test_the_stft_peak_of_a_sine_is_at_its_frequency():
    mag = features.magnitude(_sine()[None], 256, 64).numpy()[0]
    assert mag.shape == (features.num_frames(4096, 256, 64), 129) == (61, 129)
    assert np.all(np.argmax(mag, axis=1) == round(440 / (8000 / 256)))  # bin 14 of 31.25 Hz


def test_griffin_lim_recovers_a_sines_spectrogram():
    x = _sine()[None]
    target = features.magnitude(x, 256, 64)
    y = features.griffin_lim(target, 256, 64, length=4096, iterations=100)
    assert y.shape == (1, 4096)
    # Spectral convergence ||S(y)| - S| / |S|: 0.65 from the random starting phase, falling with every
    # iteration (observed 0.18 at 8, 0.099 at 32, 0.063 at 100; without momentum 0.097 at 100).
    sc = {k: features.spectral_convergence(features.griffin_lim(target, 256, 64, length=4096, iterations=k),
                                           target, 256, 64)[0] for k in (0, 8, 32)}
    sc[100] = features.spectral_convergence(y, target, 256, 64)[0]
    assert sc[0] > 0.5 and sc[0] > sc[8] > sc[32] > sc[100]
    assert sc[100] < 0.08
    plain = features.griffin_lim(target, 256, 64, length=4096, iterations=100, momentum=0.0)
    assert features.spectral_convergence(plain, target, 256, 64)[0] > sc[100]  # momentum converges faster
    # Same seed, same output.
    np.testing.assert_array_equal(features.griffin_lim(target, 256, 64, iterations=4).numpy(),
                                  features.griffin_lim(target, 256, 64, iterations=4).numpy())


def test_log_mel_shape_and_energy():
    out = features.log_mel(np.stack([_sine(rate=16000, n=16000), np.zeros(16000, np.float32)]), 16000).numpy()
    assert out.shape == (2, 98, 64)
    assert out[0].max() > 0 > out[1].max()  # the sine has energy, silence is at the floor
    np.testing.assert_allclose(out[1], np.log(features.LOG_FLOOR), rtol=1e-6)


def test_phase_shuffle_shifts_each_example_with_reflection():
    layer = PhaseShuffle(radius=2, seed=0)
    x = tf.constant(np.arange(2 * 6, dtype=np.float32).reshape(2, 6, 1))
    out = layer.shift(x, tf.constant([2, -1])).numpy()[..., 0]
    # Right by 2: reflect-padded [2 1 | 0 1 2 3 4 5 | 4 3] -> [2 1 0 1 2 3]; left by 1: [1 2 3 4 5 4].
    np.testing.assert_array_equal(out[0], [2, 1, 0, 1, 2, 3])
    np.testing.assert_array_equal(out[1], [7, 8, 9, 10, 11, 10])
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())  # identity at inference
    shuffled = layer(tf.tile(x, [32, 1, 4]), training=True).numpy()
    assert shuffled.shape == (64, 6, 4)
    assert len({tuple(s[:, 0]) for s in shuffled[::2]}) > 1  # examples draw their own shifts
