"""Music sources -> pieces -> one representation -> ``tf.data`` batches.

Sources (``data.name``), each split into train / valid / test:

* ``chorales`` (embedded, offline): the Bach chorales in music21's corpus
  (:mod:`aigc_tf.music.corpus`), split by :func:`aigc_tf.music.notes.split_of`
  of the corpus path (200 / 72 / 78 pieces).
* ``folk`` (embedded, offline): the Essen folk songs in ABC inside music21,
  or the ABC file(s) at ``data.path``; split by tune name.
* ``midi``: a MIDI file or a folder of them at ``data.path`` (one report line
  per file); split by file name (a split that gets no file is empty).
* ``jsb``: a JSB Chorales file at ``data.path`` (JSON or a pickle of plain
  lists, :mod:`aigc_tf.music.jsb`), with its own splits.

Representations (what a family trains on), all int32 with 0 as padding
except frames and rolls:

* ``events`` (music Transformer): ``(inputs, targets)`` ``(B, seq_len)``
  windows, stride ``seq_len``, over the stream of every piece's event tokens
  (each piece begins with START).
* ``melody`` (melody LSTM): ``({"prefix", "decoder_inputs"}, targets)``:
  windows of ``seq_len`` grid steps of the skyline melody, stride
  ``seq_len / 2``; the first half is the seed, the second the continuation
  (``decoder_inputs = [0, targets[:-1]]``).
* ``notes`` (note LSTM): ``(inputs, targets)``, dicts of ``pitch``,
  ``step``, ``duration`` (the duration class, ``duration - 1``) and
  ``velocity`` ``(B, seq_len)``: windows of the note stream, targets one note
  later.
* ``frames`` (chorale model): ``{"frames": (B, T, 88), "length": (B,)}``, one
  piece per row (or windows of ``seq_len`` frames when set), zero-padded.
* ``rolls`` (GAN): ``{"rolls": (B, bars, steps_per_bar, pitches, voices)}``
  in {-1, 1}: every ``bars``-bar phrase starting at a bar line (hop one
  bar) of the pieces in 4/4; voices beyond the model's are dropped.

``data.transpose: k`` shifts every training example by a random number of
semitones in ``[-k, k]``, drawn afresh each epoch (the shift is clipped so
no pitch leaves 0-127, the 88 keys or the roll's range).
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import tensorflow as tf

from aigc_tf.errors import DataError
from aigc_tf.music import jsb as jsb_format
from aigc_tf.music import representations as R
from aigc_tf.music.notes import SECONDS_PER_BEAT, SPLITS, Piece, split_of

REPRESENTATIONS = ("events", "melody", "notes", "frames", "rolls")


@dataclasses.dataclass
class MusicData:
    """What a task gets from :func:`load_music_data`."""

    train: object  # tf.data.Dataset
    test: object | None  # validation batches (the valid split), or None
    pieces: dict  # split -> list[Piece]
    examples: dict  # split -> the representation's examples (numpy), for metrics and baselines
    representation: str
    source: str  # what the data is, in words
    voices: int
    build: object = None  # build(split, train=False) -> that split's batches (None if it has too little)


# ------------------------------------------------------------------- sources
def load_pieces(d, verbose: bool = True) -> tuple[dict[str, list[Piece]], dict | None, str]:
    """``({split: pieces}, JSB frames dict or None, description)`` of ``data:`` section ``d``."""
    from aigc_tf.music import corpus, midi

    frames = None
    if d.name == "chorales":
        # The split needs only the names: parse just the pieces the limits keep.
        names = {s: [] for s in SPLITS}
        for name in corpus.chorale_names():
            names[split_of(name)].append(name)
        names = _limit(names, d.max_examples)
        split_pieces = {s: corpus.chorales(names[s], verbose=verbose) for s in SPLITS}
        frames = {s: [jsb_format.piece_frames(p) for p in split_pieces[s]] for s in SPLITS}
        return split_pieces, frames, "Bach chorales bundled with music21 (split by corpus path)"
    elif d.name == "folk":
        pieces = corpus.folk_tunes(d.path, max_pieces=None, verbose=verbose)
        source = f"folk tunes in ABC ({d.path or 'the Essen collection bundled with music21'})"
    elif d.name == "midi":
        if not d.path:
            raise DataError("data.name=midi needs data.path, a MIDI file or a folder of MIDI files")
        pieces, reports = midi.read_midi_folder(d.path, verbose=verbose)
        source = f"MIDI files under {d.path} ({sum(r.notes for r in reports)} notes in {len(reports)} files)"
    elif d.name == "jsb":
        if not d.path:
            raise DataError("data.name=jsb needs data.path, a JSB Chorales .json or .pickle file")
        frames = jsb_format.load_jsb(d.path)
        split_pieces = {s: jsb_format.jsb_pieces(frames, s) for s in SPLITS}
        return _limit(split_pieces, d.max_examples), _limit(frames, d.max_examples), f"JSB Chorales file {d.path}"
    else:
        raise DataError(f"unknown music dataset {d.name!r}")
    split_pieces = {s: [] for s in SPLITS}
    for piece in sorted(pieces, key=lambda p: p.name):
        split_pieces[split_of(piece.name)].append(piece)
    return _limit(split_pieces, d.max_examples), None, source


def _limit(by_split: dict, max_examples: int | None) -> dict:
    """At most ``max_examples`` training pieces and a quarter as many (at least 4) in valid and test."""
    if max_examples is None:
        return by_split
    small = max(4, max_examples // 4)
    return {s: list(v)[: max_examples if s == "train" else small] for s, v in by_split.items()}


# ------------------------------------------------------- conversions (fast)
def _compiled(fn, n_out: int = 1):
    spec = [tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.float32), tf.TensorSpec([None], tf.float32),
            tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.float32)]
    return tf.function(fn, input_signature=spec, reduce_retracing=True)


def _args(piece: Piece, semitones: int = 0):
    n = piece.notes
    return (np.asarray(n["pitch"], np.int32) + semitones, np.asarray(n["start"], np.float32),
            np.asarray(n["end"], np.float32), np.asarray(n["velocity"], np.int32),
            np.float32(piece.bar_phase * SECONDS_PER_BEAT))


def event_tokens(pieces: list[Piece], vocab: R.EventVocabulary) -> list[np.ndarray]:
    """Each piece's event tokens (beginning with START)."""
    fn = _compiled(lambda p, s, e, v, phase: R.tokenize_row(vocab, p, s, e, v, phase))
    return [fn(*_args(piece)).numpy() for piece in pieces]


