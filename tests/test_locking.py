"""The cache lock: processes that would fill one cache entry take turns."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

HOLD = """
import sys, time
from aigc_tf.locking import exclusive
lock, log, name = sys.argv[1:]
with exclusive(lock):
    with open(log, "a") as f:
        f.write(f"{name} in\\n")
    time.sleep(0.5)
    with open(log, "a") as f:
        f.write(f"{name} out\\n")
"""


def test_two_processes_hold_the_lock_one_after_the_other(tmp_path):
    lock, log = tmp_path / "cache" / "entry.lock", tmp_path / "log.txt"
    procs = [subprocess.Popen([sys.executable, "-c", HOLD, str(lock), str(log), name], cwd=ROOT)
             for name in ("a", "b")]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    lines = log.read_text().splitlines()
    first, second = lines[0].split()[0], lines[2].split()[0]
    # Never both inside: each process's "in" is followed by its own "out".
    assert lines == [f"{first} in", f"{first} out", f"{second} in", f"{second} out"] and {first, second} == {"a", "b"}
