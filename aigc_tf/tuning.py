"""Hyperparameter search with keras-tuner, for every family, from a config's ``tune:`` section.

Two ways in:

* ``aigc-tf tune CONFIG.yaml`` (:func:`search`): every trial is an ordinary
  run directory trained by :func:`aigc_tf.training.train` (checkpoints,
  resume, samples, history, the family's quality metric), so a trial that is
  interrupted resumes from its last epoch when the command is rerun, and the
  best one is a run directory that ``sample``, ``evaluate`` and ``export``
  take. The search directory holds::

      tune.yaml          the base config and tune section of this search
      tuner/             keras-tuner's oracle state (reloaded on rerun)
      trials/trial_ID/   one run directory per trial (trial_ID_execK: repeats)
      trials.json        the table of trials (parameters, objective, seconds)
      trials.png         objective per trial, with the best so far
      best/              a copy of the best trial's run directory
      best_config.yaml   the best configuration with the full train.epochs

  keras-tuner's Keras-model path is not used here: a trial's model is saved
  and loaded by our run directory, which sidesteps keras-tuner's weight
  reload of never-called subclassed models (a GAN) and its recompiling with
  one optimizer.

  Each trial trains in a child process (``aigc-tf train`` on the trial's
  config; ``tune.isolate``, on by default). In one process, memory grows by
  the trial's traced graphs each trial even after ``clear_session`` and
  ``gc.collect`` (measured by ``benchmarks/tuning_memory.py``: the FuncGraph
  of Keras's ``one_step_on_data`` stays alive with no Python referrer); a
  child gives all of it back, and a trial that crashes or runs out of memory
  fails alone instead of ending the search. ``tune.isolate: false`` (or
  Python ``callbacks``) trains in this process, clearing the session after
  each trial.

* :class:`ConfigHyperModel` (``task.hypermodel(cfg, space)``): a
  ``keras_tuner.HyperModel`` for notebook users who drive ``keras_tuner``
  themselves; ``build`` compiles the family's model (a GAN's two optimizers
  included) and ``fit`` trains it with the family's quality callback in front
  of keras-tuner's callbacks, so the objective is in the logs it reads.

Distributed search is keras-tuner's: set ``KERASTUNER_TUNER_ID`` (``chief``
for the oracle process, ``tuner0``, ``tuner1``, ... for workers),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` and run the same
command in every process; the search directory must be shared by all.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import yaml

from aigc_tf import registry
from aigc_tf.callbacks import AveragedWeights
from aigc_tf.config import Config, TuneConfig, _space_values, from_dict, set_key, tune_from_dict
from aigc_tf.errors import UserError
from aigc_tf.run_dir import FINAL_MODEL, read_state
from aigc_tf.tuning_dir import SEARCH_FILE, check_search_dir, record

TUNER_DIR = "tuner"
PROJECT = "search"


class SearchError(UserError, kt.errors.FatalError):
    """A user error inside a trial (bad data, a model that does not fit): stops the search."""


# ------------------------------------------------------------------ space
def declare(hp, space: dict) -> None:
    """Declare ``space`` (a ``tune.space`` mapping) on keras-tuner ``HyperParameters``."""
    for key, spec in space.items():
        kind, values = _space_values(key, spec, f"tune.space.{key}")
        if kind == "choice":
            hp.Choice(key, values)
        elif kind == "int":
            hp.Int(key, values[0], values[1], step=spec.get("step"), sampling=spec.get("sampling", "linear"))
        else:
            hp.Float(key, float(values[0]), float(values[1]), step=spec.get("step"),
                     sampling=spec.get("sampling", "linear"))


def values_of(hp, space: dict) -> dict[str, Any]:
    """The space's values of a trial's hyperparameters (``tuner/...`` bookkeeping left out)."""
    return {key: hp.get(key) for key in space}


def trial_config(base: Config, values: dict[str, Any], epochs: int | None = None, seed_offset: int = 0,
                 objective: str | None = None) -> Config:
    """``base`` with the space's ``values`` set (and ``train.epochs``, the seed
    moved by ``seed_offset``). When the objective is a metric the family logs
    only every ``train.quality_every`` epochs and that is off, it is computed at
    the last epoch."""
    raw = base.to_dict()
    where = "tune trial"
    for key, value in values.items():
        raw = set_key(raw, key.split("."), value, where)
    if epochs is not None:
        raw = set_key(raw, ["train", "epochs"], epochs, where)
    raw["seed"] = raw["seed"] + seed_offset
    task = registry.task_for(raw["model"]["name"])
    if objective in task.sparse_metrics and not raw["train"].get("quality_every"):
        raw = set_key(raw, ["train", "quality_every"], raw["train"]["epochs"], where)
    return from_dict(raw, f"tune trial ({', '.join(f'{k}={v!r}' for k, v in values.items())})")


def oracle_for(tune: TuneConfig, base: Config):
    """The keras-tuner oracle of ``tune.algorithm`` with the space declared."""
    hp = kt.HyperParameters()
    declare(hp, tune.space)
    objective = kt.Objective(tune.objective, tune.direction)
    seed = base.seed if tune.seed is None else tune.seed
    common = dict(objective=objective, hyperparameters=hp, seed=seed, tune_new_entries=False,
                  allow_new_entries=False, max_retries_per_trial=0)
    if tune.algorithm == "hyperband":
        return kt.oracles.HyperbandOracle(max_epochs=tune.epochs or base.train.epochs,
                                          factor=tune.hyperband_factor, hyperband_iterations=1, **common)
    if tune.algorithm == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(max_trials=tune.max_trials,
                                                     num_initial_points=tune.initial_points, **common)
    return kt.oracles.RandomSearchOracle(max_trials=tune.max_trials, **common)


def free_memory() -> None:
    """Drop what a finished trial left in Keras's global state (keras-tuner #873)."""
    keras.backend.clear_session()
    gc.collect()


