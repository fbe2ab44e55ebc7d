"""Model names used in configs -> model class, family and preset arguments."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from aigc_tf.models.gan import GAN
from aigc_tf.models.gpt import GPT
from aigc_tf.models.lstm_lm import LSTMLanguageModel
from aigc_tf.models.seq2seq import Seq2Seq
from aigc_tf.models.text_vae import TextVAE
from aigc_tf.models.vae import VAE

# name: (class, preset keyword arguments). A config's `model:` section may
# override any constructor argument except those filled from the data.
MODELS: dict[str, tuple[type, dict]] = {
    "mlp_gan": (GAN, {"architecture": "mlp"}),
    "dcgan": (GAN, {"architecture": "dcgan"}),
    "cgan": (GAN, {"architecture": "dcgan", "conditional": True}),
    "mlp_vae": (VAE, {"architecture": "mlp"}),
    "conv_vae": (VAE, {"architecture": "conv"}),
    "cvae": (VAE, {"architecture": "conv", "conditional": True}),
    "lstm_lm": (LSTMLanguageModel, {}),
    "gpt": (GPT, {}),
    "seq2seq": (Seq2Seq, {}),
    "text_vae": (TextVAE, {}),
}

# Filled from the dataset (image_shape, num_classes; vocabulary, tokenizer) and the top-level seed.
FROM_DATA = ("image_shape", "num_classes", "vocabulary", "tokenizer", "seed")
_FAMILIES = {GAN: "gan", VAE: "vae", LSTMLanguageModel: "lm", GPT: "lm", Seq2Seq: "seq2seq", TextVAE: "text_vae"}
# Which batches each text family trains on (see aigc_tf.data.text.load_text_data).
TEXT_TASKS = {"lm": "lm", "seq2seq": "pairs", "text_vae": "sentences"}


def model_arguments(name: str) -> dict[str, tuple[Any, Any]]:
    """``{argument: (type annotation, default)}`` a config may set for ``name``."""
    cls, preset = MODELS[name]
    hints = typing.get_type_hints(cls.__init__)
    out = {}
    for pname, param in inspect.signature(cls.__init__).parameters.items():
        if pname in ("self", "kwargs") or pname in FROM_DATA:
            continue
        out[pname] = (hints.get(pname, Any), preset.get(pname, param.default))
    return out


def family(name: str) -> str:
    """``gan``, ``vae`` (images) or ``lm``, ``seq2seq``, ``text_vae`` (text)."""
    return _FAMILIES[MODELS[name][0]]


def is_text(name: str) -> bool:
    return family(name) in TEXT_TASKS


def text_task(name: str) -> str:
    return TEXT_TASKS[family(name)]


def build_model(model_cfg: dict, seed: int, **from_data):
    """Instantiate the model a config's ``model:`` section describes.

    ``from_data``: ``image_shape`` and ``num_classes`` for image models,
    ``vocabulary`` and ``tokenizer`` for text models.
    """
    cls, preset = MODELS[model_cfg["name"]]
    kwargs = {**preset, **{k: v for k, v in model_cfg.items() if k != "name"}}
    if "image_shape" in from_data:
        from_data["image_shape"] = tuple(from_data["image_shape"])
    return cls(seed=seed, **from_data, **kwargs)
