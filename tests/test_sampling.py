"""Samplers and beam search driven by fake step functions whose next-token
distribution is fixed, so every expected token and score is known exactly."""

import itertools
import math

import numpy as np
import pytest
import tensorflow as tf

from aigc_tf import sampling

# A known distribution in shuffled order: token 1 (0.5) > 3 (0.3) > 2 (0.15) > 0 (0.05).
PROBS = np.array([0.05, 0.5, 0.15, 0.3])
LOGITS = np.log(PROBS).astype(np.float32)[None]  # (1, 4)


def _log(probs):
    """float32 logits from probabilities; zero probabilities become -inf."""
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(probs, np.float64)).astype(np.float32)


def bigram_step(log_table):
    """step_fn whose next-token logits are row ``last token`` of ``log_table``.

    The state counts the calls, so generate must thread it through the loop.
    """
    table = tf.constant(log_table, tf.float32)

    def step_fn(tokens, calls):
        return tf.gather(table, tokens), calls + 1

    return step_fn


def trigram_step(log_table):
    """step_fn with logits ``log_table[previous token, token]``: the state is the
    previous token of each row, so beam search must re-gather it per parent."""
    table = tf.constant(log_table, tf.float32)

    def step_fn(tokens, prev):
        return tf.gather_nd(table, tf.stack([prev, tokens], axis=-1)), tokens

    return step_fn


def _rows(n, **controls):
    """(batch,) control tensors with defaults: plain sampling."""
    defaults = {"temperature": 1.0, "top_k": 0, "top_p": 1.0}
    defaults.update(controls)
    return {
        "temperature": tf.fill([n], float(defaults["temperature"])),
        "top_k": tf.fill([n], int(defaults["top_k"])),
        "top_p": tf.fill([n], float(defaults["top_p"])),
    }


def _kept(logits):
    return np.isfinite(np.asarray(logits)).astype(int)


def decode(step, state, first, n, temperature=0.0, top_k=0, top_p=1.0, seed0=0):
    """``n`` new tokens after each row's one-token prompt ``first`` through
    :func:`sampling.decode_prompted`; controls may be scalars or (batch,) tensors."""
    first = tf.convert_to_tensor(first, tf.int32)
    b = tf.shape(first)[0]

    def per_row(x, dtype):
        x = tf.convert_to_tensor(x, dtype)
        return x if x.shape.rank == 1 else tf.fill([b], x)

    return sampling.decode_prompted(
        step, state, first[:, None], tf.ones([b], tf.int32), tf.fill([b], n),
        temperature=per_row(temperature, tf.float32), top_k=per_row(top_k, tf.int32),
        top_p=per_row(top_p, tf.float32), seeds=tf.range(seed0, seed0 + b),
    )


# --------------------------------------------------------------------------
# Logit processors
# --------------------------------------------------------------------------


def test_temperature_divides_logits_exactly():
    logits = np.array([[1.0, -2.0, 4.0], [0.5, 0.0, -1.0]], np.float32)
    np.testing.assert_allclose(sampling.apply_temperature(logits, 0.5), logits / 0.5, rtol=1e-7)
    np.testing.assert_array_equal(sampling.apply_temperature(logits, 1.0), logits)
    per_example = sampling.apply_temperature(logits, tf.constant([2.0, 0.25]))
    np.testing.assert_allclose(per_example, logits / np.array([[2.0], [0.25]]), rtol=1e-7)


