"""``model.label_film``: the conditional audio generators modulated by the label in every hidden layer
(:class:`LabelFiLM`): the layer against float64 numpy, that it starts as the identity, that training
moves it, that a saved model reproduces its samples, and the refusal on an unconditional model."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aigc_tf.audio.models import SpecGAN, WaveGAN
from aigc_tf.audio.networks import LabelFiLM
from tests.audio.test_gan_aux import CLASSES, CLIP, LATENT, _batch, _spec_gan
from tests.audio.test_gan_ema import _steps, _wave_gan


def test_film_layer_matches_numpy_per_example_and_channel():
    rng = np.random.default_rng(0)
    h = rng.standard_normal((5, 3, 4, 6)).astype("float32")
    labels = np.array([0, 2, 2, 1, 3], "int32")
    layer = LabelFiLM(4)
    layer([tf.constant(h), tf.constant(labels)])
    gamma, beta = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    layer.gamma.assign(gamma.astype("float32"))
    layer.beta.assign(beta.astype("float32"))
    want = np.stack([h[i].astype(np.float64) * (1 + gamma[y]) + beta[y] for i, y in enumerate(labels)])
    np.testing.assert_allclose(layer([tf.constant(h), tf.constant(labels)]).numpy(), want, rtol=1e-5, atol=1e-6)
    # 1-D feature maps (WaveGAN): the same per-channel modulation.
    flat = h[:, 0]
    np.testing.assert_allclose(layer([tf.constant(flat), tf.constant(labels)]).numpy(), want[:, 0], rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("build", [_spec_gan, _wave_gan], ids=["specgan", "wavegan"])
def test_a_new_film_generator_equals_the_plain_one_with_the_same_weights(build):
    plain, film = build(), build(label_film=True)
    film_layers = [layer for layer in film.generator.layers if isinstance(layer, LabelFiLM)]
    assert len(film_layers) == len([layer for layer in plain.generator.layers if isinstance(layer, keras.layers.ReLU)])
    for layer in plain.generator.layers:
        if layer.weights:
            film.generator.get_layer(layer.name).set_weights(layer.get_weights())
    z, labels = plain.sample_latent(4, seed=1), tf.constant([0, 3, 7, 9])
    np.testing.assert_allclose(film.generator([z, labels]).numpy(), plain.generator([z, labels]).numpy(),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("build", [lambda **kw: _spec_gan(d_steps=1, **kw), _wave_gan], ids=["specgan", "wavegan"])
def test_training_moves_the_modulation_and_a_saved_model_reproduces_it(build, tmp_path):
    model = build(label_film=True, ema_kimg=0.02)
    model.compile(d_optimizer=keras.optimizers.Adam(1e-2), g_optimizer=keras.optimizers.Adam(1e-2))
    model.fit(_steps(2), verbose=0)
    film = [layer for layer in model.generator.layers if isinstance(layer, LabelFiLM)]
    assert film and all(np.abs(layer.gamma.numpy()).max() > 0 and np.abs(layer.beta.numpy()).max() > 0
                        for layer in film)
    # Only the classes in the batches moved: a class never seen keeps the identity.
    seen = set(np.concatenate([_batch(seed)["labels"] for seed in range(2)]).tolist())
    unseen = sorted(set(range(CLASSES)) - seen)
    assert unseen
    for layer in film:
        assert np.all(layer.gamma.numpy()[unseen] == 0) and np.abs(layer.gamma.numpy()[sorted(seen)]).max() > 0
    # The average copies the modulation too (it is part of the generator's weights).
    assert len(model.ema_generator.weights) == len(model.generator.weights)
    model.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras")
    assert loaded.label_film is True
    labels = tf.constant([1, 4, 4])
    np.testing.assert_array_equal(loaded.generate(3, labels=labels, seed=2).numpy(),
                                  model.generate(3, labels=labels, seed=2).numpy())


def test_label_film_needs_a_conditional_model_and_defaults_off():
    assert _spec_gan().get_config()["label_film"] is False
    assert not any(isinstance(layer, LabelFiLM) for layer in _spec_gan().generator.layers)
    for cls in (SpecGAN, WaveGAN):
        extra = {"frame_length": 64, "frame_step": 32} if cls is SpecGAN else {"num_layers": 3, "model_dim": 4}
        with pytest.raises(ValueError, match="label_film.*conditional"):
            cls(clip_length=CLIP, latent_dim=LATENT, label_film=True, **extra)
