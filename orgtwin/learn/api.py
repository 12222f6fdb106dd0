"""Learn a twin: telemetry in, a scenario whose behaviours are estimated from it out.

:func:`learn` reads a telemetry folder (through a mapping file where the data are not in
the twin's own shapes), and runs each learner the folder's tables can feed, per entity of
the base scenario (a team, a vendor, a segment, a service). Each learner's step is
declared once in :data:`STEPS`: the tables it needs and how its estimates are written
into the scenario. What no table informs keeps the base scenario's value, and the report
says so.

Example:
    >>> import tempfile
    >>> from orgtwin.runs.synth import synth
    >>> from orgtwin.scenario import load_scenario
    >>> base = load_scenario("scenarios/baseline.yaml", overrides={
    ...     "segments": {s: {"n_users": 200} for s in ("free", "pro_us", "pro_eu", "enterprise")}})
    >>> folder = synth(base, days=30, seed=1, out=tempfile.mkdtemp() + "/telemetry")
    >>> twin, report = learn(folder, base=base)
    >>> twin.name, len(report.fits) > 0, sorted({fit.behaviour for fit in report.fits})[:4]
    ('baseline-learned', True, ['acquisition', 'change_failure', 'churn', 'demand'])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sklearn.base import clone

from orgtwin.errors import LearnError
from orgtwin.learn.base import Fit, HoldoutScore
from orgtwin.learn.own import CALLEES_OVER_S, own_latency
from orgtwin.learn.report import LearnReport
from orgtwin.learn.twin import learned_scenario
from orgtwin.scenario import Scenario, load_scenario
from orgtwin.telemetry.folder import Telemetry, read_telemetry

Values = dict[str, Any]
"""Dotted scenario paths to learned values."""


@dataclass(frozen=True)
class Context:
    """What every step sees: the telemetry, the base scenario, the observed window."""

    telemetry: Telemetry
    base: Scenario
    """The base scenario with what the steps before have learned written in: own latency
    is separated from the calls' with the calls per request just learned, as the twin
    will add them."""
    start: datetime | None
    end: datetime | None
    warnings: list[str]
    """What concerns the learning as a whole (the report's warnings), steps add to it."""
    collected: dict[str, pl.DataFrame] = field(default_factory=dict)
    """Tables already read, so steps that share one (deploys) read it once."""

    def table(self, name: str) -> pl.DataFrame:
        """Telemetry table ``name``, read once."""
        if name not in self.collected:
            self.collected[name] = self.telemetry.tables[name].collect()
        return self.collected[name]


Learned = tuple[list[Fit], Values]
"""A step's fits (for the report) and the values it sets in the scenario."""


@dataclass(frozen=True)
class Step:
    """One behaviour's learning.

    Attributes:
        behaviour: the behaviour learned (as the report names it).
        tables: the telemetry tables it needs (all of them); ``"a|b"``: either ``a`` or,
            without it, ``b``.
        run: fits it from the context, per entity.
        words: what it learns, for the report when its tables are missing.
    """

    behaviour: str
    tables: tuple[str, ...]
    run: Callable[[Context], Learned]
    words: str


def _values(fits: list[Fit], path: Callable[[Fit, str], str | None]) -> Values:
    """The learned and shrunk estimates of ``fits`` at their scenario paths."""
    out: Values = {}
    for fit in fits:
        for e in fit.estimates:
            where = path(fit, e.name)
            if e.source != "prior" and where is not None:
                out[where] = e.value
    return out


def _entity(fit: Fit) -> str:
    return fit.entity.split(" ", 1)[-1]


# --------------------------------------------------------------------------- the steps


def _incident_timing(ctx: Context) -> Learned:
    from orgtwin.learn.incidents import IncidentTimingLearner

    incidents = ctx.table("incidents")
    if unknown := _unknown(incidents, "team", list(ctx.base.teams)):
        ctx.warnings.append(f"incidents of teams not in the base scenario were left out: {unknown}")
    deploys = ctx.table("deploys") if "deploys" in ctx.telemetry.tables else None
    fits: list[Fit] = []
    for name, team in ctx.base.teams.items():
        if incidents.filter(pl.col("team") == name).height == 0:
            continue
        learner = IncidentTimingLearner(team=name, prior=team.incidents, canary=team.canary,
                                        end=ctx.end)  # fmt: skip
        fits += learner.fit(incidents, deploys=deploys).fits()
    return fits, _values(fits, lambda f, p: f"teams.{_entity(f)}.incidents.{p}")


def _change_failure(ctx: Context) -> Learned:
    from orgtwin.learn.changes import ChangeFailureLearner

    deploys = ctx.table("deploys")
    if unknown := _unknown(deploys, "team", list(ctx.base.teams)):
        ctx.warnings.append(f"deploys of teams not in the base scenario were left out: {unknown}")
    fits: list[Fit] = []
    for name, team in ctx.base.teams.items():
        if deploys.filter(pl.col("team") == name).height == 0:
            continue
        fits += ChangeFailureLearner(team=name, prior=team.change_failure).fit(deploys).fits()
    return fits, _values(fits, lambda f, p: f"teams.{_entity(f)}.change_failure.{p}")


def _vendor_outages(ctx: Context) -> Learned:
    from orgtwin.learn.vendors import VendorOutageLearner

    status = ctx.table("vendor_status")
    if unknown := _unknown(status, "vendor", list(ctx.base.vendors)):
        ctx.warnings.append(f"outages of vendors not in the base scenario were left out: {unknown}")
    fits: list[Fit] = []
    for name, vendor in ctx.base.vendors.items():
        learner = VendorOutageLearner(vendor=name, prior=vendor, start=ctx.start, end=ctx.end)
        fits += learner.fit(status).fits()
    return fits, _values(fits, lambda f, p: f"vendors.{_entity(f)}.{p}")


def _churn(ctx: Context) -> Learned:
    from orgtwin.learn.churn import ChurnLearner
    from orgtwin.telemetry.derived import customers_from_user_days

    if "customers" in ctx.telemetry.tables:
        customers = ctx.table("customers")
    else:
        customers = customers_from_user_days(ctx.table("user_days"))
        if customers.is_empty():
            ctx.warnings.append(
                "the churn hazard: no customers table, and the user_days table gives no "
                "user's tenure (tenure_days), so the base's values are kept"
            )
            return [], {}
    known = list(ctx.base.segments)
    ours = customers.filter(pl.col("segment").is_in(known))
    unknown = _unknown(customers, "segment", known)
    if ours.is_empty():
        ctx.warnings.append(
            f"the churn hazard: no customer is in a segment of the base scenario (theirs: "
            f"{unknown}; the base's: {', '.join(known)}), so the base's values are kept; "
            "name the segments alike, in the base or through the mapping file's values"
        )
        return [], {}
    learner = ChurnLearner().fit(ours)
    fits = learner.fits()
    for fit in fits:  # what the data cannot inform is each segment's own value in the base
        spec = ctx.base.segments[_entity(fit)].churn
        fit.estimates = [
            replace(e, value=getattr(spec, e.name), low=getattr(spec, e.name),
                    high=getattr(spec, e.name), method=f"kept from the base ({e.method})")
            if e.source == "prior" else e
            for e in fit.estimates
        ]  # fmt: skip
    if "customers" not in ctx.telemetry.tables:
        fits[0].warnings.append("customers made from user_days (one per user seen)")
    if ours.height >= 100:
        score = learner.holdout(ours)
        for fit in fits:  # one model for all segments, so one score
            fit.holdout = score
    if unknown:
        fits[0].warnings.append(f"customers of segments not in the base were left out: {unknown}")
    return fits, _values(fits, lambda f, p: f"segments.{_entity(f)}.churn.{p}")


def _unknown(frame: pl.DataFrame, column: str, known: list[str]) -> str:
    """The values of ``column`` that name nothing in ``known``, listed (``""``: none)."""
    found = frame[column].unique().drop_nulls().to_list()
    return ", ".join(sorted(str(v) for v in found if v not in known))


def _demand(ctx: Context) -> Learned:
    """Per segment of the base: its own arrivals where their ``key`` names it, else all
    arrivals together; each in the segment's local time."""
    from orgtwin.learn.demand import DemandLearner

    arrivals = ctx.table("arrivals")
    keys = set(arrivals["key"].drop_nulls().unique().to_list())
    own = [s for s in ctx.base.segments if s in keys]
    fits: list[Fit] = []
    values: Values = {}
    for name, segment in ctx.base.segments.items():
        rows = arrivals.filter(pl.col("key") == name) if own else arrivals
        if rows.is_empty():
            continue
        learner = DemandLearner(utc_offset_hours=segment.utc_offset_hours,
                                prior=segment.demand_profile)  # fmt: skip
        try:
            learner.fit(rows)
        except ValueError as exc:  # too short a series (every hour of the week is needed)
            ctx.warnings.append(f"the demand profile of segment {name}: {exc}")
            continue
        (fit,) = learner.fits()
        fit = replace(fit, entity=f"segment {name}")
        first, last = rows["time"].min(), rows["time"].max()
        if last - first >= timedelta(weeks=3):  # two to learn, one to test
            fit.holdout = learner.holdout(rows)
        if not own:
            fit.warnings.append(
                "one arrival series (no key names a segment): its hour-of-week profile is "
                "given to every segment, in each segment's local time"
            )
        fits.append(fit)
        profile = learner.spec().model_dump(mode="json")
        values |= {f"segments.{name}.demand_profile.{k}": v for k, v in profile.items()}
    if own and (unknown := _unknown(arrivals, "key", list(ctx.base.segments))):
        ctx.warnings.append(f"arrivals of keys that name no segment were left out: {unknown}")
    return fits, values


def _acquisition(ctx: Context) -> Learned:
    from orgtwin.learn.acquisition import AcquisitionLearner

    user_days = ctx.table("user_days")
    fits: list[Fit] = []
    for name, segment in ctx.base.segments.items():
        if user_days.filter(pl.col("segment") == name).height == 0:
            continue
        learner = AcquisitionLearner(segment=name, prior=segment.acquisition)
        fits += learner.fit(user_days).fits()
        fits[-1].warnings.append(
            "new users counted as those first seen in user_days: right where it records "
            "every user of the segment, an undercount where it holds a sample"
        )
    return fits, _values(fits, lambda f, p: f"segments.{_entity(f)}.acquisition.{p}")


def _latency(ctx: Context) -> Learned:

    measured = ctx.table("requests")
    if unknown := _unknown(measured, "service", list(ctx.base.services)):
        ctx.warnings.append(f"latency: services not in the base scenario were left out: {unknown}")
    p95_only = not measured["latency_p95_ms"].is_null().all()
    p95_only &= bool(measured["latency_p50_ms"].is_null().all())
    if p95_only:  # own_latency takes the base's ratio for the medians; the curve: own p95/ratio
        ctx.warnings.append(
            "latency: the requests table has a p95 but no median, so each service's own "
            "median is taken as its own p95 over the base's p95_over_p50 (kept): the curve "
            "is learned to its p95"
        )
    requests = own_latency(measured, ctx.base, callees_over_s=CALLEES_OVER_S)
    if p95_only:
        ratio = {n: s.latency.p95_over_p50 for n, s in ctx.base.services.items()}
        requests = requests.with_columns(
            latency_p50_ms=pl.col("latency_p95_ms")
            / pl.col("service").replace_strict(ratio, default=None, return_dtype=pl.Float64)
        )
    if requests.is_empty():
        ctx.warnings.append(
            "latency against utilisation per service: no service of the base has its "
            "latency (p50 and p95) and its callees' measured, so the base's values are kept"
        )
        return [], {}
    learner = latency_learner(ctx.base).fit(requests)
    fits = learner.fits()
    scores = _latency_holdout(learner, requests)
    for fit in fits:
        fit.holdout = scores.get(_entity(fit))
        fit.warnings.append(
            "own latency = measured latency - the calls' latency (the base scenario's calls "
            "per request and vendor latencies)"
        )
        if p95_only:  # the ratio is the base's, not learned
            fit.estimates = [
                replace(e, value=ratio[_entity(fit)], low=ratio[_entity(fit)],
                        high=ratio[_entity(fit)], source="prior",
                        method="kept from the base: the telemetry has no median")
                if e.name == "p95_over_p50" else e
                for e in fit.estimates
            ]  # fmt: skip
        if (capacity := learner.cpu_capacity_.get(_entity(fit))) is not None:
            fit.warnings.append(
                f"the curve is against CPU: capacity_rps_per_replica is set to {capacity:.4g}, "
                "the load per replica at which the CPU would be full (median of load over "
                "CPU), so that the twin's utilisation is the CPU share"
            )
    values = _values(fits, lambda f, p: f"services.{_entity(f)}.latency.{p}")
    for service, capacity in learner.cpu_capacity_.items():
        values[f"services.{service}.capacity_rps_per_replica"] = capacity
    return fits, values


def latency_learner(base: Scenario) -> Any:
    """The latency learner as :func:`learn` sets it up: each service's curve against its
    CPU share or its load over the base's capacity per replica, whichever predicts its
    later hours better (``utilisation="auto"``), so a learned ``queueing_factor`` means
    what it means in the twin."""
    from orgtwin.learn.latency import LatencyLearner

    capacity = {name: spec.capacity_rps_per_replica for name, spec in base.services.items()}
    return LatencyLearner(utilisation="auto", capacity=capacity)


def _latency_holdout(learner: Any, requests: pl.DataFrame, test_share: float = 0.3) -> dict:
    """Per service: the curve refitted on the earlier 70% of its hours against the median
    latency of those hours, scored by MAPE on the later 30%."""
    parts = {
        name: rows.sort("time")
        for (name,), rows in requests.group_by("service", maintain_order=True)
    }
    cuts = {name: round(rows.height * (1 - test_share)) for name, rows in parts.items()}
    if not parts or min(cuts.values()) < learner.min_rows:
        return {}
    train = pl.concat([rows[: cuts[name]] for name, rows in parts.items()])
    test = pl.concat([rows[cuts[name] :] for name, rows in parts.items()])
    refit = clone(learner).fit(train)
    errors, constant = refit.mape_by_service(test, train)
    baseline = "median latency of the earlier hours"
    return {
        name: HoldoutScore(
            "MAPE of median latency",
            errors[name],
            constant[name],
            baseline,
            False,
            cuts[name],
            parts[name].height - cuts[name],
        )
        for name in errors
    }


def _structure(ctx: Context) -> Learned:
    """From the spans where there are some, else from the call totals and requests."""
    from orgtwin.learn.structure import StructureLearner

    tables = ctx.telemetry.tables
    if "spans" in tables:
        learner = StructureLearner().fit(tables["spans"])  # lazy: 3 columns read
        seen = "span"
    elif "requests" in tables:
        learner = StructureLearner().fit_totals(ctx.table("calls"), ctx.table("requests"))
        seen = "call total"
    else:
        ctx.warnings.append(
            "services' calls per request: a calls table without a requests table gives no "
            "calls per request, so the base's values are kept"
        )
        return [], {}
    if seen == "span" and "requests" in tables:  # the metrics' volumes over the traces'
        entries = frozenset(spec.entry for spec in ctx.base.features.values())
        learner.calibrate(ctx.table("requests"), entries=entries)
    fits = learner.fits()
    scaled = {c: k for c, k in learner.scale_.items() if abs(k - 1) > 0.05}
    if scaled and fits:
        fits[0].warnings.append(
            "calls per request scaled so each callee receives the requests its metrics "
            "counted (spans and metrics disagree by more than 5%): "
            + ", ".join(f"{c} ×{k:.3g}" for c, k in sorted(scaled.items()))
        )
    services, vendors = set(ctx.base.services), set(ctx.base.vendors)
    values: Values = {}
    unknown: set[str] = set()
    unseen: list[str] = []
    for caller, callees in learner.calls().items():
        for callee, fan_out in callees.items():
            if caller in services and callee in services:
                values[f"services.{caller}.calls.{callee}"] = fan_out
            elif caller in services and callee in vendors:
                values[f"services.{caller}.vendors.{callee}"] = fan_out
            else:
                unknown |= {caller, callee} - services - vendors
        if caller in services:  # a caller seen that never called a callee of the base's
            for callee in set(ctx.base.services[caller].calls) - set(callees):
                values[f"services.{caller}.calls.{callee}"] = None  # removes the call
                unseen.append(f"{caller} → {callee}")
    if unknown and fits:
        fits[0].warnings.append(
            f"services seen in the {seen}s but not in the base scenario (their calls were "
            f"left out; add them to the base to learn them): {', '.join(sorted(unknown))}"
        )
    if unseen and fits:
        fits[0].warnings.append(
            f"calls of the base that no {seen} shows were removed: " + ", ".join(sorted(unseen))
        )
    return fits, values


STEPS: tuple[Step, ...] = (
    Step("structure", ("spans|calls",), _structure, "services' calls per request"),
    Step("demand", ("arrivals",), _demand, "the hour-of-week demand profile"),
    Step("latency", ("requests",), _latency, "latency against utilisation per service"),
    Step("change_failure", ("deploys",), _change_failure, "change failure per team"),
    Step("incident_timing", ("incidents",), _incident_timing, "time to detect and restore"),
    Step("churn", ("customers|user_days",), _churn, "the churn hazard per segment"),
    Step("acquisition", ("user_days",), _acquisition, "new users a day per segment"),
    Step("vendor_outages", ("vendor_status",), _vendor_outages, "vendor outage rate and length"),
)
"""Every learner the telemetry can feed, in the order they run."""


# --------------------------------------------------------------------------- learn


def learn(
    telemetry: str | os.PathLike[str] | Telemetry,
    *,
    base: str | os.PathLike[str] | Scenario,
    mapping: str | os.PathLike[str] | None = None,
    drop_bad_rows: bool = False,
    name: str | None = None,
    since: datetime | None = None,
    only: Collection[str] | None = None,
) -> tuple[Scenario, LearnReport]:
    """Learn a twin from a telemetry folder.

    Args:
        telemetry: the telemetry folder (or one already read).
        base: the scenario whose structure and priors the twin starts from.
        mapping: a mapping file, where the folder's files are not in the twin's shapes.
        drop_bad_rows: drop rows that fail validation (counted per reason in the report)
            instead of refusing the folder.
        name: the learned scenario's name (default: the base's, with ``-learned``).
        since: learn from the telemetry from this time on only (what drifted, from its
            change point: :meth:`orgtwin.telemetry.folder.Telemetry.since`).
        only: the behaviours to learn (names of :data:`STEPS`: ``latency``,
            ``demand``…); the others keep the base's values. None: every one.

    Returns:
        The learned scenario (validated like any scenario file) and its fit report.

    Raises:
        TelemetryError: the folder, the mapping or the data are not usable (every problem
            named by file, table, column and row).
        ScenarioError: the base scenario is invalid, or a learned value left its range.
    """
    steps = _steps(only)
    tel = telemetry if isinstance(telemetry, Telemetry) else read_telemetry(
        telemetry, mapping=mapping, drop_bad_rows=drop_bad_rows
    )  # fmt: skip
    if since is not None:
        tel = tel.since(since)
    scenario = base if isinstance(base, Scenario) else load_scenario(base)
    start, end = _window(tel)
    ctx = Context(tel, scenario, start, end, [])
    shown = str(telemetry.files if isinstance(telemetry, Telemetry) else telemetry)
    report = LearnReport(
        scenario=name or f"{scenario.name}-learned",
        base=str(scenario.source or scenario.name),
        telemetry=shown if not isinstance(telemetry, Telemetry) else "(read already)",
        rows=dict(tel.rows),
        dropped={t: dict(r) for t, r in tel.dropped.items()},
    )
    if since is not None:
        report.warnings.append(f"learned from the telemetry since {since:%Y-%m-%d %H:%M}")
    values: Values = {}
    for step in steps:
        missing = [t for t in step.tables if not set(t.split("|")) & set(tel.tables)]
        if missing:
            said = ", ".join(t.replace("|", " or ") for t in missing)
            report.warnings.append(f"{step.words}: no {said} table, so the base's values are kept")
            continue
        fits, learned = step.run(ctx)
        report.fits += fits
        values |= learned
        if learned:
            ctx = replace(ctx, base=learned_scenario(scenario, values, name=scenario.name))
    report.warnings += ctx.warnings
    report.applied = dict(sorted(values.items()))
    twin = learned_scenario(scenario, values, name=report.scenario)
    return twin, report


def _steps(only: Collection[str] | None) -> tuple[Step, ...]:
    """The steps :func:`learn` runs: every one, or those named in ``only``."""
    if only is None:
        return STEPS
    names = [step.behaviour for step in STEPS]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise LearnError(
            f"only must name behaviours among {', '.join(names)}; got {', '.join(unknown)}"
        )
    return tuple(step for step in STEPS if step.behaviour in only)


def _window(tel: Telemetry) -> tuple[datetime | None, datetime | None]:
    """The observed window: the hours the requests cover, else ``None`` (learners then
    take it from their own table and say so)."""
    if "requests" not in tel.tables:
        return None, None
    span = (
        tel.tables["requests"]
        .select(pl.col("time").min().alias("start"), pl.col("time").max().alias("end"))
        .collect()
    )
    start, last = span["start"][0], span["end"][0]
    if start is None:
        return None, None
    return start, last + timedelta(hours=1)


def learn_to(
    telemetry: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    base: str | os.PathLike[str] | Scenario,
    **options: Any,
) -> tuple[Path, LearnReport]:
    """:func:`learn`, then write the scenario to ``out`` (a ``.yaml`` file) and its
    report beside it (``report.md``, ``report.json``)."""
    from orgtwin.learn.twin import write_scenario

    path = Path(out)
    twin, report = learn(telemetry, base=base, name=options.pop("name", path.stem), **options)
    write_scenario(path, twin, report)
    report.save(path.parent)
    return path, report
