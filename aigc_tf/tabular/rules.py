"""Rule-based records: a declarative YAML schema, generated column by column with numpy.

A schema names its columns in output order, each with a type and a
distribution, and optionally row constraints::

    columns:
      user_id: {type: integer, distribution: sequence, start: 1}
      age:     {type: integer, min: 18, max: 65}
      city:    {type: categorical, values: [Beijing, Shanghai], weights: [2, 1]}
      income:
        type: float
        distribution: lognormal
        log_mean: 10.8
        log_std: 0.4
        min: 20000
        max: 100000
        round: 2
        when:                       # first matching clause wins
          - if: "city == 'Beijing'"
            log_mean: 11.0
      start_date: {type: date, min: 2020-01-01, max: 2024-12-31}
      end_date:   {type: date, base: start_date, min: 0, max: 365, null_rate: 0.1}
    constraints:
      - "end_date >= start_date"

Randomness is addressed by row: the value of column ``c`` in row ``i`` is a
function of (seed, ``c``'s name, ``i``) only. So any chunk size gives the
same rows (streamed output is byte-identical to one-shot output), adding a
column leaves the others unchanged, and a slice of rows can be generated on
its own. Each column draws one uniform per row from a PCG64 stream advanced to
the chunk's first row and maps it through the inverse CDF of its
distribution (truncated to ``min``/``max`` where given, so bounds never pile
up values the way clipping does). Rows that break a constraint are drawn
again from a counter-based hash of (seed, column, attempt, row), which reaches
any single row directly. Unique keys come from a keyed Feistel permutation of
the row index over the key space, unique by construction with no memory of
what was already drawn.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from scipy import special

from aigc_tf.errors import ConfigError
from aigc_tf.tabular import output
from aigc_tf.tabular.expressions import Expression, ExpressionError, Value, date_number

TYPES = ("integer", "float", "categorical", "boolean", "date", "datetime", "string")
_NUMERIC_DISTRIBUTIONS = ("uniform", "normal", "lognormal", "exponential")
DISTRIBUTIONS = {"integer": (*_NUMERIC_DISTRIBUTIONS, "sequence"), "float": _NUMERIC_DISTRIBUTIONS,
                 "date": ("uniform",), "datetime": ("uniform",)}
_COMMON_KEYS = ("type", "null_rate", "unique", "when", "description")
_NUMERIC_KEYS = ("distribution", "min", "max", "mean", "std", "log_mean", "log_std", "scale", "base")
TYPE_KEYS = {
    "integer": (*_NUMERIC_KEYS, "start", "step"),
    "float": (*_NUMERIC_KEYS, "round"),
    "categorical": ("values", "weights"),
    "boolean": ("p",),
    "date": ("distribution", "min", "max", "base"),
    "datetime": ("distribution", "min", "max", "base"),
    "string": ("pattern", "values", "weights"),
}
_REQUIRED = {"uniform": ("min", "max"), "normal": ("mean", "std"), "lognormal": ("log_mean", "log_std"),
             "exponential": ("scale",), "sequence": ()}
_EXPRESSION_KIND = {"integer": "number", "float": "number", "boolean": "bool", "categorical": "categorical",
                    "date": "date", "datetime": "datetime"}
MAX_REDRAWS = 100
_PURPOSE_VALUE, _PURPOSE_NULL, _PURPOSE_PATTERN = 0, 1, 2
_PATTERN_CLASSES = {"#": (48, 10), "?": (65, 26), "%": (97, 26)}  # digit, A-Z, a-z: (first byte, size)
_GROUP_SPACE = 2**50  # pattern positions are drawn in groups of at most this many values (exact in a double)


class SchemaError(ConfigError):
    """A rule schema that cannot be generated; the message names the file and the column."""


def _column_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def _did_you_mean(key: str, options) -> str:
    close = difflib.get_close_matches(key, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclasses.dataclass
class Column:
    """One column of a schema after validation. ``branches``: ``[(condition, params)]`` from ``when``."""

    name: str
    type: str
    params: dict[str, Any]
    null_rate: float = 0.0
    unique: bool = False
    branches: list[tuple[Expression, dict[str, Any]]] = dataclasses.field(default_factory=list)
    key: int = 0  # 64 bits of the name's BLAKE2 hash: the column's random streams

    @property
    def categories(self) -> tuple | None:
        values = self.params.get("values")
        return tuple(values) if values is not None else None

    @property
    def kind(self) -> str:
        """The column's kind inside expressions."""
        if self.type == "string":
            return "categorical" if "values" in self.params else "string"
        return _EXPRESSION_KIND[self.type]

    @property
    def depends_on(self) -> list[str]:
        names = [self.params["base"]] if "base" in self.params else []
        for condition, params in self.branches:
            names += condition.names + ([params["base"]] if "base" in params else [])
        return list(dict.fromkeys(names))

    def row_deterministic(self) -> bool:
        """Values that follow from the row index alone (keys): a redraw cannot change them."""
        return self.unique or self.params.get("distribution") == "sequence"


