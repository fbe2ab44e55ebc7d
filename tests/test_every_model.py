"""One shared test case, run on every registered model (image and text alike,
and every family added later): config round trip, output shapes, a few fit
steps on a fixed batch that lower the family's training loss, a ``.keras``
save/load that reproduces generation exactly and restores every optimizer's
state, and no two random kernels or embeddings identical at initialisation.

Models come from ``registry.MODELS`` through their family's task; the tiny
sizes are ``tests.helpers.TINY_MODEL``. A new model needs an entry there.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from aigc_tf import registry
from tests.helpers import TINY_MODEL, tiny_config, tiny_model_config

NAMES = list(registry.MODELS)
# Registered models plus image sizes whose networks differ: "model@size" trains on digits
# resized to size x size RGB (the DCGAN grows one stage per doubling from 4x4 there).
CASES = NAMES + ["dcgan@32", "cgan@64"]


def _model_name(case):
    return case.split("@")[0]
# The loss each family's training lowers on a fixed batch: a GAN's discriminator loss with the
# generator frozen; the text VAE's reconstruction (its KL weight anneals upward step by step).
LOSS_KEY = {"gan": "d_loss", "table_gan": "d_loss", "audio_gan": "d_loss", "music_gan": "d_loss",
            "text_vae": "reconstruction"}


def test_every_registered_model_has_tiny_settings():
    assert set(NAMES) <= set(TINY_MODEL), "add the new model's tiny sizes to tests/helpers.TINY_MODEL"


@pytest.fixture(scope="module")
def built():
    cache = {}

    def get(name):
        if name not in cache:
            model_name, _, size = name.partition("@")
            cfg = tiny_config(model_name, data={"image_size": int(size), "channels": 3}) if size \
                else tiny_model_config(model_name)
            task = registry.task_for(model_name)
            keras.utils.set_random_seed(0)
            data = task.load_data(cfg)
            model = task.build_model(cfg, data)
            batch = next(iter(data.train))
            cache[name] = (cfg, model, _with_noise(model, batch))
        return cache[name]

    return get


def _with_noise(model, batch):
    """Image batches get explicit latent noise, so the fixed batch is fixed (GAN z, VAE eps)."""
    rng = np.random.default_rng(0)
    if isinstance(batch, dict) and "images" in batch:
        n = int(batch["images"].shape[0])
        return {**batch, "noise": rng.standard_normal((n, model.latent_dim)).astype("float32")}
    if isinstance(batch, dict) and "rows" in batch:  # table models: GAN z, VAE eps
        n = int(batch["rows"].shape[0])
        return {**batch, "noise": rng.standard_normal((n, model.latent_dim)).astype("float32")}
    if isinstance(batch, dict) and "audio" in batch:  # audio models: GAN z, VAE eps
        n = int(batch["audio"].shape[0])
        return {**batch, "noise": rng.standard_normal((n, model.latent_dim)).astype("float32")}
    if isinstance(batch, dict) and "rolls" in batch:  # the piano-roll GAN: z
        n = int(batch["rolls"].shape[0])
        return {**batch, "noise": rng.standard_normal((n, model.latent_dim)).astype("float32")}
    if hasattr(model, "encode_text"):  # the text VAE: explicit posterior noise too
        tokens = batch[0]
        return {"tokens": tokens, "noise": rng.standard_normal((int(tokens.shape[0]), model.latent_dim)).astype("float32")}
    return batch


def _optimizers(model):
    found = []
    for attr in ("optimizer", "d_optimizer", "g_optimizer"):
        opt = getattr(model, attr, None)
        if isinstance(opt, keras.optimizers.Optimizer) and all(opt is not o for o in found):
            found.append(opt)
    return found


def _generate(model):
    if hasattr(model, "generate_text"):
        prompts = tf.constant(["The ", "a"])
        out = model.generate_text(prompts, tf.constant([6, 6]), tf.constant([0.8, 0.0]), tf.constant([0, 0]),
                                  tf.constant([0.95, 1.0]), tf.constant([3, 4]))
        return out["token_ids"].numpy()
    if hasattr(model, "generate_notes"):  # music sequence models: (pitch, start, end) of 2 continued primers
        from aigc_tf.music.notes import make_notes
        from aigc_tf.tasks import task_for_model

        primer = make_notes([60, 64, 67], [0.0, 0.5, 1.0], [0.5, 1.0, 1.5])
        out = task_for_model(model).generate_raw(model, primer, 2, 6, seed=3, temperature=0.8)
        return np.stack([out["pitch"], out["start"], out["end"]], -1).astype("float64")
    return model.generate(4, seed=3).numpy()


def _dataset(batch):
    return tf.data.Dataset.from_tensors(batch)


@pytest.mark.parametrize("name", CASES)
def test_config_round_trip_and_outputs(name, built):
    _, model, batch = built(name)
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.count_params() == model.count_params() > 0
    out = _generate(model)
    if hasattr(model, "generate_text"):
        assert out.shape == (2, 6) and out.dtype == np.int32 and (out >= 2).all()
    elif hasattr(model, "transformer"):  # table models: rows of the transformed matrix, one-hot blocks exact
        assert out.shape == (4, model.data_width) and np.isfinite(out).all()
        for span in model.spans:
            block = out[:, span.start:span.start + span.width]
            if span.activation == "softmax":
                np.testing.assert_array_equal(block.sum(axis=1), 1.0)
            else:
                assert (np.abs(block) <= 1).all()
    elif hasattr(model, "generate_notes"):  # music: note arrays (zero-padded), pitches 0-127, ends after starts
        assert out.ndim == 3 and out.shape[0] == 2 and out.shape[1] >= 1 and np.isfinite(out).all()
        assert ((out[..., 0] >= 0) & (out[..., 0] <= 127)).all()
        assert ((out[..., 2] > out[..., 1]) | (out[..., 2] == 0)).all() and (out[..., 2] > 0).any()
    elif hasattr(model, "roll_shape"):  # the piano-roll GAN: rolls in [-1, 1]
        assert out.shape == (4, *model.roll_shape) and np.isfinite(out).all() and np.abs(out).max() <= 1
    elif hasattr(model, "sample_rate"):  # audio: waveforms in [-1, 1]
        assert out.shape == (4, model.clip_length) and np.isfinite(out).all() and np.abs(out).max() <= 1
    else:
        assert out.shape == (4, *model.image_shape) and np.isfinite(out).all()


@pytest.mark.parametrize("name", CASES)
def test_no_two_random_kernels_or_embeddings_start_equal(name, built):
    _, model, _ = built(name)
    tables = [(v.path, v.numpy()) for v in model.trainable_weights if len(v.shape) >= 2]
    assert tables
    for (pa, a), (pb, b) in itertools.combinations(tables, 2):
        if a.shape[-1] != b.shape[-1] or a.ndim != b.ndim:
            continue
        rows = min(a.shape[0], b.shape[0])
        overlap = tuple(slice(0, min(x, y)) for x, y in zip(a.shape, b.shape, strict=True))
        if rows and np.array_equal(a[overlap], b[overlap]) and a[overlap].std() > 0:
            pytest.fail(f"{pa} and {pb} start with identical values")


@pytest.mark.parametrize("name", CASES)
def test_a_few_steps_on_a_fixed_batch_lower_the_training_loss(name, built, tmp_path):
    cfg, model, batch = built(name)
    # A copy, so the other tests see the model as built.
    model.save(tmp_path / "m.keras")
    model = keras.models.load_model(tmp_path / "m.keras")
    key = LOSS_KEY.get(registry.family(_model_name(name)), "loss")
    if hasattr(model, "g_optimizer"):
        model.g_optimizer.learning_rate = 0.0  # generator frozen: only D learns
    g_before = [w.numpy().copy() for w in getattr(model, "generator", model).trainable_weights]
    before = model.evaluate(_dataset(batch), verbose=0, return_dict=True)[key]
    model.fit(_dataset(batch).repeat(8), epochs=1, verbose=0)
    after = model.evaluate(_dataset(batch), verbose=0, return_dict=True)[key]
    assert np.isfinite(after) and after < before, (key, before, after)
    if hasattr(model, "generator"):
        for w, w0 in zip(model.generator.trainable_weights, g_before, strict=True):
            np.testing.assert_array_equal(w.numpy(), w0)


@pytest.mark.parametrize("name", CASES)
def test_save_load_reproduces_generation_and_every_optimizer_state(name, built, tmp_path):
    _, model, batch = built(name)
    model.fit(_dataset(batch).repeat(2), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(_generate(loaded), _generate(model))
    optimizers, loaded_optimizers = _optimizers(model), _optimizers(loaded)
    assert len(optimizers) == len(loaded_optimizers) >= 1
    for opt, opt2 in zip(optimizers, loaded_optimizers, strict=True):
        assert int(opt.iterations.numpy()) == int(opt2.iterations.numpy()) >= 2
        assert len(opt.variables) == len(opt2.variables) > 2
        for v, v2 in zip(opt.variables, opt2.variables, strict=True):
            np.testing.assert_array_equal(v.numpy(), v2.numpy())
