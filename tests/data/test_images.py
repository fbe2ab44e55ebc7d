"""Tests for aigc_tf.data.images: every source, offline, on small data."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from sklearn.datasets import load_digits

from aigc_tf.data import images
from aigc_tf.data.images import IMAGE_DATASETS, load_image_arrays, load_image_data
from aigc_tf.errors import DataError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Captured before the autouse fixture replaces it; only ever called on loopback.
_REAL_CAN_DOWNLOAD = images._can_download


@pytest.fixture(autouse=True)
def _no_network_probe(monkeypatch):
    """Any test that reaches the real connectivity check fails."""

    def forbidden(*args, **kwargs):
        raise AssertionError("tests must not probe the network (_can_download)")

    monkeypatch.setattr(images, "_can_download", forbidden)


def _collect(ds):
    batches = list(ds.as_numpy_iterator())
    return (
        np.concatenate([b["images"] for b in batches]),
        np.concatenate([b["labels"] for b in batches]),
    )


# --------------------------------------------------------------------------
# digits (embedded default)
# --------------------------------------------------------------------------


def test_digits_shapes_split_and_labels():
    data = load_image_data("digits", batch_size=64)
    assert data.image_shape == (28, 28, 1)
    assert (data.num_train, data.num_test, data.num_classes) == (1437, 360, 10)
    assert data.class_names == [str(i) for i in range(10)]

    x_train, y_train = load_image_arrays("digits", split="train")
    x_test, y_test = load_image_arrays("digits", split="test")
    assert x_train.shape == (1437, 28, 28, 1) and x_test.shape == (360, 28, 28, 1)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    assert set(y_train) == set(range(10)) and set(y_test) == set(range(10))
    # MNIST-like framing: the 4-pixel border is background.
    for x in (x_train, x_test):
        for border in (x[:, :4], x[:, -4:], x[:, :, :4], x[:, :, -4:]):
            np.testing.assert_array_equal(border, -1.0)

    # The split is the documented one: permutation default_rng(0), last 20% test.
    target = load_digits().target
    order = np.random.default_rng(0).permutation(len(target))
    np.testing.assert_array_equal(y_train, target[order[:1437]])
    np.testing.assert_array_equal(y_test, target[order[1437:]])
    # And no digit is in both splits.
    train_keys = {row.tobytes() for row in x_train.reshape(len(x_train), -1)}
    assert not any(row.tobytes() in train_keys for row in x_test.reshape(len(x_test), -1))


def test_digits_are_upsampled_scans():
    x, _ = load_image_arrays("digits", split="train", value_range="unit", max_examples=50)
    raw = load_digits().images[np.random.default_rng(0).permutation(1797)[:50]] / 16.0
    # Averaging each 20x20 box back down to 8x8 recovers the scan closely.
    box = x[:, 4:24, 4:24, 0]
    down = np.stack([np.asarray(Image.fromarray(b).resize((8, 8), Image.BOX)) for b in box])
    assert np.abs(down - raw).mean() < 0.08


@pytest.mark.parametrize("value_range, low", [("tanh", -1.0), ("unit", 0.0)])
def test_digits_value_range(value_range, low):
    x, _ = load_image_arrays("digits", value_range=value_range)
    assert x.min() == pytest.approx(low) and x.max() == pytest.approx(1.0)
    # Real strokes use the range: nearly every digit reaches (almost) full
    # ink, a good share of pixels is bright, and most are background.
    span = 1.0 - low
    per_image_max = x.reshape(len(x), -1).max(axis=1)
    assert (per_image_max > low + 0.9 * span).mean() > 0.95
    assert (x > low + 0.5 * span).mean() > 0.1
    assert (x == low).mean() > 0.5


def test_tanh_is_affine_image_of_unit():
    unit, _ = load_image_arrays("digits", split="test", value_range="unit")
    tanh, _ = load_image_arrays("digits", split="test", value_range="tanh")
    np.testing.assert_allclose(tanh, unit * 2 - 1, atol=1e-6)


def test_batches_drop_remainder_and_test_keeps_all():
    data = load_image_data("digits", batch_size=100)
    train = list(data.train.as_numpy_iterator())
    assert len(train) == 1437 // 100
    assert all(b["images"].shape == (100, 28, 28, 1) and b["labels"].shape == (100,) for b in train)
    assert data.train.element_spec["images"].shape.as_list() == [100, 28, 28, 1]
    assert data.train.element_spec["labels"].dtype.name == "int32"

    sizes = [b["labels"].shape[0] for b in data.test.as_numpy_iterator()]
    assert sizes == [100, 100, 100, 60]
    # The test pipeline is unshuffled and matches load_image_arrays exactly.
    x_test, y_test = _collect(data.test)
    x_ref, y_ref = load_image_arrays("digits", split="test")
    np.testing.assert_array_equal(x_test, x_ref)
    np.testing.assert_array_equal(y_test, y_ref)


def test_shuffle_is_seeded_and_reshuffles_each_epoch():
    def epoch_labels(data):
        return _collect(data.train)[1]

    data = load_image_data("digits", batch_size=64, seed=3)
    epoch1, epoch2 = epoch_labels(data), epoch_labels(data)
    np.testing.assert_array_equal(epoch1, epoch_labels(load_image_data("digits", seed=3)))
    assert not np.array_equal(epoch1, epoch2)
    assert not np.array_equal(epoch1, epoch_labels(load_image_data("digits", seed=4)))
    # An epoch draws without replacement: 22 full batches, no label over-used.
    assert len(epoch1) == 22 * 64
    _, y_train = load_image_arrays("digits")
    assert (np.bincount(epoch1, minlength=10) <= np.bincount(y_train, minlength=10)).all()


@pytest.mark.slow  # spawns a Python process (~5 s)
def test_first_epoch_order_is_identical_across_processes():
    script = (
        "import hashlib, keras\n"
        "from aigc_tf.data.images import load_image_data\n"
        "keras.utils.set_random_seed(3)\n"
        "d = load_image_data('digits', batch_size=64, seed=7)\n"
        "b = next(iter(d.train))\n"
        "raw = b['images'].numpy().tobytes() + b['labels'].numpy().tobytes()\n"
        "print(hashlib.sha256(raw).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONHASHSEED"] = "123"  # a different str-hash seed must not matter
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    # tf.data op seeds combine with the global seed: set it the same way here.
    keras.utils.set_random_seed(3)
    batch = next(iter(load_image_data("digits", batch_size=64, seed=7).train))
    raw = batch["images"].numpy().tobytes() + batch["labels"].numpy().tobytes()
    assert out.stdout.strip().splitlines()[-1] == hashlib.sha256(raw).hexdigest()


def test_max_examples_truncates_both_splits():
    data = load_image_data("digits", batch_size=10, max_examples=100)
    assert (data.num_train, data.num_test) == (100, 100)
    assert len(list(data.train)) == 10


def test_resize_and_channels():
    x, _ = load_image_arrays(
        "digits", split="test", image_size=32, channels=3, value_range="unit"
    )
    assert x.shape == (360, 32, 32, 3)
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x[..., 0], x[..., 2])  # gray replicated to RGB


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "svhn_cropped"}, r"unknown image dataset 'svhn_cropped'.*" + r".*".join(IMAGE_DATASETS)),
        (
            {"name": "digits", "batch_size": 2000},
            r"data.batch_size=2000 is larger than the 1437 training images",
        ),
        ({"name": "digits", "value_range": "minus_one"}, "value_range"),
        ({"name": "digits", "channels": 2}, "channels"),
        ({"name": "npz"}, "data.path="),
        ({"name": "idx"}, "data.path="),
        ({"name": "folder"}, "data.path="),
    ],
)
def test_bad_requests_raise_data_error(kwargs, match):
    with pytest.raises(DataError, match=match):
        load_image_data(**kwargs)


def test_unknown_split_and_missing_test_split(tmp_path):
    with pytest.raises(DataError, match="split"):
        load_image_arrays("digits", split="validation")
    _write_png(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="no test split"):
        load_image_arrays("folder", path=str(tmp_path), split="test")


# --------------------------------------------------------------------------
# tfds
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name, class_name", [("mnist", "7"), ("fashion_mnist", "Trouser")])
def test_tfds_under_mock_data(name, class_name, tmp_path):
    # download=False and an empty data_dir: the mock must still count as available.
    with tfds.testing.mock_data(num_examples=20):
        data = load_image_data(name, batch_size=8, data_dir=str(tmp_path), download=False)
        x, y = load_image_arrays(name, split="test", max_examples=5, value_range="unit")
        raw = list(tfds.as_numpy(tfds.load(name, split="test", as_supervised=True).take(5)))
        train_batches = list(data.train.as_numpy_iterator())
        test_x, _ = _collect(data.test)
    assert data.image_shape == (28, 28, 1)
    assert (data.num_train, data.num_test, data.num_classes) == (20, 20, 10)
    assert class_name in data.class_names
    assert [b["images"].shape for b in train_batches] == [(8, 28, 28, 1)] * 2
    assert test_x.min() >= -1.0 and test_x.max() <= 1.0
    np.testing.assert_allclose(x, np.stack([img for img, _ in raw]) / 255.0, atol=1e-6)
    np.testing.assert_array_equal(y, [label for _, label in raw])
    assert y.dtype == np.int32


def test_tfds_colour_datasets_under_mock_data(tmp_path):
    import tensorflow as tf

    with tfds.testing.mock_data(num_examples=12):
        cifar = load_image_data("cifar10", batch_size=4, data_dir=str(tmp_path), download=False)
        faces = load_image_data("celeb_a", batch_size=4, image_size=32, data_dir=str(tmp_path), download=False)
        x, y = load_image_arrays("celeb_a", split="test", image_size=32, max_examples=3, value_range="unit")
        raw = [ex["image"] for ex in tfds.as_numpy(tfds.load("celeb_a", split="test").take(3))]
    assert (cifar.image_shape, cifar.num_classes, cifar.num_train) == ((32, 32, 3), 10, 12)
    assert len(cifar.class_names) == 10
    # CelebA is unlabelled here; its 218x178 faces lose 20 rows top and bottom, then shrink.
    assert (faces.image_shape, faces.num_classes, faces.class_names) == ((32, 32, 3), 0, [])
    assert next(iter(faces.train))["images"].shape == (4, 32, 32, 3)
    np.testing.assert_array_equal(y, [0, 0, 0])
    assert raw[0].shape == (218, 178, 3)
    square = np.stack(raw)[:, 20:198].astype(np.float32)
    expected = np.round(tf.image.resize(square, (32, 32), antialias=True).numpy()) / 255.0
    np.testing.assert_allclose(x, expected, atol=1e-6)


@pytest.mark.parametrize("name", ["cifar10", "celeb_a"])
def test_colour_tfds_offline_fails_fast_naming_a_folder_instead(name, tmp_path, monkeypatch):
    monkeypatch.setattr(images, "_can_download", lambda *a, **k: False)
    with pytest.raises(DataError, match=rf"'{name}' is not prepared .*cannot be downloaded offline.*data.name=folder"):
        load_image_data(name, data_dir=str(tmp_path))


def test_tfds_not_prepared_offline_fails_fast(tmp_path, monkeypatch):
    calls = []

    def offline(*args, **kwargs):
        calls.append(args)
        return False

    def no_download(self, *args, **kwargs):
        raise AssertionError("download_and_prepare must not be reached offline")

    monkeypatch.setattr(images, "_can_download", offline)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    start = time.monotonic()
    expected = r"'mnist' is not prepared in .*cannot be downloaded offline.*tfds.load"
    with pytest.raises(DataError, match=expected):
        load_image_data("mnist", data_dir=str(tmp_path))
    assert time.monotonic() - start < 20
    assert len(calls) == 1


def test_tfds_not_prepared_without_download(tmp_path):
    # The autouse fixture fails the test if the connectivity check runs.
    expected = r"'fashion_mnist' is not prepared.*data.download is false.*data.name=npz"
    with pytest.raises(DataError, match=expected):
        load_image_arrays("fashion_mnist", data_dir=str(tmp_path), download=False)


def test_can_download_is_a_tcp_connect(monkeypatch):
    """The real check, against loopback only: listening port yes, closed port no."""
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert _REAL_CAN_DOWNLOAD("127.0.0.1", port, timeout=2)
        # With a proxy configured, the proxy is what must be reachable (and
        # the unresolvable target is never looked up).
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
        assert _REAL_CAN_DOWNLOAD("host.invalid", 443, timeout=2)
    monkeypatch.delenv("HTTPS_PROXY")
    assert not _REAL_CAN_DOWNLOAD("127.0.0.1", port, timeout=2)


def test_tfds_download_failure_becomes_data_error(tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise ModuleNotFoundError("No module named 'importlib_resources'")

    monkeypatch.setattr(images, "_can_download", lambda *a, **k: True)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", broken)
    with pytest.raises(DataError, match="downloading tfds dataset 'mnist'.*importlib_resources"):
        load_image_data("mnist", data_dir=str(tmp_path))


# --------------------------------------------------------------------------
# npz
# --------------------------------------------------------------------------


def _mnist_like(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return images, rng.integers(0, 10, n).astype(np.uint8)


def test_npz_round_trip(tmp_path):
    x_train, y_train = _mnist_like(12, 0)
    x_test, y_test = _mnist_like(5, 1)
    path = tmp_path / "mnist.npz"
    np.savez_compressed(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)

    x, y = load_image_arrays("npz", path=str(path), split="train")
    np.testing.assert_allclose(x[..., 0], x_train.astype(np.float32) / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(y, y_train)
    x, _ = load_image_arrays("npz", path=str(path), split="test", value_range="unit")
    np.testing.assert_allclose(x[..., 0], x_test.astype(np.float32) / 255, atol=1e-7)

    data = load_image_data("npz", path=str(path), batch_size=4)
    assert (data.num_train, data.num_test, data.num_classes) == (12, 5, 10)
    assert data.image_shape == (28, 28, 1)
    assert len(list(data.train)) == 3
    np.testing.assert_array_equal(np.sort(_collect(data.train)[1]), np.sort(y_train))


def test_npz_errors(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all" * 10)
    with pytest.raises(DataError, match=r"garbage\.npz.*x_train, y_train, x_test, y_test"):
        load_image_data("npz", path=str(garbage))

    x, y = _mnist_like(4, 0)
    partial = tmp_path / "partial.npz"
    np.savez(partial, x_train=x, y_train=y, x_test=x)
    with pytest.raises(DataError, match=r"partial\.npz lacks key\(s\) y_test"):
        load_image_data("npz", path=str(partial))

    with pytest.raises(DataError, match=r"missing\.npz does not exist"):
        load_image_data("npz", path=str(tmp_path / "missing.npz"))

    mismatched = tmp_path / "mismatched.npz"
    np.savez(mismatched, x_train=x, y_train=y[:3], x_test=x, y_test=y)
    with pytest.raises(DataError, match="one label per image"):
        load_image_data("npz", path=str(mismatched), batch_size=2)

    floats = tmp_path / "floats.npz"
    np.savez(floats, x_train=x / 255.0, y_train=y, x_test=x, y_test=y)
    with pytest.raises(DataError, match="dtype float64, expected uint8"):
        load_image_data("npz", path=str(floats), batch_size=2)

    single = tmp_path / "single.npy"
    np.save(single, x)
    with pytest.raises(DataError, match=r"single\.npy is a single .npy array"):
        load_image_data("npz", path=str(single), batch_size=2)


# --------------------------------------------------------------------------
# idx
# --------------------------------------------------------------------------


def _idx_bytes(array, magic):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx(directory, n_train=9, n_test=4, gz=False):
    x_train, y_train = _mnist_like(n_train, 2)
    x_test, y_test = _mnist_like(n_test, 3)
    files = {
        "train-images-idx3-ubyte": _idx_bytes(x_train, 2051),
        "train-labels-idx1-ubyte": _idx_bytes(y_train, 2049),
        "t10k-images-idx3-ubyte": _idx_bytes(x_test, 2051),
        "t10k-labels-idx1-ubyte": _idx_bytes(y_test, 2049),
    }
    for name, raw in files.items():
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (directory / name).write_bytes(raw)
    return x_train, y_train, x_test, y_test


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    x_train, y_train, x_test, y_test = _write_idx(tmp_path, gz=gz)
    x, y = load_image_arrays("idx", path=str(tmp_path), value_range="unit")
    np.testing.assert_allclose(x[..., 0], x_train / 255.0, atol=1e-7)
    np.testing.assert_array_equal(y, y_train)
    data = load_image_data("idx", path=str(tmp_path), batch_size=3)
    assert (data.num_train, data.num_test, data.image_shape) == (9, 4, (28, 28, 1))
    x, y = _collect(data.test)
    np.testing.assert_allclose(x[..., 0], x_test / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(y, y_test)


def test_idx_errors(tmp_path):
    _write_idx(tmp_path)
    labels = tmp_path / "train-labels-idx1-ubyte"
    good = labels.read_bytes()

    labels.write_bytes((2051).to_bytes(4, "big") + good[4:])
    expected = r"train-labels-idx1-ubyte has magic number 2051, expected 2049"
    with pytest.raises(DataError, match=expected):
        load_image_data("idx", path=str(tmp_path), batch_size=2)

    labels.write_bytes(good)
    images_file = tmp_path / "t10k-images-idx3-ubyte"
    images_file.write_bytes(images_file.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte is truncated"):
        load_image_data("idx", path=str(tmp_path), batch_size=2)

    _write_idx(tmp_path, n_train=9)
    labels.write_bytes(_idx_bytes(np.zeros(8, np.uint8), 2049))
    with pytest.raises(DataError, match="9 images but .* 8 labels"):
        load_image_data("idx", path=str(tmp_path), batch_size=2)

    labels.unlink()
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\[.gz\] is missing"):
        load_image_data("idx", path=str(tmp_path), batch_size=2)


def test_idx_corrupt_gzip(tmp_path):
    _write_idx(tmp_path, gz=True)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz"):
        load_image_data("idx", path=str(tmp_path), batch_size=2)


# --------------------------------------------------------------------------
# folder
# --------------------------------------------------------------------------


def _write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _class_folder(root, per_class=3, size=(12, 10)):
    """Class 'cat' images are all 40, class 'dog' all 200 (grayscale HxW=size)."""
    for cls, value in (("cat", 40), ("dog", 200)):
        for i in range(per_class):
            _write_png(root / cls / f"{i}.png", np.full(size, value, np.uint8))


def test_folder_with_class_subdirs(tmp_path):
    _class_folder(tmp_path)
    (tmp_path / "README.txt").write_text("not an image")
    data = load_image_data("folder", path=str(tmp_path), batch_size=2, value_range="unit")
    assert (data.num_train, data.num_test, data.test) == (6, 0, None)
    assert (data.num_classes, data.class_names) == (2, ["cat", "dog"])
    assert data.image_shape == (12, 10, 1)

    x, y = load_image_arrays("folder", path=str(tmp_path), value_range="unit")
    assert x.shape == (6, 12, 10, 1)
    expected = np.where(y == 0, 40 / 255, 200 / 255)
    np.testing.assert_allclose(x.reshape(6, -1).mean(1), expected, atol=1e-6)
    assert sorted(y) == [0, 0, 0, 1, 1, 1]

    x, y = load_image_arrays("folder", path=str(tmp_path), image_size=16, channels=3)
    assert x.shape == (6, 16, 16, 3)
    expected = np.where(y == 0, 40 / 127.5 - 1, 200 / 127.5 - 1)
    np.testing.assert_allclose(x.reshape(6, -1).mean(1), expected, atol=1e-5)


def test_folder_rgb_flat_unlabelled(tmp_path):
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(5)]
    for i, p in enumerate(pixels):
        _write_png(tmp_path / f"img{i}.png", p)
    data = load_image_data("folder", path=str(tmp_path), batch_size=5)
    assert (data.num_classes, data.class_names, data.image_shape) == (0, [], (8, 8, 3))
    x, y = _collect(data.train)
    np.testing.assert_array_equal(y, np.zeros(5, np.int32))
    # Native size, no resize: pixels survive exactly (up to the shuffle).
    def by_sum(rows):
        return sorted(rows, key=lambda r: r.sum())

    expected = np.stack(pixels).astype(np.float32).reshape(5, -1) / 127.5 - 1
    np.testing.assert_allclose(by_sum(x.reshape(5, -1)), by_sum(expected), atol=1e-6)

    gray, _ = load_image_arrays("folder", path=str(tmp_path), channels=1, value_range="unit")
    weights = np.array([0.2989, 0.5870, 0.1140], np.float32)
    luma = np.stack(pixels).astype(np.float32) @ weights / 255
    assert gray.shape == (5, 8, 8, 1)
    np.testing.assert_allclose(np.sort(gray[..., 0].ravel()), np.sort(luma.ravel()), atol=1e-5)


def test_folder_train_test_subdirs(tmp_path):
    _class_folder(tmp_path / "train", per_class=4)
    _class_folder(tmp_path / "test", per_class=1)
    data = load_image_data("folder", path=str(tmp_path), batch_size=3)
    assert (data.num_train, data.num_test, data.class_names) == (8, 2, ["cat", "dog"])
    _, y = _collect(data.test)
    assert sorted(y) == [0, 1]


def test_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images"):
        load_image_data("folder", path=str(empty))
    (empty / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="no images"):
        load_image_data("folder", path=str(empty))

    with pytest.raises(DataError, match="does not exist"):
        load_image_data("folder", path=str(tmp_path / "nowhere"))

    bad = tmp_path / "bad"
    _class_folder(bad)
    (bad / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(DataError, match=r"broken\.png cannot be decoded"):
        load_image_data("folder", path=str(bad), batch_size=2)

    mixed = tmp_path / "mixed"
    _class_folder(mixed)
    _write_png(mixed / "dog" / "big.png", np.zeros((20, 20), np.uint8))
    with pytest.raises(DataError, match=r"big\.png is 20x20.*data.image_size"):
        load_image_data("folder", path=str(mixed), batch_size=2)
    resized = load_image_data("folder", path=str(mixed), batch_size=2, image_size=14)
    assert resized.image_shape == (14, 14, 1)
    assert next(iter(resized.train))["images"].shape == (2, 14, 14, 1)

    no_test = tmp_path / "no_test"
    _class_folder(no_test / "train")
    (no_test / "test").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_image_data("folder", path=str(no_test), batch_size=2)


@pytest.mark.parametrize("size", [(10, 20), (20, 10)], ids=["wide", "tall"])
def test_non_square_images_are_centre_cropped_not_stretched(tmp_path, size):
    # White centre square, black borders on the long side: the crop keeps only white.
    image = np.zeros(size, np.uint8)
    side = min(size)
    top, left = (size[0] - side) // 2, (size[1] - side) // 2
    image[top : top + side, left : left + side] = 255
    _write_png(tmp_path / "a.png", image)
    for target in (side, 4, 16):
        x, _ = load_image_arrays("folder", path=str(tmp_path), image_size=target, value_range="unit")
        assert x.shape == (1, target, target, 1)
        np.testing.assert_allclose(x, 1.0, atol=1e-6)


def test_held_out_images_without_a_test_split(tmp_path):
    for i in range(20):
        _write_png(tmp_path / f"{i:02d}.png", np.full((4, 4), i * 10, np.uint8))
    (xt, _), (xh, _), name = images.load_train_and_held_out("folder", path=str(tmp_path), value_range="unit")
    assert (len(xt), len(xh), name) == (18, 2, "2 training images held out")
    values = lambda x: set(np.round(x[:, 0, 0, 0] * 25.5).astype(int))  # noqa: E731  (the file index)
    assert values(xt) | values(xh) == set(range(20)) and not values(xt) & values(xh)
    again = images.load_train_and_held_out("folder", path=str(tmp_path), value_range="unit")
    np.testing.assert_array_equal(again[1][0], xh)  # fixed, whatever the seed of training
    _class_folder(tmp_path / "split" / "train")
    _class_folder(tmp_path / "split" / "test", per_class=1)
    _, (xh, yh), name = images.load_train_and_held_out("folder", path=str(tmp_path / "split"))
    assert (len(xh), sorted(yh), name) == (2, [0, 1], "test")


def test_folder_decodes_every_format(tmp_path):
    """png/jpg/bmp/gif, gray/RGB/RGBA/palette: all decode, to the first file's channels."""
    gray = np.full((6, 6), 120, np.uint8)
    Image.fromarray(gray).save(tmp_path / "a.png")  # first file: grayscale -> 1 channel
    Image.fromarray(gray).convert("RGB").save(tmp_path / "b.jpg", quality=100)
    Image.fromarray(gray).save(tmp_path / "c.bmp")
    Image.fromarray(gray).convert("P").save(tmp_path / "d.gif")
    Image.fromarray(gray).convert("RGBA").save(tmp_path / "e.png")
    x, _ = load_image_arrays("folder", path=str(tmp_path), value_range="unit")
    assert x.shape == (5, 6, 6, 1)
    np.testing.assert_allclose(x, 120 / 255, atol=2 / 255)  # JPEG and luma rounding
