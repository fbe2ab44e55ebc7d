"""Music metrics against hand-computed values on tiny inputs; the baselines' conditionals are distributions;
the NADE's conditionals against a key-by-key float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

from aigc_tf.music import quality as Q
from aigc_tf.music.notes import make_notes


def _notes(rows):
    rows = [tuple(r) + (80, 0)[len(r) - 3 :] for r in rows]
    pitch, start, end, velocity, voice = zip(*rows, strict=True)
    return make_notes(pitch, start, end, velocity, voice)


def test_yang_lerch_features_by_hand():
    # Voice 0: C4 D4 C5 (quarter, quarter, half); voice 1: G3 then A3 (eighths), G3 at beat 2.
    n = _notes([(60, 0.0, 0.5, 80, 0), (62, 0.5, 1.0, 80, 0), (72, 1.0, 2.0, 80, 0),
                (55, 0.0, 0.25, 80, 1), (57, 0.25, 0.5, 80, 1), (55, 1.0, 1.5, 80, 1)])
    np.testing.assert_allclose(Q.pitch_class_histogram(n)[[0, 2, 7, 9]], [2 / 6, 1 / 6, 2 / 6, 1 / 6])
    t = Q.pitch_class_transitions(n)  # C->D, D->C (voice 0); G->A, A->G (voice 1)
    expected = np.zeros((12, 12))
    expected[0, 2] = expected[2, 0] = expected[7, 9] = expected[9, 7] = 0.25
    np.testing.assert_allclose(t, expected)
    assert Q.pitch_range(n) == 72 - 55
    # Voice 0: |2|, |10| -> 6; voice 1: |2|, |-2| -> 2; mean 4.
    assert Q.pitch_interval(n) == pytest.approx(4.0)
    # Onsets at beats 0, 0.5, 1, 2: intervals 0.5, 0.5, 1 -> 2/3.
    assert Q.inter_onset_interval(n) == pytest.approx(2 / 3)
    # Lengths in beats: 1, 1, 2, 0.5, 0.5, 1 -> quarter x3, half x1, 8th x2.
    h = Q.note_length_histogram(n)
    assert h[Q.NOTE_LENGTHS.index(1.0)] == pytest.approx(0.5) and h[Q.NOTE_LENGTHS.index(2.0)] == pytest.approx(1 / 6)
    assert h[Q.NOTE_LENGTHS.index(0.5)] == pytest.approx(1 / 3)


def test_distances_kde_overlap_and_kl():
    x = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    np.testing.assert_allclose(sorted(Q.intra_distances(x)), [5.0, 5.0, 10.0])
    np.testing.assert_allclose(Q.inter_distances(x[:1], x[1:]), [5.0, 10.0])
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 400)
    grid = np.linspace(-8, 8, 2001)
    assert np.trapezoid(Q.kde(a, grid), grid) == pytest.approx(1.0, abs=1e-6)
    # One sample with bandwidth h: the density at the sample is 1 / (h sqrt(2 pi)).
    h = 1e-3 * 16
    assert Q.kde(np.array([0.0]), grid)[1000] == pytest.approx(1 / (h * np.sqrt(2 * np.pi)))
    assert Q.overlap_area(a, a) == pytest.approx(1.0, abs=1e-6)
    assert Q.kl_divergence(a, a) == pytest.approx(0.0, abs=1e-6)
    assert Q.overlap_area(a, a + 100) < 1e-6
    # Two unit Gaussians 1 apart: OA = 2 Phi(-1/2) = 0.617, KL = 1/2 (to the KDE's smoothing).
    b = rng.normal(1, 1, 400)
    big_a, big_b = rng.normal(0, 1, 4000), rng.normal(1, 1, 4000)
    assert Q.overlap_area(big_a, big_b) == pytest.approx(0.617, abs=0.03)
    assert Q.kl_divergence(big_a, big_b) == pytest.approx(0.5, abs=0.08)
    assert Q.overlap_area(a, b) < Q.overlap_area(a, a)


def test_yang_lerch_scores_a_copy_of_the_reference_as_close():
    rng = np.random.default_rng(1)
    pieces = []
    for _ in range(12):
        pitches = rng.integers(55, 80, 16)
        starts = np.sort(rng.choice(32, 16, replace=False)) * 0.25
        pieces.append(make_notes(pitches, starts, starts + 0.25))
    ref, other = pieces[:6], pieces[6:]
    same = Q.yang_lerch(ref, other, other)
    assert same["mean_oa"] == pytest.approx(same["mean_oa_real"]) and same["mean_kl"] == pytest.approx(same["mean_kl_real"])
    constant = [make_notes([60] * 16, np.arange(16) * 0.5, np.arange(16) * 0.5 + 0.5)] * 6  # one repeated piece
    far = Q.yang_lerch(ref, constant, other)
    assert far["mean_oa"] < same["mean_oa_real"] and far["mean_kl"] > same["mean_kl_real"]


def test_musegan_metrics_by_hand():
    rolls = np.zeros((1, 8, 24, 2), bool)  # two bars of 4 steps, 24 pitches, 2 voices
    rolls[0, 0:3, 0, 0] = True  # voice 0, bar 0: pitch row 0 for 3 steps (qualified)
    rolls[0, 3, 12, 0] = True  # ... and row 12 (same pitch class) for 1 step
    rolls[0, 4, 2, 0] = True  # voice 0, bar 1: row 2 for 1 step
    m = Q.musegan_metrics(rolls, steps_per_bar=4)
    assert m["empty_bars"] == [0.0, 1.0]
    assert m["used_pitch_classes"] == [1.0, 0.0]  # bar 0: {0}; bar 1: {2}
    assert m["qualified_notes"] == [pytest.approx(1 / 3), 0.0]


def test_key_markov_baseline_is_a_distribution_and_matches_hand_counts():
    frames = [np.array([[1, 0], [1, 0], [0, 1]], float)]
    m = Q.KeyMarkov().fit(frames)
    np.testing.assert_allclose(np.exp(m.log_p).sum(axis=1), 1.0)
    # Key 0: off->on once, on->on once, on->off once; add-one: P(on | off) = 2/3, P(on | on) = 2/4.
    np.testing.assert_allclose(np.exp(m.log_p[0, 1, 0]), 2 / 3)
    np.testing.assert_allclose(np.exp(m.log_p[1, 1, 0]), 2 / 4)
    # Key 1: off->off twice, off->on once: P(off | off) = 3/5.
    nll = m.frame_nll(frames[0])
    assert nll[0] == pytest.approx(-np.log(2 / 3) - np.log(3 / 5))


def test_kneser_ney_on_music_tokens_gives_distributions():
    from aigc_tf.metrics.ngram import ModifiedKneserNey
    from aigc_tf.music import corpus
    from aigc_tf.music import data as music_data
    from aigc_tf.music.representations import EventVocabulary

    vocab = EventVocabulary()
    tokens = np.concatenate(music_data.event_tokens(corpus.chorales(corpus.chorale_names()[:3], verbose=False), vocab))
    lm = ModifiedKneserNey(3, vocab.size).fit(tokens)
    for context in (tokens[10:12], [5, 6]):  # a seen context and an unseen one (the generic tests cover more)
        assert sum(lm.distribution(context)) == pytest.approx(1.0, abs=1e-9)


def test_nade_conditionals_match_a_key_by_key_reference():
    import tensorflow as tf

    from aigc_tf.music.chorale_nade import ChoraleNADE

    model = ChoraleNADE(units=8, nade_hidden=5, seed=3)
    rng = np.random.default_rng(0)
    frames = (rng.random((1, 3, 88)) < 0.1).astype(np.float32)
    context = model.context(tf.constant(frames))
    logits = model.frame_logits(tf.constant(frames), context).numpy()[0, 2].astype(np.float64)
    b = model.to_b(context).numpy()[0, 2].astype(np.float64)
    c = model.to_c(context).numpy()[0, 2].astype(np.float64)
    w, v = model.w.numpy().astype(np.float64), model.v.numpy().astype(np.float64)
    a = c.copy()
    for i in range(88):
        h = 1 / (1 + np.exp(-a))
        assert logits[i] == pytest.approx(b[i] + v[i] @ h, abs=1e-5)
        a += frames[0, 2, i] * w[i]
    # The frame's NLL is the sum of the 88 Bernoulli terms.
    p = 1 / (1 + np.exp(-logits))
    x = frames[0, 2]
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum()
    assert model.frame_nll(tf.constant(frames)).numpy()[0, 2] == pytest.approx(expected, rel=1e-5)
