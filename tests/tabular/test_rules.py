import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from aigc_tf.cli import main
from aigc_tf.tabular import rules
from aigc_tf.tabular.rules import SchemaError, generate, load_schema, schema_from_dict

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def schema(columns, constraints=None):
    return schema_from_dict({"columns": columns, "constraints": constraints or []}, source="s.yaml")


def values(sch, n, seed=0, start=0):
    return {name: v for name, v in generate(sch, n, seed, start).items()}


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("columns, constraints, message", [
    ({"age": {"type": "integr"}}, [], "column 'age': unknown type 'integr' (did you mean 'integer'?)"),
    ({"age": {"type": "integer", "mni": 1, "max": 2}}, [], "column 'age': unknown key 'mni' for type integer "
                                                           "(did you mean 'min'?)"),
    ({"age": {"type": "integer", "max": 2}}, [], "column 'age': distribution uniform needs min and max (missing min)"),
    ({"age": {"type": "integer", "min": 5, "max": 2}}, [], "min (5) is larger than max (2)"),
    ({"age": {"type": "integer", "distribution": "gamma"}}, [], "unknown distribution 'gamma'"),
    ({"x": {"type": "float", "distribution": "normal", "mean": 0, "std": -1}}, [], "std must be positive"),
    ({"c": {"type": "categorical", "values": ["a", "b"], "weights": [1]}}, [], "weights must be a list of 2 numbers"),
    ({"c": {"type": "categorical", "values": ["a", "a"]}}, [], "values must be distinct"),
    ({"c": {"type": "categorical", "values": ["a"], "unique": True}}, [], "unique works for"),
    ({"c": {"type": "integer", "min": 0, "max": 9, "null_rate": 1.5}}, [], "null_rate must be a number in [0, 1)"),
    ({"d": {"type": "date", "min": "2024-02-30", "max": "2024-03-01"}}, [], "column 'd': min: '2024-02-30' is not"),
    ({"s": {"type": "string"}}, [], "needs either a pattern"),
    ({"a": {"type": "integer", "base": "b", "min": 0, "max": 1}}, [], "column 'a': refers to unknown column 'b'"),
    ({"a": {"type": "integer", "base": "b", "min": 0, "max": 1},
      "b": {"type": "integer", "base": "a", "min": 0, "max": 1}}, [], "in a cycle: a -> b -> a"),
    ({"a": {"type": "integer", "min": 0, "max": 1, "when": [{"if": "b > 1", "min": 1}]}}, [],
     "column 'a': refers to unknown column 'b'"),
    ({"a": {"type": "integer", "min": 0, "max": 1, "when": [{"if": "a >", "min": 1}]}}, [], "when[0]:"),
    ({"c": {"type": "categorical", "values": ["x", "y"]}, "a": {"type": "integer", "min": 0, "max": 1,
      "when": [{"if": "c > 'x'", "min": 1}]}}, [], "column 'a': when: \"c > 'x'\": a categorical column only"),
    ({"a": {"type": "integer", "min": 0, "max": 1}}, ["b >= a"], "constraints[0] 'b >= a': unknown column 'b'"),
    ({"a": {"type": "integer", "min": 0, "max": 1}}, ["a + 1"], "constraints[0]: 'a + 1' is a number, not a condition"),
])
def test_schema_mistakes_get_one_line_naming_the_file_and_the_column(columns, constraints, message):
    with pytest.raises(SchemaError) as info:
        schema(columns, constraints)
    text = str(info.value)
    assert text.startswith("s.yaml: ") and message in text and "\n" not in text


