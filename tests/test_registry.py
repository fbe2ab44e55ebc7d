"""The lazy registry and the family seam: names resolve without TensorFlow, and
what the source file says about a model's arguments is what Python says."""

import inspect

import pytest

from aigc_tf import registry
from tests.helpers import CONFIGS, TRAINING_CONFIGS, run_python


@pytest.mark.parametrize("name", list(registry.MODELS))
def test_arguments_read_from_source_match_the_class_signature(name):
    cls = registry.model_class(name)
    spec = registry.MODELS[name]
    expected = {
        p.name: spec.preset.get(p.name, p.default)
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name not in ("self", "kwargs") and p.name not in registry.FROM_DATA
    }
    got = {k: default for k, (_, default) in registry.model_arguments(name).items()}
    assert got == expected
    hints = __import__("typing").get_type_hints(cls.__init__)
    for key, (annotation, _) in registry.model_arguments(name).items():
        assert annotation == hints.get(key, annotation), key


def test_validating_every_shipped_config_imports_no_tensorflow():
    result = run_python(
        "import sys, glob; from aigc_tf.config import load_config\n"
        f"for path in {[str(p) for p in TRAINING_CONFIGS]!r}: load_config(path)\n"
        "import aigc_tf.cli as c; c.build_parser()\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'aigc_tf.models.gan') if m in sys.modules))"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_a_config_error_prints_one_line_without_tensorflow(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = ("import sys; from aigc_tf.cli import main; rc = main(sys.argv[1:]); "
            "print('tensorflow' in sys.modules); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, "train", str(CONFIGS / "gpt_embedded.yaml"),
                             "--set", "model.context_lenght=64", "--run-dir", str(tmp_path / "run")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert "unknown key 'model.context_lenght' for model 'gpt' (did you mean 'context_length'?)" in result.stderr
    assert result.stdout.strip() == "False"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("family", list(registry.FAMILIES))
def test_every_family_has_a_task_and_every_model_a_family(family):
    task = registry.task_class(family)()
    assert task.family == family and task.modality and task.datasets
    assert any(spec.family == family for spec in registry.MODELS.values())


def test_task_for_model_finds_the_family_of_a_model_instance():
    from aigc_tf.tasks import task_for_model

    gan = registry.build_model({"name": "dcgan", "base_filters": 8, "latent_dim": 4}, 0,
                               image_shape=(28, 28, 1), num_classes=10)
    assert task_for_model(gan).family == "gan"
    with pytest.raises(TypeError, match="not a model of a registered family"):
        task_for_model(object())


def test_every_command_of_no_family_is_in_the_cli_without_tensorflow():
    import argparse
    import subprocess
    import sys

    from aigc_tf.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(registry.COMMANDS) <= set(commands)
    code = "import sys; from aigc_tf.cli import build_parser; build_parser(); print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
