"""Run directories written by release 0.1.0 still sample, evaluate, export and resume."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from aigc_tf.cli import main
from tests.helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "release_0_1_0"


@pytest.fixture
def old_run(tmp_path, request):
    """A copy of the fixture run (tests must never change the originals)."""
    target = tmp_path / request.param
    shutil.copytree(FIXTURES / request.param, target)
    return target


@pytest.mark.parametrize("old_run", ["dcgan_tiny"], indirect=True)
def test_old_image_run_samples_evaluates_exports_and_resumes(old_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", str(old_run), "-n", "4", "--seed", "1", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert main(["evaluate", str(old_run), "-n", "32", "--out", str(tmp_path / "m.json")]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert np.isfinite(metrics["fid"]) and metrics["kid_stderr"] > 0
    assert main(["export", str(old_run), "--out", str(tmp_path / "exports")]) == 0
    assert (tmp_path / "exports" / old_run.name / "1" / "saved_model.pb").is_file()
    config = tmp_path / "old_config.yaml"
    shutil.copy(old_run / "config.yaml", config)
    assert main(["train", str(config), "--run-dir", str(old_run), "--resume", "--set", "train.epochs=2"]) == 0
    history = json.loads((old_run / "history.json").read_text())
    assert history["epoch"] == [1, 2]


@pytest.mark.parametrize("old_run", ["gpt_tiny"], indirect=True)
def test_old_text_run_samples_evaluates_exports_and_resumes(old_run, tmp_path, capsys):
    assert main(["sample", str(old_run), "--prompt", "The ", "--seed", "0"]) == 0
    text = capsys.readouterr().out.splitlines()[1]
    assert text.startswith("The ") and len(text) == 32  # the 32-token context, filled
    assert main(["evaluate", str(old_run), "-n", "4", "--out", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["sample_tokens"] == 28
    assert main(["export", str(old_run), "--out", str(tmp_path / "exports")]) == 0
    # The old release recorded its default of 200 per-epoch sample tokens, which it
    # clipped silently; resumed with that value the run is refused with the fix named ...
    recorded = yaml.safe_load((old_run / "config.yaml").read_text())
    assert recorded["train"]["sample_max_new_tokens"] == 200
    config = tmp_path / "old_config.yaml"
    shutil.copy(old_run / "config.yaml", config)
    capsys.readouterr()
    assert main(["train", str(config), "--run-dir", str(old_run), "--resume", "--set", "train.epochs=2"]) == 2
    assert "train.sample_max_new_tokens=28 or less" in capsys.readouterr().err
    assert json.loads((old_run / "history.json").read_text())["epoch"] == [1]  # untouched
    # ... and resumes with the new default (null: what the context leaves).
    assert main(["train", str(config), "--run-dir", str(old_run), "--resume",
                 "--set", "train.epochs=2", "train.sample_max_new_tokens=null"]) == 0
    assert json.loads((old_run / "history.json").read_text())["epoch"] == [1, 2]
    assert "--- sample 1" in (old_run / "samples" / "epoch_0002.txt").read_text()
