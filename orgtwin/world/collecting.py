"""What a Mesa user reads from a run: :class:`OrgCollector`, the model's ``datacollector``.

:class:`~orgtwin.world.model.OrgModel` behaves like a Mesa model: ``model.running``
turns False after the last hour, ``model.datacollector`` is a :class:`mesa.DataCollector`,
and :func:`mesa.batch_run` runs it with the scenario, seeds, days and any lever path as
parameters::

    mesa.batch_run(
        OrgModel,
        parameters={"scenario": ["scenarios/baseline.yaml"], "seed": [1, 2], "days": [3],
                    "segments.pro_us.price_usd_month": [12, 15]},
        max_steps=72,                # at least days × 24: one step is one hour
        number_processes=1,
    )  # one row per run: the parameters, the last hour's series and the run's KPIs

A run is fixed by its seed: ``iterations`` repeat the same runs, so vary ``seed``
instead (``derive_seed(base, r)`` gives the seeds :func:`orgtwin.run` uses). A Scenario
object goes in a list (``[scenario]``); a path may be given bare.

The API (see :class:`~orgtwin.world.model.OrgModel`)::

    OrgModel(scenario, *, seed, days=None, behaviours=None, drive=None,
             agent_reporters=False, **levers)
    model.running                                     # False once every hour is simulated
    model.datacollector                               # an OrgCollector (a mesa.DataCollector)
    model.datacollector.get_model_vars_dataframe()    # one row per hour simulated so far
    model.datacollector.kpis()                        # KPI name -> value, None until the end
    model.datacollector.get_agent_vars_dataframe()    # with agent_reporters only
    model.teams / .services / .segments / .vendors    # Mesa AgentSets (model.agents_by_type)

**Model variables** (``model_vars``, one entry per hour simulated; row ``t`` is hour
``t``, so :func:`mesa.batch_run`'s ``Step`` is the tick):

- the hourly series of :data:`HOURLY` and :data:`OPEN_INCIDENTS`: figures of the hour
  over every entity of the recorded series (:mod:`orgtwin.telemetry.series`), each with
  its unit declared there. None shares a KPI's name: ``revenue_usd_hour`` is the hour's
  revenue, ``revenue_usd`` the run's KPI;
- every KPI of :data:`orgtwin.world.kpis.KPIS`, under its own name: ``NaN`` on every
  hour but the last, where it is the run's value, exactly as :func:`orgtwin.run` reports
  it for the same scenario, seed and days. A run stopped before its last hour (a
  ``max_steps`` below ``days × 24``) has no KPIs.

Collecting costs the run almost nothing: the series are already recorded hour by hour,
so the model variables are read from the recorder when asked for (and kept until the
next hour), and the KPIs are computed once, the first time they are read after the last
hour (about half a second for a year of the baseline). Only the number of open
incidents is counted each hour (under 2 µs, against about 200-500 µs for the hour).

**Agent variables** are opt-in, because reading every agent every hour costs time (about
a third more for a year of the baseline): ``agent_reporters=True`` (every kind) or some
kinds (``("teams",)``, or the classes, ``(Team,)``) give one row per agent of those
kinds per hour, with ``kind``, ``name`` and the kind's figures (:data:`AGENT_FIGURES`;
the other kinds' columns are ``None``).

The KPI formulas are those of :mod:`orgtwin.world.kpis`, the one copy that
:func:`orgtwin.run` uses too: their names (:data:`~orgtwin.world.kpis.KPIS`) are the
collector's KPI columns, and :func:`~orgtwin.world.kpis.summarise` computes them from the
run's series and the tables of :data:`~orgtwin.world.kpis.KPI_TABLES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple, Protocol

import mesa
import numpy as np
from numpy.typing import NDArray

from orgtwin.agents.services import Service
from orgtwin.agents.teams import Team
from orgtwin.agents.users import UserSegment
from orgtwin.agents.vendors import Vendor
from orgtwin.errors import RunError, did_you_mean, in_brackets
from orgtwin.scenario.spec import Scenario
from orgtwin.telemetry.recording import SeriesRecorder
from orgtwin.world.build import World
from orgtwin.world.kpis import KPI_TABLES, KPIS, summarise

LATENCY_QUANTILE = 0.95


# --------------------------------------------------------------------------- hourly series


class Hourly(NamedTuple):
    """One hourly model variable, read from the recorded series.

    Attributes:
        unit: unit of the value.
        description: what it measures, over every entity of its kind.
        compute: ``(recorder, ticks) -> [ticks]`` values of the first ``ticks`` hours.
    """

    unit: str
    description: str
    compute: Callable[[SeriesRecorder, int], NDArray[np.float64]]


def _total(kind: str, metric: str) -> Callable[[SeriesRecorder, int], NDArray[np.float64]]:
    def compute(recorder: SeriesRecorder, ticks: int) -> NDArray[np.float64]:
        return recorder.metric(kind, metric)[:ticks].sum(axis=1)

    return compute


def _cost(recorder: SeriesRecorder, ticks: int) -> NDArray[np.float64]:
    return _total("service", "cost_usd")(recorder, ticks) + _total("vendor", "cost_usd")(
        recorder, ticks
    )


def _error_rate(recorder: SeriesRecorder, ticks: int) -> NDArray[np.float64]:
    requests = _total("feature", "requests")(recorder, ticks)
    errors = _total("feature", "errors")(recorder, ticks)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(requests > 0, errors / requests, np.nan)


def _fatigue(recorder: SeriesRecorder, ticks: int) -> NDArray[np.float64]:
    headcount = recorder.metric("team", "headcount")[:ticks]
    weighted = (recorder.metric("team", "fatigue")[:ticks] * headcount).sum(axis=1)
    total = headcount.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, weighted / total, np.nan)


def _latency(recorder: SeriesRecorder, ticks: int) -> NDArray[np.float64]:
    """Per hour, the smallest feature p95 at or below which 95% of the requests lie."""
    values = recorder.metric("feature", "latency_p95_ms")[:ticks]
    weights = recorder.metric("feature", "requests")[:ticks]
    if values.shape[1] == 0:
        return np.full(ticks, np.nan)
    order = np.argsort(values, axis=1, kind="stable")
    cum = np.cumsum(np.take_along_axis(weights, order, axis=1), axis=1)
    total = cum[:, -1]
    first = (cum >= (LATENCY_QUANTILE * (1.0 - 1e-12)) * total[:, None]).argmax(axis=1)
    picked = np.take_along_axis(values, order, axis=1)[np.arange(ticks), first]
    return np.where(total > 0, picked, np.nan)


HOURLY: dict[str, Hourly] = {
    "active_users": Hourly("users", "Active users at the end of the hour",
                           _total("segment", "active_users")),
    "paying_users": Hourly("users", "Active users who pay", _total("segment", "paying_users")),
    "sessions": Hourly("sessions", "Sessions opened in the hour", _total("segment", "sessions")),
    "bad_sessions": Hourly("sessions", "Sessions that met an error or a slow feature",
                           _total("segment", "bad_sessions")),
    "error_rate": Hourly("fraction", "Share of feature requests that failed in the hour "
                         "(1 - error_rate is the hour's availability)", _error_rate),
    "latency_p95_ms_hour": Hourly("ms", "Request-weighted 95th percentile of the features' "
                                  "p95 latency in the hour", _latency),
    "revenue_usd_hour": Hourly("USD", "Revenue accrued in the hour",
                               _total("segment", "revenue_usd")),
    "cost_usd_hour": Hourly("USD", "Infrastructure and vendor cost of the hour", _cost),
    "pages_hour": Hourly("pages", "On-call pages sent in the hour", _total("team", "pages")),
    "deploys_hour": Hourly("deploys", "Production deploys in the hour", _total("team", "deploys")),
    "headcount": Hourly("engineers", "Engineers in every team", _total("team", "headcount")),
    "fatigue_hour": Hourly("0-1", "Headcount-weighted mean fatigue at the end of the hour",
                           _fatigue),
}  # fmt: skip
"""The hourly model variables read from the recorded series, in column order."""
OPEN_INCIDENTS = "open_incidents"
"""The one hourly model variable the recorder does not hold: incidents open at the end of
the hour, counted by the collector (it follows :data:`HOURLY` in the columns)."""


# --------------------------------------------------------------------------- agents

KINDS: dict[str, type[mesa.Agent]] = {
    "segments": UserSegment, "services": Service, "vendors": Vendor, "teams": Team,
}  # fmt: skip
"""The four kinds of agent, by the scenario's name for them."""


