"""Column transforms for learned tabular synthesizers, fitted on the training split, inverted on output.

* Continuous columns (integers, floats, dates, timestamps): **mode-specific
  normalisation** (Xu et al. 2019, CTGAN): a variational Gaussian mixture
  (scikit-learn's ``BayesianGaussianMixture`` with a Dirichlet-process prior,
  at most ``max_modes`` components, those with weight above 0.005 kept) is fitted
  to the column; a value ``x`` becomes a scalar ``alpha = (x - mu_k) / (4 sigma_k)``
  in [-1, 1] (a ``tanh`` output) and a one-hot of its mode ``k`` (a ``softmax``
  output), with ``k`` drawn from the value's posterior over the modes.
  The inverse is ``x = 4 sigma_k alpha + mu_k``, then rounded to the column's
  precision (whole numbers for integers, dates and timestamps; the fewest
  decimals, up to 6, that hold every training value for floats), so values
  come back exactly despite float32. Only values further than 3.96 sigma_k
  from their mode's mean are changed (``alpha`` is clipped to +-0.99, as in
  CTGAN); :attr:`TableTransformer.clipped` counts them. Generated values are
  also clipped to the column's training range (SDV's ``enforce_min_max_values``)
  and, in a column with at most ``snap_distinct`` distinct training values
  (codes, counts, brackets), moved to the nearest of those values.
  With ``point_mass`` > 0, a value that holds at least that share of the
  training rows (the zeros of a zero-inflated amount, a count's common
  values) is a mode of its own with zero width (``sigma_k = 0``): it is
  encoded as that mode with ``alpha = 0`` and generated exactly, whatever the
  model's ``alpha``; the mixture is fitted to the other values only. (Without
  it, the mixture gives such a spike a mode of some width, and the noise a
  model adds to ``alpha`` turns a share of its zeros into small positive
  values.)
* Discrete columns (strings, booleans, and the columns named ``discrete``):
  a one-hot over the categories seen in training.
* Nulls: a discrete column's null is one more category; a continuous column
  with nulls gets a two-way ``softmax`` block (present, null) and its nulls
  are encoded at the column's mean.

The transformed matrix is float32 with the blocks of each column side by
side; :attr:`TableTransformer.spans` lists them for the models' output
activations and losses.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pyarrow as pa

from aigc_tf.errors import DataError

ALPHA_LIMIT = 0.99
MIN_MODE_WEIGHT = 0.005
_MAX_DECIMALS = 6


@dataclasses.dataclass(frozen=True)
class Span:
    """One block of the transformed matrix: ``width`` units from ``start``.

    ``activation``: ``"tanh"`` (a continuous column's scalar) or
    ``"softmax"`` (a one-hot: modes, categories, or present/null).
    """

    column: str
    start: int
    width: int
    activation: str
    role: str  # "alpha" | "mode" | "category" | "null"


def category_values(column: pa.ChunkedArray) -> list:
    """A discrete column's values as Python objects, a float NaN counted as null (None)."""
    return [None if (v is None or (isinstance(v, float) and v != v)) else v for v in column.to_pylist()]


def _is_discrete_type(arrow_type) -> bool:
    return (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
            or pa.types.is_boolean(arrow_type) or pa.types.is_dictionary(arrow_type))


def to_numbers(column: pa.ChunkedArray, name: str = "") -> tuple[np.ndarray, np.ndarray]:
    """A continuous column's values as float64 (dates: days, timestamps: their unit) and its null mask."""
    arrow_type = column.type
    if pa.types.is_date32(arrow_type):
        column = column.cast(pa.int32())
    elif pa.types.is_timestamp(arrow_type) or pa.types.is_date64(arrow_type):
        column = column.cast(pa.int64())
    elif not (pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)):
        raise DataError(f"column {name!r} has type {arrow_type}, neither numeric nor a date nor text; list it as "
                        f"discrete, convert it, or drop it")
    null = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    values = np.asarray(column.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.float64)
    if np.isnan(values).any():  # NaN in a float column is a null too
        null |= np.isnan(values)
        values = np.where(null, 0.0, values)
    return values, null