def test_temperature_must_be_positive():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        sampling.apply_temperature(LOGITS, 0.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature must be > 0"):
        sampling.apply_temperature(np.repeat(LOGITS, 2, 0), tf.constant([1.0, -1.0]))


def test_top_k_keeps_exactly_the_k_largest():
    logits = np.array([[1.0, 5.0, 3.0, 4.0, 2.0]], np.float32)
    out = sampling.top_k_filter(logits, 2).numpy()
    np.testing.assert_array_equal(_kept(out), [[0, 1, 0, 1, 0]])
    np.testing.assert_array_equal(out[0, [1, 3]], [5.0, 4.0])  # kept logits are untouched
    assert np.all(out[0, [0, 2, 4]] == -np.inf)
    for no_filter in (0, -3, 5, 9):
        np.testing.assert_array_equal(sampling.top_k_filter(logits, no_filter), logits)


def test_top_k_per_example_and_ties():
    logits = np.array([[1.0, 5.0, 3.0, 4.0, 2.0], [3.0, 1.0, 3.0, 3.0, 0.0], [0.0, 1.0, 2.0, 3.0, 4.0]], np.float32)
    out = sampling.top_k_filter(logits, tf.constant([1, 2, 0]))
    # Row 1: the three logits tied with the 2nd largest are all kept (documented).
    np.testing.assert_array_equal(_kept(out), [[0, 1, 0, 0, 0], [1, 0, 1, 1, 0], [1, 1, 1, 1, 1]])
    # A scalar tensor k takes the sorting path and agrees with the static path.
    np.testing.assert_array_equal(sampling.top_k_filter(logits, tf.constant(3)), sampling.top_k_filter(logits, 3))


@pytest.mark.parametrize(
    "p, kept",
    [
        # sorted probs 0.5, 0.3, 0.15, 0.05 -> cumulative 0.5, 0.8, 0.95, 1.0
        (0.0, [0, 1, 0, 0]),  # at least one token
        (0.3, [0, 1, 0, 0]),
        (0.5, [0, 1, 0, 0]),  # 0.5 >= 0.5 already
        (0.7, [0, 1, 0, 1]),
        (0.8, [0, 1, 0, 1]),  # 0.5 + 0.3 = 0.8 >= 0.8: two tokens
        (0.81, [0, 1, 1, 1]),
        (0.95, [0, 1, 1, 1]),
        (0.96, [1, 1, 1, 1]),
        (1.0, [1, 1, 1, 1]),
    ],
)
def test_top_p_keeps_the_smallest_nucleus(p, kept):
    out = sampling.top_p_filter(LOGITS, p).numpy()
    np.testing.assert_array_equal(_kept(out), [kept])
    np.testing.assert_array_equal(out[np.isfinite(out)], LOGITS[np.isfinite(out)])


def test_top_p_exact_boundary_does_not_depend_on_rounding():
    # 0.5 + 0.3 = 0.8 exactly, but float32 sums the softmax to 0.79999995 here
    # (and to 0.8000001 for PROBS above): both must stop at two tokens.
    logits = _log([[0.2, 0.5, 0.3]])
    np.testing.assert_array_equal(_kept(sampling.top_p_filter(logits, 0.8)), [[0, 1, 1]])
    np.testing.assert_array_equal(_kept(sampling.top_p_filter(logits, 0.801)), [[1, 1, 1]])


def test_top_p_per_example_and_after_top_k():
    rows = np.repeat(LOGITS, 3, axis=0)
    out = sampling.top_p_filter(rows, tf.constant([0.7, 0.81, 1.0]))
    np.testing.assert_array_equal(_kept(out), [[0, 1, 0, 1], [0, 1, 1, 1], [1, 1, 1, 1]])
    # After top-2 the probabilities renormalise to 0.625 / 0.375.
    top2 = sampling.top_k_filter(LOGITS, 2)
    np.testing.assert_array_equal(_kept(sampling.top_p_filter(top2, 0.62)), [[0, 1, 0, 0]])
    np.testing.assert_array_equal(_kept(sampling.top_p_filter(top2, 0.63)), [[0, 1, 0, 1]])


# --------------------------------------------------------------------------
# Sampling and the generate loop
# --------------------------------------------------------------------------

# Deterministic chain: next token = (3 * last + 1) mod 7, as near one-hot logits.
CHAIN_NEXT = [(3 * t + 1) % 7 for t in range(7)]
CHAIN_TABLE = np.full((7, 7), -5.0, np.float32)
CHAIN_TABLE[np.arange(7), CHAIN_NEXT] = 5.0


def _chain(start, n):
    out, t = [], start
    for _ in range(n):
        t = CHAIN_NEXT[t]
        out.append(t)
    return out


def test_greedy_follows_the_transition_table():
    first = tf.constant([0, 1, 5])
    tokens = decode(bigram_step(CHAIN_TABLE), tf.constant(0), first, 8)
    assert tokens.dtype == tf.int32 and tokens.shape == (3, 8)
    np.testing.assert_array_equal(tokens, [_chain(s, 8) for s in (0, 1, 5)])


def test_top_k_1_equals_greedy_and_one_hot_gives_its_token():
    table = np.random.default_rng(0).normal(size=(6, 6)).astype(np.float32)
    first = tf.constant([0, 1, 2, 3, 4, 5])
    greedy = decode(bigram_step(table), tf.constant(0), first, 10)
    top1 = decode(bigram_step(table), tf.constant(0), first, 10, top_k=1, temperature=3.0, seed0=11)
    np.testing.assert_array_equal(top1, greedy)

    one_hot = _log(np.eye(5)[[3, 0, 4, 4]])  # rows put all mass on 3, 0, 4, 4
    for seed in range(5):
        drawn = sampling.sample_rows(one_hot, tf.fill([4], seed), tf.zeros([4], tf.int32), **_rows(4, temperature=2.0))
        np.testing.assert_array_equal(drawn, [3, 0, 4, 4])


def test_seeded_sampling_is_reproducible_and_seed_dependent():
    table = np.zeros((8, 8), np.float32)  # uniform: every sequence equally likely
    step, first = bigram_step(table), tf.zeros([4], tf.int32)
    a = decode(step, tf.constant(0), first, 12, temperature=1.0, seed0=1)
    np.testing.assert_array_equal(a, decode(step, tf.constant(0), first, 12, temperature=1.0, seed0=1))
    assert not np.array_equal(a, decode(step, tf.constant(0), first, 12, temperature=1.0, seed0=5))
    # Steps use different seeds: the 12 tokens of a row are not one repeated draw.
    assert all(len(set(row)) > 1 for row in a.numpy())


def _filtered_probs(probs, temperature=1.0, top_k=0, top_p=1.0):
    """Reference: temperature, then top-k, then top-p, renormalised (float64)."""
    q = np.asarray(probs, np.float64) ** (1.0 / temperature)
    q /= q.sum()
    order = np.argsort(-q, kind="stable")
    keep = np.ones_like(q, bool)
    if 0 < top_k < len(q):
        keep[order[top_k:]] = False
    q = np.where(keep, q, 0.0) / q[keep].sum()
    if top_p < 1.0:
        mass_before = np.cumsum(q[order]) - q[order]
        keep_sorted = mass_before < top_p
        keep_sorted[0] = True
        keep = np.zeros_like(keep)
        keep[order[keep_sorted]] = True
        q = np.where(keep, q, 0.0) / q[keep].sum()
    return q


@pytest.mark.parametrize(
    "controls",
    [
        {},
        {"temperature": 0.5},
        {"temperature": 2.0},
        {"top_k": 2},
        {"top_p": 0.7},
        {"temperature": 2.0, "top_k": 3, "top_p": 0.8},
    ],
)
def test_empirical_frequencies_match_the_filtered_distribution(controls):
    probs = np.array([0.05, 0.4, 0.1, 0.3, 0.15])
    n = 20000
    logits = np.repeat(_log(probs)[None], n, axis=0)
    # sample_rows: one draw per row, each row with its own seed.
    rows = _rows(n, **controls)
    draws = sampling.sample_rows(logits, tf.range(n), tf.zeros([n], tf.int32), **rows).numpy()
    freq = np.bincount(draws, minlength=len(probs)) / n
    expected = _filtered_probs(probs, **controls)
    assert np.all(freq[expected == 0] == 0), (freq, expected)
    stderr = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(freq - expected) <= 4 * stderr + 1e-12), (freq, expected)


