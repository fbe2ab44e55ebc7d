"""Image datasets as ``tf.data`` pipelines for the image GANs and VAEs.

Sources (``name``):

* ``digits`` -- the embedded default. scikit-learn's bundled handwritten
  digits (1,797 *real* 8x8 scans, shipped inside scikit-learn, so it works
  offline on a fresh machine), upsampled to 20x20 and zero-padded to an
  MNIST-like 28x28. A fixed 80/20 hold-out split (1,437 train / 360 test).
* ``mnist``, ``fashion_mnist``, ``cifar10`` (32x32 RGB, 10 classes),
  ``celeb_a`` (218x178 RGB faces, unlabelled here; with ``image_size`` each
  face is centre-cropped and resized while it is read) -- tensorflow-datasets.
  If the dataset is not
  prepared in ``data_dir`` and the download host is unreachable we fail in
  seconds with a :class:`~aigc_tf.errors.DataError` instead of letting tfds
  retry for minutes.
* ``npz`` -- a Keras-format ``mnist.npz`` (``x_train``, ``y_train``,
  ``x_test``, ``y_test``) at ``path``.
* ``idx`` -- a directory with the original MNIST IDX files (optionally
  gzipped) at ``path``.
* ``folder`` -- a directory of png/jpg/jpeg/bmp/gif files at ``path``; one
  sub-directory per class (like ``keras.utils.image_dataset_from_directory``)
  or a flat, unlabelled folder; ``train/`` + ``test/`` sub-directories give a
  test split.

With ``image_size`` set, images whose sides differ from it are resized to
N x N; a non-square image is centre-cropped to a square first (not stretched).

Every batch is a dict ``{"images": float32 (B, H, W, C), "labels": int32 (B,)}``
with images in ``[-1, 1]`` (``value_range="tanh"``) or ``[0, 1]`` (``"unit"``).

Example:

>>> data = load_image_data("digits", batch_size=32)
>>> data.image_shape, data.num_train, data.num_test
((28, 28, 1), 1437, 360)
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import threading
import urllib.parse
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from aigc_tf.data import IMAGE_DATASETS  # noqa: E402  (re-exported)
from aigc_tf.errors import DataError


class NoTestSplit(DataError):
    """A split was asked for that the source does not have (a flat folder's test split)."""

VALUE_RANGES = ("tanh", "unit")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

# Hosts that `download_and_prepare` needs for each tfds dataset (from the
# builders' source); checked with one short TCP connect before downloading.
_DOWNLOAD_HOSTS = {
    "mnist": ("storage.googleapis.com", 443),
    "fashion_mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
    "cifar10": ("www.cs.toronto.edu", 443),
    "celeb_a": ("drive.google.com", 443),
}
_TFDS_DATASETS = tuple(_DOWNLOAD_HOSTS)
_SHRINK_WHILE_READING = ("celeb_a",)  # 162,770 faces of 218x178x3: 19 GB as decoded uint8
# What to use instead when a tfds dataset cannot be had.
_TFDS_ALTERNATIVE = {
    "mnist": "data.name=npz with data.path=mnist.npz",
    "fashion_mnist": "data.name=npz with data.path=<a Keras-format npz>",
    "cifar10": "data.name=folder with data.path=<a folder of images, one sub-directory per class>",
    "celeb_a": "data.name=folder with data.path=<the img_align_celeba folder>",
}
_CONNECT_TIMEOUT_S = 3.0
_DIGIT_NAMES = [str(i) for i in range(10)]
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
# PIL formats that tf.io.decode_image can also decode.
_DECODABLE_FORMATS = ("PNG", "JPEG", "BMP", "GIF")
_GRAYSCALE_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")
# ITU-R 601-2 luma, the weights tf.image.rgb_to_grayscale uses.


@dataclasses.dataclass
class ImageData:
    """Batched train/test pipelines and what a model needs to know about them.

    Attributes:
        train: batches of ``{"images", "labels"}``, reshuffled every epoch,
            ``drop_remainder=True``; one pass is one epoch.
        test: batches in a fixed order, ``drop_remainder=False``; ``None`` if
            the source has no test split.
        image_shape: ``(H, W, C)`` of every image.
        num_classes: number of labels (0 for an unlabelled folder).
        num_train: training images (before batching).
        num_test: test images (0 if ``test`` is ``None``).
        class_names: label ``i`` is ``class_names[i]``.
    """

    train: tf.data.Dataset
    test: tf.data.Dataset | None
    image_shape: tuple[int, int, int]
    num_classes: int
    num_train: int
    num_test: int
    class_names: list[str]


@dataclasses.dataclass
class _Split:
    """One split before preprocessing: in-memory images or image files."""

    labels: np.ndarray  # int32 (N,)
    images: np.ndarray | None = None  # uint8 0..255 or float32 0..1, (N, H, W, C)
    files: list[str] | None = None  # folder sources: decoded in tf.data

    def __len__(self) -> int:
        return len(self.labels)


@dataclasses.dataclass
class _Source:
    """A loaded source: splits plus metadata, independent of preprocessing."""

    train: _Split
    test: _Split | None
    native_shape: tuple[int, int, int]  # (H, W, C) before resize/channels
    num_classes: int
    class_names: list[str]


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def load_image_data(
    name: str,
    *,
    path: str | None = None,
    batch_size: int = 64,
    value_range: str = "tanh",
    image_size: int | None = None,
    channels: int | None = None,
    shuffle_buffer: int = 10000,
    seed: int = 0,
    max_examples: int | None = None,
    data_dir: str | None = None,
    download: bool = True,
    cache: bool = True,
) -> ImageData:
    """Loads an image dataset as batched, shuffled ``tf.data`` pipelines.

    Args:
        name: one of :data:`IMAGE_DATASETS`.
        path: file (``npz``) or directory (``idx``, ``folder``) to read.
        batch_size: images per batch; the last partial training batch is
            dropped so every training step sees the same batch shape.
        value_range: ``"tanh"`` scales to ``[-1, 1]``, ``"unit"`` to ``[0, 1]``.
        image_size: resize to ``(image_size, image_size)``; ``None`` keeps
            the native size (28 for all but ``folder``).
        channels: force 1 (grayscale) or 3 (RGB) channels; ``None`` keeps
            the native count (for ``folder``: that of the first image).
        shuffle_buffer: size of the training shuffle buffer (capped at the
            number of training images).
        seed: seeds the shuffle. As with any tf.data op seed, the order also
            depends on TensorFlow's global seed: the same ``seed`` after the
            same ``keras.utils.set_random_seed`` gives the same first-epoch
            order in every process (training sets both from ``config.seed``).
        max_examples: keep at most this many train (and test) images.
        data_dir: tensorflow-datasets data directory (tfds sources only).
        download: whether tfds may download a dataset that is not prepared.
        cache: cache preprocessed images in memory after the first epoch.

    Returns:
        An :class:`ImageData`.

    Raises:
        DataError: the source is unknown, missing, corrupt or unusable with
            these settings; the message says how to fix it.

    Example:

    >>> data = load_image_data("digits", batch_size=64, value_range="unit")
    >>> batch = next(iter(data.train))
    >>> batch["images"].shape, batch["labels"].dtype
    (TensorShape([64, 28, 28, 1]), tf.int32)
    """
    _check_options(value_range, image_size, channels, max_examples)
    if batch_size < 1:
        raise DataError(
            f"data.batch_size={batch_size} must be at least 1; set e.g. data.batch_size=64"
        )
    source = _load_source(
        name,
        path=path,
        max_examples=max_examples,
        data_dir=data_dir,
        download=download,
        seed=seed,
        image_size=image_size,
    )
    if batch_size > len(source.train):
        raise DataError(
            f"data.batch_size={batch_size} is larger than the {len(source.train)} "
            f"training images of '{name}'; lower data.batch_size"
        )
    image_shape = _output_shape(source.native_shape, image_size, channels)
    preprocess = _preprocessor(value_range, image_shape, resize=image_size is not None)

    train = _examples(source.train, preprocess)
    if cache:
        train = train.cache()
    train = train.shuffle(
        max(1, min(shuffle_buffer, len(source.train))),
        seed=seed,
        reshuffle_each_iteration=True,
    )
    train = train.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    test = None
    if source.test is not None:
        test = _examples(source.test, preprocess)
        if cache:
            test = test.cache()
        test = test.batch(batch_size, drop_remainder=False).prefetch(tf.data.AUTOTUNE)

    return ImageData(
        train=train,
        test=test,
        image_shape=image_shape,
        num_classes=source.num_classes,
        num_train=len(source.train),
        num_test=len(source.test) if source.test is not None else 0,
        class_names=list(source.class_names),
    )


def load_image_arrays(
    name: str,
    *,
    path: str | None = None,
    split: str = "train",
    value_range: str = "tanh",
    image_size: int | None = None,
    channels: int | None = None,
    max_examples: int | None = None,
    data_dir: str | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Loads one split as numpy arrays, preprocessed as in :func:`load_image_data`.

    Meant for evaluation (FID, classifier scores) and tests, which want all
    images at once in a fixed order.

    Args:
        name: one of :data:`IMAGE_DATASETS`.
        path: see :func:`load_image_data`.
        split: ``"train"`` or ``"test"``.
        value_range: ``"tanh"`` (``[-1, 1]``) or ``"unit"`` (``[0, 1]``).
        image_size: see :func:`load_image_data`.
        channels: see :func:`load_image_data`.
        max_examples: keep at most this many images.
        data_dir: tensorflow-datasets data directory (tfds sources only).
        download: whether tfds may download a dataset that is not prepared.

    Returns:
        ``(images, labels)``: float32 ``(N, H, W, C)`` in ``value_range`` and
        int32 ``(N,)``.

    Raises:
        DataError: as :func:`load_image_data`, or the split does not exist.
    """
    if split not in ("train", "test"):
        raise DataError(f"split={split!r} is not a split; use split='train' or split='test'")
    _check_options(value_range, image_size, channels, max_examples)
    source = _load_source(
        name,
        path=path,
        max_examples=max_examples,
        data_dir=data_dir,
        download=download,
        image_size=image_size,
    )
    chosen = source.train if split == "train" else source.test
    if chosen is None:
        raise NoTestSplit(
            f"dataset '{name}' has no test split; use split='train', or for a folder "
            "put the images in train/ and test/ sub-directories"
        )
    image_shape = _output_shape(source.native_shape, image_size, channels)
    preprocess = _preprocessor(value_range, image_shape, resize=image_size is not None)
    images, labels = [], []
    for batch in _examples(chosen, preprocess).batch(4096).as_numpy_iterator():
        images.append(batch["images"])
        labels.append(batch["labels"])
    return np.concatenate(images), np.concatenate(labels)


HOLD_OUT_FRACTION = 0.1  # of the training images, for sources without a test split


def load_train_and_held_out(name: str, **kwargs) -> tuple[tuple, tuple, str]:
    """``((x_train, y_train), (x_held_out, y_held_out), held-out name)``.

    The held-out images are the test split, or for a source without one (a
    flat folder) a fixed 10% of the training images, which the returned
    training arrays then exclude. ``kwargs`` as :func:`load_image_arrays`.
    """
    train = load_image_arrays(name, split="train", **kwargs)
    try:
        return train, load_image_arrays(name, split="test", **kwargs), "test"
    except NoTestSplit:
        n = len(train[0])
        n_out = max(1, int(round(n * HOLD_OUT_FRACTION)))
        if n - n_out < 1:
            raise DataError(
                f"dataset '{name}' has {n} training image(s) and no test split: too few to hold out "
                "images for evaluation; add images or a test/ sub-directory"
            ) from None
        order = np.random.default_rng(0).permutation(n)
        keep, out = np.sort(order[n_out:]), np.sort(order[:n_out])
        x, y = train
        return (x[keep], y[keep]), (x[out], y[out]), f"{n_out} training images held out"


# --------------------------------------------------------------------------
# Preprocessing (shared by every source)
# --------------------------------------------------------------------------


def _check_options(
    value_range: str, image_size: int | None, channels: int | None, max_examples: int | None
) -> None:
    if value_range not in VALUE_RANGES:
        raise DataError(
            f"data.value_range={value_range!r} is not supported; use one of {VALUE_RANGES}"
        )
    if image_size is not None and image_size < 1:
        raise DataError(
            f"data.image_size={image_size} must be positive; set e.g. data.image_size=28"
        )
    if channels not in (None, 1, 3):
        raise DataError(f"data.channels={channels} is not supported; use 1, 3 or leave it unset")
    if max_examples is not None and max_examples < 1:
        raise DataError(
            f"data.max_examples={max_examples} must be positive; unset it to use all images"
        )


def _output_shape(
    native: tuple[int, int, int], image_size: int | None, channels: int | None
) -> tuple[int, int, int]:
    height, width = (image_size, image_size) if image_size else native[:2]
    return (int(height), int(width), int(channels or native[2]))


def _preprocessor(
    value_range: str, image_shape: tuple[int, int, int], *, resize: bool
) -> Callable[[tf.Tensor], tf.Tensor]:
    return functools.partial(
        _preprocess, value_range=value_range, image_shape=image_shape, resize=resize
    )


def _examples(
    split: _Split, preprocess: Callable[[tf.Tensor], tf.Tensor]
) -> tf.data.Dataset:
    """Unbatched ``{"images", "labels"}`` dataset of one split, preprocessed."""
    labels = split.labels.astype(np.int32)
    if split.files is not None:
        ds = tf.data.Dataset.from_tensor_slices({"images": split.files, "labels": labels})

        def decode(example: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            # Any channel count (gray, gray+alpha, RGB, RGBA); _preprocess
            # converts. Animated GIFs contribute their first frame.
            image = tf.io.decode_image(
                tf.io.read_file(example["images"]), channels=0, expand_animations=False
            )
            return {"images": preprocess(image), "labels": example["labels"]}

        return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)

    ds = tf.data.Dataset.from_tensor_slices({"images": split.images, "labels": labels})
    return ds.map(
        lambda ex: {"images": preprocess(ex["images"]), "labels": ex["labels"]},
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _preprocess(
    image: tf.Tensor, *, value_range: str, image_shape: tuple[int, int, int], resize: bool
) -> tf.Tensor:
    """(H, W, c) uint8 [0, 255] or float [0, 1] -> float32 ``image_shape`` in range.

    ``resize=False`` promises that the image already has the target size
    (checked by ``tf.ensure_shape``), which keeps native pixels bit-exact.
    """
    height, width, channels = image_shape
    is_uint8 = image.dtype == tf.uint8
    x = _to_channels(tf.cast(image, tf.float32), channels)
    # Scale straight from the integer values so that "tanh" is exactly
    # x / 127.5 - 1 and "unit" exactly x / 255 (tests compare to numpy).
    if value_range == "tanh":
        x = x / 127.5 - 1.0 if is_uint8 else x * 2.0 - 1.0
        low = -1.0
    else:
        x = x / 255.0 if is_uint8 else x
        low = 0.0
    if resize and tuple(image.shape[:2]) != (height, width):
        # Non-square images lose their borders to a centred square first (the
        # targets are N x N), so faces and objects keep their proportions.
        x = _centre_square(x)
        # Antialiasing matters when shrinking large folder images; bilinear
        # weights are non-negative, so the clip below only removes rounding.
        x = tf.image.resize(x, (height, width), method="bilinear", antialias=True)
        x = tf.clip_by_value(x, low, 1.0)
    return tf.ensure_shape(x, (height, width, channels))


def _centre_square(image: tf.Tensor) -> tf.Tensor:
    """The largest centred square of an (H, W, C) image (static or dynamic sizes)."""
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    return tf.image.crop_to_bounding_box(image, (shape[0] - side) // 2, (shape[1] - side) // 2, side, side)


def _to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """(H, W, c) with c in 1..4 -> (H, W, channels); an alpha channel is dropped."""
    def colour(x):
        return x[..., :3] if channels == 3 else tf.image.rgb_to_grayscale(x[..., :3])  # ITU-R 601 luma

    def grey(x):
        return tf.image.grayscale_to_rgb(x[..., :1]) if channels == 3 else x[..., :1]

    known = image.shape[-1]
    if known is not None:
        return colour(image) if known >= 3 else grey(image)
    # Unknown channel count (decoded files): both branches are built, and
    # slicing clamps, so each op sees the channels it needs when it runs.
    return tf.cond(tf.shape(image)[-1] >= 3, lambda: colour(image), lambda: grey(image))


def _subset(split: _Split, max_examples: int | None) -> _Split:
    """Keeps the first ``max_examples`` examples (in-memory sources)."""
    if max_examples is None or max_examples >= len(split):
        return split
    images = split.images[:max_examples] if split.images is not None else None
    files = split.files[:max_examples] if split.files is not None else None
    return _Split(labels=split.labels[:max_examples], images=images, files=files)


# --------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------


def _load_source(
    name: str,
    *,
    path: str | None,
    max_examples: int | None,
    data_dir: str | None,
    download: bool,
    seed: int = 0,
    image_size: int | None = None,
) -> _Source:
    if name not in IMAGE_DATASETS:
        raise DataError(
            f"unknown image dataset {name!r}; set data.name to one of {IMAGE_DATASETS}"
        )
    if name == "digits":
        return _load_digits(max_examples)
    if name in _TFDS_DATASETS:
        return _load_tfds(name, data_dir=data_dir, download=download, max_examples=max_examples,
                          image_size=image_size)
    if not path:
        hint = {"npz": "mnist.npz", "idx": "<dir of MNIST IDX files>", "folder": "<image dir>"}
        raise DataError(f"dataset '{name}' reads local files: set data.path={hint[name]}")
    path = os.path.expanduser(path)
    if name == "npz":
        return _load_npz(path, max_examples)
    if name == "idx":
        return _load_idx(path, max_examples)
    return _load_folder(path, max_examples, seed, image_size)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as MNIST-like float32 (N, 28, 28, 1) in [0, 1], int32 labels."""
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    digits = load_digits()
    images = digits.images.astype(np.float32)[..., None] / 16.0  # (N, 8, 8, 1) in [0, 1]
    # MNIST fits each digit in a 20x20 box centred in a 28x28 frame.
    images = tf.image.resize(images, (20, 20), method="bilinear").numpy()
    images = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    images = np.clip(images, 0.0, 1.0).astype(np.float32)
    labels = digits.target.astype(np.int32)
    # Cached and shared between calls: make accidental mutation an error.
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _load_digits(max_examples: int | None) -> _Source:
    images, labels = _digits_arrays()
    # Fixed hold-out split: the same 360 test digits on every machine.
    order = np.random.default_rng(0).permutation(len(labels))
    num_train = int(len(labels) * 0.8)  # 1437 train, 360 test
    train, test = order[:num_train], order[num_train:]
    return _Source(
        train=_subset(_Split(labels=labels[train], images=images[train]), max_examples),
        test=_subset(_Split(labels=labels[test], images=images[test]), max_examples),
        native_shape=(28, 28, 1),
        num_classes=10,
        class_names=list(_DIGIT_NAMES),
    )


def _can_download(host: str, port: int, timeout: float = _CONNECT_TIMEOUT_S) -> bool:
    """Whether ``host:port`` (or the HTTPS proxy) accepts a TCP connection.

    Runs in a daemon thread so that a slow DNS lookup, which the socket
    timeout does not bound, cannot stall the caller beyond ``timeout``.
    """
    import socket

    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy:
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = parsed.hostname or host, parsed.port or 80
    reachable = threading.Event()

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                reachable.set()
        except OSError:
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return reachable.is_set()


def _is_mocked(builder: Any) -> bool:
    """Whether ``tfds.testing.mock_data`` is active for this builder.

    Under the mock, ``data_dir`` points to a directory that does not exist,
    so ``is_prepared()`` is False, but ``download_and_prepare`` is a no-op
    and ``as_dataset`` yields random examples: the data is "available".
    """
    method = type(builder).download_and_prepare
    return getattr(method, "__module__", "").startswith("tensorflow_datasets.testing")


def prepared_tfds_builder(name: str, data_dir: str | None, download: bool, host: tuple[str, int], get_it: str):
    """A tfds builder for ``name`` that is prepared (or mocked), downloading it
    only if ``download`` and ``host`` (``(hostname, port)``) is reachable; every
    failure is a :class:`DataError` ending in ``get_it`` (how to get the data)."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as err:  # tfds raises many types for a bad data_dir
        raise DataError(
            f"cannot open tfds dataset '{name}' in data_dir={data_dir!r} ({err}); {get_it}"
        ) from err
    if not _is_mocked(builder) and not builder.is_prepared():
        where = builder.data_dir
        if not download:
            raise DataError(
                f"dataset '{name}' is not prepared in {where} and data.download is false: {get_it}"
            )
        hostname, port = host
        # Without this check tfds retries an offline download for minutes.
        if not _can_download(hostname, port):
            raise DataError(
                f"dataset '{name}' is not prepared in {where} and cannot be downloaded "
                f"offline ({hostname}:{port} unreachable): {get_it}"
            )
        try:
            builder.download_and_prepare()
        except Exception as err:  # network, disk, missing optional deps, ...
            raise DataError(
                f"downloading tfds dataset '{name}' into {where} failed ({err!r}): {get_it}"
            ) from err
    return builder


def _load_tfds(
    name: str, *, data_dir: str | None, download: bool, max_examples: int | None,
    image_size: int | None = None,
) -> _Source:
    import tensorflow_datasets as tfds  # heavy; only tfds sources need it

    get_it = (
        f"run `python -c 'import tensorflow_datasets as tfds; tfds.load(\"{name}\")'` on a "
        "machine with network and copy ~/tensorflow_datasets here (or point data.data_dir at "
        f"the copy), or use {_TFDS_ALTERNATIVE[name]}"
    )
    builder = prepared_tfds_builder(name, data_dir, download, _DOWNLOAD_HOSTS[name], get_it)
    features = builder.info.features
    native = tuple(int(d) for d in features["image"].shape)
    labelled = "label" in features  # celeb_a has attributes, not one label
    # Large images (celeb_a: 218x178) are centre-cropped, resized and rounded
    # to uint8 while reading, so memory holds N x image_size^2 bytes, not the
    # originals; the small ones are resized in the pipeline as for any source.
    shrink = name in _SHRINK_WHILE_READING and image_size is not None and native[:2] != (image_size, image_size)

    def read(split: str) -> _Split:
        ds = builder.as_dataset(split=split, shuffle_files=False)
        ds = ds.map(lambda ex: (ex["image"], ex["label"] if labelled else tf.constant(0, tf.int64)))
        if max_examples is not None:
            ds = ds.take(max_examples)
        if shrink:
            ds = ds.map(lambda image, label: (_resized_uint8(image, image_size), label),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        # Not batch_size=-1: under mock_data the split sizes are unknown and
        # tfds then batches by sys.maxsize, which aborts the process.
        images, labels = [], []
        for image, label in tfds.as_numpy(ds.batch(8192)):
            images.append(image)
            labels.append(label)
        if not images:
            raise DataError(
                f"tfds dataset '{name}' split '{split}' is empty; prepare it again: {get_it}"
            )
        return _Split(
            labels=np.concatenate(labels).astype(np.int32), images=np.concatenate(images)
        )

    return _Source(
        train=read("train"),
        test=read("test"),
        native_shape=(image_size, image_size, native[2]) if shrink else native,
        num_classes=int(features["label"].num_classes) if labelled else 0,
        class_names=list(features["label"].names) if labelled else [],
    )


def _resized_uint8(image: tf.Tensor, size: int) -> tf.Tensor:
    """Centre square, antialiased bilinear resize to ``size`` x ``size``, rounded back to uint8."""
    x = tf.image.resize(_centre_square(tf.cast(image, tf.float32)), (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def _checked_images(
    images: np.ndarray, labels: np.ndarray, where: str, fix: str
) -> _Split:
    """Validates MNIST-like uint8 arrays from a local file; returns a split."""
    if images.ndim == 3:
        images = images[..., None]  # (N, H, W) -> (N, H, W, 1)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(
            f"{where}: images have shape {images.shape}, expected (N, H, W) or "
            f"(N, H, W, 1|3); {fix}"
        )
    if images.dtype != np.uint8:
        raise DataError(
            f"{where}: images have dtype {images.dtype}, expected uint8 0..255; {fix}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{where}: {len(images)} images but labels of shape {labels.shape}; "
            f"expected one label per image; {fix}"
        )
    if not np.issubdtype(labels.dtype, np.integer) or (
        labels.size and (labels.min() < 0 or labels.max() > 9)
    ):
        raise DataError(f"{where}: labels must be integers 0..9; {fix}")
    return _Split(labels=labels.astype(np.int32), images=images)


def _load_npz(path: str, max_examples: int | None) -> _Source:
    expected = f"a Keras mnist.npz with keys {', '.join(_NPZ_KEYS)} (uint8 images (N, 28, 28))"
    if not os.path.isfile(path):
        raise DataError(f"npz file {path} does not exist; set data.path to {expected}")
    fix = f"set data.path to {expected}"
    # Corrupt archives surface as any of these, on open or on reading a member.
    unreadable = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
    try:
        # allow_pickle=False: an npz from elsewhere must not run code.
        archive = np.load(path, allow_pickle=False)
    except unreadable as err:
        raise DataError(f"{path} is not a readable npz file ({err}); {fix}") from err
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path} is a single .npy array, not an npz archive; {fix}")
    with archive:
        missing = [key for key in _NPZ_KEYS if key not in archive.files]
        if missing:
            present = ", ".join(archive.files) or "none"
            raise DataError(f"{path} lacks key(s) {', '.join(missing)} (has {present}); {fix}")
        try:
            arrays = {key: archive[key] for key in _NPZ_KEYS}
        except unreadable as err:
            raise DataError(f"{path} is not a readable npz file ({err}); {fix}") from err

    train = _checked_images(arrays["x_train"], arrays["y_train"], f"{path} x_train", fix)
    test = _checked_images(arrays["x_test"], arrays["y_test"], f"{path} x_test", fix)
    return _memory_source(train, test, path, max_examples)


def _memory_source(
    train: _Split, test: _Split | None, where: str, max_examples: int | None
) -> _Source:
    """An MNIST-like in-memory source (npz, idx): 10 digit classes."""
    if len(train) == 0:
        raise DataError(
            f"{where} holds no training images; point data.path at a non-empty dataset"
        )
    if test is not None and test.images.shape[1:] != train.images.shape[1:]:
        raise DataError(
            f"{where}: train images are {train.images.shape[1:]} but test images "
            f"{test.images.shape[1:]}; use files whose splits share one image shape"
        )
    return _Source(
        train=_subset(train, max_examples),
        test=_subset(test, max_examples) if test is not None else None,
        native_shape=tuple(int(d) for d in train.images.shape[1:]),
        num_classes=10,
        class_names=list(_DIGIT_NAMES),
    )


def _read_idx(path: str, magic: int) -> np.ndarray:
    """Parses an IDX file of unsigned bytes (optionally gzipped) into an array.

    Layout: big-endian int32 magic (0x08 = ubyte in byte 3, ndim in byte 4),
    then ndim big-endian int32 sizes, then the data.
    """
    fix = "re-download the MNIST IDX files (train-images-idx3-ubyte.gz, ...) into data.path"
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read IDX file {path} ({err}); {fix}") from err
    if len(raw) < 4:
        raise DataError(f"IDX file {path} is truncated ({len(raw)} bytes); {fix}")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(f"IDX file {path} has magic number {found}, expected {magic}; {fix}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {path} is truncated inside its header; {fix}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(
            f"IDX file {path} is {state}: {len(raw)} bytes for shape {shape}, "
            f"expected {expected}; {fix}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find_idx(directory: str, stem: str) -> str | None:
    # The original files use "-idx3-ubyte"; some mirrors use ".idx3-ubyte".
    stems = (stem, stem.replace("-idx", ".idx"))
    for candidate in stems:
        for suffix in ("", ".gz"):
            full = os.path.join(directory, candidate + suffix)
            if os.path.isfile(full):
                return full
    return None


def _load_idx(path: str, max_examples: int | None) -> _Source:
    names = ", ".join(f"{n}[.gz]" for pair in _IDX_FILES.values() for n in pair)
    if not os.path.isdir(path):
        raise DataError(
            f"IDX directory {path} does not exist; set data.path to a directory holding {names}"
        )
    splits: dict[str, _Split | None] = {}
    for split, (image_stem, label_stem) in _IDX_FILES.items():
        image_file, label_file = _find_idx(path, image_stem), _find_idx(path, label_stem)
        if image_file is None and label_file is None and split == "test":
            splits[split] = None  # a train-only directory is still usable
            continue
        if image_file is None or label_file is None:
            missing = image_stem if image_file is None else label_stem
            raise DataError(f"{missing}[.gz] is missing in {path}; put {names} there")
        images = _read_idx(image_file, _IDX_IMAGES_MAGIC)
        labels = _read_idx(label_file, _IDX_LABELS_MAGIC)
        if len(images) != len(labels):
            raise DataError(
                f"{image_file} has {len(images)} images but {label_file} has {len(labels)} "
                "labels; use matching IDX files"
            )
        splits[split] = _checked_images(
            images, labels, image_file, "use the original MNIST-format IDX files"
        )
    return _memory_source(splits["train"], splits["test"], path, max_examples)


def _image_files(directory: str) -> list[str]:
    """Image files under ``directory`` (recursive, sorted, hidden entries skipped)."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            os.path.join(root, f)
            for f in sorted(files)
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)
        )
    return found


