import datetime

import numpy as np
import pyarrow as pa
import pytest

from aigc_tf.errors import DataError
from aigc_tf.tabular.transforms import ALPHA_LIMIT, TableTransformer


def mixed_table(n=600, seed=0):
    rng = np.random.default_rng(seed)
    income = np.round(np.where(rng.random(n) < 0.5, rng.normal(30000, 3000, n), rng.normal(90000, 8000, n)), 2)
    days = rng.integers(18000, 20000, n)
    return pa.table({
        "age": pa.array(rng.integers(18, 66, n), type=pa.int64()),
        "income": pa.array(income),
        "ratio": pa.array(rng.random(n)),                                  # full float precision
        "children": pa.array(rng.integers(0, 4, n), type=pa.int32(), mask=rng.random(n) < 0.1),
        "city": pa.array(rng.choice(["Beijing", "Shanghai", "Wuhan"], n).tolist(), mask=rng.random(n) < 0.05),
        "member": pa.array(rng.random(n) < 0.3),
        "joined": pa.array(days.astype(np.int32), type=pa.int32()).cast(pa.date32()),
        "seen": pa.array(rng.integers(1_700_000_000, 1_710_000_000, n), type=pa.int64()).cast(pa.timestamp("s")),
    })


@pytest.fixture(scope="module")
def fitted():
    table = mixed_table()
    return table, TableTransformer(discrete=["children"], seed=0).fit(table)


def test_spans_tile_the_matrix_and_one_hot_blocks_are_one_hot(fitted):
    table, transformer = fitted
    matrix = transformer.transform(table, seed=1)
    assert matrix.dtype == np.float32 and matrix.shape == (table.num_rows, transformer.width)
    position = 0
    for span in transformer.spans:
        assert span.start == position
        block = matrix[:, span.start:span.start + span.width]
        if span.activation == "softmax":
            assert set(np.unique(block)) <= {0.0, 1.0} and np.all(block.sum(axis=1) == 1)
        else:
            assert span.width == 1 and np.all(np.abs(block) <= ALPHA_LIMIT)
        position += span.width
    assert position == transformer.width
    roles = {(s.column, s.role) for s in transformer.spans}
    assert ("children", "category") in roles and ("age", "null") not in roles and ("city", "category") in roles


def test_inverse_gives_back_the_table_exactly(fitted):
    table, transformer = fitted
    back = transformer.inverse(transformer.transform(table, seed=2))
    assert back.schema == table.schema and transformer.clipped == 0
    for name in table.column_names:
        if name == "ratio":  # no decimals to round to: float32 precision of 4 sigma alpha
            a, b = table.column(name).to_numpy(), back.column(name).to_numpy()
            assert np.max(np.abs(a - b)) < 1e-6
        else:
            assert back.column(name).equals(table.column(name)), name
    assert back.column("children").null_count == table.column("children").null_count > 0
    assert isinstance(back.column("joined")[0].as_py(), datetime.date)


def test_the_mixture_finds_the_modes_of_a_bimodal_column(fitted):
    _, transformer = fitted
    income = next(c for c in transformer.columns if c.name == "income")
    means = np.sort(income.means)
    assert 2 <= income.modes <= 4 and abs(means[0] - 30000) < 3000 and abs(means[-1] - 90000) < 8000


def test_an_outlier_beyond_four_sigma_of_every_mode_is_clipped_and_counted():
    rng = np.random.default_rng(3)
    x = np.round(np.append(rng.normal(0, 1, 999), 1e6), 3)
    table = pa.table({"x": x})
    transformer = TableTransformer(seed=0).fit(table)
    back = transformer.inverse(transformer.transform(table)).column("x").to_numpy()
    assert transformer.clipped == 1
    assert np.array_equal(back[:-1], x[:-1]) and back[-1] < 1e6


def test_null_and_unseen_values(fitted):
    _, transformer = fitted
    table = mixed_table(50, seed=9)
    cities = table.column("city").to_pylist()
    cities[0] = "Paris"
    bad = table.set_column(table.column_names.index("city"), "city", pa.array(cities))
    with pytest.raises(DataError, match="column 'city': value 'Paris' was not in the training split"):
        transformer.transform(bad)
    with pytest.raises(DataError, match="discrete column 'nope' is not in the table"):
        TableTransformer(discrete=["nope"]).fit(table)
    with pytest.raises(DataError, match="expected a matrix of"):
        transformer.inverse(np.zeros((3, 2)))