# ------------------------------------------------------------------- CLI path
class _Space(kt.HyperModel):
    """Declares the space for the oracle; ``build`` is never used to train."""

    def __init__(self, space: dict):
        super().__init__(name="aigc_tf_space")
        self.space = space

    def declare_hyperparameters(self, hp):
        declare(hp, self.space)

    def build(self, hp):
        declare(hp, self.space)


class RunDirTuner(kt.engine.base_tuner.BaseTuner):
    """A tuner whose trials are run directories trained by :func:`aigc_tf.training.train`."""

    def __init__(self, base: Config, tune: TuneConfig, search_dir: Path, callbacks: list | None = None,
                 overwrite: bool = False, verbose: int = 1):
        self.base = base
        self.tune = tune
        self.search_dir = Path(search_dir)
        self.callbacks = list(callbacks or [])
        self.verbose = verbose
        super().__init__(oracle=oracle_for(tune, base), hypermodel=_Space(tune.space),
                         directory=str(self.search_dir / TUNER_DIR), project_name=PROJECT, overwrite=overwrite)

    def run_dir_of(self, trial_id: str, execution: int = 0) -> Path:
        name = f"trial_{trial_id}" + (f"_exec{execution}" if execution else "")
        return self.search_dir / "trials" / name

    def run_trial(self, trial, *args, **kwargs):
        from aigc_tf import training

        hp = trial.hyperparameters
        values = values_of(hp, self.tune.space)
        epochs = hp.values.get("tuner/epochs", self.tune.epochs or self.base.train.epochs)
        parent = hp.values.get("tuner/trial_id")
        objective = self.tune.objective
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        print(f"[{self.tuner_id}] trial {trial.trial_id} starts: {shown}, {epochs} epochs"
              + (f" (continues trial {parent})" if parent else ""), flush=True)
        scores, seconds = [], 0.0
        for execution in range(self.tune.executions_per_trial):
            cfg = trial_config(self.base, values, epochs, execution, objective)
            run = self.run_dir_of(trial.trial_id, execution)
            if parent and not run.exists():
                _copy_run(self.run_dir_of(parent, execution), run)  # Hyperband: continue the parent's run
            state = read_state(run) or {}
            done = state.get("finished") and state.get("epochs_done") == epochs and (run / FINAL_MODEL).is_file()
            start = time.perf_counter()
            if not done:  # done: finished before an interruption reached the oracle
                resume = bool(state.get("finished"))
                if self.tune.isolate and not self.callbacks:
                    train_in_child(cfg, run, resume, trial.trial_id, quiet=not self.verbose)
                else:  # in this process (Python callbacks cannot cross into a child)
                    try:
                        training.train(cfg, run, resume=resume, callbacks=self.callbacks)
                    except training.TrainingDiverged as exc:
                        raise kt.errors.FailedTrialError(str(exc)) from None
                    except UserError as exc:
                        raise SearchError(f"trial {trial.trial_id} ({run}): {exc}") from None
            seconds += time.perf_counter() - start
            scores.append(objective_value(run, objective, trial.trial_id))
        return {objective: float(sum(scores) / len(scores)), "seconds": seconds}

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        free_memory()

    def save_model(self, trial_id, model, step=0):
        pass  # the trial's run directory holds it

    def load_model(self, trial):
        from aigc_tf import training

        return training.load_model(self.run_dir_of(trial.trial_id) / FINAL_MODEL)


