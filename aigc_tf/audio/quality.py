"""The audio judge: a log-mel CNN trained by the project on the dataset's
training split, whose penultimate activations (64-d) and softmax give the
inception score, Fréchet distance and KID of generated clips, each beside
its real-vs-real and noise baselines (:func:`audio_metrics`).

Like the image classifier (:mod:`aigc_tf.metrics.classifier`, which caches
it), it is trained once per dataset and data settings, so every evaluation
of runs on the same data uses the same network. Its accuracy on the test
split is reported with every number it gives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import numpy as np

CLASSIFIER_VERSION = 1


@dataclasses.dataclass(frozen=True)
class AudioClassifierSpec:
    """What identifies an audio classifier: the data (its ``data_key``) and how it trained."""

    dataset: str
    data_key: str
    epochs: int = 0  # 0: by training-set size
    feature_dim: int = 64
    seed: int = 0

    def key(self) -> str:
        blob = json.dumps({"v": CLASSIFIER_VERSION, "audio": True, **dataclasses.asdict(self)}, sort_keys=True)
        return f"audio-{self.dataset}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def build_audio_classifier(clip_length: int, sample_rate: int, num_classes: int, feature_dim: int = 64):
    """Waveform -> log-mel (25 ms windows, 10 ms hop, 64 bands, dB) -> 4 conv
    layers -> global average -> ``features`` (ReLU) -> softmax."""
    import keras
    from keras import layers

    window = max(16, round(0.025 * sample_rate))
    hop = max(8, round(0.010 * sample_rate))
    fft = 1 << (window - 1).bit_length()
    inputs = keras.Input((clip_length,), name="audio")
    mel = layers.MelSpectrogram(fft_length=fft, sequence_stride=hop, sequence_length=window,
                                sampling_rate=sample_rate, num_mel_bins=64, min_freq=20.0,
                                max_freq=sample_rate / 2, name="log_mel")(inputs)  # (batch, 64, frames) dB
    x = layers.Reshape((64, -1, 1))(mel)
    x = layers.BatchNormalization(name="c_input_norm")(x)
    for i, filters in enumerate((32, 32, 64, 64)):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"c_conv{i}")(x)
        if i % 2:
            x = layers.MaxPooling2D(name=f"c_pool{i}")(x)
    x = layers.GlobalAveragePooling2D(name="c_pool")(x)
    features = layers.Dense(feature_dim, activation="relu", name="features")(layers.Dropout(0.2)(x))
    probs = layers.Dense(num_classes, activation="softmax", name="probs")(layers.Dropout(0.3)(features))
    return keras.Model(inputs, probs, name="audio_classifier")


def train_classifier_on(train, test, sample_rate: int, num_classes: int, spec: AudioClassifierSpec,
                        verbose: int = 2):
    """``(model, info)``: fit on ``train`` clips, accuracy on ``test`` clips."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(spec.seed)
    model = build_audio_classifier(train.audio.shape[1], sample_rate, num_classes, spec.feature_dim)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    epochs = spec.epochs or int(min(30, max(3, round(60_000 / max(len(train.labels), 1)))))
    ds = (tf.data.Dataset.from_tensor_slices((train.audio, train.labels)).shuffle(len(train.labels), seed=spec.seed)
          .batch(64).prefetch(tf.data.AUTOTUNE))
    t0 = time.time()
    model.fit(ds, epochs=epochs, verbose=verbose, shuffle=False)
    accuracy = float(model.evaluate(test.audio, test.labels, batch_size=256, verbose=0)[1]) if len(test.labels) \
        else float("nan")
    info = {"test_accuracy": accuracy, "objective": "labels", "dataset": spec.dataset,
            "num_train": int(len(train.labels)), "num_test": int(len(test.labels)), "epochs": epochs,
            "train_seconds": round(time.time() - t0, 1), "spec": dataclasses.asdict(spec),
            "version": CLASSIFIER_VERSION}
    return model, info


def get_audio_classifier(data_cfg, verbose: int = 2, epochs: int = 0):
    """The cached classifier of a ``data:`` section (trained on first use)."""
    from aigc_tf.audio.data import data_key, load_clips
    from aigc_tf.metrics.classifier import get_classifier

    spec = AudioClassifierSpec(dataset=data_cfg.name, data_key=data_key(data_cfg), epochs=epochs)

    def train(spec, verbose):
        train_clips, classes, _ = load_clips(data_cfg, "train")
        test_clips, _, _ = load_clips(data_cfg, "test")
        return train_classifier_on(train_clips, test_clips, data_cfg.sample_rate, len(classes), spec, verbose)

    return get_classifier(spec, verbose, train)


def audio_metrics(clf, fake, real1, real2, noise, labels=None) -> dict:
    """Inception score, Fréchet distance and KID of ``fake`` clips on ``clf``'s
    features, each beside real-vs-real (``real2`` vs ``real1``) and noise
    (``noise`` vs ``real1``); with ``labels`` (what a conditional model was
    asked for) also the fraction the classifier assigns to the asked class."""
    from aigc_tf.metrics import distances as m

    f1, p1 = clf.features_and_probs(real1)
    f2, p2 = clf.features_and_probs(real2)
    ff, pf = clf.features_and_probs(fake)
    fn, pn = clf.features_and_probs(noise)
    out = {}
    for name, (f, p) in {"": (ff, pf), "_real_vs_real": (f2, p2), "_noise": (fn, pn)}.items():
        out[f"inception_score{name}"] = m.classifier_score(p)[0]
        out[f"fd{name}"] = m.frechet_distance(f, f1)
        out[f"kid{name}"] = m.kernel_distance(f, f1)[0]
    out["inception_score_real"] = m.classifier_score(p1)[0]
    out["inception_score_ratio_to_real"] = out["inception_score"] / out["inception_score_real"]
    if labels is not None:
        out["class_accuracy"] = float(np.mean(np.argmax(pf, axis=1) == np.asarray(labels)))
    return out
