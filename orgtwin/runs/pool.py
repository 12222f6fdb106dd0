"""The persistent pool of worker processes that runs seeds in parallel.

Parallel runs (``run(..., workers=4)``) use a persistent pool of worker processes
(:func:`process_pool`): started with the ``spawn`` method of a private context (the
global start method is left alone), created on first use, kept and reused by every
later call with the same number of workers (so an interactive page pays the start-up
once), and shut down when the interpreter exits. A scenario travels to the workers as
its JSON dict (:func:`ship`) and is validated again there (:func:`unship`).
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from orgtwin.errors import RunError, whole_number
from orgtwin.scenario.spec import Scenario

R = TypeVar("R")

POOL_START_METHOD = "spawn"
"""Start method of the worker processes (a private context; the global one is untouched)."""


MAX_WORKERS = 256
"""Most worker processes one pool may have."""


ShippedScenario = tuple[dict[str, Any], str, str | None]
"""A scenario on its way to a worker: its JSON dict, ``source`` and ``base``."""


def ship(scenario: Scenario) -> ShippedScenario:
    """A scenario as plain data for a worker process: its JSON dict, source and base."""
    return scenario.model_dump(mode="json"), scenario.source, scenario.base


def unship(shipped: ShippedScenario) -> Scenario:
    """The scenario :func:`ship` packed, validated again."""
    data, source, base = shipped
    return Scenario.model_validate(data).model_copy(update={"source": source, "base": base})


def check_workers(workers: int | None) -> int:
    """The number of worker processes ``workers`` asks for (1 for ``None``).

    Raises:
        RunError: ``workers`` is not a whole number between 1 and :data:`MAX_WORKERS`.
    """
    if workers is None:
        return 1
    return whole_number(workers, name="workers", high=MAX_WORKERS, error=RunError)


_POOLS: dict[int, ProcessPoolExecutor] = {}


_POOLS_LOCK = threading.Lock()


def _exit_with_parent() -> None:
    """In a pool worker: end the process when the process that started it is gone.

    A parent killed by a signal (or whose exit handlers something else took over, as Ray
    does with SIGTERM) never shuts its pool down; without this its workers would linger.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="orgtwin-parent-watch", daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """The persistent pool of ``workers`` processes, created on first use.

    One pool per worker count lives for the whole process: later calls (a dashboard's
    reruns) reuse its started workers. Pools are shut down at interpreter exit, or by
    :func:`shutdown_pools`.

    Args:
        workers: number of worker processes, 1 to :data:`MAX_WORKERS`.

    Raises:
        OrgTwinError: ``workers`` is out of range.
    """
    n = check_workers(workers)
    with _POOLS_LOCK:
        pool = _POOLS.get(n)
        if pool is None:
            if not _POOLS:
                atexit.register(shutdown_pools)
            context = multiprocessing.get_context(POOL_START_METHOD)
            pool = ProcessPoolExecutor(
                max_workers=n, mp_context=context, initializer=_exit_with_parent
            )
            _POOLS[n] = pool
        return pool


def warm_pool(workers: int, *, timeout_s: float = 120.0) -> ProcessPoolExecutor:
    """:func:`process_pool`, with every worker started and its imports done.

    Args:
        workers: number of worker processes.
        timeout_s: longest wait for the workers to start, s.
    """
    pool = process_pool(workers)
    n = check_workers(workers)
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while len(seen) < n and time.monotonic() < deadline:
        seen |= {f.result(timeout=timeout_s) for f in [pool.submit(_pid) for _ in range(2 * n)]}
    return pool


def shutdown_pools() -> None:
    """Shut every worker pool down (they are started again on demand)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


def run_in_pool(
    job: Callable[..., R],
    shipped: ShippedScenario,
    options: Sequence[Mapping[str, Any]],
    *,
    workers: int,
) -> list[R]:
    """``job(shipped, **o)`` for every ``o`` of ``options`` in the pool; results in order.

    A pool whose worker died (killed, out of memory) is replaced and the jobs are run
    once more; a job that raises raises here.

    Args:
        job: a module-level function (workers import it by name).
        shipped: the scenario, from :func:`ship`.
        options: keyword arguments of each job.
        workers: pool size.
    """
    pool = process_pool(workers)
    try:
        return _gather(pool, job, shipped, options)
    except BrokenProcessPool:
        _forget(pool)
        return _gather(process_pool(workers), job, shipped, options)


def submit_in_pool(
    job: Callable[..., R],
    jobs: Sequence[tuple[ShippedScenario, Mapping[str, Any]]],
    *,
    workers: int,
) -> list[Future]:
    """Submit ``job(shipped, **o)`` for every ``(shipped, o)`` of ``jobs``, in that order,
    without waiting: the workers take them first in, first out.

    Returns:
        One future per job, in order. A pool whose worker died makes its futures raise
        ``BrokenProcessPool``; :class:`orgtwin.runs.runner.PendingRuns` then runs them again.
    """
    pool = process_pool(workers)
    return [pool.submit(job, shipped, **o) for shipped, o in jobs]


def _gather(
    pool: ProcessPoolExecutor,
    job: Callable[..., R],
    shipped: ShippedScenario,
    options: Sequence[Mapping[str, Any]],
) -> list[R]:
    futures: list[Future] = [pool.submit(job, shipped, **o) for o in options]
    try:
        return [f.result() for f in futures]
    finally:
        for f in futures:
            f.cancel()


def _forget(pool: ProcessPoolExecutor) -> None:
    """Drop a broken pool so that the next call starts a fresh one."""
    with _POOLS_LOCK:
        for n, known in list(_POOLS.items()):
            if known is pool:
                del _POOLS[n]
    pool.shutdown(wait=False, cancel_futures=True)


def _pid() -> int:
    time.sleep(0.05)
    return os.getpid()
