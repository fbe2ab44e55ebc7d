"""A MuseGAN-style piano-roll GAN (Dong et al. 2018) on the shared GAN loop."""

from __future__ import annotations

import keras

from aigc_tf import losses
from aigc_tf.models import common
from aigc_tf.models.gan import AdversarialTrainingMixin


@keras.saving.register_keras_serializable(package="aigc_tf")
class MuseGAN(AdversarialTrainingMixin, common.LatentSamplingMixin, common.TwoOptimizerMixin, common.SeedStateMixin,
              keras.Model):
    """Multi-voice piano rolls ``(bars, steps_per_bar, pitches, voices)`` in
    [-1, 1] from noise, MuseGAN's hybrid model with a shared and private
    generator, trained with WGAN-GP on :class:`aigc_tf.models.gan.AdversarialTrainingMixin`.

    Noise, ``latent_dim = z_dim * (2 + 2 * voices)``: a shared ``z`` for the
    phrase, a shared temporal ``z`` expanded by a temporal generator into one
    vector per bar, and per voice a private ``z`` and a private temporal ``z``
    (its own temporal generator). Each (bar, voice) gets the concatenation of
    the four, goes through the bar generator's shared layers (transposed
    convolutions over time and pitch, the same weights for every voice) and
    then the voice's private output layers (a weight matrix per voice:
    ``EinsumDense``). The critic reads each bar of each voice with shared
    convolutions and per-voice (private) channel mixing, then the voices
    together with shared convolutions, then across the bars
    (layer-normalised, as WGAN-GP's per-example penalty needs).

    Args:
        bars: bars per phrase (MuseGAN: 4).
        steps_per_beat: time grid; a bar of 4/4 has ``4 * steps_per_beat`` steps
            (a multiple of 4).
        pitch_low: MIDI pitch of the lowest row.
        num_pitches: pitch rows (a multiple of 4).
        voices: tracks (SATB: 4).
        z_dim: size of each of the ``2 + 2 * voices`` noise parts.
        filters: width of the generator's and critic's convolutions.
        loss: ``"wgan_gp"`` (MuseGAN), ``"hinge"`` or ``"bce"``.
        gp_weight: gradient-penalty weight.
        d_steps: critic updates per generator update (MuseGAN: 5).
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> gan = MuseGAN(bars=4, num_pitches=48, voices=4)
        >>> gan.compile()
        >>> gan.fit(dataset)  # {"rolls": (B, 4, 16, 48, 4)} in {-1, 1}
        >>> rolls = gan.generate(8, seed=0)  # (8, 4, 16, 48, 4) in [-1, 1]
    """

    batch_key = "rolls"
    value_range = "tanh"

    def __init__(self, bars: int = 4, steps_per_beat: int = 4, pitch_low: int = 36, num_pitches: int = 48,
                 voices: int = 4, z_dim: int = 32, filters: int = 64, loss: str = "wgan_gp", gp_weight: float = 10.0,
                 d_steps: int = 5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if loss not in losses.GAN_LOSSES:
            raise ValueError(f"unknown GAN loss {loss!r}; use one of {', '.join(losses.GAN_LOSSES)}")
        steps = 4 * steps_per_beat
        if steps % 4 or num_pitches % 4:
            raise ValueError(f"4 * steps_per_beat ({steps}) and num_pitches ({num_pitches}) must be multiples of 4")
        if d_steps < 1:
            raise ValueError(f"d_steps must be at least 1, got {d_steps}")
        self.bars = bars
        self.steps_per_beat = steps_per_beat
        self.pitch_low = pitch_low
        self.num_pitches = num_pitches
        self.voices = voices
        self.z_dim = z_dim
        self.filters = filters
        self.loss_name = loss
        self.gp_weight = gp_weight
        self.d_steps = d_steps
        self.seed = seed
        self.conditional = False
        self.num_classes = 0
        self.latent_dim = z_dim * (2 + 2 * voices)
        self.roll_shape = (bars, steps, num_pitches, voices)
        self.augment_policy = ()
        self.ema_generator = None
        self._d_batch_norm = False
        self._d_loss_fn, self._g_loss_fn = losses.GAN_LOSSES[loss]
        self.generator = self._build_generator()
        self.discriminator = self._build_discriminator()
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.real_score_tracker = keras.metrics.Mean(name="real_score")
        self.fake_score_tracker = keras.metrics.Mean(name="fake_score")
        self.built = True

    def get_config(self):
        return {**super().get_config(), "bars": self.bars, "steps_per_beat": self.steps_per_beat,
                "pitch_low": self.pitch_low, "num_pitches": self.num_pitches, "voices": self.voices,
                "z_dim": self.z_dim, "filters": self.filters, "loss": self.loss_name, "gp_weight": self.gp_weight,
                "d_steps": self.d_steps, "seed": self.seed}

    # ---------------------------------------------------------------- networks
    # Voices travel together: the shared layers see them in the batch dimension, and the private
    # (per-voice) layers are EinsumDense layers with one weight matrix per voice, so the graph has
    # no per-voice copies (tracing a WGAN-GP step stays cheap).
    def _build_generator(self):
        from keras import layers, ops

        d, v, bars, f = self.z_dim, self.voices, self.bars, self.filters
        steps, pitches = self.roll_shape[1], self.roll_shape[2]
        z = keras.Input((self.latent_dim,), name="z")
        parts = layers.Reshape((2 + 2 * v, d))(z)
        shared = parts[:, 0][:, None, None, :]  # (B, 1, 1, d)
        shared_time = layers.Dense(bars * d, name="temporal_shared")(parts[:, 1])
        shared_time = layers.ReLU()(layers.LayerNormalization()(layers.Reshape((bars, 1, d))(shared_time)))
        private = parts[:, 2 : 2 + v][:, None]  # (B, 1, v, d)
        # Each voice's own temporal generator: one weight matrix per voice.
        private_time = layers.EinsumDense("bvd,vdo->bvo", output_shape=(v, bars * d), bias_axes="vo",
                                          name="temporal_private")(parts[:, 2 + v :])
        private_time = layers.Permute((2, 1, 3))(layers.Reshape((v, bars, d))(private_time))  # (B, bars, v, d)
        private_time = layers.ReLU()(layers.LayerNormalization()(private_time))
        grid = ops.zeros_like(private_time)  # (B, bars, v, d): broadcasts the other three parts to it
        x = layers.Concatenate()([shared + grid, shared_time + grid, private + grid, private_time])
        x = ops.reshape(x, (-1, 4 * d))  # (B * bars * v, 4d)
        h0, w0 = steps // 4, pitches // 4
        x = layers.Dense(h0 * w0 * 2 * f, name="bar_dense")(x)
        x = layers.ReLU()(layers.LayerNormalization()(layers.Reshape((h0, w0, 2 * f))(x)))
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="same", name="bar_up1")(x)
        x = layers.ReLU()(layers.LayerNormalization()(x))
        x = layers.Conv2DTranspose(f // 2, 4, strides=2, padding="same", name="bar_up2")(x)  # (B bars v, h, w, f/2)
        x = layers.ReLU()(layers.LayerNormalization()(x))
        # (B * bars, h, w, v, f/2): then each voice's private layers.
        x = ops.transpose(ops.reshape(x, (-1, v, steps, pitches, f // 2)), (0, 2, 3, 1, 4))
        x = layers.EinsumDense("bhwvc,vco->bhwvo", output_shape=(steps, pitches, v, f // 2), bias_axes="vo",
                               name="private_hidden")(x)
        x = layers.ReLU()(x)
        x = layers.EinsumDense("bhwvc,vco->bhwvo", output_shape=(steps, pitches, v, 1), bias_axes="vo",
                               activation="tanh", name="private_out")(x)
        out = layers.Reshape(self.roll_shape)(ops.reshape(x, (-1, bars, steps, pitches, v)))
        return keras.Model(z, out, name="generator")

    def _build_discriminator(self):
        from keras import layers, ops

        f, v, bars = self.filters, self.voices, self.bars
        steps, pitches = self.roll_shape[1], self.roll_shape[2]
        rolls = keras.Input(self.roll_shape, name="rolls")
        # Every (bar, voice) through shared convolutions, then per-voice (private) channel mixing.
        x = ops.reshape(ops.transpose(rolls, (0, 1, 4, 2, 3)), (-1, steps, pitches, 1))
        x = layers.Conv2D(f // 2, (4, 12), strides=2, padding="same", name="voice_conv")(x)
        x = layers.LeakyReLU(0.2)(x)
        h, w = steps // 2, pitches // 2
        x = ops.transpose(ops.reshape(x, (-1, v, h, w, f // 2)), (0, 2, 3, 1, 4))  # (B bars, h, w, v, f/2)
        x = layers.EinsumDense("bhwvc,vco->bhwvo", output_shape=(h, w, v, f // 2), bias_axes="vo",
                               name="private_mix")(x)
        x = layers.LeakyReLU(0.2)(x)
        x = ops.reshape(x, (-1, h, w, v * (f // 2)))  # the voices together
        x = layers.Conv2D(f, 4, strides=2, padding="same", name="shared_conv")(x)
        x = layers.LeakyReLU(0.2)(layers.LayerNormalization()(x))
        x = ops.reshape(x, (-1, bars, (h // 2) * (w // 2) * f))
        x = layers.Dense(2 * f, name="bar_dense")(x)  # (B, bars, 2f)
        x = layers.LeakyReLU(0.2)(layers.LayerNormalization()(x))
        x = layers.Conv1D(2 * f, min(2, bars), padding="valid", name="across_bars")(x)
        x = layers.LeakyReLU(0.2)(x)
        x = layers.Flatten()(x)
        return keras.Model(rolls, layers.Dense(1, name="critic")(x), name="discriminator")

    # --------------------------------------------------------------- outputs
    def _images_from_latent(self, z, labels):
        return self(z, training=False)
