"""Shadow replay: the twin run over a window of production, fed what production was fed.

:func:`replay` takes a twin (a learned scenario, usually) and telemetry of a window the
twin did not learn from, reads from the telemetry the inputs production was given in
that window (:func:`inputs`), and runs the twin over the window for several seeds with
those inputs imposed (:class:`orgtwin.world.drive.Drive`):

- the sessions each segment opened (``arrivals`` whose ``key`` names the scenario's
  segments; arrivals under another key are one total, split across the segments by
  their expected sessions at each hour); without arrivals, the requests the entry
  services (the features' entry points) received, from the ``requests`` table;
- the deploys that went out (``deploys``): the teams the table names ship those, each
  failing by the twin's change-failure law, and make none of their own;
- the vendors' outages (``vendor_status``), in place of the drawn ones.

The twin's own behaviours do the rest. The replay starts at the window's first hour with
the scenario's interventions dropped (what production changed is in its telemetry, not
in a what-if). What comes back (:class:`Replay`) is each seed's telemetry tables in the
schemas of :mod:`orgtwin.telemetry.schemas`, the observed tables cut to the window (and
the telemetry before it, for the persistence baseline), and the observed ``requests``
per service and hour (:func:`hourly`): the scorecard (:mod:`orgtwin.fidelity.scorecard`)
compares them.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from orgtwin.errors import TelemetryError
from orgtwin.learn import weekly_profile
from orgtwin.scenario import Scenario, load_scenario
from orgtwin.telemetry.folder import TABLE_RULES, Telemetry, read_telemetry
from orgtwin.units import HOURS_PER_DAY, HOURS_PER_WEEK, SECONDS_PER_HOUR
from orgtwin.world import OrgModel, derive_seed
from orgtwin.world.drive import Drive

REPLAY_TABLES = ("requests", "deploys", "incidents", "user_days")
"""The simulated tables a replay keeps (what the scorecard compares)."""
UNTIMED = frozenset({"customers"})
"""Tables whose rows say nothing of a window they fall in (a customer who joined then is
not telemetry of it): a window needs rows of another table to be replayed."""
MAX_REPLAY_DAYS = 92
"""The longest window a replay runs (a quarter): a longer one is refused."""


@dataclass(frozen=True, eq=False)
class Replay:
    """What :func:`replay` ran and what it compares with.

    Attributes:
        scenario: the scenario replayed (start moved to the window's first hour, no
            interventions).
        window: ``(start, end)`` of the window, start at the hour.
        hours: hours in the window.
        drive: the observed inputs imposed.
        driven_by: what drove the demand (``"arrivals"``, ``"entry requests"`` or
            ``"the twin's own demand"``) and the other inputs, in words.
        simulated: per seed, the telemetry tables of :data:`REPLAY_TABLES`, cut to the
            window.
        observed: the observed tables, cut to the window (``requests`` per service and
            hour: :func:`hourly`).
        before: the observed tables before the window (``requests`` per service and
            hour), for the persistence baseline.
    """

    scenario: Scenario
    window: tuple[datetime, datetime]
    hours: int
    drive: Drive
    driven_by: list[str]
    simulated: list[dict[str, pl.DataFrame]]
    observed: dict[str, pl.DataFrame]
    before: dict[str, pl.DataFrame]


def replay(
    scenario: str | os.PathLike[str] | Scenario,
    telemetry: str | os.PathLike[str] | Telemetry,
    *,
    start: datetime,
    end: datetime,
    seeds: int = 5,
    seed: int = 0,
    mapping: str | os.PathLike[str] | None = None,
) -> Replay:
    """Replay the twin over ``[start, end)`` fed the inputs observed there.

    Args:
        scenario: the twin.
        telemetry: the telemetry folder (or one already read), holding the window.
        start, end: the window (``start`` is taken back to its hour).
        seeds: seeds to run (replicate ``r`` runs with ``derive_seed(seed, r)``).
        seed: the base seed.
        mapping: a mapping file, where the folder's files are not in the twin's shapes.

    Returns:
        The :class:`Replay`.

    Raises:
        TelemetryError: the window is empty or longer than :data:`MAX_REPLAY_DAYS`, or
            the telemetry holds nothing in it.
    """
    twin = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    tel = telemetry if isinstance(telemetry, Telemetry) else read_telemetry(
        telemetry, mapping=mapping
    )  # fmt: skip
    t0 = start.replace(minute=0, second=0, microsecond=0)
    hours = math.ceil((end - t0).total_seconds() / SECONDS_PER_HOUR)
    if hours <= 0:
        raise TelemetryError(f"validate: the window must end after it starts, got {start} to {end}")
    days = math.ceil(hours / HOURS_PER_DAY)
    if days > MAX_REPLAY_DAYS:
        raise TelemetryError(
            f"validate: the window is {days} days; at most {MAX_REPLAY_DAYS} are replayed at once"
        )
    if seeds < 1:
        raise TelemetryError(f"validate: seeds must be at least 1, got {seeds}")
    t1 = t0 + timedelta(hours=hours)
    tables = {name: frame.collect() for name, frame in tel.tables.items() if name != "spans"}
    observed = {name: _cut(name, frame, t0, t1) for name, frame in tables.items()}
    before = {name: _cut(name, frame, None, t0) for name, frame in tables.items()}
    timed = [n for n in observed if n in TABLE_RULES and TABLE_RULES[n].times
             and n not in UNTIMED]  # fmt: skip
    if not any(observed[name].height for name in timed):
        raise TelemetryError(
            f"validate: the telemetry holds no row between {t0} and {t1} "
            f"(tables with times: {', '.join(sorted(timed)) or 'none'})"
        )
    if "requests" in tables:
        observed["requests"] = hourly(observed["requests"])
        before["requests"] = hourly(before["requests"])
    sc = twin.model_copy(update={"start": t0, "interventions": []})
    drive, driven_by = inputs(sc, observed, hours=days * HOURS_PER_DAY)
    simulated = []
    for r in range(seeds):
        model = OrgModel(sc, seed=derive_seed(seed, r), days=days, drive=drive)
        model.run()
        model.finish()
        world = model.world
        made = world.events.tables(world.recorder, only=REPLAY_TABLES)
        simulated.append({name: _cut(name, made[name], t0, t1) for name in REPLAY_TABLES})
    return Replay(sc, (t0, t1), hours, drive, driven_by, simulated, observed, before)


def inputs(
    scenario: Scenario, observed: dict[str, pl.DataFrame], *, hours: int
) -> tuple[Drive, list[str]]:
    """The inputs production was given, as a :class:`~orgtwin.world.drive.Drive` of
    ``hours`` ticks from the scenario's start, and what drives the replay in words.

    Args:
        scenario: the scenario replayed (its ``start`` the window's first hour).
        observed: the telemetry tables cut to the window (``requests`` per service and
            hour).
        hours: ticks of the run.
    """
    t0 = scenario.start
    words = []
    sessions = entry = None
    arrivals = observed.get("arrivals")
    if arrivals is not None and arrivals.height:
        sessions = _sessions(scenario, arrivals, t0, hours)
        words.append("sessions: the arrivals observed")
    elif "requests" in observed and observed["requests"].height:
        entry = _entry_rps(scenario, observed["requests"], t0, hours)
        if entry is not None:
            words.append("demand: the requests observed at the entry services")
    if sessions is None and entry is None:
        words.append("demand: the twin's own (no arrivals or entry requests observed)")
    deploys: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    driven: frozenset[str] = frozenset()
    table = observed.get("deploys")
    if table is not None:
        known = table.filter(
            pl.col("team").is_in(list(scenario.teams))
            & pl.col("service").is_in(list(scenario.services))
        )
        driven = frozenset(known["team"].unique().to_list())
        for when, team, service, batch in known.select(
            "time", "team", "service", pl.col("batch_size").fill_null(1)
        ).iter_rows():
            deploys[_tick(when, t0)].append((team, service, int(batch)))
        words.append(f"deploys: the {known.height} observed" if driven else "deploys: the twin's")
    outages = None
    status = observed.get("vendor_status")
    if status is not None:
        outages = []
        for vendor, began, ended in status.select(
            "vendor", "outage_start", "outage_end"
        ).iter_rows():
            if vendor in scenario.vendors:
                first = max(_tick(began, t0), 0)
                last = hours if ended is None else min(math.ceil(_hours(ended, t0)), hours)
                if last > first:
                    outages.append((vendor, first, last))
        words.append(f"vendor outages: the {len(outages)} observed")
    return Drive(sessions, entry, dict(deploys), driven, outages), words


def hourly(requests: pl.DataFrame) -> pl.DataFrame:
    """``requests`` per service and hour, whatever the rows' spacing (a minute, an hour).

    Counts (``requests``, ``errors``) are per hour: the mean per row times the rows an
    hour holds at the service's median spacing (a partial hour is not undercounted);
    latency is the median over the hour's rows (the typical minute, as the latency
    learner fits it: one spiking minute does not move it), ``cpu`` and ``replicas`` the
    means.
    """
    if requests.height == 0:
        return requests.select("time", "service", "requests", "errors", "latency_p50_ms",
                               "latency_p95_ms", "cpu", "replicas")  # fmt: skip
    spacing = (
        requests.sort("time")
        .group_by("service")
        .agg(step=pl.col("time").diff().dt.total_seconds().median())
        .with_columns(per_hour=SECONDS_PER_HOUR / pl.col("step").fill_null(SECONDS_PER_HOUR))
        .with_columns(per_hour=pl.col("per_hour").clip(1.0, None))
    )
    return (
        requests.join(spacing.select("service", "per_hour"), on="service")
        .sort("service", "time")  # a fixed order of summing: the same figures every time
        .group_by(pl.col("time").dt.truncate("1h"), "service", maintain_order=True)
        .agg(
            requests=pl.col("requests").mean() * pl.col("per_hour").first(),
            errors=pl.col("errors").mean() * pl.col("per_hour").first(),
            latency_p50_ms=pl.col("latency_p50_ms").median(),
            latency_p95_ms=pl.col("latency_p95_ms").median(),
            cpu=pl.col("cpu").mean(),
            replicas=pl.col("replicas").mean(),
        )
        .sort("service", "time")
    )


def _sessions(scenario: Scenario, arrivals: pl.DataFrame, t0: datetime, hours: int) -> np.ndarray:
    """``[hours, segments]`` observed sessions (NaN where none was observed).

    Arrivals keyed by a segment's name are that segment's; the rest are one total, split
    across the segments without their own by their expected sessions at the hour."""
    names = list(scenario.segments)
    out = np.full((hours, len(names)), np.nan)
    counted = arrivals.group_by(
        tick=((pl.col("time") - pl.lit(t0)).dt.total_seconds() // SECONDS_PER_HOUR).cast(pl.Int64),
        key=pl.col("key").fill_null("") if "key" in arrivals.columns else pl.lit(""),
    ).agg(pl.col("count").sum())
    counted = counted.filter((pl.col("tick") >= 0) & (pl.col("tick") < hours))
    own = set(counted["key"].unique().to_list()) & set(names)
    for name in own:
        rows = counted.filter(pl.col("key") == name)
        out[rows["tick"].to_numpy(), names.index(name)] = rows["count"].to_numpy()
    rest = (
        counted.filter(~pl.col("key").is_in(list(own))).group_by("tick").agg(pl.col("count").sum())
    )
    others = [i for i, name in enumerate(names) if name not in own]
    if rest.height and others:
        ticks = np.arange(hours)
        expected = np.zeros((hours, len(others)))
        for j, i in enumerate(others):
            segment = scenario.segments[names[i]]
            profile = weekly_profile(segment.demand_profile)
            how = ticks + t0.weekday() * HOURS_PER_DAY + t0.hour + segment.utc_offset_hours
            expected[:, j] = (
                segment.n_users * segment.sessions_per_user_day * profile[how % HOURS_PER_WEEK]
            )
        share = expected / np.maximum(expected.sum(axis=1, keepdims=True), 1e-300)
        at = rest["tick"].to_numpy()
        out[np.ix_(at, others)] = rest["count"].to_numpy()[:, None] * share[at]
    return out


def _entry_rps(
    scenario: Scenario, requests: pl.DataFrame, t0: datetime, hours: int
) -> np.ndarray | None:
    """``[hours, services]`` requests per second observed at the entry services (NaN
    elsewhere and where none was observed), or None when no entry service is observed."""
    names = list(scenario.services)
    entries = sorted({spec.entry for spec in scenario.features.values()})
    rows = requests.filter(pl.col("service").is_in(entries) & pl.col("requests").is_not_null())
    if rows.height == 0:
        return None
    out = np.full((hours, len(names)), np.nan)
    ticks = ((rows["time"] - t0).dt.total_seconds() // SECONDS_PER_HOUR).cast(pl.Int64).to_numpy()
    keep = (ticks >= 0) & (ticks < hours)
    columns = np.array([names.index(s) for s in rows["service"].to_list()])
    out[ticks[keep], columns[keep]] = rows["requests"].to_numpy()[keep] / SECONDS_PER_HOUR
    return out


def _cut(name: str, frame: pl.DataFrame, start: datetime | None, end: datetime) -> pl.DataFrame:
    """The rows of a table from ``start`` (None: the beginning) to ``end`` by its first
    time column (tables without one are kept whole)."""
    rule = TABLE_RULES.get(name)
    if rule is None or not rule.times or rule.times[0] not in frame.columns:
        return frame
    column = pl.col(rule.times[0]).cast(pl.Datetime("us"))
    keep = column < pl.lit(end, dtype=pl.Datetime("us"))
    if start is not None:
        keep &= column >= pl.lit(start, dtype=pl.Datetime("us"))
    return frame.filter(keep)


def _hours(when: datetime, t0: datetime) -> float:
    return (when - t0).total_seconds() / SECONDS_PER_HOUR


def _tick(when: datetime, t0: datetime) -> int:
    return math.floor(_hours(when, t0))


__all__ = ["MAX_REPLAY_DAYS", "REPLAY_TABLES", "Replay", "hourly", "inputs", "replay"]
