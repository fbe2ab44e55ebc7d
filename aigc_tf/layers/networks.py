"""Functional generator / discriminator / encoder / decoder networks.

Each builder returns a built ``keras.Model`` (functional). Conditional
networks take ``[x, labels]`` with ``labels`` int32 of shape ``(batch,)``.
Architectures follow the source documents (see ``shared/SOURCES.md``):

* MLP GAN: G 100 -> 256 -> 512 -> 1024 -> H*W*C (LeakyReLU 0.2, tanh);
  D H*W*C -> 1024 -> 512 -> 256 -> 1 (LeakyReLU 0.2, Dropout 0.3). D returns
  logits; the sigmoid lives in the loss for numerical stability.
* DCGAN, two layouts (:func:`dcgan_layout`):

  - ``fixed`` (release 0.1.0; what 28x28 uses): G dense -> (H/4, W/4, 4b) ->
    up 2b -> up b -> conv C; D conv b -> 2b -> 4b, dense 1.
  - ``pyramid`` (square 4 * 2^k pixels: 8, 16, 32, 64, ...): G dense ->
    4x4 x b*2^(k-1), then one stride-2 transposed conv per doubling, channels
    halving, the last one to C (64 px, b=64: 512-256-128-64-3, the PyTorch
    DCGAN tutorial's generator); D the mirror, one stride-2 conv per halving
    (b -> 2b -> ... at 4x4) and a final 4x4 valid convolution to one logit.

  BatchNorm + ReLU and tanh in G; LeakyReLU 0.2 and normalisation in D (none
  after its first layer). Conditional D uses a projection head (Miyato &
  Koyama 2018).
* VAEs: MLP 512 -> 256 -> 128 (LeakyReLU 0.2) or conv 32 -> 64 stride-2
  encoders, mirrored decoders that output Bernoulli logits.

BatchNormalization is ``synchronized=True``: under ``MirroredStrategy`` the
batch statistics are all-reduced, so a step on N replicas equals a step on one
device with the whole batch (a no-op without a strategy).
"""

from __future__ import annotations

import keras
from keras import layers


def _single(inputs: list):
    """A lone input is passed bare, so calling the model with a tensor matches its structure."""
    return inputs[0] if len(inputs) == 1 else inputs


def _label_input():
    return keras.Input(shape=(), dtype="int32", name="labels")


def _norm(kind: str, name: str):
    if kind == "batch":
        return layers.BatchNormalization(synchronized=True, name=name)
    if kind == "layer":
        return layers.LayerNormalization(name=name)
    if kind == "none":
        return layers.Identity(name=name)
    raise ValueError(f"unknown normalisation {kind!r}; use batch, layer or none")


def _condition(z, labels, num_classes: int, dim: int, name: str):
    """Concatenate a learned label embedding to a flat tensor."""
    emb = layers.Embedding(num_classes, dim, name=f"{name}_label_embedding")(labels)
    return layers.Concatenate(name=f"{name}_concat")([z, emb])


DCGAN_LAYOUTS = ("auto", "fixed", "pyramid")
PYRAMID_SIZES = tuple(4 * 2**k for k in range(1, 7))  # 8 .. 256


def dcgan_layout(image_shape, layout: str = "auto") -> tuple[str, int]:
    """``(layout, stages)`` of the DCGAN networks for ``image_shape``.

    ``auto`` picks ``fixed`` for 28x28 (MNIST, digits: two stages from 7x7, as
    in release 0.1.0) and ``pyramid`` otherwise; ``stages`` is the number of
    up-samplings in G (2 for fixed, k for a 4 * 2^k pyramid).
    """
    h, w, _ = image_shape
    if layout not in DCGAN_LAYOUTS:
        raise ValueError(f"unknown DCGAN layout {layout!r}; use one of {', '.join(DCGAN_LAYOUTS)}")
    if layout == "auto":
        layout = "fixed" if (h, w) == (28, 28) else "pyramid"
    if layout == "fixed":
        check_image_shape(image_shape, "dcgan")
        return "fixed", 2
    if h != w or h not in PYRAMID_SIZES:
        raise ValueError(
            f"the DCGAN supports square images of 28 pixels (two stages from 7x7) or "
            f"{', '.join(map(str, PYRAMID_SIZES))} (one stage per doubling from 4x4), got {h}x{w}; "
            "set data.image_size to one of them"
        )
    return "pyramid", PYRAMID_SIZES.index(h) + 1