@dataclasses.dataclass
class Schema:
    """A validated rule schema. ``columns`` in output order; ``order``: generation order."""

    columns: dict[str, Column]
    constraints: list[Expression]
    source: str = "<schema>"
    name: str = ""
    rows: int | None = None
    order: list[str] = dataclasses.field(default_factory=list)

    def error(self, where: str, message: str) -> SchemaError:
        return SchemaError(f"{self.source}: {where}: {message}")


# ------------------------------------------------------------------ loading
def load_schema(path: str | Path) -> Schema:
    """Read and validate a YAML rule schema; errors name the file and the column."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"{path}: no such schema file; pass a YAML schema such as configs/users_rules.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SchemaError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return schema_from_dict(raw, source=str(path))


def schema_from_dict(raw: Any, source: str = "<schema>") -> Schema:
    """Validate a schema given as a dict (what :func:`load_schema` reads from YAML)."""
    if not isinstance(raw, dict):
        raise SchemaError(f"{source}: a schema is a mapping with a 'columns:' section")
    if "columns" not in raw and "model" in raw:
        raise SchemaError(f"{source} is a training config (it has model:), not a rule schema; train it with: "
                          f"aigc-tf train {source}")
    unknown = set(raw) - {"name", "description", "columns", "constraints", "rows"}
    if unknown:
        key = sorted(unknown)[0]
        raise SchemaError(f"{source}: unknown top-level key {key!r}"
                          f"{_did_you_mean(key, ['name', 'description', 'columns', 'constraints', 'rows'])}; "
                          f"a schema has name, description, columns, constraints and rows")
    columns_raw = raw.get("columns")
    if not isinstance(columns_raw, dict) or not columns_raw:
        raise SchemaError(f"{source}: 'columns:' must map each column name to its rule, e.g. "
                          f"columns: {{age: {{type: integer, min: 18, max: 65}}}}")
    columns = {}
    for name, spec in columns_raw.items():
        columns[str(name)] = _column(str(name), spec, source)
    constraints_raw = raw.get("constraints") or []
    if not isinstance(constraints_raw, list):
        raise SchemaError(f"{source}: 'constraints:' must be a list of expressions, e.g. - \"end >= start\"")
    constraints = []
    for i, text in enumerate(constraints_raw):
        try:
            constraints.append(Expression(text))
        except ExpressionError as exc:
            raise SchemaError(f"{source}: constraints[{i}]: {exc}") from None
    rows = raw.get("rows")
    if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 1):
        raise SchemaError(f"{source}: rows must be a positive integer, got {rows!r}")
    schema = Schema(columns, constraints, source, str(raw.get("name") or Path(source).stem), rows)
    for i, constraint in enumerate(constraints):
        missing = [n for n in constraint.names if n not in columns]
        if missing:
            raise schema.error(f"constraints[{i}] {constraint.text!r}",
                               f"unknown column {missing[0]!r}{_did_you_mean(missing[0], columns)}")
    schema.order = _generation_order(schema)
    _check_bases(schema)
    # A dry run finds type mistakes in expressions (a categorical compared with <, ...) now.
    spaces = [key_space(c) for c in schema.columns.values() if c.unique and key_space(c) is not None]
    generate(schema, min([16, *spaces]), seed=0)
    return schema


def _column(name: str, spec: Any, source: str) -> Column:
    def fail(message: str) -> SchemaError:
        return SchemaError(f"{source}: column {name!r}: {message}")

    if not isinstance(spec, dict) or "type" not in spec:
        raise fail(f"needs a mapping with a type, one of {', '.join(TYPES)}")
    ctype = spec["type"]
    if ctype not in TYPES:
        raise fail(f"unknown type {ctype!r}{_did_you_mean(str(ctype), TYPES)}; use one of {', '.join(TYPES)}")
    allowed = (*_COMMON_KEYS, *TYPE_KEYS[ctype])
    for key in spec:
        if key not in allowed:
            raise fail(f"unknown key {key!r} for type {ctype}{_did_you_mean(str(key), allowed)}; "
                       f"keys of a {ctype} column: {', '.join(TYPE_KEYS[ctype])}")
    params = {k: v for k, v in spec.items() if k not in _COMMON_KEYS}
    null_rate = spec.get("null_rate", 0.0)
    if not isinstance(null_rate, (int, float)) or isinstance(null_rate, bool) or not 0 <= null_rate < 1:
        raise fail(f"null_rate must be a number in [0, 1), got {null_rate!r}")
    unique = spec.get("unique", False)
    if not isinstance(unique, bool):
        raise fail(f"unique must be true or false, got {unique!r}")
    params = _check_params(ctype, params, fail, unique)
    column = Column(name, ctype, params, float(null_rate), unique, key=_column_key(name))
    if unique and key_space(column) is not None and key_space(column) >= 2**62:
        raise fail(f"a unique pattern or range may have at most 2**62 distinct values, this one has about "
                   f"{float(key_space(column)):.2g}; shorten the pattern (16 digits already give 1e16 keys)")
    if params.get("distribution") == "sequence" and null_rate:
        raise fail("a sequence is a key: it cannot have a null_rate")
    when = spec.get("when") or []
    if not isinstance(when, list):
        raise fail("when: must be a list of clauses, each with an 'if:' expression and the keys it changes")
    if when and column.row_deterministic():
        raise fail("a unique column or a sequence cannot have 'when' clauses")
    for i, clause in enumerate(when):
        if not isinstance(clause, dict) or "if" not in clause:
            raise fail(f"when[{i}] needs an 'if:' expression, e.g. - if: \"city == 'Beijing'\"")
        try:
            condition = Expression(clause["if"])
        except ExpressionError as exc:
            raise fail(f"when[{i}]: {exc}") from None
        changes = {k: v for k, v in clause.items() if k != "if"}
        for key in changes:
            if key not in (*TYPE_KEYS[ctype], "null_rate"):
                raise fail(f"when[{i}]: unknown key {key!r}{_did_you_mean(str(key), TYPE_KEYS[ctype])}")
        rate = changes.pop("null_rate", column.null_rate)
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise fail(f"when[{i}]: null_rate must be a number in [0, 1), got {rate!r}")
        merged = {**{k: v for k, v in spec.items() if k not in _COMMON_KEYS}, **changes}
        if "values" in changes and "weights" not in changes:
            merged.pop("weights", None)
        if merged.get("distribution") == "sequence":
            raise fail(f"when[{i}]: a sequence is a key and cannot change by row; use it as the column's own "
                       f"distribution, without when clauses")
        merged = _check_params(ctype, merged, lambda m, i=i: fail(f"when[{i}]: {m}"), False)
        if column.categories is not None and merged.get("values") is not None \
                and tuple(merged["values"]) != column.categories:
            raise fail(f"when[{i}]: a clause may change the weights of the categories, not the categories; "
                       f"give every category in the column's values and set a weight of 0 where it cannot occur")
        merged["_null_rate"] = float(rate)
        column.branches.append((condition, merged))
    return column


def _number(value, what: str, fail) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or (
            isinstance(value, float) and not np.isfinite(value)):
        raise fail(f"{what} must be a number, got {value!r}")
    if abs(value) >= 2**62:
        raise fail(f"{what} = {value!r} is too large: numbers must stay below 2**62 in size")
    return value


def _check_params(ctype: str, params: dict, fail, unique: bool) -> dict:
    """Check and normalise a column's parameters (dates to numbers, weights to probabilities)."""
    params = dict(params)
    if ctype in ("integer", "float", "date", "datetime"):
        dist = params.setdefault("distribution", "uniform")
        if dist not in DISTRIBUTIONS[ctype]:
            raise fail(f"unknown distribution {dist!r}{_did_you_mean(str(dist), DISTRIBUTIONS[ctype])}; "
                       f"a {ctype} column takes {', '.join(DISTRIBUTIONS[ctype])}")
        for key in _REQUIRED[dist]:
            if key not in params:
                raise fail(f"distribution {dist} needs {' and '.join(_REQUIRED[dist])} (missing {key})")
        base = params.get("base")
        if base is not None and not isinstance(base, str):
            raise fail(f"base must name another column, got {base!r}")
        if ctype in ("date", "datetime") and base is None:
            for key in ("min", "max"):
                try:
                    params[key] = date_number(str(params[key]), ctype)
                except ExpressionError as exc:
                    raise fail(f"{key}: {exc}") from None
        for key in ("min", "max", "mean", "std", "log_mean", "log_std", "scale", "start", "step"):
            if key in params:
                _number(params[key], key, fail)
        for key in ("std", "log_std", "scale"):
            if key in params and params[key] <= 0:
                raise fail(f"{key} must be positive, got {params[key]!r}")
        if "min" in params and "max" in params and params["min"] > params["max"]:
            raise fail(f"min ({params['min']}) is larger than max ({params['max']})")
        if ctype in ("integer", "date", "datetime") and dist == "uniform":
            for key in ("min", "max"):
                if int(params[key]) != params[key]:
                    raise fail(f"{key} of an integer range must be a whole number, got {params[key]!r}")
                params[key] = int(params[key])
            if params["max"] - params["min"] >= 2**53:
                raise fail("an integer range may hold at most 2**53 values (a double draws it exactly); for long "
                           "identifiers use a string pattern such as '################'")
        if dist == "sequence":
            for key in ("start", "step"):
                if key in params and (not isinstance(params[key], int) or isinstance(params[key], bool)):
                    raise fail(f"{key} of a sequence must be a whole number, got {params[key]!r}")
            if params.get("step", 1) == 0:
                raise fail("step of a sequence must not be 0 (the values are keys)")
        elif ctype == "integer" and ("start" in params or "step" in params):
            raise fail("start and step belong to distribution: sequence")
        if "round" in params and (not isinstance(params["round"], int) or isinstance(params["round"], bool)):
            raise fail(f"round is a number of decimals (an integer), got {params['round']!r}")
        if unique and (dist not in ("uniform", "sequence") or ctype != "integer" or base is not None):
            raise fail("unique works for an integer column with distribution uniform (a permutation of min..max) "
                       "or sequence, and for a string pattern")
    elif ctype == "boolean":
        p = _number(params.setdefault("p", 0.5), "p", fail)
        if not 0 <= p <= 1:
            raise fail(f"p (the probability of true) must be in [0, 1], got {p!r}")
    elif ctype in ("categorical", "string"):
        if ctype == "string" and ("pattern" in params) == ("values" in params):
            raise fail("a string column needs either a pattern (e.g. 'U-####') or a list of values")
        if "pattern" in params:
            _pattern(params["pattern"], fail)
            if "weights" in params:
                raise fail("weights go with values, not with a pattern")
        else:
            values = params.get("values")
            if not isinstance(values, list) or not values:
                raise fail("values must be a non-empty list, e.g. values: [female, male]")
            params["values"] = [str(v) for v in values]
            if len(set(params["values"])) != len(values):
                raise fail("values must be distinct")
            weights = params.get("weights", [1] * len(values))
            if not isinstance(weights, list) or len(weights) != len(values):
                raise fail(f"weights must be a list of {len(values)} numbers, one per value")
            weights = [_number(w, "a weight", fail) for w in weights]
            if min(weights) < 0 or sum(weights) <= 0:
                raise fail("weights must be non-negative with a positive sum")
            params["weights"] = weights
        if unique and "pattern" not in params:
            raise fail("unique works for a string pattern, an integer range or a sequence, not a list of values")
    if unique and ctype not in ("integer", "string"):
        raise fail("unique works for an integer range or sequence and for a string pattern")
    return params


