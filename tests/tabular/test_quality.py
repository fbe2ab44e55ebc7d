import numpy as np
import pyarrow as pa
import pytest

from aigc_tf.tabular import quality
from aigc_tf.tabular.baselines import GaussianCopula, IndependentMarginals


def correlated_table(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n)
    income = np.round(1000 * age + rng.normal(0, 4000, n), 2)  # r(age, income) about 0.93
    city = np.where(age + rng.normal(0, 5, n) > 40, "Beijing", "Wuhan")
    return pa.table({
        "age": pa.array(np.round(age).astype(np.int64)),
        "income": pa.array(income, mask=rng.random(n) < 0.1),
        "city": pa.array(city.tolist()),
        "member": pa.array((rng.random(n) < 0.3).tolist()),
    })


def test_scores_against_hand_computed_values():
    assert quality.total_variation(np.array(["a", "a", "b", "b"]), np.array(["a", "b", "b", "b"])) == 0.25
    assert quality.ks_complement(np.array([1.0, 2, 3, 4]), np.array([3.0, 4, 5, 6])) == 0.5
    x = np.arange(10.0)
    assert quality.correlation_similarity(x, x, x, x) == 1.0
    assert quality.correlation_similarity(x, x, x, -x) == pytest.approx(0.0)
    real = pa.table({"n": [0.0, 10.0, 0.0, 10.0], "c": ["a", "a", "b", "b"]})
    synthetic = pa.table({"n": [0.0, 0.0, 0.0, 10.0], "c": ["a", "a", "b", "b"]})
    report = quality.quality_report(real, synthetic)
    # n: KS between {0,10,0,10} and {0,0,0,10} is 0.25; c: same frequencies
    assert report["columns"] == {"n": 0.75, "c": 1.0}
    # joint (bin, c): real {(0,a),(10,a),(0,b),(10,b)} a quarter each; synthetic (0,a) twice, (0,b), (10,b)
    assert report["pairs"]["n | c"] == pytest.approx(0.75)
    # n and c are independent in the real table (Cramer's V 0), so the pair is not scored, as in SDMetrics
    assert report["pairs_scored"] == [] and report["overall"] == pytest.approx(0.875)
    assert quality.cramers_v(np.array(["a", "a", "b", "b"]), np.array(["x", "x", "y", "y"])) == pytest.approx(1.0)


def test_a_table_against_itself_scores_one_and_baselines_rank_as_expected():
    real = correlated_table()
    assert quality.quality_report(real, real)["overall"] == 1.0
    independent = IndependentMarginals().fit(real).sample(4000, seed=1)
    copula = GaussianCopula().fit(real).sample(4000, seed=1)
    ind, cop = quality.quality_report(real, independent), quality.quality_report(real, copula)
    assert ind["column_shapes"] > 0.95 and cop["column_shapes"] > 0.95
    assert ind["pairs"]["age | income"] < 0.6 < 0.97 < cop["pairs"]["age | income"]
    assert cop["column_pair_trends"] > ind["column_pair_trends"] + 0.1


def test_baselines_keep_schema_marginals_nulls_and_seed():
    real = correlated_table()
    for synthesizer in (IndependentMarginals(), GaussianCopula()):
        fitted = synthesizer.fit(real)
        out = fitted.sample(3000, seed=2)
        assert out.schema == real.schema and out.num_rows == 3000
        assert out.equals(fitted.sample(3000, seed=2)) and not out.equals(fitted.sample(3000, seed=3))
        assert abs(out.column("income").null_count / 3000 - 0.1) < 0.02
        assert set(out.column("city").to_pylist()) == {"Beijing", "Wuhan"}
        income = out.column("income").drop_null().to_numpy()
        assert np.array_equal(income, np.round(income, 2))  # the column's two decimals
        r = np.corrcoef(out.column("age").to_numpy().astype(float),
                        out.column("member").to_numpy(zero_copy_only=False).astype(float))[0, 1]
        assert abs(r) < 0.06  # independent in the real table too


def test_distance_to_closest_record_by_hand_and_for_a_copying_synthesizer():
    train = pa.table({"n": [0.0, 10.0], "c": ["a", "b"]})
    rows = pa.table({"n": [5.0, 10.0], "c": ["a", "b"]})
    # row 0: to (0, a) (0.5 + 0) / 2, to (10, b) (0.5 + 1) / 2; row 1 is a copy of (10, b)
    assert np.allclose(quality.distance_to_closest_record(train, rows), [0.25, 0.0])
    real = correlated_table(3000)
    train, holdout = real.slice(0, 2000), real.slice(2000)
    copier = train.take(np.random.default_rng(0).integers(0, 2000, 1000))
    copied = quality.privacy_report(train, holdout, copier)
    assert copied["dcr_synthetic_median"] == 0.0 and copied["copies"] == 1.0 and copied["dcr_ratio"] == 0.0
    fresh = quality.privacy_report(train, holdout, GaussianCopula().fit(train).sample(1000, seed=0))
    assert fresh["dcr_holdout_median"] > 0 and fresh["dcr_ratio"] > 0.5 and fresh["copies"] < 0.2


def test_efficacy_learns_a_real_relation_and_not_a_shuffled_one():
    real = correlated_table(3000)
    train, test = real.slice(0, 2000), real.slice(2000)
    good = quality.efficacy(train, test, "city")
    labels = np.random.default_rng(0).permutation(train.column("city").to_numpy(zero_copy_only=False))
    shuffled = train.set_column(2, "city", pa.array(labels.tolist()))
    bad = quality.efficacy(shuffled, test, "city")
    assert good["task"] == "classification" and good["accuracy"] > 0.75 > bad["accuracy"] + 0.1
    regression = quality.efficacy(train, test, "income")
    assert regression["task"] == "regression" and regression["r2"] > 0.7
