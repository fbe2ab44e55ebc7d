"""GAN: generator + discriminator with alternating updates in ``train_step``."""

from __future__ import annotations

import keras
import tensorflow as tf

from aigc_tf import losses
from aigc_tf.layers import networks
from aigc_tf.models import common


@keras.saving.register_keras_serializable(package="aigc_tf")
class GAN(common.LatentSamplingMixin, common.SeedStateMixin, keras.Model):
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
        base_filters: DCGAN width ``b`` (G 4b->2b->b, D b->2b->4b).
        d_norm: discriminator normalisation, ``"batch"``, ``"layer"``,
            ``"none"`` or ``"auto"`` (layer norm for ``wgan_gp``, whose
            per-example penalty batch norm would break, else batch norm).
        dropout: MLP discriminator dropout.
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
        d_norm: str = "auto",
        dropout: float = 0.3,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss not in losses.GAN_LOSSES:
            raise ValueError(f"unknown GAN loss {loss!r}; use one of {', '.join(losses.GAN_LOSSES)}")
        common.check_conditional(conditional, num_classes)
        networks.check_image_shape(image_shape, architecture)
        if d_steps < 1:
            raise ValueError(f"d_steps must be at least 1, got {d_steps}")
        self.image_shape = tuple(image_shape)
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.conditional = conditional
        self.num_classes = num_classes
        self.loss_name = loss
        self.gp_weight = gp_weight
        self.d_steps = d_steps
        self.base_filters = base_filters
        self.d_norm = d_norm
        self.dropout = dropout
        self.seed = seed
        classes = num_classes if conditional else 0
        norm = ("layer" if loss == "wgan_gp" else "batch") if d_norm == "auto" else d_norm
        self.generator = networks.build_generator(architecture, self.image_shape, latent_dim, classes, base_filters)
        self.discriminator = networks.build_discriminator(
            architecture, self.image_shape, classes, base_filters, norm, dropout
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
            d_norm=self.d_norm,
            dropout=self.dropout,
            seed=self.seed,
        )
        return config

    # ---------------------------------------------------------------- compile
    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        """Two Adam optimizers by default (lr 2e-4, beta_1 0.5, as in DCGAN)."""
        self.d_optimizer = d_optimizer or common.adam(2e-4, name="d_adam")
        self.g_optimizer = g_optimizer or common.adam(2e-4, name="g_adam")
        super().compile(optimizer=self.g_optimizer, **kwargs)
        # Build both optimizers now, inside whatever strategy scope is active:
        # resume then restores both Adam states, and MirroredStrategy does not
        # trip over lazily created slots (keras #23085).
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def get_compile_config(self):
        if not self.compiled:
            return None
        return {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
            **common.execution_config(self),
        }

    def compile_from_config(self, config):
        self.compile(
            d_optimizer=keras.optimizers.deserialize(config["d_optimizer"]),
            g_optimizer=keras.optimizers.deserialize(config["g_optimizer"]),
            **{k: config[k] for k in common.EXECUTION_KEYS if k in config},
        )

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.real_score_tracker, self.fake_score_tracker]

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
        return self.generator(self._g_inputs(z, labels), training=training)

    def _images_from_latent(self, z, labels):
        return self(z if not self.conditional else [z, labels], training=False)  # in [-1, 1]

    # --------------------------------------------------------------- training
    def _d_loss(self, images, labels, fake, training):
        real_logits = self.discriminator(self._d_inputs(images, labels), training=training)
        fake_logits = self.discriminator(self._d_inputs(fake, labels), training=training)
        d_loss = self._d_loss_fn(real_logits, fake_logits)
        if self.loss_name == "wgan_gp":
            eps = common.uniform((tf.shape(images)[0], 1, 1, 1), self.seed_generator)
            penalty = losses.gradient_penalty(
                lambda x: self.discriminator(self._d_inputs(x, labels), training=training), images, fake, eps
            )
            d_loss = d_loss + self.gp_weight * penalty
        return d_loss, real_logits, fake_logits

    def train_step(self, data):
        images, labels, noise = common.unpack_batch(data)
        batch = tf.shape(images)[0]
        for _ in range(self.d_steps):
            z = noise if noise is not None else self.sample_latent(batch)
            with tf.GradientTape() as tape:
                fake = self.generator(self._g_inputs(z, labels), training=True)
                d_loss, real_logits, fake_logits = self._d_loss(images, labels, fake, True)
                scaled = common.replica_scale(d_loss)
            grads = tape.gradient(scaled, self.discriminator.trainable_variables)
            self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_variables))

        z = noise if noise is not None else self.sample_latent(batch)
        with tf.GradientTape() as tape:
            fake = self.generator(self._g_inputs(z, labels), training=True)
            gen_logits = self.discriminator(self._d_inputs(fake, labels), training=True)
            g_loss = self._g_loss_fn(gen_logits)
            scaled = common.replica_scale(g_loss)
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        return self._update_metrics(d_loss, g_loss, real_logits, fake_logits)

    def test_step(self, data):
        images, labels, noise = common.unpack_batch(data)
        z = noise if noise is not None else self.sample_latent(tf.shape(images)[0])
        fake = self.generator(self._g_inputs(z, labels), training=False)
        real_logits = self.discriminator(self._d_inputs(images, labels), training=False)
        fake_logits = self.discriminator(self._d_inputs(fake, labels), training=False)
        d_loss = self._d_loss_fn(real_logits, fake_logits)
        g_loss = self._g_loss_fn(fake_logits)
        return self._update_metrics(d_loss, g_loss, real_logits, fake_logits)

    def _update_metrics(self, d_loss, g_loss, real_logits, fake_logits):
        values = (d_loss, g_loss, tf.reduce_mean(real_logits), tf.reduce_mean(fake_logits))
        return common.update_batch_means(self.metrics, values, tf.shape(real_logits)[0])