def _open(team: Team, tick: int) -> int:
    """Incidents of a team open at ``tick`` (those that have started)."""
    return sum(1 for incident in team.open_incidents if incident.started <= tick)


def _vendor_up(vendor: Vendor) -> float:
    tick = vendor.model.world.clock.tick  # type: ignore[attr-defined]
    return float(not any(start <= tick < end for start, end in vendor.outage_windows()))


AGENT_FIGURES: dict[str, dict[str, Callable[[Any], Any]]] = {
    "segments": {
        "active_users": lambda s: s.active_users,
        "price_usd_month": lambda s: s.price_usd_month,
    },
    "services": {
        "replicas": lambda s: s.replicas,
        "utilisation": lambda s: s.utilisation,
        "error_rate": lambda s: s.error_rate,
        "latency_p95_ms": lambda s: s.latency_p95_ms,
    },
    "vendors": {"up": _vendor_up},
    "teams": {
        "headcount": lambda t: t.headcount,
        "oncall_size": lambda t: t.oncall_size,
        "fatigue": lambda t: t.mean_fatigue,
        "expertise": lambda t: t.expertise,
        "pending_changes": lambda t: t.pending_changes,
        "open_incidents": lambda t: _open(t, t.clock.tick),
    },
}
"""Each kind's agent variables: column -> ``agent -> value`` (read at the end of each hour)."""