def test_generated_rows_decode_through_argmax_and_clip():
    table = mixed_table(300, seed=4)
    transformer = TableTransformer(seed=0).fit(table)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 2, (40, transformer.width)).astype(np.float32)  # what an untrained generator emits
    out = transformer.inverse(noise)
    age = out.column("age").to_numpy()
    assert out.num_rows == 40 and out.schema == table.schema
    assert np.all(np.isfinite(age)) and set(out.column("city").to_pylist()) <= {"Beijing", "Shanghai", "Wuhan", None}


def zero_inflated(n=2000, seed=5):
    """A zero-inflated amount: 70% exact zeros, the rest log-normal (two decimals), plus a nullable count."""
    rng = np.random.default_rng(seed)
    amount = np.where(rng.random(n) < 0.7, 0.0, np.round(rng.lognormal(1.0, 0.8, n), 2))
    return pa.table({"amount": pa.array(amount),
                     "visits": pa.array(rng.choice([0, 1, 2, 7], n, p=[0.5, 0.3, 0.18, 0.02]), type=pa.int64(),
                                        mask=rng.random(n) < 0.1)})


def test_point_masses_are_zero_width_modes_generated_exactly():
    table = zero_inflated()
    transformer = TableTransformer(seed=0, point_mass=0.05).fit(table)
    amount, visits = transformer.columns
    masses = amount.means[amount.stds == 0]
    assert masses.tolist() == [0.0] and amount.modes > 1  # the zeros, then the mixture of the rest
    assert amount.weights[0] == pytest.approx(np.mean(table.column("amount").to_numpy() == 0))
    assert amount.weights.sum() == pytest.approx(1.0)
    # 7 holds 2% (< 5%) but is the only value left once 0, 1 and 2 are masses: a point mass too.
    assert sorted(visits.means.tolist()) == [0.0, 1.0, 2.0, 7.0] and np.all(visits.stds == 0)

    matrix = transformer.transform(table, seed=1)
    back = transformer.inverse(matrix)
    assert transformer.clipped == 0 and back.equals(table)
    zero_rows = table.column("amount").to_numpy() == 0
    assert np.all(matrix[zero_rows, 1] == 1.0) and np.all(matrix[zero_rows, 0] == 0.0)
    assert np.all(matrix[~zero_rows, 1] == 0.0)  # a positive amount never lands on the zero mode

    # Whatever alpha a model emits, a row on the zero mode decodes to exactly 0.
    generated = matrix.copy()
    generated[:, 0] = np.random.default_rng(2).uniform(-1, 1, len(generated))
    decoded = transformer.inverse(generated).column("amount").to_numpy()
    assert np.all(decoded[zero_rows] == 0.0)

    # It survives get_config / from_config, and a value the masses never saw goes to the nearest one.
    again = TableTransformer.from_config(transformer.get_config())
    assert again.inverse(matrix).equals(table)
    unseen = pa.table({"amount": pa.array([0.0, 3.3]), "visits": pa.array([5, None], type=pa.int64())})
    assert again.inverse(again.transform(unseen)).column("visits").to_pylist() == [7, None]


def test_without_point_masses_the_zero_spike_gets_a_mode_of_some_width():
    """What the point masses fix: the mixture's mode at the zeros is wide enough that noise on alpha
    turns zeros positive (and a transform saved before point masses decodes as it did)."""
    table = zero_inflated()
    transformer = TableTransformer(seed=0).fit(table)
    amount = transformer.columns[0]
    zero_mode = int(np.argmin(np.abs(amount.means)))
    assert np.all(amount.stds > 0) and amount.stds[zero_mode] > 1e-3
    config = transformer.get_config()
    del config["point_mass"]
    for column in config["columns"]:
        column.pop("point_mass", None)
    old = TableTransformer.from_config(config)
    matrix = transformer.transform(table, seed=1)
    assert old.point_mass == 0.0 and old.inverse(matrix).equals(transformer.inverse(matrix))