def from_numbers(values: np.ndarray, null: np.ndarray | None, arrow_type, decimals: int | None) -> pa.Array:
    """The inverse of :func:`to_numbers`: float64 values (rounded to ``decimals``) as an array of ``arrow_type``."""
    if decimals is not None:
        values = np.round(values, decimals)
    if not pa.types.is_floating(arrow_type) and not np.isfinite(values).all():  # no integer stands for NaN
        bad = ~np.isfinite(values)
        null = bad if null is None else (null | bad)
        values = np.where(bad, 0.0, values)
    if pa.types.is_floating(arrow_type):
        return pa.array(values, type=arrow_type, mask=null)
    if pa.types.is_integer(arrow_type):
        storage = np.dtype(arrow_type.to_pandas_dtype())
    else:  # date32 counts days in int32; date64 and timestamps count their unit in int64
        storage = np.dtype(np.int32 if pa.types.is_date32(arrow_type) else np.int64)
    info = np.iinfo(storage)
    stored = np.clip(values, info.min, info.max).astype(storage)
    return pa.array(stored, mask=null).cast(arrow_type)


def precision(values: np.ndarray, arrow_type) -> int | None:
    """Decimals to round a column's generated values to: 0 for integers and dates, else :func:`_decimals`."""
    return _decimals(values) if pa.types.is_floating(arrow_type) else 0


def is_discrete(field: pa.Field, discrete: list[str] | tuple = ()) -> bool:
    """Whether a column is modelled as categories (strings, booleans, dictionaries, or named in ``discrete``)."""
    return field.name in discrete or _is_discrete_type(field.type)


def _decimals(values: np.ndarray) -> int | None:
    """The fewest decimals (<= 6) that hold every value exactly, or None (keep full precision)."""
    for d in range(_MAX_DECIMALS + 1):
        if np.all(np.abs(np.round(values, d) - values) <= 1e-9 * np.maximum(1.0, np.abs(values))):
            return d
    return None


