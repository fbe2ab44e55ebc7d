"""The run directory's writer decides who writes: only the chief of a multi-worker cluster."""

import json

import pytest

from aigc_tf import run_dir


@pytest.mark.parametrize(
    "tf_config, chief",
    [
        (None, True),
        ("", True),
        ("{}", True),
        ("[1, 2]", True),
        ("not json", True),
        ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
        ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
        ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True),
        ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False),
        ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": None}}, True),
        ({"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator"}}, False),
    ],
)
def test_is_chief(tf_config, chief, monkeypatch):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config if isinstance(tf_config, str) else json.dumps(tf_config))
    assert run_dir.is_chief() is chief


def test_a_non_chief_writer_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                                                "task": {"type": "worker", "index": 1}}))
    writer = run_dir.RunWriter(tmp_path / "run")
    writer.json("history.json", {"epoch": [1]})
    writer.samples(lambda folder: (folder / "x.txt").write_text("x"))
    assert not (tmp_path / "run").exists()
