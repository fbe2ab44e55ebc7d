"""The aigc-tf command line: errors users make, and train -> sample -> export."""

import numpy as np
import pytest
import yaml

from aigc_tf.cli import main
from tests.helpers import CONFIGS, run_python

TINY = [
    "--set", "data.max_examples=64",
    "--set", "data.batch_size=16",
    "--set", "train.epochs=1",
    "--set", "train.verbose=0",
    "--set", "train.num_samples=16",
    "--set", "model.base_filters=8",
    "--set", "model.latent_dim=16",
    "--set", "train.quality_every=0",
]


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("aigc-tf: error: ")
    return err[0]


@pytest.fixture
def bad_files(tmp_path):
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("model:\n  name: dcgan\n data: [\n")
    corrupt = tmp_path / "mnist.npz"
    corrupt.write_bytes(b"this is not a zip archive")
    return {"malformed": str(malformed), "corrupt": str(corrupt), "tmp": str(tmp_path)}


CASES = {
    "missing config": (["train", "{tmp}/nope.yaml"], "not found"),
    "malformed yaml": (["train", "{malformed}"], "malformed YAML at line"),
    "unknown key": (["train", "DCGAN", "--set", "train.epoch=3"], "unknown key 'train.epoch'"),
    "wrong type": (["train", "DCGAN", "--set", "train.epochs=ten"], "train.epochs must be an integer"),
    "unknown model": (["train", "DCGAN", "--set", "model.name=stylegan"], "unknown model.name 'stylegan'"),
    "unknown dataset": (["train", "DCGAN", "--set", "data.name=svhn_cropped"], "unknown image dataset 'svhn_cropped'; set data.name to one of"),
    "shape mismatch": (["train", "DCGAN", "--set", "data.image_size=30"],
                       "supports square images of 28 pixels (two stages from 7x7) or 8, 16, 32, 64, 128, 256"),
    "fixed layout needs sides divisible by 4": (["train", "DCGAN", "--set", "data.image_size=30", "model.layout=fixed"],
                                                "divisible by 4"),
    "folder config without a path": (["train", "{configs}/dcgan_folder64.yaml"], "set data.path=<image dir>"),
    "offline tfds": (
        ["train", "DCGAN", "--set", "data.name=mnist", "--set", "data.download=false", "--set", "data.data_dir={tmp}/tfds"],
        "dataset 'mnist' is not prepared in",
    ),
    "corrupt data file": (
        ["train", "DCGAN", "--set", "data.name=npz", "--set", "data.path={corrupt}"],
        "mnist.npz is not a readable npz file",
    ),
    "negative seed": (["train", "DCGAN", "--set", "seed=-1"], "seed must be an integer in [0, 2**32)"),
    "zero critic steps": (["train", "DCGAN", "--set", "model.d_steps=0"], "d_steps must be at least 1"),
    "model name not a string": (["train", "DCGAN", "--set", "model.name=[1]"], "unknown model.name [1]"),
    "run dir is a file": (["train", "DCGAN", "--run-dir", "{malformed}"], "is a file, not a directory"),
    "bad --set": (["train", "DCGAN", "--set", "train.epochs"], "expected KEY=VALUE"),
    "sample non-run": (["sample", "{tmp}"], "not a run directory"),
    "export non-run": (["export", "{tmp}", "--out", "{tmp}/exports"], "not a run directory"),
    "evaluate non-run": (["evaluate", "{tmp}"], "not a run directory"),
    "sample missing dir": (["sample", "{tmp}/missing"], "missing does not exist; pass a run directory"),
    "export missing dir": (["export", "{tmp}/missing", "--out", "{tmp}/exports"], "missing does not exist"),
    "evaluate missing dir": (["evaluate", "{tmp}/missing"], "missing does not exist"),
    "several overrides after one --set": (["train", "DCGAN", "--set", "train.epochs=1", "train.epoch=3"],
                                          "unknown key 'train.epoch'"),
    "empty image folder": (["train", "DCGAN", "--set", "data.name=folder", "data.path={tmp}"], "{tmp}"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_errors_print_one_line_and_exit_2(case, bad_files, capsys, tmp_path):
    argv, expected = CASES[case]
    argv = [a.replace("DCGAN", str(CONFIGS / "dcgan_digits.yaml")).format(**bad_files, configs=CONFIGS) for a in argv]
    if argv[0] == "train" and "--run-dir" not in argv:
        argv += ["--run-dir", str(tmp_path / "run")]
    assert main(argv) == 2
    out = capsys.readouterr()
    err = out.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aigc-tf: error: "), err
    line = err[0]
    assert expected.format(**bad_files) in line, line
    # The data is checked before anything slow (the FID classifier) is prepared or announced.
    assert "classifier" not in out.out, out.out
    if argv[0] == "train" and (tmp_path / "run").exists():
        # Nothing was trained: at most the resolved config was written.
        assert {p.name for p in (tmp_path / "run").iterdir()} <= {"config.yaml"}


@pytest.mark.parametrize("config, dataset", [("dcgan_mnist", "mnist"), ("dcgan_cifar10", "cifar10"),
                                             ("dcgan_celeba64", "celeb_a")])
def test_offline_tfds_download_fails_fast_with_a_clear_line(config, dataset, tmp_path, capsys, monkeypatch):
    from aigc_tf.data import images

    monkeypatch.setattr(images, "_can_download", lambda *a, **k: False)
    argv = ["train", str(CONFIGS / f"{config}.yaml"), "--set", f"data.data_dir={tmp_path}/tfds",
            "--run-dir", str(tmp_path / "run")]
    assert main(argv) == 2
    line = _error_line(capsys)
    assert f"dataset '{dataset}' is not prepared" in line and "cannot be downloaded offline" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_sample_output_must_be_png(tmp_path, capsys):
    run = tmp_path / "run"
    # One --set followed by several KEY=VALUE items.
    items = [a for a in TINY[:10] + TINY[-2:] if a != "--set"]
    assert main(["train", str(CONFIGS / "vae_digits.yaml"), "--run-dir", str(run), "--set", *items]) == 0
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["data"]["max_examples"] == 64 and resolved["train"]["num_samples"] == 16
    capsys.readouterr()
    assert main(["sample", str(run), "--out", str(tmp_path / "grid")]) == 2
    assert "must be a .png file path" in _error_line(capsys)


def test_importing_the_cli_does_not_import_tensorflow():
    result = run_python(
        "import sys, aigc_tf.cli as c; c.build_parser().format_help(); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_help_exits_zero():
    result = run_python("import sys; from aigc_tf.cli import main; sys.argv = ['aigc-tf', '--help']; main()")
    assert result.returncode == 0
    assert "train" in result.stdout and "export" in result.stdout


@pytest.mark.slow
def test_train_sample_export(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(CONFIGS / "dcgan_digits.yaml"), "--run-dir", str(run), *TINY]) == 0
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["train"]["epochs"] == 1 and resolved["model"]["base_filters"] == 8

    # Training it again is refused and leaves the run as it was.
    before = (run / "model.keras").read_bytes()
    assert main(["train", str(CONFIGS / "dcgan_digits.yaml"), "--run-dir", str(run), *TINY]) == 2
    assert "finished run" in capsys.readouterr().err
    assert (run / "model.keras").read_bytes() == before

    from PIL import Image

    def sample(seed, name):
        out = tmp_path / name
        assert main(["sample", str(run), "-n", "9", "--seed", str(seed), "--out", str(out)]) == 0
        return np.asarray(Image.open(out))

    a, b, c = sample(3, "a.png"), sample(3, "b.png"), sample(4, "c.png")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (2 * (3 * 30 + 2), 2 * (3 * 30 + 2))  # 3x3 grid of 28px + 2px gaps, x2

    exports = tmp_path / "exports"
    assert main(["export", str(run), "--out", str(exports)]) == 0
    assert (exports / "run" / "1" / "saved_model.pb").is_file()
    assert (exports / "run" / "1" / "variables").is_dir()
    assert main(["export", str(run), "--out", str(exports)]) == 0
    assert (exports / "run" / "2" / "saved_model.pb").is_file()
    stamp = (exports / "run" / "1" / "saved_model.pb").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["export", str(run), "--out", str(exports), "--version", "1"]) == 2
    assert "already exists" in _error_line(capsys)
    assert (exports / "run" / "1" / "saved_model.pb").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_train_with_mirrored_strategy_on_two_logical_cpus(tmp_path):
    """The whole CLI path under MirroredStrategy: two optimizers, checkpoints, resume files."""
    run = tmp_path / "run"
    code = (
        "import sys; from aigc_tf.cli import main; "
        f"sys.exit(main(['train', {str(CONFIGS / 'cgan_mnist.yaml')!r}, '--run-dir', {str(run)!r}, "
        "'--set', 'data.name=digits', '--set', 'train.strategy=mirrored', '--set', 'train.cpu_devices=2', "
        + ", ".join(repr(a) for a in TINY) + ", '--set', 'train.epochs=2']))"
    )
    result = run_python(code, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    history = yaml.safe_load((run / "history.json").read_text())
    assert history["epoch"] == [1, 2] and all(np.isfinite(history["d_loss"]))
    assert np.isfinite(history["val_d_loss"]).all()
    assert (run / "model.keras").is_file() and (run / "samples" / "epoch_0002.png").is_file()
    import keras

    model = keras.models.load_model(run / "model.keras")  # a mirrored run loads on one device
    assert int(model.d_optimizer.iterations.numpy()) == int(model.g_optimizer.iterations.numpy()) == 8


def test_start_up_log_lines_stay_off_the_terminal(tmp_path):
    """Only the error line reaches stderr: TensorFlow's C++ start-up lines are hidden."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "AIGC_TF_VERBOSE")}
    code = "import sys; from aigc_tf.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run([sys.executable, "-c", code, "sample", str(tmp_path / "missing")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"aigc-tf: error: {tmp_path / 'missing'} does not exist; "
                                          "pass a run directory written by `aigc-tf train` (e.g. runs/dcgan_digits)"]


def test_quiet_stderr_hides_fd_level_writes_and_restores_them():
    result = run_python(
        "import os, sys; from aigc_tf.cli import _quiet_stderr\n"
        "with _quiet_stderr(True):\n    os.write(2, b'hidden\\n')\n"
        "os.write(2, b'shown\\n')\n"
        "with _quiet_stderr(False):\n    os.write(2, b'verbose\\n')\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["shown", "verbose"]


def test_set_items_may_come_before_the_config_and_verbose_after_the_command():
    from aigc_tf.cli import build_parser

    args = build_parser().parse_args(["train", "c.yaml", "--verbose", "--set", "a=1", "b=2"])
    assert args.verbose and args.config == "c.yaml" and args.set == [["a=1", "b=2"]]
    result = run_python(
        "import sys; from aigc_tf.cli import main; "
        f"sys.exit(main(['train', '--set', 'data.name=mnsit', 'train.epochs=1', {str(CONFIGS / 'dcgan_digits.yaml')!r}]))"
    )
    assert result.returncode == 2 and "unknown image dataset 'mnsit'" in result.stderr


def test_a_refused_run_directory_answers_before_tensorflow_starts(tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(CONFIGS.parent / "tests" / "fixtures" / "release_0_1_0" / "dcgan_tiny", run)
    code = ("import sys; from aigc_tf.cli import main; "
            f"rc = main(['train', {str(run / 'config.yaml')!r}, '--run-dir', {str(run)!r}]); "
            "print('tensorflow' in sys.modules); sys.exit(rc)")
    result = run_python(code)
    assert result.returncode == 2 and "holds a finished run" in result.stderr
    assert result.stdout.strip() == "False"


def test_quiet_stderr_replays_what_it_held_when_the_block_fails():
    result = run_python(
        "import os; from aigc_tf.cli import _quiet_stderr\n"
        "try:\n    with _quiet_stderr(True):\n        os.write(2, b'why it failed\\n')\n        raise RuntimeError('x')\n"
        "except RuntimeError:\n    pass\n"
    )
    assert result.returncode == 0 and result.stderr.splitlines() == ["why it failed"]


def test_the_command_leaves_at_once_after_a_lost_peer_or_a_preemption(monkeypatch):
    """`aigc-tf` exits through os._exit after a lost peer or a preemption (TensorFlow's multi-worker
    teardown can wait on a task that has gone) and through sys.exit otherwise."""
    from aigc_tf import cli
    from aigc_tf.distribute import EXIT_PREEMPTED, EXIT_WORKER_LOST

    exits = []

    def fake_exit(code):
        exits.append(code)
        raise SystemExit(code)

    monkeypatch.setattr(cli.os, "_exit", fake_exit)
    for code, hard in ((EXIT_WORKER_LOST, [EXIT_WORKER_LOST]), (EXIT_PREEMPTED, [EXIT_PREEMPTED]), (0, []), (2, []), (3, [])):
        monkeypatch.setattr(cli, "main", lambda code=code: code)
        with pytest.raises(SystemExit) as stopped:
            cli.run()
        assert stopped.value.code == code and exits == hard
        exits.clear()
