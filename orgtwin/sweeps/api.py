"""Sweeps: a scenario over a design of lever values × seeds, resumable, local or on Ray.

:func:`sweep` runs every (point, replicate) of a design — a grid or a Latin hypercube of
lever values (see :mod:`orgtwin.scenario.levers`) times ``seeds`` replicates — and streams the
results to a Parquet dataset (:mod:`orgtwin.sweeps.store`). :class:`SweepResult` reads it
back: ``.runs`` (one row per run) and ``.series()`` (a lazy scan of the per-tick data).

How the work runs (:mod:`orgtwin.sweeps.executors`): the first missing run is a *pilot*
that times a run; with ``runner="auto"`` it runs in this process and picks the back end
expected to finish first (:func:`~orgtwin.sweeps.choice.choose_runner`): serially here,
unless the work left is large enough that Ray, start-up included, should be faster (a
local Ray sized to the machine, or the cluster of ``RAY_ADDRESS``). A cluster given as
``address`` always runs on Ray. The rest is cut into chunks of about a second of work
(:func:`~orgtwin.sweeps.executors.chunk_size`). Either way the rows are the same: seeds
are derived, never drawn, and a run depends only on its point and seed.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from orgtwin.errors import SweepError, SweepInterrupted, whole_number
from orgtwin.runs.pool import MAX_WORKERS
from orgtwin.runs.runner import ScenarioLike, as_scenario, derive_seed, setting_bounds
from orgtwin.scenario.levers import Lever, parse_levers
from orgtwin.scenario.load import check_timing
from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps.choice import RAY_CONNECT_S, RAY_START_S, choose_runner
from orgtwin.sweeps.design import Design, make_design, validate_design
from orgtwin.sweeps.executors import (
    MAX_RETRIES,
    SERIES_MODES,
    RayBackend,
    SerialBackend,
    SeriesMode,
    Unit,
    chunk_size,
    plan_chunks,
)
from orgtwin.sweeps.store import FORMAT_VERSION, SweepStore, scenario_sha256
from orgtwin.world.kpis import KPIS

if TYPE_CHECKING:
    from orgtwin.sweeps.discovery import Discovery

Runner = Literal["auto", "serial", "ray"]
RUNNERS: tuple[Runner, ...] = ("auto", "serial", "ray")
ProgressFn = Callable[[int, int, float, "float | None"], None]
"""``progress(done, total, elapsed_s, eta_s)``: runs saved, runs in the sweep, seconds
since the call began, estimated seconds left (None until a run has finished)."""

MAX_RUNS = 1_000_000
"""Most runs (points × seeds) one sweep may have."""


@dataclass(frozen=True)
class _Plan:
    """Everything a sweep needs, checked: the scenario, its design and its manifest."""

    scenario: Scenario
    levers: list[Lever]
    design: pl.DataFrame
    seeds: int
    base_seed: int
    days: int
    series: SeriesMode
    common_random_numbers: bool
    manifest: dict[str, Any]

    @property
    def total(self) -> int:
        return self.design.height * self.seeds

    def unit(self, index: int) -> Unit:
        """The run at ``index`` = point × seeds + replicate."""
        point, replicate = divmod(int(index), self.seeds)
        keys = (replicate,) if self.common_random_numbers else (point, replicate)
        values = self.design.row(point, named=True)
        values.pop("point")
        return Unit(point, replicate, derive_seed(self.base_seed, *keys), values)


def sweep(
    scenario: ScenarioLike,
    levers: Mapping[str, Any] | Sequence[str | Lever],
    *,
    seeds: int = 16,
    design: Design = "grid",
    n: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    out: str | os.PathLike[str] | None = None,
    address: str | None = None,
    runner: Runner = "auto",
    workers: int | None = None,
    series: SeriesMode = "daily",
    common_random_numbers: bool = True,
    progress: ProgressFn | None = None,
    repair: bool = False,
) -> SweepResult:
    """Run a scenario over a design of lever values × seeds; save and return the results.

    Seeds: with ``common_random_numbers`` (the default) replicate ``r`` of *every* point
    uses ``derive_seed(seed, r)`` — the seeds :func:`orgtwin.run` uses — so points differ
    only by their lever values and a lever's effect is measured on paired runs (common
    random numbers: the noise of the seeds cancels in the difference, so far fewer seeds
    give the same precision). With ``common_random_numbers=False`` each run gets its own
    ``derive_seed(seed, point, r)`` (independent samples). Either way a run's seed comes
    from ``numpy.random.SeedSequence`` keyed by (base seed, [point,] replicate), so the
    rows are identical serially, with any number of workers and on a cluster (only
    ``wall_s`` differs).

    Resuming: ``out`` holds a manifest (scenario hash, levers, design, seeds, days…);
    calling again with the same arguments and ``out`` runs only the runs missing there.
    A different sweep in the same folder is refused, and so is a second sweep while one
    writes to it (a lock). Every file already there is checked first: a truncated,
    corrupt or foreign shard, or a run saved twice, is an error naming the file, unless
    ``repair`` moves it aside and reruns its runs. Ctrl-C keeps the finished runs.

    Args:
        scenario: a :class:`~orgtwin.scenario.Scenario` or a path to a scenario file.
        levers: ``{path: spec}`` or ``["path=spec", ...]`` (see :mod:`orgtwin.scenario.levers`).
        seeds: replicates per point.
        design: ``"grid"`` (every combination of levels) or ``"lhs"`` (Latin hypercube).
        n: points of a Latin hypercube.
        days: days per run (default: the scenario's).
        seed: base seed of the runs and of the design (default: the scenario's).
        out: results folder (default: a new folder under the system's temp folder).
        address: a Ray cluster (``"auto"``, ``"host:port"``, ``"ray://host:port"`` — the
            last needs ``ray[client]``); when given, the sweep always runs on Ray. Without it,
            Ray (when used) is the cluster of ``RAY_ADDRESS`` if set, else a local Ray
            sized to the machine. A cluster's nodes need orgtwin installed; results come
            back to this process, which alone writes ``out``.
        runner: ``"auto"`` (serial unless Ray, start-up included, is expected to finish
            the work left sooner: :func:`~orgtwin.sweeps.choice.choose_runner`),
            ``"serial"`` or ``"ray"``.
        workers: Ray workers (default: the machine's cores, or the cluster's CPUs).
        series: per-run series to keep: ``"none"``, ``"daily"`` (each value's mean over
            the day's hours) or ``"hourly"`` (every tick).
        common_random_numbers: the same seeds at every point (see above).
        progress: ``progress(done, total, elapsed_s, eta_s)``, called at the start and
            after every chunk (in this process).
        repair: move bad files of ``out`` (truncated or corrupt shards, shards of another
            sweep, runs saved twice) into ``out/quarantine/`` and rerun the runs they
            held, instead of refusing them.

    Returns:
        The :class:`SweepResult` of the whole sweep (runs saved earlier included).

    Raises:
        LeverError: a lever does not fit the scenario (checked before anything runs).
        SweepError: a bad option, more than :data:`MAX_RUNS` runs, ``out`` holding
            another sweep or locked by one, a bad file in ``out`` (without ``repair``), or
            runs lost because their Ray tasks kept failing.
        SweepInterrupted: Ctrl-C; the runs finished so far are saved in ``out``.

    Example:
        >>> import tempfile
        >>> from orgtwin import sweep
        >>> tmp = tempfile.TemporaryDirectory()
        >>> result = sweep("scenarios/baseline.yaml", {"teams.platform.oncall_size": "2..3"},
        ...                seeds=2, days=2, runner="serial", series="none", out=tmp.name)
        >>> result.runs.select("point", "replicate", "teams.platform.oncall_size").rows()
        [(0, 0, 2), (0, 1, 2), (1, 0, 3), (1, 1, 3)]
        >>> tmp.cleanup()
    """
    _check_choice("runner", runner, RUNNERS)
    if workers is not None:
        whole_number(workers, name="workers", low=1, high=MAX_WORKERS, error=SweepError)
    if runner == "serial" and address is not None:
        raise SweepError(f"runner must be 'auto' or 'ray' with an address, got {runner!r}")
    plan = _plan(as_scenario(scenario), levers, seeds=seeds, design=design, n=n, days=days,
                 seed=seed, series=series, crn=common_random_numbers)  # fmt: skip
    store = SweepStore(out if out is not None else tempfile.mkdtemp(prefix="orgtwin-sweep-"))
    with store.lock():
        store.open(plan.manifest, plan.design, repair=repair)
        missing = _missing(store, plan)
        tracker = _Tracker(progress, plan.total, done=plan.total - missing.size)
        try:
            used = _execute(plan, store, missing, tracker, runner=runner, address=address,
                            workers=workers)  # fmt: skip
        except KeyboardInterrupt:
            raise SweepInterrupted(str(store.out), tracker.done, plan.total) from None
    return SweepResult(store.out, plan.levers, plan.design, store.manifest, n_ran=tracker.session,
                       runner=used.runner, workers=used.workers, why=used.why,
                       wall_s=tracker.elapsed,
                       quarantined=tuple(store.quarantined))  # fmt: skip


# --------------------------------------------------------------------------- planning


def _plan(scenario: Scenario, levers: Mapping[str, Any] | Sequence[str | Lever], *,
          seeds: int, design: Design, n: int | None, days: int | None, seed: int | None,
          series: SeriesMode, crn: bool) -> _Plan:  # fmt: skip
    _check_setting("seeds", seeds)
    _check_setting("days", days, allow_none=True)
    _check_setting("seed", seed, allow_none=True)
    _check_choice("series", series, SERIES_MODES)
    days = scenario.days if days is None else int(days)
    base = scenario.seed if seed is None else int(seed)
    check_timing(scenario, days)
    parsed = parse_levers([levers] if isinstance(levers, str) else levers)
    table = make_design(parsed, design, n=n, seed=base)
    if table.height * seeds > MAX_RUNS:
        raise SweepError(
            f"a sweep must have at most {MAX_RUNS:,} runs, got {table.height:,} points x "
            f"{seeds} seeds = {table.height * seeds:,} (use fewer levels, design='lhs' "
            "with a smaller n, or fewer seeds)"
        )
    validate_design(scenario, parsed, table)
    manifest = {
        "format_version": FORMAT_VERSION,
        "scenario": scenario.name,
        "scenario_sha256": scenario_sha256(scenario),
        "levers": [str(lever) for lever in parsed],
        "design": design,
        "n": table.height,
        "seeds": seeds,
        "seed": base,
        "seed_scheme": "crn: derive_seed(seed, replicate)"
        if crn
        else "independent: derive_seed(seed, point, replicate)",
        "days": days,
        "series": series,
        "runs": table.height * seeds,
    }
    return _Plan(scenario, parsed, table, seeds, base, days, series, crn, manifest)


def _missing(store: SweepStore, plan: _Plan) -> np.ndarray:
    """Indexes (point × seeds + replicate) of the runs not saved yet, in order."""
    done = store.done()
    todo = np.ones(plan.total, dtype=bool)
    if done.height:
        index = done["point"].to_numpy() * plan.seeds + done["replicate"].to_numpy()
        todo[index[(index >= 0) & (index < plan.total)]] = False
    return np.flatnonzero(todo)


# --------------------------------------------------------------------------- execution


class _Tracker:
    """Counts saved runs and reports progress."""

    def __init__(self, callback: ProgressFn | None, total: int, *, done: int) -> None:
        self.callback, self.total, self.done, self.session = callback, total, done, 0
        self.started = time.perf_counter()
        self._report()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def advance(self, n: int) -> None:
        self.done += n
        self.session += n
        self._report()

    def _report(self) -> None:
        if self.callback is None:
            return
        elapsed = self.elapsed
        eta = elapsed / self.session * (self.total - self.done) if self.session else None
        self.callback(self.done, self.total, elapsed, eta)


class _Saver:
    """The driver's ``on_chunk``: writes a finished chunk, counts it, keeps its timing."""

    def __init__(self, plan: _Plan, store: SweepStore, tracker: _Tracker) -> None:
        self.plan, self.store, self.tracker = plan, store, tracker
        self.run_s: float | None = None  # mean wall time of a run of the first chunk, s
        self.rows_per_run = 0  # series rows per run of the first chunk

    def __call__(self, units: Sequence[Unit], runs: pl.DataFrame, frames: pl.DataFrame | None
                 ) -> None:  # fmt: skip
        self.store.write_chunk(_with_levers(runs, self.plan), frames)
        if self.run_s is None:
            self.run_s = float(runs["wall_s"].mean())  # type: ignore[arg-type]
            self.rows_per_run = 0 if frames is None else frames.height // len(units)
        self.tracker.advance(len(units))


def _execute(
    plan: _Plan,
    store: SweepStore,
    missing: np.ndarray,
    tracker: _Tracker,
    *,
    runner: Runner,
    address: str | None,
    workers: int | None,
) -> _Used:
    """Run the pilot, pick the back end, run the rest; return the back end used and why.

    The pilot (the first missing run) times a run. It runs here when it decides the back
    end (``runner="auto"``); when Ray is certain, the first run of each worker is a pilot
    (no worker waits, and no simulation runs in the driver's memory).
    """
    if missing.size == 0:
        return _Used("none", 0, "every run was already saved")
    payload = plan.scenario.model_dump(mode="json")
    save = _Saver(plan, store, tracker)
    run = {"days": plan.days, "series": plan.series, "on_chunk": save}
    ray_certain = runner == "ray" or address is not None
    why = f"ray: a cluster was given ({address})" if address is not None else "ray: asked for"
    if ray_certain:
        backend: SerialBackend | RayBackend = RayBackend(address=address, workers=workers)
        rest = missing
    else:
        with SerialBackend() as serial:
            serial.run(payload, [[plan.unit(missing[0])]], **run)
        rest = missing[1:]
        if rest.size == 0:
            return _Used("serial", 1, "serial: a single run")
        backend, why = _backend(runner, workers, n_runs=int(rest.size), run_s=save.run_s or 0.0)
    with backend:
        lost = None
        if ray_certain:  # one run per worker first: the pilots, with no worker idle
            lost = backend.run(payload, [[plan.unit(i)] for i in rest[: backend.workers]], **run)
            rest = rest[backend.workers :]
        size = chunk_size(save.run_s or 1.0, save.rows_per_run, rest.size, backend.workers)
        chunks = plan_chunks(plan.unit, rest, size, backend.workers)
        lost = backend.run(payload, chunks, **run, lost=lost)
    if lost.units:
        raise SweepError(
            f"{len(lost.units):,} runs must finish, got their Ray tasks failing "
            f"{MAX_RETRIES + 1} times (last: {lost.last_error}); the other runs are saved "
            f"in {store.out} (rerun the same sweep to retry the missing ones)"
        )
    return _Used(backend.name, backend.workers, why)


@dataclass(frozen=True)
class _Used:
    """The back end that ran a sweep's runs, its workers, and why it was picked."""

    runner: str
    workers: int
    why: str


def _backend(runner: Runner, workers: int | None, *, n_runs: int, run_s: float
             ) -> tuple[SerialBackend | RayBackend, str]:  # fmt: skip
    """The back end of ``runner="auto"`` or ``"serial"`` (no address) after the pilot, and why."""
    if runner == "serial":
        return SerialBackend(), "serial: asked for"
    cluster = bool(os.environ.get("RAY_ADDRESS"))
    choice = choose_runner(n_runs=n_runs, run_s=run_s, workers=None if cluster else workers,
                           start_s=RAY_CONNECT_S if cluster else RAY_START_S)  # fmt: skip
    if choice.runner == "serial":
        return SerialBackend(), choice.reason
    if importlib.util.find_spec("ray") is None:
        warnings.warn(
            "Ray is not installed, so this sweep runs serially "
            "(install it with: pip install 'orgtwin[sweep]')",
            RuntimeWarning,
            stacklevel=4,
        )
        return SerialBackend(), "serial: Ray is not installed"
    return RayBackend(workers=workers), choice.reason


def _with_levers(runs: pl.DataFrame, plan: _Plan) -> pl.DataFrame:
    """A chunk's runs with the lever columns of their points, in the stored column order."""
    paths = [lever.path for lever in plan.levers]
    values = plan.design.select(pl.col(paths).gather(runs["point"]))
    return pl.concat([runs.select("point", "replicate", "seed"), values,
                      runs.select(*KPIS, "wall_s", "error")], how="horizontal")  # fmt: skip


def _check_choice(name: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise SweepError(f"{name} must be one of {listed}, got {value!r}")


def _check_setting(name: str, value: object, *, allow_none: bool = False) -> None:
    """``days``, ``seeds`` (per point) or ``seed`` within the scenario field's bounds."""
    if value is None and allow_none:
        return
    low, high = setting_bounds(name)
    whole_number(value, name=name, low=low, high=high, error=SweepError)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class SweepResult:
    """The results of a sweep, read from its folder.

    Attributes:
        out: the results folder.
        levers: the levers swept.
        design: one row per point: ``point`` and one column per lever path.
        manifest: what the sweep is (see :mod:`orgtwin.sweeps.store`).
        n_ran: runs this call ran (0 when every run was already saved).
        runner: back end that ran them: ``"serial"``, ``"ray"``, or ``"none"``.
        workers: workers that ran them.
        why: why that back end: asked for, or ``runner="auto"``'s estimates
            (:class:`~orgtwin.sweeps.choice.RunnerChoice`).
        wall_s: wall time of the call, s.
        quarantined: files the call's repair moved into ``out/quarantine/``.

    Example:
        >>> import tempfile
        >>> from orgtwin import sweep
        >>> with tempfile.TemporaryDirectory() as out:
        ...     _ = sweep("scenarios/baseline.yaml", {"services.*.spot_share": [0.0, 0.6]},
        ...               seeds=2, days=2, runner="serial", series="none", out=out)
        ...     result = SweepResult.load(out)
        ...     cost = result.runs.group_by("services.*.spot_share").agg(
        ...         pl.mean("infra_cost_usd")).sort("services.*.spot_share")
        >>> cost["infra_cost_usd"][1] < cost["infra_cost_usd"][0]  # spot replicas are cheaper
        True
    """

    out: Path
    levers: list[Lever]
    design: pl.DataFrame
    manifest: dict[str, Any]
    n_ran: int = 0
    runner: str = "none"
    workers: int = 0
    why: str = ""
    wall_s: float = 0.0
    quarantined: tuple[Path, ...] = ()

    @classmethod
    def load(cls, out: str | os.PathLike[str]) -> SweepResult:
        """Open the results folder of an earlier sweep (nothing is run).

        Raises:
            SweepError: ``out`` is not a sweep's results folder, or its design is bad
                (runs and series shards are checked when read).
        """
        manifest, design = SweepStore(out).load()
        return cls(Path(out), parse_levers(manifest["levers"]), design, manifest)

    @property
    def lever_paths(self) -> list[str]:
        """The lever paths, which name the lever columns of :attr:`runs`."""
        return [lever.path for lever in self.levers]

    @cached_property
    def runs(self) -> pl.DataFrame:
        """One row per run, sorted by point and replicate.

        Columns: ``point``, ``replicate``, ``seed``, one per lever path, every KPI of
        :data:`orgtwin.world.kpis.KPIS`, ``wall_s`` (run time, s) and ``error`` (null when
        the run succeeded; the KPIs are null when it did not).

        Raises:
            SweepError: a runs shard is bad (truncated, corrupt, of another sweep, or
                holding a run another shard holds too); the file is named.
        """
        return self._store().read_runs()

    @property
    def failed(self) -> pl.DataFrame:
        """The runs that raised: their point, lever values, seed and error."""
        return self.runs.filter(pl.col("error").is_not_null())

    def series(self) -> pl.LazyFrame:
        """A lazy scan of every run's series.

        Columns: ``point``, ``replicate``, ``day`` (daily mode) or ``tick`` (hourly),
        ``entity_type``, ``entity``, ``metric``, ``value``.

        Raises:
            SweepError: the sweep kept no series (``series="none"``), or a shard is bad
                (named).
        """
        return self._store().scan_series()

    def effects(self, *, kpis: Sequence[str] | None = None, confidence: float = 0.95
                ) -> pl.DataFrame:  # fmt: skip
        """Each lever's effect on each KPI (see :func:`orgtwin.sweeps.analysis.lever_effects`)."""
        from orgtwin.sweeps.analysis import lever_effects

        return lever_effects(self.runs, self.lever_paths, kpis=kpis, confidence=confidence)

    def importance(self, *, kpi: str = "availability_pct") -> pl.DataFrame:
        """How much each lever drives ``kpi`` (see :mod:`orgtwin.sweeps.analysis`)."""
        from orgtwin.sweeps.analysis import lever_importance

        return lever_importance(self.runs, self.lever_paths, kpi=kpi)

    def discover(self, condition: str | pl.Expr, **options: float) -> Discovery:
        """Lever ranges where ``condition`` holds (:func:`~orgtwin.sweeps.discovery.discover`)."""
        from orgtwin.sweeps.analysis import discover

        return discover(self.runs, self.lever_paths, condition=condition, **options)

    def report(self, *, condition: str | None = None) -> str:
        """Effects, importance and (with ``condition``) discovery, as plain text."""
        from orgtwin.sweeps.analysis import format_sweep_report

        return format_sweep_report(self.runs, self.lever_paths, condition=condition)

    def _store(self) -> SweepStore:
        return SweepStore(self.out).attach(self.manifest, self.design)
