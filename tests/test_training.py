"""Run directories: what they hold, resume after interruption, refusal to
overwrite, and stopping on NaN."""

import json
import os
import signal

import keras
import numpy as np
import pytest
import tensorflow as tf

from aigc_tf import registry, training
from aigc_tf.errors import ConfigError, RunDirError
from aigc_tf.models import common
from tests.helpers import tiny_config, tiny_model_config


class InterruptAt(keras.callbacks.Callback):
    """Simulate Ctrl-C at the start of a (0-based) epoch, in its second batch,
    or after the last epoch (before the final model is written)."""

    def __init__(self, epoch=None, mid_epoch=None, at_end=False):
        super().__init__()
        self.at, self.mid, self.at_end = epoch, mid_epoch, at_end

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if epoch == self.at:
            raise KeyboardInterrupt

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.mid and batch == 1:
            raise KeyboardInterrupt

    def on_train_end(self, logs=None):
        if self.at_end:
            raise KeyboardInterrupt


def test_train_writes_a_complete_run_directory(tmp_path):
    cfg = tiny_config("dcgan", train={"epochs": 2})
    run = tmp_path / "run"
    training.train(cfg, run)
    for name in ("config.yaml", "model.keras", "history.json", "history.png", "checkpoints/last.keras"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    assert list((run / "logs").rglob("events.out.tfevents*"))
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [1, 2]
    assert len(history["d_loss"]) == len(history["val_d_loss"]) == 2
    assert json.loads((run / "checkpoints" / "state.json").read_text()) == {"epochs_done": 2, "finished": True}
    assert training.load_run_config(run) == cfg


def test_interrupted_run_resumes_without_losing_or_repeating_an_epoch(tmp_path):
    cfg = tiny_config("dcgan", train={"epochs": 4})
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        training.train(cfg, run, callbacks=[InterruptAt(2)])
    assert json.loads((run / "checkpoints" / "state.json").read_text()) == {"epochs_done": 2, "finished": False}
    assert not (run / "model.keras").exists()

    model = training.train(cfg, run)  # the same command again
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3, 4]
    steps = 64 // 16
    # Both optimizers carried their state across the restart.
    assert int(model.d_optimizer.iterations.numpy()) == int(model.g_optimizer.iterations.numpy()) == 4 * steps
    assert len(list((run / "samples").glob("epoch_*.png"))) == 4


def test_run_interrupted_in_its_first_epoch_restarts(tmp_path):
    cfg = tiny_config("conv_vae", train={"epochs": 2})
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        training.train(cfg, run, callbacks=[InterruptAt(mid_epoch=0)])
    assert not (run / "checkpoints" / "state.json").exists()
    assert (run / "logs").exists()  # TensorBoard already wrote here
    model = training.train(cfg, run)
    assert json.loads((run / "history.json").read_text())["epoch"] == [1, 2]
    assert int(model.optimizer.iterations.numpy()) == 2 * 4


def test_run_interrupted_mid_epoch_repeats_only_that_epoch(tmp_path):
    cfg = tiny_config("dcgan", train={"epochs": 3})
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        training.train(cfg, run, callbacks=[InterruptAt(mid_epoch=1)])
    assert json.loads((run / "checkpoints" / "state.json").read_text())["epochs_done"] == 1
    model = training.train(cfg, run)
    assert json.loads((run / "history.json").read_text())["epoch"] == [1, 2, 3]
    assert int(model.g_optimizer.iterations.numpy()) == 3 * 4


def test_run_interrupted_before_the_final_save_is_finished_on_rerun(tmp_path):
    cfg = tiny_config("conv_vae", train={"epochs": 2})
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        training.train(cfg, run, callbacks=[InterruptAt(at_end=True)])
    assert not (run / "model.keras").exists()
    assert json.loads((run / "checkpoints" / "state.json").read_text()) == {"epochs_done": 2, "finished": False}
    model = training.train(cfg, run)
    assert (run / "model.keras").is_file()
    assert json.loads((run / "checkpoints" / "state.json").read_text())["finished"] is True
    assert int(model.optimizer.iterations.numpy()) == 2 * 4  # no extra training
    assert json.loads((run / "history.json").read_text())["epoch"] == [1, 2]


