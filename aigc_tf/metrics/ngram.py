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

Written in plain Python and numpy because no maintained package builds it on
our own token ids without pulling in a framework; the tests check that every
conditional distribution sums to 1 and compare against hand-computed values.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence


class KneserNey:
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

    def prob(self, context: Sequence[int], w: int) -> float:
        """``P(w | context)``; only the last ``order - 1`` context tokens matter."""
        context = tuple(int(c) for c in context)[-(self.order - 1) :] if self.order > 1 else ()
        return self._prob(len(context) + 1, context, int(w))

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
