"""Learned table synthesizers on the shared model bases: a TVAE-style VAE and a CTGAN-style GAN (Xu et al. 2019).

Both work on the matrix a fitted :class:`~aigc_tf.tabular.transforms.TableTransformer`
makes (a ``tanh`` scalar and a mode one-hot per continuous column, a one-hot
per discrete column). The transformer's fitted state is part of the model's
config, so a ``.keras`` file is the whole synthesizer: it turns noise into
table rows with no other file.

Generation (``generate``) is seeded per block of :data:`BLOCK` rows (block
``b`` of seed ``s`` draws from the stateless seed ``[s, b]``), so any number
of rows can be drawn in pieces or in one call with the same result, and the
exported SavedModel (``rows``, ``seed`` in) returns what ``aigc-tf sample``
writes.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from aigc_tf import losses
from aigc_tf.models import common
from aigc_tf.tabular.transforms import TableTransformer

BLOCK = 1024  # rows per seeded block of generation


class TableModelMixin:
    """What both synthesizers share: the transformer, the matrix layout, seeded generation and metrics.

    The model supplies ``_raw_block(seeds, cond)`` (the network's raw output
    for :data:`BLOCK` rows) and ``_finish(raw, seeds)`` (activated rows)."""

    def _init_table(self, table_transform: dict | None):
        if not table_transform:
            raise ValueError("a table model is built from a fitted table transform (table_transform); "
                             "train it with aigc-tf train or pass TableTransformer(...).fit(table).get_config()")
        self.table_transform = table_transform
        self.transformer = TableTransformer.from_config(table_transform)
        self.spans = list(self.transformer.spans)
        self.data_width = self.transformer.width
        # The discrete columns' one-hots, which the condition vector repeats side by side.
        self.categories = [s for s in self.spans if s.role == "category"]
        self.cond_width = sum(s.width for s in self.categories)

    def activate(self, raw, gumbel=None, alpha_noise=None, hard: bool = True):
        """Raw network output -> rows of the transformed matrix.

        ``tanh`` on each continuous scalar (plus ``alpha_noise``, clipped to
        [-1, 1]); on each one-hot block a one-hot of the argmax of its logits
        (plus ``gumbel`` noise: a draw from the block's softmax) when ``hard``,
        else the Gumbel-softmax relaxation at temperature 0.2 (CTGAN's
        training output)."""
        parts = []
        for span in self.spans:
            logits = raw[:, span.start:span.start + span.width]
            if span.activation == "tanh":
                value = tf.tanh(logits)
                if alpha_noise is not None:
                    value = tf.clip_by_value(value + alpha_noise[:, span.start:span.start + 1], -1.0, 1.0)
                parts.append(value)
                continue
            if gumbel is not None:
                logits = logits + gumbel[:, span.start:span.start + span.width]
            if hard:
                parts.append(tf.one_hot(tf.argmax(logits, axis=1), span.width, dtype=raw.dtype))
            else:
                parts.append(tf.nn.softmax(logits / 0.2, axis=1))
        return tf.concat(parts, axis=1)

    def generate(self, num_samples=16, seed: int = 0, cond_index=None):
        """``num_samples`` rows of the transformed matrix (one-hot blocks exact), seeded by ``seed``.

        ``cond_index``: a category's index in the condition vector to
        condition every row on (CTGAN; a TVAE ignores it), or None."""
        rows = tf.cast(num_samples, tf.int32)
        blocks = (rows + BLOCK - 1) // BLOCK
        return self.generate_blocks(seed, 0, blocks, cond_index)[:rows]

    def generate_blocks(self, seed, first, count, cond_index=None):
        """Blocks ``first .. first + count - 1`` of the rows seed ``seed`` gives, ``(count * BLOCK, width)``."""
        seed = tf.cast(seed, tf.int64)
        cond_index = tf.constant(-1, tf.int32) if cond_index is None else tf.cast(cond_index, tf.int32)

        def block(b):
            seeds = tf.random.experimental.stateless_split(tf.stack([seed, tf.cast(b, tf.int64)]), 4)
            return self._finish(self._raw_block(seeds, cond_index), seeds)

        out = tf.map_fn(block, tf.range(first, first + count), fn_output_signature=tf.TensorSpec(
            [BLOCK, self.data_width], tf.float32))
        return tf.reshape(out, [-1, self.data_width])

    sample_latent = common.LatentSamplingMixin.sample_latent

    def table_from_matrix(self, matrix):
        """The Arrow table a generated matrix stands for (the training table's schema)."""
        return self.transformer.inverse(np.asarray(matrix))

    def _update(self, values, batch):
        return common.update_batch_means(self.metrics, values, batch)


def _rows(data):
    if isinstance(data, dict):
        return data["rows"], data.get("noise"), data.get("cond"), data.get("mask")
    return data, None, None, None


def torch_linear_init():
    """PyTorch's default ``nn.Linear`` kernel init, U(+-1/sqrt(fan_in)), which CTGAN was published with.

    Keras' Glorot default draws the critic's first layer (fan-in of a pack
    of 10 rows) about twice as wide. Measured on ``fair`` with
    ``configs/ctgan_fair.yaml``: overall quality 0.922 with this init,
    0.848 with Glorot (pair trends 0.931 against 0.758). TVAE keeps Glorot
    (0.981 with it, 0.977 with this one)."""
    return keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")


def _mlp(units, name, dropout=0.0, leaky=False, kernel_initializer="glorot_uniform"):
    layers = []
    for i, u in enumerate(units):
        layers.append(keras.layers.Dense(u, name=f"{name}_dense{i}", kernel_initializer=kernel_initializer))
        layers.append(keras.layers.LeakyReLU(0.2) if leaky else keras.layers.ReLU())
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    return layers


@keras.saving.register_keras_serializable(package="aigc_tf")
class TVAE(TableModelMixin, common.SingleOptimizerMixin, common.SeedStateMixin, keras.Model):
    """TVAE (Xu et al. 2019): an MLP VAE over the transformed table.

    Loss per row, in nats: ``loss_factor`` times the reconstruction (a
    Gaussian with a learned per-unit ``sigma`` in [0.01, 1] on each ``tanh``
    scalar, a categorical cross-entropy on each one-hot block) plus ``beta``
    times ``KL(q(z|x) || N(0, I))``, plus ``l2 / 2 * ||weights||^2``
    (PyTorch's coupled Adam weight decay, which SDV's TVAE uses). Samples:
    ``tanh`` of the decoded scalar plus ``sigma`` noise, clipped to [-1, 1],
    and a draw from each decoded block's softmax (the decoder's categorical
    likelihood; SDV takes the argmax, which drops minority categories
    whenever the latent carries little information about a column).

    Args:
        table_transform: a fitted :class:`TableTransformer`'s ``get_config()``.
        latent_dim: size of ``z``.
        hidden: widths of the encoder's layers (the decoder mirrors them).
        loss_factor: weight of the reconstruction term (SDV: 2).
        beta: weight of the KL term.
        l2: L2 weight penalty.
        seed: initial seed of the model's ``SeedGenerator``.
    """

    def __init__(self, table_transform: dict | None = None, latent_dim: int = 128, hidden: list = (128, 128),
                 loss_factor: float = 2.0, beta: float = 1.0, l2: float = 1e-5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self._init_table(table_transform)
        self.latent_dim, self.hidden = latent_dim, [int(h) for h in hidden]
        self.loss_factor, self.beta, self.l2, self.seed = float(loss_factor), float(beta), float(l2), seed
        width = self.data_width
        rows = keras.Input((width,))
        h = rows
        for layer in _mlp(self.hidden, "enc"):
            h = layer(h)
        self.encoder = keras.Model(rows, [keras.layers.Dense(latent_dim, name="mean")(h),
                                          keras.layers.Dense(latent_dim, name="log_var")(h)], name="encoder")
        z = keras.Input((latent_dim,))
        h = z
        for layer in _mlp(self.hidden[::-1], "dec"):
            h = layer(h)
        self.decoder = keras.Model(z, keras.layers.Dense(width, name="out")(h), name="decoder")
        self.sigma = self.add_weight(shape=(width,), initializer=keras.initializers.Constant(0.1), name="sigma",
                                     constraint=lambda s: tf.clip_by_value(s, 0.01, 1.0))
        self._alpha_mask = np.zeros(width, np.float32)
        for s in self.spans:
            if s.activation == "tanh":
                self._alpha_mask[s.start] = 1.0
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.recon_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update(table_transform=self.table_transform, latent_dim=self.latent_dim, hidden=self.hidden,
                      loss_factor=self.loss_factor, beta=self.beta, l2=self.l2, seed=self.seed)
        return config

    @property
    def metrics(self):
        return [self.loss_tracker, self.recon_tracker, self.kl_tracker]

    def call(self, rows, training=False):
        mean, _ = self.encoder(rows, training=training)
        return self.decoder(mean, training=training)

    def reconstruction(self, rows, raw):
        """Per-row reconstruction term (nats, up to the Gaussians' constant)."""
        sigma = tf.convert_to_tensor(self.sigma)
        total = tf.zeros(tf.shape(rows)[:1])
        for span in self.spans:
            target = rows[:, span.start:span.start + span.width]
            logits = raw[:, span.start:span.start + span.width]
            if span.activation == "tanh":
                s = sigma[span.start]
                total += tf.square(target[:, 0] - tf.tanh(logits[:, 0])) / (2.0 * s * s) + tf.math.log(s)
            else:
                total += tf.nn.softmax_cross_entropy_with_logits(target, logits)
        return total

    def _loss(self, rows, noise, training):
        # Under a mixed policy the networks compute in 16 bits; the likelihood and the KL in float32.
        mean, log_var = common.float32(*self.encoder(rows, training=training))
        eps = noise if noise is not None else common.normal(tf.shape(mean), self.seed_generator)
        z = mean + tf.exp(0.5 * log_var) * tf.cast(eps, mean.dtype)
        recon = self.reconstruction(rows, common.float32(self.decoder(z, training=training)))
        kl = losses.gaussian_kl(mean, log_var)
        loss = tf.reduce_mean(self.loss_factor * recon + self.beta * kl)
        return loss, recon, kl

    # The loss in float32, scaled by the optimizer's loss scale (see models.common).
    mixed_precision = True

    def train_step(self, data):
        rows, noise, _, _ = _rows(data)
        with tf.GradientTape() as tape:
            loss, recon, kl = self._loss(rows, noise, True)
            penalty = 0.5 * self.l2 * tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, tf.float32)))
                                                 for v in self.trainable_variables if v is not self.sigma])
            scaled = self.optimizer.scale_loss(common.replica_scale(loss + penalty))
        grads = tape.gradient(scaled, self.trainable_variables)
        common.apply_gradients(self.optimizer, grads, self.trainable_variables)
        return self._update((loss, tf.reduce_mean(recon), tf.reduce_mean(kl)), tf.shape(rows)[0])

    def test_step(self, data):
        rows, noise, _, _ = _rows(data)
        loss, recon, kl = self._loss(rows, noise, False)
        return self._update((loss, tf.reduce_mean(recon), tf.reduce_mean(kl)), tf.shape(rows)[0])

    def _raw_block(self, seeds, cond_index):
        return common.float32(self.decoder(tf.random.stateless_normal([BLOCK, self.latent_dim], seeds[0]),
                                           training=False))

    def _finish(self, raw, seeds):
        noise = tf.random.stateless_normal([BLOCK, self.data_width], seeds[1]) * self.sigma * self._alpha_mask
        return self.activate(raw, gumbel=gumbel_noise([BLOCK, self.data_width], seeds[2]), alpha_noise=noise)