def train_in_child(cfg: Config, run: Path, resume: bool, trial_id: str, quiet: bool = False) -> None:
    """Train one trial as ``aigc-tf train`` in a child process (``tune.isolate``).

    The child's output is passed through (``quiet``: its stdout is dropped);
    its exit status decides: 0 done, 2 (a user error) stops the search with the
    child's message, 3 (diverged) and any crash (a signal, out of memory) fail
    this trial only, 130 (Ctrl-C) stops the search like an interrupt here.
    """
    import subprocess
    import sys
    import threading

    run.parent.mkdir(parents=True, exist_ok=True)
    config_file = run.parent / f".{run.name}.yaml"
    cfg.dump(config_file)
    command = [sys.executable, "-m", "aigc_tf.cli", "train", str(config_file), "--run-dir", str(run)]
    tail: list[str] = []

    def forward(stream):
        for line in stream:  # live, so TensorFlow's and Keras's messages still show
            sys.stderr.write(line)
            tail[:] = (tail + [line])[-20:]

    try:
        with subprocess.Popen(command + (["--resume"] if resume else []), stdout=subprocess.DEVNULL if quiet else None,
                              stderr=subprocess.PIPE, text=True, errors="replace") as child:
            reader = threading.Thread(target=forward, args=(child.stderr,), daemon=True)
            reader.start()
            code = child.wait()
            reader.join()
    finally:
        config_file.unlink(missing_ok=True)
    check_child(code, tail, trial_id, run)


def check_child(code: int, stderr_tail: list[str], trial_id: str, run: Path) -> None:
    """Raise what a trial's child process's exit ``code`` means (see :func:`train_in_child`)."""
    message = next((line.strip() for line in reversed(stderr_tail) if line.startswith("aigc-tf")), "")
    message = message.removeprefix("aigc-tf: error: ").removeprefix("aigc-tf: ")
    if code == 0:
        return
    if code == 130:
        raise KeyboardInterrupt
    if code == 2:
        raise SearchError(f"trial {trial_id} ({run}): {message or 'aigc-tf train exited with status 2'}")
    why = message or (f"killed by signal {-code}" if code < 0 else f"exit status {code}")
    raise kt.errors.FailedTrialError(f"trial {trial_id} ({run}): {why}")


def objective_value(run: Path, key: str, trial_id: str) -> float:
    """The last logged value of ``key`` in a run's ``history.json``."""
    history = json.loads((run / "history.json").read_text())
    values = history.get(key)
    if not values:
        logged = sorted(k for k in history if not k.endswith("_epochs") and k != "epoch")
        raise SearchError(f"trial {trial_id}: the objective {key!r} was not logged (history.json has "
                          f"{', '.join(logged)}); set tune.objective to one of those with tune.direction")
    value = float(values[-1])
    if not math.isfinite(value):
        raise kt.errors.FailedTrialError(f"trial {trial_id}: {key} is {value}")
    return value