def test_per_example_controls_in_generate():
    # Row 0 is greedy through top_k=1; row 1 keeps the nucleus {1} through p=0.3.
    table = np.repeat(_log(PROBS)[None], 4, axis=0)
    tokens = decode(
        bigram_step(table), tf.constant(0), tf.constant([0, 0, 0]), 6, top_k=tf.constant([1, 0, 0]),
        top_p=tf.constant([1.0, 0.3, 1.0]), temperature=tf.constant([1.0, 1.0, 5.0]), seed0=3,
    ).numpy()
    np.testing.assert_array_equal(tokens[:2], np.ones((2, 6)))
    assert len(set(tokens[2])) > 1  # row 2 samples a hot, nearly uniform distribution


def test_uncached_buffer_state_with_shared_position():
    """An uncached model: the state is a fixed token buffer plus a scalar
    position, and each step re-reads the whole prefix. Here the next token is
    (sum of all tokens so far) mod 5, with near one-hot logits."""
    vocab, max_new = 5, 6

    def step_fn(tokens, state):
        buffer, pos = state
        buffer = tf.tensor_scatter_nd_update(
            tf.transpose(buffer), pos[None, None], tokens[None]
        )  # (length, batch): write column `pos`
        buffer = tf.transpose(buffer)
        target = tf.reduce_sum(buffer, axis=1) % vocab
        return 8.0 * tf.one_hot(target, vocab), (buffer, pos + 1)

    def expected(prompt):
        seq, out = list(prompt), []
        for _ in range(max_new):
            out.append(sum(seq) % vocab)
            seq.append(out[-1])
        return out

    prompts = np.array([[1, 3], [4, 4]], np.int32)
    buffer = np.zeros((2, 1 + max_new + 1), np.int32)
    buffer[:, 0] = prompts[:, 0]
    state = (tf.constant(buffer), tf.constant(1))  # prompt[:, :-1] read, prompt[:, -1] fed first

    @tf.function
    def both():
        greedy = decode(step_fn, state, prompts[:, -1], max_new)
        beams, _ = sampling.beam_search(step_fn, state, prompts[:, -1], max_new, beam_width=3)
        return greedy, beams

    greedy, beams = both()
    np.testing.assert_array_equal(greedy, [expected(p) for p in prompts])
    np.testing.assert_array_equal(beams, greedy)