def _subdirs(directory: str) -> list[str]:
    return sorted(
        d
        for d in os.listdir(directory)
        if not d.startswith(".") and os.path.isdir(os.path.join(directory, d))
    )


def _scan_folder(
    directory: str, class_names: list[str] | None
) -> tuple[list[str], list[int], list[str]]:
    """Files and labels of a folder; class sub-directories define the labels.

    ``class_names`` given (a test folder): its sub-directories must be among them.
    """
    classes = _subdirs(directory)
    if not classes:
        # Flat folder: unlabelled (label 0), unless the train folder had classes.
        files = _image_files(directory)
        if class_names and files:
            raise DataError(
                f"{directory} has no class sub-directories but the train folder has "
                f"{class_names}; give the test folder the same sub-directories"
            )
        return files, [0] * len(files), []
    names = class_names if class_names is not None else classes
    unknown = sorted(set(classes) - set(names))
    if unknown:
        raise DataError(
            f"{directory} has class sub-directories {unknown} that the train folder lacks; "
            "use the same class sub-directories in train/ and test/"
        )
    files, labels = [], []
    for cls in classes:
        cls_files = _image_files(os.path.join(directory, cls))
        files.extend(cls_files)
        labels.extend([names.index(cls)] * len(cls_files))
    return files, labels, names


