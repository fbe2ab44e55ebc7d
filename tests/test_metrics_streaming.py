"""The streaming Fréchet distance equals the batch computation, on one device
and summed across 2 replicas."""

import json

import numpy as np
import pytest

from aigc_tf.metrics.distances import feature_moments, frechet_distance
from aigc_tf.metrics.streaming import FrechetDistance
from tests.helpers import ROOT, run_python


def test_streamed_equals_batch_fid_and_resets():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(300, 5))
    fake = rng.normal(loc=0.5, size=(250, 5))
    metric = FrechetDistance(*feature_moments(real))
    for start in range(0, 250, 37):  # uneven batches
        metric.update_state(fake[start : start + 37])
    assert float(metric.result()) == pytest.approx(frechet_distance(fake, real), rel=1e-8)
    metric.reset_state()
    metric.update_state(real)
    assert float(metric.result()) == pytest.approx(0.0, abs=1e-9)


def test_feature_model_is_applied():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(200, 3))
    images = rng.normal(size=(100, 6)).astype(np.float32)
    metric = FrechetDistance(*feature_moments(real), feature_model=lambda x: x[:, :3] * 2.0)
    metric.update_state(images)
    assert float(metric.result()) == pytest.approx(frechet_distance(images[:, :3] * 2.0, real), rel=1e-6)


def test_bad_reference_shape():
    with pytest.raises(ValueError, match="reference_cov must be"):
        FrechetDistance(np.zeros(3), np.eye(4))


@pytest.mark.slow
def test_streamed_under_mirrored_strategy():
    result = run_python(str(ROOT / "tests" / "scripts" / "mirrored_metric.py"))
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert out["streamed"] == pytest.approx(out["reference"], rel=1e-6)
