"""Row expressions of a rule schema: ``city == 'Beijing'``, ``end_date >= start_date``.

A small, safe subset of Python expressions, parsed with :mod:`ast` and
evaluated on whole columns with numpy (never with ``eval``): column names,
numbers, strings and lists of them; ``== != < <= > >=`` (chained too), ``in`` /
``not in`` a list, ``and`` / ``or`` / ``not``, ``+ - * / // %`` and unary minus.

Values carry their column's kind, so ``city == 'Beijing'`` compares category
codes and ``signup_date >= '2024-01-01'`` compares days. Nulls follow SQL: an
operation on a null gives null; a condition that is null does not match
(:meth:`Expression.matches`) and a constraint that is null holds
(:meth:`Expression.holds`), as a SQL ``CHECK`` does.
"""

from __future__ import annotations

import ast
import dataclasses
import operator

import numpy as np

from aigc_tf.errors import UserError


class ExpressionError(UserError):
    """An expression that does not parse or does not fit the columns it names."""


@dataclasses.dataclass
class Value:
    """A column (or constant) during evaluation.

    ``values``: numbers (int64 / float64 / bool), category codes, days since
    1970-01-01 (date) or seconds (datetime); ``null``: a bool mask or None;
    ``categories``: the category names of a categorical column.
    """

    values: np.ndarray | object
    null: np.ndarray | None = None
    kind: str = "number"  # number | bool | categorical | date | datetime | string
    categories: tuple | None = None


