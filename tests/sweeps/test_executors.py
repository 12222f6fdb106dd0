"""Executing a sweep (orgtwin/sweeps/executors.py): chunks of runs and the back ends.

A run that raises becomes a row with its error and the sweep goes on; chunks carry a few
seconds of work, cover every run once in order and shrink towards the end; and (marked
slow) Ray with two workers gives the serial rows, and a killed Ray worker costs a retry,
not a row.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psutil
import pytest

from orgtwin import simulate
from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps.api import sweep
from orgtwin.sweeps.executors import TASK_NAME, Unit, chunk_size, plan_chunks


@pytest.fixture
def no_ray_left_behind():
    """Ray processes a test starts (children of this process) must be gone after it."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    left = [
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before and p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    ]
    psutil.wait_procs(left, timeout=10)
    assert not [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_run_that_raises_is_recorded_and_the_sweep_goes_on(
    small_scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_sweep: Any
):
    import orgtwin.sweeps.executors as executors

    def flaky(scenario: Scenario, **kwargs: Any):
        if scenario.teams["platform"].oncall_size == 2:
            raise RuntimeError("pager melted")
        return simulate(scenario, **kwargs)

    monkeypatch.setattr(executors, "simulate", flaky)
    result = tiny_sweep(small_scenario, tmp_path)
    assert result.runs.height == 18
    failed = result.failed
    assert failed.height == 6
    assert set(failed["teams.platform.oncall_size"]) == {2}
    assert set(failed["error"]) == {"RuntimeError: pager melted"}
    assert failed["availability_pct"].null_count() == 6
    assert result.runs.filter(pl.col("error").is_null())["availability_pct"].null_count() == 0


def test_chunks_carry_a_few_seconds_of_work_and_balance():
    assert chunk_size(0.5, 0, 200, 2) == 4  # TARGET_CHUNK_S = 2 s
    assert chunk_size(0.02, 0, 10_000, 2) == 100
    # 64 workers hand in at most MAX_RESULTS_PER_S results: 2.56 s chunks
    assert chunk_size(0.5, 0, 100_000, 64) == 6
    assert chunk_size(0.5, 0, 100_000, 16) == 4
    assert chunk_size(0.02, 0, 200, 2) == 33  # at least 3 chunks per worker
    assert chunk_size(0.001, 500_000, 10_000, 2) == 2  # a chunk's series stay small
    assert chunk_size(5.0, 0, 3, 16) == 1


@pytest.mark.parametrize(("n", "size", "workers"), [(200, 33, 2), (7, 50, 4), (1, 1, 1)])
def test_planned_chunks_hold_every_run_once_in_order_and_shrink_at_the_end(
    n: int, size: int, workers: int
):
    indexes = np.arange(10, 10 + n)
    chunks = list(plan_chunks(lambda i: Unit(int(i), 0, int(i), {}), indexes, size, workers))
    assert [unit.point for chunk in chunks for unit in chunk] == indexes.tolist()
    sizes = [len(chunk) for chunk in chunks]
    assert all(1 <= s <= size for s in sizes)
    assert sizes == sorted(sizes, reverse=True), "chunks only shrink, so workers finish together"
    if n >= 2 * size:
        assert sizes[0] == size and sizes[-1] == 1


# --------------------------------------------------------------------------- Ray


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("no_ray_left_behind")
def test_ray_with_two_workers_gives_the_serial_rows(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'orgtwin[sweep]')")
    serial = tiny_sweep(small_scenario, tmp_path / "serial")
    on_ray = tiny_sweep(small_scenario, tmp_path / "ray", runner="ray", workers=2)
    assert on_ray.runner == "ray" and on_ray.workers == 2
    assert tiny_sweep.rows(on_ray).equals(tiny_sweep.rows(serial))
    key = ["point", "replicate"]
    assert (
        on_ray.series()
        .collect()
        .sort(key, maintain_order=True)
        .equals(serial.series().collect().sort(key, maintain_order=True))
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("no_ray_left_behind")
def test_a_killed_ray_worker_costs_a_retry_not_a_row(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'orgtwin[sweep]')")
    killed: list[int] = []

    def kill_one_busy_worker(done: int, total: int, elapsed: float, eta: Any) -> None:
        if killed or done < 2:
            return
        busy = [
            p
            for p in psutil.Process().children(recursive=True)
            if TASK_NAME in " ".join(p.cmdline())
        ]
        if busy:
            os.kill(busy[0].pid, signal.SIGKILL)
            killed.append(busy[0].pid)

    result = sweep(small_scenario, tiny_sweep.levers, seeds=6, days=7, out=tmp_path,
                   runner="ray", workers=2, series="none",
                   progress=kill_one_busy_worker)  # fmt: skip
    assert killed, "no busy worker was found to kill"
    runs = result.runs
    assert runs.height == 9 * 6
    assert runs.select("point", "replicate").is_duplicated().sum() == 0
    assert runs["error"].null_count() == runs.height
