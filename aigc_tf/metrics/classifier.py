"""The per-dataset feature classifier behind FID, KID, precision/recall and
the classifier score.

Inception weights cannot be downloaded here, so we follow TF-GAN's MNIST
practice: a small CNN trained by the project on the dataset's training split.
Its penultimate activations (64-d) are the feature space and its softmax the
class probabilities. It is trained once per (dataset, classifier config) and
cached, so every later evaluation uses the same network and gives the same
numbers.

Data without labels (a flat folder of photos, ``celeb_a`` here) has no classes
to learn, so the same CNN learns a self-supervised task instead: which of the
four rotations (0, 90, 180, 270 degrees; Gidaris et al. 2018, "RotNet") an
image was given, with all four rotations of every image in each batch. Telling
a face or a scene upright from upside-down needs its layout and parts, so the
features see what a generator gets wrong, yet nothing is downloaded. The
resulting FID is on *these* features, not Inception's, and numbers are only
comparable between runs on the same data. Its "accuracy" is the rotation
accuracy on the held-out images; class probabilities (the classifier score)
mean nothing for it. A source without a test split holds out a fixed 10% of
its training images.

Cache location: ``$AIGC_TF_CACHE`` or ``~/.cache/aigc_tf``, one folder per
key, holding ``classifier.keras`` and ``info.json`` (test accuracy, data,
config).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

# Bump when the architecture or training changes. 2: data with fewer than two
# classes trains the rotation predictor (version 1 fitted a useless one-class
# softmax), and images over 32 px are shrunk to 32 inside the network;
# labelled images of up to 32 px train exactly as in version 1.
CLASSIFIER_VERSION = 2
MAX_SIDE = 32  # images larger than this are resized down inside the network


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
    """What identifies a feature classifier: the data it saw and how it trained."""

    dataset: str
    path: str | None = None
    image_size: int | None = None
    channels: int | None = None
    max_examples: int | None = None
    data_dir: str | None = None
    epochs: int = 0  # 0: pick by dataset size (see `_default_epochs`)
    feature_dim: int = 64
    seed: int = 0

    def key(self) -> str:
        fields = dataclasses.asdict(self)
        if fields["path"]:
            fields["path"] = os.path.abspath(fields["path"])
        fields.pop("data_dir")  # where tfds keeps a dataset does not change it
        blob = json.dumps({"v": CLASSIFIER_VERSION, **fields}, sort_keys=True)
        return f"{self.dataset}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def cache_root() -> Path:
    return Path(os.environ.get("AIGC_TF_CACHE", Path.home() / ".cache" / "aigc_tf"))


def _default_epochs(num_train: int) -> int:
    # ~25k gradient steps' worth of images is plenty for digit classifiers;
    # small sets get more passes (digits: 1,437 images -> 40 epochs).
    return int(min(40, max(3, round(100_000 / max(num_train, 1)))))


def build_classifier(image_shape, num_classes: int, feature_dim: int = 64):
    """Small CNN: conv32-conv32-pool-conv64-conv64-pool-dense(feature_dim)-softmax,
    on the images resized to at most 32 px a side.

    Returns ``(classifier, feature_model)`` sharing weights; the feature model
    outputs the penultimate ReLU activations.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=tuple(image_shape), name="images")
    x = inputs
    if max(image_shape[:2]) > MAX_SIDE:
        # Larger images are seen at 32 px: a quarter of the work at 64 px, and
        # what separates real from generated there survives the shrink.
        scale = MAX_SIDE / max(image_shape[:2])
        size = (max(1, round(image_shape[0] * scale)), max(1, round(image_shape[1] * scale)))
        x = layers.Resizing(*size, interpolation="bilinear", antialias=True, name="c_resize")(x)
    for i, filters in enumerate((32, 32, 64, 64)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"c_conv{i}")(x)
        if i % 2:
            x = layers.MaxPooling2D(name=f"c_pool{i}")(x)
    x = layers.Flatten(name="c_flatten")(x)
    x = layers.Dropout(0.3, name="c_dropout")(x)
    features = layers.Dense(feature_dim, activation="relu", name="features")(x)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(0.3, name="c_dropout2")(features))
    probs = layers.Softmax(name="probs")(logits)
    classifier = keras.Model(inputs, probs, name="feature_classifier")
    return classifier, keras.Model(inputs, [features, probs], name="feature_extractor")


