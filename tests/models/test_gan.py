"""The GAN step against a hand-written reference, the generator's moving
average against numpy, DiffAugment and the real/fake batching in the step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aigc_tf.models.gan import GAN
from tests.helpers import fit_with_generator_average_reference

SHAPE = (28, 28, 1)


def _gan(**kwargs):
    keras.utils.set_random_seed(0)
    args = {"image_shape": SHAPE, "latent_dim": 8, "base_filters": 4, "seed": 0, **kwargs}
    return GAN(**args)


def _batches(n_steps, batch=8, latent=8, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "images": rng.uniform(-1, 1, (n_steps * batch, *SHAPE)).astype("float32"),
        "noise": rng.standard_normal((n_steps * batch, latent)).astype("float32"),
    }


def _fit(model, data, batch=8):
    model.fit(tf.data.Dataset.from_tensor_slices(data).batch(batch), epochs=1, verbose=0, shuffle=False)


def test_step_equals_a_hand_written_reference_step():
    """D descends on G(z); G then descends through the *updated* D on the same G(z)."""
    lr = 0.05
    model, ref = _gan(), _gan()
    for m in (model, ref):
        m.compile(d_optimizer=keras.optimizers.SGD(lr), g_optimizer=keras.optimizers.SGD(lr))
    data = _batches(1)
    x, z = tf.constant(data["images"]), tf.constant(data["noise"])
    G, D = ref.generator, ref.discriminator
    fake = G(z, training=True)
    with tf.GradientTape() as tape:
        d_loss = tf.reduce_mean(tf.nn.softplus(-D(x, training=True))) + tf.reduce_mean(
            tf.nn.softplus(D(fake, training=True))
        )
    for v, g in zip(D.trainable_variables, tape.gradient(d_loss, D.trainable_variables), strict=True):
        v.assign(v - lr * g)
    with tf.GradientTape() as tape:
        g_loss = tf.reduce_mean(tf.nn.softplus(-D(G(z, training=True), training=True)))
    for v, g in zip(G.trainable_variables, tape.gradient(g_loss, G.trainable_variables), strict=True):
        v.assign(v - lr * g)

    _fit(model, data)
    for a, b in zip(model.generator.trainable_variables + model.discriminator.trainable_variables,
                    G.trainable_variables + D.trainable_variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-6, err_msg=a.path)
    # One generator forward pass per step: g_bn0's moving mean moved once from 0,
    # by 1 - momentum times the batch mean of the initial projection.
    h = _gan().generator.get_layer("g_project")(z).numpy()
    bn0 = model.generator.get_layer("g_bn0")
    np.testing.assert_allclose(bn0.moving_mean.numpy(), (1 - bn0.momentum) * h.mean(axis=0), rtol=1e-4, atol=1e-8)


def test_moving_average_matches_numpy_float64():
    """Three steps: ema_k = beta_k ema_{k-1} + (1 - beta_k) live_k, beta with the ramp."""
    model = _gan(ema_kimg=0.05, ema_rampup=0.5)
    model.compile()
    data = tf.data.Dataset.from_tensor_slices(_batches(3)).batch(8)
    ema, betas = fit_with_generator_average_reference(model, data, 8)
    assert betas[0] == 0.0 and 0.0 < betas[1] < betas[2] < 1.0  # the ramp: 0, 0.5**2, 0.5**1
    for got, want, v in zip(model.ema_generator.weights, ema, model.generator.weights, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-7, err_msg=v.path)
    assert float(model.ema_images.numpy()) == 24.0
    # The average is not the live generator, and it is what call/generate use.
    assert not np.allclose(model.ema_generator.weights[0].numpy(), model.generator.weights[0].numpy())
    z = model.sample_latent(4, seed=1)
    np.testing.assert_array_equal(model.generate(z=z).numpy(), model.ema_generator(z, training=False).numpy())


def test_beta_without_ramp_is_the_half_life():
    model = _gan(ema_kimg=1.0, ema_rampup=0.0)
    assert float(model.ema_beta(0.0, 1000.0)) == pytest.approx(0.5)
    assert float(model.ema_beta(1e6, 100.0)) == pytest.approx(0.5 ** 0.1)


def test_moving_average_is_saved_restored_and_resumed(tmp_path):
    data = _batches(3)
    first3 = {k: v[:16] for k, v in data.items()}
    last = {k: v[16:] for k, v in data.items()}
    straight = _gan(ema_kimg=0.1, augment="translation,cutout")
    straight.compile()
    _fit(straight, data)
    first = _gan(ema_kimg=0.1, augment="translation,cutout")
    first.compile()
    _fit(first, first3)
    first.save(tmp_path / "g.keras")
    resumed = keras.models.load_model(tmp_path / "g.keras")
    assert resumed.ema_kimg == 0.1 and resumed.augment_policy == ("translation", "cutout")
    np.testing.assert_array_equal(resumed.generate(4, seed=2).numpy(), first.generate(4, seed=2).numpy())
    _fit(resumed, last)
    for a, b in zip(straight.weights, resumed.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)


def test_without_options_the_model_is_the_plain_gan():
    model = _gan()
    assert model.ema_generator is None and model.augment_policy == ()
    assert model.sampling_generator is model.generator
    assert model.get_config()["augment"] == "" and model.get_config()["ema_kimg"] == 0.0


def test_augmentation_changes_what_the_discriminator_sees_in_training_only():
    data = _batches(1)
    plain, augmented = _gan(), _gan(augment="translation,cutout")
    for m in (plain, augmented):
        m.compile(d_optimizer=keras.optimizers.SGD(0.05), g_optimizer=keras.optimizers.SGD(0.05))
    x = tf.constant(data["images"])
    np.testing.assert_array_equal(plain._disc(x, None, False).numpy(), augmented._disc(x, None, False).numpy())
    _fit(plain, data)
    _fit(augmented, data)
    assert not np.allclose(plain.discriminator.weights[0].numpy(), augmented.discriminator.weights[0].numpy())


def test_real_and_fake_share_one_discriminator_call_without_batch_norm():
    model = _gan(loss="wgan_gp")  # d_norm auto -> layer norm
    assert not model._d_batch_norm
    x = tf.constant(_batches(1)["images"])
    fake = model.generator(tf.constant(_batches(1)["noise"]))
    (real_logits, _), (fake_logits, _) = model._real_fake_heads(x, fake, None, False)
    np.testing.assert_allclose(real_logits.numpy(), model.discriminator(x).numpy(), atol=1e-5)
    np.testing.assert_allclose(fake_logits.numpy(), model.discriminator(fake).numpy(), atol=1e-5)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="unknown augmentation"):
        _gan(augment="flip")
    with pytest.raises(ValueError, match="ema_kimg"):
        _gan(ema_kimg=-1)
