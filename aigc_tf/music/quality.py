"""How good generated music is: the Yang & Lerch (2018) statistics, MuseGAN's
piano-roll metrics and the Markov baseline of the chorale frames.

**Yang & Lerch.** Six features per piece: the pitch-class histogram (12),
the pitch-class transition matrix (12 x 12, consecutive notes of a voice),
the pitch range (semitones), the average absolute pitch interval between
consecutive notes of a voice (averaged over voices), the average
inter-onset interval (beats between successive distinct onsets) and the
note-length histogram (12 classes: whole, half, quarter, 8th, 16th, their
dotted forms and the half / quarter / 8th triplets; each note goes to the
nearest class). Histograms and the matrix are normalised to sum to one. For
a feature, the *intra-set* distances of a set are the Euclidean distances
between all pairs of its pieces, the *inter-set* distances those between
every piece of one set and every piece of the other. Each distance sample is
smoothed with a Gaussian kernel density (Scott's bandwidth) and compared on a
grid: the overlap area ``OA = integral of min(p, q)`` (1: the same
distribution) and ``KL(p || q) = integral of p log(p / q)``. As in Yang &
Lerch, ``p`` is the reference set's intra-set density and ``q`` the
reference-to-generated inter-set density: generated music that is like the
reference sits as far from it as the reference pieces sit from each other.
The real-vs-real value puts another half of the real pieces in place of the
generated ones.

**MuseGAN** (Dong et al. 2018), per voice, over the bars of binary rolls:
empty bars (the share of bars without a note), used pitch classes per
non-empty bar, and qualified notes (the share of notes at least
:data:`QUALIFIED_STEPS` grid steps long; MuseGAN's threshold is three steps
of a 24-per-beat grid, a 32nd note, which every note of a 16th-note grid
passes, so here an 8th note).
"""

from __future__ import annotations

import itertools

import numpy as np

from aigc_tf.music.notes import SECONDS_PER_BEAT

FEATURES = ("pitch_class_histogram", "pitch_class_transitions", "pitch_range", "pitch_interval",
            "inter_onset_interval", "note_length_histogram")
# Note-length classes in beats (Yang & Lerch's 12): whole, half, quarter, 8th, 16th; dotted half, quarter,
# 8th, 16th; half, quarter and 8th triplets.
NOTE_LENGTHS = (4.0, 2.0, 1.0, 0.5, 0.25, 3.0, 1.5, 0.75, 0.375, 4 / 3, 2 / 3, 1 / 3)
QUALIFIED_STEPS = 2
GRID_POINTS = 1000


# ------------------------------------------------------------ per piece
def _voices(notes: np.ndarray) -> list[np.ndarray]:
    """Each voice's notes in onset order (then pitch, high first: the melody note of a chord)."""
    out = []
    for v in np.unique(notes["voice"]):
        part = notes[notes["voice"] == v]
        out.append(part[np.lexsort((-part["pitch"].astype(int), part["start"]))])
    return out


def pitch_class_histogram(notes: np.ndarray) -> np.ndarray:
    h = np.bincount(notes["pitch"] % 12, minlength=12).astype(np.float64)
    return h / max(h.sum(), 1.0)


def pitch_class_transitions(notes: np.ndarray) -> np.ndarray:
    """``(12, 12)``: counts of (pitch class, next pitch class) within each voice, normalised."""
    m = np.zeros((12, 12))
    for part in _voices(notes):
        pc = part["pitch"] % 12
        np.add.at(m, (pc[:-1], pc[1:]), 1.0)
    return m / max(m.sum(), 1.0)


def pitch_range(notes: np.ndarray) -> float:
    return float(notes["pitch"].max() - notes["pitch"].min()) if len(notes) else 0.0


def pitch_interval(notes: np.ndarray) -> float:
    """Mean ``|p[i+1] - p[i]|`` of consecutive notes of a voice, averaged over the voices with two notes."""
    means = [np.abs(np.diff(part["pitch"].astype(np.float64))).mean() for part in _voices(notes) if len(part) > 1]
    return float(np.mean(means)) if means else 0.0