class FeatureClassifier:
    """A trained classifier: ``features(images)``, ``probs(images)``, ``accuracy``.

    Images are in [0, 1] with the shape of the dataset the classifier was
    trained on.
    """

    def __init__(self, model, spec: ClassifierSpec, info: dict):
        import keras

        self.model = model
        self.spec = spec
        self.info = info
        self.accuracy = float(info["test_accuracy"])
        self.objective = info.get("objective", "labels")  # or "rotation"
        self._extractor = keras.Model(model.inputs, [model.get_layer("features").output, model.output])

    def features_and_probs(self, images, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
        feats, probs = self._extractor.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
        return feats.astype(np.float64), probs.astype(np.float64)

    def features(self, images) -> np.ndarray:
        return self.features_and_probs(images)[0]


def _train(spec: ClassifierSpec, verbose: int):
    import keras
    import tensorflow as tf

    from aigc_tf.data.images import load_train_and_held_out

    (x_train, y_train), (x_test, y_test), held_out = load_train_and_held_out(
        spec.dataset, path=spec.path, value_range="unit", image_size=spec.image_size, channels=spec.channels,
        max_examples=spec.max_examples, data_dir=spec.data_dir,
    )
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    objective = "labels" if num_classes >= 2 else "rotation"
    if objective == "rotation":
        # Square images get all four rotations; others only 0 and 180 degrees.
        turns = (0, 1, 2, 3) if x_train.shape[1] == x_train.shape[2] else (0, 2)
        x_test, y_test = rotations(x_test, turns)
        num_classes = len(turns)
    keras.utils.set_random_seed(spec.seed)
    classifier, _ = build_classifier(x_train.shape[1:], num_classes, spec.feature_dim)
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    # Rotation: every image is len(turns) examples.
    epochs = spec.epochs or _default_epochs(len(x_train) * (1 if objective == "labels" else len(turns)))
    # Light augmentation (random shifts of up to 2 px) keeps a small training
    # set like `digits` from overfitting.
    augment = keras.Sequential([keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=spec.seed)])
    train = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=spec.seed)
        .batch(128 if objective == "labels" else 128 // len(turns))
        # Sequential on purpose: the augmentation draws from a stateful seed
        # generator, and parallel calls would consume it in a racy order,
        # giving a different classifier (and different FIDs) on every machine.
        .map(lambda x, y: (augment(x, training=True), y))
    )
    if objective == "rotation":
        train = train.map(lambda x, _: rotations(x, turns, tf))
    train = train.prefetch(tf.data.AUTOTUNE)
    t0 = time.time()
    classifier.fit(train, epochs=epochs, verbose=verbose, shuffle=False)
    _, acc = classifier.evaluate(x_test, y_test, batch_size=500, verbose=0)
    info = {
        "test_accuracy": float(acc),
        "objective": objective,
        "held_out": held_out,
        "dataset": spec.dataset,
        "num_train": int(len(x_train)),
        "num_test": int(len(x_test)),
        "epochs": epochs,
        "train_seconds": round(time.time() - t0, 1),
        "spec": dataclasses.asdict(spec),
        "version": CLASSIFIER_VERSION,
    }
    return classifier, info


def rotations(images, turns, ops=None):
    """Every image turned by each of ``turns`` quarter-turns (counter-clockwise),
    with the turn's index as its label: ``(len(turns) * N images, labels)``.

    ``ops``: ``tf`` inside a ``tf.data`` map, else numpy.
    """
    if ops is None:
        x = np.concatenate([np.rot90(images, k, axes=(1, 2)) for k in turns])
        return x, np.repeat(np.arange(len(turns), dtype=np.int32), len(images))
    tf = ops
    x = tf.concat([tf.image.rot90(images, k) for k in turns], axis=0)
    labels = tf.repeat(tf.range(len(turns), dtype=tf.int32), tf.shape(images)[0])
    return x, labels


def get_classifier(spec, verbose: int = 2, train=None) -> FeatureClassifier:
    """Load the cached classifier for ``spec``, training and caching it on first use.

    ``spec``: a :class:`ClassifierSpec` (images), or another modality's spec
    with ``dataset`` and ``key()``, whose ``train(spec, verbose) -> (model,
    info)`` trains a Keras classifier with a ``features`` layer."""
    import keras

    from aigc_tf.locking import exclusive

    folder = cache_root() / spec.key()
    model_file, info_file = folder / "classifier.keras", folder / "info.json"
    # One process trains a missing classifier; another asking for it meanwhile waits and loads it.
    with exclusive(folder.parent / ".locks" / f"{folder.name}.lock"):
        if model_file.is_file() and info_file.is_file():
            try:
                model = keras.models.load_model(model_file)
                return FeatureClassifier(model, spec, json.loads(info_file.read_text()))
            except Exception:  # a damaged cache entry is rebuilt, not trusted
                shutil.rmtree(folder, ignore_errors=True)
        print(f"Training the feature classifier for '{spec.dataset}' (first use; cached in {folder})", flush=True)
        model, info = (train or _train)(spec, verbose)
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        model.save(tmp / "classifier.keras")
        (tmp / "info.json").write_text(json.dumps(info, indent=2))
        shutil.rmtree(folder, ignore_errors=True)  # a damaged entry's remains (rmtree above may have failed)
        os.replace(tmp, folder)  # atomic: a reader without the lock sees the old entry or the new one
        return FeatureClassifier(model, spec, info)
