"""Names used in configs -> model families (tasks) and model classes, resolved lazily.

Everything here is strings until something is built: looking a name up,
listing a model's config arguments and validating a config import neither
TensorFlow nor any model module. A model's arguments are read from its
class's ``__init__`` signature in the source file (``ast``), so the
constructor stays the one place that defines them; ``tests/test_registry.py``
checks the result against ``inspect.signature`` of the imported class.

Adding a model family is one entry in ``FAMILIES`` (its task) and one per
model name in ``MODELS`` (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import importlib.util
from typing import Any

# family -> its task class (aigc_tf.tasks.base.Task): everything family-specific.
FAMILIES: dict[str, str] = {
    "gan": "aigc_tf.tasks.image:GANTask",
    "vae": "aigc_tf.tasks.image:VAETask",
    "lm": "aigc_tf.tasks.text:LanguageModelTask",
    "seq2seq": "aigc_tf.tasks.text:Seq2SeqTask",
    "text_vae": "aigc_tf.tasks.text:TextVAETask",
    "gpt2": "aigc_tf.tasks.text:GPT2Task",
    "table_vae": "aigc_tf.tabular.task:TableVAETask",
    "table_gan": "aigc_tf.tabular.task:TableGANTask",
    "audio_gan": "aigc_tf.audio.task:AudioGANTask",
    "audio_vae": "aigc_tf.audio.task:AudioVAETask",
    "chorale": "aigc_tf.music.task:ChoraleTask",
    "music_lm": "aigc_tf.music.task:MusicLMTask",
    "melody": "aigc_tf.music.task:MelodyTask",
    "note_seq": "aigc_tf.music.task:NoteSequenceTask",
    "music_gan": "aigc_tf.music.task:MusicGANTask",
}


# Commands that belong to no model family (no model, no run directory): name -> "module:add_function",
# which adds the subcommand to the CLI's subparsers.
COMMANDS: dict[str, str] = {
    "generate": "aigc_tf.tabular.commands:add_generate_command",
}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    family: str
    cls: str  # "module:Class"
    preset: dict = dataclasses.field(default_factory=dict)


# name: family, class, preset keyword arguments. A config's `model:` section may
# override any constructor argument except those filled from the data.
MODELS: dict[str, ModelSpec] = {
    "mlp_gan": ModelSpec("gan", "aigc_tf.models.gan:GAN", {"architecture": "mlp"}),
    "dcgan": ModelSpec("gan", "aigc_tf.models.gan:GAN", {"architecture": "dcgan", "layout": "auto"}),
    "cgan": ModelSpec("gan", "aigc_tf.models.gan:GAN", {"architecture": "dcgan", "conditional": True, "layout": "auto"}),
    "mlp_vae": ModelSpec("vae", "aigc_tf.models.vae:VAE", {"architecture": "mlp"}),
    "conv_vae": ModelSpec("vae", "aigc_tf.models.vae:VAE", {"architecture": "conv"}),
    "cvae": ModelSpec("vae", "aigc_tf.models.vae:VAE", {"architecture": "conv", "conditional": True}),
    "lstm_lm": ModelSpec("lm", "aigc_tf.models.lstm_lm:LSTMLanguageModel"),
    "gpt": ModelSpec("lm", "aigc_tf.models.gpt:GPT"),
    "seq2seq": ModelSpec("seq2seq", "aigc_tf.models.seq2seq:Seq2Seq"),
    "text_vae": ModelSpec("text_vae", "aigc_tf.models.text_vae:TextVAE"),
    "gpt2": ModelSpec("gpt2", "aigc_tf.models.gpt2:GPT2"),
    "tvae": ModelSpec("table_vae", "aigc_tf.tabular.models:TVAE"),
    "ctgan": ModelSpec("table_gan", "aigc_tf.tabular.models:CTGAN"),
    "wavegan": ModelSpec("audio_gan", "aigc_tf.audio.models:WaveGAN"),
    "cwavegan": ModelSpec("audio_gan", "aigc_tf.audio.models:WaveGAN", {"conditional": True}),
    "specgan": ModelSpec("audio_gan", "aigc_tf.audio.models:SpecGAN"),
    "cspecgan": ModelSpec("audio_gan", "aigc_tf.audio.models:SpecGAN", {"conditional": True}),
    "wave_vae": ModelSpec("audio_vae", "aigc_tf.audio.models:WaveVAE", {"architecture": "mlp"}),
    "conv_wave_vae": ModelSpec("audio_vae", "aigc_tf.audio.models:WaveVAE", {"architecture": "conv"}),
    "cwave_vae": ModelSpec("audio_vae", "aigc_tf.audio.models:WaveVAE", {"architecture": "conv", "conditional": True}),
    "chorale_nade": ModelSpec("chorale", "aigc_tf.music.chorale_nade:ChoraleNADE"),
    "music_transformer": ModelSpec("music_lm", "aigc_tf.music.music_transformer:MusicTransformer"),
    "melody_lstm": ModelSpec("melody", "aigc_tf.music.melody_lstm:MelodyLSTM"),
    "note_lstm": ModelSpec("note_seq", "aigc_tf.music.note_lstm:NoteLSTM"),
    "musegan": ModelSpec("music_gan", "aigc_tf.music.musegan:MuseGAN"),
}

# Constructor arguments filled from the dataset or the top-level seed, never from `model:`.
FROM_DATA = ("image_shape", "num_classes", "vocabulary", "tokenizer", "table_transform", "clip_length", "sample_rate",
             "seed")
_ANNOTATION_NAMES = {"int": int, "float": float, "str": str, "bool": bool, "tuple": tuple, "list": list,
                     "dict": dict, "None": None, "Any": Any}


def _import(target: str):
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def resolve(target: str):
    """The object a ``"module:attribute"`` string names (imports the module)."""
    return _import(target)


def model_class(name: str) -> type:
    """The class behind a model name (imports it, and so TensorFlow)."""
    return _import(MODELS[name].cls)


def family(name: str) -> str:
    """The family of a model name: a key of ``FAMILIES``."""
    return MODELS[name].family


@functools.cache
def task_class(family_name: str):
    """The task class of a family (task modules import no TensorFlow at module level)."""
    return _import(FAMILIES[family_name])


def task_for(name: str):
    """A task instance for a model name."""
    return task_class(family(name))()


@functools.cache
def _init_signature(target: str) -> dict[str, tuple[Any, Any]]:
    """``{argument: (annotation, default)}`` of ``Class.__init__``, read from the source."""
    module, cls_name = target.split(":")
    spec = importlib.util.find_spec(module)
    tree = ast.parse(open(spec.origin, encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls_name:
            break
    else:
        raise LookupError(f"class {cls_name} not found in {spec.origin}")
    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if init is None:
        raise TypeError(f"{target}: the registry reads a model's arguments from its own __init__; define one")
    args = init.args.args[1:]  # drop self
    defaults = [None] * (len(args) - len(init.args.defaults)) + list(init.args.defaults)
    pairs = list(zip(args, defaults, strict=True)) + list(zip(init.args.kwonlyargs, init.args.kw_defaults, strict=True))
    out = {}
    for arg, default in pairs:
        try:
            annotation = (eval(ast.unparse(arg.annotation), {"__builtins__": {}}, _ANNOTATION_NAMES)
                          if arg.annotation else Any)
            value = ast.literal_eval(default) if default is not None else inspect_empty
        except (NameError, ValueError, SyntaxError, TypeError) as exc:
            raise TypeError(
                f"{target}.__init__ argument {arg.arg!r}: annotations must be built-in types (int, float, str, "
                f"bool, list, tuple, dict, X | None) and defaults literals ({exc})"
            ) from None
        out[arg.arg] = (annotation, value)
    return out


class _Empty:
    def __repr__(self):
        return "<required>"


inspect_empty = _Empty()


def model_arguments(name: str) -> dict[str, tuple[Any, Any]]:
    """``{argument: (type annotation, default)}`` a config may set for ``name`` (no imports)."""
    spec = MODELS[name]
    out = {}
    for pname, (annotation, default) in _init_signature(spec.cls).items():
        if pname in FROM_DATA:
            continue
        out[pname] = (annotation, spec.preset.get(pname, default))
    return out


def build_model(model_cfg: dict, seed: int, **from_data):
    """Instantiate the model a config's ``model:`` section describes.

    ``from_data``: what the family's task takes from the dataset
    (``image_shape`` and ``num_classes`` for images, ``vocabulary`` and
    ``tokenizer`` for text).
    """
    spec = MODELS[model_cfg["name"]]
    kwargs = {**spec.preset, **{k: v for k, v in model_cfg.items() if k != "name"}}
    return model_class(model_cfg["name"])(seed=seed, **from_data, **kwargs)


def names_of_family(*families: str) -> list[str]:
    return [n for n, s in MODELS.items() if s.family in families]

