"""The TensorFlow music tutorial's note LSTM (pitch / step / duration heads), with likelihoods."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from aigc_tf import sampling
from aigc_tf.models import common
from aigc_tf.models.sequence_base import global_sum
from aigc_tf.music import representations as R
from aigc_tf.music.chorale_nade import join_rows

FIELDS = ("pitch", "step", "duration")


@keras.saving.register_keras_serializable(package="aigc_tf")
class NoteLSTM(common.SingleOptimizerMixin, common.SeedStateMixin, keras.Model):
    """Notes in, the next note out: each note is ``(pitch, step, duration)``
    (:func:`aigc_tf.music.representations.note_events_row`), embedded and summed
    into an LSTM whose state feeds three heads, as in TensorFlow's
    music_generation tutorial. The tutorial regresses step and duration in
    seconds with an MSE; here they are classes on the 16th-note grid
    (``0..max_step`` and ``1..max_duration`` steps), so every head is a softmax
    and ``-log P(pitch) - log P(step) - log P(duration)`` is the note's
    negative log-likelihood in nats (logged as ``nll``). The training loss
    weights the three terms (the tutorial's weighted losses; 1, 1, 1 is the
    NLL). The heads are independent given the history.

    Args:
        steps_per_beat: time grid (4: 16th notes).
        max_step: largest step class (longer gaps are clipped to it).
        max_duration: largest duration in grid steps (longer notes are clipped).
        embed_dim: width of each field's embedding (summed).
        units: LSTM width (tutorial: 128).
        num_layers: stacked LSTM layers.
        dropout: dropout between layers in training.
        pitch_weight, step_weight, duration_weight: loss weights of the heads.
        seed: initial seed of the model's ``SeedGenerator``.

    Example:
        >>> model = NoteLSTM(units=128)
        >>> model.compile()
        >>> model.fit(windows)  # ({"pitch", "step", "duration"}, same one note later), int32 (B, T)
    """

    def __init__(self, steps_per_beat: int = 4, max_step: int = 32, max_duration: int = 32, embed_dim: int = 64,
                 units: int = 128, num_layers: int = 1, dropout: float = 0.0, pitch_weight: float = 1.0,
                 step_weight: float = 1.0, duration_weight: float = 1.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.steps_per_beat = steps_per_beat
        self.max_step = max_step
        self.max_duration = max_duration
        self.embed_dim = embed_dim
        self.units = units
        self.num_layers = num_layers
        self.dropout = dropout
        self.pitch_weight = pitch_weight
        self.step_weight = step_weight
        self.duration_weight = duration_weight
        self.seed = seed
        self.sizes = {"pitch": 128, "step": max_step + 1, "duration": max_duration}
        init = lambda k: keras.initializers.RandomUniform(-0.05, 0.05, seed=None if seed is None else seed + k)  # noqa: E731
        self.embeddings = {f: keras.layers.Embedding(n, embed_dim, embeddings_initializer=init(i), name=f"{f}_embedding")
                           for i, (f, n) in enumerate(self.sizes.items())}
        self.rnns = [keras.layers.LSTM(units, return_sequences=True, return_state=True, name=f"lstm_{i}")
                     for i in range(num_layers)]
        self.drop = keras.layers.Dropout(dropout)
        self.heads = {f: keras.layers.Dense(n, name=f"{f}_head") for f, n in self.sizes.items()}
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.nll_trackers = {f: keras.metrics.Mean(name=f"{f}_nll") for f in FIELDS}
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.build(None)

    def build(self, input_shape):
        for layer in self.embeddings.values():
            layer.build((None, None))
        width = self.embed_dim
        for rnn in self.rnns:
            rnn.build((None, None, width))
            width = self.units
        for head in self.heads.values():
            head.build((None, None, self.units))
        self.built = True

    def get_config(self):
        return {**super().get_config(), "steps_per_beat": self.steps_per_beat, "max_step": self.max_step,
                "max_duration": self.max_duration, "embed_dim": self.embed_dim, "units": self.units,
                "num_layers": self.num_layers, "dropout": self.dropout, "pitch_weight": self.pitch_weight,
                "step_weight": self.step_weight, "duration_weight": self.duration_weight, "seed": self.seed}

    @property
    def _default_save_signature(self):
        return None

    @property
    def metrics(self):
        return [self.loss_tracker, self.nll_tracker, *self.nll_trackers.values()]

    def _embed(self, notes):
        return sum(self.embeddings[f](tf.cast(notes[f], tf.int32)) for f in FIELDS)

    def call(self, notes, training=False):
        """``{"pitch", "step", "duration"}`` (B, T) -> ``{field: logits (B, T, classes)}``."""
        x = self._embed(notes)
        for rnn in self.rnns:
            x, _, _ = rnn(self.drop(x, training=training), training=training)
        x = self.drop(x, training=training)
        return {f: self.heads[f](x) for f in FIELDS}

    def _terms(self, data, training):
        inputs, targets = data
        logits = self(inputs, training=training)
        sums = {f: ops.sum(ops.sparse_categorical_crossentropy(tf.cast(targets[f], tf.int32), common.float32(logits[f]),
                                                               from_logits=True)) for f in FIELDS}
        count = tf.cast(tf.size(targets["pitch"]), tf.float32)
        return sums, count

    # Float32 logits and losses, scaled by the optimizer (train.precision; see models.common).
    mixed_precision = True

    def train_step(self, data):
        with tf.GradientTape() as tape:
            sums, count = self._terms(data, True)
            weighted = (self.pitch_weight * sums["pitch"] + self.step_weight * sums["step"]
                        + self.duration_weight * sums["duration"])
            loss = weighted / ops.maximum(global_sum(count), 1.0)
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.trainable_variables)
        common.apply_gradients(self.optimizer, grads, self.trainable_variables)
        return self._update(sums, count)

    def test_step(self, data):
        return self._update(*self._terms(data, False))

    def _update(self, sums, count):
        n = ops.maximum(count, 1.0)
        weighted = self.pitch_weight * sums["pitch"] + self.step_weight * sums["step"] + self.duration_weight * sums["duration"]
        self.loss_tracker.update_state(weighted / n, sample_weight=count)
        self.nll_tracker.update_state(sum(sums.values()) / n, sample_weight=count)
        for f in FIELDS:
            self.nll_trackers[f].update_state(sums[f] / n, sample_weight=count)
        return {m.name: m.result() for m in self.metrics}

    # ---------------------------------------------------------- generation
    def generate_events(self, primer, primer_len, num_notes, temperature, top_k, top_p, seeds):
        """New notes ``(B, max(num_notes), 3)`` (pitch, step, duration class) after each row's
        ``primer_len`` primer notes ``(B, P, 3)``. Field ``h`` of new note ``g`` of row ``i`` is drawn by
        :func:`aigc_tf.sampling.sample_rows` from ``(seeds[i], 3 g + h)``."""
        primer = tf.cast(primer, tf.int32)
        batch = tf.shape(primer)[0]
        primer_len = tf.cast(primer_len, tf.int32)
        num_notes = tf.cast(num_notes, tf.int32)
        n_max = tf.reduce_max(num_notes)
        # An empty primer starts from a zero note (pitch 0, step 0, duration class 0).
        buf = tf.pad(primer, tf.stack([[0, 0], tf.stack([0, n_max + 1]), [0, 0]]))
        plen = tf.maximum(primer_len, 1)
        width = tf.shape(buf)[1]
        steps = tf.reduce_max(plen + num_notes) - 1
        zeros = tf.zeros(tf.stack([batch, self.units]), self.compute_dtype)
        states = tuple((zeros, zeros) for _ in self.rnns)

        def body(t, buf, states):
            note = tf.gather(buf, t, axis=1)  # (B, 3)
            x = self._embed({f: note[:, i] for i, f in enumerate(FIELDS)})
            new_states = []
            for rnn, (h, c) in zip(self.rnns, states, strict=True):
                x, (h, c) = rnn.cell(x, [h, c], training=False)
                new_states.append((h, c))
            g = t + 1 - plen  # index of the new note at position t + 1 (< 0: still the primer)
            drawn = tf.stack([sampling.sample_rows(self.heads[f](x), seeds, 3 * tf.maximum(g, 0) + i,
                                                   temperature=temperature, top_k=top_k, top_p=top_p)
                              for i, f in enumerate(FIELDS)], 1)
            forced = tf.gather(buf, tf.minimum(t + 1, width - 1), axis=1)
            nxt = tf.where((g < 0)[:, None], forced, drawn)
            at = tf.equal(tf.range(width), t + 1)[None, :, None]
            return t + 1, tf.where(at, nxt[:, None], buf), tuple(new_states)

        _, buf, _ = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), buf, states),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None, 3]),
                              tuple((tf.TensorShape([None, self.units]),) * 2 for _ in self.rnns)))
        cols = tf.range(n_max)[None, :]
        out = tf.gather(buf, tf.minimum(plen[:, None] + cols, width - 1), batch_dims=1)
        return out * tf.cast(cols < num_notes[:, None], tf.int32)[..., None]

    def generate_notes(self, pitch, start, end, velocity, num_notes, steps, temperature, top_k, top_p, seed):
        """Note arrays in, note arrays out: the primer's notes continued by ``steps`` new notes
        (``<= 0``: 128)."""
        def events(p, s, e, v):
            return tf.stack(R.note_events_row(p, s, e, self.steps_per_beat, self.max_step, self.max_duration), 1)

        ragged = R.batch_rows(events, pitch, start, end, velocity, num_notes, inner=(3,))
        primer_len = tf.cast(ragged.row_lengths(), tf.int32)
        primer = ragged.to_tensor(shape=[None, None, 3])
        primer = tf.concat([primer[..., :2], primer[..., 2:] - 1], -1)  # duration -> its class
        steps = tf.cast(steps, tf.int32)
        steps = tf.where(steps > 0, steps, 128)
        new = self.generate_events(primer, primer_len, steps, temperature, top_k, top_p, seed)
        notes = join_rows(primer, primer_len, new)
        p, s, e, v, n = R.note_events_to_notes_batch(notes[..., 0], notes[..., 1], notes[..., 2] + 1,
                                                     primer_len + steps, self.steps_per_beat)
        return {"pitch": p, "start": s, "end": e, "velocity": v, "num_notes": n}
