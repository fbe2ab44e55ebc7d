"""``train.ema_momentum``: the trained model is the moving average of the raw weights (checked
against a numpy average of the recorded trajectory), validation sees the average, checkpoints
keep the raw weights, a preempted run continues from them, and a GAN averages its generator only."""

import json

import keras
import numpy as np
import pytest

from aigc_tf import training
from aigc_tf.config import from_dict
from aigc_tf.errors import ConfigError
from tests.helpers import tiny_config
from tests.tasks.test_text import text_config
from tests.test_training import SigtermAt


class RawTrajectory(keras.callbacks.Callback):
    """The model's trainable weights after every training step, and at the start of every ``fit``."""

    def __init__(self):
        super().__init__()
        self.steps, self.starts = [], []

    def on_train_begin(self, logs=None):
        self.starts.append([v.numpy().copy() for v in self.model.trainable_weights])

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([v.numpy().copy() for v in self.model.trainable_weights])


def numpy_average(trajectory, momentum):
    """Keras' ``use_ema`` average in float64: the first step's weights, then ``m * a + (1 - m) * w``."""
    average = [w.astype("float64") for w in trajectory[0]]
    for weights in trajectory[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights)]
    return average


def _weights(model):
    return [v.numpy() for v in model.trainable_weights]


def test_the_trained_model_is_the_moving_average_and_the_checkpoint_keeps_the_raw_weights(tmp_path):
    cfg = text_config("lstm_lm")
    cfg.train.epochs, cfg.train.ema_momentum = 2, 0.5
    trajectory = RawTrajectory()
    model = training.train(cfg, tmp_path / "run", callbacks=[trajectory])
    assert len(trajectory.steps) > 4
    expected = numpy_average(trajectory.steps, 0.5)
    saved = keras.models.load_model(tmp_path / "run" / "model.keras")
    for got, reloaded, want, last in zip(_weights(model), _weights(saved), expected, trajectory.steps[-1]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(reloaded, got)
    # The average is not just the last step's weights (momentum 0.5 over several steps).
    assert max(np.abs(g - w).max() for g, w in zip(_weights(model), trajectory.steps[-1])) > 1e-5
    checkpoint = training.load_model(tmp_path / "run" / "checkpoints" / "last.keras")
    for got, last in zip(_weights(checkpoint), trajectory.steps[-1]):
        np.testing.assert_array_equal(got, last)
    averages = checkpoint.optimizer._model_variables_moving_average
    for got, want in zip(averages, _weights(model)):
        np.testing.assert_array_equal(got.numpy(), want)


def test_validation_sees_the_average(tmp_path):
    cfg = text_config("lstm_lm")
    cfg.train.ema_momentum = 0.5
    model = training.train(cfg, tmp_path / "run")
    logged = json.loads((tmp_path / "run" / "history.json").read_text())["val_loss"][-1]
    data = training.load_data(cfg)
    # The final model is the average the last validation ran on (raw weights give another loss).
    assert model.evaluate(data.test, verbose=0, return_dict=True)["loss"] == pytest.approx(logged, rel=1e-5)
    checkpoint = training.load_model(tmp_path / "run" / "checkpoints" / "last.keras")
    raw = checkpoint.evaluate(data.test, verbose=0, return_dict=True)["loss"]
    assert abs(raw - logged) > 1e-4


def test_a_preempted_run_goes_on_from_the_raw_weights(tmp_path):
    cfg = tiny_config("conv_vae", train={"epochs": 2, "ema_momentum": 0.5})
    run = tmp_path / "run"
    first = RawTrajectory()
    with pytest.raises(training.Preempted):
        training.train(cfg, run, callbacks=[first, SigtermAt(epoch=0, batch=0)])
    # The signal came after step 1; the saver saw it after step 2 (it runs before the recorder).
    assert len(first.steps) == 1
    checkpoint = training.load_model(run / "checkpoints" / "last.keras")
    step2 = _weights(checkpoint)  # mid-epoch: the raw weights, not the average
    averages = [v.numpy() for v in checkpoint.optimizer._model_variables_moving_average]
    for got, want in zip(averages, numpy_average(first.steps + [step2], 0.5)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert max(np.abs(a - w).max() for a, w in zip(averages, step2)) > 1e-5
    second = RawTrajectory()
    model = training.train(cfg, run, callbacks=[second])
    # Two fits (the rest of epoch 1, then epoch 2): each starts from the raw weights
    # where the previous stopped, not from the average Keras wrote at the end of the first.
    assert len(second.starts) == 2 and len(second.steps) == 2 + 4
    for got, want in zip(second.starts[0], step2):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(second.starts[1], second.steps[1]):
        np.testing.assert_array_equal(got, want)
    expected = numpy_average(first.steps + [step2] + second.steps, 0.5)
    for got, want in zip(_weights(model), expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_a_gan_averages_its_generator_and_keeps_its_raw_discriminator(tmp_path):
    cfg = tiny_config("dcgan", train={"epochs": 1, "ema_momentum": 0.5})
    trajectory = RawTrajectory()
    model = training.train(cfg, tmp_path / "run", callbacks=[trajectory])
    assert model.g_optimizer.use_ema and not model.d_optimizer.use_ema
    checkpoint = training.load_model(tmp_path / "run" / "checkpoints" / "last.keras")
    for got, want in zip(_weights(model.discriminator), _weights(checkpoint.discriminator)):
        np.testing.assert_array_equal(got, want)
    g_ids = {id(v) for v in model.generator.trainable_weights}
    positions = [i for i, v in enumerate(model.trainable_weights) if id(v) in g_ids]
    expected = numpy_average([[step[i] for i in positions] for step in trajectory.steps], 0.5)
    for got, want, raw in zip(_weights(model.generator), expected, _weights(checkpoint.generator)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert max(np.abs(g - r).max() for g, r in zip(_weights(model.generator), _weights(checkpoint.generator))) > 1e-5


@pytest.mark.parametrize("value", [1.0, -0.1])
def test_a_momentum_outside_0_1_is_a_config_error(value):
    with pytest.raises(ConfigError, match="train.ema_momentum must be 0"):
        from_dict({"model": {"name": "dcgan"}, "data": {"name": "digits"}, "train": {"ema_momentum": value}}, "t")


def test_the_default_keeps_plain_adam(tmp_path):
    cfg = text_config("lstm_lm")
    assert cfg.train.ema_momentum == 0.0
    model = training.train(cfg, tmp_path / "run")
    assert not model.optimizer.use_ema


def test_a_mixed_precision_gan_averages_through_its_loss_scale_wrapper(tmp_path):
    cfg = tiny_config("dcgan", train={"epochs": 1, "ema_momentum": 0.5, "precision": "mixed_float16"})
    model = training.train(cfg, tmp_path / "run")
    inner = model.g_optimizer.inner_optimizer
    assert inner.use_ema
    for var, average in zip(model.generator.trainable_weights, inner._model_variables_moving_average):
        np.testing.assert_array_equal(var.numpy(), average.numpy())
    checkpoint = training.load_model(tmp_path / "run" / "checkpoints" / "last.keras")
    assert max(np.abs(g - r).max() for g, r in zip(_weights(model.generator), _weights(checkpoint.generator))) > 1e-5


@pytest.mark.slow
def test_averaging_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    from tests.helpers import run_python

    run = tmp_path / "run"
    code = (
        "from aigc_tf import training; from tests.helpers import tiny_config; "
        "cfg = tiny_config('dcgan', train={'epochs': 2, 'ema_momentum': 0.5, 'strategy': 'mirrored', "
        f"'cpu_devices': 2}}); training.train(cfg, {str(run)!r})"
    )
    result = run_python(code, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.models.load_model(run / "model.keras")
    checkpoint = training.load_model(run / "checkpoints" / "last.keras")
    averages = model.g_optimizer._model_variables_moving_average
    for var, average, saved in zip(model.generator.trainable_weights, averages,
                                   checkpoint.g_optimizer._model_variables_moving_average):
        np.testing.assert_array_equal(var.numpy(), average.numpy())
        np.testing.assert_array_equal(saved.numpy(), average.numpy())
    for got, want in zip(_weights(model.discriminator), _weights(checkpoint.discriminator)):
        np.testing.assert_array_equal(got, want)
    assert max(np.abs(g - r).max() for g, r in zip(_weights(model.generator), _weights(checkpoint.generator))) > 1e-5
    assert int(model.g_optimizer.iterations.numpy()) == 8


def test_a_tuner_trial_scores_and_keeps_the_average(tmp_path):
    import keras_tuner as kt

    from aigc_tf import registry

    cfg = text_config("lstm_lm")
    cfg.train.ema_momentum = 0.5
    task = registry.task_for("lstm_lm")
    hm = task.hypermodel(cfg, {"train.learning_rate": {"choice": [2e-3]}})
    tuner = kt.RandomSearch(hm, objective=kt.Objective("val_loss", "min"), max_trials=1, directory=str(tmp_path),
                            project_name="ema")
    class Shared(RawTrajectory):  # keras-tuner deep-copies a trial's callbacks: record into the class
        steps, starts = [], []

        def __init__(self):
            keras.callbacks.Callback.__init__(self)

    trajectory = Shared
    tuner.search(verbose=0, callbacks=[Shared()])
    trial = list(tuner.oracle.trials.values())[0]
    best = tuner.get_best_models(1)[0]  # keras-tuner's end-of-epoch checkpoint: the average, not the raw weights
    for got, want in zip(_weights(best), numpy_average(trajectory.steps, 0.5)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    data = training.load_data(cfg)
    assert best.evaluate(data.test, verbose=0, return_dict=True)["loss"] == pytest.approx(trial.score, rel=1e-5)