def _pattern(pattern: Any, fail) -> list[tuple[int, int]]:
    """``'U-####'`` as ``[(first byte, size)]`` per character (size 1: a literal; a backslash escapes)."""
    if not isinstance(pattern, str) or not pattern:
        raise fail("pattern must be a non-empty string such as 'U-####-??' (# digit, ? A-Z, % a-z)")
    out, escaped = [], False
    for char in pattern:
        if escaped or char not in (*_PATTERN_CLASSES, "\\"):
            if ord(char) > 127:
                raise fail(f"pattern {pattern!r}: only ASCII characters, got {char!r}")
            out.append((ord(char), 1))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(_PATTERN_CLASSES[char])
    if escaped:
        raise fail(f"pattern {pattern!r} ends in a lone backslash")
    return out


_BASE_TYPES = {"integer": ("integer",), "float": ("integer", "float"), "date": ("date",), "datetime": ("datetime",)}


def _check_bases(schema: Schema) -> None:
    """A ``base:`` column must hold what the offset adds to: numbers for numbers, dates for dates."""
    for column in schema.columns.values():
        for params in [column.params] + [p for _, p in column.branches]:
            if "base" not in params:
                continue
            base = schema.columns[params["base"]]
            if base.type not in _BASE_TYPES[column.type] or base.kind == "categorical":
                raise schema.error(f"column {column.name!r}", f"base column {base.name!r} is a {base.type} column; "
                                   f"a {column.type} column adds its offset to a "
                                   f"{' or '.join(_BASE_TYPES[column.type])} column")


