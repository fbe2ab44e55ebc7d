"""Pieces every generative model here shares: batch unpacking, seeded noise
that differs across replicas, loss scaling for ``tf.distribute`` and for mixed
precision, optimizers.

Mixed precision (``train.precision``): a model built under a ``mixed_*`` Keras
policy computes its layers in float16/bfloat16 and keeps float32 variables. Its
train step keeps logits and losses in float32 (:func:`float32`), multiplies each
loss by its own optimizer's loss scale (``optimizer.scale_loss``: 1 except for a
``LossScaleOptimizer``) and applies gradients with :func:`apply_gradients`. A class
that does all three sets ``mixed_precision = True`` next to its ``train_step``.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf


def unpack_batch(data, key: str = "images"):
    """Return ``(images, labels, noise)`` from a batch.

    A batch is a dict with ``images`` (or ``key``: ``"audio"``, ...) and optional ``labels`` and ``noise``
    (explicit latent noise for this step: GAN ``z`` or VAE reparameterisation
    ``eps``), or a tuple ``(images[, labels])``, or a bare image tensor.
    """
    if isinstance(data, dict):
        return data[key], data.get("labels"), data.get("noise")
    if isinstance(data, (tuple, list)):
        images = data[0]
        labels = data[1] if len(data) > 1 else None
        return images, labels, None
    return data, None, None


def num_replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_scale(loss):
    """Scale a per-replica mean loss so replica gradients *sum* to the global mean.

    Keras' TF optimizer all-reduces gradients with SUM across replicas, so a
    loss averaged over the local batch must be divided by the replica count to
    give the same update as one device seeing the whole batch.
    """
    return loss / tf.cast(num_replicas(), loss.dtype)


def replica_seed(seed_generator: keras.random.SeedGenerator):
    """Next seed of ``seed_generator``, offset by the replica id.

    Every replica holds the same generator state, so without the offset all
    replicas would draw identical noise for their share of the batch.
    """
    seed = seed_generator.next()
    ctx = tf.distribute.get_replica_context()
    if ctx is None:
        return seed
    rid = tf.cast(ctx.replica_id_in_sync_group, seed.dtype)
    return seed + tf.stack([rid * 7919, tf.zeros_like(rid)])


def normal(shape, seed):
    """Standard normal noise; ``seed`` is an int, a ``[2]`` seed tensor or a SeedGenerator."""
    if isinstance(seed, keras.random.SeedGenerator):
        seed = replica_seed(seed)
    elif isinstance(seed, int):
        seed = tf.constant([seed, 0], dtype=tf.int64)
    return tf.random.stateless_normal(shape, seed=tf.cast(seed, tf.int64))


def uniform(shape, seed):
    if isinstance(seed, keras.random.SeedGenerator):
        seed = replica_seed(seed)
    return tf.random.stateless_uniform(shape, seed=tf.cast(seed, tf.int64))


def float32(*tensors):
    """``tensors`` with 16-bit floats cast to float32 (the logits and losses of a mixed-precision
    model); float32 and float64 stay as they are. One tensor or a tuple."""
    out = tuple(tf.cast(t, tf.float32) if t.dtype in (tf.float16, tf.bfloat16) else t for t in tensors)
    return out[0] if len(out) == 1 else out


@contextlib.contextmanager
def own_dtype_policy(model):
    """Keras' global dtype policy set to ``model``'s while it builds its networks.

    Layers take the global policy when they are made; a loaded model rebuilds its
    networks in ``__init__`` from its config, whose ``dtype`` is the model's own
    policy, so this keeps a mixed-precision model mixed after ``load_model``.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(model.dtype_policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def supports_mixed_precision(model) -> bool:
    """Whether the class that defines ``model``'s ``train_step`` declares ``mixed_precision = True``.

    ``model``: a model or its class. Looked up on that class only: a subclass
    with a train step of its own does not inherit the claim of the step it replaced.
    """
    for cls in (model if isinstance(model, type) else type(model)).__mro__:
        if "train_step" in vars(cls):
            return bool(vars(cls).get("mixed_precision", False))
    return False


def with_loss_scale(model, optimizer, name: str | None = None):
    """``optimizer`` in a ``LossScaleOptimizer`` if ``model`` computes in float16 (one per optimizer)."""
    if model.dtype_policy.name == "mixed_float16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer, name=name)
    return optimizer


def apply_gradients(optimizer, grads, variables, clip_norm: float | None = None):
    """Apply ``grads`` (of a loss multiplied by ``optimizer.scale_loss``) to ``variables``.

    ``clip_norm`` clips the global norm of the gradient one device would see:
    under a strategy the replicas first sum their gradients (an optimizer's own
    ``clipnorm`` would clip each replica's share), the loss scale is taken out
    before clipping and put back after, and each replica passes on ``1 /
    replicas`` of the sum for the optimizer's own sum.

    A ``LossScaleOptimizer`` decides to skip a step from the gradients of the
    first replica of *its* process, before they are summed; with several
    replicas a non-finite gradient in one replica would then either be applied
    by the others or, across workers, leave some replicas in an all-reduce the
    others skipped (a hang). So the replicas agree first: if any replica's
    gradient is non-finite, every replica's becomes NaN and all skip the step.
    """
    # Embedding gradients arrive as IndexedSlices with a row per lookup. Keras' Adam squares
    # the slices before adding up a row's (v from sum g_i^2, not (sum g_i)^2), so the step
    # would depend on how the lookups are split over replicas; dense, it is Adam's.
    grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
    ctx = tf.distribute.get_replica_context()
    replicas = ctx.num_replicas_in_sync if ctx is not None else 1
    scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    if clip_norm:
        if replicas > 1:
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        scale = tf.cast(optimizer.dynamic_scale, tf.float32) if scaled else None
        if scaled:
            grads = [g / tf.cast(scale, g.dtype) for g in grads]
        grads, _ = tf.clip_by_global_norm(grads, clip_norm)
        if scaled:
            grads = [g * tf.cast(scale, g.dtype) for g in grads]
        if replicas > 1:
            grads = [g / replicas for g in grads]
    elif scaled and replicas > 1:
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None])
        bad = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(tf.logical_not(finite), tf.float32))
        grads = [None if g is None else tf.where(bad > 0, tf.constant(float("nan"), g.dtype), g) for g in grads]
    optimizer.apply_gradients(zip(grads, variables, strict=True))