class ContinuousColumn:
    """Mode-specific normalisation of one numeric or date column."""

    def __init__(self, name: str, arrow_type, max_modes: int = 10, seed: int = 0, snap_distinct: int = 0,
                 point_mass: float = 0.0):
        self.name, self.arrow_type, self.max_modes, self.seed = name, arrow_type, max_modes, seed
        self.snap_distinct, self.point_mass = snap_distinct, float(point_mass)

    def fit(self, column: pa.ChunkedArray) -> ContinuousColumn:
        values, null = to_numbers(column, self.name)
        present = values[~null]
        if len(present) == 0:
            raise DataError(f"column {self.name!r} has no values in the training split; drop it")
        self.nullable = bool(null.any())
        self.fill = float(present.mean())
        self.decimals = precision(present, self.arrow_type)
        self.minimum, self.maximum = float(present.min()), float(present.max())
        distinct, counts = np.unique(present, return_counts=True)
        # A column of few distinct values (survey codes, counts) gets its generated values snapped to them.
        self.snap = distinct.tolist() if len(distinct) <= self.snap_distinct else None
        is_mass = counts >= self.point_mass * len(present) if self.point_mass > 0 else np.zeros(len(distinct), bool)
        if is_mass.any() and (~is_mass).sum() == 1:  # a single value left over is a point mass too
            is_mass[:] = True
        if is_mass.any():
            masses, share = distinct[is_mass], counts[is_mass] / len(present)
            rest = present[~np.isin(present, masses)]
            self.means, self.stds, self.weights = masses.astype(np.float64), np.zeros(len(masses)), share
            if len(rest):
                means, stds, weights = self._mixture(rest)
                self.means = np.concatenate([self.means, means])
                self.stds = np.concatenate([self.stds, stds])
                self.weights = np.concatenate([share, weights * len(rest) / len(present)])
        elif len(distinct) == 1:  # a constant: one mode
            self.means, self.stds, self.weights = np.array([distinct[0]]), np.array([1.0]), np.array([1.0])
        else:
            self.means, self.stds, self.weights = self._mixture(present)
        return self

    def _mixture(self, present: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(means, stds, weights)`` of the kept components of a variational mixture fitted to ``present``."""
        from sklearn.mixture import BayesianGaussianMixture

        distinct = np.unique(present)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning on columns with few distinct values
            gm = BayesianGaussianMixture(
                n_components=min(self.max_modes, len(distinct)), weight_concentration_prior_type="dirichlet_process",
                weight_concentration_prior=0.001, max_iter=100, random_state=self.seed,
            ).fit(present[:, None])
        keep = gm.weights_ > MIN_MODE_WEIGHT
        return gm.means_[keep, 0], np.sqrt(gm.covariances_[keep, 0, 0]), gm.weights_[keep] / gm.weights_[keep].sum()

    def posterior(self, values: np.ndarray) -> np.ndarray:
        """``(rows, modes)``: each value's posterior over the kept modes, ``w_k N(x; mu_k, sigma_k)`` normalised.

        A point mass (``sigma_k = 0``) takes the values equal to it, all of
        them; the other values are shared among the other modes (or, if
        there are none, go to the nearest point mass)."""
        mass = self.stds == 0
        width = np.where(mass, 1.0, self.stds)
        z = (values[:, None] - self.means[None, :]) / width[None, :]
        log_p = np.log(self.weights)[None, :] - np.log(width)[None, :] - 0.5 * z * z
        if mass.any():
            hit = (values[:, None] == self.means[None, :]) & mass[None, :]
            log_p = np.where(mass[None, :], -np.inf, log_p)
            if mass.all():  # nothing but point masses: an unseen value goes to the nearest one
                nearest_mass = np.argmin(np.abs(values[:, None] - self.means[None, :]), axis=1)
                log_p = np.where(np.arange(self.modes)[None, :] == nearest_mass[:, None], 0.0, -np.inf)
            log_p = np.where(hit.any(axis=1, keepdims=True), np.where(hit, 0.0, -np.inf), log_p)
        log_p -= log_p.max(axis=1, keepdims=True)
        p = np.exp(log_p)
        return p / p.sum(axis=1, keepdims=True)

    def get_config(self) -> dict:
        return {"kind": "continuous", "name": self.name, "nullable": self.nullable, "fill": self.fill,
                "decimals": self.decimals, "minimum": self.minimum, "maximum": self.maximum,
                "means": self.means.tolist(), "stds": self.stds.tolist(), "weights": self.weights.tolist(),
                "max_modes": self.max_modes, "seed": self.seed, "snap_distinct": self.snap_distinct,
                "point_mass": self.point_mass, "snap": self.snap}

    @classmethod
    def from_config(cls, config: dict, arrow_type) -> ContinuousColumn:
        column = cls(config["name"], arrow_type, config["max_modes"], config["seed"], config["snap_distinct"],
                     config.get("point_mass", 0.0))
        for key in ("nullable", "fill", "decimals", "minimum", "maximum", "snap"):
            setattr(column, key, config[key])
        for key in ("means", "stds", "weights"):
            setattr(column, key, np.asarray(config[key], dtype=np.float64))
        return column

    @property
    def modes(self) -> int:
        return len(self.means)

    def spans(self, start: int) -> list[Span]:
        out = [Span(self.name, start, 1, "tanh", "alpha"), Span(self.name, start + 1, self.modes, "softmax", "mode")]
        if self.nullable:
            out.append(Span(self.name, start + 1 + self.modes, 2, "softmax", "null"))
        return out

    @property
    def width(self) -> int:
        return 1 + self.modes + (2 if self.nullable else 0)

    def transform(self, column: pa.ChunkedArray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        values, null = to_numbers(column, self.name)
        values = np.where(null, self.fill, values)
        if self.modes == 1:
            mode = np.zeros(len(values), dtype=np.int64)
        else:
            posterior = self.posterior(values)
            u = rng.random(len(values))[:, None]
            mode = np.minimum((np.cumsum(posterior, axis=1) < u).sum(axis=1), self.modes - 1)
        std = self.stds[mode]
        alpha = np.divide(values - self.means[mode], 4 * std, out=np.zeros(len(values)), where=std > 0)
        clipped = int((np.abs(alpha) > ALPHA_LIMIT).sum())
        out = np.zeros((len(values), self.width), dtype=np.float32)
        out[:, 0] = np.clip(alpha, -ALPHA_LIMIT, ALPHA_LIMIT)
        out[np.arange(len(values)), 1 + mode] = 1.0
        if self.nullable:
            out[np.arange(len(values)), 1 + self.modes + null.astype(np.int64)] = 1.0
        return out, clipped

    def inverse(self, block: np.ndarray) -> pa.Array:
        block = np.asarray(block, dtype=np.float64)
        mode = np.argmax(block[:, 1:1 + self.modes], axis=1)
        alpha = np.clip(block[:, 0], -1.0, 1.0)
        values = np.clip(alpha * 4 * self.stds[mode] + self.means[mode], self.minimum, self.maximum)
        if self.snap is not None:
            values = nearest(np.asarray(self.snap), values)
        null = np.argmax(block[:, 1 + self.modes:], axis=1) == 1 if self.nullable else None
        return from_numbers(values, null, self.arrow_type, self.decimals)


def nearest(grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each value replaced by the nearest point of the sorted ``grid`` (the lower one on a tie)."""
    upper = np.clip(np.searchsorted(grid, values), 1, len(grid) - 1) if len(grid) > 1 else np.zeros(len(values), int)
    lower = np.maximum(upper - 1, 0)
    return np.where(np.abs(values - grid[lower]) <= np.abs(grid[upper] - values), grid[lower], grid[upper])


class DiscreteColumn:
    """One-hot of one categorical, boolean or listed column (null: one more category)."""

    def __init__(self, name: str, arrow_type):
        self.name, self.arrow_type = name, arrow_type

    def fit(self, column: pa.ChunkedArray) -> DiscreteColumn:
        values = category_values(column)
        present = sorted({v for v in values if v is not None}, key=lambda v: (str(type(v)), v))
        self.categories = present + ([None] if any(v is None for v in values) else [])
        if not self.categories:
            raise DataError(f"column {self.name!r} has no values in the training split; drop it")
        self._index = {v: i for i, v in enumerate(self.categories)}
        self.counts = np.bincount([self._index[v] for v in values], minlength=len(self.categories))
        return self

    def get_config(self) -> dict:
        # Categories go through Arrow IPC (dates, booleans and numbers keep their exact type).
        return {"kind": "discrete", "name": self.name, "categories": _encode_array(self.categories, self.arrow_type),
                "counts": self.counts.tolist()}

    @classmethod
    def from_config(cls, config: dict, arrow_type) -> DiscreteColumn:
        column = cls(config["name"], arrow_type)
        column.categories = _decode_array(config["categories"])
        column._index = {v: i for i, v in enumerate(column.categories)}
        column.counts = np.asarray(config["counts"], dtype=np.int64)
        return column

    @property
    def width(self) -> int:
        return len(self.categories)

    def spans(self, start: int) -> list[Span]:
        return [Span(self.name, start, self.width, "softmax", "category")]

    def codes(self, column: pa.ChunkedArray) -> np.ndarray:
        """Category index per row (-1: a value not seen in training)."""
        return np.array([self._index.get(v, -1) for v in category_values(column)], dtype=np.int64)

    def transform(self, column: pa.ChunkedArray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        codes = self.codes(column)
        unseen = codes < 0
        if unseen.any():
            example = category_values(column)[int(np.flatnonzero(unseen)[0])]
            raise DataError(f"column {self.name!r}: value {example!r} was not in the training split; the transform "
                            f"only knows {len(self.categories)} categories")
        out = np.zeros((len(codes), self.width), dtype=np.float32)
        out[np.arange(len(codes)), codes] = 1.0
        return out, 0

    def inverse(self, block: np.ndarray) -> pa.Array:
        codes = np.argmax(np.asarray(block), axis=1)
        values = [self.categories[i] for i in codes]
        return pa.array(values, type=_value_type(self.arrow_type))


def _value_type(arrow_type):
    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


def _encode_array(values: list, arrow_type) -> str:
    """A list of values of ``arrow_type`` as base64 Arrow IPC (JSON-safe, exact for every type)."""
    import base64

    batch = pa.record_batch([pa.array(values, type=_value_type(arrow_type))], names=["v"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def _decode_array(text: str) -> list:
    import base64

    with pa.ipc.open_stream(base64.b64decode(text)) as reader:
        return reader.read_all().column(0).to_pylist()


class TableTransformer:
    """Fits one transform per column on a training table; ``transform`` / ``inverse`` between tables and matrices.

    Args:
        discrete: column names to treat as categories even if numeric.
        max_modes: components of each continuous column's mixture.
        snap_distinct: a continuous column with at most this many distinct
            training values has its generated values moved to the nearest of
            them (0: never).
        point_mass: a continuous value holding at least this share of the
            training rows is a zero-width mode of its own (0: never).
        seed: the mixtures' seed.

    Example:
        >>> transformer = TableTransformer(discrete=["children"]).fit(train)   # doctest: +SKIP
        >>> matrix = transformer.transform(train)                               # (rows, transformer.width)
        >>> transformer.inverse(matrix).equals(train)                           # True (no clipped outliers)
    """

    def __init__(self, discrete: list[str] | None = None, max_modes: int = 10, seed: int = 0, snap_distinct: int = 0,
                 point_mass: float = 0.0):
        self.discrete, self.max_modes, self.seed = list(discrete or []), max_modes, seed
        self.snap_distinct, self.point_mass = snap_distinct, float(point_mass)

    def fit(self, table: pa.Table) -> TableTransformer:
        unknown = [c for c in self.discrete if c not in table.column_names]
        if unknown:
            raise DataError(f"discrete column {unknown[0]!r} is not in the table (columns: "
                            f"{', '.join(table.column_names)})")
        self.schema = table.schema
        self.columns = []
        for field in table.schema:
            if is_discrete(field, self.discrete):
                self.columns.append(DiscreteColumn(field.name, field.type).fit(table.column(field.name)))
            else:
                self.columns.append(ContinuousColumn(field.name, field.type, self.max_modes, self.seed,
                                                     self.snap_distinct, self.point_mass)
                                    .fit(table.column(field.name)))
        self._layout()
        return self

    def _layout(self) -> None:
        self.spans = []
        start = 0
        for column in self.columns:
            self.spans += column.spans(start)
            start += column.width
        self.width = start
        self.clipped = 0

    def get_config(self) -> dict:
        """The fitted state as plain JSON values (it goes into a model's config and so its ``.keras`` file)."""
        import base64

        return {"discrete": self.discrete, "max_modes": self.max_modes, "seed": self.seed,
                "snap_distinct": self.snap_distinct, "point_mass": self.point_mass,
                "schema": base64.b64encode(self.schema.serialize().to_pybytes()).decode("ascii"),
                "columns": [c.get_config() for c in self.columns]}

    @classmethod
    def from_config(cls, config: dict) -> TableTransformer:
        import base64

        # Transforms saved before point masses existed have none.
        out = cls(config["discrete"], config["max_modes"], config["seed"], config["snap_distinct"],
                  config.get("point_mass", 0.0))
        out.schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(config["schema"])))
        kinds = {"continuous": ContinuousColumn, "discrete": DiscreteColumn}
        out.columns = [kinds[c["kind"]].from_config(c, out.schema.field(c["name"]).type) for c in config["columns"]]
        out._layout()
        return out

    def transform(self, table: pa.Table, seed: int = 0) -> np.ndarray:
        """``(rows, width)`` float32; modes are drawn from their posteriors with ``seed``."""
        if table.column_names != self.schema.names:
            raise DataError(f"the table's columns {table.column_names} are not the fitted ones {self.schema.names}")
        rng = np.random.default_rng(seed)
        blocks, self.clipped = [], 0
        for column in self.columns:
            block, clipped = column.transform(table.column(column.name), rng)
            blocks.append(block)
            self.clipped += clipped
        return np.concatenate(blocks, axis=1)

    def inverse(self, matrix: np.ndarray) -> pa.Table:
        """The table a transformed (or generated) matrix stands for, with the training table's schema."""
        matrix = np.asarray(matrix)
        if matrix.ndim != 2 or matrix.shape[1] != self.width:
            raise DataError(f"expected a matrix of {self.width} columns, got shape {matrix.shape}")
        arrays, start = [], 0
        for column in self.columns:
            arrays.append(column.inverse(matrix[:, start:start + column.width]))
            start += column.width
        return pa.Table.from_arrays(arrays, schema=self.schema)
