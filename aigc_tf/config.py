"""Typed experiment configuration: YAML in, validated dataclasses out.

A config file has four top-level keys::

    seed: 0
    model: {name: dcgan, latent_dim: 100, ...}   # name + that model's arguments
    data:  {name: digits, batch_size: 64, ...}
    train: {epochs: 10, strategy: default, ...}

``data`` and ``train`` are fixed dataclasses. ``model`` holds ``name`` plus the
keyword arguments of the model class that name selects; they are checked
against the class's ``__init__`` signature, so a typo or a wrong type is caught
before TensorFlow is imported. Every error names the file (or ``--set``), the
key and the fix, and is raised as :class:`~aigc_tf.errors.ConfigError`.

This module must stay importable without TensorFlow: ``aigc-tf --help`` and
config validation are fast because of it.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from aigc_tf.errors import ConfigError

STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
ALGORITHMS = ("random", "hyperband", "bayesian")
SAMPLINGS = ("linear", "log", "reverse_log")
DIRECTIONS = ("min", "max")
LR_SCHEDULES = ("constant", "cosine")


@dataclasses.dataclass
class DataConfig:
    """The ``data:`` keys every modality has. Each family's task extends it with its
    modality's own keys (``aigc_tf.tasks.image.ImageDataConfig``, ``...text.TextDataConfig``),
    and a config's ``data:`` section is validated against that class."""

    name: str = "digits"
    path: str | None = None
    batch_size: int = 64
    shuffle_buffer: int = 10000
    max_examples: int | None = None
    data_dir: str | None = None
    download: bool = True
    # A tf.data service dispatcher (grpc://HOST:PORT) that runs the training
    # pipeline on its workers; null: the trainer runs it (README: Distribution).
    service: str | None = None


# Release 0.1.0 had one flat data section; its run directories record every key
# with these defaults. A key of another modality at its old default is dropped
# when such a config is read; set to anything else it is an error.
LEGACY_DATA_DEFAULTS = {
    "image_size": None, "channels": None, "cache": True,
    "tokenizer": "char", "vocab_size": None, "seq_len": 128, "unsupervised": False, "random_windows": False,
}


@dataclasses.dataclass
class TrainConfig:
    """How long and how to train, and what a run directory records."""

    epochs: int = 10
    # default (one device), mirrored (this machine's GPUs or logical CPUs), or
    # multi_worker (a cluster described by TF_CONFIG; `aigc-tf train --workers N`).
    strategy: str = "default"
    # Logical CPU devices to split the CPU into for `strategy: mirrored` when
    # no GPU is present (a way to exercise data parallelism on a laptop).
    cpu_devices: int = 1
    # float32, or mixed_float16 / mixed_bfloat16 (layers compute in 16 bits,
    # variables, logits and losses stay float32; float16 scales each loss).
    precision: str = "float32"
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    # GAN only: discriminator learning rate; null means `learning_rate`.
    d_learning_rate: float | None = None
    steps_per_epoch: int | None = None
    steps_per_execution: int = 1
    jit_compile: bool = False
    deterministic: bool = False
    sample_every: int = 1
    num_samples: int = 64
    validate: bool = True
    # Every K epochs (and at the last), compute the family's quality metric
    # into the history and TensorBoard: FID for GANs, test ELBO for VAEs.
    # 0 turns it off.
    quality_every: int = 0
    quality_samples: int = 1000
    # Learning rate schedule: constant, or cosine decay to 0 over the whole run
    # after `warmup_steps` of linear warm-up (both for single-optimizer models).
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    # Decoupled weight decay (AdamW) for every optimizer the config builds; 0: plain Adam.
    weight_decay: float = 0.0
    # Exponential moving average of the weights (Polyak averaging) for a model with one optimizer
    # (a GAN averages its generator with model.ema_kimg): validation, quality, samples and the
    # trained model use the average. 0: off.
    ema_momentum: float = 0.0
    # Clip each step's gradient to this global norm (null: no clipping).
    clipnorm: float | None = None
    # Text models: what the per-epoch samples (samples/epoch_NNNN.txt) start from.
    sample_prompt: str = "The "
    # null: 200, or what the model's context leaves after the prompt if less.
    sample_max_new_tokens: int | None = None
    sample_temperature: float = 0.8
    verbose: int = 1


