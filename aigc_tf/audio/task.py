"""Audio families: GANs (``wavegan``, ``specgan`` and their conditional
``cwavegan``, ``cspecgan``) and waveform VAEs (``wave_vae``, ``conv_wave_vae``,
``cwave_vae``).

Data: :mod:`aigc_tf.audio.data`. Per-epoch samples: WAV files, a PNG grid of
spectrograms and TensorBoard audio. Quality: the project's log-mel classifier
(:mod:`aigc_tf.audio.quality`): inception score, Fréchet distance and KID,
each beside its real-vs-real and noise baselines, plus the asked-class
accuracy of conditional models; the test ELBO for VAEs.

Reference clips: the test split cut in two halves R1, R2 with a fixed
permutation; samples are compared with R1 and the real-vs-real baseline is
R2 vs R1 at the same count.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from aigc_tf.config import DataConfig
from aigc_tf.data import AUDIO_DATASETS
from aigc_tf.errors import ConfigError, UserError
from aigc_tf.tasks.base import Task, compile_adam, quality_every_k_epochs

SAMPLE_CLIPS = 10  # WAV files per epoch in samples/ (the PNG shows up to 16)


@dataclasses.dataclass
class AudioDataConfig(DataConfig):
    """``data:`` keys of audio models."""

    name: str = "spoken_digits"
    sample_rate: int = 16000  # every clip is resampled to this rate (Hz)
    clip_length: int = 16000  # samples per clip: padded with silence or cropped
    voices: int | None = None  # spoken_digits: render only the first N of its 832 voices (null: all)
    label_pattern: str | None = None  # folder: labels from flat file names, e.g. "{label}_{speaker}_{n}.wav"


class AudioTask(Task):
    modality = "audio"
    datasets = AUDIO_DATASETS
    data_config = AudioDataConfig

    def check_config(self, cfg, source: str) -> None:
        super().check_config(cfg, source)
        d = cfg.data
        if d.sample_rate < 1000:
            raise ConfigError(f"{source}: data.sample_rate must be at least 1000 Hz, got {d.sample_rate}")
        if d.clip_length < 64:
            raise ConfigError(f"{source}: data.clip_length must be at least 64 samples, got {d.clip_length}")
        if d.name == "folder" and not d.path:
            raise ConfigError(f"{source}: data.name=folder needs data.path, a folder of WAV files")
        if d.label_pattern is not None and d.name != "folder":
            raise ConfigError(f"{source}: data.label_pattern applies to data.name=folder only")
        if d.voices is not None and (d.name != "spoken_digits" or d.voices < 1):
            raise ConfigError(f"{source}: data.voices applies to data.name=spoken_digits and must be >= 1")
        if cfg.train.lr_schedule != "constant" or cfg.train.clipnorm is not None:
            raise ConfigError(f"{source}: train.lr_schedule and train.clipnorm apply to text models")

    # -------------------------------------------------------- data, model
    def load_data(self, cfg, seed_offset: int = 0, model=None):
        from aigc_tf.audio.data import load_audio_data

        return load_audio_data(cfg.data, seed=cfg.seed + seed_offset)

    def build_model(self, cfg, data):
        from aigc_tf import registry

        try:
            model = registry.build_model(cfg.model, cfg.seed, clip_length=data.clip_length,
                                         sample_rate=data.sample_rate, num_classes=data.num_classes)
        except ValueError as exc:
            raise ConfigError(f"model {cfg.model['name']!r} cannot be built for data {cfg.data.name!r} "
                              f"({data.clip_length} samples at {data.sample_rate} Hz): {exc}") from None
        if hasattr(model, "adapt"):  # SpecGAN: the per-bin moments of the training clips
            model.adapt(data.train_clips.audio)
        return compile_adam(model, cfg.train)

    # ------------------------------------------------------------ training
    def write_samples(self, cfg, model, folder: Path, epoch: int) -> None:
        from aigc_tf.audio import outputs

        n = min(cfg.train.num_samples, 16)
        waves, labels = generate_clips(model, n, cfg.seed)
        names = self._label_names(cfg, model, labels)
        outputs.spectrogram_grid(waves, model.sample_rate, folder / f"epoch_{epoch:04d}.png", titles=names)
        outputs.write_clips(folder / f"epoch_{epoch:04d}", waves[:SAMPLE_CLIPS], model.sample_rate,
                            names[:SAMPLE_CLIPS] if names else None)
        outputs.tensorboard_audio(folder.parent / "logs" / "audio", waves[:SAMPLE_CLIPS], model.sample_rate, epoch)

    @staticmethod
    def _label_names(cfg, model, labels):
        if labels is None:
            return None
        from aigc_tf.audio.data import class_names

        classes = class_names(cfg.data)
        return [classes[int(y)] if int(y) < len(classes) else str(int(y)) for y in labels]

    # ---------------------------------------------------- after training
    def evaluate(self, run_dir: Path, cfg, model, n_samples: int | None, seed: int, **options) -> dict:
        from aigc_tf.audio.quality import audio_metrics, get_audio_classifier

        clf = get_audio_classifier(cfg.data, verbose=options.get("verbose", 0))
        r1, r2, split = reference_halves(cfg, seed)
        n = n_samples or len(r1)
        if n < 2:
            raise UserError(f"-n {n} is too small; the Fréchet distance needs at least 2 samples")
        fake, labels = generate_clips(model, n, seed)
        result = {
            "run_dir": str(run_dir), "model": cfg.model["name"], "dataset": cfg.data.name,
            "reference_split": split, "num_samples": n, "num_real": len(r1), "seed": seed,
            "feature_network": "project log-mel CNN trained to classify the dataset's labels (not a pretrained model)",
            "classifier_accuracy": clf.accuracy, "classifier_test_clips": clf.info.get("num_test"),
            "noise": "white Gaussian noise with the reference clips' RMS",
        }
        result.update(audio_metrics(clf, fake, r1, r2, noise_like(r1, seed), labels))
        return result

    def export_endpoints(self, model) -> dict:
        import tensorflow as tf

        z_spec = tf.TensorSpec([None, model.latent_dim], tf.float32, name="z")
        y_spec = tf.TensorSpec([None], tf.int32, name="labels")
        if model.conditional:
            return {"serving_default": (lambda z, labels: waveform_outputs(model, model.generate(z=z, labels=labels)),
                                        [z_spec, y_spec])}
        return {"serving_default": (lambda z: waveform_outputs(model, model.generate(z=z)), [z_spec])}

    # ----------------------------------------------------------------- cli
    @classmethod
    def add_sample_arguments(cls, parser) -> None:
        parser.add_argument("--label", help="audio: the class to generate, by name or index (conditional runs; "
                                            "default: every class in turn)")

    def _resolve_label(self, args, cfg) -> int | None:
        if args.label is None:
            return None
        from aigc_tf.audio.data import class_names

        classes = class_names(cfg.data)
        if args.label in classes:
            return classes.index(args.label)
        if args.label.isdigit() and int(args.label) < len(classes):
            return int(args.label)
        raise UserError(f"--label {args.label!r} is not a class of {cfg.data.name}; use one of: {', '.join(classes)}")

    def _out(self, args, cfg, run_dir: Path) -> Path:
        seed = cfg.seed if args.seed is None else args.seed
        return Path(args.out) if args.out else run_dir / "samples" / f"sample_seed{seed}_n{args.n or 10}"

    def check_sample_arguments(self, args, cfg, run_dir: Path) -> None:
        from aigc_tf import registry

        if args.label is not None:
            preset = registry.MODELS[cfg.model["name"]].preset
            if not cfg.model.get("conditional", preset.get("conditional", False)):
                raise UserError(f"--label needs a conditional model; {run_dir} holds an unconditional "
                                f"{cfg.model['name']}")
            self._resolve_label(args, cfg)
        out = self._out(args, cfg, run_dir)
        if out.suffix.lower() == ".wav" or (out.exists() and not out.is_dir()):
            raise UserError(f"--out {out} must be a folder (the clips are written as 000.wav, 001.wav, ...)")
        if out.is_dir() and any(out.glob("*.wav")):
            raise UserError(f"--out {out} already holds WAV files; choose another folder (nothing is overwritten)")

    def sample(self, args, cfg, run_dir: Path, model) -> int:
        from aigc_tf.audio import outputs

        seed = cfg.seed if args.seed is None else args.seed
        n = args.n or 10
        label = self._resolve_label(args, cfg)
        labels = None if label is None else np.full(n, label, np.int32)
        waves, labels = generate_clips(model, n, seed, labels=labels)
        out = self._out(args, cfg, run_dir)
        names = self._label_names(cfg, model, labels)
        outputs.write_clips(out, waves, model.sample_rate, names)
        outputs.spectrogram_grid(waves[:16], model.sample_rate, out / "spectrograms.png",
                                 titles=names[:16] if names else None)
        print(f"Wrote {n} clips ({model.sample_rate} Hz, seed {seed}) to {out}")
        return 0


class AudioGANTask(AudioTask):
    family = "audio_gan"
    sparse_metrics = ("fd",)
    objective = ("fd", "min")

    def quality_callback(self, cfg):
        """The Fréchet distance on the audio classifier's features every ``train.quality_every`` epochs."""
        if not cfg.train.quality_every:
            return None
        from aigc_tf.audio.quality import get_audio_classifier
        from aigc_tf.metrics.distances import frechet_distance

        clf = get_audio_classifier(cfg.data)
        real = clf.features(reference_halves(cfg)[0][: cfg.train.quality_samples])

        def fd(model):
            return frechet_distance(clf.features(generate_clips(model, len(real), cfg.seed)[0]), real)

        return quality_every_k_epochs(cfg, "fd", fd)