def adam(learning_rate: float, beta_1: float = 0.5, beta_2: float = 0.999, name: str | None = None,
         weight_decay: float = 0.0, ema_momentum: float = 0.0):
    """Adam; with ``weight_decay > 0`` decoupled weight decay (AdamW: every step each variable
    also shrinks by ``learning_rate * weight_decay`` times itself, Keras' own implementation);
    with ``ema_momentum > 0`` it also keeps an exponential moving average of the variables
    (Keras' ``use_ema``; :class:`aigc_tf.callbacks.AveragedWeights` puts it to use)."""
    ema = dict(use_ema=True, ema_momentum=ema_momentum) if ema_momentum else {}
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, name=name,
                                 weight_decay=weight_decay or None, **ema)


EXECUTION_KEYS = ("steps_per_execution", "jit_compile")


def execution_config(model) -> dict:
    """The compile arguments besides optimizers that a saved model keeps."""
    return {"steps_per_execution": model.steps_per_execution, "jit_compile": bool(model.jit_compile)}


def update_batch_means(trackers, values, batch_size):
    """Update ``Mean`` trackers with per-batch means, weighted by the batch size.

    Weighting makes epoch means exact when the last (validation) batch is
    smaller, and an empty replica share (a last batch smaller than the
    replica count) adds nothing instead of a NaN.
    """
    n = tf.cast(batch_size, tf.float32)
    for tracker, value in zip(trackers, values, strict=True):
        value = tf.where(n > 0, tf.cast(value, tf.float32), 0.0)
        tracker.update_state(value, sample_weight=n)
    return {m.name: m.result() for m in trackers}