# --------------------------------------------------------------------------
# Beam search
# --------------------------------------------------------------------------

# Tokens A=0, B=1, C=2, start S=3. From S: A 0.6, B 0.4. From A the best is
# 0.4 (A A: 0.24); from B it is 0.9 (B B: 0.36). Greedy takes A and loses.
CLASSIC = _log(
    [
        [0.4, 0.3, 0.3, 0.0],  # after A
        [0.1, 0.9, 0.0, 0.0],  # after B
        [0.5, 0.5, 0.0, 0.0],  # after C
        [0.6, 0.4, 0.0, 0.0],  # after S
    ]
)


def test_beam_search_beats_greedy_on_the_classic_example():
    step, first = bigram_step(CLASSIC), tf.constant([3, 3])
    greedy = decode(step, tf.constant(0), first, 2)
    np.testing.assert_array_equal(greedy, [[0, 0], [0, 0]])

    tokens1, scores1 = sampling.beam_search(step, tf.constant(0), first, 2, beam_width=1)
    np.testing.assert_array_equal(tokens1, greedy)
    np.testing.assert_allclose(scores1, [math.log(0.24)] * 2, rtol=1e-6)

    tokens2, scores2 = sampling.beam_search(step, tf.constant(0), first, 2, beam_width=2)
    assert tokens2.dtype == tf.int32 and scores2.dtype == tf.float32
    np.testing.assert_array_equal(tokens2, [[1, 1], [1, 1]])
    np.testing.assert_allclose(scores2, [math.log(0.4) + math.log(0.9)] * 2, rtol=1e-6)


def test_beam_width_1_is_greedy_on_random_tables():
    table = np.random.default_rng(2).normal(size=(7, 7)).astype(np.float32)
    step, first = bigram_step(table), tf.constant([0, 3, 6])
    tokens, _ = sampling.beam_search(step, tf.constant(0), first, 9, beam_width=1)
    np.testing.assert_array_equal(tokens, decode(step, tf.constant(0), first, 9))


# Second-order model over eos=0, a=1, b=2 (first token b, previous token b):
#   (b, b): eos 0.5, a 0.5;  (b, a): a 0.9, eos 0.1;  (a, a): eos 0.9, a 0.1.
# [eos] has log-prob log 0.5 = -0.693; [a, a, eos] has log 0.405 = -0.904, but
# with length penalty 1 it scores -0.904 / ((5 + 3) / 6) = -0.678 > -0.693.
SHORT_OR_LONG = np.full((3, 3, 3), 1 / 3)
SHORT_OR_LONG[2, 2] = [0.5, 0.5, 0.0]
SHORT_OR_LONG[2, 1] = [0.1, 0.9, 0.0]
SHORT_OR_LONG[1, 1] = [0.9, 0.1, 0.0]


