"""GAN: generator + discriminator with alternating updates in ``train_step``."""

from __future__ import annotations

import keras
import tensorflow as tf

from aigc_tf import losses
from aigc_tf.layers import augment as diffaug
from aigc_tf.layers import networks
from aigc_tf.models import common


class AdversarialTrainingMixin:
    """The GAN training loop, shared by every GAN here (images, audio).

    The model sets ``generator`` and ``discriminator`` (Keras models taking
    ``z`` / data, or ``[z, labels]`` / ``[data, labels]`` when
    ``conditional``), ``ema_generator`` (or None), ``augment_policy``
    (DiffAugment policies, ``()`` for none), ``_d_batch_norm``,
    ``loss_name``, ``gp_weight``, ``d_steps``, ``seed_generator``, the
    loss functions ``_d_loss_fn`` / ``_g_loss_fn`` and the four trackers
    (six with an auxiliary classifier: :meth:`_init_aux_trackers`).
    ``batch_key`` names the data in a batch dict; ``_prepare_real`` maps it
    to what the discriminator sees (a SpecGAN's spectrogram).

    Auxiliary classifier (AC-GAN, Odena et al. 2017, as Gulrajani et al.
    2017 combine it with WGAN-GP): when ``aux_weight > 0`` the
    discriminator returns ``[score, class_logits]``; the discriminator adds
    ``aux_weight`` times the cross-entropy of the real batch's labels, the
    generator ``aux_weight`` times that of the labels it was asked for.
    The gradient penalty acts on the score alone.
    """

    batch_key = "images"
    # Logits and losses in float32, each loss scaled by its own optimizer (see models.common).
    mixed_precision = True
    aux_weight = 0.0  # no auxiliary classifier unless a model sets one

    def _unpack(self, data):
        real, labels, noise = common.unpack_batch(data, self.batch_key)
        return self._prepare_real(real), labels, noise

    def _prepare_real(self, real):
        return real

    @property
    def metrics(self):
        trackers = [self.d_loss_tracker, self.g_loss_tracker, self.real_score_tracker, self.fake_score_tracker]
        return trackers + ([self.real_class_loss_tracker, self.fake_class_loss_tracker] if self.aux_weight else [])

    def _init_aux_trackers(self):
        """The auxiliary classifier's two cross-entropies (AC-GAN), logged apart from the losses."""
        self.real_class_loss_tracker = keras.metrics.Mean(name="real_class_loss")
        self.fake_class_loss_tracker = keras.metrics.Mean(name="fake_class_loss")

    # ------------------------------------------------------------- generation
    def _g_inputs(self, z, labels):
        if self.conditional:
            if labels is None:
                raise ValueError("this GAN is conditional: pass labels")
            return [tf.cast(z, self.compute_dtype), tf.cast(labels, tf.int32)]
        return z

    def _d_inputs(self, images, labels):
        if self.conditional:
            return [tf.cast(images, self.compute_dtype), tf.cast(labels, tf.int32)]
        return images

    def call(self, inputs, training=False):
        """``inputs`` is ``z``, or ``[z, labels]`` / ``{"z", "labels"}`` when conditional."""
        if isinstance(inputs, dict):
            z, labels = inputs["z"], inputs.get("labels")
        elif isinstance(inputs, (list, tuple)):
            z, labels = inputs[0], (inputs[1] if len(inputs) > 1 else None)
        else:
            z, labels = inputs, None
        return common.float32(self.sampling_generator(self._g_inputs(z, labels), training=training))

    @property
    def sampling_generator(self):
        """The network samples come from: the moving average when there is one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def _images_from_latent(self, z, labels):
        return self(z if not self.conditional else [z, labels], training=False)  # in [-1, 1]

    # --------------------------------------------------------------- training
    def _heads(self, outputs):
        """``(score, class_logits)`` in float32; ``class_logits`` is None without an auxiliary classifier."""
        if isinstance(outputs, (list, tuple)):
            return common.float32(*outputs)
        return common.float32(outputs), None

    def _disc_heads(self, images, labels, training):
        """Discriminator ``(score, class_logits)``; in training, after this call's own DiffAugment draw."""
        if training and self.augment_policy:
            images = diffaug.diff_augment(images, self.augment_policy, common.replica_seed(self.seed_generator))
        return self._heads(self.discriminator(self._d_inputs(images, labels), training=training))

    def _disc(self, images, labels, training):
        """Discriminator scores (the critic's output the losses and the gradient penalty use)."""
        return self._disc_heads(images, labels, training)[0]

    def _class_loss(self, class_logits, labels):
        """Mean cross-entropy of ``labels`` under the auxiliary classifier (0 without one)."""
        if class_logits is None:
            return tf.constant(0.0)
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            tf.cast(labels, tf.int32), class_logits, from_logits=True))

    def _real_fake_heads(self, images, fake, labels, training):
        """``(score, class_logits)`` of the real and of the generated batch.

        Both batches are augmented in one call (each image draws its own
        transform). Without batch norm the discriminator treats examples
        independently, so both also go through one discriminator call of
        twice the batch; batch norm needs separate real and fake batches
        (its statistics would mix).
        """
        both = tf.concat([images, tf.cast(fake, images.dtype)], 0)
        both_labels = None if labels is None else tf.concat([labels, labels], 0)
        if training and self.augment_policy:
            both = diffaug.diff_augment(both, self.augment_policy, common.replica_seed(self.seed_generator))
        if self._d_batch_norm:
            real, fake = tf.split(both, 2, axis=0)
            return (self._heads(self.discriminator(self._d_inputs(real, labels), training=training)),
                    self._heads(self.discriminator(self._d_inputs(fake, labels), training=training)))
        score, class_logits = self._heads(self.discriminator(self._d_inputs(both, both_labels), training=training))
        real_score, fake_score = tf.split(score, 2, axis=0)
        if class_logits is None:
            return (real_score, None), (fake_score, None)
        real_classes, fake_classes = tf.split(class_logits, 2, axis=0)
        return (real_score, real_classes), (fake_score, fake_classes)

    def _d_loss(self, images, labels, fake, training):
        (real_logits, real_classes), (fake_logits, _) = self._real_fake_heads(images, fake, labels, training)
        d_loss = self._d_loss_fn(real_logits, fake_logits)
        real_class_loss = self._class_loss(real_classes, labels)
        if self.aux_weight:
            d_loss = d_loss + self.aux_weight * real_class_loss
        if self.loss_name == "wgan_gp":
            eps = common.uniform(tf.concat([tf.shape(images)[:1], tf.ones([tf.rank(images) - 1], tf.int32)], 0),
                                 self.seed_generator)
            penalty = losses.gradient_penalty(lambda x: self._disc(x, labels, training), images, fake, eps)
            d_loss = d_loss + self.gp_weight * penalty
        return d_loss, real_logits, fake_logits, real_class_loss

    def _d_update(self, images, labels, fake):
        """One discriminator step against ``fake`` (a constant here)."""
        fake = tf.stop_gradient(fake)
        with tf.GradientTape() as tape:
            d_loss, real_logits, fake_logits, real_class_loss = self._d_loss(images, labels, fake, True)
            scaled = self.d_optimizer.scale_loss(common.replica_scale(d_loss))
        grads = tape.gradient(scaled, self.discriminator.trainable_variables)
        common.apply_gradients(self.d_optimizer, grads, self.discriminator.trainable_variables)
        return d_loss, real_logits, fake_logits, real_class_loss

    def train_step(self, data):
        """``d_steps`` discriminator updates, then one generator update.

        The generator runs forward once for the last discriminator update
        and its output is reused by the generator update (as the standard
        PyTorch loop does): the generator's weights do not change in
        between, so a second forward pass would compute the same images.
        The generator's gradient flows through the updated discriminator.
        """
        images, labels, noise = self._unpack(data)
        batch = tf.shape(images)[0]
        for _ in range(self.d_steps - 1):
            z = noise if noise is not None else self.sample_latent(batch)
            self._d_update(images, labels, self.generator(self._g_inputs(z, labels), training=True))
        z = noise if noise is not None else self.sample_latent(batch)
        with tf.GradientTape() as tape:
            fake = self.generator(self._g_inputs(z, labels), training=True)
            with tape.stop_recording():
                d_loss, real_logits, fake_logits, real_class_loss = self._d_update(images, labels, fake)
            fake_score, fake_classes = self._disc_heads(fake, labels, True)
            g_loss = self._g_loss_fn(fake_score)
            fake_class_loss = self._class_loss(fake_classes, labels)
            if self.aux_weight:
                g_loss = g_loss + self.aux_weight * fake_class_loss
            scaled = self.g_optimizer.scale_loss(common.replica_scale(g_loss))
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        common.apply_gradients(self.g_optimizer, grads, self.generator.trainable_variables)
        if self.ema_generator is not None:
            self._update_ema(batch)
        return self._update_metrics(d_loss, g_loss, real_logits, fake_logits, real_class_loss, fake_class_loss)

    def _set_ema(self, ema_kimg: float, ema_rampup: float) -> None:
        if ema_kimg < 0 or ema_rampup < 0:
            raise ValueError(f"ema_kimg and ema_rampup must be >= 0, got {ema_kimg} and {ema_rampup}")
        self.ema_kimg = float(ema_kimg)
        self.ema_rampup = float(ema_rampup)

    def _init_ema_generator(self, build) -> None:
        """With ``ema_kimg > 0``, ``ema_generator``: the generator's moving average, a copy
        ``build(name)`` of the generator's network that starts equal to it and does not train."""
        self.ema_generator = None
        if self.ema_kimg > 0:
            self.ema_generator = build("ema_generator")
            self.ema_generator.trainable = False
            for e, g in zip(self.ema_generator.weights, self.generator.weights, strict=True):
                e.assign(g)
            self.ema_images = self.add_weight(shape=(), initializer="zeros", trainable=False, name="ema_images")

    def ema_beta(self, images_seen, global_batch):
        """Decay of the moving average for a step of ``global_batch`` images after ``images_seen``."""
        horizon = tf.constant(self.ema_kimg * 1000.0, tf.float32)
        if self.ema_rampup > 0:
            horizon = tf.minimum(horizon, tf.cast(images_seen, tf.float32) * self.ema_rampup)
        return tf.pow(0.5, tf.cast(global_batch, tf.float32) / tf.maximum(horizon, 1e-8))

    def _update_ema(self, batch):
        """``ema = beta * ema + (1 - beta) * live`` for every generator variable.

        The batch-norm moving statistics are averaged with the same decay as
        the weights (a forward pass of the average to measure its own would
        cost a quarter of the step). Variables are updated in cross-replica
        context, as optimizers do, so under ``MirroredStrategy`` every copy
        gets the same value.
        """
        # The images of this step over all replicas (a last batch may split
        # unevenly), so every replica computes the same decay.
        global_batch = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, tf.cast(batch, tf.float32)
        )
        beta = self.ema_beta(self.ema_images, global_batch)
        pairs = list(zip(self.ema_generator.weights, self.generator.weights, strict=True))

        def update(strategy, beta, global_batch):
            for e, g in pairs:
                strategy.extended.update(e.value, _average_into, args=(g.value, beta), group=False)
            strategy.extended.update(self.ema_images.value, lambda a, n: a.assign_add(tf.cast(n, a.dtype)),
                                     args=(global_batch,), group=False)

        tf.__internal__.distribute.interim.maybe_merge_call(update, tf.distribute.get_strategy(), beta, global_batch)

    def test_step(self, data):
        images, labels, noise = self._unpack(data)
        z = noise if noise is not None else self.sample_latent(tf.shape(images)[0])
        fake = self.generator(self._g_inputs(z, labels), training=False)
        (real_logits, real_classes), (fake_logits, fake_classes) = self._real_fake_heads(images, fake, labels, False)
        d_loss = self._d_loss_fn(real_logits, fake_logits)
        g_loss = self._g_loss_fn(fake_logits)
        real_class_loss, fake_class_loss = self._class_loss(real_classes, labels), self._class_loss(fake_classes, labels)
        return self._update_metrics(d_loss, g_loss, real_logits, fake_logits, real_class_loss, fake_class_loss)

    def _update_metrics(self, d_loss, g_loss, real_logits, fake_logits, real_class_loss, fake_class_loss):
        values = (d_loss, g_loss, tf.reduce_mean(real_logits), tf.reduce_mean(fake_logits))
        if self.aux_weight:
            values += (real_class_loss, fake_class_loss)
        return common.update_batch_means(self.metrics, values, tf.shape(real_logits)[0])


