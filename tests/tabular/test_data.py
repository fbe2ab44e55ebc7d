import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aigc_tf.errors import DataError
from aigc_tf.tabular import data, quality


def test_the_embedded_table_is_fairs_survey_from_statsmodels():
    table, info = data.load_table("fair")
    assert table.num_rows == 6366 and table.column_names == [
        "rate_marriage", "age", "yrs_married", "children", "religious", "educ", "occupation", "occupation_husb",
        "affairs"]
    assert sorted(set(table.column("rate_marriage").to_pylist())) == [1, 2, 3, 4, 5]
    assert info.target == "affairs > 0" and abs(np.mean(table.column("affairs").to_numpy() > 0) - 0.3225) < 0.001


def test_csv_and_parquet_files_read_with_nulls_and_types(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("id,city,income,joined\n1,Beijing,3.5,2024-01-02\n2,,,2024-02-03\n3,Wuhan,7.25,\n")
    table = data.read_table(csv)
    assert table.schema.types == [pa.int64(), pa.string(), pa.float64(), pa.date32()]
    assert table.column("city").null_count == table.column("income").null_count == 1
    pq.write_table(table, tmp_path / "t.parquet")
    assert data.read_table(tmp_path / "t.parquet").equals(table)


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_text("a,b\n1,2\n1,2,3\n"), "cannot be read as CSV"),
    (lambda p: p.write_text("a,b\n"), "no rows or no columns"),
])
def test_a_bad_table_file_gets_one_clear_line(tmp_path, setup, message):
    path = tmp_path / "t.csv"
    setup(path)
    with pytest.raises(DataError, match=message):
        data.read_table(path)
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(DataError, match="unknown table format '.xlsx'"):
        data.read_table(tmp_path / "t.xlsx")


def test_load_table_checks_the_named_columns(tmp_path):
    with pytest.raises(DataError, match="unknown table 'adult'; use one of: fair, file"):
        data.load_table("adult")
    with pytest.raises(DataError, match="needs data.path"):
        data.load_table("file")
    with pytest.raises(DataError, match="fair: column 'affair' is not in the table"):
        data.load_table("fair", target="affair > 0")


def test_the_split_is_fixed_disjoint_and_complete():
    table = pa.table({"i": np.arange(1000)})
    train, test = data.split_table(table, 0.2, seed=5)
    again, _ = data.split_table(table, 0.2, seed=5)
    assert train.equals(again) and test.num_rows == 200 and train.num_rows == 800
    ids = np.concatenate([train.column("i").to_numpy(), test.column("i").to_numpy()])
    assert sorted(ids) == list(range(1000)) and not train.equals(data.split_table(table, 0.2, seed=6)[0])


def test_an_expression_target_is_a_yes_no_task_without_the_columns_it_reads():
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    table = pa.table({"x": x, "y": x + rng.normal(0, 0.3, 2000), "noise": rng.normal(size=2000)})
    train, test = table.slice(0, 1500), table.slice(1500)
    result = quality.efficacy(train, test, "y > 0")
    assert result["task"] == "classification" and result["accuracy"] > 0.8  # learned from x, not from y itself
    leak_free = quality.efficacy(train.drop_columns(["x"]), test.drop_columns(["x"]), "y > 0")
    assert leak_free["accuracy"] < 0.6  # with y left out, noise alone predicts nothing


def test_an_expression_target_leaves_out_rows_whose_answer_is_null():
    rng = np.random.default_rng(1)
    x = rng.normal(size=1000)
    y = pa.array(x + rng.normal(0, 0.3, 1000), mask=rng.random(1000) < 0.3)
    table = pa.table({"x": x, "y": y})
    train, test = table.slice(0, 700), table.slice(700)
    # with nulls taken as "no", the classes would be 65/35; without them a fair coin, learnable from x
    assert quality.efficacy(train, test, "y > 0")["accuracy"] > 0.8


def test_nan_in_a_discrete_float_column_is_a_null_category():
    from aigc_tf.tabular.transforms import TableTransformer

    table = pa.table({"r": [1.0, float("nan"), 2.0, float("nan")]})
    transformer = TableTransformer(discrete=["r"]).fit(table)
    assert transformer.columns[0].categories == [1.0, 2.0, None]
    assert transformer.inverse(transformer.transform(table)).column("r").to_pylist() == [1.0, None, 2.0, None]
