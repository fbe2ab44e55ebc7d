"""Interpolated Kneser-Ney baseline: hand-computed values and proper distributions."""

import numpy as np
import pytest

from aigc_tf.data import text
from aigc_tf.metrics.ngram import KneserNey, ModifiedKneserNey, modified_discounts, tuned_modified_kneser_ney
from tests.helpers import token_stream


def test_bigram_matches_hand_computed_values():
    # a b a b c  (a=0, b=1, c=2), D = 0.5.
    # Bigram counts: a->b 2, b->a 1, b->c 1. Continuation counts: a, b, c once
    # each, so the unigram level is 1/6 + 0.5 * 3/3 * 1/3 = 1/3 for every token.
    lm = KneserNey(order=2, vocab_size=3, discount=0.5).fit([0, 1, 0, 1, 2])
    assert lm.prob([0], 1) == pytest.approx((2 - 0.5) / 2 + 0.5 * 1 / 2 * (1 / 3))
    assert lm.prob([0], 2) == pytest.approx(0.5 * 1 / 2 * (1 / 3))
    assert lm.prob([1], 0) == pytest.approx((1 - 0.5) / 2 + 0.5 * 2 / 2 * (1 / 3))
    assert lm.prob([1], 1) == pytest.approx(0.5 * 2 / 2 * (1 / 3))
    assert lm.prob([2], 0) == pytest.approx(1 / 3)  # unseen context backs off
    assert lm.prob([], 2) == pytest.approx(1 / 3)  # no context: the unigram level


@pytest.fixture(scope="module")
def char_ids():
    docs = text.embedded_corpus()[:20]
    tok = text.build_tokenizer(docs, "char")
    return token_stream(tok, docs), tok.vocabulary_size()


def _assert_proper_distributions(lm, ids, vocab, n_contexts=5):
    """P(. | context) sums to 1 with no zero, for seen contexts and an unseen one."""
    rng = np.random.default_rng(0)
    k = lm.order - 1
    contexts = [ids[i : i + k] for i in rng.integers(0, 20_000, n_contexts)] + [[vocab - 1] * k]
    for context in contexts:
        dist = lm.distribution(context)
        assert sum(dist) == pytest.approx(1.0, abs=1e-9)
        assert min(dist) > 0.0


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_every_conditional_distribution_sums_to_one(char_ids, order):
    ids, vocab = char_ids
    _assert_proper_distributions(KneserNey(order=order, vocab_size=vocab).fit(ids[:20_000]), ids, vocab)


def test_higher_orders_predict_held_out_text_better(char_ids):
    ids, vocab = char_ids
    train, valid = ids[:40_000], ids[40_000:45_000]
    ppl = {n: KneserNey(order=n, vocab_size=vocab).fit(train).perplexity(valid) for n in (1, 2, 3)}
    assert ppl[3] < ppl[2] < ppl[1] < vocab


def test_bad_arguments():
    with pytest.raises(ValueError, match="order"):
        KneserNey(order=0, vocab_size=3)
    with pytest.raises(ValueError, match="discount"):
        KneserNey(order=2, vocab_size=3, discount=1.0)


def test_log_likelihood_from_start_scores_only_the_continuation(char_ids):
    ids, vocab = char_ids
    lm = KneserNey(order=3, vocab_size=vocab).fit(ids[:20_000])
    seq = ids[30_000:30_050]
    whole, n = lm.log_likelihood(seq)
    head, k = lm.log_likelihood(seq[:20])
    tail, m = lm.log_likelihood(seq, start=20)
    assert (n, k, m) == (49, 19, 30)
    assert head + tail == pytest.approx(whole, rel=1e-12)
    # The first continuation token is conditioned on the last two prefix tokens.
    assert lm.log_likelihood(seq[:21], start=20)[0] == pytest.approx(np.log(lm.prob(seq[18:20], seq[20])))


def test_continuation_perplexity_scores_each_continuation_given_its_prefix():
    import tensorflow as tf

    from aigc_tf.tasks.text import continuation_perplexity

    lm = KneserNey(order=2, vocab_size=6, discount=0.5).fit([2, 3, 4, 2, 3, 5, 3, 4])
    prefix = tf.constant([[2, 3, 0], [3, 0, 0]])
    targets = tf.constant([[4, 0, 0], [2, 4, 0]])  # 0 is padding
    pairs = [({"prefix": prefix, "decoder_inputs": targets}, targets)]
    expected = -(np.log(lm.prob([3], 4)) + np.log(lm.prob([3], 2)) + np.log(lm.prob([2], 4))) / 3
    assert continuation_perplexity(lm, pairs) == pytest.approx(np.exp(expected), rel=1e-12)


