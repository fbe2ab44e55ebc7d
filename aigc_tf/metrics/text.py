"""Text sample metrics: distinct-n and the text VAE's active units."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Distinct-n (Li et al. 2016): unique word n-grams / all word n-grams over all texts.

    Words are whitespace-separated; a text shorter than ``n`` words adds no
    n-grams. Returns 0.0 when there are no n-grams at all.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    total, unique = 0, set()
    for text in texts:
        words = text.split()
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


def active_units(means: Sequence[Sequence[float]] | np.ndarray, threshold: float = 0.01) -> int:
    """Latent units whose posterior mean varies across the data (Burda et al. 2016).

    Unit ``u`` is active when ``Cov_x(E_q(z|x)[z_u]) > threshold``: ``means`` is
    ``(examples, latent_dim)``, the posterior means of a data set.
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2 or len(means) < 2:
        raise ValueError(f"means must be (examples >= 2, latent_dim), got shape {means.shape}")
    return int(np.sum(means.var(axis=0) > threshold))
