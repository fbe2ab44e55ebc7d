"""The audio GANs' moving average of the generator (``model.ema_kimg``, the image GANs' mechanism on
the shared loop): the average against float64 numpy, it is what samples, and it survives a save."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aigc_tf.audio.models import SpecGAN, WaveGAN
from tests.audio.test_gan_aux import BATCH, CLASSES, CLIP, LATENT, _batch, _spec_gan
from tests.helpers import fit_with_generator_average_reference


def _wave_gan(**kwargs):
    keras.utils.set_random_seed(0)
    return WaveGAN(clip_length=CLIP, sample_rate=4000, num_classes=CLASSES, conditional=True, latent_dim=LATENT,
                   model_dim=4, num_layers=3, seed=0, d_steps=1, **kwargs)


def _steps(n):
    batches = [_batch(seed) for seed in range(n)]
    return tf.data.Dataset.from_tensor_slices({k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
                                              ).batch(BATCH)


@pytest.mark.parametrize("build", [lambda **kw: _spec_gan(d_steps=1, **kw), _wave_gan], ids=["specgan", "wavegan"])
def test_the_average_matches_numpy_and_makes_the_samples(build, tmp_path):
    model = build(ema_kimg=0.02, ema_rampup=0.5)
    model.compile()
    ema, _ = fit_with_generator_average_reference(model, _steps(3), BATCH)
    for got, want in zip(model.ema_generator.weights, ema, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-7)
    assert not np.allclose(model.ema_generator.weights[-2].numpy(), model.generator.weights[-2].numpy())
    z, labels = model.sample_latent(4, seed=1), tf.constant([0, 3, 7, 9])
    np.testing.assert_array_equal(model([z, labels]).numpy(),
                                  model.ema_generator([z, labels], training=False).numpy())
    model.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras")
    assert loaded.ema_kimg == pytest.approx(0.02) and loaded.ema_rampup == pytest.approx(0.5)
    np.testing.assert_array_equal(loaded.generate(3, seed=2).numpy(), model.generate(3, seed=2).numpy())


def test_without_ema_kimg_there_is_no_average():
    for model in (_spec_gan(), _wave_gan()):
        assert model.ema_generator is None and model.sampling_generator is model.generator
        assert model.get_config()["ema_kimg"] == 0.0
    with pytest.raises(ValueError, match="ema_kimg"):
        SpecGAN(clip_length=CLIP, frame_length=64, frame_step=32, ema_kimg=-1)
