"""What a person listens to or looks at: MIDI files, WAV renders and a PNG of piano rolls."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aigc_tf.music import midi
from aigc_tf.music.notes import SECONDS_PER_BEAT


def write_pieces(folder: Path, pieces: list[np.ndarray], wav: bool = True, renderer: str | None = None,
                 names: list[str] | None = None) -> list[Path]:
    """``000.mid`` (+ ``000.wav``) ... in ``folder``, one per note array; returns the MIDI paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, notes in enumerate(pieces):
        stem = f"{i:03d}" if names is None else f"{i:03d}_{names[i]}"
        paths.append(midi.write_midi(notes, folder / f"{stem}.mid"))
        if wav:
            midi.render_wav(notes, folder / f"{stem}.wav", renderer)
    return paths


def piano_roll_png(pieces: list[np.ndarray], path: Path, titles: list[str] | None = None, columns: int = 2,
                   steps_per_beat: int = 4) -> Path:
    """A PNG of piano rolls (time across in beats, pitch up), one panel per piece, voices in colours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows = max(1, -(-len(pieces) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 2.6 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    for i, ax in enumerate(axes.flat):
        if i >= len(pieces):
            ax.axis("off")
            continue
        notes = pieces[i]
        for n in notes:
            start, end = n["start"] / SECONDS_PER_BEAT, n["end"] / SECONDS_PER_BEAT
            ax.add_patch(Rectangle((start, n["pitch"] - 0.4), end - start, 0.8, color=colours(int(n["voice"]) % 10)))
        if len(notes):
            ax.set_xlim(0, max(float(notes["end"].max()) / SECONDS_PER_BEAT, 1.0))
            ax.set_ylim(int(notes["pitch"].min()) - 2, int(notes["pitch"].max()) + 2)
        ax.set_xlabel("beats")
        ax.set_ylabel("MIDI pitch")
        ax.set_title(titles[i] if titles else f"sample {i} ({len(notes)} notes)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
