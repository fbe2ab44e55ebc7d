"""Shared test helpers: tiny configs and per-model checks (KerasHub style)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aigc_tf.config import from_dict

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
# Training configs (the `*_rules.yaml` files beside them are rule schemas for `aigc-tf generate`).
TRAINING_CONFIGS = sorted(p for p in CONFIGS.glob("*.yaml") if not p.name.endswith("_rules.yaml"))

# Small widths keep every model's one-step fit in well under a second.
TINY_MODEL = {
    "mlp_gan": {},
    "dcgan": {"base_filters": 8, "latent_dim": 16},
    "cgan": {"base_filters": 8, "latent_dim": 16},
    "mlp_vae": {"latent_dim": 4},
    "conv_vae": {"latent_dim": 4},
    "cvae": {"latent_dim": 4},
    "lstm_lm": {"units": 32, "embed_dim": 16},
    "gpt": {"context_length": 32, "num_layers": 1, "num_heads": 2, "embed_dim": 16, "dropout": 0.0},
    # A random GPT-2 (no preset) with a byte-level BPE trained on the tiny text.
    "gpt2": {"context_length": 32, "num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32,
             "dropout": 0.0},
    "seq2seq": {"units": 32, "embed_dim": 16},
    "text_vae": {"units": 32, "embed_dim": 16, "latent_dim": 4, "kl_anneal_steps": 10},
    "tvae": {"latent_dim": 4, "hidden": [16]},
    "ctgan": {"latent_dim": 4, "generator_dims": [16], "discriminator_dims": [16], "pac": 4},
    # Audio: 1,024-sample clips at 4 kHz (40 voices of spoken_digits: 32 to train, 8 to test).
    "wavegan": {"latent_dim": 8, "model_dim": 4, "num_layers": 3, "d_steps": 2},
    "cwavegan": {"latent_dim": 8, "model_dim": 4, "num_layers": 3, "d_steps": 2},
    "specgan": {"latent_dim": 8, "model_dim": 4, "frame_length": 64, "frame_step": 32, "d_steps": 2,
                "griffin_lim_iterations": 4},
    "cspecgan": {"latent_dim": 8, "model_dim": 4, "frame_length": 64, "frame_step": 32, "d_steps": 2,
                 "griffin_lim_iterations": 4},
    "wave_vae": {"hidden": [32, 16]},
    "conv_wave_vae": {"model_dim": 4, "num_layers": 3},
    "cwave_vae": {"model_dim": 4, "num_layers": 3},
    # Music: 8 training chorales (4 valid, 4 test) parsed from music21's corpus.
    "chorale_nade": {"units": 16, "nade_hidden": 8},
    "music_transformer": {"context_length": 64, "num_layers": 1, "num_heads": 2, "embed_dim": 16, "dropout": 0.0},
    "melody_lstm": {"units": 16, "embed_dim": 8},
    "note_lstm": {"units": 16, "embed_dim": 8, "max_step": 16, "max_duration": 16},
    "musegan": {"bars": 2, "pitch_low": 48, "num_pitches": 24, "z_dim": 4, "filters": 8, "d_steps": 1},
}
TINY_MUSIC_DATA = {"name": "chorales", "max_examples": 8, "batch_size": 4, "seq_len": 32}
TINY_AUDIO_DATA = {"name": "spoken_digits", "voices": 40, "sample_rate": 4000, "clip_length": 1024, "batch_size": 16}


def tiny_config(model_name: str = "dcgan", **sections):
    """A valid Config on 64 `digits` images, one short epoch."""
    raw = {
        "seed": 1,
        "model": {"name": model_name, **TINY_MODEL.get(model_name, {})},
        "data": {"name": "digits", "batch_size": 16, "max_examples": 64},
        "train": {"epochs": 1, "verbose": 0, "num_samples": 16},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return from_dict(raw, "test")


def tiny_model_config(model_name: str):
    """A valid tiny Config for any registered model, on its modality's embedded data."""
    from aigc_tf import registry

    if registry.task_for(model_name).modality == "text":
        raw = {
            "seed": 1,
            "model": {"name": model_name, **TINY_MODEL.get(model_name, {})},
            # data.tokenizer: each text family's default (char; gpt2's byte-level BPE).
            "data": {"name": "embedded", "seq_len": 32, "batch_size": 8, "max_examples": 40},
            # The shipped text configs' Adam settings.
            "train": {"epochs": 1, "verbose": 0, "num_samples": 2, "learning_rate": 2e-3, "beta_1": 0.9},
        }
        return from_dict(raw, "test")
    if registry.task_for(model_name).modality == "table":
        raw = {
            "seed": 1,
            "model": {"name": model_name, **TINY_MODEL.get(model_name, {})},
            "data": {"name": "fair", "batch_size": 16, "max_examples": 200, "max_modes": 3},
            "train": {"epochs": 1, "verbose": 0, "num_samples": 8, "learning_rate": 1e-3, "beta_1": 0.5,
                      "beta_2": 0.9},
        }
        return from_dict(raw, "test")
    if registry.task_for(model_name).modality == "audio":
        raw = {
            "seed": 1,
            "model": {"name": model_name, **TINY_MODEL.get(model_name, {})},
            "data": dict(TINY_AUDIO_DATA),
            "train": {"epochs": 1, "verbose": 0, "num_samples": 4, "learning_rate": 1e-3, "beta_1": 0.5,
                      "beta_2": 0.9},
        }
        return from_dict(raw, "test")
    if registry.task_for(model_name).modality == "music":
        raw = {
            "seed": 1,
            "model": {"name": model_name, **TINY_MODEL.get(model_name, {})},
            "data": dict(TINY_MUSIC_DATA),
            "train": {"epochs": 1, "verbose": 0, "num_samples": 2, "learning_rate": 2e-3, "beta_1": 0.9},
        }
        return from_dict(raw, "test")
    return tiny_config(model_name)