def _generation_order(schema: Schema) -> list[str]:
    order, state = [], {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = path[path.index(name):] + [name]
            raise schema.error(f"column {name!r}", f"its rules depend on each other in a cycle: {' -> '.join(cycle)}")
        state[name] = "visiting"
        column = schema.columns[name]
        for dep in column.depends_on:
            if dep not in schema.columns:
                raise schema.error(f"column {name!r}", f"refers to unknown column {dep!r}"
                                                       f"{_did_you_mean(dep, schema.columns)}")
            if dep == name:
                raise schema.error(f"column {name!r}", "a column cannot depend on itself")
            visit(dep, path + [name])
        state[name] = "done"
        order.append(name)

    for name in schema.columns:
        visit(name, [])
    return order


# --------------------------------------------------------------- randomness
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (a bijection of uint64 with full avalanche), in place on ``x``."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


@dataclasses.dataclass(frozen=True)
class Rows:
    """The rows being generated: ``start, start+1, ...`` (``index`` None) or the given row numbers."""

    start: int
    n: int
    index: np.ndarray | None = None
    attempt: int = 0

    def numbers(self) -> np.ndarray:
        return np.arange(self.start, self.start + self.n, dtype=np.int64) if self.index is None else self.index

    def uniform(self, seed: int, column: Column, purpose: int) -> np.ndarray:
        """One uniform in (0, 1) per row, a function of (seed, column, purpose, attempt, row) only."""
        entropy = [seed, column.key, purpose, self.attempt]
        if self.index is None and self.attempt == 0:
            bits = np.random.PCG64(np.random.SeedSequence(entropy))
            bits.advance(self.start)  # PCG64 spends exactly one 64-bit draw per double
            u = np.random.Generator(bits).random(self.n)
        else:
            key = np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0]
            x = self.numbers().astype(np.uint64) * _GOLDEN + key
            u = (_mix64(x) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        # (0, 1), never 0: inverse CDFs stay finite
        return np.maximum(u, 2.0**-54)


def _feistel(values: np.ndarray, space: int, seed: int, column: Column) -> np.ndarray:
    """A keyed permutation of ``[0, space)`` applied to ``values`` (balanced Feistel + cycle walking)."""
    bits = max(2, int(space - 1).bit_length() + (int(space - 1).bit_length() & 1))
    half = bits // 2
    mask = np.uint64((1 << half) - 1)
    keys = np.random.SeedSequence([seed, column.key, 7]).generate_state(4, np.uint64)
    x = values.astype(np.uint64)
    todo = np.ones(len(x), dtype=bool)
    while todo.any():
        v = x[todo]
        left, right = v >> np.uint64(half), v & mask
        for k in keys:
            left, right = right, left ^ (_mix64(right ^ k) & mask)
        v = (left << np.uint64(half)) | right
        x[todo] = v
        todo[todo] = v >= np.uint64(space)  # out of range: walk the cycle until back inside
    return x.astype(np.int64)


# ---------------------------------------------------------------- sampling
def _truncated_standard_normal(u: np.ndarray, a: float, b: float) -> np.ndarray:
    """N(0, 1) truncated to [a, b] by the inverse CDF, computed on the lower tail where ``ndtr`` keeps its digits."""
    if a > 0:  # the interval lies above the mean: draw its mirror image below it
        return -_truncated_standard_normal(u, -b, -a)
    low, high = special.ndtr(a), special.ndtr(b)
    return np.clip(special.ndtri(low + u * (high - low)), a, b)


def _numeric(params: dict, u: np.ndarray, integer: bool) -> np.ndarray:
    dist, low, high = params["distribution"], params.get("min"), params.get("max")
    if dist == "uniform":
        if integer:  # in int64: a double holds the offset exactly (ranges are below 2**53)
            size = high - low + 1
            return low + np.minimum(np.floor(u * size), size - 1).astype(np.int64)
        return np.minimum(low + u * (high - low), high)
    if integer:  # a continuous law rounded to whole numbers: truncate to [min - 0.5, max + 0.5)
        low = low - 0.5 if low is not None else None
        high = high + 0.5 - 1e-9 if high is not None else None
    if dist in ("normal", "lognormal"):
        if dist == "normal":
            centre, spread, lo, hi = params["mean"], params["std"], low, high
        else:  # a normal law of log(x)
            centre, spread = params["log_mean"], params["log_std"]
            lo = np.log(low) if low is not None and low > 0 else None
            hi = np.log(high) if high is not None and high > 0 else (None if high is None else -np.inf)
        a = -np.inf if lo is None else (lo - centre) / spread
        b = np.inf if hi is None else (hi - centre) / spread
        x = centre + spread * _truncated_standard_normal(u, a, b)
        if dist == "lognormal":
            x = np.exp(x)
    else:  # exponential starting at min (default 0), truncated at max: start + Exp(scale) given below max - start
        start, scale = (low if low is not None else 0.0), params["scale"]
        mass = -np.expm1(-(high - start) / scale) if high is not None else 1.0
        x = start - scale * np.log1p(-u * mass)
    if low is not None or high is not None:
        x = np.clip(x, -np.inf if low is None else low, np.inf if high is None else high)
    if integer:
        return np.floor(x + 0.5).astype(np.int64)
    return x


def _categories(params: dict, u: np.ndarray) -> np.ndarray:
    weights = params["weights"]
    if min(weights) == max(weights):  # equal weights: no search needed
        return np.minimum(u * len(weights), len(weights) - 1).astype(np.int32)
    cumulative = np.cumsum(params["weights"], dtype=np.float64)
    cumulative /= cumulative[-1]
    return np.minimum(np.searchsorted(cumulative, u, side="right"), len(cumulative) - 1).astype(np.int32)


def _draw(column: Column, params: dict, u: np.ndarray, base: Value | None) -> np.ndarray:
    """Values of ``column`` under ``params`` from one uniform per row (and the base column's values)."""
    ctype = column.type
    if ctype in ("integer", "date", "datetime"):
        values = _numeric(params, u, integer=True)
    elif ctype == "float":
        values = _numeric(params, u, integer=False)
    elif ctype == "boolean":
        return u < params["p"]
    else:  # categorical, or string from a list
        return _categories(params, u)
    if base is not None:
        values = values + np.asarray(base.values, dtype=values.dtype)
    if ctype == "float" and "round" in params:
        values = np.round(values, params["round"])
    return values


def _pattern_strings(column: Column, rows: Rows, seed: int) -> np.ndarray:
    """(n,) fixed-width byte strings filled in from the pattern."""
    classes = _pattern(column.params["pattern"], None)
    out = np.empty((rows.n, len(classes)), dtype=np.uint8)
    variable = [i for i, (_, size) in enumerate(classes) if size > 1]
    for i, (first, size) in enumerate(classes):
        if size == 1:
            out[:, i] = first
    if column.unique:
        space = int(np.prod([classes[i][1] for i in variable], dtype=object))
        groups = [(variable, _feistel(rows.numbers(), space, seed, column).astype(np.uint64))]
    else:  # positions in groups whose joint space a double holds exactly
        groups, group, space = [], [], 1
        for i in variable:
            if space * classes[i][1] > _GROUP_SPACE:
                groups.append((group, space))
                group, space = [], 1
            group.append(i)
            space *= classes[i][1]
        if group:
            groups.append((group, space))
        groups = [(g, np.floor(rows.uniform(seed, column, _PURPOSE_PATTERN + j) * s).astype(np.uint64))
                  for j, (g, s) in enumerate(groups)]
    for positions, number in groups:
        for i in reversed(positions):
            first, size = classes[i]
            out[:, i] = first + (number % np.uint64(size)).astype(np.uint8)
            number = number // np.uint64(size)
    return out.view(f"S{len(classes)}").ravel()


def key_space(column: Column) -> int | None:
    """How many distinct values a unique column can take (None: not a key with a bound)."""
    if column.params.get("distribution") == "sequence":
        return None
    if column.type == "string":
        return int(np.prod([size for _, size in _pattern(column.params["pattern"], None)], dtype=object))
    return int(column.params["max"]) - int(column.params["min"]) + 1


def _generate_column(column: Column, rows: Rows, seed: int, done: dict[str, Value]) -> Value:
    params = column.params
    if params.get("distribution") == "sequence":
        values = params.get("start", 1) + rows.numbers() * params.get("step", 1)
        return Value(values.astype(np.int64), None, "number")
    if column.type == "string" and "pattern" in params:
        strings = _pattern_strings(column, rows, seed)
        null = rows.uniform(seed, column, _PURPOSE_NULL) < column.null_rate if column.null_rate else None
        return Value(strings, null, "string")
    if column.unique:
        values = int(params["min"]) + _feistel(rows.numbers(), key_space(column), seed, column)
        return Value(values, None, "number")
    u = rows.uniform(seed, column, _PURPOSE_VALUE)
    if not column.branches and "base" not in params:
        null = rows.uniform(seed, column, _PURPOSE_NULL) < column.null_rate if column.null_rate else None
        return Value(_draw(column, params, u, None), null, column.kind, column.categories)
    branch = np.zeros(rows.n, dtype=np.int32)
    for k, (condition, _) in reversed(list(enumerate(column.branches, start=1))):
        branch[condition.matches(done)] = k  # reversed: the first matching clause is written last
    choices = [(params, column.null_rate)] + [(p, p["_null_rate"]) for _, p in column.branches]
    values, rate, base_null = None, np.zeros(rows.n), None
    for k, (branch_params, branch_rate) in enumerate(choices):
        mask = branch == k
        if not mask.any():
            continue
        base = done[branch_params["base"]] if "base" in branch_params else None
        if base is not None:
            if base.null is not None:  # no base, no value
                base_null = np.zeros(rows.n, dtype=bool) if base_null is None else base_null
                base_null[mask] = base.null[mask]
            base = Value(np.asarray(base.values)[mask], None, base.kind)
        drawn = _draw(column, branch_params, u[mask], base)
        if values is None:
            values = np.empty(rows.n, dtype=drawn.dtype)
        values[mask] = drawn
        rate[mask] = branch_rate
    null = rows.uniform(seed, column, _PURPOSE_NULL) < rate if rate.any() else None
    if base_null is not None:
        null = base_null if null is None else null | base_null
    return Value(values, null, column.kind, column.categories)


def _generate_rows(schema: Schema, rows: Rows, seed: int, only: list[str] | None = None,
                   given: dict[str, Value] | None = None) -> dict[str, Value]:
    done = dict(given or {})
    for name in schema.order:
        if only is not None and name not in only:
            continue
        column = schema.columns[name]
        try:
            done[name] = _generate_column(column, rows, seed, done)
        except ExpressionError as exc:
            raise schema.error(f"column {name!r}", f"when: {exc}") from None
    return done


def _subset(value: Value, index: np.ndarray) -> Value:
    return Value(np.asarray(value.values)[index], value.null[index] if value.null is not None else None,
                 value.kind, value.categories)


def _replace(value: Value, index: np.ndarray, new: Value) -> Value:
    values = np.array(value.values, copy=True)
    values[index] = new.values
    if value.null is None and new.null is None:
        return Value(values, None, value.kind, value.categories)
    null = np.zeros(len(values), dtype=bool) if value.null is None else value.null.copy()
    null[index] = new.null if new.null is not None else False
    return Value(values, null, value.kind, value.categories)


def _failing(schema: Schema, columns: dict[str, Value]) -> np.ndarray:
    ok = np.ones(len(next(iter(columns.values())).values), dtype=bool)
    for i, constraint in enumerate(schema.constraints):
        try:
            ok &= constraint.holds(columns)
        except ExpressionError as exc:
            raise schema.error(f"constraints[{i}]", str(exc)) from None
    return np.flatnonzero(~ok)


def generate(schema: Schema, n: int, seed: int = 0, start: int = 0) -> dict[str, Value]:
    """Rows ``start .. start+n-1`` of the schema, as ``{column: Value}`` in output order.

    Rows that break a constraint are drawn again (all columns but keys),
    row by row, up to :data:`MAX_REDRAWS` times.
    """
    if not 0 <= seed < 2**63:
        raise SchemaError(f"{schema.source}: seed must be in [0, 2**63), got {seed}")
    for column in schema.columns.values():
        space = key_space(column) if column.unique else None
        if space is not None and start + n > space:
            raise schema.error(f"column {column.name!r}",
                               f"unique values run out: {start + n} rows asked for, {space} distinct values exist; "
                               f"widen the range or pattern, or ask for fewer rows")
    if n == 0:  # no rows, the same columns and types
        return {name: _subset(value, np.zeros(0, dtype=np.int64)) for name, value in generate(schema, 1, seed).items()}
    columns = _generate_rows(schema, Rows(start, n), seed)
    redraw = [name for name in schema.order if not schema.columns[name].row_deterministic()]
    failing = _failing(schema, columns)
    attempt = 0
    while len(failing):
        attempt += 1
        if attempt > MAX_REDRAWS:
            texts = "; ".join(c.text for c in schema.constraints)
            raise SchemaError(f"{schema.source}: constraints: {len(failing)} of {n} rows still break "
                              f"{texts!r} after {MAX_REDRAWS} redraws; the rules can (almost) never satisfy it: "
                              f"derive the column from the other (e.g. base: start_date with min: 0) instead")
        index = np.asarray(failing)
        rows = Rows(start, len(index), start + index, attempt)
        keys = {name: _subset(columns[name], index) for name in schema.order if name not in redraw}
        fresh = _generate_rows(schema, rows, seed, only=redraw, given=keys)
        for name in redraw:
            columns[name] = _replace(columns[name], index, fresh[name])
        sub = {name: _subset(value, index) for name, value in columns.items()}
        failing = index[_failing(schema, sub)]
    return {name: columns[name] for name in schema.columns}


# ------------------------------------------------------------------ output
DEFAULT_CHUNK_ROWS = 1 << 18
_MIN_SPLIT = 16384  # smaller chunks cost more in per-chunk overhead than they gain


def column_types(schema: Schema) -> dict[str, str]:
    return {name: column.type for name, column in schema.columns.items()}


def iter_tables(schema: Schema, n: int, seed: int = 0, chunk_rows: int = DEFAULT_CHUNK_ROWS):
    """Arrow tables of at most ``chunk_rows`` rows, together rows ``0 .. n-1``."""
    if chunk_rows < 1:
        raise SchemaError(f"chunk_rows must be positive, got {chunk_rows}")
    types = column_types(schema)
    for start in range(0, n, chunk_rows):
        yield output.arrow_table(generate(schema, min(chunk_rows, n - start), seed, start), types)


def needs_quotes(schema: Schema) -> bool:
    """Whether a value of the schema can hold a comma, quote or newline (then CSV quotes strings)."""
    texts = list(schema.columns)
    for column in schema.columns.values():
        texts += list(column.categories or ()) + [column.params.get("pattern", "")]
    return output.csv_needs_quotes(texts)


def write_records(schema: Schema, n: int, out: str | Path, seed: int = 0, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                  overwrite: bool = False, progress: bool = True, workers: int | None = None) -> dict:
    """Generate ``n`` rows into ``out`` (.csv or .parquet) chunk by chunk; returns rows, bytes, seconds.

    ``chunk_rows`` bounds memory; fewer rows than ``4 * workers`` chunks of it
    are split finer (down to 16,384 rows) so that every worker has work and
    later chunks reuse the memory of earlier ones (the output is the same).
    """
    output.TableWriter(out, overwrite)  # refuse an existing file or a bad suffix before any work
    if chunk_rows < 1:
        raise SchemaError(f"chunk_rows must be positive, got {chunk_rows}")
    generate(schema, 1, seed, start=max(n - 1, 0))  # keys that run out fail now, not at the last chunk
    workers = workers or output.default_workers()
    chunk_rows = min(chunk_rows, max(_MIN_SPLIT, -(-n // (4 * workers))))
    types = column_types(schema)

    def make_table(start: int):
        return output.arrow_table(generate(schema, min(chunk_rows, n - start), seed, start), types)

    starts = range(0, n, chunk_rows) if n else [0]  # no rows: still a file with the header (CSV) or schema
    return output.write_chunks(make_table, starts, out, n, overwrite, needs_quotes(schema), progress, workers)
