"""The family seam: one :class:`Task` per model family owns everything family-specific.

The core (config, training, callbacks, evaluate, export, cli) asks the task
and never branches on a family or model name. A task module imports no
TensorFlow at module level: config validation and ``aigc-tf --help`` use
:meth:`Task.check_config` and :meth:`Task.add_sample_arguments` without it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aigc_tf.config import DataConfig
from aigc_tf.errors import ConfigError, UserError


def positive(text: str) -> int:
    """argparse type: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


class Task:
    """Base class of a family's task. Subclasses set the class attributes and
    override the methods their family needs.

    Attributes:
        family: key in :data:`aigc_tf.registry.FAMILIES`.
        modality: what the family generates (``"image"``, ``"text"``, ...).
        datasets: the ``data.name`` values the family accepts.
        data_config: the dataclass of the ``data:`` section (DataConfig plus
            the modality's own keys).
        sparse_metrics: metrics logged only on some epochs (``history.json``
            keeps their epochs in ``<key>_epochs``).
        objective: ``(history key, "min" or "max")`` that ``aigc-tf tune``
            optimises when a config's ``tune.objective`` is null.
    """

    family: str = ""
    modality: str = ""
    data_config: type = DataConfig  # the dataclass a config's `data:` section is checked against
    datasets: tuple[str, ...] = ()
    sparse_metrics: tuple[str, ...] = ()
    objective: tuple[str, str] | None = None

    # ------------------------------------------------------------ config
    def check_config(self, cfg, source: str) -> None:
        """Family-specific validation of a whole config (no TensorFlow); raise ConfigError."""
        from aigc_tf import registry

        if cfg.data.name not in self.datasets:
            same = registry.names_of_family(*_families_of_modality(self.modality))
            raise ConfigError(
                f"{source}: model {cfg.model['name']!r} is a {self.modality} model but data.name={cfg.data.name!r} "
                f"is not one of its datasets; use one of: {', '.join(self.datasets)} "
                f"(or a model for that data; {self.modality} models: {', '.join(same)})"
            )

    # -------------------------------------------------------- data, model
    def load_data(self, cfg, seed_offset: int = 0, model=None):
        """The config's dataset (``model``: a trained model whose vocabulary etc. to reuse)."""
        raise NotImplementedError

    def build_model(self, cfg, data):
        """Build and compile the configured model for ``data`` (inside the strategy scope)."""
        raise NotImplementedError

    def check_model(self, cfg, model) -> None:
        """Checks before ``fit`` on a built or resumed model (fail now, not after an epoch)."""

    # ------------------------------------------------------------ training
    def write_samples(self, cfg, model, folder: Path, epoch: int) -> None:
        """Per-epoch samples into ``folder`` (the run's ``samples/``; called on the chief only)."""

    def quality_callback(self, cfg):
        """A prepared Keras callback adding the family's quality metric to ``logs``, or None."""
        return None

    def hypermodel(self, cfg, search_space: dict[str, Any]):
        """A ``keras_tuner.HyperModel`` over ``search_space`` (a ``tune.space``
        mapping) around ``cfg``, for calling ``keras_tuner`` from Python."""
        from aigc_tf.tuning import ConfigHyperModel

        return ConfigHyperModel(cfg, search_space)

    # ---------------------------------------------------- after training
    def evaluate(self, run_dir: Path, cfg, model, n_samples: int | None, seed: int, **options) -> dict:
        raise NotImplementedError

    def export_endpoints(self, model) -> dict:
        """``{signature name: (function, input TensorSpecs)}`` for the SavedModel."""
        raise NotImplementedError

    # ----------------------------------------------------------------- cli
    @classmethod
    def add_sample_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Options of ``aigc-tf sample`` for this family (shared by every family's runs)."""

    def sample(self, args, cfg, run_dir: Path, model) -> int:
        """``aigc-tf sample`` for a run of this family."""
        raise NotImplementedError

    def check_sample_arguments(self, args, cfg, run_dir: Path) -> None:
        """Refuse bad or foreign options before the model loads."""

    def refuse_foreign_sample_options(self, args, run_dir: Path) -> None:
        """An option another modality's ``add_sample_arguments`` adds, set on this family's run, is an error."""
        own = _sample_options(type(self))
        for family in _families():
            other = _sample_options(family)
            for dest, (flag, default) in other.items():
                if dest not in own and getattr(args, dest, default) != default:
                    article = "an" if self.modality[:1] in "aeiou" else "a"
                    raise UserError(f"{flag} is for {family.modality} runs; {run_dir} holds {article} "
                                    f"{self.modality} model")

    @classmethod
    def add_commands(cls, subparsers) -> None:
        """CLI commands of the family's own (e.g. ``aigc-tf generate``)."""


def train_adam(train_cfg, learning_rate: float, name: str | None = None, average: bool = True):
    """The config's Adam at ``learning_rate``: its betas, weight decay and, with ``average``,
    its moving average of the weights (``train.ema_momentum``)."""
    from aigc_tf.models import common

    t = train_cfg
    return common.adam(learning_rate, t.beta_1, t.beta_2, name=name, weight_decay=t.weight_decay,
                       ema_momentum=t.ema_momentum if average else 0.0)


def compile_adam(model, train_cfg):
    """Compile ``model`` with the config's Adam settings: one optimizer, or a
    discriminator's and a generator's for a model with both networks
    (``train.d_learning_rate``, null: ``train.learning_rate``)."""
    t = train_cfg
    execution = dict(steps_per_execution=t.steps_per_execution, jit_compile=t.jit_compile)
    if hasattr(model, "discriminator"):
        if t.ema_momentum:
            own = (" and average its generator with model.ema_kimg (a half-life in thousands of examples, e.g. 10)"
                   if hasattr(model, "ema_kimg") else "")
            raise ConfigError(f"train.ema_momentum averages one optimizer's weights; {type(model).__name__} has two "
                              f"(a GAN): set train.ema_momentum=0{own}")
        model.compile(d_optimizer=train_adam(t, t.d_learning_rate or t.learning_rate, "d_adam", average=False),
                      g_optimizer=train_adam(t, t.learning_rate, "g_adam", average=False), **execution)
    else:
        model.compile(optimizer=train_adam(t, t.learning_rate), **execution)
    return model


def quality_every_k_epochs(cfg, key: str, measure):
    """A Keras callback putting ``measure(model)`` into ``logs[key]`` every
    ``train.quality_every`` epochs and at the last one."""
    import keras

    class Quality(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is not None and ((epoch + 1) % cfg.train.quality_every == 0 or epoch + 1 == cfg.train.epochs):
                logs[key] = measure(self.model)

    return Quality()


def _families():
    from aigc_tf import registry

    return [registry.task_class(f) for f in registry.FAMILIES]


def _sample_options(task_class) -> dict:
    """``{dest: (flag, default)}`` of the options a task class's ``add_sample_arguments`` adds."""
    parser = argparse.ArgumentParser(add_help=False)
    task_class.add_sample_arguments(parser)
    return {a.dest: (a.option_strings[0], a.default) for a in parser._actions}


def _families_of_modality(modality: str) -> list[str]:
    from aigc_tf import registry

    return [f for f in registry.FAMILIES if registry.task_class(f).modality == modality]