def agent_kinds(choice: bool | Collection[str | type]) -> tuple[str, ...]:
    """The kinds of agent whose variables are collected, from ``agent_reporters``.

    Args:
        choice: True (every kind), False (none), or a kind or kinds by name (``"teams"``)
            or class (:class:`~orgtwin.agents.teams.Team`).

    Returns:
        Names of :data:`KINDS`, in their order.

    Raises:
        RunError: a kind is not one of :data:`KINDS`.

    Example:
        >>> agent_kinds(("teams", UserSegment)), agent_kinds(False)
        (('segments', 'teams'), ())
    """
    if isinstance(choice, bool):
        return tuple(KINDS) if choice else ()
    chosen = [choice] if isinstance(choice, str | type) else list(choice)
    by_class = {cls: name for name, cls in KINDS.items()}
    named = [by_class.get(k, k) if isinstance(k, type) else k for k in chosen]
    unknown = [k for k in named if k not in KINDS]
    if unknown:
        got = getattr(unknown[0], "__name__", unknown[0])
        raise RunError(
            f"agent_reporters must be True, False or kinds among {', '.join(KINDS)}, "
            f"got {got!r}{in_brackets(did_you_mean(str(got), KINDS))}"
        )
    return tuple(k for k in KINDS if k in named)


# --------------------------------------------------------------------------- the collector


class Collected(Protocol):
    """What the collector reads of the model (:class:`~orgtwin.world.model.OrgModel`)."""

    scenario: Scenario
    world: World
    agents_by_type: dict[type[mesa.Agent], mesa.agent.AgentSet]

    @property
    def n_ticks(self) -> int:
        """Hours in the run."""
        ...

    @property
    def days(self) -> int:
        """Days in the run."""
        ...

    def finish(self) -> None:
        """Close the run's books (once)."""
        ...


