"""A user's folder of colour images, end to end: the 64x64-style DCGAN trains
and samples on it, and `evaluate` falls back to rotation-prediction features
because the folder has no labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from aigc_tf.cli import main
from aigc_tf.metrics.classifier import rotations
from tests.helpers import CONFIGS


def _colour_digit_folder(root, n=200):
    """Digits as wide RGB PNGs (24x32: coloured strokes on a dark, non-square canvas), no labels."""
    digits = load_digits().images[:n] / 16.0
    rng = np.random.default_rng(0)
    root.mkdir()
    for i, d in enumerate(digits):
        canvas = np.zeros((24, 32, 3), np.float32)
        stroke = np.kron(d, np.ones((2, 2)))[..., None] * rng.uniform(0.4, 1.0, 3)  # 16x16, one colour
        canvas[4:20, 8:24] = stroke
        Image.fromarray((canvas * 255).astype(np.uint8)).save(root / f"img_{i:03d}.png")


def test_rotations_numpy_and_tf_agree():
    import tensorflow as tf

    x = np.random.default_rng(0).random((3, 5, 5, 2)).astype(np.float32)
    xn, yn = rotations(x, (0, 1, 2, 3))
    xt, yt = rotations(tf.constant(x), (0, 1, 2, 3), tf)
    np.testing.assert_array_equal(xn, xt.numpy())
    np.testing.assert_array_equal(yn, yt.numpy())
    np.testing.assert_array_equal(yn, np.repeat(np.arange(4), 3))
    np.testing.assert_array_equal(xn[3 * 1], np.rot90(x[0]))  # one quarter-turn, counter-clockwise
    np.testing.assert_array_equal(xn[3 * 2 + 1], x[1][::-1, ::-1])


@pytest.mark.slow
def test_folder_of_rgb_images_trains_samples_and_evaluates_on_rotation_features(tmp_path, monkeypatch):
    from aigc_tf.metrics import classifier

    monkeypatch.setenv("AIGC_TF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(classifier, "_default_epochs", lambda n: 8)  # 40 by default for so few images
    folder = tmp_path / "photos"
    _colour_digit_folder(folder, n=120)
    run = tmp_path / "run"
    small = ["data.image_size=16", "data.batch_size=16", "model.base_filters=4", "model.latent_dim=16",
             "train.epochs=1", "train.quality_every=0", "train.num_samples=4", "train.verbose=0"]
    argv = ["train", str(CONFIGS / "dcgan_folder64.yaml"), "--set", f"data.path={folder}", *small, "--run-dir", str(run)]
    assert main(argv) == 0
    cfg = json.loads(json.dumps(__import__("yaml").safe_load((run / "config.yaml").read_text())))
    assert cfg["data"]["channels"] == 3 and cfg["data"]["image_size"] == 16

    out = tmp_path / "grid.png"
    assert main(["sample", str(run), "-n", "4", "--out", str(out)]) == 0
    grid = np.asarray(Image.open(out))
    assert grid.ndim == 3 and grid.shape[-1] == 3 and min(grid.shape[:2]) >= 16

    metrics_file = tmp_path / "metrics.json"
    assert main(["evaluate", str(run), "-n", "100", "--out", str(metrics_file)]) == 0
    m = json.loads(metrics_file.read_text())
    assert m["feature_network"].startswith("project CNN trained to predict image rotations")
    assert "classifier_score" not in m  # a rotation softmax says nothing about classes
    assert m["classifier_test_split"] == "12 training images held out"
    assert m["reference_split"].startswith("train")
    # Upright vs turned digits is learnable: far above the 25% of guessing.
    assert m["classifier_accuracy"] > 0.6
    assert m["fid_noise"] > 5 * m["fid_real_vs_real"]
    assert m["nn_train_distance_held_out"] > 0
