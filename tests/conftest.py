"""Session-wide test settings."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_classifier_cache(tmp_path_factory):
    """Feature classifiers trained by tests go to a temporary cache, never ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGC_TF_CACHE", str(tmp_path_factory.mktemp("aigc_tf_cache")))
        yield
