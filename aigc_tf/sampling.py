"""Decoding strategies for language models: greedy, temperature, top-k, top-p
(nucleus) and beam search, written in TensorFlow so the whole loop runs inside
``tf.function`` (and XLA).

Every decoder drives a *step function*::

    step_fn(tokens_t, state) -> (logits, new_state)

``tokens_t`` is int32 ``(batch,)``, the token fed at this step; ``logits`` is
``(batch, vocab)``, the scores of the *next* token; ``state`` is any nested
structure of tensors (an LSTM's ``h``/``c``, a Transformer's key/value cache
plus position). The first call receives ``first_tokens`` with
``initial_state``, so a model that has read the prompt ``p`` passes
``first_tokens = p[:, -1]`` and the state after ``p[:, :-1]``. A model without a
cache can still be decoded: its state holds a fixed-length token buffer and a
position, and its step function re-runs the model over the buffer.

Contract for ``state``: the decoders run ``tf.while_loop``, so every state
tensor keeps its dtype and its shape from step to step (only the first, batch,
dimension may be statically unknown). Grow a cache by writing into a
preallocated buffer, not by concatenating; XLA needs this anyway.

Randomness is per row and counter-based: :func:`decode_prompted` draws the
``g``-th new token of row ``i`` with :func:`sample_rows` from a hash of
``(seeds[i], g, token id)`` (:func:`row_uniforms`), so a row's tokens depend on
its seed alone, not on the batch, and are identical with and without XLA.
Greedy decoding (``temperature <= 0``) and beam search are deterministic.

Example::

    table = tf.math.log([[0.1, 0.9], [0.8, 0.2]])      # bigram model
    step_fn = lambda tokens, state: (tf.gather(table, tokens), state)
    decode_prompted(step_fn, (), tf.constant([[0], [1]]), tf.ones([2], tf.int32), tf.fill([2], 5),
                    temperature=tf.fill([2], 1.0), top_k=tf.zeros([2], tf.int32),
                    top_p=tf.fill([2], 0.9), seeds=tf.constant([7, 8]))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

StepFn = Callable[[tf.Tensor, Any], tuple[tf.Tensor, Any]]

_NEG_INF = float("-inf")
# Slack for float32 rounding of cumulative probabilities in top_p_filter.
_TOP_P_TOLERANCE = 1e-6


# --------------------------------------------------------------------------
# Logit processors: pure functions (batch, vocab) -> (batch, vocab)
# --------------------------------------------------------------------------


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _per_row(x: Any, dtype: tf.DType) -> tf.Tensor:
    """A scalar stays a scalar; a ``(batch,)`` vector becomes ``(batch, 1)`` to broadcast over the vocabulary."""
    x = tf.cast(x, dtype)
    if x.shape.rank == 0:
        return x
    if x.shape.rank == 1:
        return x[:, None]
    raise ValueError(f"expected a scalar or a (batch,) vector, got shape {x.shape}")


def _mask_below(logits: tf.Tensor, threshold: tf.Tensor) -> tf.Tensor:
    """Set every logit strictly below its row's ``threshold`` (batch, 1) to -inf."""
    return tf.where(logits >= threshold, logits, tf.constant(_NEG_INF, logits.dtype))


def apply_temperature(logits: tf.Tensor, temperature: float | tf.Tensor) -> tf.Tensor:
    """Divide logits by a temperature: ``softmax(logits / T)``.

    ``T < 1`` sharpens the distribution, ``T > 1`` flattens it, ``T = 1`` leaves
    it unchanged. ``temperature`` is a positive scalar or a ``(batch,)`` tensor
    of per-example temperatures. Non-positive Python numbers raise
    ``ValueError``; non-positive tensors fail a ``tf.debugging`` assertion
    (raised eagerly, checked at run time in a graph).
    """
    logits = tf.convert_to_tensor(logits)
    if _is_number(temperature):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}; use greedy=True for argmax decoding")
        if temperature == 1:
            return logits
        return logits / tf.constant(temperature, logits.dtype)
    temperature = tf.convert_to_tensor(temperature)
    with tf.control_dependencies([tf.debugging.assert_positive(temperature, message="temperature must be > 0")]):
        return logits / _per_row(temperature, logits.dtype)


