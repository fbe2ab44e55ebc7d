"""Model names used in configs -> model class, family and preset arguments."""

from __future__ import annotations

import inspect
import typing
from typing import Any

from aigc_tf.models.gan import GAN
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
}

# Filled from the dataset (image_shape, num_classes) and the top-level seed.
FROM_DATA = ("image_shape", "num_classes", "seed")


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
    return {GAN: "gan", VAE: "vae"}[MODELS[name][0]]


def build_model(model_cfg: dict, image_shape, num_classes: int, seed: int):
    """Instantiate the model a config's ``model:`` section describes."""
    cls, preset = MODELS[model_cfg["name"]]
    kwargs = {**preset, **{k: v for k, v in model_cfg.items() if k != "name"}}
    return cls(image_shape=tuple(image_shape), num_classes=num_classes, seed=seed, **kwargs)
