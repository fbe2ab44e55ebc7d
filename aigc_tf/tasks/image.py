"""Image families: GANs (``mlp_gan``, ``dcgan``, ``cgan``) and VAEs (``mlp_vae``, ``conv_vae``, ``cvae``).

Data: :mod:`aigc_tf.data.images`. Per-epoch samples: a PNG grid. Quality:
FID against the dataset's feature classifier (GANs) or the binarised test
ELBO (VAEs). Evaluation (``aigc-tf evaluate``): FID, KID, classifier score,
precision/recall against a real-vs-real baseline, plus ELBO/IWAE for VAEs.

Reference images: the test split (tfds/npz/idx datasets), or all 1,797
images for ``digits`` (its 360-image hold-out is too small for 64-d feature
statistics). The reference is split in two halves R1, R2 with a fixed
permutation; a generator's N samples are compared with R1 and the
real-vs-real baseline is R2 vs R1, both at N = |R1|, so every ratio to the
baseline compares like with like.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from aigc_tf.config import DataConfig
from aigc_tf.data import IMAGE_DATASETS
from aigc_tf.errors import ConfigError, UserError
from aigc_tf.tasks.base import Task, compile_adam, quality_every_k_epochs


@dataclasses.dataclass
class ImageDataConfig(DataConfig):
    """``data:`` keys of image models."""

    image_size: int | None = None  # resize to N x N (null: the images' own size)
    channels: int | None = None  # force 1 or 3 channels (null: the images' own)
    cache: bool = True  # cache the decoded images in memory


class ImageTask(Task):
    modality = "image"
    datasets = IMAGE_DATASETS
    data_config = ImageDataConfig
    value_range = "unit"

    def check_config(self, cfg, source: str) -> None:
        from aigc_tf.data import TEXT_DATASETS

        if cfg.data.name in TEXT_DATASETS:
            from aigc_tf import registry

            raise ConfigError(
                f"{source}: data.name={cfg.data.name!r} is text but model {cfg.model['name']!r} is an image model; "
                f"use one of: {', '.join(registry.names_of_family('lm', 'seq2seq', 'text_vae'))}"
            )
        if cfg.data.name not in IMAGE_DATASETS:
            raise ConfigError(f"{source}: unknown image dataset {cfg.data.name!r}; set data.name to one of {IMAGE_DATASETS}")
        if cfg.train.lr_schedule != "constant" or cfg.train.clipnorm is not None:
            raise ConfigError(
                f"{source}: train.lr_schedule and train.clipnorm apply to text models; "
                f"{cfg.model['name']!r} trains with a constant learning rate and no clipping"
            )
        if cfg.data.image_size is not None and cfg.data.image_size < 1:
            raise ConfigError(f"{source}: data.image_size must be at least 1, got {cfg.data.image_size}")
        if cfg.data.channels is not None and cfg.data.channels not in (1, 3):
            raise ConfigError(f"{source}: data.channels must be 1 or 3 (or null to keep the images' own)")

    # -------------------------------------------------------- data, model
    def load_data(self, cfg, seed_offset: int = 0, model=None):
        from aigc_tf.data.images import load_image_data

        d = cfg.data
        return load_image_data(
            d.name, path=d.path, batch_size=d.batch_size, value_range=self.value_range, image_size=d.image_size,
            channels=d.channels, shuffle_buffer=d.shuffle_buffer, seed=cfg.seed + seed_offset,
            max_examples=d.max_examples, data_dir=d.data_dir, download=d.download, cache=d.cache,
        )

    def _build(self, cfg, data):
        from aigc_tf import registry

        try:
            return registry.build_model(cfg.model, cfg.seed, image_shape=tuple(data.image_shape),
                                        num_classes=data.num_classes)
        except ValueError as exc:
            raise ConfigError(
                f"model {cfg.model['name']!r} cannot be built for data {cfg.data.name!r} "
                f"(images {tuple(data.image_shape)}, {data.num_classes} classes): {exc}"
            ) from None

    def build_model(self, cfg, data):
        return compile_adam(self._build(cfg, data), cfg.train)

    # ------------------------------------------------------------ training
    def write_samples(self, cfg, model, folder: Path, epoch: int) -> None:
        from aigc_tf import viz

        viz.save_grid(sample_images(model, cfg.train.num_samples, cfg.seed), folder / f"epoch_{epoch:04d}.png")

    # ---------------------------------------------------- after training
    def evaluate(self, run_dir: Path, cfg, model, n_samples: int | None, seed: int, **options) -> dict:
        from aigc_tf.metrics.classifier import get_classifier
        from aigc_tf.metrics.distances import frechet_distance

        clf = get_classifier(classifier_spec(cfg), verbose=options.get("verbose", 0))
        r1, r2, _, split = reference_halves(cfg, seed)
        n_real = len(r1)
        n = n_samples or n_real
        if n < 2:
            raise UserError(f"-n {n} is too small; FID needs at least 2 samples")
        f1, p1 = clf.features_and_probs(r1)
        f2, _ = clf.features_and_probs(r2)
        samples = generate_unit(model, n, seed)
        ff, pf = clf.features_and_probs(samples)
        result = {
            "run_dir": str(run_dir),
            "model": cfg.model["name"],
            "dataset": cfg.data.name,
            "reference_split": split,
            "num_samples": n,
            "num_real": n_real,
            "seed": seed,
            "feature_network": FEATURE_NETWORKS[clf.objective],
            "classifier_accuracy": clf.accuracy,
            "classifier_test_split": clf.info.get("held_out", "test") if cfg.data.name != "digits"
            else "digits hold-out (360)",
            "feature_dim": int(ff.shape[1]),
        }
        result.update(image_metrics(ff, pf, f1, f2, p1, class_probabilities=clf.objective == "labels"))
        if getattr(model, "conditional", False):
            # generate_unit asks for class i % K; how often does the classifier agree?
            result["class_accuracy"] = float(np.mean(np.argmax(pf, axis=1) == np.arange(n) % model.num_classes))
        result.update(memorisation(cfg, samples))
        # Context for the scale: uniform noise images at the same sample count.
        noise = np.random.default_rng(seed).random((n_real, *r1.shape[1:])).astype(np.float32)
        result["fid_noise"] = frechet_distance(clf.features(noise), f1)
        return result

    def export_endpoints(self, model) -> dict:
        import tensorflow as tf

        z_spec = tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")
        y_spec = tf.TensorSpec([None], tf.int32, name="labels")
        if model.conditional:
            gen = (lambda z, labels: self._images_out(model, model.generate(z=z, labels=labels)), [z_spec, y_spec])
        else:
            gen = (lambda z: self._images_out(model, model.generate(z=z)), [z_spec])
        return {"serving_default": gen}

    @staticmethod
    def _images_out(model, images):
        from aigc_tf.export import pixels

        return {"images": images, "pixels": pixels(images, model.value_range)}

    # ----------------------------------------------------------------- cli

    def sample(self, args, cfg, run_dir: Path, model) -> int:
        from aigc_tf import viz

        seed = cfg.seed if args.seed is None else args.seed
        n = args.n or 64
        out = Path(args.out) if args.out else run_dir / "samples" / f"sample_seed{seed}_n{n}.png"
        viz.save_grid(sample_images(model, n, seed), out)
        print(f"Wrote {n} samples (seed {seed}) to {out}")
        return 0

    def check_sample_arguments(self, args, cfg, run_dir: Path) -> None:
        seed = cfg.seed if args.seed is None else args.seed
        n = args.n or 64
        out = Path(args.out) if args.out else run_dir / "samples" / f"sample_seed{seed}_n{n}.png"
        if out.suffix.lower() != ".png":
            raise UserError(f"--out {out} must be a .png file path")
        if out.is_dir():
            raise UserError(f"--out {out} is a directory; give a file path ending in .png")


class GANTask(ImageTask):
    family = "gan"
    value_range = "tanh"
    sparse_metrics = ("fid",)
    objective = ("fid", "min")

    def quality_callback(self, cfg):
        """FID every ``train.quality_every`` epochs (and at the last) into ``logs``."""
        if not cfg.train.quality_every:
            return None
        from aigc_tf.metrics.classifier import get_classifier
        from aigc_tf.metrics.distances import frechet_distance

        classifier = get_classifier(classifier_spec(cfg))
        real_features = classifier.features(reference_halves(cfg)[0][: cfg.train.quality_samples])

        def fid(model):
            return frechet_distance(classifier.features(generate_unit(model, len(real_features), cfg.seed)), real_features)

        return quality_every_k_epochs(cfg, "fid", fid)


class VAETask(ImageTask):
    family = "vae"
    value_range = "unit"
    sparse_metrics = ("test_elbo",)
    objective = ("test_elbo", "max")

    def quality_callback(self, cfg):
        """The binarised test ELBO every ``train.quality_every`` epochs (and at the last) into ``logs``."""
        if not cfg.train.quality_every:
            return None
        from aigc_tf.metrics.likelihood import evaluate_likelihood

        x, y = binarised_test_set(cfg, limit=cfg.train.quality_samples, seed=cfg.seed)

        def test_elbo(model):
            return evaluate_likelihood(model, x, y if model.conditional else None, k=1, seed=cfg.seed)["elbo"]

        return quality_every_k_epochs(cfg, "test_elbo", test_elbo)

    def evaluate(self, run_dir: Path, cfg, model, n_samples: int | None, seed: int, **options) -> dict:
        from aigc_tf.metrics.likelihood import evaluate_likelihood

        result = super().evaluate(run_dir, cfg, model, n_samples, seed, **options)
        x, y = binarised_test_set(cfg, seed=seed)
        result["likelihood_split"] = "test"
        result.update(evaluate_likelihood(model, x, y if model.conditional else None,
                                          k=options.get("iwae_k", 1000), seed=seed))
        return result

    def export_endpoints(self, model) -> dict:
        import tensorflow as tf

        endpoints = super().export_endpoints(model)
        endpoints["decode"] = endpoints["serving_default"]
        x_spec = tf.TensorSpec([None, *model.image_shape], tf.float32, name="images")
        y_spec = tf.TensorSpec([None], tf.int32, name="labels")
        out = self._images_out
        if model.conditional:
            enc = lambda images, labels: dict(zip(("mean", "log_var"), model.encode(images, labels), strict=True))  # noqa: E731
            rec = lambda images, labels: out(model, model.reconstruct(images, labels))  # noqa: E731
            endpoints["encode"] = (enc, [x_spec, y_spec])
            endpoints["reconstruct"] = (rec, [x_spec, y_spec])
        else:
            endpoints["encode"] = (lambda images: dict(zip(("mean", "log_var"), model.encode(images), strict=True)), [x_spec])
            endpoints["reconstruct"] = (lambda images: out(model, model.reconstruct(images)), [x_spec])
        return endpoints


# ------------------------------------------------------------ shared helpers
# What the FID's features come from (metrics.classifier), by training objective.
FEATURE_NETWORKS = {
    "labels": "project CNN trained to classify the dataset's labels (not Inception)",
    "rotation": "project CNN trained to predict image rotations, self-supervised, for data without labels "
                "(not Inception; compare only runs on the same data)",
}


def memorisation(cfg, samples) -> dict:
    """Pixel distance (images in [0, 1]) from each sample to its nearest training
    image, beside the same for held-out real images: samples much nearer than
    hold-out images are copies. Without a test split the held-out images are a
    fixed 10% of the training images, left out of the "training" side here."""
    from aigc_tf.data.images import load_train_and_held_out
    from aigc_tf.metrics.distances import nearest_distances

    (train, _), (held_out, _), _ = load_train_and_held_out(cfg.data.name, **_array_options(cfg))
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    d_samples = nearest_distances(flat(samples), flat(train))
    d_held_out = nearest_distances(flat(held_out), flat(train))
    return {
        "nn_train_distance": float(np.median(d_samples)),
        "nn_train_distance_held_out": float(np.median(d_held_out)),
        "nn_train_distance_min": float(d_samples.min()),
        "nn_train_distance_held_out_min": float(d_held_out.min()),
    }


def sample_images(model, num_samples: int, seed: int):
    """Images in [0, 1] as numpy: the model's samples for a fixed seed."""
    from aigc_tf.viz import to_unit

    return to_unit(model.generate(num_samples, seed=seed).numpy(), model.value_range)