def _copy_run(source: Path, target: Path) -> None:
    if not (source / "config.yaml").is_file():
        raise SearchError(f"{source} (the trial Hyperband continues) is missing; the search directory must hold "
                          "every trial (shared by all workers of a distributed search)")
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    tmp.rename(target)


def _replace_dir(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target``, replacing what was there only once the copy is complete."""
    tmp = target.with_name("." + target.name + ".tmp")
    old = target.with_name("." + target.name + ".old")
    for p in (tmp, old):
        shutil.rmtree(p, ignore_errors=True)
    shutil.copytree(source, tmp)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------ search
def is_worker() -> bool:
    """A worker of a distributed search (it runs trials; the chief writes the summary)."""
    from keras_tuner.src.distribute import utils

    return utils.has_chief_oracle() and not utils.is_chief_oracle()


def search(base: Config, tune: TuneConfig, search_dir: str | Path, callbacks: list | None = None,
           verbose: int = 1) -> dict | None:
    """Run (or resume) the search of ``tune`` around ``base`` in ``search_dir``.

    Returns the summary written to ``trials.json`` (None on a worker of a
    distributed search, which only runs trials)."""
    search_dir = Path(search_dir)
    check_search_dir(search_dir, base, tune)
    search_dir.mkdir(parents=True, exist_ok=True)
    worker = is_worker()
    if not worker:
        path = search_dir / SEARCH_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump(record(base, tune), sort_keys=False))
        os.replace(tmp, path)
    tuner = RunDirTuner(base, tune, search_dir, callbacks=callbacks, verbose=verbose)
    tuner.search(verbose=verbose)
    if worker:
        return None
    return write_summary(tuner)


def trial_rows(tuner: RunDirTuner) -> list[dict]:
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items(), key=lambda item: (len(item[0]), item[0])):
        hp = trial.hyperparameters.values
        row = {"trial": trial_id, "status": str(trial.status), **{k: hp.get(k) for k in tuner.tune.space}}
        if "tuner/epochs" in hp:
            row["epochs"] = hp["tuner/epochs"]
            row["continues"] = hp.get("tuner/trial_id")
        row[tuner.tune.objective] = trial.score
        seconds = trial.metrics.get_last_value("seconds") if trial.metrics.exists("seconds") else None
        row["seconds"] = None if seconds is None else round(float(seconds), 1)
        rows.append(row)
    return rows


def write_summary(tuner: RunDirTuner) -> dict:
    """``trials.json``, ``trials.png``, ``best/`` and ``best_config.yaml`` of a finished search."""
    tune, base, out = tuner.tune, tuner.base, tuner.search_dir
    rows = trial_rows(tuner)
    best = tuner.oracle.get_best_trials(1)
    summary = {"objective": tune.objective, "direction": tune.direction, "algorithm": tune.algorithm,
               "best_trial": best[0].trial_id if best else None, "trials": rows}
    if best:
        values = values_of(best[0].hyperparameters, tune.space)
        summary["best_score"] = best[0].score
        summary["best_values"] = values
        _replace_dir(tuner.run_dir_of(best[0].trial_id), out / "best")
        full = trial_config(base, values)  # the full budget: the base config's train.epochs
        full.dump(out / "best_config.yaml")
    tmp = out / "trials.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out / "trials.json")
    plot_trials(summary, out / "trials.png")
    return summary


def format_trials(summary: dict) -> str:
    """The trials as a text table, best marked with ``*``."""
    rows = summary["trials"]
    if not rows:
        return "no trials"
    keys = list(rows[0])
    for row in rows[1:]:
        keys += [k for k in row if k not in keys]

    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "-" if v is None else str(v)

    table = [[""] + keys] + [["*" if r["trial"] == summary["best_trial"] else ""] + [cell(r.get(k)) for k in keys]
                             for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table)


def plot_trials(summary: dict, path: Path) -> Path:
    """Objective per finished trial (dots) and the best so far (a step line)."""
    from matplotlib.figure import Figure

    key, lower = summary["objective"], summary["direction"] == "min"
    points = [(i, r[key]) for i, r in enumerate(summary["trials"]) if r.get(key) is not None]
    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    if points:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, "o", label="trial")
        best, running = [], None
        for y in ys:
            running = y if running is None else (min(running, y) if lower else max(running, y))
            best.append(running)
        ax.step(xs, best, where="post", label="best so far")
        ax.legend()
    ax.set_xlabel("trial (in order of creation)")
    ax.set_ylabel(f"{key} ({'lower' if lower else 'higher'} is better)")
    ax.set_title(f"{summary['algorithm']} search")
    fig.tight_layout()
    fig.savefig(path)
    return path


# --------------------------------------------------------- notebook path
class ConfigHyperModel(kt.HyperModel):
    """A ``keras_tuner.HyperModel`` over ``space`` (a ``tune.space`` mapping) around ``cfg``.

    ``build(hp)`` returns the family's compiled model for the trial's config
    (two optimizers for a GAN; do not pass ``optimizer=`` to the tuner, which
    would recompile it with one); ``fit(hp, model, ...)`` loads that config's
    data and trains with the family's quality metric in the logs, so
    ``kt.Objective(task.objective...)`` works::

        hm = task.hypermodel(cfg, {"train.learning_rate": {"float": [1e-4, 1e-3], "sampling": "log"}})
        tuner = keras_tuner.RandomSearch(hm, objective=keras_tuner.Objective("fid", "min"), max_trials=4)
        tuner.search(epochs=2)
    """

    def __init__(self, cfg: Config, space: dict, verbose: int = 2):
        super().__init__(name=f"aigc_tf_{cfg.model['name']}")
        raw = cfg.to_dict()
        raw["tune"] = {"space": space, "objective": "-", "direction": "min"}
        tune_from_dict(raw, "hypermodel")  # the space must fit the config
        self.cfg, self.space, self.verbose = cfg, space, verbose
        self.task = registry.task_for(cfg.model["name"])
        self._data = {}

    def declare_hyperparameters(self, hp):
        declare(hp, self.space)

    def config(self, hp, epochs: int | None = None) -> Config:
        """The trial's config (its quality metric on at the last epoch if it was off)."""
        objective = self.task.objective[0] if self.task.objective else None
        return trial_config(self.cfg, values_of(hp, self.space), epochs, objective=objective)

    def data(self, cfg: Config):
        key = json.dumps([cfg.seed, dataclasses.asdict(cfg.data)], sort_keys=True, default=str)
        if key not in self._data:
            self._data[key] = self.task.load_data(cfg)
        return self._data[key]

    def build(self, hp):
        declare(hp, self.space)
        cfg = self.config(hp)
        data = self.data(cfg)
        keras.utils.set_random_seed(cfg.seed)
        return self.task.build_model(cfg, data)

    def fit(self, hp, model, *args, callbacks=None, epochs=None, initial_epoch=0, **kwargs):
        cfg = self.config(hp, epochs)
        data = self.data(cfg)
        quality = self.task.quality_callback(cfg)
        own = [quality] if quality is not None else []  # first: keras-tuner's callbacks read its value
        if cfg.train.ema_momentum:
            own.insert(0, AveragedWeights())  # the objective and keras-tuner's checkpoints see the average
        validation = data.test if (cfg.train.validate and data.test is not None) else None
        history = model.fit(data.train, epochs=cfg.train.epochs, initial_epoch=initial_epoch,
                            steps_per_epoch=cfg.train.steps_per_epoch, validation_data=validation,
                            callbacks=own + list(callbacks or []), verbose=kwargs.pop("verbose", self.verbose),
                            shuffle=False)
        # The last value of each metric (keras-tuner's reading of a History
        # misaligns metrics logged only on some epochs, such as FID).
        return {key: float(values[-1]) for key, values in history.history.items() if values}