def top_k_filter(logits: tf.Tensor, k: int | tf.Tensor) -> tf.Tensor:
    """Keep the ``k`` largest logits of each row and set the others to -inf.

    ``k`` is an int or a ``(batch,)`` int tensor (one ``k`` per example);
    ``k <= 0`` or ``k >= vocab`` leaves a row unfiltered.

    Ties: a row keeps every logit ``>=`` its k-th largest value, so tokens tied
    with the k-th largest are all kept and a row may keep more than ``k``
    tokens (as in Hugging Face's ``TopKLogitsWarper``). The result never depends
    on token order.
    """
    logits = tf.convert_to_tensor(logits)
    vocab = logits.shape[-1]
    if _is_number(k) and vocab is not None:
        k = int(k)
        if k <= 0 or k >= vocab:
            return logits
        # Static k: a partial top-k is cheaper than sorting the whole vocabulary.
        kth = tf.math.top_k(logits, k=k, sorted=True).values[:, -1:]
        return _mask_below(logits, kth)
    # Per-example (or dynamic) k: sort once and read each row's k-th value.
    batch, dyn_vocab = tf.shape(logits)[0], tf.shape(logits)[1]
    k = tf.broadcast_to(tf.cast(k, tf.int32), [batch])
    k = tf.where((k <= 0) | (k >= dyn_vocab), dyn_vocab, k)
    sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
    kth = tf.gather(sorted_logits, k - 1, batch_dims=1)[:, None]
    return _mask_below(logits, kth)


def top_p_filter(logits: tf.Tensor, p: float | tf.Tensor) -> tf.Tensor:
    """Nucleus filtering (Holtzman et al. 2020): keep the smallest set of most
    probable tokens whose total probability is ``>= p``; set the others to -inf.

    With the probabilities of a row sorted in decreasing order,
    ``q_1 >= q_2 >= ...``, token ``i`` is kept iff ``q_1 + ... + q_{i-1} < p``,
    so the most probable token is always kept (``p <= 0`` is greedy) and
    ``p >= 1`` keeps every token. ``p`` is a float or a ``(batch,)`` tensor.
    Probabilities are ``softmax(logits)``, so apply temperature and top-k first.

    A cumulative probability within ``1e-6`` of ``p`` counts as reaching it,
    so a sum that equals ``p`` in real arithmetic (``0.5 + 0.3`` for
    ``p = 0.8``) stops the nucleus whichever way float32 rounds it.

    Ties: every token whose logit equals the smallest kept logit is kept too,
    so the kept set can exceed the nucleus when probabilities tie at the cut.
    """
    logits = tf.convert_to_tensor(logits)
    if _is_number(p) and p >= 1:
        return logits
    p = _per_row(p, tf.float32)
    sorted_logits = tf.sort(logits, axis=-1, direction="DESCENDING")
    probs = tf.nn.softmax(tf.cast(sorted_logits, tf.float32), axis=-1)
    mass_before = tf.math.cumsum(probs, axis=-1, exclusive=True)  # (batch, vocab)
    keep = (mass_before < p - _TOP_P_TOLERANCE) | (p >= 1)
    # Kept positions form a prefix of the sorted row (the cumulative sum never
    # decreases), so the row's threshold is the logit at position n_keep - 1.
    n_keep = tf.maximum(tf.reduce_sum(tf.cast(keep, tf.int32), axis=-1), 1)
    threshold = tf.gather(sorted_logits, n_keep - 1, batch_dims=1)[:, None]
    return _mask_below(logits, threshold)


# --------------------------------------------------------------------------
# One sampling step
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# Decoding loops
# --------------------------------------------------------------------------


def _loop_invariant(x: tf.Tensor) -> tf.TensorShape:
    """Loop-variable shape with the first (batch) dimension relaxed.

    A step function may lose the static batch size (``tf.reshape(x, [-1, d])``);
    relaxing it keeps ``tf.while_loop`` from rejecting such a state. Other
    dimensions stay fixed: a state that grows must use a preallocated buffer.
    """
    if x.shape.rank is None or x.shape.rank == 0:
        return x.shape
    return tf.TensorShape([None]).concatenate(x.shape[1:])