def inter_onset_interval(notes: np.ndarray) -> float:
    """Mean time in beats between successive distinct onsets."""
    onsets = np.unique(np.round(notes["start"] / SECONDS_PER_BEAT, 6))
    return float(np.diff(onsets).mean()) if len(onsets) > 1 else 0.0


def note_length_histogram(notes: np.ndarray) -> np.ndarray:
    lengths = (notes["end"] - notes["start"]) / SECONDS_PER_BEAT
    classes = np.argmin(np.abs(lengths[:, None] - np.array(NOTE_LENGTHS)[None, :]), axis=1)
    h = np.bincount(classes, minlength=12).astype(np.float64)
    return h / max(h.sum(), 1.0)


FEATURE_FUNCTIONS = {
    "pitch_class_histogram": pitch_class_histogram, "pitch_class_transitions": pitch_class_transitions,
    "pitch_range": pitch_range, "pitch_interval": pitch_interval, "inter_onset_interval": inter_onset_interval,
    "note_length_histogram": note_length_histogram,
}


def features(pieces: list[np.ndarray]) -> dict[str, np.ndarray]:
    """``{feature: (n, d)}`` for a set of note arrays."""
    return {name: np.stack([np.atleast_1d(np.asarray(fn(p), np.float64)).ravel() for p in pieces])
            for name, fn in FEATURE_FUNCTIONS.items()}


# ----------------------------------------------------------- distances
def intra_distances(x: np.ndarray) -> np.ndarray:
    """Euclidean distances of all pairs ``i < j`` of the rows of ``x``."""
    return np.array([np.linalg.norm(x[i] - x[j]) for i, j in itertools.combinations(range(len(x)), 2)])


def inter_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x[:, None, :] - y[None, :, :], axis=-1).ravel()