def run_python(code_or_file: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run Python in a fresh process (``-c`` code or a file), returning the result."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, code_or_file, *args] if code_or_file.endswith(".py") else [sys.executable, "-c", code_or_file, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def mirrored_step_stats(script: str, names: list[str], timeout: int = 300) -> dict:
    """Run ``tests/scripts/SCRIPT`` (one step on one device and under MirroredStrategy per model) and
    check what every such script reports: the same start, a step that trained, weights equal to float32
    rounding, and where reported the logged loss too and a finite default step. Returns the stats."""
    import json

    result = run_python(str(ROOT / "tests" / "scripts" / script), ",".join(names), timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(stats) == sorted(names)
    for name, s in stats.items():
        assert s["same_start"], name
        assert s["max_update"] > 1e-4, f"{name}: the step did not train ({s})"
        assert s["max_diff"] < 1e-6 * max(1.0, s["max_update"]), f"{name}: mirrored differs from one device ({s})"
        if "loss_1" in s:
            assert abs(s["loss_1"] - s["loss_2"]) < 1e-5 * abs(s["loss_1"]), f"{name}: logged loss differs ({s})"
        if "default_finite" in s:
            assert s["default_finite"] and s["default_update"] > 1e-5, f"{name}: the default mirrored step ({s})"
    return stats


def detokenize(tokenizer, ids) -> list[str]:
    """Reference for the tests: token ids ``(batch, time)`` back to strings through the
    tokenizer's vocabulary (padding dropped; words joined by spaces)."""
    import numpy as np

    vocab = np.array(tokenizer.get_vocabulary())
    sep = "" if tokenizer.get_config()["split"] == "character" else " "
    return [sep.join(vocab[i] for i in row if i != 0) for row in np.asarray(ids)]


def token_stream(tokenizer, texts):
    """Reference for the tests: all texts tokenised and concatenated (padding removed), int32."""
    import numpy as np
    import tensorflow as tf

    ids = tokenizer(tf.constant(list(texts)))
    flat = tf.boolean_mask(ids, ids != 0) if ids.shape.rank == 2 else ids
    return flat.numpy().astype(np.int32)


def fit_with_generator_average_reference(model, dataset, batch: int):
    """Fit ``model`` (a GAN with ``ema_kimg``) one epoch on ``dataset`` (batches of ``batch``) and return
    ``(ema, betas)``: its generator's moving average recomputed in float64 numpy from the live weights
    after every step (``ema = beta * ema + (1 - beta) * live``, beta from the half-life and its ramp)."""
    import keras

    snapshots = []

    class Snap(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            snapshots.append([v.numpy().astype("float64") for v in model.generator.weights])

    ema = [v.numpy().astype("float64") for v in model.generator.weights]
    model.fit(dataset, epochs=1, verbose=0, callbacks=[Snap()])
    seen, betas = 0.0, []
    for live in snapshots:
        horizon = min(model.ema_kimg * 1000, seen * model.ema_rampup) if model.ema_rampup > 0 else model.ema_kimg * 1000
        beta = 0.5 ** (batch / max(horizon, 1e-8))
        betas.append(beta)
        ema = [beta * e + (1 - beta) * w for e, w in zip(ema, live, strict=True)]
        seen += batch
    return ema, betas
