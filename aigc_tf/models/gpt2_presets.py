"""Where a GPT-2 comes from: KerasHub presets, Hugging Face checkpoint folders, or a
byte-level BPE trained here for a randomly initialised GPT-2.

``model.preset`` is one of

* a local folder: a KerasHub preset (``save_to_preset``: ``config.json`` with a
  ``registered_name``, ``tokenizer.json``, ``model.weights.h5``,
  ``assets/tokenizer/vocabulary.json`` + ``merges.txt``) or a Hugging Face
  GPT-2 checkpoint (``config.json`` with ``model_type``, ``model.safetensors``,
  ``vocab.json``, ``merges.txt``), which KerasHub's converter reads;
* a KerasHub preset name (``gpt2_base_en``, ...) or a ``kaggle://`` /
  ``hf://`` handle: used from KerasHub's download cache (kagglehub) if it is
  there, downloaded if the host answers, and otherwise refused at once with
  what to do (KerasHub would otherwise fail deep inside a download, and on
  some networks retry for minutes);
* null: no weights. The task trains a byte-level BPE on the training text
  (Hugging Face ``tokenizers``, which KerasHub depends on) and the model is a
  randomly initialised GPT-2 of the configured size.

Nothing here imports TensorFlow at module level (config validation uses
:func:`check_preset_path`); :func:`require_keras_hub` gives the one-line
install hint when the ``gpt2`` extra is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from aigc_tf.errors import ConfigError, DataError

INSTALL_HINT = 'pip install -e ".[gpt2]"'
END_OF_TEXT = "<|endoftext|>"
# Hosts a remote preset is downloaded from (what the fast offline check connects to).
_HOSTS = {"kaggle": ("www.kaggle.com", 443), "hf": ("huggingface.co", 443)}
_SAVE_COMMAND = (
    "python -c \"import keras_hub; keras_hub.models.GPT2CausalLM.from_preset('{name}').save_to_preset('{folder}')\""
)


def missing_extra() -> str | None:
    """The first package of the ``gpt2`` extra that is not installed, or None (no imports)."""
    for module, package in (("keras_hub", "keras-hub"), ("tensorflow_text", "tensorflow-text")):
        if importlib.util.find_spec(module) is None:
            return package
    return None


def require_keras_hub():
    """``keras_hub``, or a :class:`ConfigError` naming the install command."""
    missing = missing_extra()
    if missing is not None:
        raise ConfigError(f"model gpt2 needs {missing}, which is not installed: {INSTALL_HINT}")
    import keras_hub

    return keras_hub


def is_local(preset: str) -> bool:
    """Whether ``preset`` names a folder (a path) rather than a preset name or a handle."""
    if "://" in preset:
        return False
    return os.sep in preset or "/" in preset or preset.startswith((".", "~")) or Path(preset).is_dir()


def check_preset_path(preset: str | None, where: str = "model.preset") -> None:
    """Config-time check of a local preset folder (no TensorFlow): it exists and has a ``config.json``."""
    if preset is None or not is_local(preset):
        return
    folder = Path(preset).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{where}={preset!r}: no such folder; point it at a KerasHub preset folder "
                          "(save_to_preset) or a Hugging Face GPT-2 checkpoint folder")
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{where}={preset!r} has no config.json: it is neither a KerasHub preset folder "
                          "(save_to_preset) nor a Hugging Face checkpoint folder (config.json, model.safetensors, "
                          "vocab.json, merges.txt)")


def resolve_preset(preset: str) -> str:
    """A preset KerasHub can load now: a local folder, a cached download, or a handle
    whose host answers. Raises :class:`DataError` within seconds otherwise."""
    if is_local(preset):
        check_preset_path(preset)
        return str(Path(preset).expanduser())
    keras_hub = require_keras_hub()
    from keras_hub.src.utils.preset_utils import BUILTIN_PRESETS

    names = sorted(keras_hub.models.GPT2Backbone.presets)
    if "://" not in preset and preset not in names:
        raise ConfigError(f"model.preset={preset!r} is not a GPT-2 preset KerasHub knows ({', '.join(names)}), "
                          "a kaggle:// or hf:// handle, or a local folder")
    handle = BUILTIN_PRESETS[preset]["kaggle_handle"] if preset in BUILTIN_PRESETS else preset
    cached = _kagglehub_cached(handle)
    if cached is not None:
        return cached
    scheme = handle.split("://")[0].lower()
    host = _HOSTS.get(scheme)
    if host is not None:
        from aigc_tf.data.images import _can_download

        if not _can_download(*host):
            parts = [part for part in preset.split("/") if part]
            folder = parts[-2] if parts[-1].isdigit() and len(parts) > 1 else parts[-1]  # drop a version
            raise DataError(
                f"GPT-2 preset {preset!r} is not on this machine and cannot be downloaded ({host[0]}:{host[1]} "
                f"unreachable): on a machine with network run `{_SAVE_COMMAND.format(name=preset, folder=folder)}`, "
                f"copy the {folder}/ folder here and set model.preset to its path (a Hugging Face GPT-2 checkpoint "
                "folder with config.json, model.safetensors, vocab.json and merges.txt works too)"
            )
    return preset


def _kagglehub_cached(handle: str) -> str | None:
    """The folder of a ``kaggle://`` handle in kagglehub's cache (highest version), or None."""
    if not handle.startswith("kaggle://"):
        return None
    parts = handle.removeprefix("kaggle://").split("/")
    cache = Path(os.environ.get("KAGGLEHUB_CACHE", Path.home() / ".cache" / "kagglehub")) / "models"
    base = cache.joinpath(*parts[:4])
    if len(parts) == 5:
        versions = [base / parts[4]]
    else:
        versions = sorted((p for p in base.glob("*") if p.name.isdigit()), key=lambda p: int(p.name), reverse=True)
    for folder in versions:
        if (folder / "config.json").is_file():
            return str(folder)
    return None


