"""A search directory's record of what it searches (no TensorFlow: the CLI checks it before TensorFlow starts)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from aigc_tf.config import Config, TuneConfig
from aigc_tf.errors import RunDirError

SEARCH_FILE = "tune.yaml"


def record(base: Config, tune: TuneConfig) -> dict:
    return {"config": base.to_dict(), "tune": dataclasses.asdict(tune)}


def check_search_dir(search_dir: Path, base: Config, tune: TuneConfig) -> None:
    """Refuse a directory that holds something else, or a search of another config
    (``tune.max_trials`` may grow between reruns)."""
    search_dir = Path(search_dir)
    if search_dir.exists() and not search_dir.is_dir():
        raise RunDirError(f"{search_dir} is a file; pass --run-dir with a directory path")
    path = search_dir / SEARCH_FILE
    if not path.is_file():
        if search_dir.exists() and any(search_dir.iterdir()):
            raise RunDirError(f"{search_dir} exists and holds no aigc-tf search; pass --run-dir NEW (nothing was changed)")
        return
    old = yaml.safe_load(path.read_text())
    new = record(base, tune)
    # Keys that do not change what a trial computes may differ between reruns: more trials, or
    # trials in child processes instead of in this one. A key the record lacks has its default.
    free = ("max_trials", "isolate")
    defaults = dataclasses.asdict(TuneConfig())
    old["tune"] = {k: v for k, v in {**defaults, **old["tune"]}.items() if k not in free}
    new_cmp = {"config": new["config"], "tune": {k: v for k, v in new["tune"].items() if k not in free}}
    if old != new_cmp:
        diff = _diff(old, new_cmp)
        raise RunDirError(f"{search_dir} holds a search of another config (differs in {', '.join(diff[:5])}); rerun "
                          "with the same config to resume it, or pass --run-dir NEW")


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _diff(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key}")
    return out