def melodies(pieces: list[Piece], steps_per_beat: int) -> list[np.ndarray]:
    fn = _compiled(lambda p, s, e, v, phase: R.melody_row(p, s, e, steps_per_beat))
    return [fn(*_args(piece)).numpy() for piece in pieces]


def note_events(pieces: list[Piece], steps_per_beat: int, max_step: int, max_duration: int) -> list[np.ndarray]:
    """Per piece an ``(n, 4)`` int32 array: pitch, step, duration class (``duration - 1``), velocity."""
    fn = _compiled(lambda p, s, e, v, phase: tf.stack(
        [*R.note_events_row(p, s, e, steps_per_beat, max_step, max_duration)], 1))
    out = []
    for piece in pieces:
        pitch_step_dur = fn(*_args(piece)).numpy()
        velocity = np.sort(piece.notes, order=["start", "pitch"])["velocity"]  # same (start, pitch) order
        out.append(np.column_stack([pitch_step_dur[:, 0], pitch_step_dur[:, 1], pitch_step_dur[:, 2] - 1,
                                    velocity[: len(pitch_step_dur)]]).astype(np.int32))
    return out


def frames_of(frames: list[list[int]]) -> np.ndarray:
    """JSB frames (lists of pitches) -> ``(F, 88)`` float32 (pitches outside 21-108 dropped)."""
    out = np.zeros((len(frames), R.KEYS), np.float32)
    for t, frame in enumerate(frames):
        keys = [p - R.LOWEST_KEY for p in frame if 0 <= p - R.LOWEST_KEY < R.KEYS]
        out[t, keys] = 1.0
    return out


