"""The embedded default ``spoken_digits``: the words "zero" to "nine" spoken by
espeak-ng, rendered on this machine.

espeak-ng (GPL-3.0) is a formant synthesiser; the ``espeakng-loader`` wheel
bundles libespeak-ng 1.52 and its voice data, and we call the C API through
``ctypes``. It is **synthetic speech**: intelligible, varied, and far more
regular than people.

Voices: 8 English dialects x 104 voice variants (``en-us+f3``, ...), ordered
variant by variant so that the first ``8 * k`` voices hold ``k`` whole
variants in every dialect. Each voice says each digit once with its own small
rate and pitch offsets drawn from a fixed seed. Every fifth variant (all its
dialects) is the test split, so the test speakers are timbres the training
split never heard.

Determinism: espeak-ng keeps state between utterances in static variables
(the phase of its pitch flutter, for one) that neither
``espeak_ng_SetRandSeed`` nor a re-initialisation resets, so an utterance
depends on what was said before it in the same process. The renderer
therefore always runs in a fresh subprocess and says the clips in the fixed
order above, seeding the random generator before each one: the first ``n``
voices come out byte-identical in every process and for every larger ``n``.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from aigc_tf.errors import UserError

RENDER_VERSION = 1
NATIVE_RATE = 22_050  # what libespeak-ng returns
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# espeak-ng's English dialects (``en`` is British English; en-Shaw, the Shavian alphabet, is left out).
DIALECTS = ("en-us", "en", "en-029", "en-gb-scotland", "en-us-nyc", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
TEST_EVERY = 5  # every fifth variant is held out
RATE_RANGE = (150, 200)  # words per minute (espeak's default 175)
PITCH_RANGE = (35, 65)  # espeak pitch 0-100 (default 50)

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_RATE, _PITCH = 1, 3


def _loader():
    try:
        import espeakng_loader
    except ImportError:
        raise UserError(
            "data.name=spoken_digits renders speech with espeak-ng, which is not installed; "
            "pip install 'aigc_tf[audio]' (or: pip install espeakng-loader)"
        ) from None
    return espeakng_loader


def variants() -> list[str]:
    """The voice variants of the bundled voice data, sorted."""
    folder = Path(_loader().get_data_path()) / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def voice_names(count: int | None = None) -> list[str]:
    """``dialect+variant`` names in render order (variant-major); the first ``count``."""
    names = [f"{d}+{v}" for v in variants() for d in DIALECTS]
    return names[:count] if count else names


def is_test_voice(index: int) -> bool:
    """Whether voice ``index`` (render order) belongs to the test split."""
    return (index // len(DIALECTS)) % TEST_EVERY == TEST_EVERY - 1


def utterance_settings(voice_index: int, digit: int) -> tuple[int, int]:
    """``(rate, pitch)`` of one utterance: fixed offsets from a seed of its own."""
    rng = np.random.default_rng([RENDER_VERSION, voice_index, digit])
    return int(rng.integers(*RATE_RANGE, endpoint=True)), int(rng.integers(*PITCH_RANGE, endpoint=True))


class _Synth:
    """libespeak-ng in synchronous mode: one call returns one utterance's int16 samples."""

    def __init__(self):
        loader = _loader()
        self.lib = lib = ctypes.CDLL(loader.get_library_path())
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(loader.get_data_path()).encode(), 0)
        if rate != NATIVE_RATE:
            raise RuntimeError(f"libespeak-ng initialised at {rate} Hz, expected {NATIVE_RATE}")
        self._chunks: list[np.ndarray] = []
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        self._callback = callback_type(self._collect)  # kept alive: the library holds a pointer to it
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, samples, count, events):
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def say(self, text: str, voice: str, rate: int, pitch: int, seed: int) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PITCH, pitch, 0)
        self.lib.espeak_ng_SetRandSeed(seed)
        self._chunks = []
        data = text.encode()
        if self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _CHARS_UTF8, None, None) != 0:
            raise RuntimeError(f"espeak-ng failed to say {text!r} in voice {voice!r}")
        self.lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


def trim_silence(samples: np.ndarray, threshold: float = 0.02) -> np.ndarray:
    """Drop leading and trailing samples quieter than ``threshold`` of the peak."""
    loud = np.nonzero(np.abs(samples.astype(np.int32)) > threshold * max(1, np.abs(samples.astype(np.int32)).max()))[0]
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples[:0]


def render_in_this_process(num_voices: int | None = None) -> dict[str, np.ndarray]:
    """Render the clips (call only in a fresh process: see the module docstring).

    Returns ``samples`` (all clips' int16 samples at 22,050 Hz, silence
    trimmed, concatenated), ``offsets`` (clip ``i`` is
    ``samples[offsets[i]:offsets[i + 1]]``), ``labels`` (the digit),
    ``voices`` (voice index), ``test`` (held-out voice), ``rate``, ``pitch``.
    """
    synth = _Synth()
    names = voice_names(num_voices)
    clips, rows = [], []
    for v, voice in enumerate(names):
        for digit, word in enumerate(DIGITS):
            rate, pitch = utterance_settings(v, digit)
            clip = trim_silence(synth.say(word, voice, rate, pitch, seed=v * len(DIGITS) + digit))
            if not len(clip):
                raise RuntimeError(f"espeak-ng said nothing for {word!r} in voice {voice!r}")
            clips.append(clip)
            rows.append((digit, v, is_test_voice(v), rate, pitch))
    labels, voices, test, rates, pitches = (np.array(c) for c in zip(*rows, strict=True))
    return {
        "samples": np.concatenate(clips).astype(np.int16),
        "offsets": np.concatenate([[0], np.cumsum([len(c) for c in clips])]).astype(np.int64),
        "labels": labels.astype(np.int32),
        "voices": voices.astype(np.int32),
        "test": test.astype(bool),
        "rate": rates.astype(np.int16),
        "pitch": pitches.astype(np.int16),
        "voice_names": np.array(names),
    }


def render(num_voices: int | None, out: Path, timeout: float = 600) -> None:
    """Render in a fresh subprocess into the ``.npz`` file ``out`` (written atomically)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.partial{os.getpid()}.npz")
    cmd = [sys.executable, "-m", "aigc_tf.audio.espeak", str(tmp), json.dumps(num_voices)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit code {proc.returncode}"
        raise UserError(f"rendering spoken_digits with espeak-ng failed: {detail}")
    tmp.replace(out)


def _main(argv: list[str]) -> int:
    out, count = Path(argv[0]), json.loads(argv[1])
    try:
        arrays = render_in_this_process(count)
    except UserError as exc:
        print(exc, file=sys.stderr)
        return 2
    with open(out, "wb") as f:
        np.savez(f, **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