def check_image_shape(image_shape, architecture: str) -> None:
    h, w, c = image_shape
    if architecture in ("dcgan", "conv") and (h % 4 or w % 4):
        raise ValueError(
            f"the {architecture} networks need image sides divisible by 4, got {h}x{w}; "
            "set data.image_size to 28, 32 or 64"
        )
    if c not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {c}")


def build_generator(architecture, image_shape, latent_dim, num_classes=0, base_filters=64, embedding_dim=50,
                    name="generator", layout="fixed"):
    h, w, c = image_shape
    z_in = keras.Input(shape=(latent_dim,), name="z")
    inputs = [z_in]
    x = z_in
    if num_classes:
        y_in = _label_input()
        inputs.append(y_in)
        x = _condition(x, y_in, num_classes, embedding_dim, "g")
    if architecture == "mlp":
        for i, units in enumerate((256, 512, 1024)):
            x = layers.Dense(units, name=f"g_dense{i}")(x)
            x = layers.LeakyReLU(0.2, name=f"g_lrelu{i}")(x)
        x = layers.Dense(h * w * c, activation="tanh", name="g_out")(x)
        out = layers.Reshape((h, w, c), name="g_image")(x)
    elif architecture == "dcgan":
        b = base_filters
        layout, stages = dcgan_layout(image_shape, layout)
        if layout == "fixed":
            base, widths = (h // 4, w // 4), (4 * b, 2 * b, b)
        else:  # 4x4, then k - 1 halving stages before the last up-sampling to C
            base, widths = (4, 4), tuple(b * 2 ** (stages - 1 - i) for i in range(stages))
        x = layers.Dense(base[0] * base[1] * widths[0], use_bias=False, name="g_project")(x)
        if layout == "fixed":  # 0.1.0 normalises each of the H/4*W/4*4b units
            x = layers.ReLU(name="g_relu0")(_norm("batch", "g_bn0")(x))
            x = layers.Reshape((*base, widths[0]), name="g_reshape")(x)
        else:  # per channel, as every later stage (and DCGAN's first transposed conv)
            x = layers.Reshape((*base, widths[0]), name="g_reshape")(x)
            x = layers.ReLU(name="g_relu0")(_norm("batch", "g_bn0")(x))
        for i, f in enumerate(widths[1:], start=1):
            x = layers.Conv2DTranspose(f, 4, strides=2, padding="same", use_bias=False, name=f"g_up{i}")(x)
            x = _norm("batch", f"g_bn{i}")(x)
            x = layers.ReLU(name=f"g_relu{i}")(x)
        if layout == "fixed":
            out = layers.Conv2D(c, 3, padding="same", activation="tanh", name="g_image")(x)
        else:
            out = layers.Conv2DTranspose(c, 4, strides=2, padding="same", activation="tanh", name="g_image")(x)
    else:
        raise ValueError(f"unknown GAN architecture {architecture!r}; use mlp or dcgan")
    return keras.Model(_single(inputs), out, name=name)


def build_discriminator(architecture, image_shape, num_classes=0, base_filters=64, norm="batch", dropout=0.3, embedding_dim=50,
                        layout="fixed"):
    x_in = keras.Input(shape=tuple(image_shape), name="images")
    inputs = [x_in]
    if num_classes:
        y_in = _label_input()
        inputs.append(y_in)
    if architecture == "mlp":
        x = layers.Flatten(name="d_flatten")(x_in)
        if num_classes:
            x = _condition(x, y_in, num_classes, embedding_dim, "d")
        for i, units in enumerate((1024, 512, 256)):
            x = layers.Dense(units, name=f"d_dense{i}")(x)
            x = layers.LeakyReLU(0.2, name=f"d_lrelu{i}")(x)
            if dropout:
                x = layers.Dropout(dropout, name=f"d_dropout{i}")(x)
        logits = layers.Dense(1, name="d_logits")(x)
    elif architecture == "dcgan":
        b = base_filters
        layout, stages = dcgan_layout(image_shape, layout)
        # (filters, stride) after the first conv: fixed ends on a stride-1 4b
        # conv at H/4; the pyramid halves down to 4x4.
        plan = ((2 * b, 2), (4 * b, 1)) if layout == "fixed" else tuple((b * 2**i, 2) for i in range(1, stages))
        x = layers.Conv2D(b, 4, strides=2, padding="same", name="d_conv0")(x_in)
        x = layers.LeakyReLU(0.2, name="d_lrelu0")(x)
        for i, (f, s) in enumerate(plan, start=1):
            # A bias before batch norm is cancelled by it (its gradient is pure
            # rounding noise, which Adam would amplify to full-size steps).
            x = layers.Conv2D(
                f, 4 if s == 2 else 3, strides=s, padding="same", use_bias=norm != "batch", name=f"d_conv{i}"
            )(x)
            x = _norm(norm, f"d_norm{i}")(x)
            x = layers.LeakyReLU(0.2, name=f"d_lrelu{i}")(x)
        features = layers.Flatten(name="d_flatten")(x)
        if layout == "fixed":
            logits = layers.Dense(1, name="d_logits")(features)
        else:
            logits = layers.Flatten(name="d_logits")(layers.Conv2D(1, 4, padding="valid", name="d_final_conv")(x))
        if num_classes:
            # Projection discriminator: logit += <embed(y), phi(x)>.
            emb = layers.Embedding(num_classes, features.shape[-1], name="d_label_projection")(y_in)
            proj = layers.Dot(axes=1, name="d_project")([emb, features])
            logits = layers.Add(name="d_logits_cond")([logits, proj])
    else:
        raise ValueError(f"unknown GAN architecture {architecture!r}; use mlp or dcgan")
    return keras.Model(_single(inputs), logits, name="discriminator")


def build_encoder(architecture, image_shape, latent_dim, num_classes=0):
    x_in = keras.Input(shape=tuple(image_shape), name="images")
    inputs = [x_in]
    if architecture == "mlp":
        x = layers.Flatten(name="e_flatten")(x_in)
        hidden = (512, 256, 128)
    elif architecture == "conv":
        x = x_in
        for i, f in enumerate((32, 64)):
            x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", name=f"e_conv{i}")(x)
        x = layers.Flatten(name="e_flatten")(x)
        hidden = (256,)
    else:
        raise ValueError(f"unknown VAE architecture {architecture!r}; use mlp or conv")
    if num_classes:
        y_in = _label_input()
        inputs.append(y_in)
        x = layers.Concatenate(name="e_concat")([x, layers.CategoryEncoding(num_classes, "one_hot", name="e_onehot")(y_in)])
    for i, units in enumerate(hidden):
        x = layers.Dense(units, name=f"e_dense{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"e_lrelu{i}")(x)
    mean = layers.Dense(latent_dim, name="z_mean")(x)
    log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    return keras.Model(_single(inputs), [mean, log_var], name="encoder")


def build_decoder(architecture, image_shape, latent_dim, num_classes=0):
    h, w, c = image_shape
    z_in = keras.Input(shape=(latent_dim,), name="z")
    inputs = [z_in]
    x = z_in
    if num_classes:
        y_in = _label_input()
        inputs.append(y_in)
        x = layers.Concatenate(name="d_concat")([x, layers.CategoryEncoding(num_classes, "one_hot", name="d_onehot")(y_in)])
    if architecture == "mlp":
        for i, units in enumerate((128, 256, 512)):
            x = layers.Dense(units, name=f"d_dense{i}")(x)
            x = layers.LeakyReLU(0.2, name=f"d_lrelu{i}")(x)
        x = layers.Dense(h * w * c, name="d_logits")(x)
        logits = layers.Reshape((h, w, c), name="d_image_logits")(x)
    elif architecture == "conv":
        x = layers.Dense(256, name="d_dense0")(x)
        x = layers.LeakyReLU(0.2, name="d_lrelu0")(x)
        x = layers.Dense((h // 4) * (w // 4) * 64, activation="relu", name="d_project")(x)
        x = layers.Reshape((h // 4, w // 4, 64), name="d_reshape")(x)
        for i, f in enumerate((64, 32), start=1):
            x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu", name=f"d_up{i}")(x)
        logits = layers.Conv2D(c, 3, padding="same", name="d_image_logits")(x)
    else:
        raise ValueError(f"unknown VAE architecture {architecture!r}; use mlp or conv")
    return keras.Model(_single(inputs), logits, name="decoder")
