"""A cross-process lock for caches that several processes may fill at once (no TensorFlow)."""

from __future__ import annotations

import contextlib
from pathlib import Path


@contextlib.contextmanager
def exclusive(lock_file: str | Path):
    """Hold an exclusive POSIX ``flock`` on ``lock_file`` (created if missing) for the ``with`` block.

    Two processes that would fill the same cache entry (two test workers, two
    notebooks, a training run and an evaluation) then do it once: the second
    waits and finds the entry the first wrote. Without ``fcntl`` (Windows) the
    block runs unlocked; cache writes stay atomic either way.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