def check_conditional(conditional: bool, num_classes: int) -> None:
    if conditional and num_classes < 1:
        raise ValueError("a conditional model needs num_classes >= 1 (labelled data)")


class LatentSamplingMixin:
    """``sample_latent`` / ``default_labels`` / ``generate`` for latent-variable
    models; the model supplies ``_images_from_latent(z, labels)``."""

    def sample_latent(self, num_samples: int, seed=None):
        """``(num_samples, latent_dim)`` standard normal; an int ``seed`` makes it reproducible."""
        return normal((num_samples, self.latent_dim), self.seed_generator if seed is None else seed)

    def default_labels(self, num_samples):
        """Labels ``0, 1, ..., K-1, 0, 1, ...`` so a grid shows every class."""
        return tf.range(num_samples, dtype=tf.int32) % max(self.num_classes, 1)

    def generate(self, num_samples: int | None = None, z=None, labels=None, seed=None):
        """Images (in the model's value range) from ``z``, or from prior noise drawn with ``seed``."""
        if z is None:
            z = self.sample_latent(num_samples or 16, seed)
        z = tf.convert_to_tensor(z, tf.float32)
        if self.conditional:
            labels = self.default_labels(tf.shape(z)[0]) if labels is None else tf.convert_to_tensor(labels, tf.int32)
        return float32(self._images_from_latent(z, labels if self.conditional else None))


class SingleOptimizerMixin:
    """``compile`` with one optimizer (Adam 1e-3 by default), built at once
    inside the strategy scope so a checkpoint restores its slots, and saved
    with the model's execution settings. Under ``mixed_float16`` Keras wraps it
    in a ``LossScaleOptimizer``."""

    def compile(self, optimizer=None, **kwargs):
        super().compile(optimizer=optimizer or adam(1e-3, beta_1=0.9), **kwargs)
        self.optimizer.build(self.trainable_variables)

    def get_compile_config(self):
        if not self.compiled:
            return None
        return {"optimizer": keras.optimizers.serialize(self.optimizer), **execution_config(self)}

    def compile_from_config(self, config):
        self.compile(
            optimizer=keras.optimizers.deserialize(config["optimizer"]),
            **{k: config[k] for k in EXECUTION_KEYS if k in config},
        )


class TwoOptimizerMixin:
    """``compile`` with a discriminator and a generator optimizer (Adam 2e-4,
    beta_1 0.5 by default, as in DCGAN), both built at once inside the
    strategy scope, and saved with the model's execution settings. The model
    has ``generator`` and ``discriminator`` networks. Under ``mixed_float16``
    each optimizer gets its own ``LossScaleOptimizer`` (its own loss scale)."""

    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        self.d_optimizer = with_loss_scale(self, d_optimizer or adam(2e-4, name="d_adam"), "d_loss_scale")
        self.g_optimizer = with_loss_scale(self, g_optimizer or adam(2e-4, name="g_adam"), "g_loss_scale")
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
            **execution_config(self),
        }

    def compile_from_config(self, config):
        self.compile(
            d_optimizer=keras.optimizers.deserialize(config["d_optimizer"]),
            g_optimizer=keras.optimizers.deserialize(config["g_optimizer"]),
            **{k: config[k] for k in EXECUTION_KEYS if k in config},
        )


class SeedStateMixin:
    """Save and restore the model's ``SeedGenerator`` state with its weights.

    Keras does not write a model-level ``SeedGenerator`` into ``.keras``
    files; without this a resumed run would replay the noise of epoch 1.
    """

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["seed_generator_state"] = self.seed_generator.state.numpy()

    def load_own_variables(self, store):
        keys = set(store.keys())
        own = self._trainable_variables + self._non_trainable_variables
        for i, v in enumerate(own):
            v.assign(store[f"{i}"])
        if "seed_generator_state" in keys:
            self.seed_generator.state.assign(store["seed_generator_state"])
