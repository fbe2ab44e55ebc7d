"""``train.ema_momentum``: the trained model is the moving average of the raw weights (checked
against a numpy average of the recorded trajectory), validation sees the average, checkpoints
keep the raw weights, a preempted run continues from them; a GAN is pointed to ``model.ema_kimg``."""

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
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights, strict=True)]
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
    for got, reloaded, want in zip(_weights(model), _weights(saved), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(reloaded, got)
    # The average is not just the last step's weights (momentum 0.5 over several steps).
    assert max(np.abs(g - w).max() for g, w in zip(_weights(model), trajectory.steps[-1], strict=True)) > 1e-5
    checkpoint = training.load_model(tmp_path / "run" / "checkpoints" / "last.keras")
    for got, last in zip(_weights(checkpoint), trajectory.steps[-1], strict=True):
        np.testing.assert_array_equal(got, last)
    averages = checkpoint.optimizer._model_variables_moving_average
    for got, want in zip(averages, _weights(model), strict=True):
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
    for got, want in zip(averages, numpy_average(first.steps + [step2], 0.5), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    assert max(np.abs(a - w).max() for a, w in zip(averages, step2, strict=True)) > 1e-5
    second = RawTrajectory()
    model = training.train(cfg, run, callbacks=[second])
    # Two fits (the rest of epoch 1, then epoch 2): each starts from the raw weights
    # where the previous stopped, not from the average Keras wrote at the end of the first.
    assert len(second.starts) == 2 and len(second.steps) == 2 + 4
    for got, want in zip(second.starts[0], step2, strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(second.starts[1], second.steps[1], strict=True):
        np.testing.assert_array_equal(got, want)
    expected = numpy_average(first.steps + [step2] + second.steps, 0.5)
    for got, want in zip(_weights(model), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_a_gan_is_refused_with_the_pointer_to_its_own_average(tmp_path, capsys):
    from aigc_tf import cli
    from tests.helpers import CONFIGS

    run_dir = tmp_path / "run"
    code = cli.main(["train", str(CONFIGS / "dcgan_digits.yaml"), "--set", "train.ema_momentum=0.999",
                     "train.epochs=1", "data.max_examples=64", "--run-dir", str(run_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "average its generator with model.ema_kimg" in err[0]
    assert not run_dir.exists()


def test_a_gan_without_its_own_average_is_refused_without_pointing_to_one(tmp_path):
    from tests.helpers import tiny_model_config

    cfg = tiny_model_config("ctgan")
    cfg.train.ema_momentum = 0.9
    with pytest.raises(ConfigError, match=r"has two \(a GAN\): set train.ema_momentum=0$"):
        training.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", [1.0, -0.1])
def test_a_momentum_outside_0_1_is_a_config_error(value):
    with pytest.raises(ConfigError, match="train.ema_momentum must be 0"):
        from_dict({"model": {"name": "dcgan"}, "data": {"name": "digits"}, "train": {"ema_momentum": value}}, "t")


def test_the_default_keeps_plain_adam(tmp_path):
    cfg = text_config("lstm_lm")
    assert cfg.train.ema_momentum == 0.0
    model = training.train(cfg, tmp_path / "run")
    assert not model.optimizer.use_ema


def test_mixed_precision_averages_through_the_loss_scale_wrapper(tmp_path):
    cfg = tiny_config("conv_vae", train={"epochs": 3, "ema_momentum": 0.5, "precision": "mixed_float16"})
    trajectory = RawTrajectory()
    model = training.train(cfg, tmp_path / "run", callbacks=[trajectory])
    inner = model.optimizer.inner_optimizer
    assert inner.use_ema
    # The loss scale skips steps that overflow (the first ones, at 2**15): the average takes the
    # applied steps alone, so the numpy reference does too.
    previous, applied = trajectory.starts[0], []
    for step in trajectory.steps:
        if any(np.any(a != b) for a, b in zip(step, previous, strict=True)):
            applied.append(step)
        previous = step
    assert len(applied) == int(inner.iterations.numpy()) and 2 <= len(applied) < len(trajectory.steps)
    trajectory.steps = applied
    for got, want in zip(_weights(model), numpy_average(trajectory.steps, 0.5), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    checkpoint = training.load_model(tmp_path / "run" / "checkpoints" / "last.keras")
    for got, want in zip(_weights(checkpoint), trajectory.steps[-1], strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_averaging_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    """Two replicas: the saved model is the optimizer's average, the checkpoint the raw weights
    beside the same average, and the run took every step."""
    from tests.helpers import run_python

    run = tmp_path / "run"
    code = (
        "from aigc_tf import training; from tests.helpers import tiny_config; "
        "cfg = tiny_config('conv_vae', train={'epochs': 2, 'ema_momentum': 0.5, 'strategy': 'mirrored', "
        f"'cpu_devices': 2}}); training.train(cfg, {str(run)!r})"
    )
    result = run_python(code, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.models.load_model(run / "model.keras")
    checkpoint = training.load_model(run / "checkpoints" / "last.keras")
    averages = model.optimizer._model_variables_moving_average
    for var, average, saved in zip(model.trainable_weights, averages,
                                   checkpoint.optimizer._model_variables_moving_average, strict=True):
        np.testing.assert_array_equal(var.numpy(), average.numpy())
        np.testing.assert_array_equal(saved.numpy(), average.numpy())
    assert max(np.abs(g - r).max() for g, r in zip(_weights(model), _weights(checkpoint), strict=True)) > 1e-5
    assert int(model.optimizer.iterations.numpy()) == 8


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
    for got, want in zip(_weights(best), numpy_average(trajectory.steps, 0.5), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    data = training.load_data(cfg)
    assert best.evaluate(data.test, verbose=0, return_dict=True)["loss"] == pytest.approx(trial.score, rel=1e-5)


def test_before_any_step_the_average_is_the_weights_not_keras_zeros():
    from aigc_tf.callbacks import AveragedWeights
    from aigc_tf.models import common

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=common.adam(1e-3, ema_momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    assert all(not np.any(a.numpy()) for a in model.optimizer._model_variables_moving_average)  # Keras' start
    before = _weights(model)
    averaged = AveragedWeights()
    averaged.set_model(model)
    averaged.on_train_begin()
    averaged.swap_in()  # what validation would see before the first applied step
    for got, want in zip(_weights(model), before, strict=True):
        np.testing.assert_array_equal(got, want)
    averaged.raw()
