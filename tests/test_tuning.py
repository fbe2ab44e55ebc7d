"""keras-tuner searches: the tune: section, trials as run directories, resume,
Hyperband continuation, the summary, the HyperModel API, mirrored and distributed search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import yaml

from aigc_tf import config as config_module
from aigc_tf import registry, training, tuning
from aigc_tf.errors import ConfigError, RunDirError
from tests.helpers import ROOT, tiny_config, tiny_model_config

SPACE = {"train.learning_rate": {"float": [1e-4, 3e-3], "sampling": "log"}, "model.latent_dim": {"choice": [2, 8]}}


def _raw(**tune):
    """A tiny search; trials in this process (``isolate`` false) unless a test asks for child processes."""
    raw = tiny_config("conv_vae").to_dict()
    raw["train"].update(epochs=2, verbose=0)
    raw["tune"] = {"space": SPACE, "isolate": False, **tune}
    return raw


def _write(tmp_path, **tune):
    path = tmp_path / "vae_tune.yaml"
    path.write_text(yaml.safe_dump(_raw(**tune), sort_keys=False))
    return path


def _cli(*args, env=None, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.run([sys.executable, "-m", "aigc_tf.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def _history(run):
    return json.loads((run / "history.json").read_text())


# ------------------------------------------------------------------ config
def test_tune_section_defaults_to_the_family_objective_and_train_ignores_it():
    cfg, tune = config_module.tune_from_dict(_raw(max_trials=3), "t")
    assert (tune.objective, tune.direction, tune.algorithm, tune.max_trials) == ("test_elbo", "max", "random", 3)
    assert cfg.to_dict() == config_module.from_dict({k: v for k, v in _raw().items() if k != "tune"}).to_dict()
    assert config_module.from_dict(_raw(), "t").to_dict() == cfg.to_dict()  # `train` on the same file
    gan = tiny_config("dcgan").to_dict()
    gan["tune"] = {"space": {"train.learning_rate": {"choice": [1e-4, 2e-4]}}}
    assert config_module.tune_from_dict(gan)[1].objective == "fid"
    assert config_module.tune_from_dict(gan)[1].direction == "min"


@pytest.mark.parametrize("tune, message", [
    ({"space": {}}, "tune.space is empty"),
    ({"space": {"train.learnin_rate": {"choice": [1e-3]}}}, "unknown key 'train.learnin_rate'"),
    ({"space": {"model.latent_dim": {"choice": [2, "x"]}}}, "distinct values of one type"),
    ({"space": {"model.latent_dim": {"choice": [2.5, 3.5]}}}, "model.latent_dim must be an integer"),
    ({"space": {"model.latent_dim": {"int": [8, 2]}}}, "low < high"),
    ({"space": {"train.learning_rate": {"float": [0, 1e-3], "sampling": "log"}}}, "positive low bound"),
    ({"space": {"train.learning_rate": {"float": [1e-4, 1e-3], "int": [1, 2]}}}, "exactly one of"),
    ({"space": SPACE, "objective": "val_loss"}, "needs tune.direction"),
    ({"space": SPACE, "algorithm": "grid"}, "tune.algorithm must be one of"),
    ({"space": SPACE, "max_trial": 3}, "unknown key 'tune.max_trial'"),
])
def test_tune_section_errors_name_the_key_and_the_fix(tune, message):
    raw = _raw()
    raw["tune"] = tune
    with pytest.raises(ConfigError, match=message):
        config_module.tune_from_dict(raw, "t")


def test_hyperband_refuses_a_cosine_schedule_and_train_lists_tune_as_a_key():
    raw = tiny_model_config("lstm_lm").to_dict()
    raw["train"]["lr_schedule"] = "cosine"
    raw["tune"] = {"algorithm": "hyperband", "space": {"train.learning_rate": {"choice": [1e-3, 2e-3]}}}
    with pytest.raises(ConfigError, match="cosine"):
        config_module.tune_from_dict(raw, "t")
    with pytest.raises(ConfigError, match="valid keys are: seed, model, data, train, tune"):
        config_module.from_dict({**_raw(), "tunes": {}}, "t")


def test_trial_config_sets_values_and_turns_the_sparse_objective_on_at_the_end():
    cfg, tune = config_module.tune_from_dict(_raw(), "t")
    trial = tuning.trial_config(cfg, {"train.learning_rate": 1e-3, "model.latent_dim": 8}, epochs=3, seed_offset=2,
                                objective="test_elbo")
    assert trial.train.learning_rate == 1e-3 and trial.model["latent_dim"] == 8
    assert (trial.train.epochs, trial.train.quality_every, trial.seed) == (3, 3, cfg.seed + 2)
    assert tuning.trial_config(cfg, {}, objective="val_loss").train.quality_every == 0  # not sparse: untouched


# ----------------------------------------------------------------- search
@pytest.mark.slow
def test_random_search_trials_are_run_directories_and_the_summary_is_right(tmp_path):
    # The default path: each trial is `aigc-tf train` in a child process.
    cfg, tune = config_module.tune_from_dict(_raw(max_trials=3, epochs=1, isolate=True), "t")
    assert tune.isolate is config_module.TuneConfig().isolate is True
    out = tmp_path / "search"
    summary = tuning.search(cfg, tune, out, verbose=0)
    rows = summary["trials"]
    assert [r["status"] for r in rows] == ["COMPLETED"] * 3
    for row in rows:  # the objective is what each run directory logged at its last epoch
        run = out / "trials" / f"trial_{row['trial']}"
        hist = _history(run)
        assert hist["epoch"] == [1] and row["test_elbo"] == pytest.approx(hist["test_elbo"][-1])
        trial_cfg = training.load_run_config(run)
        assert trial_cfg.train.learning_rate == pytest.approx(row["train.learning_rate"])
        assert trial_cfg.model["latent_dim"] == row["model.latent_dim"]
    best = max(rows, key=lambda r: r["test_elbo"])
    assert summary["best_trial"] == best["trial"] and summary["best_score"] == pytest.approx(best["test_elbo"])
    assert json.loads((out / "trials.json").read_text()) == json.loads(json.dumps(summary))
    assert (out / "trials.png").stat().st_size > 1000
    # best/: an ordinary finished run of the best trial; best_config.yaml: its values with the full budget
    assert (out / "best" / "model.keras").is_file()
    assert _history(out / "best") == _history(out / "trials" / f"trial_{best['trial']}")
    full = config_module.load_config(out / "best_config.yaml")
    assert full.train.epochs == 2 and full.model["latent_dim"] == best["model.latent_dim"]
    assert full.train.learning_rate == pytest.approx(best["train.learning_rate"])
    table = tuning.format_trials(summary)
    assert len(table.splitlines()) == 4 and table.splitlines()[1 + rows.index(best)].startswith("*")

    # Rerun: resumes (nothing to do), trains nothing again; more trials extend it.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "trials").glob("*/model.keras")}
    again = tuning.search(cfg, tune, out, verbose=0)
    assert again["trials"] == rows
    assert {p: p.stat().st_mtime_ns for p in (out / "trials").glob("*/model.keras")} == stamps
    # More trials extend it (in this process this time: isolation does not change what a trial computes).
    more = config_module.tune_from_dict(_raw(max_trials=4, epochs=1), "t")[1]
    assert len(tuning.search(cfg, more, out, verbose=0)["trials"]) == 4
    changed = config_module.tune_from_dict({**_raw(max_trials=4, epochs=1), "seed": 5}, "t")
    with pytest.raises(RunDirError, match="another config .*seed"):
        tuning.search(*changed, out, verbose=0)


class _Interrupt(keras.callbacks.Callback):
    """Ctrl-C in the middle of the second trial (after its first epoch's checkpoint)."""

    calls = 0

    def on_epoch_end(self, epoch, logs=None):
        type(self).calls += 1
        if type(self).calls == 3:  # trial 0: epochs 1, 2; trial 1: epoch 1 (saved), then this
            raise KeyboardInterrupt


@pytest.mark.slow
def test_an_interrupted_trial_resumes_from_its_checkpoint_and_the_search_finishes(tmp_path):
    cfg, tune = config_module.tune_from_dict(_raw(max_trials=2), "t")
    out = tmp_path / "search"
    with pytest.raises(KeyboardInterrupt):
        tuning.search(cfg, tune, out, callbacks=[_Interrupt()], verbose=0)
    second = out / "trials" / "trial_1"
    assert _history(second)["epoch"] == [1]
    summary = tuning.search(cfg, tune, out, verbose=0)
    assert [r["status"] for r in summary["trials"]] == ["COMPLETED"] * 2
    assert _history(second)["epoch"] == [1, 2]  # resumed, not restarted or repeated
    assert summary["trials"][1]["test_elbo"] == pytest.approx(_history(second)["test_elbo"][-1])


@pytest.mark.slow
def test_hyperband_continues_the_parent_run(tmp_path):
    cfg, tune = config_module.tune_from_dict(_raw(algorithm="hyperband", epochs=2, hyperband_factor=2), "t")
    out = tmp_path / "search"
    summary = tuning.search(cfg, tune, out, verbose=0)
    continued = [r for r in summary["trials"] if r.get("continues")]
    assert continued and all(r["status"] == "COMPLETED" for r in summary["trials"])
    row = continued[0]
    child, parent = (out / "trials" / f"trial_{t}" for t in (row["trial"], row["continues"]))
    h_child, h_parent = _history(child), _history(parent)
    n = len(h_parent["epoch"])
    assert h_child["epoch"] == list(range(1, row["epochs"] + 1)) and n < row["epochs"]
    assert h_child["loss"][:n] == h_parent["loss"]  # the parent's epochs, then more of the same run
    assert row["test_elbo"] == pytest.approx(h_child["test_elbo"][-1])


@pytest.mark.slow
def test_bayesian_search_with_two_executions_per_trial_averages_them(tmp_path):
    raw = _raw(algorithm="bayesian", max_trials=2, initial_points=1, epochs=1, executions_per_trial=2)
    cfg, tune = config_module.tune_from_dict(raw, "t")
    out = tmp_path / "search"
    summary = tuning.search(cfg, tune, out, verbose=0)
    assert [r["status"] for r in summary["trials"]] == ["COMPLETED"] * 2
    assert summary["trials"][0]["train.learning_rate"] != summary["trials"][1]["train.learning_rate"]
    for row in summary["trials"]:
        runs = [out / "trials" / f"trial_{row['trial']}{s}" for s in ("", "_exec1")]
        scores = [_history(r)["test_elbo"][-1] for r in runs]
        assert row["test_elbo"] == pytest.approx(np.mean(scores))
        assert scores[0] != scores[1]  # the second execution has its own seed
        assert training.load_run_config(runs[1]).seed == training.load_run_config(runs[0]).seed + 1


@pytest.mark.parametrize("code, tail, raised, message", [
    (2, ["noise\n", "aigc-tf: error: data.path=x not found; pass a folder\n"], tuning.SearchError,
     "trial 7 .*data.path=x not found; pass a folder$"),
    (3, ["aigc-tf: training stopped: loss became nan at epoch 1\n"], "FailedTrialError", "loss became nan"),
    (-9, ["Epoch 1/2\n"], "FailedTrialError", "killed by signal 9"),
    (1, [], "FailedTrialError", "exit status 1"),
    (130, [], KeyboardInterrupt, ""),
])
def test_a_child_trial_exit_status_stops_the_search_or_fails_the_trial_alone(tmp_path, code, tail, raised, message):
    import keras_tuner as kt

    raised = getattr(kt.errors, raised) if isinstance(raised, str) else raised
    with pytest.raises(raised, match=message):
        tuning.check_child(code, tail, "7", tmp_path / "trial_7")
    tuning.check_child(0, tail, "7", tmp_path / "trial_7")  # success raises nothing


@pytest.mark.slow
def test_a_user_error_in_a_child_trial_stops_the_search_with_its_one_line(tmp_path):
    raw = _raw(max_trials=2, epochs=1, isolate=True)
    raw["data"] = {**raw["data"], "name": "folder", "path": str(tmp_path / "no_such_folder")}
    cfg, tune = config_module.tune_from_dict(raw, "t")
    with pytest.raises(tuning.SearchError, match="trial 0 .*no_such_folder"):
        tuning.search(cfg, tune, tmp_path / "search", verbose=0)
    assert not (tmp_path / "search" / "trials" / "trial_0").exists()  # the child removed its fresh run dir
    assert not list((tmp_path / "search" / "trials").glob(".*.yaml"))  # the trial's config file is gone


def test_a_missing_objective_stops_the_search_with_one_clear_error(tmp_path):
    raw = _raw(max_trials=2, epochs=1, objective="fid", direction="min")
    cfg, tune = config_module.tune_from_dict(raw, "t")
    with pytest.raises(tuning.SearchError, match="objective 'fid' was not logged .*val_loss"):
        tuning.search(cfg, tune, tmp_path / "search", verbose=0)


def test_a_foreign_directory_is_refused_untouched(tmp_path):
    cfg, tune = config_module.tune_from_dict(_raw(), "t")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="holds no aigc-tf search"):
        tuning.check_search_dir(tmp_path, cfg, tune)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


