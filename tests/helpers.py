"""Shared test helpers: tiny configs and per-model checks (KerasHub style)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aigc_tf.config import from_dict

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

# Small widths keep every model's one-step fit in well under a second.
TINY_MODEL = {
    "mlp_gan": {},
    "dcgan": {"base_filters": 8, "latent_dim": 16},
    "cgan": {"base_filters": 8, "latent_dim": 16},
    "mlp_vae": {"latent_dim": 4},
    "conv_vae": {"latent_dim": 4},
    "cvae": {"latent_dim": 4},
}


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


def run_python(code_or_file: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run Python in a fresh process (``-c`` code or a file), returning the result."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, code_or_file, *args] if code_or_file.endswith(".py") else [sys.executable, "-c", code_or_file, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
