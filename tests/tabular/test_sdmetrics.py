"""Our quality scores against SDMetrics' own metric classes and QualityReport (the field's reference)."""

import warnings

import numpy as np
import pyarrow as pa
import pytest
from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity  # the dev extra has sdmetrics
from sdmetrics.reports.single_table import QualityReport
from sdmetrics.single_column import KSComplement, TVComplement

from aigc_tf.tabular import quality
from aigc_tf.tabular.baselines import GaussianCopula


def table(n, seed, numeric=True, categorical=True):
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 10, n)
    columns = {}
    if numeric:
        columns["age"] = pa.array(np.round(age, 1))
        columns["income"] = pa.array(np.round(900 * age + rng.normal(0, 6000, n), 2), mask=rng.random(n) < 0.1)
        columns["score"] = pa.array(rng.random(n))
    if categorical:
        city = np.where(age + rng.normal(0, 4, n) > 40, "Beijing", np.where(rng.random(n) < 0.5, "Wuhan", "Xi'an"))
        columns["city"] = pa.array(city.tolist())
        columns["plan"] = pa.array(np.where((city == "Beijing") & (rng.random(n) < 0.8), "plus", "basic").tolist(),
                                   mask=rng.random(n) < 0.05)
    return pa.table(columns)


def metadata(t):
    return {"columns": {f.name: {"sdtype": "categorical" if pa.types.is_string(f.type) else "numerical"}
                        for f in t.schema}}


@pytest.fixture(scope="module")
def pair():
    real = table(3000, 0)
    return real, GaussianCopula().fit(real).sample(3000, seed=1)


def test_every_column_and_pair_score_equals_sdmetrics(pair):
    real, synthetic = pair
    ours = quality.quality_report(real, synthetic)
    r, s = real.to_pandas(), synthetic.to_pandas()
    kinds = metadata(real)["columns"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, kind in kinds.items():
            metric = TVComplement if kind["sdtype"] == "categorical" else KSComplement
            assert ours["columns"][name] == pytest.approx(metric.compute(r[name], s[name]), abs=1e-12), name
        for key, score in ours["pairs"].items():
            a, b = key.split(" | ")
            numeric = [c for c in (a, b) if kinds[c]["sdtype"] == "numerical"]
            if len(numeric) == 2:
                expected = CorrelationSimilarity.compute(r[[a, b]].dropna(), s[[a, b]].dropna())
            else:
                expected = ContingencySimilarity.compute(r[[a, b]], s[[a, b]], continuous_column_names=numeric or None)
            assert score == pytest.approx(expected, abs=1e-12), key


@pytest.mark.parametrize("numeric, categorical", [(True, False), (False, True)])
def test_overall_score_equals_the_quality_report(numeric, categorical):
    real = table(2000, 2, numeric, categorical)
    synthetic = GaussianCopula().fit(real).sample(2000, seed=3)
    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(real.to_pandas(), synthetic.to_pandas(), metadata(real), verbose=False)
    ours = quality.quality_report(real, synthetic)
    assert ours["pairs_scored"]  # the thresholds keep some pairs, so the pair score is compared too
    assert ours["overall"] == pytest.approx(report.get_score(), abs=1e-9)
