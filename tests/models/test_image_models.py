"""The same checks on every model: config round trip, shapes, one fit step on
`digits` and on mocked tfds MNIST, save/load reproducing generation exactly,
and resumed training that restores every optimizer's state."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from aigc_tf import registry, training
from aigc_tf.models.gan import GAN
from aigc_tf.models.vae import VAE
from tests.helpers import tiny_config

# Text models have their own suite (tests/models/test_text_models.py) over text data.
MODELS = registry.names_of_family("gan", "vae")


def _model_and_data(model_name, **data):
    cfg = tiny_config(model_name, data=data)
    data = training.load_data(cfg)
    model = training.build_model(cfg, data)
    return model, data


def _optimizers(model):
    return [model.d_optimizer, model.g_optimizer] if isinstance(model, GAN) else [model.optimizer]


@pytest.mark.parametrize("name", MODELS)
def test_config_round_trip(name):
    model, _ = _model_and_data(name)
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.count_params() == model.count_params()


@pytest.mark.parametrize("name", MODELS)
def test_generate_shape_range_and_seed(name):
    model, data = _model_and_data(name)
    images = model.generate(5, seed=3).numpy()
    assert images.shape == (5, *data.image_shape) and images.dtype == np.float32
    low = -1.0 if model.value_range == "tanh" else 0.0
    assert images.min() >= low and images.max() <= 1.0
    np.testing.assert_array_equal(images, model.generate(5, seed=3).numpy())
    assert not np.array_equal(images, model.generate(5, seed=4).numpy())
    # Without a seed the model's SeedGenerator advances: two calls differ.
    assert not np.array_equal(model.generate(5).numpy(), model.generate(5).numpy())


@pytest.mark.parametrize("name", MODELS)
def test_one_fit_step_on_digits_changes_weights_and_logs_finite_losses(name):
    model, data = _model_and_data(name)
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(data.train, epochs=1, steps_per_epoch=1, validation_data=data.test.take(1), verbose=0)
    after = [w.numpy() for w in model.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    expected = {"d_loss", "g_loss"} if isinstance(model, GAN) else {"loss", "reconstruction", "kl"}
    assert expected <= set(history.history)
    assert {f"val_{k}" for k in expected} <= set(history.history)
    assert all(np.isfinite(v[-1]) for v in history.history.values())


@pytest.mark.parametrize("name", MODELS)
def test_one_fit_step_on_mocked_tfds_mnist(name):
    with tfds.testing.mock_data(num_examples=32):
        model, data = _model_and_data(name, name="mnist", max_examples=None)
        assert data.image_shape == (28, 28, 1)
        history = model.fit(data.train, epochs=1, steps_per_epoch=1, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values())


@pytest.mark.parametrize("loss", ["hinge", "wgan_gp"])
def test_other_gan_losses_and_several_critic_steps_train(loss):
    cfg = tiny_config("dcgan", model={"loss": loss, "d_steps": 2})
    data = training.load_data(cfg)
    model = training.build_model(cfg, data)
    if loss == "wgan_gp":  # batch norm would break the per-example penalty
        assert not any("batch_normalization" in type(layer).__name__.lower() for layer in model.discriminator.layers)
        assert any(isinstance(layer, keras.layers.LayerNormalization) for layer in model.discriminator.layers)
    history = model.fit(data.train, epochs=1, steps_per_epoch=2, verbose=0)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert int(model.d_optimizer.iterations.numpy()) == 2 * int(model.g_optimizer.iterations.numpy()) == 4


def test_uncompiled_model_saves_and_loads(tmp_path):
    model = GAN(image_shape=(28, 28, 1), latent_dim=8, base_filters=8, seed=0)
    model.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    np.testing.assert_array_equal(model.generate(2, seed=1).numpy(), loaded.generate(2, seed=1).numpy())


def test_vae_dynamic_binarisation():
    model, data = _model_and_data("conv_vae")
    binary = type(model).from_config({**model.get_config(), "binarize": True})
    images = next(iter(data.train))["images"]
    a, b = binary._training_input(images).numpy(), binary._training_input(images).numpy()
    assert set(np.unique(a)) <= {0.0, 1.0} and not np.array_equal(a, b)  # redrawn every step
    assert a.mean() == pytest.approx(float(tf.reduce_mean(images)), abs=0.02)  # unbiased
    np.testing.assert_array_equal(model._training_input(images).numpy(), images.numpy())  # off by default
    binary.compile()
    history = binary.fit(data.train, epochs=1, steps_per_epoch=2, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_vae_elbo_terms_are_per_example_nats():
    model, data = _model_and_data("conv_vae")
    images = next(iter(data.test))["images"]
    recon, kl = model.elbo_terms(images)
    assert recon.shape == (images.shape[0],) and kl.shape == (images.shape[0],)
    # A fresh decoder predicts ~0.5 everywhere: about 784 * ln 2 nats per image.
    assert float(tf.reduce_mean(recon)) == pytest.approx(784 * np.log(2), rel=0.1)
    assert float(tf.reduce_min(kl)) >= 0.0


def test_vae_encode_decode_reconstruct_shapes():
    model, data = _model_and_data("cvae")
    batch = next(iter(data.test))
    mean, log_var = model.encode(batch["images"], batch["labels"])
    assert mean.shape == log_var.shape == (batch["images"].shape[0], 4)
    rec = model.reconstruct(batch["images"], batch["labels"]).numpy()
    assert rec.shape == tuple(batch["images"].shape)
    np.testing.assert_allclose(rec, model.decode(mean, batch["labels"]).numpy(), atol=1e-6)


def test_conditional_gan_follows_labels():
    model, _ = _model_and_data("cgan")
    z = model.sample_latent(4, seed=0)
    a = model.generate(z=z, labels=[0, 0, 0, 0]).numpy()
    b = model.generate(z=z, labels=[5, 5, 5, 5]).numpy()
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="conditional"):
        model(z)


@pytest.mark.parametrize("name", MODELS)
def test_save_load_reproduces_generation_and_optimizer_state(name, tmp_path):
    model, data = _model_and_data(name)
    model.fit(data.train, epochs=1, steps_per_epoch=2, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(model.generate(6, seed=11).numpy(), loaded.generate(6, seed=11).numpy())
    # The SeedGenerator state is saved too: unseeded draws continue identically.
    np.testing.assert_array_equal(model.generate(3).numpy(), loaded.generate(3).numpy())
    for opt, opt2 in zip(_optimizers(model), _optimizers(loaded)):
        assert int(opt2.iterations.numpy()) == int(opt.iterations.numpy()) == 2
        assert len(opt.variables) == len(opt2.variables) > 2
        for v, v2 in zip(opt.variables, opt2.variables):
            np.testing.assert_array_equal(v.numpy(), v2.numpy())


@pytest.mark.parametrize("explicit_noise", [True, False], ids=["given-noise", "seed-generator"])
@pytest.mark.parametrize("name", ["dcgan", "conv_vae"])
def test_resumed_training_matches_uninterrupted(name, explicit_noise, tmp_path):
    """Two steps, save, load, one more step == three steps straight (same data).

    Without explicit noise this also checks that the SeedGenerator state is
    restored, so the resumed step draws the noise the straight run drew."""
    cfg = tiny_config(name)
    data = training.load_data(cfg)
    batches = list(data.train.take(3))
    rng = np.random.default_rng(0)
    latent = cfg.model["latent_dim"]
    feed = [
        {**b, "noise": rng.standard_normal((b["images"].shape[0], latent)).astype("float32")} if explicit_noise else dict(b)
        for b in batches
    ]

    def ds(items):
        # Known cardinality on purpose: Keras 3.15.1 runs one extra optimizer
        # step on a from_generator dataset of unknown length.
        stacked = {k: np.concatenate([np.asarray(b[k]) for b in items]) for k in items[0]}
        return tf.data.Dataset.from_tensor_slices(stacked).batch(cfg.data.batch_size)

    keras.utils.set_random_seed(0)
    straight = training.build_model(cfg, data)
    straight.fit(ds(feed), epochs=1, verbose=0)

    keras.utils.set_random_seed(0)
    first = training.build_model(cfg, data)
    first.fit(ds(feed[:2]), epochs=1, verbose=0)
    first.save(tmp_path / "ckpt.keras")
    resumed = keras.models.load_model(tmp_path / "ckpt.keras")
    resumed.fit(ds(feed[2:]), epochs=1, verbose=0)
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)


def test_models_are_registered_for_loading():
    assert keras.saving.get_registered_object("aigc_tf>GAN") is GAN
    assert keras.saving.get_registered_object("aigc_tf>VAE") is VAE
