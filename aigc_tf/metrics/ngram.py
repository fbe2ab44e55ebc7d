"""Interpolated Kneser-Ney n-gram language model: the baseline every neural
language model here must beat on the same tokens.

For the highest order, with context ``h`` (the previous ``n - 1`` tokens),
``h'`` the context without its first token, and one discount ``D`` per order:

    P(w | h) = max(c(h w) - D, 0) / c(h)  +  D * N1+(h .) / c(h) * P(w | h')

Lower orders use continuation counts instead of raw counts:
``c'(h' w) = N1+(. h' w)``, the number of distinct tokens seen before
``h' w``. The recursion ends in a uniform distribution over the vocabulary,
so every token gets non-zero probability. A context never seen at some order
backs off entirely to the next lower order. (Chen & Goodman 1998, section 3.)

:class:`ModifiedKneserNey` is Chen & Goodman's modified variant (1998,
section 4.1.6): three discounts per order, ``D1`` for n-grams seen once,
``D2`` twice and ``D3+`` three or more times, estimated from that order's
count-of-counts ``n_r`` (the number of n-grams with count r):

    Y = n1 / (n1 + 2 n2),  D_r = r - (r + 1) Y n_{r+1} / n_r   (r = 1, 2, 3)

    P(w | h) = max(c(h w) - D(c(h w)), 0) / c(h)
               + (D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)) / c(h) * P(w | h')

with ``N_r(h .)`` the number of distinct tokens seen after ``h`` exactly r
(3: at least 3) times, the same continuation counts below the top order and
the same uniform floor. :func:`tuned_modified_kneser_ney` counts once up to
order 10 and picks the order that scores best on held-out tokens: the
baseline the language models are reported against.

Written in plain Python and numpy because no maintained package builds it on
our own token ids without pulling in a framework; the tests check that every
conditional distribution sums to 1 and compare against hand-computed values.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence

MAX_TUNED_ORDER = 10


class _Scoring:
    """Scoring and sampling shared by the n-gram models: they define ``order``,
    ``vocab_size`` and ``_prob(k, context, w)`` (``k = len(context) + 1``)."""

    order: int
    vocab_size: int

    def _prob(self, k: int, context: tuple, w: int) -> float:
        raise NotImplementedError

    def prob(self, context: Sequence[int], w: int) -> float:
        """``P(w | context)``; only the last ``order - 1`` context tokens matter."""
        context = tuple(int(c) for c in context)[-(self.order - 1) :] if self.order > 1 else ()
        return self._prob(len(context) + 1, context, int(w))

    def log_likelihood(self, ids: Sequence[int], start: int = 1) -> tuple[float, int]:
        """Sum of ``ln P(w_t | previous tokens)`` over ``ids[start:]`` and the
        number of terms (``ids[:start]`` is context only, e.g. a seq2seq prefix)."""
        ids = [int(i) for i in ids]
        start = max(start, 1)
        total = 0.0
        for t in range(start, len(ids)):
            total += math.log(self.prob(ids[max(0, t - self.order + 1) : t], ids[t]))
        return total, max(len(ids) - start, 0)

    def perplexity(self, ids: Sequence[int]) -> float:
        """``exp(-mean ln P)`` over ``ids[1:]`` (the first token has no context)."""
        ll, n = self.log_likelihood(ids)
        return math.exp(-ll / max(n, 1))

    def generate(self, prompt: Sequence[int], num_tokens: int, seed: int = 0, banned: Sequence[int] = (0, 1)) -> list[int]:
        """Sample ``num_tokens`` ids after ``prompt`` (ancestral sampling; ``banned`` ids never drawn)."""
        import numpy as np

        rng = np.random.default_rng(seed)
        ids = [int(i) for i in prompt]
        for _ in range(num_tokens):
            p = np.asarray(self.distribution(ids[-(self.order - 1) :] if self.order > 1 else []))
            p[list(banned)] = 0.0
            ids.append(int(rng.choice(len(p), p=p / p.sum())))
        return ids[len(prompt) :]

    def distribution(self, context: Iterable[int]) -> list[float]:
        """``P(. | context)`` over the whole vocabulary (for tests and sampling)."""
        context = list(context)
        return [self.prob(context, w) for w in range(self.vocab_size)]


class KneserNey(_Scoring):
    """Interpolated Kneser-Ney model of order ``order`` over token ids.

    Args:
        order: n, the length of the n-grams (1 to 5 are typical).
        vocab_size: number of possible token ids (``0 .. vocab_size - 1``).
        discount: ``D`` in (0, 1), the same at every order.

    Example:
        >>> lm = KneserNey(order=3, vocab_size=100).fit(train_ids)
        >>> lm.perplexity(valid_ids)
    """

    def __init__(self, order: int, vocab_size: int, discount: float = 0.75):
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        if not 0.0 < discount < 1.0:
            raise ValueError(f"discount must be in (0, 1), got {discount}")
        self.order = order
        self.vocab_size = vocab_size
        self.discount = discount
        # counts[k][context][w]: raw counts for k == order, continuation counts below.
        self.counts: list[dict[tuple, dict[int, float]]] = [defaultdict(lambda: defaultdict(float)) for _ in range(order + 1)]
        self.totals: list[dict[tuple, float]] = [defaultdict(float) for _ in range(order + 1)]

    def fit(self, ids: Sequence[int]) -> KneserNey:
        ids = [int(i) for i in ids]
        n = self.order
        seen_left: list[set] = [set() for _ in range(n + 1)]
        for end in range(len(ids)):
            for k in range(1, n + 1):
                start = end - k + 1
                if start < 0:
                    break
                gram = tuple(ids[start : end + 1])
                context, w = gram[:-1], gram[-1]
                if k == n:
                    self._add(k, context, w)
                else:
                    # Continuation count: one per distinct left neighbour.
                    left = ids[start - 1] if start > 0 else None
                    if left is not None and (left, gram) not in seen_left[k]:
                        seen_left[k].add((left, gram))
                        self._add(k, context, w)
        return self

    def _add(self, k: int, context: tuple, w: int) -> None:
        self.counts[k][context][w] += 1.0
        self.totals[k][context] += 1.0

    def _prob(self, k: int, context: tuple, w: int) -> float:
        if k == 0:
            return 1.0 / self.vocab_size
        lower = self._prob(k - 1, context[1:], w)
        total = self.totals[k].get(context, 0.0)
        if total == 0.0:
            return lower  # unseen context: back off entirely
        row = self.counts[k][context]
        d = self.discount
        return max(row.get(w, 0.0) - d, 0.0) / total + d * len(row) / total * lower


class _Level:
    """One order's counts (raw or continuation) with what interpolation needs:
    per context ``(c(h), N1(h .), N2(h .), N3+(h .))`` and the three discounts."""

    __slots__ = ("counts", "contexts", "discounts")

    def __init__(self, counts: dict[tuple, int], discounts: tuple[float, float, float] | None = None):
        self.counts = counts
        stats: dict[tuple, list] = {}
        for gram, c in counts.items():
            row = stats.get(gram[:-1])
            if row is None:
                row = stats[gram[:-1]] = [0, 0, 0, 0]
            row[0] += c
            row[min(c, 3)] += 1
        self.discounts = discounts or modified_discounts(counts.values())
        d1, d2, d3 = self.discounts
        # Store (c(h), gamma(h) * c(h)): the mass left for the lower order.
        self.contexts = {h: (t, d1 * n1 + d2 * n2 + d3 * n3) for h, (t, n1, n2, n3) in stats.items()}

    def discount(self, c: int) -> float:
        return 0.0 if c == 0 else self.discounts[min(c, 3) - 1]


def modified_discounts(counts: Iterable[int]) -> tuple[float, float, float]:
    """Chen & Goodman's ``(D1, D2, D3+)`` from the count-of-counts of one order.

    A count class that is absent gets discount 0 (nothing to discount); each
    ``D_r`` is clipped to ``[0, r]`` so that no n-gram's discounted count is
    negative (which keeps every conditional a distribution on tiny data).
    """
    n = Counter(c for c in map(int, counts) if c <= 4)
    n1, n2, n3, n4 = (n.get(r, 0) for r in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.0
    out = []
    for r, (nr, nnext) in enumerate(((n1, n2), (n2, n3), (n3, n4)), start=1):
        d = r - (r + 1) * y * nnext / nr if nr else 0.0
        out.append(min(max(d, 0.0), float(r)))
    return tuple(out)


class NgramCounts:
    """Raw counts of every n-gram of length 1..``max_order`` in ``ids`` and the
    continuation counts ``N1+(. g)`` below it, built once and shared by
    models of every order (counting is C-speed ``Counter`` over ``zip``)."""

    def __init__(self, ids: Sequence[int], max_order: int):
        if max_order < 1:
            raise ValueError(f"order must be at least 1, got {max_order}")
        ids = [int(i) for i in ids]
        self.max_order = max_order
        self._raw = {k: Counter(zip(*(ids[i:] for i in range(k)), strict=False)) for k in range(1, max_order + 1)}
        self._levels: dict[tuple[str, int], _Level] = {}

    def level(self, kind: str, k: int, discounts=None) -> _Level:
        """``kind``: ``"raw"`` (the top order's counts) or ``"continuation"``."""
        key = (kind, k, discounts)
        if key not in self._levels:
            if kind == "raw":
                counts = self._raw[k]
            else:
                # One per distinct left neighbour: the (k+1)-grams ending in g.
                counts = Counter(g[1:] for g in self._continuation_source(k))
            self._levels[key] = _Level(counts, discounts)
        return self._levels[key]

    def _continuation_source(self, k: int):
        if k + 1 not in self._raw:
            raise ValueError(f"continuation counts of order {k} need n-grams of order {k + 1}; count up to it")
        return self._raw[k + 1]


class ModifiedKneserNey(_Scoring):
    """Interpolated modified Kneser-Ney of order ``order`` over token ids.

    Args:
        order: n, the length of the n-grams (1 to 10 here).
        vocab_size: number of possible token ids (``0 .. vocab_size - 1``).
        counts: an :class:`NgramCounts` of the training ids counted up to at
            least ``order`` (shared between orders); else :meth:`fit`.
        discounts: fixed ``(D1, D2, D3+)`` for every order instead of the
            estimates (``(D, D, D)`` is :class:`KneserNey` with discount D).

    Example:
        >>> lm = ModifiedKneserNey(order=6, vocab_size=100).fit(train_ids)
        >>> lm.perplexity(valid_ids)
    """

    def __init__(self, order: int, vocab_size: int, counts: NgramCounts | None = None, discounts=None):
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        self.order = order
        self.vocab_size = vocab_size
        self.fixed_discounts = tuple(discounts) if discounts is not None else None
        self._counts = counts
        self._levels: list[_Level] = []
        if counts is not None:
            self._take_levels()

    def fit(self, ids: Sequence[int]) -> ModifiedKneserNey:
        self._counts = NgramCounts(ids, self.order)
        self._take_levels()
        return self

    def _take_levels(self) -> None:
        c, d = self._counts, self.fixed_discounts
        self._levels = [None] + [c.level("continuation", k, d) for k in range(1, self.order)] + [c.level("raw", self.order, d)]

    @property
    def discounts(self) -> list[tuple[float, float, float]]:
        """``(D1, D2, D3+)`` of orders 1..n (continuation counts below n)."""
        return [level.discounts for level in self._levels[1:]]

    def _prob(self, k: int, context: tuple, w: int) -> float:
        p = 1.0 / self.vocab_size
        levels = self._levels
        # From the unigram level up; a context never seen leaves p as it is.
        for j in range(1, k + 1):
            level = levels[j]
            h = context[k - j :]
            stats = level.contexts.get(h)
            if stats is None:
                continue
            total, left = stats
            c = level.counts.get(h + (w,), 0)
            p = (max(c - level.discount(c), 0.0) + left * p) / total
        return p


def tuned_modified_kneser_ney(train_ids: Sequence[int], vocab_size: int, score: Callable[[_Scoring], float],
                              orders: Iterable[int] = range(1, MAX_TUNED_ORDER + 1)):
    """The modified Kneser-Ney model whose order scores lowest under ``score``
    (a held-out perplexity), counted once for all orders.

    Returns ``(model, {order: score})``.
    """
    orders = sorted(set(orders))
    counts = NgramCounts(train_ids, orders[-1])
    scores = {k: float(score(ModifiedKneserNey(k, vocab_size, counts))) for k in orders}
    best = min(scores, key=scores.get)
    return ModifiedKneserNey(best, vocab_size, counts), scores
