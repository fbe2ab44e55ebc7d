"""The per-dataset feature classifier behind FID, KID, precision/recall and
the classifier score.

Inception weights cannot be downloaded here, so we follow TF-GAN's MNIST
practice: a small CNN trained by the project on the dataset's training split.
Its penultimate activations (64-d) are the feature space and its softmax the
class probabilities. It is trained once per (dataset, classifier config) and
cached, so every later evaluation uses the same network and gives the same
numbers.

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

CLASSIFIER_VERSION = 1  # bump when the architecture or training changes


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
    """Small CNN: conv32-conv32-pool-conv64-conv64-pool-dense(feature_dim)-softmax.

    Returns ``(classifier, feature_model)`` sharing weights; the feature model
    outputs the penultimate ReLU activations.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=tuple(image_shape), name="images")
    x = inputs
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
        self._extractor = keras.Model(model.inputs, [model.get_layer("features").output, model.output])

    def features_and_probs(self, images, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
        feats, probs = self._extractor.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
        return feats.astype(np.float64), probs.astype(np.float64)

    def features(self, images) -> np.ndarray:
        return self.features_and_probs(images)[0]


def _train(spec: ClassifierSpec, verbose: int):
    import keras
    import tensorflow as tf

    from aigc_tf.data.images import load_image_arrays

    kw = dict(
        path=spec.path,
        value_range="unit",
        image_size=spec.image_size,
        channels=spec.channels,
        max_examples=spec.max_examples,
        data_dir=spec.data_dir,
    )
    x_train, y_train = load_image_arrays(spec.dataset, split="train", **kw)
    x_test, y_test = load_image_arrays(spec.dataset, split="test", **kw)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    keras.utils.set_random_seed(spec.seed)
    classifier, _ = build_classifier(x_train.shape[1:], num_classes, spec.feature_dim)
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    epochs = spec.epochs or _default_epochs(len(x_train))
    # Light augmentation (random shifts of up to 2 px) keeps a small training
    # set like `digits` from overfitting.
    augment = keras.Sequential([keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=spec.seed)])
    train = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=spec.seed)
        .batch(128)
        # Sequential on purpose: the augmentation draws from a stateful seed
        # generator, and parallel calls would consume it in a racy order,
        # giving a different classifier (and different FIDs) on every machine.
        .map(lambda x, y: (augment(x, training=True), y))
        .prefetch(tf.data.AUTOTUNE)
    )
    t0 = time.time()
    classifier.fit(train, epochs=epochs, verbose=verbose, shuffle=False)
    _, acc = classifier.evaluate(x_test, y_test, batch_size=500, verbose=0)
    info = {
        "test_accuracy": float(acc),
        "dataset": spec.dataset,
        "num_train": int(len(x_train)),
        "num_test": int(len(x_test)),
        "epochs": epochs,
        "train_seconds": round(time.time() - t0, 1),
        "spec": dataclasses.asdict(spec),
        "version": CLASSIFIER_VERSION,
    }
    return classifier, info


def get_classifier(spec: ClassifierSpec, verbose: int = 2) -> FeatureClassifier:
    """Load the cached classifier for ``spec``, training and caching it on first use."""
    import keras

    folder = cache_root() / spec.key()
    model_file, info_file = folder / "classifier.keras", folder / "info.json"
    if model_file.is_file() and info_file.is_file():
        try:
            model = keras.models.load_model(model_file)
            return FeatureClassifier(model, spec, json.loads(info_file.read_text()))
        except Exception:  # a damaged cache entry is rebuilt, not trusted
            shutil.rmtree(folder, ignore_errors=True)
    print(f"Training the feature classifier for '{spec.dataset}' (first use; cached in {folder})", flush=True)
    model, info = _train(spec, verbose)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save(tmp / "classifier.keras")
    (tmp / "info.json").write_text(json.dumps(info, indent=2))
    if folder.exists():  # another process finished first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
        return get_classifier(spec, verbose)
    os.replace(tmp, folder)
    return FeatureClassifier(model, spec, info)
