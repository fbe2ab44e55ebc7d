"""``train.weight_decay``: decoupled weight decay (AdamW) against numpy, and a run that keeps it."""

import keras
import numpy as np
import pytest

from aigc_tf import training
from aigc_tf.models import common
from tests.tasks.test_text import text_config


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_two_steps_match_adamw_in_float64_numpy(weight_decay):
    lr, b1, b2, eps = 0.01, 0.9, 0.99, 1e-7
    w0 = np.array([1.5, -2.0, 0.25])
    grads = [np.array([0.3, -0.1, 0.02]), np.array([-0.2, 0.4, 0.05])]
    var = keras.Variable(w0.astype("float32"))
    opt = common.adam(lr, b1, b2, weight_decay=weight_decay)
    w, m, v = w0.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate(grads, start=1):
        opt.apply_gradients([(g.astype("float32"), var)])
        w = w - lr * weight_decay * w  # decoupled: the decay does not pass through the moments
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        w = w - alpha * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(var.numpy(), w, rtol=1e-6, atol=1e-7)
    if weight_decay:  # the decay moved the weights: not the plain Adam result
        plain = common.adam(lr, b1, b2)
        other = keras.Variable(w0.astype("float32"))
        for g in grads:
            plain.apply_gradients([(g.astype("float32"), other)])
        assert np.abs(other.numpy() - var.numpy()).max() > 1e-4


def test_a_run_compiles_saves_and_reloads_with_its_weight_decay(tmp_path):
    cfg = text_config("lstm_lm")
    cfg.train.weight_decay = 0.05
    run_dir = tmp_path / "lstm"
    training.train(cfg, run_dir)
    model = keras.models.load_model(run_dir / "model.keras")
    assert model.optimizer.weight_decay == pytest.approx(0.05)
    default = text_config("lstm_lm")
    assert default.train.weight_decay == 0.0


def test_negative_weight_decay_is_one_clear_error(tmp_path, capsys):
    from aigc_tf import cli
    from tests.helpers import CONFIGS

    run_dir = tmp_path / "run"
    code = cli.main(["train", str(CONFIGS / "lstm_lm_embedded.yaml"), "--set", "train.weight_decay=-0.1",
                     "--run-dir", str(run_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "train.weight_decay must be 0 (plain Adam) or more" in err[0]
    assert not run_dir.exists()
