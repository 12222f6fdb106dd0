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
"""

from __future__ import annotations

import dataclasses
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
from orgtwin.errors import TelemetryError
from orgtwin.learn import LearnReport, write_scenario

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


@st.cache_resource(max_entries=RUN_CACHE, show_spinner=False)
def base_runs(path: str, stamp: int, days: int, seeds: int, seed: int) -> RunSet:
    """The runs of the scenario's base (what it is compared against)."""
    return explore.run_base(
        path, days=days, seeds=seeds, seed=seed, workers=WORKERS, root=folders.scenarios_folder()
    )


@st.cache_resource(max_entries=RUN_CACHE, show_spinner=False)
def change_runs(path: str, stamp: int, values: Values, days: int, seeds: int, seed: int) -> RunSet:
    """The runs of the scenario with the lever values applied."""
    return explore.run_change(
        path, values, days=days, seeds=seeds, seed=seed, workers=WORKERS,
        root=folders.scenarios_folder(),
    )  # fmt: skip


@st.cache_resource(max_entries=RUN_CACHE, show_spinner=False)
def exploration(
    path: str, stamp: int, values: Values, days: int, seeds: int, seed: int
) -> explore.Exploration:
    """Base against change: the comparison of every KPI and the ripple."""
    base = base_runs(path, stamp, days, seeds, seed)
    change = change_runs(path, stamp, values, days, seeds, seed)
    return explore.explore_from(base, change, scenario(path, stamp), values=values)


@st.cache_data(max_entries=64, show_spinner=False)
def kpi_cards(
    path: str, stamp: int, values: Values, days: int, seeds: int, seed: int
) -> list[dict[str, Any]]:
    """The headline KPI cards (label, unit, base, change, delta, interval, text…)."""
    found = exploration(path, stamp, values, days, seeds, seed)
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
) -> pl.DataFrame:
    """Daily mean and 95% band over seeds of one metric, base and change stacked (``run``)."""
    found = exploration(path, stamp, values, days, seeds, seed)
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


@st.cache_resource(max_entries=RUN_CACHE, show_spinner=False)
def scenario_runs(path: str, stamp: int, days: int, seeds: int, seed: int) -> RunSet:
    """The lean runs of a scenario as it is (KPIs from every hour, daily series)."""
    return explore.run_change(
        path, (), days=days, seeds=seeds, seed=seed, workers=WORKERS,
        root=folders.scenarios_folder(),
    )  # fmt: skip


@st.cache_data(max_entries=64, show_spinner=False)
def comparison(
    paths: tuple[str, ...], stamp: int, days: int, seeds: int, seed: int, kpis: tuple[str, ...]
) -> pl.DataFrame:
    """Every scenario's KPI means with 95% intervals, and the change against the first.

    Returns:
        One row per (scenario, KPI): ``scenario``, ``kpi``, ``label``, ``unit``, ``mean``,
        ``ci_low``, ``ci_high``, ``delta``, ``delta_low``, ``delta_high``, ``significant``,
        ``better`` (the delta columns are null for the first scenario).
    """
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
    """Run a grid sweep into ``out`` on this machine (serial when small, else local Ray)."""
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
) -> tuple[Scenario, LearnReport]:
    """A twin learned from a telemetry folder over a base scenario, and its fit report.

    The stamps (modification times of the folder's files, the mapping and the scenario
    files) make new telemetry learn again. Paths in a ``TelemetryError`` are shown
    relative to the telemetry root.
    """
    root = folders.telemetry_folder()
    loaded = load_scenario(base, root=folders.scenarios_folder())
    try:
        return orgtwin.learn.learn(telemetry, base=loaded, mapping=mapping, name=name)
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
    service: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A service's learned latency curve against the hours it was learned from.

    Returns:
        The observed hours (``cpu``, ``latency_p50_ms``: the service's own median latency,
        as the learner saw it) and the curve ``base_ms · (1 + queueing_factor · u/(1 − u))``
        over the same utilisation range (``cpu``, ``latency_p50_ms``); both empty where
        the report has no latency fit of ``service``.
    """
    _, report = learned(telemetry, stamp, mapping, mapping_stamp, base, base_stamp, name)
    found = report.estimates()
    key = ("latency", f"service {service}")
    if (*key, "base_ms") not in found:
        empty = pl.DataFrame(schema={"cpu": pl.Float64, "latency_p50_ms": pl.Float64})
        return empty, empty
    loaded = load_scenario(base, root=folders.scenarios_folder())
    requests = orgtwin.read_telemetry(telemetry, mapping=mapping).tables["requests"].collect()
    points = (
        orgtwin.learn.own_latency(requests, loaded)
        .filter(pl.col("service") == service)
        .select(pl.col("cpu").cast(pl.Float64), pl.col("latency_p50_ms").cast(pl.Float64))
    )
    base_ms, q = found[(*key, "base_ms")].value, found[(*key, "queueing_factor")].value
    top = min(max(points["cpu"].max() or 0.5, 0.05), 0.95)
    u = pl.Series("cpu", [top * i / 50 for i in range(51)], dtype=pl.Float64)
    curve = pl.DataFrame({"cpu": u}).with_columns(
        latency_p50_ms=base_ms * (1 + q * pl.col("cpu") / (1 - pl.col("cpu")))
    )
    return points, curve