class AudioVAETask(AudioTask):
    family = "audio_vae"
    sparse_metrics = ("test_elbo",)
    objective = ("test_elbo", "max")

    def quality_callback(self, cfg):
        """The test ELBO (nats per clip) every ``train.quality_every`` epochs."""
        if not cfg.train.quality_every:
            return None
        clips = test_clips(cfg)

        def test_elbo(model):
            return test_likelihood(model, clips.audio[: cfg.train.quality_samples],
                                   clips.labels[: cfg.train.quality_samples], cfg.seed)["test_elbo"]

        return quality_every_k_epochs(cfg, "test_elbo", test_elbo)

    def evaluate(self, run_dir: Path, cfg, model, n_samples: int | None, seed: int, **options) -> dict:
        result = super().evaluate(run_dir, cfg, model, n_samples, seed, **options)
        clips = test_clips(cfg)
        result.update(test_likelihood(model, clips.audio, clips.labels, seed))
        result["likelihood"] = (f"Gaussian over samples in [-1, 1] with the model's learnt scale "
                                f"(s = {float(np.exp(model.log_scale.numpy())):.4f}); nats per clip, one posterior "
                                f"sample per test clip")
        return result

    def export_endpoints(self, model) -> dict:
        import tensorflow as tf

        endpoints = super().export_endpoints(model)
        endpoints["decode"] = endpoints["serving_default"]
        x_spec = tf.TensorSpec([None, model.clip_length], tf.float32, name="audio")
        y_spec = tf.TensorSpec([None], tf.int32, name="labels")
        pair = lambda mean_log_var: dict(zip(("mean", "log_var"), mean_log_var, strict=True))  # noqa: E731
        if model.conditional:
            endpoints["encode"] = (lambda audio, labels: pair(model.encode(audio, labels)), [x_spec, y_spec])
            endpoints["reconstruct"] = (lambda audio, labels: waveform_outputs(model, model.reconstruct(audio, labels)),
                                        [x_spec, y_spec])
        else:
            endpoints["encode"] = (lambda audio: pair(model.encode(audio)), [x_spec])
            endpoints["reconstruct"] = (lambda audio: waveform_outputs(model, model.reconstruct(audio)), [x_spec])
        return endpoints


