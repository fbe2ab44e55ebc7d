"""Representations of note arrays, written in TensorFlow so that the same code
prepares training data (eagerly, once per piece) and runs inside exported
SavedModels (a primer given as note arrays, generated tokens back to notes).

Every function works on one piece (``*_row``); the ``batch_*`` wrappers map
them over padded batches ``(pitch, start, end, velocity)`` ``(B, N)`` with
``num_notes`` ``(B,)``. Times are seconds at 120 bpm; a grid of
``steps_per_beat`` steps per beat quantises them (nearest step, at least one
step long).

* **Event tokens** (:class:`EventVocabulary`, Performance RNN / Music
  Transformer style): ``NOTE_ON(p)``, ``NOTE_OFF(p)``, ``TIME_SHIFT(1..M)``
  grid steps, optionally ``VELOCITY(bin)`` before a note-on whose bin
  changed and ``BAR`` at bar lines. Same-pitch notes that overlap are
  merged first (a unison of two voices is one sounding key), so decoding is
  unambiguous and ``detokenize(tokenize(x))`` is ``x`` on the grid.
* **Melody tokens** (MelodyRNN style), one per grid step: ``ON(p)``,
  ``REST`` (the melody note ends), ``HOLD`` (nothing new). The melody of
  polyphonic music is its skyline: the highest note starting at a step.
* **Note events** (the TensorFlow music tutorial's, on the grid): per note
  ``pitch``, ``step`` (grid steps since the previous onset, clipped to
  ``max_step``) and ``duration`` (grid steps, clipped to
  ``1..max_duration``), sorted by onset then pitch.
* **Frames**: binary 88-key vectors (MIDI 21-108) at every beat, the JSB
  Chorales resolution.

Piano rolls (bars x steps x pitches x voices) for the GAN are numpy
(:func:`piano_roll_phrases`, :func:`roll_to_notes`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from aigc_tf.music.notes import DEFAULT_VELOCITY, SECONDS_PER_BEAT, make_notes

LOWEST_KEY = 21  # A0: frame key 0
KEYS = 88
_EPS = 1e-4


# ----------------------------------------------------------------- helpers
def _grid(start, end, steps_per_beat: int):
    """Seconds -> int32 grid steps: ``(start, end)`` with ``end >= start + 1``."""
    scale = steps_per_beat / SECONDS_PER_BEAT
    s = tf.cast(tf.round(tf.cast(start, tf.float32) * scale), tf.int32)
    e = tf.maximum(tf.cast(tf.round(tf.cast(end, tf.float32) * scale), tf.int32), s + 1)
    return s, e


def _seconds(steps, steps_per_beat: int):
    return tf.cast(steps, tf.float32) * (SECONDS_PER_BEAT / steps_per_beat)


def _sorted_notes(pitch, s, e, velocity):
    """Notes sorted by (start, pitch)."""
    order = tf.argsort(tf.cast(s, tf.int64) * 256 + tf.cast(pitch, tf.int64), stable=True)
    return tuple(tf.gather(x, order) for x in (pitch, s, e, velocity))


def merge_unisons(pitch, s, e, velocity):
    """Same-pitch notes that overlap on the grid become one (start of the first,
    the latest end, the first's velocity); notes that only touch stay apart."""
    pitch = tf.cast(pitch, tf.int32)
    order = tf.argsort(tf.cast(pitch, tf.int64) * (1 << 40) + tf.cast(s, tf.int64), stable=True)
    pitch, s, e, velocity = (tf.gather(x, order) for x in (pitch, s, e, velocity))
    n = tf.shape(pitch)[0]
    # Running max of the end within each pitch (keys offset by pitch keep the pitches apart).
    key = tf.cast(pitch, tf.int64) * (1 << 40) + tf.cast(e, tf.int64)
    running = _cummax(key)
    before = tf.concat([tf.constant([-1], tf.int64), running[:-1]], 0)
    same_pitch = tf.concat([[False], tf.equal(pitch[1:], pitch[:-1])], 0)
    overlaps = same_pitch & (tf.cast(s, tf.int64) + tf.cast(pitch, tf.int64) * (1 << 40) < before)
    group = tf.cumsum(tf.cast(~overlaps, tf.int32)) - 1
    groups = tf.maximum(tf.reduce_max(tf.concat([group, [-1]], 0)) + 1, 0)
    first = tf.math.unsorted_segment_min(tf.range(n), group, groups)
    return _sorted_notes(tf.gather(pitch, first), tf.gather(s, first),
                         tf.math.unsorted_segment_max(e, group, groups), tf.gather(velocity, first))


def _cummax(x):
    """Cumulative maximum of a 1-D tensor (TensorFlow has no cummax op)."""
    return tf.scan(tf.maximum, x, initializer=tf.constant(x.dtype.min, x.dtype))  # works on empty input too


# ------------------------------------------------------------ event tokens
@dataclasses.dataclass(frozen=True)
class EventVocabulary:
    """Token ids of the event representation.

    ``0`` padding, ``1`` unknown (never produced), ``2`` START (begins every
    piece), then ``NOTE_ON`` 0-127, ``NOTE_OFF`` 0-127, ``TIME_SHIFT``
    1..``max_shift`` grid steps, ``VELOCITY`` bins (if ``velocity_bins``),
    ``BAR`` (if ``bars``).
    """

    steps_per_beat: int = 4
    max_shift: int = 16
    velocity_bins: int = 0
    bars: bool = False
    beats_per_bar: int = 4

    START = 2
    ON = 3

    @property
    def off(self) -> int:
        return self.ON + 128

    @property
    def shift(self) -> int:  # id of TIME_SHIFT(1)
        return self.ON + 256

    @property
    def velocity(self) -> int:
        return self.shift + self.max_shift

    @property
    def bar(self) -> int:
        return self.velocity + self.velocity_bins

    @property
    def size(self) -> int:
        return self.bar + (1 if self.bars else 0)

    def describe(self, token: int) -> str:
        t = int(token)
        if t < 3:
            return ("PAD", "UNK", "START")[t]
        if t < self.off:
            return f"ON({t - self.ON})"
        if t < self.shift:
            return f"OFF({t - self.off})"
        if t < self.velocity:
            return f"SHIFT({t - self.shift + 1})"
        if t < self.bar:
            return f"VEL({t - self.velocity})"
        return "BAR"

    def velocity_bin(self, velocity):
        return tf.clip_by_value(tf.cast(velocity, tf.int32) * self.velocity_bins // 128, 0, self.velocity_bins - 1)

    def bin_velocity(self, b):
        """The velocity a bin decodes to (its centre)."""
        width = 128 // self.velocity_bins
        return tf.clip_by_value(tf.cast(b, tf.int32) * 128 // self.velocity_bins + width // 2, 1, 127)


def tokenize_row(vocab: EventVocabulary, pitch, start, end, velocity, bar_phase=0.0, with_start: bool = True):
    """One piece's notes -> int32 event tokens (1-D), ``[START, ...]``.

    Events at the same step are ordered BAR, offs, then (velocity and) ons,
    each group by pitch; time shifts longer than ``max_shift`` are split.
    ``bar_phase``: seconds from 0 to the first bar line.
    """
    s, e = _grid(start, end, vocab.steps_per_beat)
    pitch, s, e, velocity = merge_unisons(tf.cast(pitch, tf.int32), s, e, tf.cast(velocity, tf.int32))
    times = [e, s]
    groups = [tf.fill(tf.shape(e), 1), tf.fill(tf.shape(s), 2)]
    subs = [tf.ones_like(e), tf.ones_like(s)]
    pitches = [pitch, pitch]
    tokens = [vocab.off + pitch, vocab.ON + pitch]
    if vocab.velocity_bins:
        bins = vocab.velocity_bin(velocity)  # notes are sorted by (start, pitch): the order of their ons
        changed = tf.concat([[True], tf.not_equal(bins[1:], bins[:-1])], 0)
        times.append(tf.boolean_mask(s, changed))
        groups.append(tf.fill(tf.shape(times[-1]), 2))
        subs.append(tf.zeros_like(times[-1]))
        pitches.append(tf.boolean_mask(pitch, changed))
        tokens.append(vocab.velocity + tf.boolean_mask(bins, changed))
    if vocab.bars:
        bar_steps = vocab.beats_per_bar * vocab.steps_per_beat
        phase = tf.cast(tf.round(tf.cast(bar_phase, tf.float32) * vocab.steps_per_beat / SECONDS_PER_BEAT), tf.int32)
        last = tf.reduce_max(tf.concat([e, [0]], 0))
        bars = tf.range(phase % bar_steps, last + 1, bar_steps)
        times.append(bars)
        groups.append(tf.zeros_like(bars))
        subs.append(tf.zeros_like(bars))
        pitches.append(tf.zeros_like(bars))
        tokens.append(tf.fill(tf.shape(bars), vocab.bar))
    time, group, sub, pit, tok = (tf.concat(x, 0) for x in (times, groups, subs, pitches, tokens))
    key = ((tf.cast(time, tf.int64) * 3 + tf.cast(group, tf.int64)) * 128 + tf.cast(pit, tf.int64)) * 2 + tf.cast(sub, tf.int64)
    order = tf.argsort(key, stable=True)
    time, tok = tf.gather(time, order), tf.gather(tok, order)
    delta = time - tf.concat([[0], time[:-1]], 0)
    m = vocab.max_shift
    shifts = (delta + m - 1) // m  # TIME_SHIFT tokens before each event
    ragged_pos = tf.ragged.range(shifts + 1)
    n = tf.gather(shifts, ragged_pos.value_rowids())
    d = tf.gather(delta, ragged_pos.value_rowids())
    j = ragged_pos.flat_values
    shift_token = vocab.shift - 1 + tf.where(j < n - 1, m, d - (n - 1) * m)
    flat = tf.where(j == n, tf.gather(tok, ragged_pos.value_rowids()), shift_token)
    if with_start:
        flat = tf.concat([[EventVocabulary.START], flat], 0)
    return tf.cast(flat, tf.int32)


def detokenize_batch(vocab: EventVocabulary, tokens):
    """Event tokens ``(B, T)`` -> ``(pitch, start, end, velocity, num_notes)``, notes sorted by (start, pitch).

    A ``NOTE_ON`` of a sounding pitch ends it and starts a new note; a
    ``NOTE_OFF`` of a silent pitch, zero-length notes, START, BAR and padding
    are ignored; notes still sounding at the end close at the last time.
    """
    tokens = tf.cast(tokens, tf.int32)
    batch = tf.shape(tokens)[0]
    default_velocity = DEFAULT_VELOCITY if not vocab.velocity_bins else 64
    init = (
        tf.zeros([batch], tf.int32),  # time (steps)
        tf.fill([batch], default_velocity),  # current velocity
        tf.fill([batch, 128], -1),  # onset step of each sounding pitch
        tf.zeros([batch, 128], tf.int32),  # its velocity
        tf.zeros([batch, 5], tf.int32),  # the note this token closed: pitch, start, end, velocity, valid
    )

    def step(state, token):
        time, vel, onset, onvel, _ = state
        is_on = (token >= vocab.ON) & (token < vocab.off)
        is_off = (token >= vocab.off) & (token < vocab.shift)
        is_shift = (token >= vocab.shift) & (token < vocab.velocity)
        is_vel = (token >= vocab.velocity) & (token < vocab.bar)
        p = tf.where(is_on, token - vocab.ON, tf.where(is_off, token - vocab.off, 0))
        keys = tf.one_hot(p, 128, on_value=True, off_value=False)  # (B, 128)
        was = tf.gather(onset, p, batch_dims=1)
        was_vel = tf.gather(onvel, p, batch_dims=1)
        closes = (is_on | is_off) & (was >= 0) & (was < time)
        closed = tf.stack([p, was, time, was_vel, tf.cast(closes, tf.int32)], 1)
        new_onset = tf.where(is_on[:, None] & keys, tf.where(was[:, None] == time[:, None], onset, time[:, None]),
                             tf.where(is_off[:, None] & keys, -1, onset))
        new_onvel = tf.where(is_on[:, None] & keys & (was[:, None] != time[:, None]), vel[:, None], onvel)
        time = time + tf.where(is_shift, token - vocab.shift + 1, 0)
        if vocab.velocity_bins:
            vel = tf.where(is_vel, vocab.bin_velocity(token - vocab.velocity), vel)
        return time, vel, new_onset, new_onvel, closed

    states = tf.scan(step, tf.transpose(tokens), initializer=init)
    closed = tf.transpose(states[4], [1, 0, 2])  # (B, T, 5)
    time, onset, onvel = states[0][-1], states[2][-1], states[3][-1]
    still = (onset >= 0) & (onset < time[:, None])
    tail = tf.stack([tf.broadcast_to(tf.range(128), [batch, 128]), onset, tf.broadcast_to(time[:, None], [batch, 128]),
                     onvel, tf.cast(still, tf.int32)], 2)
    notes = tf.concat([closed, tail], 1)  # (B, T + 128, 5)
    return _pack_notes(notes, vocab.steps_per_beat)


def _pack_notes(notes, steps_per_beat: int):
    """``(B, K, 5)`` candidate notes (pitch, start, end, velocity, valid) on the grid ->
    padded note arrays sorted by (start, pitch) with their counts."""
    valid = notes[..., 4] > 0
    key = tf.where(valid, tf.cast(notes[..., 1], tf.int64) * 256 + tf.cast(notes[..., 0], tf.int64),
                   tf.int64.max)
    order = tf.argsort(key, axis=1, stable=True)
    notes = tf.gather(notes, order, batch_dims=1)
    count = tf.reduce_sum(tf.cast(valid, tf.int32), 1)
    width = tf.reduce_max(tf.concat([count, [0]], 0))
    notes = notes[:, :width]
    live = tf.range(width)[None, :] < count[:, None]
    zero = tf.zeros_like(notes[..., 0])
    pitch = tf.where(live, notes[..., 0], zero)
    start = tf.where(live, _seconds(notes[..., 1], steps_per_beat), 0.0)
    end = tf.where(live, _seconds(notes[..., 2], steps_per_beat), 0.0)
    velocity = tf.where(live, notes[..., 3], zero)
    return pitch, start, end, velocity, count


# ----------------------------------------------------------- melody tokens
MELODY_HOLD = 2
MELODY_REST = 3
MELODY_ON = 4
MELODY_VOCAB = MELODY_ON + 128


def melody_row(pitch, start, end, steps_per_beat: int = 4):
    """One piece's notes -> its skyline melody as int32 tokens, one per grid step
    (``ON(p)``, ``REST`` where the melody note ends before the next, ``HOLD``
    elsewhere, including silence before the first note)."""
    s, e = _grid(start, end, steps_per_beat)
    pitch = tf.cast(pitch, tf.int32)
    length = tf.reduce_max(tf.concat([e, [1]], 0)) + 1
    key = tf.cast(pitch, tf.int64) * tf.cast(length, tf.int64) + tf.cast(e, tf.int64)
    best = tf.math.unsorted_segment_max(key, s, length)  # highest pitch starting at each step (then its end)
    has = best >= 0
    steps = tf.cast(tf.where(has)[:, 0], tf.int32)  # onset steps of the melody, sorted
    best = tf.boolean_mask(best, has)
    mel_pitch = tf.cast(best // tf.cast(length, tf.int64), tf.int32)
    mel_end = tf.cast(best % tf.cast(length, tf.int64), tf.int32)
    nxt = tf.concat([steps[1:], [tf.int32.max]], 0)
    eff_end = tf.minimum(mel_end, nxt)
    total = tf.reduce_max(tf.concat([eff_end, [0]], 0))
    out = tf.fill([total], MELODY_HOLD)
    rests = tf.boolean_mask(eff_end, (eff_end < nxt) & (eff_end < total))
    out = tf.tensor_scatter_nd_update(out, rests[:, None], tf.fill(tf.shape(rests), MELODY_REST))
    return tf.tensor_scatter_nd_update(out, steps[:, None], MELODY_ON + mel_pitch)


def melody_to_notes_batch(tokens, steps_per_beat: int = 4):
    """Melody tokens ``(B, T)`` (0 = padding, ignored) -> padded note arrays and counts."""
    tokens = tf.cast(tokens, tf.int32)
    batch, width = tf.shape(tokens)[0], tf.shape(tokens)[1]
    length = tf.reduce_sum(tf.cast(tokens != 0, tf.int32), 1)
    pos = tf.range(width)[None, :]
    event = (tokens == MELODY_REST) | (tokens >= MELODY_ON)
    event = event & (pos < length[:, None])
    # The next event at or after each position, from the right: a reversed cumulative minimum.
    marks = tf.where(event, pos, tf.broadcast_to(length[:, None], [batch, width]))
    after = tf.concat([marks[:, 1:], length[:, None]], 1)
    nxt = tf.reverse(tf.scan(tf.minimum, tf.reverse(tf.transpose(after), [0])), [0])
    nxt = tf.transpose(nxt)  # (B, T): first event position strictly after each position
    is_on = (tokens >= MELODY_ON) & (pos < length[:, None])
    notes = tf.stack([tokens - MELODY_ON, tf.broadcast_to(pos, [batch, width]), nxt,
                      tf.fill([batch, width], DEFAULT_VELOCITY), tf.cast(is_on, tf.int32)], 2)
    return _pack_notes(notes, steps_per_beat)


# ------------------------------------------------------------- note events
def note_events_row(pitch, start, end, steps_per_beat: int = 4, max_step: int = 32, max_duration: int = 32):
    """One piece's notes -> ``(pitch, step, duration)`` int32 per note, sorted by (start, pitch):
    step in ``0..max_step`` grid steps since the previous onset, duration in ``1..max_duration``."""
    s, e = _grid(start, end, steps_per_beat)
    pitch, s, e, _ = _sorted_notes(tf.cast(pitch, tf.int32), s, e, tf.zeros_like(s))
    step = tf.clip_by_value(s - tf.concat([[0], s[:-1]], 0), 0, max_step)
    duration = tf.clip_by_value(e - s, 1, max_duration)
    return pitch, step, duration


def note_events_to_notes_batch(pitch, step, duration, count, steps_per_beat: int = 4):
    """``(pitch, step, duration)`` ``(B, T)`` with ``count`` real notes per row -> padded note arrays."""
    pitch, step, duration = (tf.cast(x, tf.int32) for x in (pitch, step, duration))
    start = tf.cumsum(step, axis=1)
    batch, width = tf.shape(pitch)[0], tf.shape(pitch)[1]
    live = tf.range(width)[None, :] < tf.cast(count, tf.int32)[:, None]
    notes = tf.stack([pitch, start, start + duration, tf.fill([batch, width], DEFAULT_VELOCITY),
                      tf.cast(live, tf.int32)], 2)
    return _pack_notes(notes, steps_per_beat)


# ------------------------------------------------------------------ frames
def frames_row(pitch, start, end):
    """One piece's notes -> ``(F, 88)`` float32 frames at every beat from the first onset's beat
    (a key is on in frame k if a note of it sounds at that beat); pitches outside 21-108 are dropped."""
    beat_start = tf.cast(start, tf.float32) / SECONDS_PER_BEAT
    beat_end = tf.cast(end, tf.float32) / SECONDS_PER_BEAT
    b0 = tf.floor(tf.reduce_min(tf.concat([beat_start, [1e9]], 0)) + _EPS)
    count = tf.cast(tf.math.ceil(tf.reduce_max(tf.concat([beat_end, [b0]], 0)) - b0 - _EPS), tf.int32)
    t = b0 + tf.cast(tf.range(count), tf.float32)  # (F,)
    sounding = (beat_start[None, :] <= t[:, None] + _EPS) & (beat_end[None, :] > t[:, None] + _EPS)  # (F, N)
    keys = tf.one_hot(tf.cast(pitch, tf.int32) - LOWEST_KEY, KEYS)  # (N, 88); outside the range: all zero
    return tf.cast(tf.matmul(tf.cast(sounding, tf.float32), keys) > 0, tf.float32)


def frames_to_notes_batch(frames, num_frames):
    """Frames ``(B, F, 88)`` (the first ``num_frames`` real) -> padded note arrays (a key held over
    consecutive frames is one note; a frame lasts a beat)."""
    frames = tf.cast(frames, tf.float32) > 0.5
    batch, width = tf.shape(frames)[0], tf.shape(frames)[1]
    frames = frames & (tf.range(width)[None, :, None] < tf.cast(num_frames, tf.int32)[:, None, None])
    keyed = tf.transpose(frames, [0, 2, 1])  # (B, 88, F)
    padded = tf.pad(keyed, [[0, 0], [0, 0], [1, 1]])
    onsets = padded[..., 1:-1] & ~padded[..., :-2]
    offsets = ~padded[..., 1:] & padded[..., :-1]  # (B, 88, F + 1): a note ending at each position
    on_idx = tf.where(onsets)  # (n, 3) in (b, key, t) order
    off_idx = tf.where(offsets)  # the same notes, in the same order
    b = tf.cast(on_idx[:, 0], tf.int32)
    notes = tf.stack([tf.cast(on_idx[:, 1], tf.int32) + LOWEST_KEY, tf.cast(on_idx[:, 2], tf.int32),
                      tf.cast(off_idx[:, 2], tf.int32), tf.fill(tf.shape(b), DEFAULT_VELOCITY),
                      tf.ones_like(b)], 1)
    per_row = tf.RaggedTensor.from_value_rowids(notes, b, nrows=batch).to_tensor()
    return _pack_notes(per_row, 1)


# -------------------------------------------------------- batch wrappers
def batch_rows(fn, pitch, start, end, velocity, num_notes, dtype=tf.int32, inner: tuple = ()):
    """``fn(pitch, start, end, velocity)`` -> ``(n, *inner)`` tensor, on each row's first ``num_notes``
    notes; returns a ragged ``(B, None, *inner)`` batch."""

    def one(row):
        p, s, e, v, n = row
        return fn(p[:n], s[:n], e[:n], v[:n])

    return tf.map_fn(one, (pitch, start, end, velocity, tf.cast(num_notes, tf.int32)),
                     fn_output_signature=tf.RaggedTensorSpec(shape=[None, *inner], dtype=dtype, ragged_rank=0))


# ------------------------------------------------------------ piano rolls
def piano_roll(notes: np.ndarray, steps_per_beat: int, total_steps: int, pitch_low: int, num_pitches: int,
               voices: int) -> np.ndarray:
    """Binary ``(total_steps, num_pitches, voices)`` roll of a note array (numpy); notes outside the
    pitch range or voices are dropped. A note covers ``[start, end)`` on the grid."""
    from aigc_tf.music.notes import grid

    roll = np.zeros((total_steps, num_pitches, voices), bool)
    s, e = grid(notes, steps_per_beat)
    for p, a, b, v in zip(notes["pitch"] - pitch_low, s, e, notes["voice"], strict=True):
        if 0 <= p < num_pitches and 0 <= v < voices and a < total_steps:
            roll[a : min(b, total_steps), p, v] = True
    return roll


def roll_to_notes(roll: np.ndarray, steps_per_beat: int, pitch_low: int, velocity: int = DEFAULT_VELOCITY,
                  threshold: float = 0.0) -> np.ndarray:
    """``(steps, pitches, voices)`` roll (values above ``threshold`` are on) -> a note array
    (a key held over consecutive steps is one note)."""
    on = np.asarray(roll) > threshold
    padded = np.pad(on, ((1, 1), (0, 0), (0, 0)))
    starts = np.argwhere(padded[1:-1] & ~padded[:-2])
    ends = np.argwhere(~padded[2:] & padded[1:-1])
    # argwhere is in (step, pitch, voice) order; pair onsets and ends per (pitch, voice).
    order_s = np.lexsort((starts[:, 0], starts[:, 2], starts[:, 1]))
    order_e = np.lexsort((ends[:, 0], ends[:, 2], ends[:, 1]))
    starts, ends = starts[order_s], ends[order_e]
    step = SECONDS_PER_BEAT / steps_per_beat
    return make_notes(starts[:, 1] + pitch_low, starts[:, 0] * step, (ends[:, 0] + 1) * step,
                      np.full(len(starts), velocity), starts[:, 2])


def notes_from_arrays(pitch, start, end, velocity, count=None) -> list[np.ndarray]:
    """Padded batch arrays (numpy or tensors) -> one note array per row."""
    pitch, start, end, velocity = (np.asarray(x) for x in (pitch, start, end, velocity))
    if pitch.ndim == 1:
        pitch, start, end, velocity = pitch[None], start[None], end[None], velocity[None]
        count = None if count is None else np.asarray([count]).reshape(-1)
    count = np.full(len(pitch), pitch.shape[1]) if count is None else np.asarray(count)
    out = []
    for i, n in enumerate(count):
        n = int(n)
        out.append(make_notes(pitch[i, :n], start[i, :n], end[i, :n], velocity[i, :n]))
    return out


def pad_notes(note_arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Note arrays -> padded ``pitch, start, end, velocity`` ``(B, N)`` and ``num_notes`` (B,)."""
    n = max([len(a) for a in note_arrays] + [1])
    out = {"pitch": np.zeros((len(note_arrays), n), np.int32), "start": np.zeros((len(note_arrays), n), np.float32),
           "end": np.zeros((len(note_arrays), n), np.float32), "velocity": np.zeros((len(note_arrays), n), np.int32),
           "num_notes": np.array([len(a) for a in note_arrays], np.int32)}
    for i, a in enumerate(note_arrays):
        out["pitch"][i, : len(a)] = a["pitch"]
        out["start"][i, : len(a)] = a["start"]
        out["end"][i, : len(a)] = a["end"]
        out["velocity"][i, : len(a)] = a["velocity"]
    return out

