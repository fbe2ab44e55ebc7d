"""RNN-NADE over 88-key frames (Boulanger-Lewandowski et al. 2012)."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from aigc_tf import sampling
from aigc_tf.models import common
from aigc_tf.models.sequence_base import global_sum
from aigc_tf.music import representations as R

KEYS = R.KEYS


@keras.saving.register_keras_serializable(package="aigc_tf")
class ChoraleNADE(common.SingleOptimizerMixin, common.SeedStateMixin, keras.Model):
    """A polyphonic model of binary 88-key frames whose notes are modelled
    jointly: an LSTM reads the frames so far, and at each frame its state sets
    the biases of a NADE that is autoregressive over the 88 keys, lowest first.

    For frame ``v`` at time ``t`` with LSTM output ``r_t`` (the LSTM read
    ``v_1 .. v_{t-1}``), ``b = B r_t`` and ``c = C r_t`` (+ biases):

        h_i = sigmoid(c + sum_{j < i} W[:, j] v_j)
        P(v_i = 1 | v_<i) = sigmoid(b_i + V[i] . h_i)
        -log P(v) = sum_i BCE(v_i, logit_i)

    so ``-log P`` is an exact likelihood in nats per frame, the number
    reported on JSB Chorales. In training the 88 conditionals come at once
    from an exclusive cumulative sum over the keys; sampling draws the keys
    one by one. The loss is the sum over real frames divided by the global
    number of real frames (exact under ``MirroredStrategy``).

    Args:
        units: LSTM width.
        num_layers: stacked LSTM layers.
        nade_hidden: NADE hidden units ``H`` (``W``: ``H x 88``, ``V``: ``88 x H``).
        dropout: dropout on the LSTM output in training.
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> model = ChoraleNADE(units=128)
        >>> model.compile()
        >>> model.fit(frames_dataset)  # {"frames": (B, T, 88), "length": (B,)}
        >>> frames = model.generate_frames(tf.zeros([2, 1, 88]), [0, 0], 32, [1.0, 1.0], [0, 1])
    """

    def __init__(self, units: int = 128, num_layers: int = 1, nade_hidden: int = 64, dropout: float = 0.0,
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.nade_hidden = nade_hidden
        self.dropout = dropout
        self.seed = seed
        init = lambda k: keras.initializers.GlorotUniform(seed=None if seed is None else seed + k)  # noqa: E731
        self.rnns = [keras.layers.LSTM(units, return_sequences=True, return_state=True, name=f"lstm_{i}",
                                       kernel_initializer=init(10 + i), recurrent_initializer="orthogonal")
                     for i in range(num_layers)]
        self.drop = keras.layers.Dropout(dropout, seed=seed)
        self.to_b = keras.layers.Dense(KEYS, name="visible_bias", kernel_initializer=init(1))
        self.to_c = keras.layers.Dense(nade_hidden, name="hidden_bias", kernel_initializer=init(2))
        self.w = self.add_weight(shape=(KEYS, nade_hidden), initializer=keras.initializers.RandomNormal(
            stddev=0.05, seed=None if seed is None else seed + 3), name="nade_w")
        self.v = self.add_weight(shape=(KEYS, nade_hidden), initializer=keras.initializers.RandomNormal(
            stddev=0.05, seed=None if seed is None else seed + 4), name="nade_v")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.build(None)

    def build(self, input_shape):
        width = KEYS
        for rnn in self.rnns:
            rnn.build((None, None, width))
            width = self.units
        self.to_b.build((None, None, self.units))
        self.to_c.build((None, None, self.units))
        self.built = True

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_layers": self.num_layers,
                "nade_hidden": self.nade_hidden, "dropout": self.dropout, "seed": self.seed}

    @property
    def _default_save_signature(self):
        return None  # exported through the task's explicit signatures

    @property
    def metrics(self):
        return [self.loss_tracker]

    # -------------------------------------------------------------- model
    def context(self, frames, training=False):
        """LSTM outputs ``(B, T, units)``: position ``t`` has read frames ``0 .. t-1``."""
        x = tf.pad(tf.cast(frames, self.compute_dtype)[:, :-1], [[0, 0], [1, 0], [0, 0]])
        for rnn in self.rnns:
            x, _, _ = rnn(x, training=training)
        return self.drop(x, training=training)

    def frame_logits(self, frames, context):
        """The 88 conditional logits of each frame given the keys below it ``(B, T, 88)``."""
        v = tf.cast(frames, self.compute_dtype)
        b, c = self.to_b(context), self.to_c(context)
        # a_i = c + sum_{j<i} v_j W[j]: an exclusive cumulative sum over the keys, (B, T, 88, H).
        a = c[..., None, :] + tf.cumsum(v[..., None] * self.w, axis=-2, exclusive=True)
        return b + tf.reduce_sum(tf.sigmoid(a) * self.v, axis=-1)

    def call(self, frames, training=False):
        return self.frame_logits(frames, self.context(frames, training))

    def frame_nll(self, frames, training=False):
        """``-log P(frame_t | frames_<t)`` in nats, ``(B, T)``."""
        logits = common.float32(self(frames, training=training))
        v = tf.cast(frames, tf.float32)
        return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=v, logits=logits), axis=-1)

    def _loss_terms(self, data, training):
        frames, length = data["frames"], data["length"]
        mask = tf.cast(tf.range(tf.shape(frames)[1])[None, :] < tf.cast(length, tf.int32)[:, None], tf.float32)
        total = tf.reduce_sum(self.frame_nll(frames, training) * mask)
        return total, tf.reduce_sum(mask)

    # Float32 logits and loss, scaled by the optimizer (train.precision; see models.common).
    mixed_precision = True

    def train_step(self, data):
        with tf.GradientTape() as tape:
            total, count = self._loss_terms(data, True)
            loss = total / ops.maximum(global_sum(count), 1.0)
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.trainable_variables)
        common.apply_gradients(self.optimizer, grads, self.trainable_variables)
        return self._update(total, count)

    def test_step(self, data):
        return self._update(*self._loss_terms(data, False))

    def _update(self, total, count):
        self.loss_tracker.update_state(total / ops.maximum(count, 1.0), sample_weight=count)
        return {"loss": self.loss_tracker.result()}

    # ---------------------------------------------------------- generation
    def sample_frame(self, context, temperature, seeds, step):
        """One frame per row ``(B, 88)`` from the NADE given the LSTM output ``(B, units)``,
        keys drawn lowest first; key ``i`` of draw ``step`` uses ``row_uniforms(seeds, 88 * step + i)``
        (``temperature <= 0``: each key on iff its probability exceeds one half)."""
        b, c = common.float32(self.to_b(context), self.to_c(context))  # the key loop in float32
        temperature = tf.cast(temperature, tf.float32)
        greedy = temperature <= 0
        scale = tf.where(greedy, 1.0, temperature)

        def body(i, acc, frame):
            h = tf.sigmoid(acc)  # (B, H)
            logit = tf.gather(b, i, axis=1) + tf.reduce_sum(h * tf.gather(self.v, i), axis=-1)
            u = sampling.row_uniforms(seeds, KEYS * step + i, 1)[:, 0]
            on = tf.where(greedy, logit > 0, u < tf.sigmoid(logit / scale))
            on = tf.cast(on, tf.float32)
            frame = frame + on[:, None] * tf.one_hot(i, KEYS)[None]
            return i + 1, acc + on[:, None] * tf.gather(self.w, i)[None], frame

        batch = tf.shape(context)[0]
        _, _, frame = tf.while_loop(lambda i, *_: i < KEYS, body,
                                    (tf.constant(0), c, tf.zeros(tf.stack([batch, KEYS]))))
        return frame

    def generate_frames(self, primer, primer_len, num_frames, temperature, seeds):
        """New frames ``(B, max(num_frames), 88)`` after each row's first ``primer_len`` primer frames.

        ``primer`` ``(B, P, 88)``; ``num_frames``, ``temperature``, ``seeds`` ``(B,)`` (or scalars for
        ``num_frames``). Frame ``g`` of row ``i`` depends on ``seeds[i]`` and ``g`` only; rows past their
        own ``num_frames`` are zero.
        """
        primer = tf.cast(primer, tf.float32)
        batch = tf.shape(primer)[0]
        primer_len = tf.cast(primer_len, tf.int32)
        num_frames = tf.broadcast_to(tf.cast(num_frames, tf.int32), [batch])
        seeds = tf.cast(seeds, tf.int32)
        temperature = tf.broadcast_to(tf.cast(temperature, tf.float32), [batch])
        n_max = tf.reduce_max(num_frames)
        width = tf.shape(primer)[1] + n_max
        buf = tf.pad(primer, tf.stack([[0, 0], tf.stack([0, n_max]), [0, 0]]))
        steps = tf.reduce_max(primer_len + num_frames)
        zeros = tf.zeros(tf.stack([batch, self.units]), self.compute_dtype)
        states = tuple((zeros, zeros) for _ in self.rnns)

        def body(t, buf, states):
            prev = tf.where(t > 0, tf.gather(buf, tf.maximum(t - 1, 0), axis=1), 0.0)  # (B, 88)
            x, new_states = prev, []
            for rnn, (h, c) in zip(self.rnns, states, strict=True):
                x, (h, c) = rnn.cell(x, [h, c], training=False)
                new_states.append((h, c))
            g = t - primer_len  # index of the frame drawn at t (< 0: still the primer)
            drawn = self.sample_frame(x, temperature, seeds, tf.maximum(g, 0))
            frame = tf.where((g >= 0)[:, None], drawn, tf.gather(buf, tf.minimum(t, width - 1), axis=1))
            at_t = tf.equal(tf.range(width), t)[None, :, None]
            return t + 1, tf.where(at_t, frame[:, None], buf), tuple(new_states)

        _, buf, _ = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), buf, states),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None, KEYS]),
                              tuple((tf.TensorShape([None, self.units]),) * 2 for _ in self.rnns)))
        cols = tf.range(n_max)[None, :]
        out = tf.gather(buf, tf.minimum(primer_len[:, None] + cols, width - 1), batch_dims=1)
        return out * tf.cast(cols < num_frames[:, None], tf.float32)[..., None]

    def generate_notes(self, pitch, start, end, velocity, num_notes, steps, temperature, seed):
        """Note arrays in, note arrays out (the SavedModel's signature): the primer's frames
        (:func:`aigc_tf.music.representations.frames_row`, shifted to start at 0) continued by
        ``steps`` frames (``<= 0``: 32, eight bars of 4/4), as notes of a beat per frame."""
        primer = R.batch_rows(lambda p, s, e, v: R.frames_row(p, s, e), pitch, start, end, velocity, num_notes,
                              dtype=tf.float32, inner=(KEYS,))
        primer_len = tf.cast(primer.row_lengths(), tf.int32)
        primer = primer.to_tensor(shape=[None, None, KEYS])
        steps = tf.where(tf.cast(steps, tf.int32) > 0, tf.cast(steps, tf.int32), DEFAULT_FRAMES)
        new = self.generate_frames(primer, primer_len, steps, temperature, seed)
        frames = join_rows(primer, primer_len, new)
        p, s, e, v, n = R.frames_to_notes_batch(frames, primer_len + steps)
        return {"pitch": p, "start": s, "end": e, "velocity": v, "num_notes": n, "frames": frames,
                "primer_frames": primer_len}


DEFAULT_FRAMES = 32  # eight bars of quarter-note frames


def join_rows(first, first_len, second):
    """Each row's first ``first_len`` items of ``first`` ``(B, P, ...)`` followed by ``second`` ``(B, N, ...)``:
    ``(B, P + N, ...)``, zero-padded."""
    p, n = tf.shape(first)[1], tf.shape(second)[1]
    pad = [[0, 0], [0, 1]] + [[0, 0]] * (first.shape.rank - 2)
    first, second = tf.pad(first, pad), tf.pad(second, pad)  # a zero item to point at (P or N may be 0)
    pos = tf.range(p + n)[None, :]
    first_len = tf.cast(first_len, tf.int32)[:, None]
    index_a = tf.where(pos < first_len, pos, p)
    index_b = tf.where((pos >= first_len) & (pos - first_len < n), pos - first_len, n)
    a = tf.gather(first, tf.broadcast_to(index_a, tf.shape(index_b)), batch_dims=1)
    b = tf.gather(second, index_b, batch_dims=1)
    return a + b