@pytest.mark.parametrize(
    "alpha, tokens, score",
    [(0.0, [0, 0, 0], math.log(0.5)), (1.0, [1, 1, 0], math.log(0.405) / (8 / 6))],
)
def test_length_penalty_and_finished_beams(alpha, tokens, score):
    step = trigram_step(_log(SHORT_OR_LONG))
    got, got_score = sampling.beam_search(
        step, tf.constant([2]), tf.constant([2]), 3, beam_width=2, length_penalty=alpha, eos_id=0
    )
    np.testing.assert_array_equal(got, [tokens])
    np.testing.assert_allclose(got_score, [score], rtol=1e-6)


def _brute_force(log_table, prev, first, length, eos, alpha):
    """Best sequence by exhaustive search under the documented scoring rule."""
    best = (-np.inf, None)
    vocab = log_table.shape[-1]
    for seq in itertools.product(range(vocab), repeat=length):
        end = seq.index(eos) + 1 if eos in seq else length
        if any(t != eos for t in seq[end:]):
            continue  # after eos only eos
        log_prob, a, b = 0.0, prev, first
        for t in seq[:end]:
            log_prob += log_table[a, b, t]
            a, b = b, t
        score = log_prob / ((5 + end) / 6) ** alpha
        if score > best[0]:
            best = (score, list(seq))
    return best


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_wide_beam_is_exhaustive_search(alpha):
    """With beam_width >= vocab ** (length - 1) no prefix is ever pruned, so
    beam search must find the exhaustive optimum. The state (previous token)
    is per beam, so this also checks that it is re-gathered from the parents."""
    rng = np.random.default_rng(3)
    log_table = np.log(rng.dirichlet(np.full(3, 0.7), size=(3, 3))).astype(np.float32)
    prev, first = (np.array(x, np.int32) for x in zip(*itertools.product(range(3), repeat=2), strict=True))
    tokens, scores = sampling.beam_search(
        trigram_step(log_table), tf.constant(prev), tf.constant(first), 4, beam_width=27, length_penalty=alpha,
        eos_id=0,
    )
    for row in range(len(prev)):
        score, seq = _brute_force(log_table.astype(np.float64), prev[row], first[row], 4, 0, alpha)
        np.testing.assert_array_equal(tokens[row], seq)
        assert float(scores[row]) == pytest.approx(score, rel=1e-5)


def test_beam_search_in_tf_function_and_xla_matches_eager():
    log_table = np.log(np.random.default_rng(4).dirichlet(np.ones(4), size=(4, 4))).astype(np.float32)
    step = trigram_step(log_table)
    prev, first = tf.constant([0, 1, 2]), tf.constant([3, 2, 1])

    def run():
        beams = sampling.beam_search(step, prev, first, 5, beam_width=3, length_penalty=0.6, eos_id=3)
        greedy = decode(step, prev, first, 5)
        sampled = decode(step, prev, first, 5, top_k=3, top_p=0.9, temperature=0.8, seed0=9)
        return beams, greedy, sampled

    (tokens, scores), greedy, sampled = run()
    (g_tokens, g_scores), g_greedy, g_sampled = tf.function(run)()
    np.testing.assert_array_equal(g_tokens, tokens)
    np.testing.assert_allclose(g_scores, scores, rtol=1e-6)
    np.testing.assert_array_equal(g_greedy, greedy)
    np.testing.assert_array_equal(g_sampled, sampled)

    # XLA: the same beams, greedy and sampled tokens (the per-row draws are a
    # counter-based hash, not XLA's own random bits).
    xla = tf.function(run, jit_compile=True)
    (x_tokens, x_scores), x_greedy, x_sampled = xla()
    np.testing.assert_array_equal(x_tokens, tokens)
    np.testing.assert_allclose(x_scores, scores, rtol=1e-5)
    np.testing.assert_array_equal(x_greedy, greedy)
    np.testing.assert_array_equal(x_sampled, sampled)


def test_bad_arguments_raise():
    step = bigram_step(CLASSIC)
    with pytest.raises(ValueError, match="beam_width"):
        sampling.beam_search(step, tf.constant(0), tf.constant([3]), 2, beam_width=0)
    with pytest.raises(ValueError, match="length_penalty"):
        sampling.beam_search(step, tf.constant(0), tf.constant([3]), 2, length_penalty=-1.0)


# --------------------------------------------------------------------------
# Per-row seeds (sample_rows) and prompted decoding (decode_prompted)
# --------------------------------------------------------------------------