def piano_roll_phrases(pieces: list[Piece], bars: int, steps_per_beat: int, pitch_low: int, num_pitches: int,
                       voices: int) -> np.ndarray:
    """``(N, bars, steps_per_bar, pitches, voices)`` bool phrases of the 4/4 pieces, one per bar line."""
    steps_per_bar = 4 * steps_per_beat
    out = []
    for piece in pieces:
        if piece.beats_per_bar != 4:
            continue
        phase = int(round(piece.bar_phase * steps_per_beat))
        end = int(np.ceil(piece.notes["end"].max() / SECONDS_PER_BEAT * steps_per_beat)) if len(piece.notes) else 0
        roll = R.piano_roll(piece.notes, steps_per_beat, end + 1, pitch_low, num_pitches, voices)
        for first in range(phase, end - bars * steps_per_bar + 1, steps_per_bar):
            phrase = roll[first : first + bars * steps_per_bar]
            if phrase.any():
                out.append(phrase.reshape(bars, steps_per_bar, num_pitches, voices))
    shape = (0, bars, steps_per_bar, num_pitches, voices)
    return np.stack(out) if out else np.zeros(shape, bool)


# --------------------------------------------------------------- transposing
def _shift_range(low, high, lo_bound, hi_bound, k):
    """Clip the shift ``k`` so ``[low + k, high + k]`` stays within the bounds (no notes: 0)."""
    return tf.where(high >= low, tf.clip_by_value(k, lo_bound - low, hi_bound - high), 0)


def _random_shifts(amount: int, seed: int):
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).map(
        lambda r: tf.cast(r % (2 * amount + 1), tf.int32) - amount)


def transpose_tokens(tokens, k, first: int, count: int = 128):
    """Shift every id in ``[first, first + count)`` (a pitch block) by ``k``, clipped to stay inside."""
    inside = (tokens >= first) & (tokens < first + count)
    pitches = tf.where(inside, tokens - first, -1)
    low = tf.reduce_min(tf.where(inside, pitches, count))
    high = tf.reduce_max(pitches)
    k = _shift_range(low, high, 0, count - 1, k)
    return tf.where(inside, tokens + k, tokens), k


def transpose_roll(x, k, axis: int, size: int):
    """Shift a 0/1 (or -1/1) array along its pitch ``axis`` by ``k`` keys, clipped so nothing falls off."""
    on = tf.reduce_any(x > 0, axis=[a for a in range(x.shape.rank) if a != axis])
    idx = tf.cast(tf.where(on)[:, 0], tf.int32)
    low = tf.reduce_min(tf.concat([idx, [size]], 0))
    high = tf.reduce_max(tf.concat([idx, [-1]], 0))
    k = _shift_range(low, high, 0, size - 1, k)
    return tf.roll(x, k, axis=axis)


# -------------------------------------------------------------- pipelines
def _windows(stream: np.ndarray, length: int, stride: int) -> np.ndarray:
    if len(stream) < length:
        return np.zeros((0, length), stream.dtype)
    starts = range(0, len(stream) - length + 1, stride)
    return np.stack([stream[s : s + length] for s in starts])


def _batched(ds, d, train: bool, seed: int, size: int):
    if train:
        ds = ds.shuffle(min(d.shuffle_buffer, max(size, 1)), seed=seed, reshuffle_each_iteration=True)
    return ds


