"""MIDI files in and out (pretty_midi), and audio renders of note arrays.

Reading: every non-drum instrument of a file is a voice; times go through
the file's own tempo map to beats (``time_to_tick / resolution``) and are
expressed at 120 bpm, so a piece keeps its rhythm whatever its tempo. Drum
tracks (MIDI channel 10) are left out and counted. A file that cannot be
parsed, or that gives no pitched note, is one error naming it.

Writing: one instrument per voice at 120 bpm and 480 ticks per beat, so
times on a grid of up to 480 steps per beat (and the triplets of a 16th-note
grid) are written exactly.

Audio: General MIDI through the ``TimGM6mb.sf2`` soundfont that ships in
pretty_midi's wheel, rendered by ``midirenderer`` (a Rust synthesiser
published as a manylinux wheel, no system library) when it is installed,
else pretty_midi's sine synthesis (:data:`RENDERERS`).
"""

from __future__ import annotations

import dataclasses
import io
import wave
from pathlib import Path

import numpy as np

from aigc_tf.errors import DataError
from aigc_tf.music.notes import NOTE_DTYPE, SECONDS_PER_BEAT, Piece, sort_notes

MIDI_SUFFIXES = (".mid", ".midi", ".kar")
TICKS_PER_BEAT = 480
RENDERERS = ("soundfont", "sine")


@dataclasses.dataclass
class FileReport:
    """What one MIDI file gave."""

    path: str
    notes: int
    tracks: int
    drum_tracks: int

    def line(self) -> str:
        drums = f", {self.drum_tracks} drum track(s) left out" if self.drum_tracks else ""
        return f"{self.path}: {self.notes} notes in {self.tracks} track(s){drums}"


def read_midi(path: str | Path) -> tuple[Piece, FileReport]:
    """A MIDI file as a :class:`Piece` (one voice per pitched track) and its report.

    Raises:
        DataError: the file is not MIDI or is corrupt, or has no pitched notes
            (empty, or drums only).
    """
    import pretty_midi

    path = Path(path)
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido raises OSError, EOFError, KeyError, ValueError, ... on bad files
        detail = " ".join(str(exc).split())[:120]
        raise DataError(f"{path} is not a readable MIDI file ({type(exc).__name__}: {detail}); "
                        "remove or replace it") from None
    pitched = [inst for inst in pm.instruments if not inst.is_drum]
    drums = len(pm.instruments) - len(pitched)
    arrays = []
    for voice, inst in enumerate(pitched):
        if not inst.notes:
            continue
        a = np.zeros(len(inst.notes), NOTE_DTYPE)
        a["pitch"] = [n.pitch for n in inst.notes]
        a["start"] = [pm.time_to_tick(n.start) for n in inst.notes]
        a["end"] = [pm.time_to_tick(n.end) for n in inst.notes]
        a["velocity"] = [max(1, n.velocity) for n in inst.notes]
        a["voice"] = voice
        arrays.append(a)
    notes = np.concatenate(arrays) if arrays else np.zeros(0, NOTE_DTYPE)
    report = FileReport(str(path), len(notes), len(pitched), drums)
    if not len(notes):
        what = "only drum tracks (MIDI channel 10)" if drums else "no notes"
        raise DataError(f"{path} has {what}; the music models need pitched notes: remove it from the data")
    # ticks * (s per beat) / (ticks per beat): a tick count written by write_midi reads back to the same float
    notes["start"] = notes["start"] * SECONDS_PER_BEAT / pm.resolution
    notes["end"] = notes["end"] * SECONDS_PER_BEAT / pm.resolution
    notes = notes[notes["end"] > notes["start"]]
    beats_per_bar = 4.0
    if pm.time_signature_changes:
        ts = pm.time_signature_changes[0]
        beats_per_bar = ts.numerator * 4.0 / ts.denominator
    return Piece(path.name, sort_notes(notes), beats_per_bar, 0.0, max(len(pitched), 1)), report


def midi_files(path: str | Path) -> list[Path]:
    """The MIDI files of a file or a folder (searched recursively, sorted)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data.path {path} does not exist; point it at a MIDI file or a folder of them")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"data.path {path} holds no MIDI files ({', '.join(MIDI_SUFFIXES)}); add some or fix the path")
    return files


def read_midi_folder(path: str | Path, verbose: bool = True) -> tuple[list[Piece], list[FileReport]]:
    """Every MIDI file under ``path`` (names relative to it), printing one report line per file."""
    root = Path(path)
    pieces, reports = [], []
    for file in midi_files(root):
        piece, report = read_midi(file)
        piece.name = str(file.relative_to(root)) if root.is_dir() else file.name
        pieces.append(piece)
        reports.append(report)
        if verbose:
            print(report.line(), flush=True)
    return pieces, reports


def to_pretty_midi(notes: np.ndarray, programs: list[int] | None = None):
    """A ``pretty_midi.PrettyMIDI`` at 120 bpm with one instrument per voice."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(resolution=TICKS_PER_BEAT, initial_tempo=60.0 / SECONDS_PER_BEAT)
    voices = sorted(set(int(v) for v in notes["voice"])) or [0]
    for v in voices:
        program = programs[v] if programs and v < len(programs) else 0
        inst = pretty_midi.Instrument(program=program, name=f"voice {v}")
        for n in notes[notes["voice"] == v]:
            inst.notes.append(pretty_midi.Note(velocity=int(np.clip(n["velocity"], 1, 127)), pitch=int(n["pitch"]),
                                               start=float(n["start"]), end=float(n["end"])))
        pm.instruments.append(inst)
    return pm


def write_midi(notes: np.ndarray, path: str | Path, programs: list[int] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_pretty_midi(notes, programs).write(str(path))
    return path


def midi_bytes(notes: np.ndarray, programs: list[int] | None = None) -> bytes:
    buffer = io.BytesIO()
    to_pretty_midi(notes, programs).write(buffer)
    return buffer.getvalue()


def soundfont_path() -> Path:
    """The General MIDI soundfont in pretty_midi's wheel."""
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def available_renderer() -> str:
    """``"soundfont"`` if midirenderer is installed, else ``"sine"``."""
    try:
        import midirenderer  # noqa: F401
    except ImportError:
        return "sine"
    return "soundfont"


def render_wav(notes: np.ndarray, path: str | Path, renderer: str | None = None, sample_rate: int = 16000) -> str:
    """Write ``notes`` as a WAV file; returns the renderer used.

    ``"soundfont"``: midirenderer with pretty_midi's ``TimGM6mb.sf2`` (48 kHz
    stereo, piano for every voice); ``"sine"``: pretty_midi's sine
    synthesis at ``sample_rate``, peak-normalised to 0.9.
    """
    renderer = renderer or available_renderer()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if renderer == "soundfont":
        import midirenderer

        path.write_bytes(midirenderer.render_wave_from(soundfont_path().read_bytes(), midi_bytes(notes)))
        return renderer
    if renderer != "sine":
        raise ValueError(f"renderer must be one of {RENDERERS}, got {renderer!r}")
    audio = to_pretty_midi(notes).synthesize(fs=sample_rate) if len(notes) else np.zeros(sample_rate // 10)
    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    pcm = np.round(audio / peak * 0.9 * 32767).astype("<i2") if peak > 0 else np.zeros(len(audio), "<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(pcm.tobytes())
    return renderer
