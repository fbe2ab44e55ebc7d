"""SavedModel export for TF Serving, with named signatures, inputs and outputs.

Layout: ``EXPORT_ROOT/<model_name>/<version>/saved_model.pb`` + ``variables/``.
A version directory is written under a temporary name and renamed into place,
so TF Serving never sees a half-written version and an existing one is never
overwritten.

Signatures (all ``tensorflow/serving/predict``):

* GAN: ``serving_default(z[, labels]) -> {images, pixels}``
* VAE: ``serving_default(z[, labels]) -> {images, pixels}`` (decode prior
  samples), ``decode`` (the same), ``encode(images[, labels]) -> {mean,
  log_var}``, ``reconstruct(images[, labels]) -> {images, pixels}``.

* Text models: ``serving_default(prompts, max_new_tokens, temperature,
  top_k, top_p, seed) -> {texts, token_ids}``: strings in, strings out, with
  tokenisation and detokenisation in the graph. Every input is ``[batch]``
  (one control per prompt; TF Serving's row format needs that), ``seed[i]``
  alone decides row ``i``'s draws, ``temperature <= 0`` is greedy. The text
  VAE also has ``encode(texts) -> {mean, log_var}`` and ``decode(z,
  max_new_tokens, temperature, top_k, top_p, seed) -> {texts, token_ids}``;
  its ``serving_default`` decodes each prompt's posterior mean (an empty
  prompt: a prior sample from its seed).

``images`` are floats in the model's range ([-1, 1] for GANs, [0, 1] for
VAEs); ``pixels`` are ``uint8`` in [0, 255], ready to write as PNG. Noise is
an input (``z``), never drawn inside the graph, so a request is reproducible.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from aigc_tf.errors import RunDirError


def pixels(images, value_range: str):
    """Model images (``tanh`` [-1, 1] or ``unit`` [0, 1]) -> ``uint8`` [0, 255], in the graph."""
    import tensorflow as tf

    from aigc_tf.viz import unit_range

    return tf.cast(tf.round(tf.clip_by_value(unit_range(images, value_range), 0.0, 1.0) * 255.0), tf.uint8)


def endpoints(model) -> dict:
    """``{signature name: (function, input specs)}`` for ``model``, from its family's task."""
    from aigc_tf.tasks import task_for_model

    return task_for_model(model).export_endpoints(model)


def next_version(base: Path) -> int:
    versions = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()] if base.is_dir() else []
    return max(versions, default=0) + 1


def export_model(model, export_root: str | Path, model_name: str, version: int | None = None) -> Path:
    """Write ``model`` as ``export_root/model_name/version``; returns that path."""
    import keras
    import tensorflow as tf

    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", model_name):
        raise RunDirError(f"model name {model_name!r} is not a plain directory name; pass --name with letters, digits, _ . -")
    base = Path(export_root) / model_name
    version = next_version(base) if version is None else version
    if version < 1:
        raise RunDirError(f"--version must be a positive integer, got {version}")
    target = base / str(version)
    if target.exists():
        raise RunDirError(
            f"{target} already exists; TF Serving versions are never overwritten: omit --version to use {next_version(base)}"
        )
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{version}"
    if tmp.exists():
        shutil.rmtree(tmp)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (fn, specs) in endpoints(model).items():
        if isinstance(fn, tf.types.experimental.PolymorphicFunction):
            fn = fn.python_function  # the archive wraps it in its own tf.function
        archive.add_endpoint(name, fn, input_signature=specs)
    archive.write_out(str(tmp), verbose=False)
    tmp.rename(target)
    return target