@keras.saving.register_keras_serializable(package="aigc_tf")
class GAN(AdversarialTrainingMixin, common.LatentSamplingMixin, common.TwoOptimizerMixin, common.SeedStateMixin,
          keras.Model):
    """Unconditional or class-conditional GAN (MLP or DCGAN networks).

    Each ``train_step`` does ``d_steps`` discriminator updates and one
    generator update with two optimizers. Images are in [-1, 1].

    Args:
        image_shape: ``(H, W, C)`` of the images.
        latent_dim: size of the latent vector ``z``.
        architecture: ``"mlp"`` (the source documents' MNIST GAN) or ``"dcgan"``.
        conditional: condition both networks on class labels.
        num_classes: number of classes (needed when ``conditional``).
        loss: ``"bce"`` (non-saturating), ``"hinge"`` or ``"wgan_gp"``.
        gp_weight: gradient-penalty weight for ``wgan_gp``.
        d_steps: discriminator updates per generator update (same real batch,
            fresh noise).
        base_filters: DCGAN width ``b`` (fixed layout: G 4b->2b->b, D
            b->2b->4b; pyramid: G from b*2^(k-1) at 4x4 halving to b, D the
            mirror).
        layout: DCGAN depth, ``"fixed"`` (two stages from H/4, release
            0.1.0's networks and the default here so its ``.keras`` files
            load), ``"pyramid"`` (grow from 4x4, one stage per doubling; square
            8..256 px) or ``"auto"`` (fixed at 28 px, else pyramid; what the
            ``dcgan``/``cgan`` configs use). Stored resolved.
        d_norm: discriminator normalisation, ``"batch"``, ``"layer"``,
            ``"none"`` or ``"auto"`` (layer norm for ``wgan_gp``, whose
            per-example penalty batch norm would break, else batch norm).
        dropout: MLP discriminator dropout.
        augment: DiffAugment policies applied to every discriminator input
            in training, real and generated alike: a comma-separated subset
            of ``translation,cutout`` (``""``: none, the 0.1.0 behaviour).
        ema_kimg: half-life of the generator's exponential moving average
            in thousands of images (``0``: no average, the 0.1.0 behaviour).
            With it, ``call``/``generate`` (samples, quality, evaluate,
            export) use the averaged generator while the live one trains.
        ema_rampup: the half-life is at most ``ema_rampup`` times the images
            seen so far (StyleGAN2-ADA), so a short run is not held at its
            early weights; ``0`` turns the ramp off.
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> gan = GAN(image_shape=(28, 28, 1), architecture="dcgan")
        >>> gan.compile()
        >>> gan.fit(dataset, epochs=1)  # dataset of {"images": ...} batches
        >>> images = gan.generate(16, seed=0)
    """

    value_range = "tanh"

    def __init__(
        self,
        image_shape: tuple = (28, 28, 1),
        latent_dim: int = 100,
        architecture: str = "dcgan",
        conditional: bool = False,
        num_classes: int = 0,
        loss: str = "bce",
        gp_weight: float = 10.0,
        d_steps: int = 1,
        base_filters: int = 64,
        layout: str = "fixed",
        d_norm: str = "auto",
        dropout: float = 0.3,
        augment: str = "",
        ema_kimg: float = 0.0,
        ema_rampup: float = 0.05,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss not in losses.GAN_LOSSES:
            raise ValueError(f"unknown GAN loss {loss!r}; use one of {', '.join(losses.GAN_LOSSES)}")
        common.check_conditional(conditional, num_classes)
        if architecture == "dcgan":
            layout = networks.dcgan_layout(image_shape, layout)[0]
        networks.check_image_shape(image_shape, architecture if layout == "fixed" else "mlp")
        if d_steps < 1:
            raise ValueError(f"d_steps must be at least 1, got {d_steps}")
        self.augment_policy = diffaug.parse_policy(augment)
        self.image_shape = tuple(image_shape)
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.conditional = conditional
        self.num_classes = num_classes
        self.loss_name = loss
        self.gp_weight = gp_weight
        self.d_steps = d_steps
        self.base_filters = base_filters
        self.layout = layout
        self.d_norm = d_norm
        self.dropout = dropout
        self._set_ema(ema_kimg, ema_rampup)
        self.seed = seed
        classes = num_classes if conditional else 0
        norm = ("layer" if loss == "wgan_gp" else "batch") if d_norm == "auto" else d_norm
        self._d_batch_norm = norm == "batch"
        with common.own_dtype_policy(self):
            self.generator = networks.build_generator(architecture, self.image_shape, latent_dim, classes, base_filters,
                                                      layout=layout)
            self._init_ema_generator(lambda name: networks.build_generator(
                architecture, self.image_shape, latent_dim, classes, base_filters, name=name, layout=layout))
            self.discriminator = networks.build_discriminator(
                architecture, self.image_shape, classes, base_filters, norm, dropout, layout=layout
            )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._d_loss_fn, self._g_loss_fn = losses.GAN_LOSSES[loss]
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.real_score_tracker = keras.metrics.Mean(name="real_score")
        self.fake_score_tracker = keras.metrics.Mean(name="fake_score")
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update(
            image_shape=list(self.image_shape),
            latent_dim=self.latent_dim,
            architecture=self.architecture,
            conditional=self.conditional,
            num_classes=self.num_classes,
            loss=self.loss_name,
            gp_weight=self.gp_weight,
            d_steps=self.d_steps,
            base_filters=self.base_filters,
            layout=self.layout,
            d_norm=self.d_norm,
            dropout=self.dropout,
            augment=",".join(self.augment_policy),
            ema_kimg=self.ema_kimg,
            ema_rampup=self.ema_rampup,
            seed=self.seed,
        )
        return config

def _average_into(average, value, beta):
    """``average <- beta * average + (1 - beta) * value`` in the variable's own dtype."""
    beta = tf.cast(beta, average.dtype)
    return average.assign(beta * average + (1.0 - beta) * tf.cast(value, average.dtype))
