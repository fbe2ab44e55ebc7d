"""The JSB Chorales benchmark format (Boulanger-Lewandowski et al. 2012).

A dict ``{"train": [...], "valid": [...], "test": [...]}``; each split is a
list of pieces, each piece a list of quarter-note frames, each frame the list
of MIDI pitches sounding at that beat (``[]`` for silence). Published
results (nats per frame) are on these files. Read from JSON, or from a
pickle through :class:`_ListsOnlyUnpickler`, which refuses every class and
function reference: a pickle is a program, and this one may only build
dicts, lists, tuples, strings and numbers; the structure is then checked to
be lists of integer pitches (integral floats are accepted and converted).

:func:`chorale_frames` builds the same format from music21's bundled
chorales: frame ``k`` of a piece holds the pitches sounding at beat
``k`` after the piece's first onset (a note sounds on ``[start, end)``), so
a note shorter than a beat that starts between beats is not seen, as in the
published files. The split is :func:`aigc_tf.music.notes.split_of` of the
chorale's corpus path (``bach/bwv269``, ...): about 60/20/20, fixed.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np

from aigc_tf.errors import DataError
from aigc_tf.music.notes import NOTE_DTYPE, SECONDS_PER_BEAT, SPLITS, Piece, sort_notes, split_of

SPLIT_ALIASES = {"train": "train", "valid": "valid", "validation": "valid", "test": "test"}
_EPS = 1e-6


class _ListsOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numbers only: any global (class, function) is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"the pickle refers to {module}.{name}")


def load_jsb(path: str | Path) -> dict[str, list[list[list[int]]]]:
    """A JSB-format file (``.json``, or ``.pickle``/``.pkl`` of plain lists) -> ``{split: pieces}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data.path {path} is not a file; point it at a JSB Chorales .json or .pickle file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            raw = json.loads(path.read_text(encoding="utf-8"))
        elif suffix in (".pickle", ".pkl"):
            with path.open("rb") as f:
                raw = _ListsOnlyUnpickler(f, encoding="latin1").load()
        else:
            raise DataError(f"{path}: a JSB file must end in .json, .pickle or .pkl")
    except pickle.UnpicklingError as exc:
        raise DataError(f"{path} is refused: {exc}; only pickles of plain lists of integers are loaded "
                        "(a pickle can run code). Convert it to JSON with the same structure") from None
    except (ValueError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a valid JSB file ({type(exc).__name__}: {str(exc)[:100]})") from None
    return check_jsb(raw, str(path))


def check_jsb(raw, source: str) -> dict[str, list[list[list[int]]]]:
    """Validate and normalise the JSB structure (splits, pieces, frames of integer pitches 0-127)."""
    if not isinstance(raw, dict):
        raise DataError(f"{source}: expected a dict of splits (train, valid, test), got {type(raw).__name__}")
    out: dict[str, list] = {}
    for key, pieces in raw.items():
        split = SPLIT_ALIASES.get(key.decode("latin1") if isinstance(key, bytes) else str(key))
        if split is None:
            raise DataError(f"{source}: unknown split {key!r}; the JSB format has train, valid and test")
        if not isinstance(pieces, (list, tuple)):
            raise DataError(f"{source}: split {key!r} must be a list of pieces")
        out[split] = [[_frame(frame, source, split, i, t) for t, frame in enumerate(_seq(piece, source, split, i))]
                      for i, piece in enumerate(pieces)]
    if "train" not in out or not out["train"]:
        raise DataError(f"{source}: no training pieces (the 'train' split is missing or empty)")
    return out


def _seq(piece, source, split, i):
    if not isinstance(piece, (list, tuple)):
        raise DataError(f"{source}: {split} piece {i} must be a list of frames, got {type(piece).__name__}")
    return piece


def _frame(frame, source, split, i, t) -> list[int]:
    if not isinstance(frame, (list, tuple)):
        raise DataError(f"{source}: {split} piece {i} frame {t} must be a list of pitches, got {type(frame).__name__}")
    out = []
    for p in frame:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or p != int(p) or not 0 <= p <= 127:
            raise DataError(f"{source}: {split} piece {i} frame {t} holds {p!r}; pitches are integers 0-127")
        out.append(int(p))
    return sorted(set(out))


def save_jsb_json(data: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({s: data.get(s, []) for s in SPLITS}))
    return path


def piece_frames(piece: Piece) -> list[list[int]]:
    """Quarter-note frames of a piece: frame ``k`` holds the pitches sounding at beat ``b0 + k``,
    ``b0`` the beat of its first onset (rounded down)."""
    notes = piece.notes
    if not len(notes):
        return []
    start = notes["start"] / SECONDS_PER_BEAT
    end = notes["end"] / SECONDS_PER_BEAT
    b0 = math.floor(start.min() + _EPS)
    count = math.ceil(end.max() - b0 - _EPS)
    frames = []
    for k in range(count):
        t = b0 + k
        sounding = (start <= t + _EPS) & (end > t + _EPS)
        frames.append(sorted(set(int(p) for p in notes["pitch"][sounding])))
    return frames


def chorale_frames(pieces: list[Piece]) -> dict[str, list[list[list[int]]]]:
    """The JSB format built from pieces (the bundled chorales), split by :func:`split_of`."""
    out: dict[str, list] = {s: [] for s in SPLITS}
    for piece in sorted(pieces, key=lambda p: p.name):
        out[split_of(piece.name)].append(piece_frames(piece))
    return out


def frames_to_notes(frames: list[list[int]], velocity: int = 80) -> np.ndarray:
    """Quarter-note frames -> a note array: a pitch held over consecutive frames is one note."""
    rows = []
    sounding: dict[int, int] = {}
    for t, frame in enumerate([*frames, []]):
        now = set(frame)
        for p in [p for p in sounding if p not in now]:
            rows.append((p, sounding.pop(p) * SECONDS_PER_BEAT, t * SECONDS_PER_BEAT, velocity, 0))
        for p in now:
            sounding.setdefault(p, t)
    return sort_notes(np.array(rows, NOTE_DTYPE)) if rows else np.zeros(0, NOTE_DTYPE)


def jsb_pieces(data: dict, split: str, prefix: str = "jsb") -> list[Piece]:
    """One split of a JSB dict as pieces (for the representations other than frames)."""
    return [Piece(f"{prefix}/{split}/{i}", frames_to_notes(frames), 4.0, 0.0, 1)
            for i, frames in enumerate(data.get(split, []))]
