"""Music families: the melody encoder-decoder LSTM (``melody``), the note LSTM
(``note_seq``), the music Transformer (``music_lm``), the chorale RNN-NADE
(``chorale``) and the piano-roll GAN (``music_gan``).
"""

from __future__ import annotations

import dataclasses

from aigc_tf.config import DataConfig

MUSIC_DATASETS = ("chorales", "folk", "midi", "jsb")


@dataclasses.dataclass
class MusicDataConfig(DataConfig):
    """``data:`` keys of music models."""

    name: str = "chorales"
    # Tokens (music_transformer), notes (note_lstm), grid steps (melody_lstm: half seed, half continuation)
    # or frames (chorale model; null: whole pieces) per training example.
    seq_len: int | None = 256
    transpose: int = 0  # augmentation: shift each training example by a random -k..k semitones per epoch