# ------------------------------------------------------------ shared helpers
def waveform_outputs(model, waves) -> dict:
    """A signature's outputs: ``waveforms`` (float32 in [-1, 1]), ``pcm16`` (int16) and ``sample_rate`` per clip."""
    import tensorflow as tf

    waves = tf.clip_by_value(tf.cast(waves, tf.float32), -1.0, 1.0)
    return {
        "waveforms": waves,
        "pcm16": tf.cast(tf.round(waves * 32767.0), tf.int16),
        "sample_rate": tf.fill(tf.shape(waves)[:1], tf.constant(model.sample_rate, tf.int32)),
    }


def generate_clips(model, n: int, seed: int, labels=None, batch_size: int = 250):
    """``(waveforms (n, clip_length) numpy, labels or None)`` from one seeded latent draw.

    Conditional models are asked for ``labels``, by default class ``i % K``."""
    z = model.sample_latent(n, seed=seed)
    if model.conditional and labels is None:
        labels = np.arange(n, dtype=np.int32) % model.num_classes
    out = []
    for start in range(0, n, batch_size):
        zb = z[start : start + batch_size]
        yb = None if labels is None else labels[start : start + batch_size]
        out.append(np.asarray(model.generate(z=zb, labels=yb)))
    return np.clip(np.concatenate(out), -1.0, 1.0), (None if labels is None else np.asarray(labels))


def test_clips(cfg):
    from aigc_tf.audio.data import load_clips

    return load_clips(cfg.data, "test")[0]


def reference_halves(cfg, seed: int = 0):
    """``(R1, R2, split)``: two disjoint halves of the test clips."""
    from aigc_tf.audio.data import load_clips

    clips, _, split = load_clips(cfg.data, "test")
    order = np.random.default_rng(seed).permutation(len(clips.labels))
    half = len(order) // 2
    if half < 2:
        raise UserError(f"the test split of {cfg.data.name} has {len(order)} clips; the metrics need at least 4")
    return clips.audio[order[:half]], clips.audio[order[half : 2 * half]], split


def noise_like(reference: np.ndarray, seed: int) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(reference))))
    return np.clip(np.random.default_rng(seed).normal(0, rms, reference.shape), -1, 1).astype(np.float32)


def test_likelihood(model, audio, labels, seed: int, batch_size: int = 250) -> dict:
    """Mean test ELBO, reconstruction NLL and KL (nats per clip), one seeded posterior sample each."""
    import tensorflow as tf

    recon, kl = [], []
    rng = np.random.default_rng(seed)
    for start in range(0, len(audio), batch_size):
        x = tf.constant(audio[start : start + batch_size])
        y = tf.constant(labels[start : start + batch_size]) if model.conditional else None
        eps = rng.standard_normal((int(x.shape[0]), model.latent_dim)).astype(np.float32)
        r, k = model.elbo_terms(x, y, eps)
        recon.append(r.numpy())
        kl.append(k.numpy())
    recon, kl = np.concatenate(recon), np.concatenate(kl)
    return {"test_elbo": float(-(recon + kl).mean()), "test_reconstruction": float(recon.mean()),
            "test_kl": float(kl.mean()), "test_clips": int(len(audio))}
