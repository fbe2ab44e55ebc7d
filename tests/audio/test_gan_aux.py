"""The auxiliary classifier of the conditional audio GANs (AC-GAN on the shared
GAN loop): one step against a hand-written reference, the logged class
losses against numpy, saving, and the refusals."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from aigc_tf.audio.models import SpecGAN, WaveGAN

CLIP, CLASSES, LATENT, BATCH = 1024, 10, 8, 8


def _spec_gan(**kwargs):
    keras.utils.set_random_seed(0)
    args = {"clip_length": CLIP, "sample_rate": 4000, "num_classes": CLASSES, "conditional": True,
            "latent_dim": LATENT, "model_dim": 4, "frame_length": 64, "frame_step": 32, "seed": 0, **kwargs}
    return SpecGAN(**args)


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    return {"audio": rng.uniform(-0.5, 0.5, (BATCH, CLIP)).astype("float32"),
            "labels": rng.integers(0, CLASSES, BATCH).astype("int32"),
            "noise": rng.standard_normal((BATCH, LATENT)).astype("float32")}


def _cross_entropy(logits, labels):
    """Mean sparse cross-entropy in float64 numpy."""
    logits = np.asarray(logits, np.float64)
    log_probs = logits - logits.max(axis=1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels].mean()


def test_step_equals_a_hand_written_reference_step():
    """D descends on hinge + w * CE(real labels); G then on -score + w * CE(asked labels) through the new D."""
    lr, weight = 0.05, 0.5
    model, ref = _spec_gan(aux_weight=weight, loss="hinge", d_steps=1), _spec_gan(aux_weight=weight, loss="hinge",
                                                                                      d_steps=1)
    for m in (model, ref):
        m.compile(d_optimizer=keras.optimizers.SGD(lr), g_optimizer=keras.optimizers.SGD(lr))
    data = _batch()
    x, y, z = ref._prepare_real(tf.constant(data["audio"])), tf.constant(data["labels"]), tf.constant(data["noise"])
    G, D = ref.generator, ref.discriminator
    fake = G([z, y], training=True)
    with tf.GradientTape() as tape:
        real_score, real_classes = D([x, y], training=True)
        fake_score, _ = D([fake, y], training=True)
        ce = keras.losses.sparse_categorical_crossentropy(y, real_classes, from_logits=True)
        d_loss = (tf.reduce_mean(tf.nn.relu(1 - real_score)) + tf.reduce_mean(tf.nn.relu(1 + fake_score))
                  + weight * tf.reduce_mean(ce))
    for v, g in zip(D.trainable_variables, tape.gradient(d_loss, D.trainable_variables), strict=True):
        v.assign(v - lr * tf.convert_to_tensor(g))  # embedding gradients are IndexedSlices
    with tf.GradientTape() as tape:
        fake_score, fake_classes = D([G([z, y], training=True), y], training=True)
        ce = keras.losses.sparse_categorical_crossentropy(y, fake_classes, from_logits=True)
        g_loss = -tf.reduce_mean(fake_score) + weight * tf.reduce_mean(ce)
    for v, g in zip(G.trainable_variables, tape.gradient(g_loss, G.trainable_variables), strict=True):
        v.assign(v - lr * tf.convert_to_tensor(g))  # embedding gradients are IndexedSlices

    history = model.fit(tf.data.Dataset.from_tensor_slices(data).batch(BATCH), epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.generator.trainable_variables + model.discriminator.trainable_variables,
                    G.trainable_variables + D.trainable_variables, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-6, err_msg=a.path)
    np.testing.assert_allclose(history.history["g_loss"][0], float(g_loss), rtol=1e-5)
    np.testing.assert_allclose(history.history["fake_class_loss"][0], float(tf.reduce_mean(ce)), rtol=1e-5)


def test_logged_class_losses_are_the_cross_entropies_of_the_class_head():
    model = _spec_gan(aux_weight=1.0)
    model.compile()
    data = _batch(1)
    result = model.evaluate(tf.data.Dataset.from_tensor_slices(data).batch(BATCH), verbose=0, return_dict=True)
    y = tf.constant(data["labels"])
    _, real_classes = model.discriminator([model._prepare_real(tf.constant(data["audio"])), y])
    fake = model.generator([tf.constant(data["noise"]), y])
    _, fake_classes = model.discriminator([fake, y])
    assert result["real_class_loss"] == pytest.approx(_cross_entropy(real_classes, data["labels"]), rel=1e-5)
    assert result["fake_class_loss"] == pytest.approx(_cross_entropy(fake_classes, data["labels"]), rel=1e-5)
    # Ten classes, a fresh head: near log(10), and not the same number for real and fake.
    assert 1.5 < result["real_class_loss"] < 3.5 and result["real_class_loss"] != result["fake_class_loss"]


@pytest.mark.parametrize("cls", [SpecGAN, WaveGAN])
def test_saved_model_keeps_the_class_head(cls, tmp_path):
    kwargs = ({"frame_length": 64, "frame_step": 32} if cls is SpecGAN else {"num_layers": 3})
    keras.utils.set_random_seed(0)
    model = cls(clip_length=CLIP, sample_rate=4000, num_classes=CLASSES, conditional=True, latent_dim=LATENT,
                model_dim=4, aux_weight=0.3, seed=0, **kwargs)
    model.compile()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.aux_weight == 0.3
    x = model._prepare_real(tf.constant(_batch()["audio"]))
    y = tf.constant(_batch()["labels"])
    for a, b in zip(model.discriminator([x, y]), loaded.discriminator([x, y]), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    assert [m.name for m in loaded.metrics][-2:] == ["real_class_loss", "fake_class_loss"]


def test_without_aux_weight_the_discriminator_has_one_output_and_four_metrics():
    model = _spec_gan()
    assert len(model.discriminator.outputs) == 1
    assert [m.name for m in model.metrics] == ["d_loss", "g_loss", "real_score", "fake_score"]


@pytest.mark.parametrize("kwargs", [{"conditional": False}, {"aux_weight": -1.0}])
def test_bad_aux_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="aux_weight"):
        _spec_gan(**{"aux_weight": 1.0, **kwargs})