def load_music_data(d, representation: str, params: dict, seed: int = 0, verbose: bool = True) -> MusicData:
    """The ``data:`` section ``d`` as batches of ``representation`` (one of :data:`REPRESENTATIONS`).

    ``params``: what the model decides about the representation (``steps_per_beat``,
    the event vocabulary's ``max_shift`` / ``velocity_bins`` / ``bars``, the note
    classes' ``max_step`` / ``max_duration``, the roll's ``bars`` /
    ``pitch_low`` / ``num_pitches`` / ``voices``).
    """
    pieces, frames, source = load_pieces(d, verbose=verbose)
    if not pieces["train"]:
        raise DataError(f"{source}: no training pieces (the fixed split put every piece into valid/test); "
                        "add more pieces")
    voices = max(p.voices for p in pieces["train"])
    examples: dict[str, object] = {}
    spb = params.get("steps_per_beat", 4)
    if representation == "events":
        vocab = R.EventVocabulary(spb, params["max_shift"], params["velocity_bins"], params["bars"])
        for s in SPLITS:
            toks = event_tokens(pieces[s], vocab)
            examples[s] = np.concatenate(toks).astype(np.int32) if toks else np.zeros(0, np.int32)
        build = lambda s, train: _lm_dataset(examples[s], d, train, seed, vocab)  # noqa: E731
    elif representation == "melody":
        for s in SPLITS:
            examples[s] = melodies(pieces[s], spb)
        build = lambda s, train: _melody_dataset(examples[s], d, train, seed)  # noqa: E731
    elif representation == "notes":
        for s in SPLITS:
            ev = note_events(pieces[s], spb, params["max_step"], params["max_duration"])
            examples[s] = np.concatenate(ev) if ev else np.zeros((0, 4), np.int32)
        build = lambda s, train: _notes_dataset(examples[s], d, train, seed)  # noqa: E731
    elif representation == "frames":
        if frames is None:
            frames = {s: [jsb_format.piece_frames(p) for p in pieces[s]] for s in SPLITS}
        for s in SPLITS:
            examples[s] = [frames_of(f) for f in frames.get(s, []) if len(f)]
        build = lambda s, train: _frames_dataset(examples[s], d, train, seed)  # noqa: E731
    elif representation == "rolls":
        for s in SPLITS:
            examples[s] = piano_roll_phrases(pieces[s], params["bars"], spb, params["pitch_low"],
                                             params["num_pitches"], params["voices"])
        if not len(examples["train"]):
            raise DataError(f"{source}: no {params['bars']}-bar phrase in 4/4 among the training pieces; "
                            "the piano-roll GAN needs pieces in 4/4 at least that long")
        build = lambda s, train: _rolls_dataset(examples[s], d, train, seed)  # noqa: E731
    else:
        raise ValueError(f"unknown representation {representation!r}")
    train = build("train", True)
    if train is None:
        raise DataError(f"{source}: the training pieces are shorter than one window of data.seq_len="
                        f"{d.seq_len}; lower data.seq_len")
    test = build("valid", False) if _has(examples["valid"]) else None

    def build_split(split: str, train: bool = False):
        return build(split, train) if _has(examples[split]) else None

    return MusicData(train, test, pieces, examples, representation, source, voices, build_split)


def _has(x) -> bool:
    return len(x) > 0


def _lm_dataset(stream, d, train, seed, vocab):
    windows = _windows(stream, d.seq_len + 1, d.seq_len)
    if not len(windows):
        return None
    ds = tf.data.Dataset.from_tensor_slices(windows)
    ds = _batched(ds, d, train, seed, len(windows))
    if train and d.transpose:
        ds = tf.data.Dataset.zip(ds, _random_shifts(d.transpose, seed)).map(
            lambda w, k: _transpose_events(w, k, vocab))
    return ds.map(lambda w: (w[:-1], w[1:])).batch(d.batch_size).prefetch(tf.data.AUTOTUNE)


def _transpose_events(window, k, vocab):
    # One shift for the note-ons and the note-offs of a window, clipped for both blocks.
    _, k_on = transpose_tokens(window, k, vocab.ON)
    _, k_both = transpose_tokens(window, k_on, vocab.off)
    window, _ = transpose_tokens(window, k_both, vocab.ON)
    window, _ = transpose_tokens(window, k_both, vocab.off)
    return window