def test_a_missing_or_broken_schema_file_is_named(tmp_path):
    with pytest.raises(SchemaError, match="no such schema file"):
        load_schema(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns: [\n")
    with pytest.raises(SchemaError, match="bad.yaml: not valid YAML"):
        load_schema(bad)
    bad.write_text("model: {name: gpt}\n")
    with pytest.raises(SchemaError, match="is a training config .* aigc-tf train"):
        load_schema(bad)
    bad.write_text("colums: {}\n")
    with pytest.raises(SchemaError, match="unknown top-level key 'colums' \\(did you mean 'columns'\\?\\)"):
        load_schema(bad)


# ------------------------------------------------------------- distributions
def test_integer_uniform_covers_the_inclusive_range_evenly():
    age = values(schema({"age": {"type": "integer", "min": 18, "max": 65}}), 96_000)["age"].values
    counts = np.bincount(age - 18)
    assert age.min() == 18 and age.max() == 65 and len(counts) == 48
    assert stats.chisquare(counts).pvalue > 1e-4


def test_truncated_normal_matches_scipy_truncnorm_and_never_piles_up_at_the_bounds():
    x = values(schema({"x": {"type": "float", "distribution": "normal", "mean": 40, "std": 12,
                             "min": 18, "max": 90}}), 100_000)["x"].values
    reference = stats.truncnorm((18 - 40) / 12, (90 - 40) / 12, loc=40, scale=12)
    assert x.min() >= 18 and x.max() <= 90
    assert abs(x.mean() - reference.mean()) < 5 * reference.std() / np.sqrt(len(x))
    assert stats.kstest(x, reference.cdf).pvalue > 1e-4
    assert np.mean(x < 18.1) < 0.01  # clipping would put about 3.4% at 18


def test_integer_normal_rounds_inside_the_bounds():
    x = values(schema({"x": {"type": "integer", "distribution": "normal", "mean": 0, "std": 3, "min": -2,
                             "max": 2}}), 50_000)["x"].values
    assert x.dtype == np.int64 and set(np.unique(x)) == {-2, -1, 0, 1, 2}
    expected = np.diff(stats.norm.cdf(np.arange(-2.5, 3), scale=3))
    assert np.allclose(np.bincount(x + 2) / len(x), expected / expected.sum(), atol=0.01)


def test_lognormal_and_exponential_match_their_laws():
    sch = schema({"y": {"type": "float", "distribution": "lognormal", "log_mean": 10, "log_std": 0.5},
                  "z": {"type": "float", "distribution": "exponential", "scale": 2.0, "min": 1.0, "max": 5.0}})
    cols = values(sch, 100_000)
    assert stats.kstest(cols["y"].values, stats.lognorm(0.5, scale=np.exp(10)).cdf).pvalue > 1e-4
    z = cols["z"].values
    law = stats.truncexpon((5 - 1) / 2, loc=1, scale=2)
    assert z.min() >= 1 and z.max() <= 5 and stats.kstest(z, law.cdf).pvalue > 1e-4


def test_weighted_categories_booleans_and_nulls_have_their_rates():
    sch = schema({"c": {"type": "categorical", "values": ["a", "b", "c"], "weights": [1, 2, 7]},
                  "b": {"type": "boolean", "p": 0.3, "null_rate": 0.25}})
    n = 100_000
    cols = values(sch, n)
    tolerance = 5 * np.sqrt(0.25 / n)
    assert np.allclose(np.bincount(cols["c"].values) / n, [0.1, 0.2, 0.7], atol=tolerance)
    assert abs(cols["b"].null.mean() - 0.25) < tolerance
    assert abs(cols["b"].values[~cols["b"].null].mean() - 0.3) < tolerance


def test_when_clauses_apply_to_the_rows_they_match_and_the_first_match_wins():
    sch = schema({
        "city": {"type": "categorical", "values": ["A", "B", "C"]},
        "age": {"type": "integer", "min": 0, "max": 99},
        "income": {"type": "integer", "min": 0, "max": 9, "when": [
            {"if": "city == 'A'", "min": 100, "max": 109},
            {"if": "age >= 50", "min": 200, "max": 209, "null_rate": 0.5},
        ]},
    })
    cols = values(sch, 30_000)
    city, age, income = cols["city"].values, cols["age"].values, cols["income"]
    first = city == 0
    second = ~first & (age >= 50)
    rest = ~first & ~second
    assert np.all((income.values[first] >= 100) & (income.values[first] <= 109))
    kept = second & ~income.null
    assert np.all((income.values[kept] >= 200) & (income.values[kept] <= 209))
    assert np.all(income.values[rest] <= 9) and not income.null[first | rest].any()
    assert abs(income.null[second].mean() - 0.5) < 0.03


def test_base_columns_offset_dates_and_carry_nulls():
    sch = schema({"start": {"type": "date", "min": "2024-01-01", "max": "2024-01-31", "null_rate": 0.3},
                  "end": {"type": "date", "base": "start", "min": 0, "max": 10}})
    cols = values(sch, 5_000)
    start, end = cols["start"], cols["end"]
    assert np.array_equal(end.null, start.null)
    gap = (end.values - start.values)[~start.null]
    assert gap.min() == 0 and gap.max() == 10
    day0 = np.datetime64("2024-01-01", "D").astype(int)
    assert start.values[~start.null].min() == day0 and start.values[~start.null].max() == day0 + 30


# ----------------------------------------------------------- keys, patterns
def test_unique_keys_from_a_pattern_are_a_permutation_of_the_whole_space():
    sch = schema({"id": {"type": "string", "pattern": r"K-#?\#", "unique": True}})
    ids = values(sch, 260)["id"].values  # 10 digits x 26 letters: every key exactly once
    texts = [i.decode() for i in ids]
    assert len(set(texts)) == 260 and all(re.fullmatch(r"K-[0-9][A-Z]#", t) for t in texts)
    assert texts != sorted(texts)
    with pytest.raises(SchemaError, match="column 'id': unique values run out: 261 rows asked for, 260 distinct"):
        generate(sch, 261)


def test_unique_integers_and_sequences_are_keys_in_any_slice():
    sch = schema({"k": {"type": "integer", "min": 1000, "max": 1999, "unique": True},
                  "seq": {"type": "integer", "distribution": "sequence", "start": 5, "step": 3}})
    cols = values(sch, 1000)
    assert sorted(cols["k"].values.tolist()) == list(range(1000, 2000))
    assert cols["seq"].values[:3].tolist() == [5, 8, 11]
    tail = values(sch, 10, start=990)
    assert np.array_equal(tail["k"].values, cols["k"].values[990:])


def test_patterns_fill_digits_and_letters_uniformly():
    sch = schema({"code": {"type": "string", "pattern": "#%?-" + "#" * 20}})
    codes = values(sch, 20_000)["code"].values
    matrix = codes.view(np.uint8).reshape(len(codes), -1)
    assert all(re.fullmatch(r"[0-9][a-z][A-Z]-[0-9]{20}", c.decode()) for c in codes[:200])
    for position, (first, size) in [(0, (48, 10)), (1, (97, 26)), (2, (65, 26)), (23, (48, 10))]:
        counts = np.bincount(matrix[:, position] - first, minlength=size)
        assert len(counts) == size and stats.chisquare(counts).pvalue > 1e-4


# ------------------------------------------------------------- constraints
def test_constraints_always_hold_after_redraws():
    sch = schema({"start": {"type": "date", "min": "2024-01-01", "max": "2024-12-31"},
                  "end": {"type": "date", "min": "2024-01-01", "max": "2024-12-31", "null_rate": 0.1},
                  "a": {"type": "integer", "min": 0, "max": 9}},
                 ["end >= start", "a != 3"])
    cols = values(sch, 20_000, seed=3)
    start, end, a = cols["start"], cols["end"], cols["a"]
    assert np.all((end.values >= start.values) | end.null) and not np.any(a.values == 3)
    assert end.null.mean() > 0.1  # a null end satisfies the constraint (SQL CHECK), so nulls are kept more often
    # redrawn rows follow the same law: end - start is not piled up at zero
    assert np.mean((end.values - start.values)[~end.null] == 0) < 0.01


def test_a_constraint_that_keys_cannot_meet_fails_with_a_hint():
    with pytest.raises(SchemaError, match="still break 'k < 3' after 100 redraws"):  # found by the load's dry run
        schema({"k": {"type": "integer", "distribution": "sequence"}}, ["k < 3"])


# -------------------------------------------------------------- determinism
def test_row_i_depends_on_the_seed_and_the_row_only():
    sch = load_schema(CONFIGS / "customers_rules.yaml")
    whole = generate(sch, 3000, seed=7)
    pieces = [generate(sch, n, seed=7, start=s) for s, n in [(0, 1), (1, 999), (1000, 1234), (2234, 766)]]
    for name, value in whole.items():
        joined = np.concatenate([np.asarray(p[name].values) for p in pieces])
        assert np.array_equal(np.asarray(value.values), joined), name
        if value.null is not None:
            assert np.array_equal(value.null, np.concatenate([p[name].null for p in pieces])), name
    other = generate(sch, 3000, seed=8)
    assert not np.array_equal(other["age"].values, whole["age"].values)


def test_adding_a_column_leaves_the_other_columns_unchanged():
    one = schema({"age": {"type": "integer", "min": 0, "max": 99}})
    two = schema({"first": {"type": "float", "min": 0, "max": 1}, "age": {"type": "integer", "min": 0, "max": 99}})
    assert np.array_equal(values(one, 500)["age"].values, values(two, 500)["age"].values)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streamed_files_are_byte_identical_to_one_shot_files(tmp_path, suffix, monkeypatch):
    sch = load_schema(CONFIGS / "customers_rules.yaml")
    monkeypatch.setattr("aigc_tf.tabular.output.PARQUET_ROW_GROUP", 300)
    n = 700
    outputs = []
    for chunk, workers in [(n, 1), (1, 2), (7, 1), (300, 2), (512, 3)]:
        out = tmp_path / f"c{chunk}{suffix}"
        rules.write_records(sch, n, out, seed=11, chunk_rows=chunk, progress=False, workers=workers)
        outputs.append(out.read_bytes())
    assert all(o == outputs[0] for o in outputs)
    if suffix == ".csv":
        lines = outputs[0].decode().splitlines()
        assert len(lines) == n + 1 and lines[0].split(",")[0] == '"customer_id"'
        assert ",," in outputs[0].decode()  # nulls are empty fields
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(tmp_path / f"c7{suffix}")
        assert table.num_rows == n and table.column("churn_date").null_count > 0
        assert pq.ParquetFile(tmp_path / f"c7{suffix}").metadata.num_row_groups == 3


def test_values_with_commas_are_quoted_in_csv(tmp_path):
    sch = schema({"name": {"type": "categorical", "values": ['Smith, J.', 'say "hi"']}})
    out = tmp_path / "q.csv"
    rules.write_records(sch, 50, out, progress=False)
    import csv

    rows = list(csv.reader(out.open()))
    assert rows[0] == ["name"] and {r[0] for r in rows[1:]} == {"Smith, J.", 'say "hi"'}


# --------------------------------------------------------------------- cli
def test_generate_writes_the_documents_user_records(tmp_path, capsys):
    out = tmp_path / "users.csv"
    assert main(["generate", str(CONFIGS / "users_rules.yaml"), "--rows", "2000", "--out", str(out),
                 "--seed", "5"]) == 0
    assert "Wrote 2,000 rows of 5 columns" in capsys.readouterr().out
    import csv

    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2000 and list(rows[0]) == ["user_id", "age", "gender", "income", "city"]
    assert [int(r["user_id"]) for r in rows] == list(range(1, 2001))
    ages = [int(r["age"]) for r in rows]
    incomes = [float(r["income"]) for r in rows]
    assert min(ages) == 18 and max(ages) == 65 and 20000 <= min(incomes) and max(incomes) <= 100000
    assert {r["gender"] for r in rows} == {"female", "male"}
    assert len({r["city"] for r in rows}) == 8
    assert all("." not in r["income"] or len(r["income"].split(".")[1]) <= 2 for r in rows)


def test_generate_keeps_an_existing_file_and_refuses_bad_input_in_one_line(tmp_path):
    out = tmp_path / "users.csv"
    out.write_text("precious\n")
    code = "import sys; from aigc_tf.cli import main; sys.exit(main(sys.argv[1:]))"
    for argv, message in [
        ([str(CONFIGS / "users_rules.yaml"), "--out", str(out)], "exists and is kept; pass --overwrite"),
        ([str(CONFIGS / "users_rules.yaml"), "--out", str(tmp_path / "u.xlsx")], "unknown format '.xlsx'"),
        ([str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "u.csv")], "no such schema file"),
    ]:
        result = subprocess.run([sys.executable, "-c", code, "generate", *argv], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert out.read_text() == "precious\n" and sorted(p.name for p in tmp_path.iterdir()) == ["users.csv"]


def test_a_failure_while_writing_leaves_no_file_behind(tmp_path, monkeypatch):
    sch = load_schema(CONFIGS / "users_rules.yaml")
    calls = []
    real = rules.generate

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(rules, "generate", failing)
    with pytest.raises(KeyboardInterrupt):
        rules.write_records(sch, 10_000, tmp_path / "u.csv", chunk_rows=100, progress=False, workers=1)
    assert list(tmp_path.iterdir()) == []


def test_shipped_schemas_load_and_hold_their_constraints():
    for path in sorted(CONFIGS.glob("*_rules.yaml")):
        sch = load_schema(path)
        assert yaml.safe_load(path.read_text())["columns"].keys() == sch.columns.keys()
        cols = generate(sch, 5000, seed=1)
        for constraint in sch.constraints:
            assert constraint.holds(cols).all(), (path.name, constraint.text)


# --------------------------------------------------------- edge cases (review)
def test_parquet_bytes_do_not_depend_on_the_chunk_size_once_pages_fill(tmp_path):
    sch = schema({"x": {"type": "float", "min": 0, "max": 1}, "k": {"type": "integer", "min": 0, "max": 10**12}})
    digests = set()
    for chunk in (16384, 30001, 100000):
        out = tmp_path / f"p{chunk}.parquet"
        rules.write_records(sch, 300_000, out, chunk_rows=chunk, progress=False, workers=1)
        digests.add(out.read_bytes())
    assert len(digests) == 1


@pytest.mark.parametrize("columns, constraints, message", [
    ({"code": {"type": "string", "pattern": "#"}}, ["code != '7'"], "column 'code' is a pattern string"),
    ({"k": {"type": "integer", "min": 0, "max": 2**60}}, [], "at most 2**53 values"),
    ({"k": {"type": "integer", "min": 0, "max": 10**20}}, [], "too large"),
    ({"t": {"type": "string", "pattern": "?" * 16, "unique": True}}, [], "at most 2**62 distinct values"),
    ({"c": {"type": "categorical", "values": ["a"]}, "d": {"type": "date", "base": "c", "min": 0, "max": 1}}, [],
     "column 'd': base column 'c' is a categorical column; a date column adds its offset to a date column"),
    ({"s": {"type": "integer", "distribution": "sequence", "step": 0.5}}, [], "step of a sequence must be a whole"),
    ({"s": {"type": "integer", "distribution": "sequence", "step": 0}}, [], "must not be 0"),
    ({"a": {"type": "integer", "min": 0, "max": 3}}, ["a in ['x']"], "'x' cannot be a value of a number column"),
])
def test_more_schema_mistakes_are_refused_at_load(columns, constraints, message):
    with pytest.raises(SchemaError, match=re.escape(message)):
        schema(columns, constraints)


def test_edge_cases_generate_correct_values(tmp_path):
    small = schema({"k": {"type": "integer", "min": 1, "max": 10, "unique": True}})  # fewer keys than the dry run
    assert sorted(values(small, 10)["k"].values.tolist()) == list(range(1, 11))
    wide = values(schema({"k": {"type": "integer", "min": 10**17, "max": 10**17 + 10**15}}), 20_000)["k"].values
    assert 0.45 < np.mean(wide % 2 == 0) < 0.55 and wide.min() >= 10**17  # every digit drawn, not only even ones
    tail = schema({"x": {"type": "float", "distribution": "normal", "mean": 0, "std": 1, "min": 9, "max": 10},
                   "y": {"type": "integer", "distribution": "normal", "mean": 50, "std": 5, "min": 100, "max": 110}})
    cols = values(tail, 20_000)
    assert np.all((cols["x"].values >= 9) & (cols["x"].values <= 10)) and cols["x"].values.mean() < 9.2
    assert np.all((cols["y"].values >= 100) & (cols["y"].values <= 110))
    stepped = values(schema({"a": {"type": "integer", "min": 0, "max": 4}}, ["a not in [2.5]", "a // 0 != 1"]), 500)
    assert 2 in stepped["a"].values  # 2.5 is not 2; x // 0 is null, so the second constraint holds
    out = tmp_path / "none.csv"
    rules.write_records(small, 0, out, progress=False)
    assert out.read_text() == '"k"\n'


def test_generate_starts_without_pandas_or_tensorflow(tmp_path):
    # pa.array and Schema.empty_table import pandas when it is installed (0.4 s of every run): buffers instead
    code = ("import sys; from aigc_tf.cli import main; rc = main(sys.argv[1:]); "
            "print(sorted(m for m in ('pandas', 'tensorflow', 'sklearn') if m in sys.modules)); sys.exit(rc)")
    for suffix in (".csv", ".parquet"):
        result = subprocess.run([sys.executable, "-c", code, "generate", str(CONFIGS / "customers_rules.yaml"),
                                 "--out", str(tmp_path / f"c{suffix}")], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == "[]"
