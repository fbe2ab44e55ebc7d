"""Table runs end to end: train on a user's CSV with nulls and dates, sample (with --where), evaluate, and
a SavedModel that returns in a fresh process exactly what ``aigc-tf sample`` writes."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
import yaml

from aigc_tf import cli
from aigc_tf.config import from_dict
from aigc_tf.tabular.data import read_table
from tests.helpers import TINY_MODEL, run_python


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 300
    city = rng.choice(["Beijing", "Paris", "Lagos, NG"], n, p=[0.6, 0.3, 0.1]).astype(object)
    city[::23] = None
    # Zero-inflated (40% exact zeros): with data.point_mass the zeros are a mode of their own.
    income = np.where(rng.random(n) < 0.4, 0.0, np.round(rng.lognormal(10, 0.5, n), 2))
    table = pa.table({
        "city": pa.array(city.tolist(), pa.string()),
        "joined": pa.array(rng.integers(15000, 19000, n).astype(np.int32)).cast(pa.date32()),
        "income": pa.array(income, mask=rng.random(n) < 0.1),
        "age": pa.array(rng.integers(18, 66, n)),
        "member": pa.array(rng.random(n) < 0.4),
    })
    path = tmp_path_factory.mktemp("table") / "users.csv"
    pcsv.write_csv(table, path)
    return path


@pytest.fixture(scope="module")
def trained(table_csv, tmp_path_factory):
    """``trained(name)``: a 2-epoch run of a tiny ``name`` on the CSV, made once."""
    from aigc_tf import training

    runs = {}

    def get(name):
        if name not in runs:
            cfg = from_dict({
                "seed": 3,
                "model": {"name": name, **TINY_MODEL[name]},
                "data": {"name": "file", "path": str(table_csv), "batch_size": 32, "target": "member",
                         "constraints": ["age >= 18"], "point_mass": 0.2},
                "train": {"epochs": 2, "verbose": 0, "num_samples": 10, "quality_every": 2, "quality_samples": 100},
            }, "test")
            runs[name] = tmp_path_factory.mktemp(name) / "run"
            training.train(cfg, runs[name])
        return name, runs[name]

    return get


@pytest.fixture(scope="module")
def run(trained):
    """The CTGAN run (the README's commands run the same CLI on a TVAE run, tests/test_readme_commands.py)."""
    return trained("ctgan")


def test_training_writes_samples_and_the_quality_metric(run):
    _, run_dir = run
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["quality"]) == 1 and 0 <= history["quality"][0] <= 1
    sample = read_table(run_dir / "samples" / "epoch_0002.csv")
    assert sample.num_rows == 10 and sample.column_names == ["city", "joined", "income", "age", "member"]


def test_sample_keeps_types_nulls_and_dates_and_where_holds(run, tmp_path):
    _, run_dir = run
    out = tmp_path / "rows.csv"
    assert cli.main(["sample", str(run_dir), "--rows", "300", "--seed", "5", "--out", str(out)]) == 0
    rows = read_table(out)
    train = read_table(yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["path"])
    assert rows.schema.equals(train.schema), (rows.schema, train.schema)
    assert set(rows.column("city").drop_null().to_pylist()) <= {"Beijing", "Paris", "Lagos, NG"}
    assert rows.column("age").to_numpy().min() >= 18 and rows.column("age").to_numpy().max() <= 65
    where = tmp_path / "paris.parquet"
    assert cli.main(["sample", str(run_dir), "--rows", "20", "--where", "city=Paris", "--out", str(where)]) == 0
    import pyarrow.parquet as pq

    assert pq.read_table(where).column("city").to_pylist() == ["Paris"] * 20
    # The same command again keeps the file.
    assert cli.main(["sample", str(run_dir), "--rows", "20", "--where", "city=Paris", "--out", str(where)]) == 2


@pytest.mark.parametrize("where, message", [
    ("city=Rome", "'Rome' is not a category of 'city'"),
    ("income=3", "'income' is continuous"),
    ("town=Paris", "no column 'town'"),
    ("city", "expected COLUMN=VALUE"),
    (None, "--prompt is for text runs"),
])
def test_bad_where_is_one_clear_error(run, tmp_path, capsys, where, message):
    _, run_dir = run
    out = tmp_path / "x.csv"
    option = ["--where", where] if where else ["--prompt", "The "]
    assert cli.main(["sample", str(run_dir), "--rows", "5", *option, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_evaluate_reports_the_model_beside_the_baselines_and_real_rows(run):
    from aigc_tf.evaluate import evaluate_run

    _, run_dir = run
    result = evaluate_run(run_dir, n_samples=200)
    names = [r["synthesizer"] for r in result["results"]]
    assert names[1:] == ["real (train rows)", "independent marginals", "Gaussian copula"]
    assert 0 <= result["quality"] <= 1 and result["quality_real_vs_real"] > 0.8
    assert result["copies"] < 0.5 < result["results"][1]["privacy"]["copies"]  # the train rows copy themselves
    assert result["validity"] == 1.0  # age is clipped to its training range, which meets age >= 18
    assert "efficacy_accuracy" in result and (run_dir / "marginals.png").stat().st_size > 1000


def test_export_returns_what_sample_writes(run, tmp_path):
    """On the CTGAN run (a TVAE shares the in-graph inverse; its generation is the model tests' concern)."""
    _, run_dir = run
    out = tmp_path / "rows.csv"
    assert cli.main(["sample", str(run_dir), "--rows", "7", "--seed", "9", "--out", str(out)]) == 0
    assert cli.main(["export", str(run_dir), "--out", str(tmp_path / "export")]) == 0
    code = f"""
import json, tensorflow as tf
serve = tf.saved_model.load({str(tmp_path / "export" / "run" / "1")!r}).signatures["serving_default"]
out = serve(rows=tf.constant(7), seed=tf.constant(9, tf.int64))
print(json.dumps({{k: [x.decode() if isinstance(x, bytes) else (x.item() if hasattr(x, "item") else x)
                   for x in v.numpy().tolist()] for k, v in out.items()}}))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    rows = read_table(out)
    for name in rows.column_names:
        column = rows.column(name)
        null = np.asarray(column.is_null())
        if f"{name}_is_null" in served:
            assert served[f"{name}_is_null"] == null.tolist()
        want = column.to_pylist()
        got = served[name]
        for w, g, is_null in zip(want, got, null, strict=True):
            if is_null:
                continue
            if name == "joined":
                assert g == w.isoformat()
            else:
                assert g == w, (name, w, g)
    income = [c for c in run_dir_model_columns(run_dir) if c.name == "income"][0]
    assert 0.0 in income.means[income.stds == 0].tolist()  # the zeros are a point mass


def run_dir_model_columns(run_dir):
    from aigc_tf import training
    from aigc_tf.run_dir import final_model_path

    return training.load_model(final_model_path(run_dir)).transformer.columns
