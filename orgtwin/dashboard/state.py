"""Cached calls into the orgtwin library: every computation a page shows comes from here.

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

import dataclasses
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import streamlit as st
from scipy import stats

import orgtwin
from orgtwin import RunSet, Scenario, SweepResult, explore, load_scenario, runs, sweep, sweeps
from orgtwin.dashboard import folders
from orgtwin.errors import TelemetryError
from orgtwin.fidelity import (
    Replay,
    Scorecard,
    persistence,
    read_scorecard,
    replay,
    score,
    scorecard_of,
)
from orgtwin.learn import LearnReport, latency_learner, write_scenario
from orgtwin.units import HOURS_PER_WEEK

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
    """The change's name in legends: the scenario, marked when its levers were moved."""
    return f"{found.scenario_name} (levers moved)" if found.values else found.scenario_name


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


@st.cache_resource(max_entries=8, show_spinner=False)
def learned(
    telemetry: str,
    stamp: int,
    mapping: str | None,
    mapping_stamp: int,
    base: str,
    base_stamp: int,
    name: str,
    drop_bad_rows: bool = False,
) -> tuple[Scenario, LearnReport]:
    """A twin learned from a telemetry folder over a base scenario, and its fit report.

    The stamps (modification times of the folder's files, the mapping and the scenario
    files) make new telemetry learn again. Paths in a ``TelemetryError`` are shown
    relative to the telemetry root.

    Args:
        drop_bad_rows: drop the rows that fail validation (the report counts them per
            reason) instead of refusing the folder.
    """
    loaded = load_scenario(base, root=folders.scenarios_folder())
    with _paths_relative_to_telemetry_root():
        return orgtwin.learn.learn(
            telemetry, base=loaded, mapping=mapping, drop_bad_rows=drop_bad_rows, name=name
        )


@contextmanager
def _paths_relative_to_telemetry_root() -> Iterator[None]:
    """Re-raise a ``TelemetryError`` with its paths relative to the telemetry root."""
    root = folders.telemetry_folder()
    try:
        yield
    except TelemetryError as exc:
        raise TelemetryError(
            _relative(str(exc.args[0]), root), [_relative(p, root) for p in exc.problems]
        ) from None


def _relative(text: str, root: Path) -> str:
    return text.replace(f"{root}{os.sep}", "").replace(str(root), root.name)


def save_twin(
    path: Path, twin: Scenario, report: LearnReport, *, telemetry: str, base: str
) -> tuple[Path, Path]:
    """Write the twin to ``path`` (claimed already: an empty new file) and its report beside
    it as ``<name>.report.md`` and ``<name>.report.json``, never overwriting either.

    The report names the telemetry folder and base scenario by name, not by path.

    Raises:
        FolderError: a report file of that name exists already.
    """
    shown = dataclasses.replace(report, telemetry=telemetry, base=base)
    stem = path.name.removesuffix(path.suffix)
    written = []
    try:
        for suffix, text in (
            (".report.md", shown.to_markdown()),
            (".report.json", shown.to_json()),
        ):
            out = folders.claim_file(path.parent, f"{stem}{suffix}")
            written.append(out)
            out.write_text(text, encoding="utf-8")
        write_scenario(path, twin, shown)
    except BaseException:
        for out in (path, *written):
            out.unlink(missing_ok=True)
        raise
    return written[0], written[1]


