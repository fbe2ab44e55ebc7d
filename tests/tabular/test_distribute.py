"""Table models: one step under MirroredStrategy with 2 logical CPUs equals one device's step.

TVAE's and CTGAN's own train steps (CTGAN with its training-by-sampling condition vectors, its
generator's batch norm synchronized over the replicas, its packed critic and gradient penalty).
"""

from __future__ import annotations

import pytest

from tests.helpers import mirrored_step_stats

NAMES = ["tvae", "ctgan"]


@pytest.mark.slow
def test_mirrored_table_step_matches_single_device():
    """SGD steps on a fixed batch of 16 rows (8 per replica, two packs of 4 each for CTGAN) with every
    random draw in the batch: equal to float32 rounding (observed 1.7e-7 of TVAE's largest update, 3e-8
    for CTGAN); with the defaults (Adam, CTGAN's critic dropout and its own draws) a mirrored step trains
    and stays finite."""
    mirrored_step_stats("mirrored_table_step.py", NAMES)
