"""Music models: one step under MirroredStrategy with 2 logical CPUs equals one device's step.

Each train step the music family adds is checked: the chorale model's (NLL per counted frame), the note
LSTM's (three heads, per counted note), the piano-roll GAN's networks on the GAN loop (hinge loss), and
the shared token loss with padding through the music Transformer. The melody LSTM trains with the same
``SequenceModel.train_step`` as the Transformer (and as the text models' mirrored test checks for the
LSTM LM and seq2seq), so it is checked on one device only (``tests/test_every_model.py``); the GAN loop's
WGAN-GP + Adam default under the strategy is the audio GANs' mirrored test (the same
``AdversarialTrainingMixin``).
"""

from __future__ import annotations

import pytest

from tests.helpers import mirrored_step_stats

NAMES = ["chorale_nade", "music_transformer", "note_lstm", "musegan"]


@pytest.mark.slow
def test_mirrored_music_step_matches_single_device():
    """SGD steps on a fixed batch of 8 (4 per replica; the chorale frames and the event windows with
    padding, so replicas hold different numbers of counted frames or tokens): equal to float32 rounding;
    the GAN with the hinge loss."""
    mirrored_step_stats("mirrored_music_step.py", NAMES)