@dataclasses.dataclass
class Config:
    """A whole experiment. ``model`` is ``{"name": ..., **model_kwargs}``."""

    seed: int = 0
    model: dict = dataclasses.field(default_factory=lambda: {"name": "dcgan"})
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return {
            "seed": self.seed,
            "model": dict(self.model),
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
        }

    def dump(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))




def _suggest(key: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), [str(c) for c in choices], n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    args = typing.get_args(tp)
    if args:
        parts = [names.get(a, getattr(a, "__name__", str(a))) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return text + (" or null" if type(None) in args else "")
    if typing.get_origin(tp) in (list, tuple):
        return "a list"
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widen to float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where} must be {_type_name(tp)}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            # YAML 1.1 reads `1e-3` (no dot) as a string; accept it as a number.
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(value, tp):
        return value
    raise ConfigError(f"{where} must be {_type_name(tp)}, got {value!r}")


def _section_from_dict(cls: type, raw: Any, section: str, source: str, what: str = "", legacy: dict | None = None):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{section}' must be a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if isinstance(key, str) and key not in fields and legacy and key in legacy and value == legacy[key]:
            continue  # written by an older release with its default: means nothing here
        if not isinstance(key, str) or key not in fields:
            raise ConfigError(
                f"{source}: unknown key '{section}.{key}'{what}{_suggest(key, fields)}; "
                f"valid keys are: {', '.join(sorted(fields))}"
            )
        kwargs[key] = coerce(value, hints[key], f"{source}: {section}.{key}")
    return cls(**kwargs)


def _validate_model(raw: Any, source: str) -> dict:
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"{source}: 'model' must be a mapping with a 'name', e.g. model: {{name: dcgan}}")
    from aigc_tf import registry

    name = raw["name"]
    if not isinstance(name, str) or name not in registry.MODELS:
        raise ConfigError(
            f"{source}: unknown model.name {name!r}{_suggest(str(name), registry.MODELS)}; "
            f"choose one of: {', '.join(registry.MODELS)}"
        )
    args = registry.model_arguments(name)
    out = {"name": name}
    for key, value in raw.items():
        if key == "name":
            continue
        if not isinstance(key, str) or key not in args:
            raise ConfigError(
                f"{source}: unknown key 'model.{key}' for model {name!r}{_suggest(key, args)}; "
                f"valid keys are: {', '.join(sorted(args))}"
            )
        out[key] = coerce(value, args[key][0], f"{source}: model.{key}")
    return out


