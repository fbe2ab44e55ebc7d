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

import json

import pytest

from tests.helpers import ROOT, run_python

NAMES = ["chorale_nade", "music_transformer", "note_lstm", "musegan"]


@pytest.mark.slow
def test_mirrored_music_step_matches_single_device():
    """SGD steps on a fixed batch of 8 (4 per replica; the chorale frames and the event windows with
    padding, so replicas hold different numbers of counted frames or tokens): equal to float32 rounding;
    the GAN with the hinge loss."""
    result = run_python(str(ROOT / "tests" / "scripts" / "mirrored_music_step.py"), ",".join(NAMES), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(stats) == sorted(NAMES)
    for name, s in stats.items():
        assert s["same_start"], name
        assert s["max_update"] > 1e-4, f"{name}: the step did not train ({s})"
        assert s["max_diff"] < 1e-6 * max(1.0, s["max_update"]), f"{name}: mirrored differs from one device ({s})"
        assert abs(s["loss_1"] - s["loss_2"]) < 1e-5 * abs(s["loss_1"]), f"{name}: logged loss differs ({s})"
