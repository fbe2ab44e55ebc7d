"""Audio models: WaveGAN and SpecGAN (Donahue et al. 2019) on the shared GAN
training loop, and the waveform VAE on the shared ELBO loop.

Batches are ``{"audio": (batch, clip_length) in [-1, 1], "labels": (batch,)}``;
``generate`` returns waveforms ``(batch, clip_length)`` in [-1, 1].
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from aigc_tf import losses
from aigc_tf.audio import features, networks
from aigc_tf.models import common
from aigc_tf.models.gan import AdversarialTrainingMixin
from aigc_tf.models.vae import ELBOTrainingMixin


class _AudioGAN(AdversarialTrainingMixin, common.LatentSamplingMixin, common.TwoOptimizerMixin,
                common.SeedStateMixin, keras.Model):
    """What WaveGAN and SpecGAN share: the loop's settings and the trackers."""

    batch_key = "audio"
    value_range = "tanh"

    def _init_gan(self, clip_length, sample_rate, num_classes, latent_dim, conditional, loss, gp_weight, d_steps,
                  seed, aux_weight, ema_kimg, ema_rampup, label_film):
        if loss not in losses.GAN_LOSSES:
            raise ValueError(f"unknown GAN loss {loss!r}; use one of {', '.join(losses.GAN_LOSSES)}")
        common.check_conditional(conditional, num_classes)
        if d_steps < 1:
            raise ValueError(f"d_steps must be at least 1, got {d_steps}")
        if aux_weight < 0 or (aux_weight and not conditional):
            raise ValueError(f"aux_weight {aux_weight} needs a conditional model and a value >= 0 "
                             "(set model.conditional: true, or model.aux_weight: 0)")
        if label_film and not conditional:
            raise ValueError("label_film modulates the generator by the label: it needs a conditional model "
                             "(use the c-prefixed model, e.g. cspecgan, or set model.label_film: false)")
        self.label_film = bool(label_film)
        self.clip_length = int(clip_length)
        self.sample_rate = int(sample_rate)
        self.num_classes = num_classes
        self.latent_dim = latent_dim
        self.conditional = conditional
        self.loss_name = loss
        self.gp_weight = gp_weight
        self.d_steps = d_steps
        self.seed = seed
        self.aux_weight = float(aux_weight)
        self.augment_policy = ()
        self._set_ema(ema_kimg, ema_rampup)
        self._d_batch_norm = False
        self._d_loss_fn, self._g_loss_fn = losses.GAN_LOSSES[loss]
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.real_score_tracker = keras.metrics.Mean(name="real_score")
        self.fake_score_tracker = keras.metrics.Mean(name="fake_score")
        if self.aux_weight:
            self._init_aux_trackers()
        return num_classes if conditional else 0

    def _gan_config(self):
        return dict(clip_length=self.clip_length, sample_rate=self.sample_rate, num_classes=self.num_classes,
                    latent_dim=self.latent_dim, conditional=self.conditional, loss=self.loss_name,
                    gp_weight=self.gp_weight, d_steps=self.d_steps, seed=self.seed, aux_weight=self.aux_weight,
                    ema_kimg=self.ema_kimg, ema_rampup=self.ema_rampup, label_film=self.label_film)