@keras.saving.register_keras_serializable(package="aigc_tf")
class CTGAN(TableModelMixin, common.TwoOptimizerMixin, common.SeedStateMixin, keras.Model):
    """CTGAN (Xu et al. 2019): a conditional WGAN-GP over the transformed table.

    * **Conditional vector and training-by-sampling**: every training row is
      drawn by picking a discrete column uniformly, then one of its
      categories with probability proportional to the log of its frequency
      (``log_frequency``), then a training row with that category
      (:func:`aigc_tf.tabular.batches.conditional_batches`). The generator
      and the critic see the category's one-hot, and the generator is
      penalised by the cross-entropy between its logits for that column and
      the category, so rare categories are learnt.
    * **PacGAN**: the critic judges packs of ``pac`` rows at once.
    * **WGAN-GP** with gradient-penalty weight ``gp_weight``, the penalty
      taken per pack.

    The generator is residual (each layer's output concatenated to its
    input, with batch norm), the critic an MLP with leaky ReLU and dropout.
    Sampling draws a condition the same way from the categories' actual
    frequencies (or takes the one given), and a draw from each one-hot
    block's softmax.

    Args:
        table_transform: a fitted :class:`TableTransformer`'s ``get_config()``.
        latent_dim: size of ``z``.
        generator_dims / discriminator_dims: widths of the two networks.
        pac: rows per critic pack (the batch must be a multiple of it).
        gp_weight: gradient-penalty weight.
        d_steps: critic updates per generator update.
        dropout: critic dropout.
        seed: initial seed of the model's ``SeedGenerator``.
    """

    def __init__(self, table_transform: dict | None = None, latent_dim: int = 128, generator_dims: list = (256, 256),
                 discriminator_dims: list = (256, 256), pac: int = 10, gp_weight: float = 10.0, d_steps: int = 1,
                 dropout: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self._init_table(table_transform)
        if pac < 1 or d_steps < 1:
            raise ValueError(f"pac and d_steps must be at least 1, got {pac} and {d_steps}")
        self.latent_dim, self.pac, self.gp_weight, self.d_steps = latent_dim, int(pac), float(gp_weight), int(d_steps)
        self.generator_dims, self.discriminator_dims = [int(d) for d in generator_dims], [int(d) for d in discriminator_dims]
        self.dropout, self.seed = float(dropout), seed
        width, cond = self.data_width, self.cond_width
        z_in, c_in = keras.Input((latent_dim,)), keras.Input((cond,))
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        h = keras.layers.Concatenate()([z_in, c_in])
        for i, u in enumerate(self.generator_dims):
            out = keras.layers.Dense(u, name=f"res{i}_dense", kernel_initializer=torch_linear_init())(h)
            # Under a strategy with several replicas (or workers), synchronized: batch statistics over the
            # global batch, so they step and keep moving statistics as one device does. On one device the
            # plain layer, whose float32 rounding the measured results were made with.
            bn = keras.layers.BatchNormalization(synchronized=replicas > 1, name=f"res{i}_bn")
            out = keras.layers.ReLU()(bn(out))
            h = keras.layers.Concatenate()([out, h])
        out = keras.layers.Dense(width, name="out", kernel_initializer=torch_linear_init())(h)
        self.generator = keras.Model([z_in, c_in], out, name="generator")
        packed = keras.Input((self.pac * (width + cond),))
        h = packed
        for layer in _mlp(self.discriminator_dims, "critic", dropout=self.dropout, leaky=True,
                          kernel_initializer=torch_linear_init()):
            h = layer(h)
        score = keras.layers.Dense(1, name="score", kernel_initializer=torch_linear_init())(h)
        self.discriminator = keras.Model(packed, score, name="discriminator")
        self._cond_tables()
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.penalty_tracker = keras.metrics.Mean(name="gradient_penalty")
        self.cond_tracker = keras.metrics.Mean(name="cond_loss")
        self.built = True

    def _cond_tables(self):
        """Sampling a condition: a column uniformly, a category by its training frequency."""
        k = len(self.categories)
        widest = max([s.width for s in self.categories], default=1)
        logits = np.full((max(k, 1), widest), -1e9, np.float32)
        offsets = np.zeros(max(k, 1), np.int32)
        counts = {c.name: c.counts for c in self.transformer.columns if hasattr(c, "counts")}
        start = 0
        for j, span in enumerate(self.categories):
            logits[j, :span.width] = np.log(np.maximum(counts[span.column], 1e-12))
            offsets[j] = start
            start += span.width
        self._freq_logits, self._cond_offsets = logits, offsets

    def get_config(self):
        config = super().get_config()
        config.update(table_transform=self.table_transform, latent_dim=self.latent_dim,
                      generator_dims=self.generator_dims, discriminator_dims=self.discriminator_dims, pac=self.pac,
                      gp_weight=self.gp_weight, d_steps=self.d_steps, dropout=self.dropout, seed=self.seed)
        return config

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.penalty_tracker, self.cond_tracker]

    def call(self, inputs, training=False):
        """``inputs``: ``[z, cond]`` -> raw generator output."""
        return self.generator(inputs, training=training)

    def _pack(self, rows, cond):
        both = tf.concat([rows, cond], axis=1)
        return tf.reshape(both, [-1, self.pac * (self.data_width + self.cond_width)])

    def cond_loss(self, raw, cond, mask):
        """Mean over rows of the cross-entropy between the conditioned column's logits and its category."""
        if not self.categories:
            return tf.constant(0.0)
        total, offset = 0.0, 0
        for j, span in enumerate(self.categories):
            ce = tf.nn.softmax_cross_entropy_with_logits(cond[:, offset:offset + span.width],
                                                         raw[:, span.start:span.start + span.width])
            total += ce * mask[:, j]
            offset += span.width
        return tf.reduce_mean(total)

    def _fake(self, batch, cond, noise, training, uniform=None):
        z = noise if noise is not None else self.sample_latent(batch)
        raw = common.float32(self.generator([z, cond], training=training))
        u = uniform if uniform is not None else common.uniform(tf.shape(raw), self.seed_generator)
        gumbel = -tf.math.log(-tf.math.log(u * (1 - 2e-7) + 1e-7))
        return raw, self.activate(raw, gumbel=gumbel, hard=False)

    def _critic_loss(self, rows, fake, cond, training, eps=None):
        real_packs, fake_packs = self._pack(rows, cond), self._pack(fake, cond)
        real_score, fake_score = common.float32(self.discriminator(real_packs, training=training),
                                                self.discriminator(fake_packs, training=training))
        if eps is None:
            eps = common.uniform((tf.shape(real_packs)[0], 1), self.seed_generator)
        penalty = losses.gradient_penalty(lambda x: self.discriminator(x, training=training), real_packs,
                                          fake_packs, eps)
        return losses.wasserstein_critic_loss(real_score, fake_score), penalty

    def _inputs(self, data):
        rows, noise, cond, mask = _rows(data)
        batch = tf.shape(rows)[0]
        if cond is None:
            cond = tf.zeros([batch, self.cond_width], rows.dtype)
            mask = tf.zeros([batch, len(self.categories)], rows.dtype)
        return rows, noise, cond, mask, batch

    def _draws(self, data):
        """Explicit draws a batch may carry, like ``noise`` (tests: a step that several replicas
        take must use one device's draws): ``uniform`` (B, data width) for the Gumbel noise and
        ``gp_eps`` (B, 1) for the penalty's interpolation, of which each pack takes its first row's;
        None where the model draws them."""
        if isinstance(data, dict):
            gp_eps = data.get("gp_eps")
            return data.get("uniform"), None if gp_eps is None else gp_eps[::self.pac]
        return None, None

    # Float32 scores, penalty and losses, each scaled by its own optimizer (see models.common).
    mixed_precision = True

    def train_step(self, data):
        rows, noise, cond, mask, batch = self._inputs(data)
        uniform, gp_eps = self._draws(data)
        for _ in range(self.d_steps):
            _, fake = self._fake(batch, cond, noise, True, uniform)
            with tf.GradientTape() as tape:
                w_loss, penalty = self._critic_loss(rows, tf.stop_gradient(fake), cond, True, gp_eps)
                d_loss = w_loss + self.gp_weight * penalty
                scaled = self.d_optimizer.scale_loss(common.replica_scale(d_loss))
            grads = tape.gradient(scaled, self.discriminator.trainable_variables)
            common.apply_gradients(self.d_optimizer, grads, self.discriminator.trainable_variables)
        with tf.GradientTape() as tape:
            raw, fake = self._fake(batch, cond, noise, True, uniform)
            score = common.float32(self.discriminator(self._pack(fake, cond), training=True))
            c_loss = self.cond_loss(raw, cond, mask)
            g_loss = losses.wasserstein_generator_loss(score) + c_loss
            scaled = self.g_optimizer.scale_loss(common.replica_scale(g_loss))
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        common.apply_gradients(self.g_optimizer, grads, self.generator.trainable_variables)
        return self._update((d_loss, g_loss, penalty, c_loss), batch)

    def test_step(self, data):
        rows, noise, cond, mask, batch = self._inputs(data)
        raw, fake = self._fake(batch, cond, noise, False)
        w_loss, penalty = self._critic_loss(rows, fake, cond, False)
        c_loss = self.cond_loss(raw, cond, mask)
        score = common.float32(self.discriminator(self._pack(fake, cond), training=False))
        g_loss = losses.wasserstein_generator_loss(score) + c_loss
        return self._update((w_loss + self.gp_weight * penalty, g_loss, penalty, c_loss), batch)

    def _raw_block(self, seeds, cond_index):
        z = tf.random.stateless_normal([BLOCK, self.latent_dim], seeds[0])
        if self.categories:
            column = tf.random.stateless_uniform([BLOCK], seeds[2], 0, len(self.categories), dtype=tf.int32)
            category = tf.random.stateless_categorical(tf.gather(self._freq_logits, column), 1, seeds[3],
                                                       dtype=tf.int32)[:, 0]
            drawn = tf.gather(self._cond_offsets, column) + category
            index = tf.where(cond_index >= 0, tf.fill([BLOCK], cond_index), drawn)
            cond = tf.one_hot(index, self.cond_width)
        else:
            cond = tf.zeros([BLOCK, 0])
        return common.float32(self.generator([z, cond], training=False))

    def _finish(self, raw, seeds):
        return self.activate(raw, gumbel=gumbel_noise([BLOCK, self.data_width], seeds[1]))


def gumbel_noise(shape, seed):
    """Standard Gumbel noise from a stateless seed: ``argmax(logits + noise)`` is a draw from ``softmax(logits)``."""
    u = tf.random.stateless_uniform(shape, seed, 1e-7, 1.0 - 1e-7)
    return -tf.math.log(-tf.math.log(u))