def classifier_spec(cfg, epochs: int = 0):
    from aigc_tf.metrics.classifier import ClassifierSpec

    d = cfg.data
    return ClassifierSpec(dataset=d.name, path=d.path, image_size=d.image_size, channels=d.channels,
                          max_examples=d.max_examples, data_dir=d.data_dir, epochs=epochs)


def _array_options(cfg) -> dict:
    d = cfg.data
    return dict(path=d.path, value_range="unit", image_size=d.image_size, channels=d.channels,
                max_examples=d.max_examples, data_dir=d.data_dir, download=d.download)


def data_arrays(cfg, split: str):
    """``(images in [0, 1], labels)`` of a split of the run's dataset, as numpy."""
    from aigc_tf.data.images import load_image_arrays

    return load_image_arrays(cfg.data.name, split=split, **_array_options(cfg))


def binarised_test_set(cfg, limit: int | None = None, seed: int = 0):
    """The likelihood evaluation set: test images, statically binarised with ``seed``."""
    from aigc_tf.metrics.likelihood import binarize

    x, y = data_arrays(cfg, "test")
    return binarize(x[:limit], seed), y[:limit]


def reference_halves(cfg, seed: int = 0):
    """``(R1, R2, labels1, split name)``: two disjoint halves of the reference images in [0, 1].

    The test split, or the training images for a source without one (a flat
    folder: the generator is then compared with the images it learnt from)."""
    from aigc_tf.data.images import NoTestSplit

    if cfg.data.name == "digits":
        x1, y1 = data_arrays(cfg, "train")
        x2, y2 = data_arrays(cfg, "test")
        images, labels, split = np.concatenate([x1, x2]), np.concatenate([y1, y2]), "train+test"
    else:
        try:
            images, labels = data_arrays(cfg, "test")
            split = "test"
        except NoTestSplit:
            images, labels = data_arrays(cfg, "train")
            split = "train (the source has no test split)"
    order = np.random.default_rng(seed).permutation(len(images))
    half = len(images) // 2
    a, b = order[:half], order[half : 2 * half]
    return images[a], images[b], labels[a], split


