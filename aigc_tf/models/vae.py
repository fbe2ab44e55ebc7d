"""Variational autoencoder with a Gaussian posterior and a Bernoulli decoder."""

from __future__ import annotations

import keras
import tensorflow as tf

from aigc_tf import losses
from aigc_tf.layers import networks
from aigc_tf.models import common


class ELBOTrainingMixin:
    """The VAE training loop, shared by every VAE here (images, audio): one
    optimizer on the negative ELBO ``recon + beta * KL`` per example, with
    reconstruction and KL logged apart. The model provides
    ``elbo_terms(data, labels, eps, training) -> (recon NLL, KL)`` per
    example, ``beta``, ``seed_generator`` and the three trackers; ``batch_key``
    names the data in a batch dict and ``_training_input`` may transform it
    (binarisation)."""

    batch_key = "images"
    # The ELBO in float32, scaled by the optimizer's loss scale (see models.common).
    mixed_precision = True

    def _init_elbo_state(self, seed):
        """The model's noise generator and the loss / reconstruction / KL trackers."""
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.recon_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    @property
    def metrics(self):
        return [self.loss_tracker, self.recon_tracker, self.kl_tracker]

    def reparameterize(self, mean, log_var, eps=None):
        if eps is None:
            eps = common.normal(tf.shape(mean), self.seed_generator)
        return mean + tf.exp(0.5 * log_var) * tf.cast(eps, mean.dtype)

    def _training_input(self, data):
        return data

    def _with_labels(self, x, labels):
        if self.conditional:
            if labels is None:
                raise ValueError("this VAE is conditional: pass labels")
            return [tf.cast(x, self.compute_dtype), tf.cast(labels, tf.int32)]
        return x

    def train_step(self, data):
        images, labels, noise = common.unpack_batch(data, self.batch_key)
        images = self._training_input(images)
        with tf.GradientTape() as tape:
            recon, kl = common.float32(*self.elbo_terms(images, labels, noise, training=True))
            loss = tf.reduce_mean(recon + self.beta * kl)
            scaled = self.optimizer.scale_loss(common.replica_scale(loss))
        grads = tape.gradient(scaled, self.trainable_variables)
        common.apply_gradients(self.optimizer, grads, self.trainable_variables)
        return self._update_metrics(loss, recon, kl)

    def test_step(self, data):
        images, labels, noise = common.unpack_batch(data, self.batch_key)
        images = self._training_input(images)
        recon, kl = common.float32(*self.elbo_terms(images, labels, noise, training=False))
        return self._update_metrics(tf.reduce_mean(recon + self.beta * kl), recon, kl)

    def _update_metrics(self, loss, recon, kl):
        values = (loss, tf.reduce_mean(recon), tf.reduce_mean(kl))
        return common.update_batch_means(self.metrics, values, tf.shape(recon)[0])


@keras.saving.register_keras_serializable(package="aigc_tf")
class VAE(ELBOTrainingMixin, common.LatentSamplingMixin, common.SingleOptimizerMixin, common.SeedStateMixin,
          keras.Model):
    """MLP or convolutional VAE, optionally class-conditional (CVAE).

    Trains on the negative ELBO per example,
    ``recon + beta * KL(q(z|x) || N(0, I))`` with ``recon = -log p(x|z)`` a
    Bernoulli likelihood over pixels in [0, 1], using the
    reparameterisation ``z = mean + exp(log_var / 2) * eps``. Reconstruction
    and KL are logged separately (nats per example).

    Args:
        image_shape: ``(H, W, C)`` of the images (values in [0, 1]).
        latent_dim: size of ``z``.
        architecture: ``"mlp"`` (784-512-256-128, the source documents') or ``"conv"``.
        conditional: condition encoder and decoder on class labels.
        num_classes: number of classes (needed when ``conditional``).
        beta: weight of the KL term (beta-VAE; 1 gives the ELBO).
        binarize: train and validate on dynamically binarised images (each
            pixel redrawn as Bernoulli(intensity) at every step), the
            convention under which Bernoulli likelihoods are proper and
            comparable to binarised-MNIST results.
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> vae = VAE(image_shape=(28, 28, 1), architecture="conv")
        >>> vae.compile(optimizer="adam")
        >>> vae.fit(dataset, epochs=1)   # {"images": ...} batches in [0, 1]
        >>> mean, log_var = vae.encode(images)
        >>> samples = vae.generate(16, seed=0)
    """

    value_range = "unit"

    def __init__(
        self,
        image_shape: tuple = (28, 28, 1),
        latent_dim: int = 16,
        architecture: str = "conv",
        conditional: bool = False,
        num_classes: int = 0,
        beta: float = 1.0,
        binarize: bool = False,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        common.check_conditional(conditional, num_classes)
        networks.check_image_shape(image_shape, architecture)
        self.image_shape = tuple(image_shape)
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.conditional = conditional
        self.num_classes = num_classes
        self.beta = beta
        self.binarize = binarize
        self.seed = seed
        classes = num_classes if conditional else 0
        with common.own_dtype_policy(self):
            self.encoder = networks.build_encoder(architecture, self.image_shape, latent_dim, classes)
            self.decoder = networks.build_decoder(architecture, self.image_shape, latent_dim, classes)
        self._init_elbo_state(seed)
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update(
            image_shape=list(self.image_shape),
            latent_dim=self.latent_dim,
            architecture=self.architecture,
            conditional=self.conditional,
            num_classes=self.num_classes,
            beta=self.beta,
            binarize=self.binarize,
            seed=self.seed,
        )
        return config

    # ------------------------------------------------------------ inference
    def encode(self, images, labels=None):
        """Posterior parameters ``(mean, log_var)``, each ``(batch, latent_dim)``, float32."""
        return common.float32(*self.encoder(self._with_labels(images, labels), training=False))

    def decode_logits(self, z, labels=None, training=False):
        return common.float32(self.decoder(self._with_labels(z, labels), training=training))

    def decode(self, z, labels=None):
        """Bernoulli means (pixel intensities in [0, 1]) for latents ``z``."""
        return tf.sigmoid(self.decode_logits(z, labels))

    def _images_from_latent(self, z, labels):
        return self.decode(z, labels)  # Bernoulli means in [0, 1]

    def reconstruct(self, images, labels=None):
        """Decode the posterior mean: deterministic reconstructions in [0, 1]."""
        mean, _ = self.encode(images, labels)
        return self.decode(mean, labels)

    def call(self, inputs, training=False):
        """Reconstruction through a posterior sample; ``inputs`` are images or ``[images, labels]``."""
        images, labels = (inputs[0], inputs[1]) if isinstance(inputs, (list, tuple)) else (inputs, None)
        mean, log_var = common.float32(*self.encoder(self._with_labels(images, labels), training=training))
        z = self.reparameterize(mean, log_var)
        return tf.sigmoid(self.decode_logits(z, labels, training))

    # ------------------------------------------------------------- training
    def elbo_terms(self, images, labels=None, eps=None, training=False):
        """Per-example ``(reconstruction NLL, KL)`` in nats, one posterior sample (float32)."""
        mean, log_var = common.float32(*self.encoder(self._with_labels(images, labels), training=training))
        z = self.reparameterize(mean, log_var, eps)
        logits = self.decode_logits(z, labels, training)
        return losses.bernoulli_nll(images, logits), losses.gaussian_kl(mean, log_var)

    def _training_input(self, images):
        if not self.binarize:
            return images
        u = common.uniform(tf.shape(images), self.seed_generator)
        return tf.cast(u < images, images.dtype)
