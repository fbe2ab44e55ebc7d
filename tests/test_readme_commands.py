"""Every ``aigc-tf`` command in the README's ``bash`` blocks runs and exits 0.

Train commands get small settings appended (``SMALL``) and run first; the
other commands then run as written on those runs, in a temporary working
directory (so ``runs/`` and ``exports/`` land there). A README command for a
config without small settings fails the test: add them here.
"""

from __future__ import annotations

import re
import shlex

import pytest

from aigc_tf.cli import main
from tests.helpers import ROOT

SMALL = {
    "tune/vae_digits": ["train.epochs=1", "data.max_examples=128", "train.quality_every=1", "train.num_samples=16",
                        "tune.max_trials=1"],
    "dcgan_digits": ["train.epochs=1", "data.max_examples=64", "train.quality_every=0", "model.base_filters=8",
                     "train.num_samples=16"],
    "gpt_embedded": ["train.epochs=1", "train.steps_per_epoch=3", "model.num_layers=1", "model.embed_dim=32",
                     "train.lr_schedule=constant", "train.warmup_steps=0", "train.num_samples=1"],
    "tvae_fair": ["train.epochs=1", "data.max_examples=300", "model.hidden=[16]", "model.latent_dim=4",
                  "train.quality_every=0", "train.num_samples=5"],
    "cwavegan_spoken_digits": ["train.epochs=1", "data.voices=40", "data.sample_rate=4000", "data.clip_length=1024",
                               "model.model_dim=4", "model.num_layers=3", "model.d_steps=2", "train.quality_every=0",
                               "train.num_samples=4"],
    "text_vae_embedded": ["train.epochs=1", "train.steps_per_epoch=3", "model.embed_dim=16", "model.units=32",
                          "train.num_samples=1"],
    "chorale_nade_chorales": ["train.epochs=1", "data.max_examples=8", "model.units=16", "model.nade_hidden=8",
                              "train.quality_every=0", "train.num_samples=2"],
    "gpt2_embedded": ["train.epochs=1", "train.steps_per_epoch=3", "model.num_layers=1", "model.hidden_dim=32",
                      "model.intermediate_dim=64", "data.vocab_size=300", "data.max_examples=200",
                      "train.lr_schedule=constant", "train.warmup_steps=0", "train.num_samples=1"],
}


def readme_commands() -> list[list[str]]:
    """The ``aigc-tf`` commands of the README's bash blocks, as argument lists (comments dropped)."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words:
                cut = words.index("&&") if "&&" in words else len(words)
                part, words = words[:cut], words[cut + 1 :]
                if part and part[0] == "aigc-tf":
                    commands.append(part[1:])
    return commands


def test_readme_shows_the_commands_this_test_runs():
    commands = readme_commands()
    assert ["train", "configs/dcgan_digits.yaml"] in commands  # the quick start
    assert {c[0] for c in commands} >= {"train", "sample", "evaluate", "export"}


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    commands = readme_commands()
    # Searches get the small settings of their config too (keyed "tune/<name>"), and run before the
    # commands that read their run directories.
    trains = [c for c in commands if c[0] in ("train", "tune")]
    others = [c for c in commands if c[0] not in ("train", "tune")]
    for argv in trains:
        stem = argv[1].removeprefix("configs/").removesuffix(".yaml")
        assert stem in SMALL, f"README trains {argv[1]}: add its small settings to SMALL"
        extra = ["--set", *SMALL[stem], "train.verbose=0"]
        assert main([*argv, *extra]) == 0, f"aigc-tf {shlex.join(argv)} failed: {capsys.readouterr().err}"
    for argv in others:
        code = main(argv)
        assert code == 0, f"aigc-tf {shlex.join(argv)} exited {code}: {capsys.readouterr().err}"
