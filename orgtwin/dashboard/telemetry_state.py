"""Cached calls that read a telemetry folder: learning a twin, watching it drift, and
replaying it against production (the Learn, Watch and Validate pages, and the trust
badge the scenario pages show).

The keys and caches follow :mod:`orgtwin.dashboard.state` (which runs scenarios): the
paths as strings, and ``stamp`` arguments (modification times of the telemetry folder,
the mapping and the scenario files) so that new telemetry or an edited twin is read
again. Paths in a ``TelemetryError`` are shown relative to the telemetry root.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import streamlit as st
from scipy import stats

import orgtwin
from orgtwin import Scenario, load_scenario
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


WATCH_LEARNERS = {
    "latency": "latency",
    "demand": "demand",
    "change_failure": "change_failure",
    "churn": "churn",
    "restore": "incident_timing",
    "vendor_outages": "vendor_outages",
}


"""The learner (:func:`orgtwin.learn.learn`'s ``only``) that re-learns each watched
behaviour (``restore`` by the incident-timing learner, ``vendor_outages`` by the vendor
learner); ``errors`` has none (the twin's error rates are not learned from telemetry)."""


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