@keras.saving.register_keras_serializable(package="aigc_tf")
class WaveGAN(_AudioGAN):
    """WaveGAN: a GAN on raw waveforms (transposed conv1d generator, kernel 25,
    stride 4; conv1d discriminator with phase shuffle), WGAN-GP with 5
    critic steps per generator step as in the paper.

    Args:
        clip_length: samples per clip; a multiple of ``4**num_layers``.
        sample_rate: Hz (stored for WAV output and export).
        num_classes: classes of the labels (for ``conditional``).
        latent_dim: size of ``z`` (paper: 100).
        model_dim: width ``d`` (paper: 64; channels ``d .. d * 2**(k-1)``).
        num_layers: ``k`` stride-4 layers (paper: 5 for 16,384 samples).
        phase_shuffle: phase shuffle radius in the discriminator (paper: 2; 0 off).
        conditional: condition on labels (generator: label embedding
            concatenated to ``z``; discriminator: projection).
        loss: ``"wgan_gp"`` (paper), ``"hinge"`` or ``"bce"``.
        gp_weight: gradient-penalty weight (paper: 10).
        d_steps: critic updates per generator update (paper: 5).
        seed: initial seed of the model's ``SeedGenerator``.
        aux_weight: weight of an auxiliary classifier's cross-entropy
            (AC-GAN, conditional models only; 0, the default, has none).
        ema_kimg, ema_rampup: half-life in thousands of clips of a moving average of the
            generator that then makes every sample (0: none), and its ramp (as the image GANs').
        label_film: conditional models: also modulate every hidden layer of the
            generator by the label (a per-class scale and shift per channel, FiLM;
            False, the default, conditions through ``z`` alone).

    Example:
        >>> gan = WaveGAN(clip_length=16384, sample_rate=16000)
        >>> gan.compile()
        >>> gan.fit(dataset)  # {"audio": (batch, 16384)} batches
        >>> waves = gan.generate(8, seed=0)  # (8, 16384) in [-1, 1]
    """

    def __init__(self, clip_length: int = 16384, sample_rate: int = 16000, num_classes: int = 0,
                 latent_dim: int = 100, model_dim: int = 64, num_layers: int = 5, phase_shuffle: int = 2,
                 conditional: bool = False, loss: str = "wgan_gp", gp_weight: float = 10.0, d_steps: int = 5,
                 seed: int | None = None, aux_weight: float = 0.0, ema_kimg: float = 0.0, ema_rampup: float = 0.05,
                 label_film: bool = False, **kwargs):
        super().__init__(**kwargs)
        classes = self._init_gan(clip_length, sample_rate, num_classes, latent_dim, conditional, loss, gp_weight,
                                 d_steps, seed, aux_weight, ema_kimg, ema_rampup, label_film)
        self.model_dim = model_dim
        self.num_layers = num_layers
        self.phase_shuffle = phase_shuffle

        def build(name):
            return networks.wavegan_generator(self.clip_length, latent_dim, model_dim, num_layers, classes,
                                              label_film=self.label_film, name=name)

        self.generator = build("generator")
        self._init_ema_generator(build)
        self.discriminator = networks.wavegan_discriminator(self.clip_length, model_dim, num_layers, classes,
                                                            phase_shuffle, seed=seed,
                                                            aux_classifier=bool(self.aux_weight))
        self.built = True

    def get_config(self):
        return {**super().get_config(), **self._gan_config(), "model_dim": self.model_dim,
                "num_layers": self.num_layers, "phase_shuffle": self.phase_shuffle}


