"""The embedded music that works offline: the corpus inside the ``music21`` wheel.

* ``chorales``: J. S. Bach's four-part chorales, music21's
  ``corpus.chorales.Iterator()`` (371 Riemenschneider entries, of which
  350 distinct files), keeping the pieces with exactly four parts, or with
  parts named Soprano, Alto, Tenor and Bass; voice 0 is the soprano, 3 the
  bass.
* ``folk``: the Essen folk song collection in ABC (``corpus/essenFolksong``,
  31 files of monophonic melodies, mostly German and Chinese), or any ABC
  file or folder of them under ``data.path``.

Each part goes through music21's ``stripTies`` (tied notes become one
note); offsets are quarter lengths, i.e. beats, expressed in seconds at 120
bpm; chords contribute every pitch. A pickup bar shifts the bar lines
(:attr:`Piece.bar_phase`). Corpus velocities are None: every note gets 80.

Parsing takes tens of seconds (chorales) to minutes (all of Essen), so the
note arrays are cached in ``$AIGC_TF_CACHE/music`` (default
``~/.cache/aigc_tf/music``), one ``.npz`` per source file, keyed by the
music21 version and :data:`PARSE_VERSION`. A cache file is written under a
temporary name and renamed into place, so concurrent processes never read a
half-written one (at worst two of them parse the same file).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from aigc_tf.errors import DataError
from aigc_tf.music.notes import DEFAULT_VELOCITY, NOTE_DTYPE, SECONDS_PER_BEAT, Piece, sort_notes

PARSE_VERSION = 1
SATB = ("soprano", "alto", "tenor", "bass")


def cache_dir() -> Path:
    from aigc_tf.metrics.classifier import cache_root

    return cache_root() / "music"


def _cache_path(kind: str, key: str) -> Path:
    import music21

    digest = hashlib.sha256(f"{kind}|{key}|{music21.__version__}|{PARSE_VERSION}".encode()).hexdigest()[:16]
    return cache_dir() / f"{kind}-{digest}.npz"


def _save(path: Path, pieces: list[Piece]) -> None:
    """Write ``pieces`` to ``path`` atomically (a temporary file in the same folder, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    notes = np.concatenate([p.notes for p in pieces]) if pieces else np.zeros(0, NOTE_DTYPE)
    offsets = np.cumsum([0] + [len(p.notes) for p in pieces])
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, notes=notes, offsets=offsets, names=np.array([p.name for p in pieces], dtype=str),
                 beats_per_bar=np.array([p.beats_per_bar for p in pieces], np.float64),
                 bar_phase=np.array([p.bar_phase for p in pieces], np.float64),
                 voices=np.array([p.voices for p in pieces], np.int64))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _load(path: Path) -> list[Piece]:
    with np.load(path, allow_pickle=False) as f:
        notes, offsets = f["notes"], f["offsets"]
        return [Piece(str(name), notes[offsets[i] : offsets[i + 1]], float(f["beats_per_bar"][i]),
                      float(f["bar_phase"][i]), int(f["voices"][i])) for i, name in enumerate(f["names"])]


def _cached(kind: str, key: str, parse) -> list[Piece]:
    path = _cache_path(kind, key)
    if path.is_file():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError):
            pass  # unreadable (a crash mid-write cannot leave one, but a full disk can): parse again
    pieces = parse()
    _save(path, pieces)
    return pieces


# ----------------------------------------------------------------- music21
def _part_notes(part, voice: int) -> list[tuple]:
    out = []
    for n in part.stripTies().flatten().notes:
        start = float(n.offset)
        end = start + float(n.quarterLength)
        if end <= start:
            continue  # grace notes have no duration
        velocity = n.volume.velocity if n.volume.velocity is not None else DEFAULT_VELOCITY
        for p in n.pitches:
            out.append((p.midi, start, end, velocity, voice))
    return out