def generate_unit(model, n: int, seed: int, batch_size: int = 500) -> np.ndarray:
    """``n`` samples in [0, 1], drawn in batches from one seeded latent draw."""
    import tensorflow as tf

    from aigc_tf.viz import to_unit

    z = model.sample_latent(n, seed=seed)
    out = []
    for start in range(0, n, batch_size):
        zb = z[start : start + batch_size]
        labels = None
        if model.conditional:
            labels = tf.range(start, start + int(zb.shape[0]), dtype=tf.int32) % model.num_classes
        out.append(to_unit(model.generate(z=zb, labels=labels).numpy(), model.value_range))
    return np.concatenate(out)


def image_metrics(features_fake, probs_fake, features_real, features_real2, probs_real,
                  class_probabilities: bool = True) -> dict:
    """FID, KID, classifier score and precision/recall, with the real-vs-real baseline.

    ``class_probabilities=False`` (a rotation predictor's softmax) leaves the
    classifier score out: it would measure nothing."""
    from aigc_tf.metrics import distances as m

    fid = m.frechet_distance(features_fake, features_real)
    fid_rr = m.frechet_distance(features_real2, features_real)
    kid, kid_se = m.kernel_distance(features_fake, features_real)
    kid_rr, _ = m.kernel_distance(features_real2, features_real)
    precision, recall = m.precision_recall(features_real, features_fake)
    precision_rr, recall_rr = m.precision_recall(features_real, features_real2)
    out = {
        "fid": fid,
        "fid_real_vs_real": fid_rr,
        "fid_ratio_to_real": fid / fid_rr if fid_rr > 0 else float("inf"),
        "kid": kid,
        "kid_stderr": kid_se,
        "kid_real_vs_real": kid_rr,
        "precision": precision,
        "recall": recall,
        "precision_real_vs_real": precision_rr,
        "recall_real_vs_real": recall_rr,
    }
    if class_probabilities:
        score, score_sd = m.classifier_score(probs_fake)
        out.update(classifier_score=score, classifier_score_std=score_sd,
                   classifier_score_real=m.classifier_score(probs_real)[0])
    return out
