"""The run directory: layout, state, resume, config diff.

A run directory holds::

    config.yaml          the resolved config (every default filled in)
    samples/             epoch_0001.png / .txt, ... the family's samples per epoch
    checkpoints/         last.keras (model + every optimizer) and state.json (epochs done;
                         steps done in the next epoch when a preempted run saved mid-epoch)
    logs/                TensorBoard event files
    history.json         metrics per epoch (losses, validation, seconds)
    history.png          the same as curves
    model.keras          the final model, written when training finishes

Rerunning the same command on an interrupted run resumes from
``checkpoints/last.keras``; a finished run is only trained further when asked
(``resume=True`` with a larger ``train.epochs``). Every file written during
training goes through :class:`RunWriter`, the one place that decides whether
this process writes (only the chief of a multi-worker cluster does).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from aigc_tf.config import Config, from_dict
from aigc_tf.errors import RunDirError

STATE_FILE = "state.json"
LAST_CHECKPOINT = "last.keras"
FINAL_MODEL = "model.keras"
# Keys that may change between the first run and a resume of the same run.
RESUMABLE_KEYS = {
    "train.epochs", "train.verbose", "train.sample_every", "train.quality_every", "train.quality_samples",
    "train.sample_prompt", "train.sample_max_new_tokens", "train.sample_temperature",
    # Where it runs: the global batch and the arithmetic are the same on one device,
    # several, or several workers, so a run may move (e.g. resume a cluster's run on one machine).
    "train.strategy", "train.cpu_devices",
}
# What `train` itself writes before the first checkpoint exists.
OWN_ENTRIES = {"config.yaml", "logs", "samples", "history.json", "checkpoints"}


def truncate_history(history: dict, last_epoch: int) -> dict:
    """Keep only what was logged up to ``last_epoch`` (dense and sparse keys)."""
    out = {}
    for key, values in history.items():
        if key.endswith("_epochs"):
            continue
        epochs = history.get(f"{key}_epochs", history.get("epoch", []))
        keep = [i for i, e in enumerate(epochs) if e <= last_epoch]
        out[key] = [values[i] for i in keep if i < len(values)]
        if f"{key}_epochs" in history:
            out[f"{key}_epochs"] = [epochs[i] for i in keep]
    return out


def write_json_atomic(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary name, then rename: a reader (another worker) sees all or nothing."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def read_state(run_dir: Path) -> dict | None:
    path = Path(run_dir) / "checkpoints" / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise RunDirError(f"{path} is corrupt; delete the run directory or pass --run-dir NEW") from None


def resume_point(run_dir: Path) -> tuple[int, int]:
    """``(epochs done, steps done in the next epoch)`` of the run's last checkpoint (``(0, 0)``: none)."""
    state = read_state(run_dir)
    if state is None:
        return 0, 0
    return int(state["epochs_done"]), int(state.get("steps_done", 0))


def load_run_config(run_dir: str | Path) -> Config:
    path = Path(run_dir) / "config.yaml"
    if not Path(run_dir).exists():
        raise RunDirError(f"{run_dir} does not exist; pass a run directory written by `aigc-tf train` (e.g. runs/dcgan_digits)")
    if not Path(run_dir).is_dir():
        raise RunDirError(f"{run_dir} is a file, not a run directory; pass a directory written by `aigc-tf train`")
    if not path.is_file():
        raise RunDirError(f"{run_dir} is not a run directory (no config.yaml); pass a directory written by `aigc-tf train`")
    return from_dict(yaml.safe_load(path.read_text()), str(path))