def _inspect_images(files: list[str]) -> list[tuple[int, int, bool]]:
    """(height, width, is_grayscale) of each file; DataError naming a bad file.

    Reads headers and verifies file structure with PIL (fast, no full
    decode) so that a broken file fails here with its name instead of deep
    inside tf.data with an anonymous decode error.
    """
    from PIL import Image

    info = []
    for file in files:
        try:
            with Image.open(file) as image:
                fmt, (width, height), mode = image.format, image.size, image.mode
                image.verify()
        except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ...
            raise DataError(
                f"image file {file} cannot be decoded ({type(err).__name__}: {err}); "
                "delete or replace it"
            ) from err
        if fmt not in _DECODABLE_FORMATS:
            raise DataError(
                f"image file {file} is {fmt}, not one of {_DECODABLE_FORMATS}; "
                "convert it or delete it"
            )
        info.append((height, width, mode in _GRAYSCALE_MODES))
    return info


def _load_folder(
    path: str, max_examples: int | None, seed: int, image_size: int | None
) -> _Source:
    """A folder of images; see the module docstring for the layouts."""
    if not os.path.isdir(path):
        raise DataError(
            f"image folder {path} does not exist; set data.path to a directory of images"
        )
    top = _subdirs(path)
    has_splits = "train" in top and "test" in top
    if has_splits:
        train_files, train_labels, class_names = _scan_folder(os.path.join(path, "train"), None)
        test_files, test_labels, _ = _scan_folder(os.path.join(path, "test"), class_names)
        if train_files and not test_files:
            raise DataError(
                f"{os.path.join(path, 'test')} holds no images; add test images or "
                "remove the empty test/ directory"
            )
    else:
        train_files, train_labels, class_names = _scan_folder(path, None)
        test_files, test_labels = [], []
    if not train_files:
        raise DataError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in {path}"
            f"{'/train' if has_splits else ''}; put image files (optionally in one "
            "sub-directory per class) there"
        )

    def split(files: list[str], labels: list[int], shuffle_seed: int | None) -> _Split:
        order = np.arange(len(files))
        if max_examples is not None and max_examples < len(files):
            # Files are sorted by class: take a fixed random subset, not the
            # first classes, and the same subset whatever the shuffle seed.
            chosen = np.random.default_rng(0).permutation(len(files))[:max_examples]
            order = np.sort(chosen)
        if shuffle_seed is not None:
            # Shuffle the file list once so the cached order is already mixed
            # and a shuffle buffer smaller than the folder still mixes classes.
            order = np.random.default_rng(shuffle_seed).permutation(order)
        return _Split(
            labels=np.asarray(labels, np.int32)[order], files=[files[i] for i in order]
        )

    train = split(train_files, train_labels, seed)
    test = split(test_files, test_labels, None) if has_splits else None

    # Every file used is checked: a bad test image is as fatal as a bad train one.
    used = [train_files[0], *train.files, *(test.files if test is not None else [])]
    checked = list(dict.fromkeys(used))  # the first file may also be in a split
    info = dict(zip(checked, _inspect_images(checked)))
    height, width, grayscale = info[train_files[0]]
    if image_size is None:
        odd = next((f for f in checked if info[f][:2] != (height, width)), None)
        if odd is not None:
            raise DataError(
                f"images in {path} differ in size ({train_files[0]} is {height}x{width}, "
                f"{odd} is {info[odd][0]}x{info[odd][1]}); set data.image_size=N to resize "
                "them all to NxN"
            )
    return _Source(
        train=train,
        test=test,
        native_shape=(height, width, 1 if grayscale else 3),
        num_classes=len(class_names),
        class_names=class_names,
    )