def _check_values(cfg: Config, source: str) -> None:
    t, d = cfg.train, cfg.data
    if not 0 <= cfg.seed < 2**32:
        raise ConfigError(f"{source}: seed must be an integer in [0, 2**32), got {cfg.seed}")
    if t.strategy not in STRATEGIES:
        raise ConfigError(
            f"{source}: train.strategy must be one of {', '.join(STRATEGIES)}, got {t.strategy!r}"
        )
    if t.precision not in PRECISIONS:
        raise ConfigError(f"{source}: train.precision must be one of {', '.join(PRECISIONS)}, got {t.precision!r}")
    if d.service is not None:
        from aigc_tf.distribute import service_address

        try:
            service_address(d.service)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    positive = {
        "train.epochs": t.epochs,
        "train.cpu_devices": t.cpu_devices,
        "train.steps_per_execution": t.steps_per_execution,
        "train.sample_every": t.sample_every,
        "train.num_samples": t.num_samples,
        "train.quality_samples": t.quality_samples,
        "data.batch_size": d.batch_size,
        "data.shuffle_buffer": d.shuffle_buffer,
    }
    for opt in ("train.steps_per_epoch", "data.max_examples", "train.sample_max_new_tokens"):
        section, key = opt.split(".")
        value = getattr(t if section == "train" else d, key)
        if value is not None:
            positive[opt] = value
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{source}: {key} must be at least 1, got {value}")
    if t.quality_every < 0:
        raise ConfigError(f"{source}: train.quality_every must be 0 (off) or a number of epochs, got {t.quality_every}")
    if t.learning_rate <= 0 or (t.d_learning_rate is not None and t.d_learning_rate <= 0):
        raise ConfigError(f"{source}: train.learning_rate and train.d_learning_rate must be positive")
    if t.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"{source}: train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {t.lr_schedule!r}")
    if t.warmup_steps < 0:
        raise ConfigError(f"{source}: train.warmup_steps must be 0 or more, got {t.warmup_steps}")
    if t.weight_decay < 0:
        raise ConfigError(f"{source}: train.weight_decay must be 0 (plain Adam) or more, got {t.weight_decay}")
    if not 0 <= t.ema_momentum < 1:
        raise ConfigError(f"{source}: train.ema_momentum must be 0 (off) or in (0, 1), e.g. 0.999, got {t.ema_momentum}")
    if t.clipnorm is not None and t.clipnorm <= 0:
        raise ConfigError(f"{source}: train.clipnorm must be positive (or null for no clipping), got {t.clipnorm}")
    from aigc_tf import registry

    # What only the model's family knows: its datasets and its own keys.
    registry.task_for(cfg.model["name"]).check_config(cfg, source)


def from_dict(raw: Any, source: str = "config") -> Config:
    """Validate a parsed YAML mapping into a :class:`Config`.

    A ``tune:`` section (what ``aigc-tf tune`` searches) is validated too, with
    :func:`tune_from_dict`, but is not part of the :class:`Config`: ``aigc-tf
    train`` on the same file trains the config as written."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the config must be a YAML mapping with keys seed, model, data, train")
    if "tune" in raw:
        return tune_from_dict(raw, source)[0]
    known = ("seed", "model", "data", "train", "tune")
    if "columns" in raw and "model" not in raw:
        raise ConfigError(f"{source} is a rule schema (it has columns:), not a training config; write its records "
                          f"with: aigc-tf generate {source} --out FILE.csv")
    for key in raw:
        if key not in known:
            raise ConfigError(
                f"{source}: unknown top-level key '{key}'{_suggest(str(key), known)}; "
                f"valid keys are: {', '.join(known)}"
            )
    from aigc_tf import registry

    model = _validate_model(raw.get("model", {"name": "dcgan"}), source)
    task = registry.task_for(model["name"])
    cfg = Config(
        seed=coerce(raw.get("seed", 0), int, f"{source}: seed"),
        model=model,
        data=_section_from_dict(task.data_config, raw.get("data"), "data", source,
                                what=f" for {task.modality} models", legacy=LEGACY_DATA_DEFAULTS),
        train=_section_from_dict(TrainConfig, raw.get("train"), "train", source),
    )
    _check_values(cfg, source)
    return cfg


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.epochs=5"`` -> ``(["train", "epochs"], 5)``; values are YAML scalars."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.epochs=5")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: the key must be dotted names, e.g. train.epochs")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML; quote strings, e.g. --set data.path='my dir'") from None
    return key.split("."), value


def set_key(raw: dict, path: typing.Sequence[str], value: Any, where: str) -> dict:
    """A copy of the raw config mapping ``raw`` with the dotted key ``path`` set to
    ``value`` (validation happens later); ``where`` names the source in errors."""
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    node = raw
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: '{part}' is not a section")
        node = child
    node[path[-1]] = value
    return raw


def apply_overrides(raw: dict, overrides: typing.Sequence[str]) -> dict:
    """Apply ``--set`` items to a raw config mapping (validation happens later)."""
    for item in overrides:
        path, value = parse_override(item)
        raw = set_key(raw, path, value, f"--set {item!r}")
    return raw


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with errors that name the file and line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} not found; pass a YAML file such as configs/dcgan_digits.yaml")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{p}: malformed YAML{where} ({problem}); fix the file's syntax") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file; pass a YAML config") from None
    if raw is None:
        raise ConfigError(f"{p}: the file is empty; it needs at least a 'model: {{name: ...}}' section")
    return raw


def load_config(path: str | Path, overrides: typing.Sequence[str] = ()) -> Config:
    """Read, override and validate a config file."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a YAML mapping with keys seed, model, data, train")
    source = f"{path}" + (" (with --set)" if overrides else "")
    return from_dict(apply_overrides(raw, overrides), source)