def prepare_run_dir(run_dir: Path, cfg: Config, resume: bool, write: bool = True) -> int:
    """Create or check ``run_dir``; return the number of epochs already done.

    ``write=False`` only checks (the CLI does this before TensorFlow starts,
    so a refused run directory answers at once)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is a file, not a directory; pass --run-dir with a directory path")
    state = read_state(run_dir)
    if state is None:
        # New, empty, or stopped before its first checkpoint: (re)start at epoch 0.
        if run_dir.exists():
            foreign = sorted(p.name for p in run_dir.iterdir() if p.name not in OWN_ENTRIES)
            if foreign or ((run_dir / "logs").exists() and not (run_dir / "config.yaml").is_file()):
                raise RunDirError(
                    f"{run_dir} exists and is not an aigc-tf run (it holds {', '.join(foreign[:3]) or 'logs'}); "
                    "pass --run-dir NEW (nothing was changed)"
                )
            if (run_dir / "config.yaml").is_file():
                _check_same_config(run_dir, cfg)
        if write:
            run_dir.mkdir(parents=True, exist_ok=True)
            _dump_config(cfg, run_dir)
        return 0
    _check_same_config(run_dir, cfg)
    done = int(state["epochs_done"])
    if state.get("finished") and done == cfg.train.epochs and not (run_dir / FINAL_MODEL).is_file():
        # Stopped after its last checkpoint but before model.keras appeared: finish it.
        if write:
            _dump_config(cfg, run_dir)
        return done
    if state.get("finished") and not resume:
        raise RunDirError(
            f"{run_dir} holds a finished run ({done} epochs); use a new run directory "
            "(CLI: --run-dir NEW; Python: train(cfg, NEW_DIR)), or train it further with a larger train.epochs "
            "(CLI: --resume --set train.epochs=N; Python: train(cfg, run_dir, resume=True))"
        )
    if state.get("finished") and done >= cfg.train.epochs:
        raise RunDirError(
            f"{run_dir} has already trained {done} epochs; ask for more with --set train.epochs={done + 10}"
        )
    if done > cfg.train.epochs:
        raise RunDirError(
            f"{run_dir} has already trained {done} epochs, more than train.epochs={cfg.train.epochs}; "
            f"pass --set train.epochs={done} or more"
        )
    if write:
        _dump_config(cfg, run_dir)
    return done


def _dump_config(cfg: Config, run_dir: Path) -> None:
    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def _check_same_config(run_dir: Path, cfg: Config) -> None:
    old_cfg = load_run_config(run_dir)
    if old_cfg.train.lr_schedule == "cosine" and old_cfg.train.epochs != cfg.train.epochs:
        raise RunDirError(
            f"{run_dir} was trained with a cosine learning rate laid out over train.epochs={old_cfg.train.epochs}; "
            "changing epochs would continue at learning rate 0: pass --run-dir NEW for a longer run"
        )
    old = _flatten(old_cfg.to_dict())
    new = _flatten(cfg.to_dict())
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in RESUMABLE_KEYS)
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:3])
        raise RunDirError(
            f"{run_dir} holds a run with a different config ({shown}); pass --run-dir NEW for a new run"
        )


def final_model_path(run_dir: str | Path) -> Path:
    """The finished model, or the last checkpoint of an unfinished run."""
    run_dir = Path(run_dir)
    if (run_dir / FINAL_MODEL).is_file():
        return run_dir / FINAL_MODEL
    if (run_dir / "checkpoints" / LAST_CHECKPOINT).is_file():
        return run_dir / "checkpoints" / LAST_CHECKPOINT
    raise RunDirError(f"{run_dir} has no trained model (no {FINAL_MODEL} or checkpoint); run `aigc-tf train` first")




def is_chief() -> bool:
    """False only for a non-chief task of a multi-worker cluster described by ``TF_CONFIG``
    (the chief, or worker 0 of a cluster without one, writes). Anything else, a
    missing, empty or malformed ``TF_CONFIG`` included, is a single process: True."""
    raw = os.environ.get("TF_CONFIG")
    try:
        config = json.loads(raw) if raw else {}
    except ValueError:
        return True
    task = config.get("task") if isinstance(config, dict) else None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    if not isinstance(task, dict) or not isinstance(cluster, dict) or not task.get("type"):
        return True
    try:
        index = int(task.get("index") or 0)
    except (TypeError, ValueError):
        index = 0
    if "chief" in cluster:
        return task["type"] == "chief"
    return task["type"] == "worker" and index == 0


class RunWriter:
    """Every write into a run directory during training, done only on the chief."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.active = is_chief()

    def path(self, *parts: str) -> Path:
        return self.run_dir.joinpath(*parts)

    def json(self, relative: str, obj) -> None:
        if self.active:
            path = self.path(relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, obj)

    def save_model(self, model, relative: str) -> None:
        """``model.save`` to a temporary name, then an atomic rename."""
        if self.active:
            target = self.path(relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f"{target.stem}.tmp{os.getpid()}.keras")
            model.save(tmp)
            os.replace(tmp, target)

    def checkpoint(self, model, epochs_done: int, steps_done: int = 0) -> None:
        """The model with every optimizer, then the state: ``epochs_done`` epochs and, for a
        checkpoint saved mid-epoch (preemption), ``steps_done`` steps of the next one."""
        self.save_model(model, f"checkpoints/{LAST_CHECKPOINT}")
        state = {"epochs_done": epochs_done, "finished": False}
        if steps_done:
            state["steps_done"] = steps_done
        self.json(f"checkpoints/{STATE_FILE}", state)

    def finish(self, model, epochs: int) -> None:
        self.save_model(model, FINAL_MODEL)
        self.json(f"checkpoints/{STATE_FILE}", {"epochs_done": epochs, "finished": True})

    def samples(self, write) -> None:
        """Run ``write(samples_dir)`` on the chief. Under a multi-worker strategy ``write``
        must not run collectives (``fit``/``evaluate``/``predict`` of the training model, ``strategy.run``):
        the other workers are not there to join them."""
        if self.active:
            (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
            write(self.run_dir / "samples")

    def plot_history(self, history: dict) -> None:
        if self.active and history.get("epoch"):
            from aigc_tf import viz

            viz.plot_history(history, self.path("history.png"))
