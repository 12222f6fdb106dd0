"""Cached calls into the orgtwin library that run scenarios: every run, comparison,
verdict and sweep a page shows comes from here (what is computed from a telemetry
folder comes from :mod:`orgtwin.dashboard.telemetry_state`).

Keys are small and hashable: a scenario file's path (a string), ``stamp`` (the latest
modification time of the scenario files, so an edited scenario runs again), days,
seeds, base seed and a tuple of ``(lever path, value)`` pairs.

Two kinds of cache:

- ``st.cache_resource`` for run sets and loaded scenarios: large, immutable objects
  (frozen dataclasses of polars frames) shared by reference, so a rerun does not copy
  millions of rows. Nothing may mutate what these return.
- ``st.cache_data`` for what the pages display (KPI cards, bands, tables): small frames
  and dicts, copied per caller.

Exceptions are never cached: a scenario that fails validation fails again, with its
message, until it is fixed.

Runs are started in the worker pool before they are waited for (``start_exploration``,
``start_scenarios``) and kept by what they run (a scenario file, lever values, days,
seeds, seed): the base across lever changes, a scenario that is another's base or was
compared, a change equal to its base (``nothing_moved``) run once. Their first seeds are
queued first: ``exploration_estimate`` and ``comparison(..., estimate=True)`` give a first
estimate from them at once, and the full answer reuses them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

import orgtwin
from orgtwin import RunSet, Scenario, SweepResult, explore, load_scenario, runs, sweep, sweeps
from orgtwin.dashboard import folders

Values = tuple[tuple[str, Any], ...]
"""Lever values of a run: ``(("interventions[0].price_usd_month", 15.0), ...)``."""
WORKERS = max(1, min(os.cpu_count() or 1, 8))
"""Worker processes for the seeds of a run (the library's persistent pool)."""
RUN_CACHE = 16
"""Run sets kept in memory (lean: daily series, a few MB for 8 seeds × 90 days)."""

SERIES = (
    ("Active users", "segment", "active_users", "users"),
    ("Failed requests", "feature", "errors", "requests/day"),
    ("On-call pages", "team", "pages", "pages/day"),
    ("Infrastructure cost", "service", "cost_usd", "USD/day"),
)
"""Time series charted on the Explore page: title, entity type, metric, unit."""


@dataclass(frozen=True)
class ScenarioInfo:
    """What a page needs to know about a scenario before running it."""

    name: str
    description: str
    base: str | None
    days: int
    seeds: int
    seed: int
    controls: list[Any]


@dataclass(frozen=True)
class Request:
    """An Explore run asked for (kept in the session, so it is defined here, not in the page
    script that is re-executed on every rerun)."""

    path: str
    values: Values
    days: int
    seeds: int
    seed: int

    def key(self, stamp: int) -> tuple[Any, ...]:
        """The arguments of the cached calls in :mod:`orgtwin.dashboard.state`."""
        return (self.path, stamp, self.values, self.days, self.seeds, self.seed)


# --------------------------------------------------------------------------- scenarios


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Thread:
    """Start the library's worker pool in the background, once per server process."""
    thread = threading.Thread(
        target=runs.warm_pool, args=(WORKERS,), daemon=True, name="orgtwin-warm-pool"
    )
    thread.start()
    return thread


@st.cache_resource(max_entries=32, show_spinner=False)
def scenario(path: str, stamp: int) -> Scenario:
    """The scenario file, loaded and validated (raises ``ScenarioError`` with the field path).

    The file and every base it extends must lie in the scenarios folder.
    """
    return load_scenario(path, root=folders.scenarios_folder())


@st.cache_data(max_entries=64, show_spinner=False)
def scenario_info(path: str, stamp: int) -> ScenarioInfo:
    """Name, description, base, defaults and lever controls of a scenario file."""
    sc = scenario(path, stamp)
    return ScenarioInfo(
        name=sc.name,
        description=(sc.description or "").strip(),
        base=Path(sc.base).stem if sc.base else None,
        days=sc.days,
        seeds=sc.seeds,
        seed=sc.seed,
        controls=list(explore.controls(sc)),
    )


# --------------------------------------------------------------------------- explore


RunKey = tuple[str, int, Values, int, int, int]
"""A set of runs: scenario file (resolved), stamp, lever values, days, seeds, base seed."""
_STARTED: dict[RunKey, runs.PendingRuns] = {}
"""Runs started in the worker pool, by key, oldest first (at most ``4 × RUN_CACHE``)."""
_STARTED_LOCK = threading.Lock()
Wanted = tuple[RunKey, Callable[[], Scenario]]
"""Runs asked for: their key, and how to make the scenario should they need starting."""


def _key(path: str, stamp: int, values: Values, days: int, seeds: int, seed: int) -> RunKey:
    return (os.path.realpath(path), stamp, tuple(values), days, seeds, seed)


def _base_key(path: str, stamp: int, days: int, seeds: int, seed: int) -> RunKey:
    """The base's runs are those of the file it extends as it is (or of the file itself),
    shared with every scenario of that base and with the Compare page."""
    base = scenario(path, stamp).base
    return _key(base or path, stamp, (), days, seeds, seed)


def _start(wanted: list[Wanted]) -> list[runs.PendingRuns]:
    """The started runs of each key, starting the missing ones together (their first
    seeds queued first: :func:`orgtwin.explore.start_lean`). Keys share days, seeds, seed."""
    with _STARTED_LOCK:
        missing = {key: make for key, make in wanted if key not in _STARTED}
        if missing:
            for key, pending in _STARTED.items():  # runs no longer asked for wait
                if key not in dict(wanted):
                    pending.cancel_queued()
            _, _, _, days, seeds, seed = next(iter(missing))
            made = [make() for make in missing.values()]
            started = explore.start_lean(made, days=days, seeds=seeds, seed=seed, workers=WORKERS)
            _STARTED.update(zip(missing, started, strict=True))
        for key, _ in wanted:  # most recently used last
            _STARTED[key] = _STARTED.pop(key)
        while len(_STARTED) > 4 * RUN_CACHE:
            del _STARTED[next(iter(_STARTED))]
        return [_STARTED[key] for key, _ in wanted]


def _gather(key: RunKey, pending: runs.PendingRuns, seeds: int | None = None) -> RunSet:
    """The run set of the first ``seeds`` seeds (default: all), waiting for them; a run
    that failed is forgotten, so it runs again next time."""
    try:
        return pending.result() if seeds is None else pending.first(seeds)
    except Exception:
        with _STARTED_LOCK:
            if _STARTED.get(key) is pending:
                del _STARTED[key]
        raise


def _wanted_base(path: str, stamp: int, days: int, seeds: int, seed: int) -> Wanted:
    root = folders.scenarios_folder()
    return _base_key(path, stamp, days, seeds, seed), lambda: explore.base_scenario(path, root=root)


def _wanted_change(
    path: str, stamp: int, values: Values, days: int, seeds: int, seed: int
) -> Wanted:
    if nothing_moved(path, stamp, values):
        return _wanted_base(path, stamp, days, seeds, seed)
    key = _key(path, stamp, values, days, seeds, seed)
    return key, lambda: explore.apply_controls(scenario(path, stamp), dict(values))


def nothing_moved(path: str, stamp: int, values: Values) -> bool:
    """Whether the change is the base itself: no lever moved on a scenario that extends
    nothing. Its runs are the base's (nothing runs for it) and every delta is zero; a page
    says "nothing moved" instead of showing zeros."""
    return not values and scenario(path, stamp).base is None


def start_exploration(
    path: str, stamp: int, values: Values, days: int, seeds: int, seed: int
) -> None:
    """Start the base's and the change's runs in the worker pool, without waiting.

    Both sets' first :data:`orgtwin.explore.ESTIMATE_SEEDS` seeds are queued first, so
    :func:`exploration_estimate` answers soon; runs already started or done are reused
    (the base across lever changes, a change equal to the base not run at all).
    """
    _start([
        _wanted_base(path, stamp, days, seeds, seed),
        _wanted_change(path, stamp, values, days, seeds, seed),
    ])  # fmt: skip


def exploration_ready(
    path: str, stamp: int, values: Values, days: int, seeds: int, seed: int
) -> bool:
    """Whether every seed of base and change has run (:func:`exploration` will not wait
    for runs). Starts them if they were not."""
    wanted = [_wanted_base(path, stamp, days, seeds, seed),
              _wanted_change(path, stamp, values, days, seeds, seed)]  # fmt: skip
    return all(pending.done() for pending in _start(wanted))


@st.cache_resource(max_entries=RUN_CACHE, show_spinner=False)
def base_runs(path: str, stamp: int, days: int, seeds: int, seed: int) -> RunSet:
    """The runs of the scenario's base (what it is compared against)."""
    key, make = _wanted_base(path, stamp, days, seeds, seed)
    return _gather(key, *_start([(key, make)]))


@st.cache_resource(max_entries=RUN_CACHE, show_spinner=False)
def change_runs(path: str, stamp: int, values: Values, days: int, seeds: int, seed: int) -> RunSet:
    """The runs of the scenario with the lever values applied (the base's when
    :func:`nothing_moved`)."""
    if nothing_moved(path, stamp, values):
        return base_runs(path, stamp, days, seeds, seed)
    key, make = _wanted_change(path, stamp, values, days, seeds, seed)
    return _gather(key, *_start([(key, make)]))


@st.cache_resource(max_entries=RUN_CACHE, show_spinner=False)
def exploration(
    path: str, stamp: int, values: Values, days: int, seeds: int, seed: int
) -> explore.Exploration:
    """Base against change: the comparison of every KPI and the ripple (every seed)."""
    start_exploration(path, stamp, values, days, seeds, seed)
    base = base_runs(path, stamp, days, seeds, seed)
    change = change_runs(path, stamp, values, days, seeds, seed)
    return explore.explore_from(base, change, scenario(path, stamp), values=values)


@st.cache_resource(max_entries=RUN_CACHE, show_spinner=False)
def exploration_estimate(
    path: str, stamp: int, values: Values, days: int, seeds: int, seed: int
) -> explore.Exploration:
    """A first estimate of :func:`exploration` from the first
    :data:`orgtwin.explore.ESTIMATE_SEEDS` seeds of each (its ``seeds`` says how many),
    waiting for those only; the same as :func:`exploration` with that many seeds. The
    other seeds keep running: :func:`exploration` then reuses these.
    """
    n = min(seeds, explore.ESTIMATE_SEEDS)
    wanted = [_wanted_base(path, stamp, days, seeds, seed),
              _wanted_change(path, stamp, values, days, seeds, seed)]  # fmt: skip
    base, change = (_gather(key, pending, n)
                    for (key, _), pending in zip(wanted, _start(wanted), strict=True))  # fmt: skip
    return explore.explore_from(base, change, scenario(path, stamp), values=values)


def _found(
    path: str, stamp: int, values: Values, days: int, seeds: int, seed: int, estimate: bool
) -> explore.Exploration:
    how = exploration_estimate if estimate else exploration
    return how(path, stamp, values, days, seeds, seed)


@st.cache_data(max_entries=64, show_spinner=False)
def kpi_cards(
    path: str,
    stamp: int,
    values: Values,
    days: int,
    seeds: int,
    seed: int,
    estimate: bool = False,
) -> list[dict[str, Any]]:
    """The headline KPI cards (label, unit, base, change, delta, interval, text…); of the
    first estimate (:func:`exploration_estimate`) with ``estimate``."""
    found = _found(path, stamp, values, days, seeds, seed, estimate)
    return explore.kpi_cards(found.comparison, kpis=explore.HEADLINE_KPIS)


@st.cache_data(max_entries=256, show_spinner=False)
def bands(
    path: str,
    stamp: int,
    values: Values,
    days: int,
    seeds: int,
    seed: int,
    entity_type: str,
    metric: str,
    estimate: bool = False,
) -> pl.DataFrame:
    """Daily mean and 95% band over seeds of one metric, base and change stacked (``run``);
    of the first estimate with ``estimate``."""
    found = _found(path, stamp, values, days, seeds, seed, estimate)
    frames = []
    for name, runset in ((base_label(found), found.base), (change_label(found), found.change)):
        band = explore.series_bands(runset, entity_type=entity_type, metric=metric)
        frames.append(band.with_columns(run=pl.lit(name)))
    return pl.concat(frames, how="vertical_relaxed")


def base_label(found: explore.Exploration) -> str:
    """The base's name in legends: ``"baseline (base)"``."""
    return f"{found.base_name} (base)"


def change_label(found: explore.Exploration) -> str:
    """The change's name in legends: the scenario, ``"… as set"`` when levers were moved."""
    return f"{found.scenario_name} as set" if found.values else found.scenario_name


# --------------------------------------------------------------------------- compare


def _wanted_scenario(path: str, stamp: int, days: int, seeds: int, seed: int) -> Wanted:
    key = _key(path, stamp, (), days, seeds, seed)
    return key, lambda: scenario(path, stamp)


def start_scenarios(paths: tuple[str, ...], stamp: int, days: int, seeds: int, seed: int) -> None:
    """Start every scenario's runs in the worker pool, without waiting: the first
    :data:`orgtwin.explore.ESTIMATE_SEEDS` seeds of each first. Runs already started or
    done are reused (a scenario run as another's base on the Explore page too)."""
    _start([_wanted_scenario(p, stamp, days, seeds, seed) for p in paths])


def scenarios_ready(paths: tuple[str, ...], stamp: int, days: int, seeds: int, seed: int) -> bool:
    """Whether every seed of every scenario has run. Starts them if they were not."""
    wanted = [_wanted_scenario(p, stamp, days, seeds, seed) for p in paths]
    return all(pending.done() for pending in _start(wanted))


@st.cache_resource(max_entries=RUN_CACHE, show_spinner=False)
def scenario_runs(path: str, stamp: int, days: int, seeds: int, seed: int) -> RunSet:
    """The lean runs of a scenario as it is (KPIs from every hour, daily series)."""
    key, make = _wanted_scenario(path, stamp, days, seeds, seed)
    return _gather(key, *_start([(key, make)]))


@st.cache_data(max_entries=64, show_spinner=False)
def comparison(
    paths: tuple[str, ...],
    stamp: int,
    days: int,
    seeds: int,
    seed: int,
    kpis: tuple[str, ...],
    estimate: bool = False,
) -> pl.DataFrame:
    """Every scenario's KPI means with 95% intervals, and the change against the first.

    Args:
        estimate: a first estimate from the first :data:`orgtwin.explore.ESTIMATE_SEEDS`
            seeds of each scenario (the same table as with that many seeds), waiting for
            those only; the other seeds keep running.

    Returns:
        One row per (scenario, KPI): ``scenario``, ``kpi``, ``label``, ``unit``, ``mean``,
        ``ci_low``, ``ci_high``, ``delta``, ``delta_low``, ``delta_high``, ``significant``,
        ``better`` (the delta columns are null for the first scenario).
    """
    wanted = [_wanted_scenario(p, stamp, days, seeds, seed) for p in paths]
    started = _start(wanted)
    if estimate:
        n = min(seeds, explore.ESTIMATE_SEEDS)
        sets = [_gather(key, pending, n) for (key, _), pending in zip(wanted, started, strict=True)]
    else:
        sets = [scenario_runs(p, stamp, days, seeds, seed) for p in paths]
    return orgtwin.compare_scenarios(sets, kpis=list(kpis))


# --------------------------------------------------------------------------- sweeps


@st.cache_resource(max_entries=8, show_spinner=False)
def sweep_result(out: str, stamp: int) -> SweepResult:
    """A sweep's results folder, opened (runs read once)."""
    result = SweepResult.load(out)
    _ = result.runs
    return result


@st.cache_data(max_entries=64, show_spinner=False)
def sweep_runs(out: str, stamp: int) -> pl.DataFrame:
    """One row per run of the sweep: levers, KPIs, ``error``."""
    return sweep_result(out, stamp).runs


@st.cache_data(max_entries=64, show_spinner=False)
def sweep_cells(out: str, stamp: int, levers: tuple[str, ...], kpi: str) -> pl.DataFrame:
    """A KPI's mean over seeds and other levers, per pair of levels: ``x``, ``y``, ``value``."""
    runs = sweep_runs(out, stamp).filter(pl.col("error").is_null())
    y = pl.col(levers[1]) if len(levers) > 1 else pl.lit("all")
    return (
        runs.select(x=pl.col(levers[0]), y=y, value=pl.col(kpi))
        .filter(pl.col("value").is_finite())
        .group_by("x", "y")
        .agg(pl.col("value").mean())
        .sort("x", "y")
    )


@st.cache_data(max_entries=64, show_spinner=False)
def sweep_importance(out: str, stamp: int, kpi: str) -> pl.DataFrame:
    """Lever importance for one KPI (see :func:`orgtwin.sweeps.lever_importance`)."""
    result = sweep_result(out, stamp)
    return result.importance(kpi=kpi)


@st.cache_data(max_entries=64, show_spinner=False)
def sweep_effects(out: str, stamp: int) -> pl.DataFrame:
    """Each lever's effect on the main KPIs (see :func:`orgtwin.sweeps.lever_effects`)."""
    result = sweep_result(out, stamp)
    return result.effects()


@st.cache_data(max_entries=64, show_spinner=False)
def sweep_discovery(out: str, stamp: int, condition: str) -> tuple[str, list[str], pl.DataFrame]:
    """Where ``condition`` holds: its sentence, its rules and the peeling trajectory."""
    found = sweep_result(out, stamp).discover(condition)
    return found.describe(), found.rules(), found.trajectory


@st.cache_data(max_entries=64, show_spinner=False)
def sweep_size(levers: tuple[str, ...]) -> int:
    """Points of the grid the levers span (parsed only: nothing is run or loaded)."""
    return sweeps.grid_size(list(levers))


@st.cache_data(max_entries=64, show_spinner=False)
def check_sweep(path: str, stamp: int, levers: tuple[str, ...]) -> None:
    """Check every lever and level against the scenario (raises ``LeverError``)."""
    sweeps.check_levers(scenario(path, stamp), list(levers))


def launch_sweep(
    path: str,
    levers: tuple[str, ...],
    *,
    seeds: int,
    days: int,
    out: Path,
    progress: Callable[[int, int, float, float | None], None],
) -> SweepResult:
    """Run a grid sweep into ``out`` on this machine: serially, unless a local Ray, its
    start-up included, should finish sooner (``runner="auto"``)."""
    loaded = load_scenario(path, root=folders.scenarios_folder())
    return sweep(
        loaded, list(levers), seeds=seeds, days=days, out=out, runner="auto", progress=progress
    )


# --------------------------------------------------------------------------- learn


# --------------------------------------------------------------------------- watch


# --------------------------------------------------------------------------- validate


# --------------------------------------------------------------- explore: verdict, questions


@st.cache_data(max_entries=64, show_spinner=False)
def verdict(
    path: str, stamp: int, values: Values, days: int, seeds: int, seed: int, horizon_days: int
) -> str:
    """The paragraph answering the scenario's question (:func:`orgtwin.explore.verdict`);
    beyond the run's days, the margin is projected to ``horizon_days`` (labelled so)."""
    found = exploration(path, stamp, values, days, seeds, seed)
    return explore.verdict(
        found.base, found.change, scenario(path, stamp), horizon_days=horizon_days
    )


@st.cache_data(max_entries=16, show_spinner=False)
def scenario_questions(folder: str, stamp: int) -> dict[str, str]:
    """Each scenario file's ``question`` by file name (``""`` for a file without one, or
    one that does not load: its page says why)."""
    found = {}
    for name in folders.list_scenarios(Path(folder)):
        try:
            found[name] = scenario(folders.scenario_path(Path(folder), name), stamp).question
        except orgtwin.errors.OrgTwinError:
            found[name] = ""
    return found


@st.cache_data(max_entries=16, show_spinner=False)
def report_html(
    path: str, stamp: int, values: Values, days: int, seeds: int, seed: int, horizon_days: int
) -> str:
    """The exploration as one self-contained HTML page (:mod:`orgtwin.explore.report`):
    verdict, KPI cards, the ripple chain, dated series charts, provenance."""
    return _report(explore.html_report, path, stamp, values, days, seeds, seed, horizon_days)


@st.cache_data(max_entries=16, show_spinner=False)
def report_pdf(
    path: str, stamp: int, values: Values, days: int, seeds: int, seed: int, horizon_days: int
) -> bytes:
    """The same report as a PDF (:mod:`orgtwin.explore.pdf`), for print."""
    return _report(explore.pdf_report, path, stamp, values, days, seeds, seed, horizon_days)


def _report(make: Callable[..., Any], path: str, stamp: int, values: Values, days: int,
            seeds: int, seed: int, horizon_days: int) -> Any:  # fmt: skip
    key = (path, stamp, values, days, seeds, seed)
    series = {title: (bands(*key, kind, metric), unit) for title, kind, metric, unit in SERIES}
    return make(
        exploration(*key),
        path,
        verdict=verdict(*key, horizon_days),
        seed=seed,
        series=series,
        start=scenario(path, stamp).start,
    )