# ------------------------------------------------------------- HyperModel
@pytest.mark.slow
def test_hypermodel_tunes_a_gan_with_its_two_optimizers_and_reloads_its_weights(tmp_path):
    import keras_tuner as kt

    cfg = tiny_config("dcgan", train={"epochs": 1, "verbose": 0, "num_samples": 16, "quality_samples": 64})
    task = registry.task_for("dcgan")
    hm = task.hypermodel(cfg, {"train.learning_rate": {"choice": [1e-4, 1e-3]}})
    tuner = kt.RandomSearch(hm, objective=kt.Objective("fid", "min"), max_trials=2, directory=str(tmp_path),
                            project_name="gan")
    tuner.search(verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["COMPLETED"] * 2 and all(np.isfinite(t.score) for t in trials)
    best = tuner.get_best_models(1)[0]
    lr = tuner.get_best_hyperparameters(1)[0].get("train.learning_rate")
    assert best.d_optimizer is not best.g_optimizer
    assert float(best.g_optimizer.learning_rate) == pytest.approx(lr)
    fresh = hm.build(tuner.get_best_hyperparameters(1)[0])  # same seed: the weights before training
    z = best.sample_latent(2, seed=0)
    assert not np.allclose(best.generator(z).numpy(), fresh.generator(z).numpy())  # trained weights were loaded


def test_hypermodel_refuses_a_space_the_config_does_not_have():
    with pytest.raises(ConfigError, match="unknown key 'model.latent_dims'"):
        registry.task_for("dcgan").hypermodel(tiny_config("dcgan"), {"model.latent_dims": {"choice": [4, 8]}})


# ------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_tune_under_mirrored_strategy_and_its_errors(tmp_path):
    path = _write(tmp_path, max_trials=2, epochs=1, isolate=True)  # mirrored trials in child processes
    out = tmp_path / "search"
    done = _cli("tune", path, "--run-dir", out, "--set", "train.strategy=mirrored", "train.cpu_devices=2")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Best trial" in done.stdout and "aigc-tf train" in done.stdout
    assert training.load_run_config(out / "best").train.strategy == "mirrored"
    sample = _cli("sample", out / "best", "-n", "4", "--out", tmp_path / "s.png")
    assert sample.returncode == 0 and (tmp_path / "s.png").is_file()
    before = sorted(p.name for p in out.rglob("*"))
    refused = _cli("tune", path, "--run-dir", out, "--set", "train.learning_rate=0.01")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "another config" in refused.stderr
    assert sorted(p.name for p in out.rglob("*")) == before
    no_tune = tmp_path / "plain.yaml"
    no_tune.write_text(yaml.safe_dump({k: v for k, v in _raw().items() if k != "tune"}))
    missing = _cli("tune", no_tune, "--run-dir", tmp_path / "x")
    assert missing.returncode == 2 and "has no tune: section" in missing.stderr and not (tmp_path / "x").exists()


def _free_port() -> int:
    from aigc_tf import distribute

    return distribute.free_ports(1)[0]  # below the ephemeral range (see its docstring)


@pytest.mark.slow
def test_distributed_search_with_a_chief_and_two_workers(tmp_path):
    path = _write(tmp_path, max_trials=4, epochs=1)
    out = tmp_path / "search"
    port = _free_port()
    base = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port), "TF_CPP_MIN_LOG_LEVEL": "2"}
    procs = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        log = open(tmp_path / f"{tuner_id}.log", "w")
        procs[tuner_id] = (subprocess.Popen(
            [sys.executable, "-m", "aigc_tf.cli", "tune", str(path), "--run-dir", str(out)], cwd=ROOT,
            env={**os.environ, **base, "KERASTUNER_TUNER_ID": tuner_id}, stdout=log, stderr=subprocess.STDOUT), log)
        if tuner_id == "chief":
            time.sleep(3)  # the oracle listens before the workers ask it
    deadline = time.monotonic() + 420
    try:
        for proc, _ in procs.values():
            proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for proc, log in procs.values():
            if proc.poll() is None:
                proc.kill()
            log.close()
    logs = {t: (tmp_path / f"{t}.log").read_text() for t in procs}
    assert all(p.returncode == 0 for p, _ in procs.values()), {t: s[-1500:] for t, s in logs.items()}
    summary = json.loads((out / "trials.json").read_text())
    assert [r["status"] for r in summary["trials"]] == ["COMPLETED"] * 4
    ran = {t: {line.split()[2] for line in logs[t].splitlines() if line.startswith(f"[{t}] trial ")}
           for t in ("tuner0", "tuner1")}
    assert ran["tuner0"] and ran["tuner1"], logs  # both workers ran trials
    assert ran["tuner0"] | ran["tuner1"] == {r["trial"] for r in summary["trials"]}
    assert "Best trial" in logs["chief"] and (out / "best" / "model.keras").is_file()