def test_row_uniforms_are_uniform_per_row_and_identical_under_xla():
    seeds = tf.range(2000)
    u = sampling.row_uniforms(seeds, tf.zeros([2000], tf.int32), 64).numpy()
    assert u.min() > 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.002 and abs(u.var() - 1 / 12) < 0.001
    # Neighbouring seeds, steps and columns are uncorrelated.
    assert abs(np.corrcoef(u[:-1].ravel(), u[1:].ravel())[0, 1]) < 0.01
    assert abs(np.corrcoef(u[:, :-1].ravel(), u[:, 1:].ravel())[0, 1]) < 0.01
    other_step = sampling.row_uniforms(seeds, tf.ones([2000], tf.int32), 64).numpy()
    assert abs(np.corrcoef(u.ravel(), other_step.ravel())[0, 1]) < 0.01
    xla = tf.function(sampling.row_uniforms, jit_compile=True)(seeds, tf.zeros([2000], tf.int32), 64)
    np.testing.assert_array_equal(xla.numpy(), u)


def test_sample_rows_zero_temperature_is_greedy_and_rows_are_independent():
    logits = tf.constant(np.log([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3], [0.2, 0.5, 0.3]]), tf.float32)
    seeds, step = tf.constant([1, 2, 3]), tf.zeros([3], tf.int32)
    rows = _rows(3)
    rows["temperature"] = tf.constant([0.0, 0.0, 1.0])
    out = sampling.sample_rows(logits, seeds, step, **rows).numpy()
    assert out[:2].tolist() == [1, 0]
    # Row 2 alone, with its own seed, draws the same token as inside the batch.
    alone = sampling.sample_rows(logits[2:], seeds[2:], step[2:], **_rows(1)).numpy()
    assert alone[0] == out[2]


def test_decode_prompted_forces_each_prompt_then_continues():
    # Deterministic "model": the next token is (token + 1) mod 6, shifted past the banned ids 0 and 1.
    table = np.full((6, 6), -10.0, np.float32)
    for t in range(6):
        table[t, (t + 1) % 6 if (t + 1) % 6 >= 2 else 2] = 0.0
    calls = []

    def step_fn(tokens, state):
        calls.append(1)
        return tf.gather(tf.constant(table), tokens), state + 1

    prompt = tf.constant([[3, 4, 5, 0], [5, 0, 0, 0], [2, 2, 2, 2]])
    lengths = tf.constant([3, 1, 4])
    max_new = tf.constant([4, 2, 3])
    out = sampling.decode_prompted(
        step_fn, tf.constant(0), prompt, lengths, max_new, seeds=tf.constant([0, 1, 2]), banned_ids=(0, 1),
        **{k: tf.constant([0.0, 0.0, 0.0]) if k == "temperature" else v for k, v in _rows(3).items()},
    ).numpy()
    # Row 0: after 3 4 5 comes 2 (0 and 1 banned), 3, 4, 5; row 1: 2, 3 then padding; row 2: 3, 4, 5.
    assert out.tolist() == [[2, 3, 4, 5], [2, 3, 0, 0], [3, 4, 5, 0]]


def test_decode_prompted_rows_do_not_depend_on_other_rows_prompt_lengths():
    rng = np.random.default_rng(0)
    table = tf.constant(rng.standard_normal((8, 8)), tf.float32)

    def step_fn(tokens, state):
        return tf.gather(table, tokens), state

    def run(prompt, lengths, seeds):
        n = len(seeds)
        return sampling.decode_prompted(
            step_fn, tf.constant(0), tf.constant(prompt), tf.constant(lengths), tf.fill([n], 6),
            seeds=tf.constant(seeds), banned_ids=(0,), **_rows(n, temperature=1.5),
        ).numpy()

    batch = run([[3, 4, 0, 0, 0], [5, 6, 7, 2, 3]], [2, 5], [11, 12])
    assert run([[3, 4]], [2], [11]).tolist() == batch[:1].tolist()
    assert run([[5, 6, 7, 2, 3]], [5], [12]).tolist() == batch[1:].tolist()
    assert (batch != 0).all()  # banned id 0 never generated
    assert run([[3, 4]], [2], [13]).tolist() != batch[:1].tolist()  # another seed, another text


def _history_step(table):
    """step_fn whose logits depend on every token fed so far: the state is a per-row
    hash of the history, ``h' = (3 h + token) mod 8``, and the logits are ``table[h']``."""
    table = tf.constant(table, tf.float32)

    def step_fn(tokens, h):
        h = (3 * h + tokens) % 8
        return tf.gather(table, h), h

    return step_fn


