"""Two baseline synthesizers every learned one is reported against.

* :class:`IndependentMarginals`: each column on its own, from its training
  distribution (categories by frequency, nulls included; numbers by linear
  interpolation of the empirical quantile function). It gets every column's
  shape right and every relation between columns wrong.
* :class:`GaussianCopula`: the same marginals joined by a Gaussian copula
  (the correlation of the columns' normal scores), as SDV's
  ``GaussianCopulaSynthesizer`` with empirical marginals does. A category
  stands for the interval of the unit line its cumulative frequency spans; a
  training value's normal score is drawn inside it (seeded), so categories
  take part in the correlation without an order being invented for them
  beyond their (sorted) listing. A numeric column's nulls are one more
  variable of the copula (present or null).

Both produce tables with the training table's schema.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from scipy import special

from aigc_tf.errors import DataError
from aigc_tf.tabular.transforms import category_values, from_numbers, is_discrete, precision, to_numbers


class _Marginal:
    """One column's training distribution: sampled from a uniform, and a uniform from a value."""

    def __init__(self, field: pa.Field, column: pa.ChunkedArray, discrete: bool):
        self.field, self.discrete = field, discrete
        if discrete:
            values = category_values(column)
            present = sorted({v for v in values if v is not None}, key=lambda v: (str(type(v)), v))
            self.categories = present + ([None] if any(v is None for v in values) else [])
            index = {v: i for i, v in enumerate(self.categories)}
            self.codes = np.array([index[v] for v in values], dtype=np.int64)
            counts = np.bincount(self.codes, minlength=len(self.categories))
            self.cumulative = np.cumsum(counts) / counts.sum()
        else:
            values, null = to_numbers(column, field.name)
            if null.all():
                raise DataError(f"column {field.name!r} has no values in the training split; drop it")
            self.sorted = np.sort(values[~null])
            self.null = null
            self.null_rate = float(null.mean())
            self.decimals = precision(self.sorted, field.type)
            self.values = values

    def sample(self, u: np.ndarray, null_u: np.ndarray | None = None) -> pa.Array:
        """Values for uniforms ``u`` (and, for a numeric column with nulls, ``null_u`` < null rate: null)."""
        if self.discrete:
            codes = np.minimum(np.searchsorted(self.cumulative, u, side="right"), len(self.categories) - 1)
            value_type = self.field.type.value_type if pa.types.is_dictionary(self.field.type) else self.field.type
            return pa.array([self.categories[i] for i in codes], type=value_type)
        # linear interpolation of the empirical quantile function between the order statistics
        positions = u * (len(self.sorted) - 1)
        values = np.interp(positions, np.arange(len(self.sorted)), self.sorted)
        null = (null_u < self.null_rate) if (self.null_rate and null_u is not None) else None
        return from_numbers(values, null, self.field.type, self.decimals)

    def normal_scores(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Each training row's normal score(s): the value's, and its null indicator's if it has nulls."""
        n = len(self.codes) if self.discrete else len(self.values)
        if self.discrete:
            lower = np.concatenate([[0.0], self.cumulative[:-1]])[self.codes]
            u = lower + rng.random(n) * (self.cumulative[self.codes] - lower)
            return [special.ndtri(np.clip(u, 1e-6, 1 - 1e-6))]
        # rank-based: the mid-rank of the value among the present ones; nulls at the median
        ranks = np.searchsorted(self.sorted, self.values, side="left") + 0.5 * (
            np.searchsorted(self.sorted, self.values, side="right") - np.searchsorted(self.sorted, self.values))
        u = np.where(self.null, 0.5, ranks / len(self.sorted))
        scores = [special.ndtri(np.clip(u, 1e-6, 1 - 1e-6))]
        if self.null_rate:
            lower = np.where(self.null, 1 - self.null_rate, 0.0)
            width = np.where(self.null, self.null_rate, 1 - self.null_rate)
            scores.append(special.ndtri(np.clip(lower + rng.random(n) * width, 1e-6, 1 - 1e-6)))
        return scores

    @property
    def variables(self) -> int:
        return 2 if (not self.discrete and self.null_rate) else 1


class IndependentMarginals:
    """Every column drawn on its own from its training distribution.

    Args:
        discrete: numeric column names to treat as categories.
    """

    def __init__(self, discrete: list[str] | None = None):
        self.discrete = list(discrete or [])

    def fit(self, table: pa.Table) -> IndependentMarginals:
        self.schema = table.schema
        self.marginals = [_Marginal(f, table.column(f.name), is_discrete(f, self.discrete)) for f in table.schema]
        return self

    def sample(self, n: int, seed: int = 0) -> pa.Table:
        rng = np.random.default_rng(seed)
        arrays = [m.sample(rng.random(n), rng.random(n)) for m in self.marginals]
        return pa.Table.from_arrays(arrays, schema=self.schema)


class GaussianCopula(IndependentMarginals):
    """The training marginals joined by the correlation of their normal scores."""

    def fit(self, table: pa.Table, seed: int = 0) -> GaussianCopula:
        super().fit(table)
        rng = np.random.default_rng(seed)
        scores = np.column_stack([s for m in self.marginals for s in m.normal_scores(rng)])
        correlation = np.corrcoef(scores, rowvar=False) if scores.shape[1] > 1 else np.ones((1, 1))
        correlation = np.nan_to_num(correlation)  # a constant column correlates with nothing
        np.fill_diagonal(correlation, 1.0)
        # the nearest positive-definite matrix, so that the Cholesky factor exists
        eigenvalues, vectors = np.linalg.eigh(correlation)
        correlation = vectors @ np.diag(np.maximum(eigenvalues, 1e-6)) @ vectors.T
        scale = np.sqrt(np.diag(correlation))
        self.correlation = correlation / scale[:, None] / scale[None, :]
        self._cholesky = np.linalg.cholesky(self.correlation)
        return self

    def sample(self, n: int, seed: int = 0) -> pa.Table:
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, len(self.correlation))) @ self._cholesky.T
        u = special.ndtr(z)
        arrays, k = [], 0
        for marginal in self.marginals:
            null_u = 1 - u[:, k + 1] if marginal.variables == 2 else None  # the top of the line is "null"
            arrays.append(marginal.sample(u[:, k], null_u))
            k += marginal.variables
        return pa.Table.from_arrays(arrays, schema=self.schema)