def score_to_piece(score, name: str, parts: list | None = None) -> Piece:
    """A music21 score (or the given ``parts`` of it) as a :class:`Piece`."""
    parts = list(score.parts) if parts is None else parts
    rows = [row for v, part in enumerate(parts) for row in _part_notes(part, v)]
    notes = np.array(rows, dtype=NOTE_DTYPE) if rows else np.zeros(0, NOTE_DTYPE)
    notes["start"] *= SECONDS_PER_BEAT
    notes["end"] *= SECONDS_PER_BEAT
    beats_per_bar, phase = 4.0, 0.0
    if parts:
        signatures = list(parts[0].recurse().getElementsByClass("TimeSignature"))
        if signatures:
            beats_per_bar = float(signatures[0].barDuration.quarterLength)
        measures = parts[0].getElementsByClass("Measure")
        if len(measures):  # a pickup: the first measure is short by its paddingLeft
            beats_per_bar = float(measures[0].barDuration.quarterLength)
            phase = (beats_per_bar - float(measures[0].paddingLeft)) % beats_per_bar
    return Piece(name, sort_notes(notes), beats_per_bar, phase, max(len(parts), 1))


def _satb_parts(score):
    parts = list(score.parts)
    if len(parts) == 4:
        return parts
    named = {}
    for part in parts:
        label = (part.partName or part.id or "").lower()
        for voice in SATB:
            if label.startswith(voice) and voice not in named:
                named[voice] = part
    return [named[v] for v in SATB] if len(named) == 4 else None


def chorale_names() -> list[str]:
    """The distinct chorale paths of music21's ``corpus.chorales.Iterator()``, sorted."""
    from music21 import corpus

    return sorted(set(corpus.chorales.Iterator(returnType="filename")))


def _parse_chorale(name: str) -> list[Piece]:
    from music21 import corpus

    score = corpus.parse(name)
    parts = _satb_parts(score)
    if parts is None:
        return []
    piece = score_to_piece(score, name, parts)
    return [piece] if len(piece.notes) else []


def chorales(names: list[str] | None = None, verbose: bool = True) -> list[Piece]:
    """The four-part Bach chorales in music21's corpus (or those of ``names``), each
    parsed once and then read from its cache file."""
    names = chorale_names() if names is None else list(names)
    todo = [n for n in names if not _cache_path("chorale", n).is_file()]
    if todo and verbose:
        print(f"Parsing {len(todo)} Bach chorales from music21's corpus (once; cached in {cache_dir()})", flush=True)
    return [p for n in names for p in _cached("chorale", n, lambda n=n: _parse_chorale(n))]


def essen_files() -> list[Path]:
    from music21 import corpus

    return sorted(p for p in corpus.getPaths(fileExtensions=("abc",)) if Path(p).parent.name == "essenFolksong")


def abc_files(path: str | Path | None) -> list[Path]:
    """The ABC files of ``data.path`` (a file or a folder), or of the Essen collection."""
    if path is None:
        return [Path(p) for p in essen_files()]
    path = Path(path)
    if not path.exists():
        raise DataError(f"data.path {path} does not exist; point it at an ABC file or a folder of them")
    files = [path] if path.is_file() else sorted(path.rglob("*.abc"))
    if not files:
        raise DataError(f"data.path {path} holds no .abc files; add some or leave data.path out for Essen")
    return files


def _parse_abc(file: Path) -> list[Piece]:
    from music21 import converter, stream

    try:
        parsed = converter.parse(str(file), format="abc")
    except Exception as exc:
        raise DataError(f"{file} could not be parsed as ABC ({type(exc).__name__}: {str(exc)[:100]}); "
                        "fix or remove it") from None
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    pieces = []
    for i, score in enumerate(scores):
        number = score.metadata.number if score.metadata is not None and score.metadata.number else i + 1
        piece = score_to_piece(score, f"{file.stem}/{number}", list(score.parts)[:1])
        if len(piece.notes) >= 2:
            pieces.append(piece)
    return pieces


def folk_tunes(path: str | Path | None = None, max_pieces: int | None = None, verbose: bool = True) -> list[Piece]:
    """Monophonic tunes from ABC files (default: music21's Essen collection),
    parsed file by file (each cached), stopping once ``max_pieces`` are read."""
    pieces: list[Piece] = []
    for file in abc_files(path):
        stat = file.stat()
        key = f"{file.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
        cached = _cache_path("abc", key).is_file()
        if verbose and not cached:
            print(f"Parsing {file.name} (once; cached in {cache_dir()})", flush=True)
        pieces.extend(_cached("abc", key, lambda file=file: _parse_abc(file)))
        if max_pieces is not None and len(pieces) >= max_pieces:
            break
    return pieces[:max_pieces] if max_pieces is not None else pieces
