"""Networks of the audio models: WaveGAN's (Donahue et al. 2019) 1-D
transposed-convolution generator and phase-shuffled discriminator, SpecGAN's
2-D DCGAN pair, and the waveform VAE's encoders and decoders.

Shapes: waveforms are ``(batch, samples)``; inside the 1-D networks
``(batch, samples, channels)``; spectrograms ``(batch, frames, bins, 1)``.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers


@keras.saving.register_keras_serializable(package="aigc_tf")
class PhaseShuffle(layers.Layer):
    """WaveGAN's phase shuffle: in training, shift each example's feature map
    in time by a random ``n`` in ``[-radius, radius]``, filling the gap by
    reflection, so the discriminator cannot judge a clip by the phase of the
    generator's upsampling artefacts. Identity at inference.

    Args:
        radius: largest shift in samples (the paper's ``n = 2``).
        seed: seed of the layer's ``SeedGenerator``.
    """

    def __init__(self, radius: int = 2, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.radius = radius
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def shift(self, x, shifts):
        """``x`` ``(batch, time, channels)`` shifted right by ``shifts`` ``(batch,)`` (reflect-padded)."""
        r = self.radius
        length = tf.shape(x)[1]
        padded = tf.pad(x, [[0, 0], [r, r], [0, 0]], mode="REFLECT")
        # Output position t reads padded position t + r - shift.
        index = tf.range(length)[None, :] + r - tf.cast(shifts, tf.int32)[:, None]
        return tf.gather(padded, index, batch_dims=1)

    def call(self, x, training=False):
        if not training or self.radius == 0:
            return x
        shifts = keras.random.randint((tf.shape(x)[0],), -self.radius, self.radius + 1, seed=self.seed_generator)
        return self.shift(x, shifts)

    def get_config(self):
        return {**super().get_config(), "radius": self.radius, "seed": self.seed}


@keras.saving.register_keras_serializable(package="aigc_tf")
class LabelFiLM(layers.Layer):
    """Feature-wise linear modulation by a class label (Perez et al. 2018):
    ``h * (1 + gamma[y]) + beta[y]``, one scale and one shift per channel and
    class, so every layer of a generator hears which class it is drawing, not
    only the first. Starts as the identity (``gamma`` and ``beta`` zero).

    Args:
        num_classes: number of labels.
    Inputs: ``[h (batch, ..., channels), labels (batch,) int]``.
    """

    def __init__(self, num_classes: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes

    def build(self, input_shape):
        channels = input_shape[0][-1]
        self.gamma = self.add_weight(shape=(self.num_classes, channels), initializer="zeros", name="gamma")
        self.beta = self.add_weight(shape=(self.num_classes, channels), initializer="zeros", name="beta")

    def call(self, inputs):
        h, labels = inputs
        labels = keras.ops.cast(labels, "int32")
        per_example = (-1,) + (1,) * (len(h.shape) - 2) + (h.shape[-1],)
        gamma = keras.ops.reshape(keras.ops.cast(keras.ops.take(self.gamma, labels, axis=0), h.dtype), per_example)
        beta = keras.ops.reshape(keras.ops.cast(keras.ops.take(self.beta, labels, axis=0), h.dtype), per_example)
        return h * (1.0 + gamma) + beta

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


def wave_layers(clip_length: int, num_layers: int, stride: int = 4) -> int:
    """The length the 1-D stack starts from (``clip_length / stride**num_layers``); checks divisibility."""
    factor = stride**num_layers
    if clip_length % factor or clip_length < factor:
        raise ValueError(f"clip_length {clip_length} must be a multiple of {stride}**{num_layers} = {factor} "
                         f"(WaveGAN upsamples by {stride} per layer); change data.clip_length or model.num_layers")
    return clip_length // factor


def _label_input(num_classes: int):
    return layers.Input((), dtype="int32", name="labels") if num_classes else None


def _with_label_embedding(z, labels, num_classes: int, dim: int):
    """``z`` concatenated with a learnt embedding of ``labels`` (conditional generators)."""
    if not num_classes:
        return z
    return layers.Concatenate()([z, layers.Embedding(num_classes, dim, name="label_embedding")(labels)])


def _film(h, labels, num_classes: int, label_film: bool, name: str):
    """``h`` modulated by the label (:class:`LabelFiLM`) when the generator is conditional and ``label_film``."""
    return LabelFiLM(num_classes, name=name)([h, labels]) if num_classes and label_film else h


def _projection_logit(features, labels, num_classes: int, aux_classifier: bool = False):
    """``dense(h) + <embed(y), h>`` (the projection discriminator, Miyato & Koyama 2018); with
    ``aux_classifier``, ``[logit, class_logits]`` with a dense class head on the same features (AC-GAN)."""
    logit = layers.Dense(1, name="logit")(features)
    if num_classes:
        embedded = layers.Embedding(num_classes, features.shape[-1], name="label_projection")(labels)
        logit = logit + keras.ops.sum(embedded * features, axis=-1, keepdims=True)
    if aux_classifier:
        return [logit, layers.Dense(num_classes, name="aux_classifier")(features)]
    return logit


def wavegan_generator(clip_length: int, latent_dim: int, model_dim: int, num_layers: int, num_classes: int = 0,
                      kernel_size: int = 25, stride: int = 4, label_film: bool = False, name: str = "generator"):
    """``z`` (and labels) -> waveform ``(batch, clip_length)`` in [-1, 1].

    Dense to ``(L0, d * 2**(k-1))``, then ``k`` transposed convolutions of
    stride 4 halving the channels (ReLU), the last to one channel (tanh):
    the paper's 16,384-sample model is ``k = 5``, ``d = 64``, ``L0 = 16``.
    ``label_film``: also modulate every hidden layer by the label (:class:`LabelFiLM`).
    """
    start = wave_layers(clip_length, num_layers, stride)
    z = layers.Input((latent_dim,), name="z")
    labels = _label_input(num_classes)
    h = _with_label_embedding(z, labels, num_classes, min(latent_dim, 32))
    channels = model_dim * 2 ** (num_layers - 1)
    h = layers.Dense(start * channels, name="project")(h)
    h = layers.Reshape((start, channels))(h)
    h = _film(layers.ReLU()(h), labels, num_classes, label_film, "film_project")
    for i in range(num_layers):
        last = i == num_layers - 1
        channels = 1 if last else max(model_dim * 2 ** (num_layers - 2 - i), 1)
        h = layers.Conv1DTranspose(channels, kernel_size, strides=stride, padding="same", name=f"upconv_{i}")(h)
        h = layers.Activation("tanh")(h) if last else _film(layers.ReLU()(h), labels, num_classes, label_film,
                                                             f"film_{i}")
    out = layers.Reshape((clip_length,), name="waveform")(h)
    return keras.Model([z, labels] if num_classes else z, out, name=name)


def wavegan_discriminator(clip_length: int, model_dim: int, num_layers: int, num_classes: int = 0,
                          phase_shuffle: int = 2, kernel_size: int = 25, stride: int = 4, seed: int | None = None,
                          aux_classifier: bool = False, name: str = "discriminator"):
    """Waveform -> logit: ``k`` strided convolutions doubling the channels
    (LeakyReLU 0.2, phase shuffle after each but the last), then a dense
    logit (projection on the labels when conditional). No normalisation: the
    WGAN-GP penalty is per example. ``aux_classifier``: also class logits (AC-GAN)."""
    wave_layers(clip_length, num_layers, stride)
    x = layers.Input((clip_length,), name="audio")
    labels = _label_input(num_classes)
    h = layers.Reshape((clip_length, 1))(x)
    for i in range(num_layers):
        h = layers.Conv1D(model_dim * 2**i, kernel_size, strides=stride, padding="same", name=f"conv_{i}")(h)
        h = layers.LeakyReLU(0.2)(h)
        if i < num_layers - 1 and phase_shuffle:
            h = PhaseShuffle(phase_shuffle, seed=None if seed is None else seed + i, name=f"phase_shuffle_{i}")(h)
    h = layers.Flatten()(h)
    return keras.Model([x, labels] if num_classes else x, _projection_logit(h, labels, num_classes, aux_classifier),
                       name=name)


def spec_layers(shape: tuple[int, int]) -> tuple[int, tuple[int, int]]:
    """``(k, (h0, w0))``: ``k`` doublings from ``(h0, w0)`` (the smaller side 4) to ``shape``."""
    k = int(math.log2(min(shape) // 4)) if min(shape) >= 4 else 0
    if k < 1 or any(s % 2**k for s in shape) or min(shape) != 4 * 2**k:
        raise ValueError(f"spectrogram shape {shape} must be 4 * 2**k on its shorter side and a multiple of 2**k "
                         f"on the other (frames = clip_length / frame_step, bins = frame_length / 2)")
    return k, (shape[0] // 2**k, shape[1] // 2**k)


def specgan_generator(shape: tuple[int, int], latent_dim: int, model_dim: int, num_classes: int = 0,
                      kernel_size: int = 5, label_film: bool = False, name: str = "generator"):
    """``z`` (and labels) -> normalised log-magnitude ``(batch, frames, bins, 1)`` in [-1, 1]:
    SpecGAN's DCGAN generator (5x5 transposed convolutions of stride 2, ReLU, tanh).
    ``label_film``: also modulate every hidden layer by the label (:class:`LabelFiLM`)."""
    k, (h0, w0) = spec_layers(shape)
    z = layers.Input((latent_dim,), name="z")
    labels = _label_input(num_classes)
    h = _with_label_embedding(z, labels, num_classes, min(latent_dim, 32))
    channels = model_dim * 2 ** (k - 1)
    h = layers.Dense(h0 * w0 * channels, name="project")(h)
    h = layers.ReLU()(layers.Reshape((h0, w0, channels))(h))
    h = _film(h, labels, num_classes, label_film, "film_project")
    for i in range(k):
        last = i == k - 1
        channels = 1 if last else max(model_dim * 2 ** (k - 2 - i), 1)
        h = layers.Conv2DTranspose(channels, kernel_size, strides=2, padding="same", name=f"upconv_{i}")(h)
        h = layers.Activation("tanh")(h) if last else _film(layers.ReLU()(h), labels, num_classes, label_film,
                                                             f"film_{i}")
    return keras.Model([z, labels] if num_classes else z, h, name=name)


def specgan_discriminator(shape: tuple[int, int], model_dim: int, num_classes: int = 0, kernel_size: int = 5,
                          aux_classifier: bool = False, name: str = "discriminator"):
    k, _ = spec_layers(shape)
    x = layers.Input((*shape, 1), name="spectrogram")
    labels = _label_input(num_classes)
    h = x
    for i in range(k):
        h = layers.Conv2D(model_dim * 2**i, kernel_size, strides=2, padding="same", name=f"conv_{i}")(h)
        h = layers.LeakyReLU(0.2)(h)
    h = layers.Flatten()(h)
    return keras.Model([x, labels] if num_classes else x, _projection_logit(h, labels, num_classes, aux_classifier),
                       name=name)


def _hidden(h, labels, num_classes):
    """Condition an MLP/conv code on labels by concatenating a one-hot vector."""
    if not num_classes:
        return h
    return layers.Concatenate()([h, layers.CategoryEncoding(num_classes, output_mode="one_hot")(labels)])


def vae_encoder(architecture: str, clip_length: int, latent_dim: int, hidden: list, num_classes: int = 0,
                model_dim: int = 16, num_layers: int = 3):
    """Waveform -> ``(mean, log_var)``: an MLP (``hidden`` units, ReLU) or a
    stride-4 conv1d stack (``model_dim * 2**i`` channels)."""
    x = layers.Input((clip_length,), name="audio")
    labels = _label_input(num_classes)
    if architecture == "mlp":
        h = x
        for i, units in enumerate(hidden):
            h = layers.Dense(units, activation="relu", name=f"dense_{i}")(h)
    else:
        wave_layers(clip_length, num_layers)
        h = layers.Reshape((clip_length, 1))(x)
        for i in range(num_layers):
            h = layers.Conv1D(model_dim * 2**i, 25, strides=4, padding="same", name=f"conv_{i}")(h)
            h = layers.LeakyReLU(0.2)(h)
        h = layers.Flatten()(h)
    h = _hidden(h, labels, num_classes)
    outputs = [layers.Dense(latent_dim, name="mean")(h), layers.Dense(latent_dim, name="log_var")(h)]
    return keras.Model([x, labels] if num_classes else x, outputs, name="encoder")


def vae_decoder(architecture: str, clip_length: int, latent_dim: int, hidden: list, num_classes: int = 0,
                model_dim: int = 16, num_layers: int = 3):
    """``z`` -> waveform mean in [-1, 1] (tanh): the encoder mirrored."""
    z = layers.Input((latent_dim,), name="z")
    labels = _label_input(num_classes)
    h = _hidden(z, labels, num_classes)
    if architecture == "mlp":
        for i, units in enumerate(reversed(list(hidden))):
            h = layers.Dense(units, activation="relu", name=f"dense_{i}")(h)
        out = layers.Dense(clip_length, activation="tanh", name="waveform")(h)
    else:
        start = wave_layers(clip_length, num_layers)
        channels = model_dim * 2 ** (num_layers - 1)
        h = layers.Dense(start * channels, name="project")(h)
        h = layers.LeakyReLU(0.2)(layers.Reshape((start, channels))(h))
        for i in range(num_layers):
            last = i == num_layers - 1
            channels = 1 if last else model_dim * 2 ** (num_layers - 2 - i)
            h = layers.Conv1DTranspose(channels, 25, strides=4, padding="same", name=f"upconv_{i}")(h)
            h = layers.Activation("tanh")(h) if last else layers.LeakyReLU(0.2)(h)
        out = layers.Reshape((clip_length,), name="waveform")(h)
    return keras.Model([z, labels] if num_classes else z, out, name="decoder")