def test_run_marked_finished_without_its_model_file_is_completed_on_rerun(tmp_path):
    cfg = tiny_config("conv_vae", train={"epochs": 1})
    run = tmp_path / "run"
    training.train(cfg, run)
    (run / "model.keras").unlink()  # stopped after the state was written, before model.keras appeared
    model = training.train(cfg, run)
    assert (run / "model.keras").is_file()
    assert int(model.optimizer.iterations.numpy()) == 4  # completed, not trained again
    assert json.loads((run / "history.json").read_text())["epoch"] == [1]
    with pytest.raises(RunDirError, match="finished run"):
        training.train(cfg, run)


def test_finished_run_error_names_the_python_arguments_too(tmp_path):
    cfg = tiny_config("mlp_vae", train={"epochs": 1})
    training.train(cfg, tmp_path / "run")
    with pytest.raises(RunDirError, match=r"Python: train\(cfg, NEW_DIR\).*resume=True"):
        training.train(cfg, tmp_path / "run")


def test_run_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        training.train(tiny_config("dcgan"), tmp_path / "f")


def test_compile_settings_survive_a_resume(tmp_path):
    cfg = tiny_config("dcgan", train={"epochs": 2, "steps_per_execution": 2})
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        training.train(cfg, run, callbacks=[InterruptAt(epoch=1)])
    loaded = training.load_model(run / "checkpoints" / "last.keras")
    assert loaded.steps_per_execution == 2


def test_finished_run_is_never_overwritten(tmp_path):
    cfg = tiny_config("conv_vae", train={"epochs": 1})
    run = tmp_path / "run"
    training.train(cfg, run)
    before = (run / "model.keras").read_bytes()
    with pytest.raises(RunDirError, match="finished run.*--run-dir NEW"):
        training.train(cfg, run)
    assert (run / "model.keras").read_bytes() == before
    # Asking to resume with more epochs trains it further.
    more = tiny_config("conv_vae", train={"epochs": 2})
    model = training.train(more, run, resume=True)
    assert json.loads((run / "history.json").read_text())["epoch"] == [1, 2]
    assert int(model.optimizer.iterations.numpy()) == 2 * 4
    with pytest.raises(RunDirError, match="already trained 2 epochs"):
        training.train(more, run, resume=True)


