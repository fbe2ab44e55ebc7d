"""Note arrays and pieces: the one in-memory form every music source is read
into and every representation is built from.

A note array is a numpy structured array of :data:`NOTE_DTYPE`: MIDI
``pitch`` (0-127), ``start`` and ``end`` in seconds at 120 bpm (a beat is
:data:`SECONDS_PER_BEAT`), MIDI ``velocity`` (1-127) and ``voice`` (the part
or track it came from, 0-based), sorted by ``(start, pitch, voice)``.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

NOTE_DTYPE = np.dtype([("pitch", "i2"), ("start", "f8"), ("end", "f8"), ("velocity", "i2"), ("voice", "i2")])
SECONDS_PER_BEAT = 0.5  # 120 bpm: the tempo every note array is expressed in
DEFAULT_VELOCITY = 80  # music21's corpus has no velocities (None)
SPLITS = ("train", "valid", "test")


@dataclasses.dataclass
class Piece:
    """One piece of music.

    Attributes:
        name: where it came from (a corpus path, a file name, ``"jsb/train/12"``).
        notes: a note array (:data:`NOTE_DTYPE`).
        beats_per_bar: quarter notes per bar (4 for 4/4, 3 for 3/4, 3 for 6/8).
        bar_phase: beats from 0 to the first bar line (a pickup's length is
            ``beats_per_bar - bar_phase``); bar lines are at
            ``bar_phase + k * beats_per_bar``.
        voices: number of voices (parts or tracks) the notes' ``voice`` refers to.
    """

    name: str
    notes: np.ndarray
    beats_per_bar: float = 4.0
    bar_phase: float = 0.0
    voices: int = 1


def make_notes(pitch, start, end, velocity=None, voice=None) -> np.ndarray:
    """A sorted note array from parallel sequences (velocity default 80, voice 0)."""
    n = len(pitch)
    out = np.zeros(n, NOTE_DTYPE)
    out["pitch"] = np.asarray(pitch)
    out["start"] = np.asarray(start, np.float64)
    out["end"] = np.asarray(end, np.float64)
    out["velocity"] = DEFAULT_VELOCITY if velocity is None else np.asarray(velocity)
    out["voice"] = 0 if voice is None else np.asarray(voice)
    return sort_notes(out)


def sort_notes(notes: np.ndarray) -> np.ndarray:
    """``notes`` sorted by ``(start, pitch, voice, end)``."""
    order = np.lexsort((notes["end"], notes["voice"], notes["pitch"], notes["start"]))
    return notes[order]


def concatenate(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, NOTE_DTYPE)


def transpose(notes: np.ndarray, semitones: int) -> np.ndarray:
    out = notes.copy()
    out["pitch"] = out["pitch"] + semitones
    return out


def grid(notes: np.ndarray, steps_per_beat: int) -> tuple[np.ndarray, np.ndarray]:
    """``(start steps, end steps)`` on a grid of ``steps_per_beat`` steps per beat
    (rounded to the nearest step; every note lasts at least one step)."""
    scale = steps_per_beat / SECONDS_PER_BEAT
    start = np.round(notes["start"] * scale).astype(np.int64)
    end = np.maximum(np.round(notes["end"] * scale).astype(np.int64), start + 1)
    return start, end


def quantize(notes: np.ndarray, steps_per_beat: int) -> np.ndarray:
    """``notes`` with start and end moved to the grid (see :func:`grid`)."""
    start, end = grid(notes, steps_per_beat)
    out = notes.copy()
    out["start"] = start * (SECONDS_PER_BEAT / steps_per_beat)
    out["end"] = end * (SECONDS_PER_BEAT / steps_per_beat)
    return sort_notes(out)


def split_of(name: str) -> str:
    """The fixed split of a piece, from its name alone: ``sha1(name)`` mod 5 is 0 for
    test, 1 for valid, else train (60/20/20, independent of order and of what else is read)."""
    bucket = int(hashlib.sha1(name.encode("utf-8")).hexdigest(), 16) % 5
    return "test" if bucket == 0 else "valid" if bucket == 1 else "train"


def total_notes(pieces: list[Piece]) -> int:
    return int(sum(len(p.notes) for p in pieces))