def kde(samples: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Gaussian kernel density of ``samples`` on ``grid`` (Scott's bandwidth ``1.06 s n^(-1/5)``;
    a sample without spread gets a bandwidth of 1e-3 of the grid's span)."""
    samples = np.asarray(samples, np.float64)
    n = len(samples)
    h = 1.06 * samples.std() * n ** (-0.2) if n > 1 else 0.0
    if h <= 0:
        h = 1e-3 * max(grid[-1] - grid[0], 1e-12)
    z = (grid[:, None] - samples[None, :]) / h
    return np.exp(-0.5 * z**2).sum(axis=1) / (n * h * np.sqrt(2 * np.pi))


def _grid(p_samples, q_samples) -> np.ndarray:
    both = np.concatenate([p_samples, q_samples])
    spread = max(both.max() - both.min(), 1e-6)
    return np.linspace(both.min() - 0.25 * spread, both.max() + 0.25 * spread, GRID_POINTS)


def overlap_area(p_samples, q_samples) -> float:
    """``integral of min(p, q)`` of the two samples' kernel densities (trapezoid rule)."""
    grid = _grid(p_samples, q_samples)
    return float(np.trapezoid(np.minimum(kde(p_samples, grid), kde(q_samples, grid)), grid))


def kl_divergence(p_samples, q_samples, eps: float = 1e-10) -> float:
    """``KL(p || q)`` of the two samples' kernel densities, each renormalised on the grid."""
    grid = _grid(p_samples, q_samples)
    p, q = kde(p_samples, grid) + eps, kde(q_samples, grid) + eps
    p, q = p / np.trapezoid(p, grid), q / np.trapezoid(q, grid)
    return float(np.trapezoid(p * np.log(p / q), grid))


def yang_lerch(reference: list[np.ndarray], generated: list[np.ndarray], other_real: list[np.ndarray]) -> dict:
    """Per feature: OA and KL of the reference's intra-set distances against the inter-set distances to
    ``generated``, and the same against ``other_real`` (the real-vs-real value); means over the features."""
    ref, gen, real = features(reference), features(generated), features(other_real)
    out = {}
    for name in FEATURES:
        intra = intra_distances(ref[name])
        out[f"{name}_oa"] = overlap_area(intra, inter_distances(ref[name], gen[name]))
        out[f"{name}_kl"] = kl_divergence(intra, inter_distances(ref[name], gen[name]))
        out[f"{name}_oa_real"] = overlap_area(intra, inter_distances(ref[name], real[name]))
        out[f"{name}_kl_real"] = kl_divergence(intra, inter_distances(ref[name], real[name]))
    for key in ("oa", "kl", "oa_real", "kl_real"):
        out[f"mean_{key}"] = float(np.mean([out[f"{n}_{key}"] for n in FEATURES]))
    return out


def mean_overlap(reference: list[np.ndarray], generated: list[np.ndarray]) -> float:
    """The mean overlap area of the six features (the per-epoch quality metric)."""
    ref, gen = features(reference), features(generated)
    return float(np.mean([overlap_area(intra_distances(ref[n]), inter_distances(ref[n], gen[n])) for n in FEATURES]))


# -------------------------------------------------------------- MuseGAN
def musegan_metrics(rolls: np.ndarray, steps_per_bar: int) -> dict:
    """``rolls`` bool ``(n, steps, pitches, voices)`` (steps a multiple of ``steps_per_bar``; pitch row 0
    a C or not: pitch classes are taken relative to row 0 plus ``pitch_offset`` by the caller) ->
    per-voice empty-bar share, used pitch classes per non-empty bar and qualified-note share."""
    rolls = np.asarray(rolls, bool)
    n, steps, pitches, voices = rolls.shape
    bars = rolls.reshape(n, steps // steps_per_bar, steps_per_bar, pitches, voices)
    active = bars.any(axis=(2, 3))  # (n, bars, voices)
    empty = 1.0 - active.mean(axis=(0, 1))
    played = bars.any(axis=2)  # (n, bars, pitches, voices)
    pc = np.zeros((n, played.shape[1], 12, voices), bool)
    for p in range(pitches):
        pc[:, :, p % 12] |= played[:, :, p]
    used = pc.sum(axis=2).astype(np.float64)  # (n, bars, voices)
    upc = np.array([used[..., v][active[..., v]].mean() if active[..., v].any() else 0.0 for v in range(voices)])
    padded = np.pad(rolls, ((0, 0), (1, 1), (0, 0), (0, 0)))
    starts = padded[:, 1:-1] & ~padded[:, :-2]
    total, qualified = np.zeros(voices), np.zeros(voices)
    for idx in np.argwhere(starts):
        i, t, p, v = idx
        length = 0
        while t + length < steps and rolls[i, t + length, p, v]:
            length += 1
        total[v] += 1
        qualified[v] += length >= QUALIFIED_STEPS
    qn = np.where(total > 0, qualified / np.maximum(total, 1), 0.0)
    return {"empty_bars": empty.tolist(), "used_pitch_classes": upc.tolist(), "qualified_notes": qn.tolist()}


# ---------------------------------------------------- chorale baseline
class KeyMarkov:
    """Each of the 88 keys a first-order Markov chain of its own on/off state, independent of the
    others, with add-one smoothing: ``P(v) = prod_k P(v_k | previous v_k)``, the first frame's keys
    from an "off" previous state. The baseline the chorale model must beat, in nats per frame."""

    def fit(self, pieces: list[np.ndarray]) -> KeyMarkov:
        counts = np.ones((2, 2, pieces[0].shape[1]))  # [previous, current, key], add-one
        for f in pieces:
            prev = np.vstack([np.zeros((1, f.shape[1])), f[:-1]]).astype(int)
            cur = f.astype(int)
            for a in (0, 1):
                for b in (0, 1):
                    counts[a, b] += ((prev == a) & (cur == b)).sum(axis=0)
        self.log_p = np.log(counts / counts.sum(axis=1, keepdims=True))
        return self

    def frame_nll(self, frames: np.ndarray) -> np.ndarray:
        prev = np.vstack([np.zeros((1, frames.shape[1])), frames[:-1]]).astype(int)
        cur = frames.astype(int)
        keys = np.arange(frames.shape[1])[None, :]
        return -self.log_p[prev, cur, keys].sum(axis=1)

    def nll(self, pieces: list[np.ndarray]) -> float:
        total = sum(float(self.frame_nll(f).sum()) for f in pieces)
        return total / sum(len(f) for f in pieces)