def test_run_with_a_different_config_is_refused(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        training.train(tiny_config("dcgan", train={"epochs": 3}), run, callbacks=[InterruptAt(1)])
    with pytest.raises(RunDirError, match=r"different config \(model.latent_dim: 16 -> 8"):
        training.train(tiny_config("dcgan", model={"latent_dim": 8}, train={"epochs": 3}), run)


def test_foreign_non_empty_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not an aigc-tf run"):
        training.train(tiny_config("dcgan"), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_nan_in_any_loss_stops_training_and_keeps_no_bad_checkpoint(tmp_path, monkeypatch):
    real_load = training.load_data

    def poisoned(cfg, seed_offset=0):
        data = real_load(cfg, seed_offset)
        data.train = data.train.map(lambda b: {**b, "images": b["images"] * np.nan})
        return data

    monkeypatch.setattr(training, "load_data", poisoned)
    run = tmp_path / "run"
    with pytest.raises(training.TrainingDiverged, match=r"(d_loss|g_loss|real_score|fake_score) became nan at batch 1 of epoch 1"):
        training.train(tiny_config("dcgan", train={"epochs": 3}), run)
    assert not (run / "checkpoints" / "last.keras").exists()
    assert not (run / "model.keras").exists()


def test_model_that_does_not_fit_the_data_is_a_config_error(tmp_path):
    cfg = tiny_config("dcgan", data={"image_size": 30})
    with pytest.raises(ConfigError, match="cannot be built for data 'digits'.*supports square images of 28 pixels.*data.image_size"):
        training.train(cfg, tmp_path / "run")


def test_conditional_model_needs_labels(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    from PIL import Image

    for i in range(20):
        Image.fromarray(np.full((28, 28), i * 10, np.uint8)).save(folder / f"{i}.png")
    cfg = tiny_config("cgan", data={"name": "folder", "path": str(folder), "max_examples": None})
    with pytest.raises(ConfigError, match="num_classes"):
        training.train(cfg, tmp_path / "run")


def test_batch_size_must_split_across_replicas(tmp_path, monkeypatch):
    class TwoReplicas:
        num_replicas_in_sync = 2

    monkeypatch.setattr(training, "resolve_strategy", lambda *a: TwoReplicas())
    cfg = tiny_config("dcgan", data={"batch_size": 15})
    with pytest.raises(ConfigError, match="divisible by the 2 replicas"):
        training.train(cfg, tmp_path / "run")


def test_what_does_not_run_on_several_replicas_is_a_config_error(tmp_path, monkeypatch):
    class TwoReplicas:
        num_replicas_in_sync = 2

    monkeypatch.setattr(training, "resolve_strategy", lambda *a: TwoReplicas())
    cfg = tiny_config("dcgan", train={"jit_compile": True, "strategy": "mirrored", "cpu_devices": 2})
    with pytest.raises(ConfigError, match="jit_compile=true with train.strategy=mirrored needs GPUs"):
        training.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    cfg = tiny_config("dcgan", train={"steps_per_execution": 4, "strategy": "mirrored", "cpu_devices": 2})
    with pytest.raises(ConfigError, match="steps_per_execution=4 does not run on several replicas.*=1"):
        training.train(cfg, tmp_path / "run")


def test_sample_images_is_deterministic_per_seed():
    from aigc_tf.tasks.image import sample_images

    cfg = tiny_config("dcgan")
    data = training.load_data(cfg)
    model = training.build_model(cfg, data)
    a = sample_images(model, 4, seed=5)
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, sample_images(model, 4, seed=5))
    assert tf.reduce_any(a != sample_images(model, 4, seed=6))


def test_plot_history_leaves_the_matplotlib_backend_alone(tmp_path):
    import matplotlib

    from aigc_tf import viz

    before = matplotlib.get_backend()
    matplotlib.use("pdf")
    try:
        viz.plot_history({"epoch": [1, 2], "loss": [2.0, 1.0], "val_loss": [2.5, 1.5]}, tmp_path / "h.png")
        assert matplotlib.get_backend() == "pdf"
        assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        matplotlib.use(before)


class SigtermAt(keras.callbacks.Callback):
    """Send this process SIGTERM after a (0-based) batch of a (0-based) epoch, as a scheduler preempting it would."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_saves_mid_epoch_and_the_rerun_finishes_that_epoch_only(tmp_path):
    """Preemption: the step in flight finishes, the checkpoint records epochs *and* steps, and the
    rerun trains only the rest of that epoch: every optimizer (both of a GAN's) ends at exactly
    epochs x steps, so no step was lost or repeated."""
    cfg = tiny_config("dcgan", train={"epochs": 3})
    run = tmp_path / "run"
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(training.Preempted) as stopped:
        training.train(cfg, run, callbacks=[SigtermAt(epoch=1, batch=0)])
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is only installed during fit
    # The signal arrived after step 1 of epoch 2; the check after step 2 saw it.
    assert (stopped.value.epochs_done, stopped.value.steps_done) == (1, 2)
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    assert state == {"epochs_done": 1, "steps_done": 2, "finished": False}
    saved = training.load_model(run / "checkpoints" / "last.keras")
    assert int(saved.d_optimizer.iterations.numpy()) == int(saved.g_optimizer.iterations.numpy()) == 4 + 2
    assert json.loads((run / "history.json").read_text())["epoch"] == [1]

    model = training.train(cfg, run)
    assert int(model.d_optimizer.iterations.numpy()) == int(model.g_optimizer.iterations.numpy()) == 3 * 4
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3]
    assert json.loads((run / "checkpoints" / "state.json").read_text()) == {"epochs_done": 3, "finished": True}


def test_a_run_preempted_in_its_first_epoch_resumes(tmp_path):
    """Preempted before any epoch ended, a run has a checkpoint but no history.json yet."""
    cfg = tiny_config("conv_vae", train={"epochs": 2})
    run = tmp_path / "run"
    with pytest.raises(training.Preempted) as stopped:
        training.train(cfg, run, callbacks=[SigtermAt(epoch=0, batch=0)])
    assert (stopped.value.epochs_done, stopped.value.steps_done) == (0, 2)
    assert not (run / "history.json").exists()
    model = training.train(cfg, run)
    assert int(model.optimizer.iterations.numpy()) == 2 * 4
    assert json.loads((run / "history.json").read_text())["epoch"] == [1, 2]


def _precision_step(name, precision, w0=None, batch=None):
    """A model of ``tiny_config(name)`` built under ``precision`` (SGD 0.01; its weights set to ``w0``),
    stepped once on ``batch``; with float16 the step is retried from the same weights until its
    loss scale has come down far enough for every optimizer to apply it (as dynamic loss scaling does)."""
    name, _, variant = name.partition("+")
    cfg = tiny_model_config(name)
    if variant == "prefix":  # seq2seq's own step: shared weights and the prefix loss
        cfg.model.update(share_weights=True, prefix_loss=1.0)
    if name == "ctgan":
        # Its critic's dropout (0.5) draws its masks in the compute dtype: a uniform rounded to float16
        # flips units near the threshold, a different draw rather than a rounding error to measure.
        cfg.model["dropout"] = 0.0
    if "d_steps" in cfg.model:
        cfg.model["d_steps"] = 1  # the logged losses then come from the step's weights, as for dcgan
    cfg.train.precision = precision
    data = training.load_data(cfg)
    keras.utils.set_random_seed(1)
    with training.precision_policy(precision):
        model = training.build_model(cfg, data)
    if hasattr(model, "discriminator"):
        model.compile(d_optimizer=keras.optimizers.SGD(0.01), g_optimizer=keras.optimizers.SGD(0.01))
        optimizers = [model.d_optimizer, model.g_optimizer]
        steps = [getattr(model, "d_steps", 1), 1]
    else:
        model.compile(keras.optimizers.SGD(0.01))
        optimizers = [model.optimizer]
        steps = [1]
    if batch is None:
        batch = next(iter(data.train))
        if isinstance(batch, dict) and "latent_dim" in cfg.model:  # explicit noise: both runs draw the same z / eps
            noise = np.random.default_rng(0).standard_normal((16, cfg.model["latent_dim"])).astype("float32")
            batch = {**batch, "noise": noise}
    w0 = model.get_weights() if w0 is None else w0
    # Noise generators (dropout masks, word dropout) start each attempt where the first one did.
    seeds = [(v, v.numpy()) for v in model.variables if v.path.endswith("seed_generator_state")]
    attempt = 0
    while attempt < 30:
        attempt += 1
        model.set_weights(w0)
        for v, value in seeds:
            v.assign(value)
        for opt in optimizers:
            opt.iterations.assign(0)
        logs = model.fit(tf.data.Dataset.from_tensors(batch), verbose=0).history
        # Every update applied: a GAN's critic steps d_steps times per step.
        if [int(opt.iterations.numpy()) for opt in optimizers] == steps:
            break
    update = np.concatenate([(a - b).ravel() for a, b in zip(model.get_weights(), w0, strict=True)])
    return model, optimizers, batch, w0, {k: v[0] for k, v in logs.items()}, update, attempt


def _kernel_count(network) -> int:
    """How many weighted layers (kernels) a network has: the ``L`` of the ``L u`` error bounds below."""
    return sum(1 for v in network.trainable_weights if v.path.endswith("kernel"))


def _loss_tolerances(model, ref_logs, keys, precision, u):
    """How far each logged loss of a 16-bit step may be from float32's (a few units ``u`` of rounding).

    A WGAN-GP critic's loss holds the norm of a gradient taken by a 16-bit backward pass through all
    its ``L`` weighted layers (relative error of order ``L u``), and its scores are means of signed
    outputs that cancel (their error scales with the outputs, not with the mean): float16's are
    compared at ``4 L u`` of the largest score. After a bfloat16 critic step (u = 2^-8) those losses
    say no more than the update itself, which is compared below.

    A VAE's KL is a function of the encoder's outputs alone, so its relative error also grows with the
    encoder's depth ``L`` (the means and log-variances carry order ``L u``, and a KL near zero is
    quadratic in them): ``4 L u``. At 4 u the cwave_vae's KL of 0.011 nats failed on a machine without
    AVX-512 (6.1 u in float16, 4.8 u in bfloat16, 2026-12-07) with its encoder's five kernels."""
    gradient_penalty = "gradient_penalty" in ref_logs or getattr(model, "loss_name", None) == "wgan_gp"
    if not gradient_penalty:
        encoder = getattr(model, "encoder", None)
        depth = _kernel_count(encoder) if encoder else 1
        return {k: 4 * (depth if k == "kl" else 1) * u * abs(ref_logs[k]) + 1e-6 for k in keys}
    if precision != "mixed_float16":
        return {}
    layers = _kernel_count(model.discriminator)
    scores = max(abs(ref_logs[k]) for k in ("real_score", "fake_score", "g_loss") if k in ref_logs)
    return {k: 4 * layers * u * (scores if k in ("real_score", "fake_score", "g_loss") else abs(ref_logs[k]))
            for k in keys}


# Every family's own train step (models whose step is one of these, e.g. lstm_lm's, share it).
PRECISION_MODELS = ["dcgan", "conv_vae", "gpt", "seq2seq+prefix", "tvae", "ctgan", "text_vae", "cwavegan",
                    "cwave_vae", "chorale_nade", "note_lstm", "music_transformer", "melody_lstm", "musegan"]


@pytest.mark.parametrize("name", PRECISION_MODELS)
def test_mixed_precision_step_matches_float32(name, tmp_path):
    """One step from the same weights on a fixed batch under mixed_float16 and mixed_bfloat16 against
    float32, and the family's epoch samples come out of the 16-bit model. Losses agree to a few units
    of the 16-bit format's rounding (2^-11, 2^-8 relative; a WGAN-GP critic's: _loss_tolerances);
    float16's step (after the loss scale came down) is float32's to 5%, bfloat16's points the same
    way (cosine > 0.8; measured 0.87 for conv_vae, whose transposed-convolution bias gradients sum
    hundreds of bfloat16 products, and 0.9994 for dcgan). A dropped unscale would be off by 2^15,
    a loss kept in 16 bits or a step in the wrong direction far off."""
    ref, _, batch, w0, ref_logs, ref_update, _ = _precision_step(name, "float32")
    losses = [k for k in ref_logs if "loss" in k or k in ("reconstruction", "kl", "perplexity")]
    for precision, u in (("mixed_float16", 2.0**-11), ("mixed_bfloat16", 2.0**-8)):
        model, optimizers, _, _, logs, update, attempts = _precision_step(name, precision, w0, batch)
        assert model.compute_dtype == precision.split("_")[1] and model.variable_dtype == "float32"
        assert common.supports_mixed_precision(model)  # what `aigc-tf train` checks before refusing
        scaled = [isinstance(o, keras.optimizers.LossScaleOptimizer) for o in optimizers]
        assert scaled == [precision == "mixed_float16"] * len(optimizers)
        # One loss scale per optimizer (a GAN's two are separate variables).
        assert len({id(o) for o in optimizers}) == len(optimizers)
        if precision == "mixed_float16":
            assert len({id(o.dynamic_scale) for o in optimizers}) == len(optimizers)
        assert attempts <= 20 and np.isfinite(update).all() and np.abs(update).max() > 0
        for key, tol in _loss_tolerances(model, ref_logs, losses, precision, u).items():
            assert abs(logs[key] - ref_logs[key]) <= tol, (precision, key, tol, logs, ref_logs)
        cosine = update @ ref_update / np.linalg.norm(update) / np.linalg.norm(ref_update)
        rel = np.linalg.norm(update - ref_update) / np.linalg.norm(ref_update)
        if precision == "mixed_float16":
            assert rel < 0.05, (precision, rel)
        assert cosine > 0.8, (precision, cosine)
        if hasattr(model, "generate"):
            assert model.generate(2, seed=0).dtype == tf.float32
        # The family's own samples (what every epoch writes) come out of the mixed model.
        cfg = tiny_model_config(name.partition("+")[0])
        folder = tmp_path / precision
        folder.mkdir()
        registry.task_for(cfg.model["name"]).write_samples(cfg, model, folder, 1)
        assert any(f.stat().st_size > 0 for f in folder.rglob("*") if f.is_file()), precision


def test_mixed_float16_gan_round_trip_keeps_both_loss_scales(tmp_path):
    model, optimizers, batch, *_ = _precision_step("dcgan", "mixed_float16")
    model.d_optimizer.dynamic_scale.assign(512.0)  # the two scales differ
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # Keras' own: the GAN rebuilds its networks under its own policy
    assert loaded.compute_dtype == loaded.generator.compute_dtype == loaded.discriminator.compute_dtype == "float16"
    assert isinstance(loaded.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(loaded.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert float(loaded.d_optimizer.dynamic_scale.numpy()) == 512.0
    assert float(loaded.g_optimizer.dynamic_scale.numpy()) == float(model.g_optimizer.dynamic_scale.numpy()) != 512.0
    np.testing.assert_array_equal(loaded.generate(4, seed=3), model.generate(4, seed=3))


def test_a_mixed_text_model_loads_mixed(tmp_path):
    """GPT builds its layers in ``__init__`` under the global policy; ``load_model`` loads it under the
    policy it was saved with, so a resumed mixed run keeps computing in float16."""
    model, *_ = _precision_step("gpt", "mixed_float16")
    model.save(tmp_path / "gpt.keras")
    loaded = training.load_model(tmp_path / "gpt.keras")
    assert loaded.token_embedding.compute_dtype == loaded.compute_dtype == "float16"
    assert isinstance(loaded.optimizer, keras.optimizers.LossScaleOptimizer)
    assert keras.config.dtype_policy().name == "float32"  # and the global policy is back


def test_every_model_trains_in_mixed_precision_and_one_that_cannot_is_refused(tmp_path, monkeypatch):
    """Every registered model's train step declares mixed precision (each family's own step is compared
    with float32 above); a model whose step does not is refused before anything is written."""
    assert [n for n in registry.MODELS if not common.supports_mixed_precision(registry.model_class(n))] == []

    class OwnStep(keras.Model):
        def train_step(self, data):
            return {}

    class Inherits(OwnStep):
        mixed_precision = True  # the claim belongs to the class that defines train_step

    assert not common.supports_mixed_precision(OwnStep) and not common.supports_mixed_precision(Inherits)
    raw = tiny_model_config("dcgan").to_dict()
    raw["train"]["precision"] = "mixed_float16"
    from aigc_tf.config import from_dict

    monkeypatch.setattr(common, "supports_mixed_precision", lambda model: False)
    with pytest.raises(ConfigError, match="'dcgan' does not support train.precision=mixed_float16"):
        training.train(from_dict(raw, "test"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