# ------------------------------------------------------------------ tuning
@dataclasses.dataclass
class TuneConfig:
    """The ``tune:`` section of a config: what ``aigc-tf tune`` searches.

    ``space`` maps a dotted config key (``train.learning_rate``,
    ``model.latent_dim``, ``data.batch_size``, ``seed``) to one of
    ``{choice: [a, b, ...]}``, ``{int: [low, high], step: 1, sampling: linear}``
    or ``{float: [low, high], sampling: log}`` (``step`` optional). The
    objective is a key of the run's ``history.json`` (null: the family's own,
    e.g. ``fid``, ``test_elbo``, ``val_perplexity``); its direction is needed
    for any other key.
    """

    space: dict = dataclasses.field(default_factory=dict)
    algorithm: str = "random"
    objective: str | None = None
    direction: str | None = None
    max_trials: int = 10
    executions_per_trial: int = 1
    # Epochs of each trial (Hyperband: the most any trial gets); null: train.epochs.
    epochs: int | None = None
    hyperband_factor: int = 3
    # Bayesian optimisation: random trials before the Gaussian process takes over.
    initial_points: int | None = None
    # Seed of the search algorithm; null: the config's seed.
    seed: int | None = None
    # Train each trial in a child process (`aigc-tf train`), so memory stays flat across trials
    # (TensorFlow keeps each trial's traced graphs alive in the process; clear_session does not free them).
    isolate: bool = True