_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
               ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_NAMES = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _or_null(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def date_number(text: str, kind: str) -> int:
    """``'2024-01-31'`` as days (date) or ``'2024-01-31 12:00:00'`` as seconds (datetime) since 1970."""
    unit = "D" if kind == "date" else "s"
    try:
        return int(np.datetime64(str(text).replace(" ", "T"), unit).astype(np.int64))
    except ValueError:
        raise ExpressionError(f"{text!r} is not an ISO {kind} (e.g. 2024-01-31"
                              f"{' 12:00:00' if kind == 'datetime' else ''})") from None


class Expression:
    """A parsed row expression. ``names``: the columns it reads."""

    def __init__(self, text: str):
        if not isinstance(text, str) or not text.strip():
            raise ExpressionError(f"expected an expression such as \"age >= 18\", got {text!r}")
        self.text = text
        try:
            self._tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise ExpressionError(f"{text!r} is not an expression ({exc.msg})") from None
        self.names: list[str] = []
        self._check(self._tree)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def _check(self, node) -> None:
        allowed = (ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Name, ast.Constant, ast.List, ast.Tuple)
        if not isinstance(node, allowed):
            raise ExpressionError(f"{self.text!r}: {type(node).__name__} is not allowed here; use column names, "
                                  f"constants, comparisons, in / not in, and / or / not and + - * / // %")
        if isinstance(node, ast.Name):
            if node.id not in self.names:
                self.names.append(node.id)
        elif isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool)):
            raise ExpressionError(f"{self.text!r}: constant {node.value!r} is not a number or a string")
        elif isinstance(node, (ast.List, ast.Tuple)):
            raise ExpressionError(f"{self.text!r}: a list may only follow in / not in")
        elif isinstance(node, ast.Compare):
            for op, right in zip(node.ops, node.comparators, strict=True):
                membership = isinstance(op, (ast.In, ast.NotIn))
                if type(op) not in _COMPARE and not membership:
                    raise ExpressionError(f"{self.text!r}: operator {type(op).__name__} is not allowed")
                if membership != isinstance(right, (ast.List, ast.Tuple)) or membership and not all(
                        isinstance(e, ast.Constant) for e in right.elts):
                    raise ExpressionError(f"{self.text!r}: in / not in needs a list of constants on the right "
                                          f"(e.g. city in ['Beijing', 'Shanghai']), and a list may only follow them")
            self._check(node.left)
            for right in node.comparators:
                if not isinstance(right, (ast.List, ast.Tuple)):
                    self._check(right)
            return
        elif isinstance(node, ast.BinOp) and type(node.op) not in _ARITHMETIC:
            raise ExpressionError(f"{self.text!r}: operator {type(node.op).__name__} is not allowed")
        elif isinstance(node, ast.UnaryOp) and not isinstance(node.op, (ast.Not, ast.USub)):
            raise ExpressionError(f"{self.text!r}: operator {type(node.op).__name__} is not allowed")
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.expr_context, ast.cmpop, ast.operator, ast.unaryop, ast.boolop)):
                self._check(child)

    # ----------------------------------------------------------- evaluation
    def evaluate(self, columns: dict[str, Value]) -> Value:
        return self._eval(self._tree, columns)

    def matches(self, columns: dict[str, Value]) -> np.ndarray:
        """Rows where the expression is true (null: no)."""
        result = self._boolean(self.evaluate(columns))
        out = np.asarray(result.values, dtype=bool)
        return out & ~result.null if result.null is not None else out

    def holds(self, columns: dict[str, Value]) -> np.ndarray:
        """Rows where the expression is not false (null: holds, as SQL CHECK)."""
        result = self._boolean(self.evaluate(columns))
        out = np.asarray(result.values, dtype=bool)
        return out | result.null if result.null is not None else out

    def _boolean(self, value: Value) -> Value:
        if value.kind != "bool":
            raise ExpressionError(f"{self.text!r} is a {value.kind}, not a condition; compare it, e.g. "
                                  f"\"{self.text} > 0\"")
        return value

    def _eval(self, node, columns: dict[str, Value]) -> Value:
        if isinstance(node, ast.Name):
            if node.id not in columns:
                raise ExpressionError(f"{self.text!r} names column {node.id!r}, which is not defined before it "
                                      f"(columns: {', '.join(columns) or 'none'})")
            if columns[node.id].kind == "string":
                raise ExpressionError(f"{self.text!r}: column {node.id!r} is a pattern string, which expressions do "
                                      f"not compare; give it values: [...] to use it in a rule")
            return columns[node.id]
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return Value(np.bool_(node.value), kind="bool")
            return Value(node.value, kind="string" if isinstance(node.value, str) else "number")
        if isinstance(node, (ast.List, ast.Tuple)):
            raise ExpressionError(f"{self.text!r}: a list may only follow in / not in")
        if isinstance(node, ast.BoolOp):
            parts = [self._boolean(self._eval(v, columns)) for v in node.values]
            return self._bool_op(isinstance(node.op, ast.And), parts)
        if isinstance(node, ast.UnaryOp):
            inner = self._eval(node.operand, columns)
            if isinstance(node.op, ast.Not):
                inner = self._boolean(inner)
                return Value(~np.asarray(inner.values, dtype=bool), inner.null, "bool")
            if inner.kind != "number":
                raise ExpressionError(f"{self.text!r}: unary minus needs a number, not a {inner.kind}")
            return Value(-inner.values, inner.null, "number")
        if isinstance(node, ast.BinOp):
            return self._arithmetic(node.op, self._eval(node.left, columns), self._eval(node.right, columns))
        # Compare: a < b < c is (a < b) and (b < c)
        parts, left = [], self._eval(node.left, columns)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)):
                parts.append(self._membership(left, right_node, isinstance(op, ast.NotIn)))
                left = None
                continue
            if left is None:
                raise ExpressionError(f"{self.text!r}: put in / not in last in a chained comparison")
            right = self._eval(right_node, columns)
            parts.append(self._compare(op, left, right))
            left = right
        return parts[0] if len(parts) == 1 else self._bool_op(True, parts)

    @staticmethod
    def _bool_op(conjunction: bool, parts: list[Value]) -> Value:
        # Three-valued logic: false and null = false; true or null = true.
        size = max(np.size(p.values) for p in parts)  # constants (True) stretch to the rows
        values = [np.broadcast_to(np.asarray(p.values, dtype=bool), (size,)) for p in parts]
        nulls = [None if p.null is None else np.broadcast_to(p.null, (size,)) for p in parts]
        if conjunction:
            known_false = np.logical_or.reduce([~v & (~n if n is not None else True) for v, n in zip(values, nulls, strict=True)])
            out = np.logical_and.reduce(values)
            null = None if all(n is None for n in nulls) else (
                np.logical_or.reduce([n for n in nulls if n is not None]) & ~known_false)
            return Value(out & ~known_false if null is not None else out, null, "bool")
        known_true = np.logical_or.reduce([v & (~n if n is not None else True) for v, n in zip(values, nulls, strict=True)])
        null = None if all(n is None for n in nulls) else (
            np.logical_or.reduce([n for n in nulls if n is not None]) & ~known_true)
        return Value(known_true, null, "bool")

    def _as_comparable(self, value: Value, other: Value):
        """``value``'s numbers for a comparison with ``other`` (strings become codes or days)."""
        if value.kind == "string" and other.kind in ("date", "datetime"):
            return date_number(value.values, other.kind)
        if value.kind == "string" and other.kind == "categorical":
            return -1 if value.values not in other.categories else other.categories.index(value.values)
        return value.values

    def _compare(self, op, left: Value, right: Value) -> Value:
        kinds = {left.kind, right.kind}
        name = _NAMES[type(op)]
        if "categorical" in kinds:
            if type(op) not in (ast.Eq, ast.NotEq):
                raise ExpressionError(f"{self.text!r}: a categorical column only takes == != in / not in, not {name}")
            if left.kind == right.kind == "categorical" and left.categories != right.categories:
                a = np.asarray(left.categories, dtype=object)[left.values]
                b = np.asarray(right.categories, dtype=object)[right.values]
                return Value(_COMPARE[type(op)](a, b), _or_null(left.null, right.null), "bool")
            if kinds - {"categorical", "string"}:
                raise ExpressionError(f"{self.text!r}: cannot compare a categorical column with a "
                                      f"{(kinds - {'categorical'}).pop()}")
        elif kinds in ({"date"}, {"datetime"}, {"date", "string"}, {"datetime", "string"}, {"string"}):
            pass
        elif not kinds <= {"number", "bool"}:
            raise ExpressionError(f"{self.text!r}: cannot compare a {left.kind} with a {right.kind}")
        a, b = self._as_comparable(left, right), self._as_comparable(right, left)
        return Value(_COMPARE[type(op)](a, b), _or_null(left.null, right.null), "bool")

    def _membership(self, left: Value | None, node, negate: bool) -> Value:
        if left is None or not isinstance(node, (ast.List, ast.Tuple)):
            raise ExpressionError(f"{self.text!r}: in / not in needs a column on the left and a list on the right, "
                                  f"e.g. city in ['Beijing', 'Shanghai']")
        items = [ast.literal_eval(e) for e in node.elts]
        wanted = {"categorical": str, "date": str, "datetime": str, "number": (int, float), "bool": bool}[left.kind]
        wrong = [i for i in items if not isinstance(i, wanted) or (left.kind == "number" and isinstance(i, bool))]
        if wrong:
            raise ExpressionError(f"{self.text!r}: {wrong[0]!r} cannot be a value of a {left.kind} column; list "
                                  f"{'strings' if wanted is str else 'numbers' if left.kind == 'number' else 'True / False'}")
        if left.kind == "categorical":
            codes = np.array([left.categories.index(i) for i in items if i in left.categories], dtype=np.int64)
        elif left.kind in ("date", "datetime"):
            codes = np.array([date_number(i, left.kind) for i in items], dtype=np.int64)
        else:  # compare as numbers: 2.5 is not 2
            codes = np.array(items, dtype=np.float64 if left.kind == "number" else bool)
        out = np.isin(left.values, codes)
        return Value(~out if negate else out, left.null, "bool")

    def _arithmetic(self, op, left: Value, right: Value) -> Value:
        kinds = (left.kind, right.kind)
        if left.kind == right.kind and left.kind in ("date", "datetime") and isinstance(op, ast.Sub):
            kind = "number"  # date - date: days (seconds for datetimes)
        elif set(kinds) <= {"number"}:
            kind = "number"
        elif left.kind in ("date", "datetime") and right.kind == "number" and isinstance(op, (ast.Add, ast.Sub)):
            kind = left.kind  # date + days
        else:
            raise ExpressionError(f"{self.text!r}: cannot apply {type(op).__name__} to a {left.kind} and a "
                                  f"{right.kind}")
        null = _or_null(left.null, right.null)
        divisor = np.asarray(right.values)
        if isinstance(op, (ast.Div, ast.FloorDiv, ast.Mod)) and np.any(divisor == 0):
            zero = np.broadcast_to(divisor == 0, np.broadcast(np.asarray(left.values), divisor).shape)
            null = zero.copy() if null is None else (null | zero)  # x / 0 is null, as in SQL
            divisor = np.where(divisor == 0, 1, divisor)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = _ARITHMETIC[type(op)](np.asarray(left.values), divisor)
        return Value(values, null, kind)