@st.cache_data(max_entries=32, show_spinner=False)
def latency_fit(
    telemetry: str,
    stamp: int,
    mapping: str | None,
    mapping_stamp: int,
    base: str,
    base_stamp: int,
    name: str,
    drop_bad_rows: bool,
    service: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A service's learned latency curve against the hours it was learned from.

    Returns:
        The observed hours (``utilisation``: the CPU share or the load over the base's
        capacity, whichever the curve was learned against; ``latency_p50_ms``: the
        service's own median latency, as the learner saw it) and the curve
        ``base_ms · (1 + queueing_factor · u/(1 − u))`` over the same utilisation range;
        both empty where the report has no latency fit of ``service``.
    """
    _, report = learned(
        telemetry, stamp, mapping, mapping_stamp, base, base_stamp, name, drop_bad_rows
    )
    found = report.estimates()
    key = ("latency", f"service {service}")
    if (*key, "base_ms") not in found:
        empty = pl.DataFrame(schema={"utilisation": pl.Float64, "latency_p50_ms": pl.Float64})
        return empty, empty
    loaded = load_scenario(base, root=folders.scenarios_folder())
    (requests,) = _tables(telemetry, mapping, drop_bad_rows, "requests")
    assert requests is not None  # a latency fit means a requests table
    own = orgtwin.learn.own_latency(requests, loaded).filter(pl.col("service") == service)
    learner = latency_learner(loaded).fit(own)  # one service: its utilisation, as learned
    points = pl.DataFrame(
        {
            "utilisation": learner.utilisation_of(service, own),
            "latency_p50_ms": own["latency_p50_ms"],
        }
    ).cast(pl.Float64)
    base_ms, q = found[(*key, "base_ms")].value, found[(*key, "queueing_factor")].value
    top = min(max(points["utilisation"].max() or 0.5, 0.05), 0.95)
    u = pl.Series("utilisation", [top * i / 50 for i in range(51)], dtype=pl.Float64)
    curve = pl.DataFrame({"utilisation": u}).with_columns(
        latency_p50_ms=base_ms * (1 + q * pl.col("utilisation") / (1 - pl.col("utilisation")))
    )
    return points, curve


def _tables(
    telemetry: str, mapping: str | None, drop_bad_rows: bool, *names: str
) -> list[pl.DataFrame | None]:
    """Telemetry tables, read as the learner read them (None for each the folder lacks)."""
    found = orgtwin.read_telemetry(telemetry, mapping=mapping, drop_bad_rows=drop_bad_rows)
    return [found.tables[n].collect() if n in found.tables else None for n in names]


@st.cache_data(max_entries=32, show_spinner=False)
def restore_fit(
    telemetry: str,
    stamp: int,
    mapping: str | None,
    mapping_stamp: int,
    base: str,
    base_stamp: int,
    name: str,
    drop_bad_rows: bool,
    team: str,
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """A team's restore times against the distribution the twin learned for them.

    The restore times are the learner's: ``resolved − detected`` of the team's incidents
    caused by a deploy (the others end when their cause does), in whole hours (at least
    1, as the simulator counts them). Incidents still open at the end count as lasting
    at least until then, as the learner takes them: the observed share restored within
    ``h`` hours is the Kaplan–Meier estimate (the plain empirical CDF when none is open).

    Returns:
        The observed restores (``hours``, ``share``: share restored within ``hours``), one
        row per restored incident, sorted; the learned CDF (``hours``, ``share``) of the
        log-normal with the learned ``restore_median_hours`` and ``restore_sigma`` (a
        mixture over the incidents' deploy batches where ``batch_coef`` was learned too);
        and the number of incidents still open. Both frames are empty where the report has
        no restore fit of ``team``.
    """
    _, report = learned(
        telemetry, stamp, mapping, mapping_stamp, base, base_stamp, name, drop_bad_rows
    )
    found = report.estimates()
    key = ("incident_timing", f"team {team}")
    empty = pl.DataFrame(schema={"hours": pl.Float64, "share": pl.Float64})
    if (*key, "restore_median_hours") not in found:
        return empty, empty, 0
    incidents, requests, deploys = _tables(
        telemetry, mapping, drop_bad_rows, "incidents", "requests", "deploys"
    )
    assert incidents is not None  # a restore fit means an incidents table
    mine = incidents.filter((pl.col("team") == team) & (pl.col("cause") != "chaos"))
    end = _incident_end(requests, mine)
    deploy = mine.filter(pl.col("cause") == "deploy").sort("started")
    hours = ((pl.col("resolved") - pl.col("detected")).dt.total_seconds() / 3600.0).ceil()
    open_for = (pl.lit(end, dtype=pl.Datetime("us")) - pl.col("detected")).dt.total_seconds()
    durations = deploy.select(
        hours=pl.max_horizontal(hours, pl.lit(1.0)).cast(pl.Float64),
        restored=pl.col("resolved").is_not_null() & pl.col("detected").is_not_null(),
        censored_at=(open_for / 3600.0 - 1.0).fill_null(0.0).clip(lower_bound=0.0),
    )
    restored = durations.filter("restored")
    times = np.sort(restored["hours"].to_numpy())
    share = kaplan_meier_cdf(times, durations.filter(~pl.col("restored"))["censored_at"].to_numpy())
    observed = pl.DataFrame({"hours": times, "share": share}, schema=empty.schema)

    median = found[(*key, "restore_median_hours")].value
    sigma = max(found[(*key, "restore_sigma")].value, 1e-6)
    scales = np.array([median])
    batch = found.get((*key, "batch_coef"))
    if batch is not None and batch.source != "prior" and batch.value > 0:
        sizes = _failed_batches(deploys, deploy)
        if sizes.size:
            scales = median * sizes**batch.value
    top = max(float(times.max()) if times.size else 0.0, float(np.max(scales)) * 4.0, 2.0)
    grid = np.linspace(0.0, top, 121)
    cdf = stats.lognorm.cdf(grid[:, None], s=sigma, scale=scales[None, :]).mean(axis=1)
    curve = pl.DataFrame({"hours": grid, "share": cdf}, schema=empty.schema)
    return observed, curve, durations.height - restored.height


def kaplan_meier_cdf(times: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """The share of durations over at each of ``times`` (sorted), with ``censored`` ones
    known only to last longer than their value (Kaplan–Meier, as ``1 − survival``).

    Without censored durations it is the empirical CDF: ``i/n`` at the i-th time (ties
    take the share after the last of them).
    """
    survival, out = 1.0, np.empty(times.size)
    for i, t in enumerate(times):
        if i and t == times[i - 1]:
            out[i] = out[i - 1]
            continue
        at_risk = np.count_nonzero(times >= t) + np.count_nonzero(censored >= t)
        survival *= 1.0 - np.count_nonzero(times == t) / at_risk
        out[i] = 1.0 - survival
    for i in range(times.size - 2, -1, -1):  # ties: the share after the last of them
        if times[i] == times[i + 1]:
            out[i] = out[i + 1]
    return out


def _incident_end(requests: pl.DataFrame | None, incidents: pl.DataFrame) -> Any:
    """The end of the observed window, as the learner takes it: the hour after the last of
    the requests where there are requests, else the latest time of the incidents."""
    if requests is not None and requests["time"].drop_nulls().len():
        return requests["time"].max() + timedelta(hours=1)
    times = [incidents[c].max() for c in ("started", "detected", "resolved")]
    return max((t for t in times if t is not None), default=None)


def _failed_batches(deploys: pl.DataFrame | None, deploy_incidents: pl.DataFrame) -> np.ndarray:
    """Batch size of the latest failed deploy of each incident's service before it started
    (1 where none), as the learner pairs them; empty without a ``deploys`` table."""
    if deploys is None:
        return np.empty(0)
    failed = (
        deploys.filter(pl.col("failed"))
        .select("service", "batch_size", started=pl.col("time"))
        .sort("started")
    )
    joined = deploy_incidents.sort("started").join_asof(
        failed, on="started", by="service", strategy="backward", check_sortedness=False
    )
    return np.maximum(joined["batch_size"].fill_null(1).to_numpy().astype(float), 1.0)


@st.cache_data(max_entries=32, show_spinner=False)
def demand_fit(
    telemetry: str,
    stamp: int,
    mapping: str | None,
    mapping_stamp: int,
    base: str,
    base_stamp: int,
    name: str,
    drop_bad_rows: bool,
    segment: str,
) -> tuple[pl.DataFrame, pl.DataFrame, bool]:
    """A segment's learned hour-of-week profile against the arrivals it was learned from.

    The observed arrivals are those whose ``key`` is the segment where any row has it,
    else all of them; summed per hour (hours without a row count as 0), averaged per hour
    of the week (0 = Monday 00:00) in the segment's local time (``utc_offset_hours`` added
    to the UTC times, as the learner took them) and scaled to mean 1.

    Returns:
        The observed profile and the learned twin's (``hour_of_week``, ``rate``: relative
        rate, mean 1), the learned one for all 168 hours, the observed one for the hours
        the arrivals cover (both empty where the twin has no such segment), and whether
        the observed arrivals are the segment's own (its key) rather than all of them.
    """
    twin, _ = learned(
        telemetry, stamp, mapping, mapping_stamp, base, base_stamp, name, drop_bad_rows
    )
    empty = pl.DataFrame(schema={"hour_of_week": pl.Int64, "rate": pl.Float64})
    if segment not in twin.segments:
        return empty, empty, False
    spec = twin.segments[segment]
    week = np.arange(HOURS_PER_WEEK)
    profile = orgtwin.learn.weekly_profile(spec.demand_profile)
    curve = pl.DataFrame({"hour_of_week": week, "rate": profile}, schema=empty.schema)
    (arrivals,) = _tables(telemetry, mapping, drop_bad_rows, "arrivals")
    if arrivals is None or not arrivals.height:
        return empty, curve, False
    own = "key" in arrivals.columns and bool((arrivals["key"] == segment).any())
    if own:
        arrivals = arrivals.filter(pl.col("key") == segment)
    shift = timedelta(hours=spec.utc_offset_hours)
    counted = arrivals if "count" in arrivals.columns else arrivals.with_columns(count=1.0)
    hourly = counted.group_by(pl.col("time").dt.truncate("1h")).agg(
        pl.col("count").cast(pl.Float64).sum()
    )
    grid = pl.datetime_range(
        hourly["time"].min(), hourly["time"].max(), "1h", eager=True, time_unit="us"
    )
    local = pl.col("time") + shift
    observed = (
        pl.DataFrame({"time": grid.cast(hourly["time"].dtype)})
        .join(hourly, on="time", how="left")
        .with_columns(pl.col("count").fill_null(0.0))
        .group_by(
            hour_of_week=(local.dt.weekday().cast(pl.Int64) - 1) * 24
            + local.dt.hour().cast(pl.Int64)
        )
        .agg(rate=pl.col("count").mean())
        .sort("hour_of_week")
    )
    mean = observed["rate"].mean() or 1.0
    observed = observed.with_columns(pl.col("rate") / (mean if mean > 0 else 1.0))
    return observed.cast(empty.schema), curve, own  # type: ignore[arg-type]


# --------------------------------------------------------------------------- watch

WATCH_LEARNERS = {
    "latency": "latency",
    "demand": "demand",
    "change_failure": "change_failure",
    "churn": "churn",
}
"""The learner (:func:`orgtwin.learn.learn`'s ``only``) that re-learns each watched
behaviour; ``errors`` has none (the twin's error rates are not learned from telemetry)."""
WATCH_TIME_COLUMNS = ("time", "day", "started")
"""Columns a telemetry table may give its times in, for the span of a folder."""


@st.cache_data(max_entries=32, show_spinner=False)
def telemetry_span(telemetry: str, stamp: int) -> tuple[datetime, datetime] | None:
    """The first and last time in a telemetry folder: the requests' hours where there are
    requests, else every table's first time column; None where no table has a time."""
    tel = orgtwin.read_telemetry(telemetry)
    names = ["requests"] if "requests" in tel.tables else sorted(tel.tables)
    firsts, lasts = [], []
    for name in names:
        frame = tel.tables[name]
        columns = frame.collect_schema().names()
        column = next((c for c in WATCH_TIME_COLUMNS if c in columns), None)
        if column is None:
            continue
        when = pl.col(column).cast(pl.Datetime("us"))
        span = frame.select(first=when.min(), last=when.max()).collect()
        if span["first"][0] is not None:
            firsts.append(span["first"][0])
            lasts.append(span["last"][0])
    if not firsts:
        return None
    return min(firsts), max(lasts)


@st.cache_resource(max_entries=8, show_spinner=False)
def watched(
    telemetry: str,
    stamp: int,
    scenario_path: str,
    scenario_stamp: int,
    reference: tuple[datetime, datetime] | None,
    alarms_per_week: float,
) -> Any:
    """The drift watch of a telemetry folder against a scenario's twin
    (:func:`orgtwin.watch`): its alarms, residual streams and thresholds.

    The stamps (modification times of the folder's files and of the scenario files) make
    new telemetry or an edited twin watched again. Nothing may mutate what it returns.
    """
    twin = load_scenario(scenario_path, root=folders.scenarios_folder())
    return orgtwin.watch(twin, telemetry, reference=reference, alarms_per_week=alarms_per_week)


@st.cache_data(max_entries=32, show_spinner=False)
def relearned(
    telemetry: str,
    stamp: int,
    scenario_path: str,
    scenario_stamp: int,
    since: datetime,
    behaviour: str,
    entity: str,
) -> tuple[pl.DataFrame, list[str]]:
    """One entity's parameters of a watched behaviour, re-learned from ``since`` on, against
    the scenario's values. Nothing is saved.

    Args:
        behaviour: the watched behaviour (a key of :data:`WATCH_LEARNERS`).
        entity: the service, segment or team, by name (``api``).

    Returns:
        One row per parameter: ``parameter``, ``before`` (the scenario's value; null where
        it has none as a number), ``after``, ``low``, ``high`` (the 95% interval; NaN where
        none), ``unit``, ``source`` (learned, shrunk or prior) and ``n``; and the warnings
        of the learning.

    Raises:
        KeyError: ``behaviour`` has no learner.
    """
    only = WATCH_LEARNERS[behaviour]
    twin = load_scenario(scenario_path, root=folders.scenarios_folder())
    _, report = orgtwin.learn.learn(telemetry, base=twin, since=since, only=[only])
    fits = [fit for fit in report.fits if fit.entity.split(" ", 1)[-1] == entity]
    if not fits:  # one fit for every entity (a demand profile learned from all arrivals)
        fits = [fit for fit in report.fits if not fit.entity]
    values = twin.model_dump()
    rows = []
    for fit in fits:
        for e in fit.estimates:
            path = _applied_path(report.applied, entity, e.name)
            before = _value_at(values, path) if path else (e.value if e.source == "prior" else None)
            rows.append(
                {"parameter": e.name, "before": before, "after": e.value, "low": e.low,
                 "high": e.high, "unit": e.unit, "source": e.source, "n": e.n}
            )  # fmt: skip
    schema = {"parameter": pl.String, "before": pl.Float64, "after": pl.Float64,
              "low": pl.Float64, "high": pl.Float64, "unit": pl.String,
              "source": pl.String, "n": pl.Int64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema), list(report.warnings)


def _applied_path(applied: dict[str, Any], entity: str, name: str) -> str | None:
    """The scenario path a re-learned estimate was written at (``services.api.latency.
    base_ms``), or None where it was not written (a prior kept)."""
    for path in applied:
        parts = path.split(".")
        if parts[-1] == name and (not entity or entity in parts[:-1]):
            return path
    return None


def _value_at(values: dict[str, Any], path: str) -> float | None:
    """The number at a dotted path of a scenario's values, or None where there is none."""
    here: Any = values
    for part in path.split("."):
        if not isinstance(here, dict) or part not in here:
            return None
        here = here[part]
    if isinstance(here, bool) or not isinstance(here, int | float):
        return None
    return float(here)


# --------------------------------------------------------------------------- validate

SCORECARD_JSON = "scorecard.json"
"""The file of a saved scorecard whose modification time keys :func:`saved_scorecard`."""


@st.cache_resource(max_entries=8, show_spinner=False)
def replayed(
    telemetry: str,
    stamp: int,
    scenario_path: str,
    scenario_stamp: int,
    window: tuple[datetime, datetime],
    seeds: int,
    seed: int,
) -> Replay:
    """The twin replayed over ``window`` of a telemetry folder, fed the inputs production
    was fed there (:func:`orgtwin.fidelity.replay`).

    The stamps (modification times of the folder's files and of the scenario files) make
    new telemetry or an edited twin replay again. Paths in a ``TelemetryError`` are shown
    relative to the telemetry root. Nothing may mutate what it returns.
    """
    twin = load_scenario(scenario_path, root=folders.scenarios_folder())
    with _paths_relative_to_telemetry_root():
        return replay(twin, telemetry, start=window[0], end=window[1], seeds=seeds, seed=seed)


@st.cache_resource(max_entries=8, show_spinner=False)
def validation(
    telemetry: str,
    stamp: int,
    scenario_path: str,
    scenario_stamp: int,
    window: tuple[datetime, datetime],
    seeds: int,
    seed: int,
) -> Scorecard:
    """The scorecard of :func:`replayed` (:func:`orgtwin.fidelity.score`): what
    ``orgtwin validate`` computes for the same twin, window, seeds and base seed."""
    return score(replayed(telemetry, stamp, scenario_path, scenario_stamp, window, seeds, seed))


@st.cache_data(max_entries=64, show_spinner=False)
def replay_series(
    telemetry: str,
    stamp: int,
    scenario_path: str,
    scenario_stamp: int,
    window: tuple[datetime, datetime],
    seeds: int,
    seed: int,
    service: str,
    kpi: str,
) -> pl.DataFrame:
    """A service's hourly KPI over the window: production, the replayed twin (mean over
    seeds, the band their range) and persistence (:func:`orgtwin.fidelity.persistence`).

    Args:
        service: the service (``api``).
        kpi: a column of the hourly ``requests`` table (``requests``, ``errors``,
            ``latency_p50_ms``, ``latency_p95_ms``).

    Returns:
        Columns ``day`` (days since the window's start), ``mean``, ``low``, ``high`` and
        ``run`` (``production``, ``the twin (N seeds)``, ``persistence (a week before)``…),
        for :func:`orgtwin.dashboard.charts.band_chart`; empty where production has no
        such series.
    """
    ran = replayed(telemetry, stamp, scenario_path, scenario_stamp, window, seeds, seed)
    start = window[0]
    empty = pl.DataFrame(schema=dict.fromkeys(("day", "mean", "low", "high"), pl.Float64))
    empty = empty.with_columns(run=pl.lit(None, dtype=pl.String))
    observed = ran.observed.get("requests")
    if observed is None or kpi not in observed.columns:
        return empty
    mine = pl.col("service") == service
    day = ((pl.col("time") - pl.lit(start)).dt.total_seconds() / 86400.0).alias("day")
    seen = observed.filter(mine).select("time", value=pl.col(kpi).cast(pl.Float64))
    if seen.height == 0:
        return empty
    runs_ = pl.concat([t["requests"].filter(mine).select("time", kpi) for t in ran.simulated])
    twin = runs_.group_by("time").agg(
        mean=pl.col(kpi).mean(), low=pl.col(kpi).min(), high=pl.col(kpi).max()
    )
    predicted, how = persistence(ran, observed, [kpi])
    earlier = predicted.filter(mine).select("time", value=pl.col(kpi).cast(pl.Float64))
    earlier = earlier.join(seen.select("time"), on="time", how="semi")
    n = len(ran.simulated)
    twin_name = f"the twin ({n} {'seed' if n == 1 else 'seeds'})"
    persisted = f"persistence ({how or 'no earlier telemetry'})"
    frames = [
        seen.select("time", mean="value", low="value", high="value", run=pl.lit("production")),
        twin.select("time", "mean", "low", "high", run=pl.lit(twin_name)),
        earlier.select("time", mean="value", low="value", high="value", run=pl.lit(persisted)),
    ]
    floats = dict.fromkeys(("mean", "low", "high"), pl.Float64)
    out = pl.concat([f.cast(floats).sort("time") for f in frames])  # production first
    return out.select(day, "mean", "low", "high", "run")


def saved_scorecard(scenario_path: str, name: str) -> Scorecard | None:
    """The scorecard saved beside a scenario file for the scenario called ``name``
    (:func:`orgtwin.fidelity.scorecard_of`), or None: read again when it is saved anew."""
    saved = Path(scenario_path).parent / SCORECARD_JSON
    return _saved_scorecard(scenario_path, name, folders.tree_stamp(saved))


@st.cache_data(max_entries=64, show_spinner=False)
def _saved_scorecard(scenario_path: str, name: str, stamp: int) -> Scorecard | None:
    return scorecard_of(scenario_path, name=name) if stamp else None


def save_scorecard(card: Scorecard, scenario_path: str) -> tuple[dict[str, Path], str | None]:
    """Save ``card`` beside its scenario file (each file whole or not at all).

    A folder holds one scorecard: one saved there for another scenario is replaced.

    Returns:
        The files written by name, and the name of the scenario whose scorecard was
        replaced (None where there was none or it was this scenario's).

    Raises:
        FolderError: the scenario file is not in the scenarios folder.
    """
    path = Path(folders.scenario_path(folders.scenarios_folder(), Path(scenario_path).name))
    before = read_scorecard(path.parent)
    replaced = before.scenario if before is not None and before.scenario != card.scenario else None
    return card.save(path.parent), replaced


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
    key = (path, stamp, values, days, seeds, seed)
    series = {title: (bands(*key, kind, metric), unit) for title, kind, metric, unit in SERIES}
    return explore.html_report(
        exploration(*key),
        path,
        verdict=verdict(*key, horizon_days),
        seed=seed,
        series=series,
        start=scenario(path, stamp).start,
    )