def test_decode_prompted_from_a_prefilled_state_gives_the_same_tokens_with_fewer_steps():
    table = np.random.default_rng(5).standard_normal((8, 6)).astype("float32")
    step_fn = _history_step(table)
    prompt = np.array([[2, 3, 4, 5, 0], [4, 4, 2, 0, 0], [5, 2, 3, 4, 2]], np.int32)
    lengths = np.array([4, 3, 5], np.int32)
    calls = []

    def counted(tokens, h):
        calls.append(1)
        return step_fn(tokens, h)

    def run(start, h0):
        calls.clear()
        out = sampling.decode_prompted(
            counted, tf.constant(h0), tf.constant(prompt), tf.constant(lengths), tf.constant([5, 7, 3]),
            seeds=tf.constant([1, 2, 3]), banned_ids=(0, 1), start=start, **_rows(3, temperature=1.3),
        ).numpy()
        return out, len(calls)

    reference, steps = run(0, np.zeros(3, np.int32))
    # The state after the first `start` tokens of every row, computed by hand (what a prefill returns).
    start = int(lengths.min()) - 1
    h = np.zeros(3, np.int64)
    for t in range(start):
        h = (3 * h + prompt[:, t]) % 8
    prefilled, fewer = run(start, h.astype(np.int32))
    np.testing.assert_array_equal(prefilled, reference)
    assert steps - fewer == start == 2
    with pytest.raises(tf.errors.InvalidArgumentError, match="start must be inside every prompt"):
        run(3, h.astype(np.int32))


def _cut_at(tokens: np.ndarray, stop: list[int], max_new: int) -> np.ndarray:
    """Reference: a row's tokens with everything from the first full occurrence of ``stop`` set to 0."""
    out = tokens.copy()
    m = len(stop)
    for g in range(max_new - m + 1):
        if tokens[g : g + m].tolist() == stop:
            out[g:] = 0
            break
    return out


def test_a_stop_sequence_ends_each_row_where_its_new_tokens_spell_it():
    table = np.random.default_rng(6).standard_normal((8, 5)).astype("float32")
    step_fn = _history_step(table)
    n, max_new, stop = 12, 16, [3, 2]
    prompt = tf.constant([[2, 3]] * n)

    def run(stop_sequence):
        return sampling.decode_prompted(
            step_fn, tf.zeros([n], tf.int32), prompt, tf.fill([n], 2), tf.fill([n], max_new),
            seeds=tf.range(n), banned_ids=(0, 1), stop_sequence=stop_sequence, **_rows(n, temperature=1.0),
        ).numpy()

    free, stopped = run(None), run(tf.constant(stop))
    expected = np.stack([_cut_at(row, stop, max_new) for row in free])
    np.testing.assert_array_equal(stopped, expected)
    ended = (expected == 0).any(axis=1)
    assert 0 < ended.sum() < n  # both kinds of row occur
    # The prompt ends with 3: a first new token 2 completes "3 2" only across the prompt, which does not count.
    rows_starting_2 = free[:, 0] == 2
    assert rows_starting_2.any() and (stopped[rows_starting_2, 0] == 2).all()


def test_the_loop_ends_once_every_row_has_stopped():
    # Greedy on a bigram table 2 -> 3 -> 4 -> 2 ...: every row spells "3 4" at new tokens 1-2.
    table = np.full((6, 6), -5.0, np.float32)
    table[2, 3] = table[3, 4] = table[4, 2] = 0.0
    calls = []

    def step_fn(tokens, state):
        calls.append(1)
        return tf.gather(tf.constant(table), tokens), state

    out = sampling.decode_prompted(
        step_fn, tf.constant(0), tf.constant([[4], [4]]), tf.ones([2], tf.int32), tf.fill([2], 50),
        seeds=tf.constant([0, 1]), banned_ids=(0, 1), stop_sequence=tf.constant([3, 4]),
        **_rows(2, temperature=0.0),
    ).numpy()
    assert out.shape == (2, 50) and out[:, 0].tolist() == [2, 2] and (out[:, 1:] == 0).all()
    assert len(calls) == 3  # new tokens 2, 3, 4 drawn, then the loop stops (not 50 steps)