# --------------------------------------------------------------------------- modified Kneser-Ney
def test_modified_discounts_from_count_of_counts():
    # n1 = 4, n2 = 2, n3 = 1, n4 = 1 (the 5 counts for none of them): Y = 4 / (4 + 4) = 0.5,
    # D1 = 1 - 2 * 0.5 * 2/4 = 0.5, D2 = 2 - 3 * 0.5 * 1/2 = 1.25, D3+ = 3 - 4 * 0.5 * 1/1 = 1.
    assert modified_discounts([1, 1, 1, 1, 2, 2, 3, 4, 5]) == pytest.approx((0.5, 1.25, 1.0))
    # No n-gram seen 3 times: D3+ has nothing to discount; D2 = 2 - 3 * Y * 0 = 2 stays within [0, 2].
    assert modified_discounts([1, 2]) == pytest.approx((1 - 2 * (1 / 3) * 1, 2.0, 0.0))


def test_modified_bigram_matches_hand_computed_values():
    # a b a b a b c (a=0, b=1, c=2) with fixed (D1, D2, D3+) = (0.3, 0.6, 0.9).
    # Bigrams: a->b 3, b->a 2, b->c 1. Continuation counts: a, b, c once each, so
    # the unigram level is (1 - 0.3 + 0.3 * 3 * 1/3) / 3 = 1/3 for every token.
    lm = ModifiedKneserNey(order=2, vocab_size=3, discounts=(0.3, 0.6, 0.9)).fit([0, 1, 0, 1, 0, 1, 2])
    assert lm.prob([], 0) == pytest.approx(1 / 3)
    # After a: b seen 3 times (D3+), mass left 0.9 of 3.
    assert lm.prob([0], 1) == pytest.approx((3 - 0.9 + 0.9 / 3) / 3)
    assert lm.prob([0], 0) == pytest.approx(0.9 / 3 / 3)
    # After b: a twice (D2), c once (D1): mass left (0.6 + 0.3) of 3.
    assert lm.prob([1], 0) == pytest.approx((2 - 0.6 + 0.9 / 3) / 3)
    assert lm.prob([1], 2) == pytest.approx((1 - 0.3 + 0.9 / 3) / 3)
    assert lm.prob([1], 1) == pytest.approx(0.9 / 3 / 3)
    assert lm.prob([2], 1) == pytest.approx(1 / 3)  # unseen context backs off


@pytest.mark.parametrize("order", [3, 5])
def test_one_discount_everywhere_is_kneser_ney(char_ids, order):
    ids, vocab = char_ids
    train, valid = ids[:20_000], ids[20_000:23_000]
    kn = KneserNey(order=order, vocab_size=vocab, discount=0.75).fit(train)
    mkn = ModifiedKneserNey(order=order, vocab_size=vocab, discounts=(0.75, 0.75, 0.75)).fit(train)
    assert mkn.perplexity(valid) == pytest.approx(kn.perplexity(valid), rel=1e-12)


@pytest.mark.parametrize("order", [1, 2, 4, 7, 10])
def test_every_modified_conditional_sums_to_one(char_ids, order):
    ids, vocab = char_ids
    lm = ModifiedKneserNey(order=order, vocab_size=vocab).fit(ids[:20_000])
    for d1, d2, d3 in lm.discounts:
        assert 0 <= d1 <= 1 and 0 <= d2 <= 2 and 0 <= d3 <= 3
    _assert_proper_distributions(lm, ids, vocab, n_contexts=4)


def test_tuned_order_is_the_best_on_the_held_out_score_and_counts_are_shared(char_ids):
    ids, vocab = char_ids
    train, valid = ids[:40_000], ids[40_000:44_000]
    best, scores = tuned_modified_kneser_ney(train, vocab, lambda lm: lm.perplexity(valid), orders=range(1, 8))
    assert sorted(scores) == list(range(1, 8))
    assert best.order == min(scores, key=scores.get)
    assert best.perplexity(valid) == pytest.approx(scores[best.order], rel=1e-12)
    alone = ModifiedKneserNey(order=3, vocab_size=vocab).fit(train)  # its own counts
    assert alone.perplexity(valid) == pytest.approx(scores[3], rel=1e-12)
    assert scores[3] < scores[2] < scores[1]


def test_orders_longer_than_the_training_text_back_off():
    lm = ModifiedKneserNey(order=6, vocab_size=4).fit([1, 2, 3])
    dist = lm.distribution([1, 2, 3, 1, 2])
    assert sum(dist) == pytest.approx(1.0, abs=1e-12) and min(dist) > 0