def load_tokenizer(preset: str):
    """The preset's ``keras_hub.models.GPT2Tokenizer`` (KerasHub folder, converted HF folder, or download)."""
    keras_hub = require_keras_hub()
    path = resolve_preset(preset)
    try:
        return keras_hub.models.GPT2Tokenizer.from_preset(path)
    except (ValueError, FileNotFoundError, OSError, KeyError) as err:
        raise DataError(f"cannot read the GPT-2 tokenizer of model.preset={preset!r} ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:300]})") from None


def load_backbone(preset: str, **overrides):
    """The preset's ``keras_hub.models.GPT2Backbone`` with its weights; ``overrides``: config keys (``dropout``)."""
    keras_hub = require_keras_hub()
    path = resolve_preset(preset)
    try:
        return keras_hub.models.GPT2Backbone.from_preset(path, **overrides)
    except (ValueError, FileNotFoundError, OSError, KeyError) as err:
        raise DataError(f"cannot read the GPT-2 weights of model.preset={preset!r} ({type(err).__name__}: "
                        f"{' '.join(str(err).split())[:300]})") from None


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE (GPT-2's scheme: 256 byte symbols, merges learned by frequency,
    ``<|endoftext|>``) of at most ``vocab_size`` tokens, trained on ``texts`` with Hugging
    Face ``tokenizers``; returned as a ``keras_hub.models.GPT2Tokenizer``."""
    keras_hub = require_keras_hub()
    import tokenizers

    if vocab_size < 258:
        raise ConfigError(f"data.vocab_size={vocab_size} is too small for a byte-level BPE: it needs the 256 bytes, "
                          f"{END_OF_TEXT} and at least one merge (258 or more)")
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[END_OF_TEXT],
                            show_progress=False)
    model = json.loads(bpe.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    if not merges:
        raise DataError("the training text is too short to learn a single BPE merge; add text")
    return keras_hub.models.GPT2Tokenizer(vocabulary=model["vocab"], merges=merges)
