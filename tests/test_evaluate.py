"""The feature classifier, `aigc-tf evaluate`, and the training quality callback."""

import json

import numpy as np
import pytest

from aigc_tf import evaluate, training
from aigc_tf.cli import main
from aigc_tf.metrics import distances
from aigc_tf.metrics.classifier import ClassifierSpec, get_classifier
from aigc_tf.tasks.image import reference_halves
from tests.helpers import run_python, tiny_config


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        folder = tmp_path_factory.mktemp("cache")
        mp.setenv("AIGC_TF_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def digits_classifier(cache):
    return get_classifier(ClassifierSpec(dataset="digits"))


@pytest.mark.slow
def test_digits_classifier_reaches_95_percent_on_the_hold_out(digits_classifier):
    assert digits_classifier.accuracy >= 0.95
    info = json.loads(next(iter(p for p in digits_classifier_cache_files())).read_text())
    assert info["num_test"] == 360 and info["test_accuracy"] == digits_classifier.accuracy


def digits_classifier_cache_files():
    import os
    from pathlib import Path

    return Path(os.environ["AIGC_TF_CACHE"]).glob("digits-*/info.json")


@pytest.mark.slow
def test_classifier_training_is_identical_across_processes(tmp_path):
    code = (
        "import hashlib; from aigc_tf.metrics.classifier import ClassifierSpec, get_classifier; "
        "c = get_classifier(ClassifierSpec(dataset='digits', max_examples=300, epochs=2), verbose=0); "
        "print(hashlib.sha256(b''.join(w.tobytes() for w in c.model.get_weights())).hexdigest())"
    )
    import os

    digests = []
    for i in range(2):
        env_cache = tmp_path / f"c{i}"
        os.environ["AIGC_TF_CACHE"], old = str(env_cache), os.environ["AIGC_TF_CACHE"]
        try:
            result = run_python(code)
        finally:
            os.environ["AIGC_TF_CACHE"] = old
        assert result.returncode == 0, result.stderr[-2000:]
        digests.append(result.stdout.split()[-1])
    assert digests[0] == digests[1]


@pytest.mark.slow
def test_classifier_is_cached_and_fixed(digits_classifier, cache):
    again = get_classifier(ClassifierSpec(dataset="digits"))
    x = np.random.default_rng(0).random((8, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(digits_classifier.features(x), again.features(x))
    assert len(list(cache.glob("digits-*"))) == 1


@pytest.mark.slow
def test_real_vs_real_is_small_and_noise_and_collapse_are_far_worse(digits_classifier):
    cfg = tiny_config("dcgan", data={"max_examples": None})
    r1, r2, _, split = reference_halves(cfg)
    assert split == "train+test" and len(r1) == len(r2) == 898
    f1, f2 = digits_classifier.features(r1), digits_classifier.features(r2)
    rng = np.random.default_rng(0)
    noise = digits_classifier.features(rng.random(r1.shape).astype(np.float32))
    collapsed = digits_classifier.features(np.repeat(r2[:1], len(r2), axis=0))
    real = distances.frechet_distance(f2, f1)
    assert distances.frechet_distance(f1, f1) == 0.0
    assert distances.frechet_distance(noise, f1) > 20 * real
    assert distances.frechet_distance(collapsed, f1) > 10 * real
    kid_real, _ = distances.kernel_distance(f2, f1)
    kid_noise, _ = distances.kernel_distance(noise, f1)
    assert kid_noise > 20 * abs(kid_real)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dcgan", "conv_vae"])
def test_evaluate_cli_writes_every_metric_and_repeats_exactly(name, tmp_path, cache, capsys):
    cfg = tiny_config(name, data={"max_examples": 200})
    run = tmp_path / "run"
    training.train(cfg, run)
    out = tmp_path / "m.json"
    argv = ["evaluate", str(run), "-n", "100", "--out", str(out), "--iwae-k", "20"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    first = json.loads(out.read_text())
    assert first["fid_noise"] > first["fid_real_vs_real"]
    for key in ("fid", "fid_real_vs_real", "fid_ratio_to_real", "fid_noise", "kid", "kid_stderr", "classifier_score",
                "precision", "recall", "classifier_accuracy", "num_samples", "dataset", "reference_split"):
        assert key in first and key in printed, key
    assert first["num_samples"] == 100 and first["dataset"] == "digits"
    assert first["fid"] >= 0 and first["fid_ratio_to_real"] == pytest.approx(first["fid"] / first["fid_real_vs_real"])
    if name == "conv_vae":
        assert {"elbo", "reconstruction", "kl", "iwae_nll_k20", "likelihood"} <= set(first)
        assert first["iwae_nll_k20"] <= -first["elbo"] + 1.0
    if name == "conv_vae":  # same run, same numbers (one model suffices: the evaluation code is shared)
        assert main(argv) == 0
        assert json.loads(out.read_text()) == first


def _train_history(cfg, run):
    """Train ``cfg`` into ``run`` and return its history.json."""
    training.train(cfg, run)
    return json.loads((run / "history.json").read_text())


@pytest.mark.slow
def test_quality_callback_logs_fid_into_history_and_tensorboard(tmp_path, cache):
    cfg = tiny_config("dcgan", data={"max_examples": 200}, train={"epochs": 3, "quality_every": 2, "quality_samples": 64})
    run = tmp_path / "run"
    history = _train_history(cfg, run)
    assert history["fid_epochs"] == [2, 3] and len(history["fid"]) == 2
    assert all(v > 0 for v in history["fid"])
    assert len(history["d_loss"]) == 3
    import tensorflow as tf

    tags = set()
    for event_file in (run / "logs").rglob("events.out.tfevents*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(v.tag for v in event.summary.value)
    assert "epoch_fid" in tags


@pytest.mark.slow
def test_training_does_not_depend_on_a_cold_or_warm_classifier_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_TF_CACHE", str(tmp_path / "fresh_cache"))
    cfg = tiny_config("dcgan", data={"max_examples": 160}, train={"epochs": 2, "quality_every": 1, "quality_samples": 64})
    cold = _train_history(cfg, tmp_path / "cold")  # trains the classifier first
    warm = _train_history(cfg, tmp_path / "warm")  # finds it cached
    assert cold["d_loss"] == warm["d_loss"] and cold["fid"] == warm["fid"]


@pytest.mark.slow
def test_quality_callback_logs_test_elbo_for_vaes(tmp_path, cache):
    cfg = tiny_config("conv_vae", data={"max_examples": 200}, train={"epochs": 2, "quality_every": 1, "quality_samples": 50})
    history = _train_history(cfg, tmp_path / "run")
    assert history["test_elbo_epochs"] == [1, 2]
    assert history["test_elbo"][1] > history["test_elbo"][0]  # it learns


class _RealDigits:
    """A stand-in conditional generator that returns real `digits` test images
    of class ``(asked + shift) % 10``: evaluate's class accuracy must follow."""

    conditional, num_classes, value_range, latent_dim = True, 10, "unit", 2

    def __init__(self, cfg, shift):
        from aigc_tf.tasks.image import data_arrays

        self.x, self.y = data_arrays(cfg, "test")
        self.shift = shift

    def sample_latent(self, n, seed=None):
        return np.zeros((n, 2), "float32")

    def generate(self, z=None, labels=None):
        import tensorflow as tf

        wanted = (np.asarray(labels) + self.shift) % 10
        picks = []
        for i, k in enumerate(wanted):
            of_class = np.flatnonzero(self.y == k)
            picks.append(of_class[i % len(of_class)])
        return tf.constant(self.x[picks])


@pytest.mark.slow
def test_class_accuracy_and_memorisation_of_a_conditional_model(digits_classifier, tmp_path):
    from aigc_tf import registry

    cfg = tiny_config("cgan", data={"max_examples": None})
    task = registry.task_for("cgan")
    right = task.evaluate(tmp_path, cfg, _RealDigits(cfg, 0), 200, 0)
    wrong = task.evaluate(tmp_path, cfg, _RealDigits(cfg, 1), 200, 0)
    assert right["class_accuracy"] > 0.95
    assert wrong["class_accuracy"] < 0.05
    # Held-out digits are not training images: both medians are the hold-out's own distance.
    assert right["nn_train_distance"] == pytest.approx(right["nn_train_distance_held_out"], rel=0.25)
    assert right["nn_train_distance_held_out"] > 1.0


def test_memorisation_sees_copies_of_training_images():
    from aigc_tf.tasks.image import data_arrays, memorisation

    cfg = tiny_config("dcgan", data={"max_examples": None})
    train, _ = data_arrays(cfg, "train")
    copies = memorisation(cfg, train[:50])
    assert copies["nn_train_distance"] == 0.0 and copies["nn_train_distance_min"] == 0.0
    assert copies["nn_train_distance_held_out_min"] > 0.0
    noisy = memorisation(cfg, np.clip(train[:50] + 0.05, 0, 1))
    assert 0.0 < noisy["nn_train_distance"] < copies["nn_train_distance_held_out"]
