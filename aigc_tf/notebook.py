"""What the shipped notebooks share: a config by name, their own run and export
directories, re-runnable training, and small settings for CI.

A notebook calls ``session = NotebookRun("dcgan_digits", full=[...], small=[...])``
and then ``session.train()`` / ``session.export(model)``:

* the config is the shipped ``configs/<name>.yaml``, found next to the package,
  so the notebook runs from any working directory;
* runs go to ``$AIGC_TF_NOTEBOOK_DIR/<name>-<hash>/`` (default
  ``runs/notebooks/`` beside ``configs/``), exports to
  ``$AIGC_TF_NOTEBOOK_DIR/exports/`` and keras-tuner searches to
  ``$AIGC_TF_NOTEBOOK_DIR/searches/<name>-<hash>/``, never the CLI's ``runs/<name>`` or an
  export root a user serves from; the hash is of the overrides, so changed
  settings get a new run directory;
* "Run All" a second time reuses the finished run instead of failing;
* ``AIGC_TF_NOTEBOOK_SMALL=1`` switches every notebook to its ``small``
  overrides (a minute or less each), which is how the test suite executes them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from aigc_tf.errors import ConfigError

SMALL_ENV = "AIGC_TF_NOTEBOOK_SMALL"
DIR_ENV = "AIGC_TF_NOTEBOOK_DIR"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def small_settings() -> bool:
    """True when ``AIGC_TF_NOTEBOOK_SMALL`` asks for the small (CI) settings."""
    return os.environ.get(SMALL_ENV, "") not in ("", "0")


def shipped_config(name: str) -> Path:
    """``configs/<name>.yaml`` of this checkout, wherever the notebook runs from."""
    path = PACKAGE_ROOT / "configs" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"shipped config {path} not found; notebooks need a source checkout (pip install -e .) "
            "or pass a config path to load_config yourself"
        )
    return path


def notebook_root() -> Path:
    root = os.environ.get(DIR_ENV)
    return Path(root) if root else PACKAGE_ROOT / "runs" / "notebooks"


class NotebookRun:
    """One notebook's config, run directory and export root.

    Args:
        config: name of a shipped config (``configs/<config>.yaml``).
        full: ``--set`` overrides for a normal run of the notebook.
        small: overrides used instead when ``AIGC_TF_NOTEBOOK_SMALL=1``.
    """

    def __init__(self, config: str, full: list[str] | None = None, small: list[str] | None = None):
        from aigc_tf.config import load_config

        self.small = small_settings()
        self.overrides = list(small if self.small and small is not None else full or [])
        self.config_path = shipped_config(config)
        self.config = load_config(self.config_path, self.overrides)
        digest = hashlib.sha256(json.dumps(self.config.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
        self.run_dir = notebook_root() / f"{config}-{digest}"
        self.export_root = notebook_root() / "exports"
        # A notebook that drives keras-tuner keeps its search here (not a run directory).
        self.search_dir = notebook_root() / "searches" / f"{config}-{digest}"
        self.name = config

    def train(self, **kwargs):
        """Train into :attr:`run_dir`, resume it if interrupted, or load it if it already finished."""
        from aigc_tf import training

        state = training.read_state(self.run_dir) or {}
        if state.get("finished") and (self.run_dir / training.FINAL_MODEL).is_file():
            print(f"{self.run_dir} already holds this finished run; loading it (delete the folder to retrain)")
            return training.load_model(self.run_dir / training.FINAL_MODEL)
        return training.train(self.config, self.run_dir, **kwargs)

    def history(self) -> dict:
        """The run's ``history.json``: ``{metric: [value per epoch]}``."""
        return json.loads((self.run_dir / "history.json").read_text())

    def export(self, model, name: str | None = None) -> Path:
        """Export into this notebook's own export root (a new version each time)."""
        from aigc_tf import export

        return export.export_model(model, self.export_root, name or f"notebook_{self.name}")

    def __repr__(self):
        mode = "small" if self.small else "full"
        return f"NotebookRun({self.name!r}, {mode}, run_dir={str(self.run_dir)!r})"
