"""Session-wide test settings."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_classifier_cache(tmp_path_factory):
    """Feature classifiers, espeak renders and parsed corpora made by tests go to a temporary cache, never
    ~/.cache. Under pytest-xdist the workers share one (the cache fills each entry once, under a lock)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        cache = tmp_path_factory.getbasetemp().parent / "aigc_tf_cache"
        cache.mkdir(exist_ok=True)
    else:
        cache = tmp_path_factory.mktemp("aigc_tf_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGC_TF_CACHE", str(cache))
        yield