@keras.saving.register_keras_serializable(package="aigc_tf")
class SpecGAN(_AudioGAN):
    """SpecGAN: a DCGAN on log-magnitude spectrograms, each frequency bin
    normalised by the training set's moments (zero mean, unit variance,
    clipped at 3 standard deviations and scaled to [-1, 1]); generated
    spectrograms go back to audio with Griffin-Lim.

    The STFT pads each clip by ``frame_length - frame_step`` samples so it has
    ``clip_length / frame_step`` frames, and drops the Nyquist bin, leaving
    ``frame_length / 2`` bins (paper: 16,384 samples, 256 / 128 -> 128 x 128).

    Args:
        clip_length, sample_rate, num_classes, latent_dim, conditional, loss,
            gp_weight, d_steps, seed, aux_weight, ema_kimg, ema_rampup, label_film: as for :class:`WaveGAN`.
        model_dim: DCGAN width (paper: 64).
        frame_length, frame_step: STFT window and hop in samples.
        griffin_lim_iterations: Griffin-Lim iterations when generating (paper: 16).

    Example:
        >>> gan = SpecGAN(clip_length=16384, sample_rate=16000)
        >>> gan.adapt(training_waveforms)  # the per-bin moments
        >>> gan.compile()
        >>> gan.fit(dataset)
        >>> waves = gan.generate(8, seed=0)
    """

    def __init__(self, clip_length: int = 16384, sample_rate: int = 16000, num_classes: int = 0,
                 latent_dim: int = 100, model_dim: int = 64, frame_length: int = 256, frame_step: int = 128,
                 griffin_lim_iterations: int = 16, conditional: bool = False, loss: str = "wgan_gp",
                 gp_weight: float = 10.0, d_steps: int = 5, seed: int | None = None, aux_weight: float = 0.0,
                 ema_kimg: float = 0.0, ema_rampup: float = 0.05, label_film: bool = False, **kwargs):
        super().__init__(**kwargs)
        classes = self._init_gan(clip_length, sample_rate, num_classes, latent_dim, conditional, loss, gp_weight,
                                 d_steps, seed, aux_weight, ema_kimg, ema_rampup, label_film)
        if clip_length % frame_step:
            raise ValueError(f"clip_length {clip_length} must be a multiple of frame_step {frame_step}")
        self.model_dim = model_dim
        self.frame_length = frame_length
        self.frame_step = frame_step
        self.griffin_lim_iterations = griffin_lim_iterations
        self.spectrogram_shape = (self.clip_length // frame_step, frame_length // 2)

        def build(name):
            return networks.specgan_generator(self.spectrogram_shape, latent_dim, model_dim, classes,
                                              label_film=self.label_film, name=name)

        self.generator = build("generator")
        self._init_ema_generator(build)
        self.discriminator = networks.specgan_discriminator(self.spectrogram_shape, model_dim, classes,
                                                            aux_classifier=bool(self.aux_weight))
        bins = self.spectrogram_shape[1]
        self.bin_mean = self.add_weight(shape=(bins,), initializer="zeros", trainable=False, name="bin_mean")
        self.bin_std = self.add_weight(shape=(bins,), initializer="ones", trainable=False, name="bin_std")
        self.built = True

    def get_config(self):
        return {**super().get_config(), **self._gan_config(), "model_dim": self.model_dim,
                "frame_length": self.frame_length, "frame_step": self.frame_step,
                "griffin_lim_iterations": self.griffin_lim_iterations}

    # ------------------------------------------------------ representation
    def log_spectrogram(self, audio):
        """``(batch, frames, bins)`` log-magnitudes, Nyquist bin dropped."""
        padded = tf.pad(tf.cast(audio, tf.float32), [[0, 0], [0, self.frame_length - self.frame_step]])
        return features.log_magnitude(padded, self.frame_length, self.frame_step)[..., :-1]

    def adapt(self, audio, batch_size: int = 256) -> None:
        """Set the per-bin moments from training waveforms ``(n, clip_length)`` (numpy)."""
        total, total_sq, count = 0.0, 0.0, 0
        for start in range(0, len(audio), batch_size):
            spec = self.log_spectrogram(audio[start : start + batch_size]).numpy().astype(np.float64)
            total = total + spec.sum(axis=(0, 1))
            total_sq = total_sq + np.square(spec).sum(axis=(0, 1))
            count += spec.shape[0] * spec.shape[1]
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        self.bin_mean.assign(mean.astype(np.float32))
        self.bin_std.assign(np.maximum(std, 1e-3).astype(np.float32))

    def normalise(self, log_spec):
        """Log-magnitudes -> [-1, 1]: per-bin standardised, clipped at 3 sd, divided by 3."""
        standard = (log_spec - self.bin_mean) / self.bin_std
        return tf.clip_by_value(standard / 3.0, -1.0, 1.0)

    def _prepare_real(self, audio):
        return self.normalise(self.log_spectrogram(audio))[..., None]

    def spectrogram_to_audio(self, spec, seed: int = 0):
        """Normalised spectrograms ``(batch, frames, bins, 1)`` -> waveforms (Griffin-Lim)."""
        log_mag = spec[..., 0] * 3.0 * self.bin_std + self.bin_mean
        mag = tf.maximum(tf.exp(log_mag) - features.LOG_FLOOR, 0.0)
        mag = tf.pad(mag, [[0, 0], [0, 0], [0, 1]])  # the dropped Nyquist bin, silent
        waves = features.griffin_lim(mag, self.frame_length, self.frame_step,
                                     length=self.clip_length + self.frame_length - self.frame_step,
                                     iterations=self.griffin_lim_iterations, seed=seed)
        return tf.clip_by_value(waves[:, : self.clip_length], -1.0, 1.0)

    def generate_spectrogram(self, num_samples=None, z=None, labels=None, seed=None):
        """Normalised spectrograms ``(batch, frames, bins, 1)`` in [-1, 1]."""
        return super().generate(num_samples, z=z, labels=labels, seed=seed)

    def generate(self, num_samples=None, z=None, labels=None, seed=None):
        return self.spectrogram_to_audio(self.generate_spectrogram(num_samples, z, labels, seed))


@keras.saving.register_keras_serializable(package="aigc_tf")
class WaveVAE(ELBOTrainingMixin, common.LatentSamplingMixin, common.SingleOptimizerMixin, common.SeedStateMixin,
              keras.Model):
    """Waveform VAE: the source documents' MLP (16000 -> 512 -> 256 -> 128 ->
    latent 2, mirrored decoder, tanh) or a conv1d encoder/decoder.

    Likelihood: ``p(x | z) = N(x; decoder(z), s^2 I)`` over the samples, with
    one learnt scale ``s`` for the model, so the loss is a true negative
    ELBO in nats per clip (a density of continuous samples; compare only
    models of the same data); reconstruction and KL are logged apart.

    Args:
        clip_length: samples per clip (documents: 16000).
        sample_rate: Hz (stored for WAV output and export).
        num_classes: classes of the labels (for ``conditional``).
        architecture: ``"mlp"`` or ``"conv"``.
        latent_dim: size of ``z`` (documents: 2).
        hidden: MLP widths (documents: 512, 256, 128).
        model_dim: conv width (channels ``d .. d * 2**(k-1)``).
        num_layers: conv stride-4 layers (``clip_length`` a multiple of ``4**k``).
        conditional: condition encoder and decoder on one-hot labels.
        beta: KL weight (1: the ELBO).
        init_log_scale: initial ``log s`` (the learnt scale of the likelihood).
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> vae = WaveVAE(clip_length=16000, architecture="mlp")
        >>> vae.compile()
        >>> vae.fit(dataset)  # {"audio": (batch, 16000)} batches in [-1, 1]
        >>> mean, log_var = vae.encode(audio)
        >>> waves = vae.generate(8, seed=0)
    """

    batch_key = "audio"
    value_range = "tanh"

    def __init__(self, clip_length: int = 16000, sample_rate: int = 16000, num_classes: int = 0,
                 architecture: str = "mlp", latent_dim: int = 2, hidden: list = (512, 256, 128),
                 model_dim: int = 16, num_layers: int = 3, conditional: bool = False, beta: float = 1.0,
                 init_log_scale: float = -2.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if architecture not in ("mlp", "conv"):
            raise ValueError(f"architecture must be 'mlp' or 'conv', got {architecture!r}")
        common.check_conditional(conditional, num_classes)
        self.clip_length = int(clip_length)
        self.sample_rate = int(sample_rate)
        self.num_classes = num_classes
        self.architecture = architecture
        self.latent_dim = latent_dim
        self.hidden = [int(h) for h in hidden]
        self.model_dim = model_dim
        self.num_layers = num_layers
        self.conditional = conditional
        self.beta = beta
        self.init_log_scale = float(init_log_scale)
        self.seed = seed
        classes = num_classes if conditional else 0
        args = (architecture, self.clip_length, latent_dim, self.hidden, classes, model_dim, num_layers)
        self.encoder = networks.vae_encoder(*args)
        self.decoder = networks.vae_decoder(*args)
        self.log_scale = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.init_log_scale),
                                         name="log_scale")
        self._init_elbo_state(seed)
        self.built = True

    def get_config(self):
        return {**super().get_config(), "clip_length": self.clip_length, "sample_rate": self.sample_rate,
                "num_classes": self.num_classes, "architecture": self.architecture, "latent_dim": self.latent_dim,
                "hidden": list(self.hidden), "model_dim": self.model_dim, "num_layers": self.num_layers,
                "conditional": self.conditional, "beta": self.beta, "init_log_scale": self.init_log_scale,
                "seed": self.seed}

    def encode(self, audio, labels=None):
        """Posterior parameters ``(mean, log_var)``, each ``(batch, latent_dim)``."""
        return self.encoder(self._with_labels(audio, labels), training=False)

    def decode(self, z, labels=None):
        """The likelihood's mean waveform ``(batch, clip_length)`` in [-1, 1]."""
        return self.decoder(self._with_labels(z, labels), training=False)

    def _images_from_latent(self, z, labels):
        return self.decode(z, labels)

    def reconstruct(self, audio, labels=None):
        mean, _ = self.encode(audio, labels)
        return self.decode(mean, labels)

    def call(self, inputs, training=False):
        audio, labels = (inputs[0], inputs[1]) if isinstance(inputs, (list, tuple)) else (inputs, None)
        mean, log_var = self.encoder(self._with_labels(audio, labels), training=training)
        return self.decoder(self._with_labels(self.reparameterize(mean, log_var), labels), training=training)

    def elbo_terms(self, audio, labels=None, eps=None, training=False):
        """Per-example ``(reconstruction NLL, KL)`` in nats, one posterior sample."""
        mean, log_var = self.encoder(self._with_labels(audio, labels), training=training)
        z = self.reparameterize(mean, log_var, eps)
        recon_mean = self.decoder(self._with_labels(z, labels), training=training)
        return losses.gaussian_nll(audio, recon_mean, self.log_scale), losses.gaussian_kl(mean, log_var)