def _write_column(buffer: tf.Tensor, t: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """``buffer[..., t] = values`` as a select, which XLA compiles with static shapes."""
    at_t = tf.equal(tf.range(tf.shape(buffer)[-1]), t)
    return tf.where(at_t, values[..., None], buffer)


def _to_tensors(structure: Any) -> Any:
    return tf.nest.map_structure(tf.convert_to_tensor, structure)


def _length_penalty(lengths: tf.Tensor, alpha: float) -> tf.Tensor:
    """GNMT length penalty ``lp(len) = ((5 + len) / 6) ** alpha`` (Wu et al. 2016)."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def beam_search(
    step_fn: StepFn,
    initial_state: Any,
    first_tokens: tf.Tensor,
    max_new_tokens: int | tf.Tensor,
    *,
    beam_width: int = 4,
    length_penalty: float = 0.0,
    eos_id: int | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Beam search; returns the best beam's tokens int32 (batch, max_new_tokens)
    and its score float32 (batch,).

    Each row keeps ``beam_width`` hypotheses. At every step each hypothesis is
    extended by every token, the candidate score is
    ``s(y) = log P(y) / lp(|y|)`` with ``lp(n) = ((5 + n) / 6) ** length_penalty``
    (GNMT; ``length_penalty = 0`` gives the plain total log-probability), and
    the ``beam_width`` best candidates survive. The returned score is ``s`` of
    the best beam: its total log-probability, divided by ``lp`` when
    ``length_penalty > 0``.

    End of sequence: a hypothesis that has produced ``eos_id`` is finished; it
    can only be extended by ``eos_id`` at zero cost, so it keeps its score and
    its length ``|y|`` (which counts the first ``eos_id``) and competes with the
    live hypotheses for a slot. Its output is padded with ``eos_id``. The loop
    stops early when every beam of every row has finished.

    State layout: beams are tiled internally to a flat batch of
    ``batch * beam_width`` (example-major: row ``b``, beam ``j`` is
    ``b * beam_width + j``), and after each step the state is re-gathered
    from the chosen parent beams with
    ``tf.nest.map_structure(lambda s: tf.gather(s, parents), state)``. So every
    state tensor must have the batch as its first dimension (the step function
    sees ``batch * beam_width``); rank-0 tensors (e.g. a position shared by all
    rows) are passed through untouched.

    With ``beam_width = 1`` this is greedy decoding; ties between candidates go
    to the lowest beam index, then the lowest token id.
    """
    if not isinstance(beam_width, (int, np.integer)) or beam_width < 1:
        raise ValueError(f"beam_width must be an int >= 1, got {beam_width!r}")
    if length_penalty < 0:
        raise ValueError(f"length_penalty must be >= 0, got {length_penalty}")
    width = int(beam_width)
    first_tokens = tf.cast(tf.convert_to_tensor(first_tokens), tf.int32)
    batch = tf.shape(first_tokens)[0]
    max_len = tf.cast(max_new_tokens, tf.int32)

    def tile(s: tf.Tensor) -> tf.Tensor:
        return s if s.shape.rank == 0 else tf.repeat(s, width, axis=0)

    state = tf.nest.map_structure(tile, _to_tensors(initial_state))
    tokens = tile(first_tokens)  # (batch * width,)
    # Only beam 0 is alive at the start: otherwise the identical copies would
    # fill the beam with the same hypothesis.
    scores = tf.concat(
        [tf.zeros([batch, 1]), tf.fill(tf.stack([batch, width - 1]), _NEG_INF)], axis=1
    )  # (batch, width), total log-probabilities
    lengths = tf.zeros([batch, width], tf.int32)
    finished = tf.zeros([batch, width], tf.bool)
    pad = 0 if eos_id is None else eos_id
    history = tf.fill(tf.stack([batch, width, max_len]), tf.constant(pad, tf.int32))

    def rank(log_probs: tf.Tensor, lens: tf.Tensor) -> tf.Tensor:
        return log_probs / _length_penalty(lens, length_penalty) if length_penalty > 0 else log_probs

    def cond(t, tokens, state, scores, lengths, finished, history):
        not_done = t < max_len
        if eos_id is None:
            return not_done
        return not_done & ~tf.reduce_all(finished)

    def body(t, tokens, state, scores, lengths, finished, history):
        logits, state = step_fn(tokens, state)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        vocab = tf.shape(log_probs)[-1]
        log_probs = tf.reshape(log_probs, tf.stack([batch, width, vocab]))
        if eos_id is not None:
            # A finished beam may only append eos, for free.
            eos_only = tf.where(tf.equal(tf.range(vocab), eos_id), 0.0, _NEG_INF)
            log_probs = tf.where(finished[:, :, None], eos_only, log_probs)
            cand_lengths = tf.where(finished, lengths, lengths + 1)
        else:
            cand_lengths = lengths + 1
        cand_scores = scores[:, :, None] + log_probs  # (batch, width, vocab)
        cand_rank = rank(cand_scores, cand_lengths[:, :, None])
        flat_rank = tf.reshape(cand_rank, tf.stack([batch, width * vocab]))
        _, best = tf.math.top_k(flat_rank, k=width)  # (batch, width), sorted best first
        parents, new_tokens = best // vocab, best % vocab

        scores = tf.gather(tf.reshape(cand_scores, tf.stack([batch, width * vocab])), best, batch_dims=1)
        lengths = tf.gather(cand_lengths, parents, batch_dims=1)
        finished = tf.gather(finished, parents, batch_dims=1)
        if eos_id is not None:
            finished = finished | tf.equal(new_tokens, eos_id)
        history = _write_column(tf.gather(history, parents, batch_dims=1), t, new_tokens)
        flat_parents = tf.reshape(parents + width * tf.range(batch)[:, None], [-1])
        state = tf.nest.map_structure(lambda s: s if s.shape.rank == 0 else tf.gather(s, flat_parents), state)
        return t + 1, tf.reshape(new_tokens, [-1]), state, scores, lengths, finished, history

    loop_vars = (tf.constant(0), tokens, state, scores, lengths, finished, history)
    _, _, _, scores, lengths, _, history = tf.while_loop(
        cond, body, loop_vars, shape_invariants=tf.nest.map_structure(_loop_invariant, loop_vars)
    )
    # After any step the beams are already sorted best first by this rank;
    # argmax says so explicitly and also covers max_new_tokens = 0.
    final = rank(scores, lengths)
    best = tf.argmax(final, axis=-1, output_type=tf.int32)
    best_tokens = tf.gather(history, best, batch_dims=1)
    static_len = max_new_tokens if _is_number(max_new_tokens) else None
    best_tokens = tf.ensure_shape(best_tokens, [first_tokens.shape[0], static_len])
    return best_tokens, tf.gather(final, best, batch_dims=1)


# --------------------------------------------------------------------------
# Per-example seeds and prompted decoding (what the text models use)
# --------------------------------------------------------------------------

_MASK32 = 0xFFFFFFFF
# Multiplier of a well-studied 32-bit integer mixer (small enough that the
# int64 products below never overflow).
_MIX = 0x45D9F3B


def _mix32(x: tf.Tensor) -> tf.Tensor:
    """A 32-bit integer hash (three xorshift-multiply rounds) on int64 values in [0, 2**32)."""
    for _ in range(3):
        x = tf.bitwise.bitwise_and(
            tf.bitwise.bitwise_xor(tf.bitwise.right_shift(x, 16), x) * _MIX, _MASK32
        )
    return tf.bitwise.bitwise_xor(tf.bitwise.right_shift(x, 16), x)


def row_uniforms(seeds: tf.Tensor, step: tf.Tensor, vocab: int | tf.Tensor) -> tf.Tensor:
    """Uniform floats in (0, 1), shape (batch, vocab): row ``i`` depends only on
    ``seeds[i]``, ``step[i]`` and the column.

    A counter-based hash of ``(seed, step, token id)`` in integer arithmetic,
    so a row's draws do not depend on the other rows of the batch (a TF
    Serving client gets the same text alone or batched) and are bit-identical
    with and without XLA, unlike ``tf.random.stateless_*``, whose kernels draw
    different numbers under XLA and which take one seed per call, not per row.
    23 random bits per draw, so every value is strictly inside (0, 1).
    """
    seeds = tf.bitwise.bitwise_and(tf.cast(seeds, tf.int64), _MASK32)[:, None]
    step = tf.bitwise.bitwise_and(tf.cast(step, tf.int64), _MASK32)[:, None]
    cols = tf.range(tf.cast(vocab, tf.int64), dtype=tf.int64)[None, :]
    h = _mix32(seeds)
    h = _mix32(tf.bitwise.bitwise_xor(h, _mix32(step + 0x9E3779B)))
    h = _mix32(tf.bitwise.bitwise_xor(h, cols))
    # 23 bits: the largest value, 1 - 2**-24, is still below 1 in float32
    # (24 bits would round (2**24 - 0.5) / 2**24 up to exactly 1.0, an
    # infinite Gumbel draw).
    bits = tf.bitwise.right_shift(h, 9)
    return (tf.cast(bits, tf.float32) + 0.5) * (1.0 / (1 << 23))


def sample_rows(
    logits: tf.Tensor,
    seeds: tf.Tensor,
    step: tf.Tensor,
    *,
    temperature: tf.Tensor,
    top_k: tf.Tensor,
    top_p: tf.Tensor,
) -> tf.Tensor:
    """One token per row with per-row controls and seeds; int32 (batch,).

    All arguments but ``logits`` (batch, vocab) are ``(batch,)`` tensors. A
    row with ``temperature <= 0`` is greedy (argmax). Otherwise the row's
    logits go through :func:`apply_temperature`, :func:`top_k_filter` and :func:`top_p_filter`
    and a token is drawn by the Gumbel-max trick,
    ``argmax(logits - log(-log(u)))`` with ``u = row_uniforms(seeds, step)``,
    which is an exact draw from ``softmax(logits)``.
    """
    logits = tf.cast(logits, tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    greedy = temperature <= 0
    filtered = apply_temperature(logits, tf.where(greedy, 1.0, temperature))
    filtered = top_p_filter(top_k_filter(filtered, top_k), top_p)
    gumbel = -tf.math.log(-tf.math.log(row_uniforms(seeds, step, tf.shape(logits)[-1])))
    sampled = tf.argmax(filtered + gumbel, axis=-1, output_type=tf.int32)
    return tf.where(greedy, tf.argmax(logits, axis=-1, output_type=tf.int32), sampled)


def decode_prompted(
    step_fn: StepFn,
    initial_state: Any,
    prompt: tf.Tensor,
    prompt_len: tf.Tensor,
    max_new_tokens: tf.Tensor,
    *,
    temperature: tf.Tensor,
    top_k: tf.Tensor,
    top_p: tf.Tensor,
    seeds: tf.Tensor,
    banned_ids: tuple[int, ...] = (),
    start: int | tf.Tensor = 0,
    stop_sequence: tf.Tensor | None = None,
) -> tf.Tensor:
    """Continue each row's prompt; returns int32 (batch, max(max_new_tokens)).

    ``prompt`` is int32 (batch, P), right-padded; ``prompt_len`` (batch,) >= 1
    counts each row's real tokens. Rows may differ in length: the loop feeds
    position ``t`` of every row at step ``t``, and while ``t + 1`` is still
    inside a row's prompt the next token is the prompt's own (teacher
    forcing), not a sample. Prompts therefore go through the same ``step_fn``
    as generated tokens: an LSTM's state or a Transformer's key/value cache is
    filled one token at a time.

    ``start``: the first position fed. ``initial_state`` is the state after
    ``prompt[:, :start]`` (0: before the first prompt token). A model that can
    read ``start = min(prompt_len) - 1`` prompt tokens in one batched call
    (prefill) passes that state, and only the part of longer prompts beyond
    the shortest goes through ``step_fn``; the tokens are the same.

    The ``g``-th new token of row ``i`` is drawn with :func:`sample_rows` from
    ``(seeds[i], g)``, so it does not depend on the other rows, their prompt
    lengths or the batch size. ``banned_ids`` (padding, unknown) are never
    generated. Positions after a row's own ``max_new_tokens`` are 0.

    ``stop_sequence``: int (m,) token ids, or None. A row whose new tokens
    come to end with it stops: the sequence and everything after it are 0 in
    the output, and the loop ends early once every row has stopped or has all
    its tokens. (A match must lie within the new tokens, not reach back into
    the prompt.)
    """
    prompt = tf.cast(prompt, tf.int32)
    prompt_len = tf.cast(prompt_len, tf.int32)
    max_new = tf.cast(max_new_tokens, tf.int32)
    n_max = tf.reduce_max(max_new)
    width = tf.shape(prompt)[1] + n_max
    buf = tf.pad(prompt, tf.stack([[0, 0], tf.stack([0, n_max])]))
    steps = tf.reduce_max(prompt_len + max_new) - 1
    state = _to_tensors(initial_state)
    if not (_is_number(start) and start == 0):
        in_prompt = tf.debugging.assert_less(
            tf.cast(start, tf.int32), tf.reduce_min(prompt_len), message="decode_prompted: start must be inside every prompt"
        )
        with tf.control_dependencies([in_prompt]):
            start = tf.identity(start)
    start = tf.cast(start, tf.int32)
    if stop_sequence is not None:
        stop_sequence = tf.cast(tf.reshape(stop_sequence, [-1]), tf.int32)
        m = stop_sequence.shape[0]
        if m is None or m < 1:
            raise ValueError("stop_sequence must have a static length of at least 1")
    # cut[i]: output positions >= cut[i] are 0 (max_new_tokens, or where the stop sequence began).
    cut = max_new

    def body(t, buf, state, cut):
        tokens = tf.gather(buf, t, axis=1)
        logits, state = step_fn(tokens, state)
        logits = tf.cast(logits, tf.float32)
        if banned_ids:
            vocab = tf.shape(logits)[-1]
            banned = tf.reduce_any(tf.equal(tf.range(vocab)[:, None], list(banned_ids)), axis=-1)
            logits = tf.where(banned[None, :], tf.constant(_NEG_INF), logits)
        g = t + 1 - prompt_len  # index of the new token at position t + 1 (< 0: still the prompt)
        nxt = sample_rows(logits, seeds, g, temperature=temperature, top_k=top_k, top_p=top_p)
        forced = tf.gather(buf, tf.minimum(t + 1, width - 1), axis=1)
        nxt = tf.where(g < 0, forced, nxt)
        buf = _write_column(buf, t + 1, nxt)
        if stop_sequence is not None:
            # The last m tokens of each row, positions t + 2 - m .. t + 1: (batch, m).
            cols = tf.maximum(t + 2 - m + tf.range(m), 0)
            window = tf.gather(buf, cols, axis=1)
            hit = tf.reduce_all(tf.equal(window, stop_sequence[None, :]), axis=1)
            hit &= (g >= m - 1) & (g < cut)
            cut = tf.where(hit, g - (m - 1), cut)
        return t + 1, buf, state, cut

    def cond(t, buf, state, cut):
        if stop_sequence is None:
            return t < steps
        finished = (t + 1 - prompt_len >= max_new) | (cut < max_new)
        return (t < steps) & ~tf.reduce_all(finished)

    loop_vars = (start, buf, state, cut)
    _, buf, _, cut = tf.while_loop(
        cond, body, loop_vars, shape_invariants=tf.nest.map_structure(_loop_invariant, loop_vars),
    )
    cols = tf.range(n_max)[None, :]
    out = tf.gather(buf, tf.minimum(prompt_len[:, None] + cols, width - 1), batch_dims=1)
    return tf.where(cols < cut[:, None], out, 0)
