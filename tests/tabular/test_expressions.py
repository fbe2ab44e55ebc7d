import numpy as np
import pytest

from aigc_tf.tabular.expressions import Expression, ExpressionError, Value

NULL = np.array([False, True, False, False])


def columns():
    return {
        "age": Value(np.array([17, 30, 45, 65]), NULL.copy(), "number"),
        "city": Value(np.array([0, 1, 2, 1], dtype=np.int32), None, "categorical", ("Beijing", "Shanghai", "Other")),
        "start": Value(np.array([0, 10, 19723, 19724]), None, "date"),  # 19723 = 2024-01-01
        "end": Value(np.array([5, 3, 19723, 19800]), np.array([False, False, True, False]), "date"),
    }


@pytest.mark.parametrize("text, matches, holds", [
    ("age >= 30", [0, 0, 1, 1], [0, 1, 1, 1]),                      # row 1 is null: no match, but holds
    ("city == 'Shanghai'", [0, 1, 0, 1], [0, 1, 0, 1]),
    ("city != 'Nowhere'", [1, 1, 1, 1], [1, 1, 1, 1]),              # an unknown category matches no row
    ("city in ['Beijing', 'Other']", [1, 0, 1, 0], [1, 0, 1, 0]),
    ("city not in ['Beijing']", [0, 1, 1, 1], [0, 1, 1, 1]),
    ("end >= start", [1, 0, 0, 1], [1, 0, 1, 1]),                   # row 2: end is null
    ("start >= '2024-01-01'", [0, 0, 1, 1], [0, 0, 1, 1]),
    ("end - start > 3", [1, 0, 0, 1], [1, 0, 1, 1]),
    ("18 <= age < 50", [0, 0, 1, 0], [0, 1, 1, 0]),
    # three-valued logic: null and false = false; null or true = true
    ("age > 20 and city == 'Beijing'", [0, 0, 0, 0], [0, 0, 0, 0]),
    ("age > 20 or city == 'Shanghai'", [0, 1, 1, 1], [0, 1, 1, 1]),
    ("not age > 20", [1, 0, 0, 0], [1, 1, 0, 0]),
    ("age % 2 == 1 or age * 2 == 60", [1, 0, 1, 1], [1, 1, 1, 1]),
])
def test_matches_and_holds_by_hand(text, matches, holds):
    expression = Expression(text)
    cols = columns()
    assert expression.matches(cols).astype(int).tolist() == matches
    assert expression.holds(cols).astype(int).tolist() == holds


def test_names_are_listed_in_order_of_appearance():
    assert Expression("end >= start and city == 'Other'").names == ["end", "start", "city"]


@pytest.mark.parametrize("text, message", [
    ("__import__('os')", "Call is not allowed"),
    ("age.real > 1", "Attribute is not allowed"),
    ("age >", "is not an expression"),
    ("age is None", "operator Is is not allowed"),
    ("", "expected an expression"),
    ("x == [1]", "a list may only follow them"),
    ("x in y", "in / not in needs a list of constants"),
    ("x in [y]", "in / not in needs a list of constants"),
    ("[1] == x", "a list may only follow in / not in"),
])
def test_unsafe_or_broken_expressions_are_refused_when_parsed(text, message):
    with pytest.raises(ExpressionError, match=message):
        Expression(text)


@pytest.mark.parametrize("text, message", [
    ("city > 'Beijing'", "only takes == != in / not in"),
    ("city == age", "cannot compare a categorical column with a number"),
    ("start > 3", "cannot compare a date with a number"),
    ("age + city > 1", "cannot apply Add to a number and a categorical"),
    ("start >= '2024-13-01'", "is not an ISO date"),
    ("age", "is a number, not a condition"),
    ("salary > 3", "names column 'salary', which is not defined before it"),
])
def test_type_mistakes_are_named_when_evaluated(text, message):
    with pytest.raises(ExpressionError, match=message):
        Expression(text).matches(columns())