def _space_values(key: str, spec: Any, where: str) -> tuple[str, list]:
    """The kind (``choice``/``int``/``float``) of a space entry and the values to validate it with."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: must be a mapping such as {{choice: [32, 64]}}, {{int: [1, 4]}} or "
                          f"{{float: [1e-4, 1e-2], sampling: log}}; got {spec!r}")
    kinds = [k for k in ("choice", "int", "float") if k in spec]
    extra = sorted(set(spec) - {"choice", "int", "float", "step", "sampling"})
    if len(kinds) != 1 or extra:
        raise ConfigError(f"{where}: give exactly one of choice, int, float (plus step/sampling for int and float); "
                          f"got keys {', '.join(map(str, spec))}")
    kind = kinds[0]
    values = spec[kind]
    if kind == "choice":
        if not isinstance(values, list) or not values or len({type(v) for v in values}) != 1 \
                or not isinstance(values[0], (int, float, str, bool)) or len(set(values)) != len(values):
            raise ConfigError(f"{where}: choice must be a list of distinct values of one type (numbers, strings "
                              f"or booleans), got {values!r}")
        if set(spec) - {"choice"}:
            raise ConfigError(f"{where}: step and sampling are for int and float ranges, not choice")
        return kind, values
    number = int if kind == "int" else (int, float)
    if (not isinstance(values, list) or len(values) != 2
            or not all(isinstance(v, number) and not isinstance(v, bool) for v in values)):
        raise ConfigError(f"{where}: {kind} must be [low, high] with {kind} bounds, got {values!r}")
    low, high = values
    if low >= high:
        raise ConfigError(f"{where}: {kind} needs low < high, got [{low}, {high}]")
    sampling = spec.get("sampling", "linear")
    if sampling not in SAMPLINGS:
        raise ConfigError(f"{where}: sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    if sampling != "linear" and low <= 0:
        raise ConfigError(f"{where}: {sampling} sampling needs a positive low bound, got {low}")
    step = spec.get("step")
    if step is not None and (not isinstance(step, number) or isinstance(step, bool) or step <= 0):
        raise ConfigError(f"{where}: step must be a positive {kind}, got {step!r}")
    return kind, [low, high]


def tune_from_dict(raw: dict, source: str = "config") -> tuple[Config, TuneConfig]:
    """Validate a config with a ``tune:`` section: the base :class:`Config`
    and the :class:`TuneConfig`. Every value the space can give is checked
    against the config now (a choice each, a range at both ends), so a trial
    never fails on a key the config does not have."""
    raw = dict(raw)
    tune_raw = raw.pop("tune")
    cfg = from_dict(raw, source)
    if tune_raw is None:
        tune_raw = {}
    tune = _section_from_dict(TuneConfig, tune_raw, "tune", source)
    if not tune.space:
        raise ConfigError(f"{source}: tune.space is empty; name the keys to search, e.g. "
                          "tune: {space: {train.learning_rate: {float: [1e-4, 1e-3], sampling: log}}}")
    for key, spec in tune.space.items():
        where = f"{source}: tune.space.{key}"
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}: keys are dotted config keys such as train.learning_rate")
        _, values = _space_values(key, spec, where)
        for value in values:
            try:
                from_dict(set_key(raw, key.split("."), value, where), f"{where}={value!r}")
            except ConfigError as exc:
                raise ConfigError(f"{exc} (tune.space names a key the config does not accept with that value)") from None
    if tune.algorithm not in ALGORITHMS:
        raise ConfigError(f"{source}: tune.algorithm must be one of {', '.join(ALGORITHMS)}, got {tune.algorithm!r}")
    for key in ("max_trials", "executions_per_trial", "epochs", "initial_points"):
        value = getattr(tune, key)
        if value is not None and value < 1:
            raise ConfigError(f"{source}: tune.{key} must be at least 1, got {value}")
    if tune.hyperband_factor < 2:
        raise ConfigError(f"{source}: tune.hyperband_factor must be at least 2, got {tune.hyperband_factor}")
    if tune.algorithm == "hyperband" and cfg.train.lr_schedule == "cosine":
        raise ConfigError(f"{source}: tune.algorithm=hyperband trains trials further than they started, which a cosine "
                          "schedule laid out over train.epochs does not allow; use train.lr_schedule=constant or "
                          "tune.algorithm=random / bayesian")
    if tune.seed is not None and not 0 <= tune.seed < 2**32:
        raise ConfigError(f"{source}: tune.seed must be in [0, 2**32), got {tune.seed}")
    from aigc_tf import registry

    objective = registry.task_for(cfg.model["name"]).objective
    if tune.objective is None:
        if objective is None:
            raise ConfigError(f"{source}: model {cfg.model['name']!r} has no default tuning objective; set "
                              "tune.objective to a key of its history.json and tune.direction to min or max")
        tune.objective = objective[0]
    if tune.direction is None:
        if objective is None or tune.objective != objective[0]:
            raise ConfigError(f"{source}: tune.objective={tune.objective!r} needs tune.direction: min or max")
        tune.direction = objective[1]
    if tune.direction not in DIRECTIONS:
        raise ConfigError(f"{source}: tune.direction must be min or max, got {tune.direction!r}")
    return cfg, tune


def load_tune_config(path: str | Path, overrides: typing.Sequence[str] = ()) -> tuple[Config, TuneConfig]:
    """Read, override and validate a config file with a ``tune:`` section."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a YAML mapping with keys seed, model, data, train, tune")
    raw = apply_overrides(raw, overrides)
    if not isinstance(raw.get("tune"), dict):
        raise ConfigError(f"{path} has no tune: section; add one naming what to search, e.g. "
                          "tune: {max_trials: 8, space: {train.learning_rate: {float: [1e-4, 1e-3], sampling: log}}}")
    return tune_from_dict(raw, f"{path}" + (" (with --set)" if overrides else ""))