class OrgCollector(mesa.DataCollector):
    """The model's :class:`mesa.DataCollector`: hourly series and KPIs, agents on request.

    Made by :class:`~orgtwin.world.model.OrgModel`, which calls :meth:`collect` at the
    end of every hour; what it holds is described in the module docstring.

    Args:
        model: the model it reads.
        agent_reporters: True, False, or the kinds of agent to read each hour (see
            :func:`agent_kinds`).

    Attributes:
        kinds: the kinds of agent collected.

    Example:
        >>> from orgtwin import OrgModel
        >>> model = OrgModel("scenarios/baseline.yaml", seed=1, days=1, agent_reporters=("teams",))
        >>> model.run()
        >>> frame = model.datacollector.get_model_vars_dataframe()
        >>> frame.shape[0], int(frame["users"].notna().sum()), model.running
        (24, 1, False)
        >>> bool(model.datacollector.kpis()["users"] == frame["active_users"].iloc[-1])
        True
        >>> model.datacollector.get_agent_vars_dataframe()["kind"].unique().tolist()
        ['team']
    """

    def __init__(
        self, model: Collected, *, agent_reporters: bool | Collection[str | type] = False
    ) -> None:
        self.kinds = agent_kinds(agent_reporters)
        columns = dict.fromkeys(["kind", "name"]) if self.kinds else {}
        for kind in self.kinds:
            columns |= dict.fromkeys(AGENT_FIGURES[kind])
        super().__init__(agent_reporters={name: name for name in columns})
        self._model = model
        self._kpi_names = tuple(KPIS)
        self.model_reporters = {name: _Latest(name) for name in [*HOURLY, OPEN_INCIDENTS]}
        self.model_reporters |= {name: _Kpi(name) for name in self._kpi_names}
        self._open_incidents = np.zeros(model.n_ticks)
        self._kpis: dict[str, float] | None = None
        self._vars: tuple[int, dict[str, list[Any]]] | None = None

    # ------------------------------------------------------------------ collecting

    def collect(self, model: Collected) -> None:  # type: ignore[override]
        """Count the open incidents of the hour just recorded; read the agents if asked.

        The series are already in the recorder. The records of the agents are keyed by
        the hour (the tick), as the model variables are.
        """
        world = model.world
        tick = world.clock.tick
        self._open_incidents[tick] = sum(_open(team, tick) for team in world.teams)
        if self.kinds:
            self._agent_records[tick] = self._read_agents(model, tick)

    def _read_agents(self, model: Collected, tick: int) -> list[tuple[Any, ...]]:
        columns = list(self.agent_reporters)[2:]
        records = []
        for kind in self.kinds:
            figures = AGENT_FIGURES[kind]
            for agent in model.agents_by_type.get(KINDS[kind], ()):
                values = [figures[c](agent) if c in figures else None for c in columns]
                records.append((tick, agent.unique_id, kind[:-1], agent.name, *values))
        return records

    # ------------------------------------------------------------------ reading

    @property
    def model_vars(self) -> dict[str, list[Any]]:
        """Every model variable: column -> one value per hour simulated so far."""
        model = self._model
        ticks = model.world.clock.tick
        if self._vars is not None and self._vars[0] == ticks:
            return self._vars[1]
        recorder = model.world.recorder
        values: dict[str, list[Any]] = {
            name: hourly.compute(recorder, ticks).tolist() for name, hourly in HOURLY.items()
        }
        values[OPEN_INCIDENTS] = self._open_incidents[:ticks].tolist()
        kpis = self.kpis()
        for name in self._kpi_names:
            last = math.nan if kpis is None else kpis[name]
            values[name] = [math.nan] * (ticks - 1) + [last] if ticks else []
        self._vars = (ticks, values)
        return values

    @model_vars.setter
    def model_vars(self, value: Mapping[str, list[Any]]) -> None:
        """Ignored: the model variables are read from the run (``DataCollector`` sets them)."""

    def kpis(self) -> dict[str, float] | None:
        """The run's KPIs, as :func:`orgtwin.run` reports them; None until the last hour.

        Computed the first time they are asked for after the last hour, then kept.
        """
        model = self._model
        if model.world.clock.tick < model.n_ticks:
            return None
        if self._kpis is None:
            model.finish()
            world, sc = model.world, model.scenario
            self._kpis = summarise(
                world.recorder.to_frame(),
                world.events.tables(world.recorder, only=KPI_TABLES),
                start=sc.start,
                days=model.days,
                slo_availability=sc.slo.availability_target,
                costs=sc.costs,
            )
        return dict(self._kpis)


class _Latest:
    """Model reporter of an hourly series: its value in the last hour recorded."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, model: mesa.Model) -> float:
        values = model.datacollector.model_vars[self.name]
        return values[-1] if values else math.nan


class _Kpi:
    """Model reporter of a KPI: the run's value, ``NaN`` until the last hour."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, model: mesa.Model) -> float:
        kpis = model.datacollector.kpis()
        return math.nan if kpis is None else kpis[self.name]
