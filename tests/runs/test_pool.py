"""The warm process pool behind run(..., workers=N) never outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.slow

PARENT = """
import os, sys
from orgtwin.runs.pool import warm_pool
if __name__ == "__main__":
    pool = warm_pool(2)
    print(" ".join(str(p) for p in pool._processes), flush=True)
    sys.stdin.read()  # wait until killed
"""


def test_pool_workers_exit_when_their_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(psutil.pid_exists(p) for p in workers)
        os.kill(parent.pid, signal.SIGKILL)  # no exit handlers run
        parent.wait(timeout=10)
        deadline = time.monotonic() + 20
        alive = workers
        while alive and time.monotonic() < deadline:
            alive = [
                p
                for p in workers
                if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
            ]
            time.sleep(0.2)
        assert not alive, f"pool workers {alive} outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()