def _melody_dataset(melody_list, d, train, seed):
    length = d.seq_len
    rows = [w for m in melody_list for w in _windows(m, length, max(length // 2, 1))]
    if not rows:
        return None
    ds = tf.data.Dataset.from_tensor_slices(np.stack(rows).astype(np.int32))
    ds = _batched(ds, d, train, seed, len(rows))
    if train and d.transpose:
        ds = tf.data.Dataset.zip(ds, _random_shifts(d.transpose, seed)).map(
            lambda w, k: transpose_tokens(w, k, R.MELODY_ON)[0])
    half = length // 2

    def pair(w):
        target = w[half:]
        return {"prefix": w[:half], "decoder_inputs": tf.concat([[0], target[:-1]], 0)}, target

    return ds.map(pair).batch(d.batch_size).prefetch(tf.data.AUTOTUNE)


def _notes_dataset(events, d, train, seed):
    windows = _windows(events, d.seq_len + 1, d.seq_len)
    if not len(windows):
        return None
    ds = tf.data.Dataset.from_tensor_slices(windows)
    ds = _batched(ds, d, train, seed, len(windows))
    if train and d.transpose:
        def shift(w, k):
            pitch = w[:, 0]
            k = _shift_range(tf.reduce_min(pitch), tf.reduce_max(pitch), 0, 127, k)
            return tf.concat([w[:, :1] + k, w[:, 1:]], 1)

        ds = tf.data.Dataset.zip(ds, _random_shifts(d.transpose, seed)).map(shift)

    def split(w):
        names = ("pitch", "step", "duration", "velocity")
        return ({n: w[:-1, i] for i, n in enumerate(names)}, {n: w[1:, i] for i, n in enumerate(names)})

    return ds.map(split).batch(d.batch_size).prefetch(tf.data.AUTOTUNE)


def _frames_dataset(pieces_frames, d, train, seed):
    if not pieces_frames:
        return None
    rows = []
    for f in pieces_frames:
        if d.seq_len and len(f) > d.seq_len:
            rows.extend(f[s : s + d.seq_len] for s in range(0, len(f) - d.seq_len // 2, d.seq_len))
        else:
            rows.append(f)
    # Batches of similar lengths (sorted, then cut), so little of a batch is padding; training
    # shuffles the batches each epoch (and the pieces within a length class by a seeded draw once).
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(rows)), [len(r) for r in rows]))
    width = max(len(r) for r in rows)
    n_batches = -(-len(rows) // d.batch_size)
    x = np.zeros((n_batches * d.batch_size, width, R.KEYS), np.float32)
    lengths = np.zeros(n_batches * d.batch_size, np.int32)  # rows of length 0 fill the last batch: no frames
    for slot, i in enumerate(order):
        x[slot, : len(rows[i])] = rows[i]
        lengths[slot] = len(rows[i])
    x = x.reshape(n_batches, d.batch_size, width, R.KEYS)
    lengths = lengths.reshape(n_batches, d.batch_size)

    def trim(batch):
        t = tf.reduce_max(batch["length"])
        return {"frames": batch["frames"][:, :t], "length": batch["length"]}

    ds = tf.data.Dataset.from_tensor_slices({"frames": x, "length": lengths}).map(trim)
    batches = range(n_batches)
    if train:
        ds = ds.shuffle(len(batches), seed=seed, reshuffle_each_iteration=True)
    if train and d.transpose:
        ds = tf.data.Dataset.zip(ds, _random_shifts(d.transpose, seed)).map(
            lambda x, k: {**x, "frames": transpose_roll(x["frames"], k, 2, R.KEYS)})
    return ds.prefetch(tf.data.AUTOTUNE)


def _rolls_dataset(rolls, d, train, seed):
    if not len(rolls):
        return None
    x = np.where(rolls, 1.0, -1.0).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices({"rolls": x})
    ds = _batched(ds, d, train, seed, len(x))
    if train and d.transpose:
        ds = tf.data.Dataset.zip(ds, _random_shifts(d.transpose, seed)).map(
            lambda b, k: {"rolls": transpose_roll(b["rolls"] + 1.0, k, 2, int(x.shape[3])) - 1.0})
    return ds.batch(d.batch_size, drop_remainder=train).prefetch(tf.data.AUTOTUNE)


def describe(data: MusicData) -> str:
    counts = {s: len(p) for s, p in data.pieces.items()}
    notes = Counter({s: int(sum(len(p.notes) for p in ps)) for s, ps in data.pieces.items()})
    return (f"{data.source}: {counts['train']}/{counts['valid']}/{counts['test']} pieces (train/valid/test), "
            f"{notes['train']} training notes, representation {data.representation}")
