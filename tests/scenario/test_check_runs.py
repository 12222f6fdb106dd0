"""Whatever ``orgtwin check`` accepts runs to the end, with finite results.

The property: take the baseline, move a few of its numbers (and add a few interventions)
to values drawn from each field's own declaration, at its edges and in between, with few
users and days so a run takes a moment; whenever ``check`` accepts the file, a run of it
finishes and every KPI and every value of its series is finite (KPIs that have nothing
to divide by are NaN by definition, so for those only infinities are refused).

The regression tests below keep the examples a hostile tester found: files that
``check`` accepted and that crashed at run time, or ran with absurd results.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import typing
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from orgtwin import load_scenario, simulate
from orgtwin.cli import main
from orgtwin.errors import ScenarioError
from orgtwin.scenario.fields import EARLIEST_START, LATEST_START
from orgtwin.scenario.interventions import KINDS, InterventionSpec
from orgtwin.scenario.spec import Scenario

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
BASE_DATA: dict[str, Any] = yaml.safe_load(BASELINE.read_text(encoding="utf-8"))
RUN_SETTINGS = ("days", "seed", "seeds", "start")
"""Top-level fields the property sets itself (``start`` is drawn on its own)."""
UNDEFINED_WHEN_EMPTY = {
    "churn_rate_monthly_pct", "availability_pct", "error_budget_used", "latency_p95_ms",
    "mttr_hours", "pages_per_oncall_engineer", "fatigue", "lead_time_hours",
    "change_failure_rate_pct", "time_to_restore_hours", "user_growth_monthly_pct",
}  # fmt: skip
"""KPIs that are NaN when nothing defines them (no users, no deploys, no incidents…)."""
MAX_USERS = 3000
"""Users per segment in the property's runs, at most (to keep each run short)."""
MAX_EXAMPLES = int(os.environ.get("ORGTWIN_PROPERTY_EXAMPLES", "150"))
"""Scenarios the property tries (derandomised: the same ones on every run); raise it with
``ORGTWIN_PROPERTY_EXAMPLES`` to search further."""


# --------------------------------------------------------------------------- declarations


def _flatten(annotation: Any) -> list[Any]:
    return [annotation, *(x for arg in typing.get_args(annotation) for x in _flatten(arg))]


def _bounds(field: FieldInfo) -> dict[str, Any]:
    """The ``ge``/``gt``/``le``/``lt`` a field declares, on itself or inside its type."""
    items = list(field.metadata)
    for node in _flatten(field.annotation):
        if typing.get_origin(node) is typing.Annotated:
            items += [m for x in typing.get_args(node)[1:] for m in getattr(x, "metadata", [x])]
    keys = ("gt", "ge", "lt", "le")
    return {k: getattr(m, k) for m in items for k in keys if getattr(m, k, None) is not None}


def _kind(field: FieldInfo) -> Any:
    """The scalar type a field holds (int, float, bool, datetime, a Literal), or None."""
    for node in _flatten(field.annotation):
        if typing.get_origin(node) is Literal:
            return node
        if node in (bool, int, float, datetime):
            return node
    return None


def _optional(field: FieldInfo) -> bool:
    return type(None) in _flatten(field.annotation)


def declared(field: FieldInfo, *, none: bool = True) -> st.SearchStrategy[Any] | None:
    """Values a field's declaration allows: its edges, and anything in between (and
    ``None`` where the field allows it, unless ``none`` is false)."""
    kind, bounds = _kind(field), _bounds(field)
    if typing.get_origin(kind) is Literal:
        found: st.SearchStrategy[Any] = st.sampled_from(typing.get_args(kind))
    elif kind is bool:
        found = st.booleans()
    elif kind is int:
        low = bounds.get("ge", bounds.get("gt", -(10**6)) + 1)
        high = bounds.get("le", bounds.get("lt", 10**9) - 1)
        found = st.one_of(st.sampled_from([low, high]), st.integers(low, high))
    elif kind is float:
        found = _floats(bounds)
    elif kind is datetime:
        found = st.one_of(st.sampled_from([EARLIEST_START, LATEST_START]),
                          st.datetimes(EARLIEST_START, LATEST_START))  # fmt: skip
    else:
        return None
    return st.one_of(st.none(), found) if none and _optional(field) else found


def _floats(bounds: dict[str, Any]) -> st.SearchStrategy[float]:
    low = float(bounds.get("ge", bounds.get("gt", -1e6)))
    high = float(bounds.get("le", bounds.get("lt", 1e6)))
    open_low, open_high = "gt" in bounds, "lt" in bounds
    edges = [
        math.nextafter(low, math.inf) if open_low else low,
        math.nextafter(high, -math.inf) if open_high else high,
    ]
    between = st.floats(low, high, exclude_min=open_low, exclude_max=open_high,
                        allow_nan=False, allow_infinity=False)  # fmt: skip
    return st.one_of(st.sampled_from(edges), between)


def _value_field(annotation: Any) -> FieldInfo:
    """The declaration of the values of a ``dict[name, value]`` field."""
    return FieldInfo.from_annotation(typing.get_args(annotation)[1])


def leaves(model: BaseModel, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple, FieldInfo]]:
    """Every scalar field of a loaded scenario (defaults included), with its declaration."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if field.exclude or (not path and name in RUN_SETTINGS):
            continue
        if isinstance(value, BaseModel):
            yield from leaves(value, (*path, name))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    yield from leaves(item, (*path, name, key))
                elif not isinstance(item, str):
                    yield (*path, name, key), _value_field(field.annotation)
        elif declared(field) is not None:
            yield (*path, name), field


BASE_SCENARIO = load_scenario(BASELINE)
LEAVES = [(p, f) for p, f in leaves(BASE_SCENARIO) if p[-1] != "n_users"]
NAMES = {section: list(getattr(BASE_SCENARIO, section)) for section in
         ("segments", "features", "services", "vendors", "teams")}  # fmt: skip


def _set(data: dict[str, Any], path: tuple, value: Any) -> None:
    for key in path[:-1]:
        data = data.setdefault(key, {})
    data[path[-1]] = value


# --------------------------------------------------------------------------- strategies


_NAMED = {"feature": "features", "vendor": "vendors", "to": "vendors"}
"""Intervention fields that name one entity, and the section they name it from."""


def _field_values(name: str, field: FieldInfo) -> st.SearchStrategy[Any] | None:
    """What an intervention's field may be set to: names for selectors and named
    entities, its declaration's values for the rest."""
    if name in NAMES:  # a selector: "*" or some names
        names = st.lists(st.sampled_from(NAMES[name]), min_size=1, unique=True)
        return st.one_of(st.just("*"), names)
    if name in _NAMED:
        return st.sampled_from(NAMES[_NAMED[name]])
    return declared(field)


@st.composite
def interventions(draw: st.DrawFn, days: int) -> dict[str, Any]:
    """One intervention of any kind, its fields drawn from their declarations."""
    kind = draw(st.sampled_from(list(KINDS)))
    spec: dict[str, Any] = {"kind": kind, "at": draw(st.floats(0, days - 0.05))}
    if kind == "vendor_outage" or draw(st.booleans()):
        spec["until"] = spec["at"] + draw(st.floats(0.05, 2.0 * days))
    for name, field in KINDS[kind].model_fields.items():
        own = name not in InterventionSpec.model_fields and name != "kind"
        values = _field_values(name, field) if own else None
        if values is not None and (field.is_required() or draw(st.booleans())):
            spec[name] = draw(values)
    if kind == "price_change":  # exactly one of a new price or a factor
        keep, drop = draw(st.permutations(["price_usd_month", "factor"]))
        spec.pop(drop, None)
        spec[keep] = draw(declared(KINDS[kind].model_fields[keep], none=False))  # type: ignore[arg-type]
    if kind == "vendor_swap" and spec["to"] == spec["vendor"]:
        spec["to"] = next(v for v in NAMES["vendors"] if v != spec["vendor"])
    return spec


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """The baseline with few users and days, a few numbers moved within their
    declarations (often to an edge), and a few interventions."""
    data = copy.deepcopy(BASE_DATA)
    days = draw(st.integers(1, 3))
    data.update(name="property", days=days, seeds=1)
    for segment in data["segments"].values():
        segment["n_users"] = draw(st.integers(0, MAX_USERS))
    if draw(st.booleans()):
        data["start"] = draw(declared(Scenario.model_fields["start"]))  # type: ignore[arg-type]
    for path, field in draw(st.lists(st.sampled_from(LEAVES), max_size=8)):
        _set(data, path, draw(declared(field)))  # type: ignore[arg-type]
    data["interventions"] = draw(st.lists(interventions(days), max_size=3))
    return data


# --------------------------------------------------------------------------- the property


def _check(path: Path) -> int:
    """``orgtwin check`` on a file, quietly: its exit status."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(["check", str(path), "--max-memory-mib", "4096"])


def assert_runs_with_finite_results(scenario: Scenario, seed: int = 1) -> None:
    """A run of ``scenario`` finishes; its KPIs and series are finite (NaN only where a
    KPI has nothing to divide by)."""
    result = simulate(scenario, seed=seed)
    for kpi, value in result.summary().items():
        assert not math.isinf(value), f"{kpi} is {value}"
        assert kpi in UNDEFINED_WHEN_EMPTY or math.isfinite(value), f"{kpi} is {value}"
    values = result.series["value"]
    assert values.is_finite().all(), result.series.filter(~pl.col("value").is_finite()).head()


@pytest.mark.slow
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(data=scenarios(), seed=st.integers(0, 2**32))
def test_whatever_check_accepts_runs_to_the_end_with_finite_results(
    data: dict[str, Any], seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("property") / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    accepted = _check(path) == 0  # refused (status 2) is fine; a traceback fails the test
    event("accepted by check" if accepted else "refused by check")
    if accepted:
        assert_runs_with_finite_results(load_scenario(path), seed)


def test_the_property_draws_from_every_kind_of_declaration() -> None:
    kinds = {_kind(field) for _, field in LEAVES}
    assert {int, float, bool} <= kinds
    assert any(typing.get_origin(k) is Literal for k in kinds)
    assert len(LEAVES) > 300, "every scalar of every entity, defaults included"
    assert not [p for p, f in LEAVES if _kind(f) is float and not _bounds(f)], "unbounded"


def test_every_number_of_the_format_declares_a_finite_range() -> None:
    numbers = [(p, f) for p, f in LEAVES if _kind(f) in (int, float)]
    for intervention in KINDS.values():
        numbers += [
            ((intervention.__name__, name), field)
            for name, field in intervention.model_fields.items()
            if _kind(field) in (int, float) and name not in ("at", "until")
        ]
    unbounded = [
        ".".join(map(str, path))
        for path, field in numbers
        if not ({"ge", "gt"} & set(_bounds(field)) and {"le", "lt"} & set(_bounds(field)))
    ]
    assert unbounded == []


# --------------------------------------------------------------------------- regressions


def _chain(n: int, fan_out: float) -> dict[str, Any]:
    """Services s0 → s1 → … → s{n-1}, each calling the next ``fan_out`` times a request."""
    return {
        f"s{i}": {"team": "core", "replicas": 2, "capacity_rps_per_replica": 1_000_000,
                  "calls": {f"s{i + 1}": fan_out} if i + 1 < n else {}}
        for i in range(n)
    }  # fmt: skip


def _with_chain(n: int, fan_out: float) -> dict[str, Any]:
    data = copy.deepcopy(BASE_DATA)
    data["services"]["web-bff"]["calls"]["s0"] = 1.0
    data["services"].update(_chain(n, fan_out))
    data.update(days=1, seeds=1)
    for segment in data["segments"].values():
        segment["n_users"] = 1000
    return data


@pytest.mark.parametrize(
    ("n", "fan_out", "paths"),
    [
        (1100, 2.0, ["services", "services.web-bff.calls"]),  # overflowed to infinity
        (3000, 1.0, ["services"]),  # a singular matrix
        (40, 2.0, ["services.web-bff.calls"]),  # 2^40 calls: within 1,000 services
    ],
)
def test_a_call_graph_whose_operators_would_not_stay_finite_is_refused(
    n: int, fan_out: float, paths: list[str]
):
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_with_chain(n, fan_out))
    assert [error.path for error in caught.value.errors] == paths
    deep = caught.value.errors[-1]
    if deep.path.endswith("calls"):
        assert "along web-bff → s0 → s1 → s2 → s3 → s4 → s5 → s6 → …" in deep.problem


@pytest.mark.slow
@pytest.mark.parametrize(("n", "fan_out"), [(982, 1.0), (19, 2.0)])
def test_a_call_graph_at_the_edge_of_its_bounds_runs_with_finite_results(n: int, fan_out: float):
    scenario = load_scenario(_with_chain(n, fan_out))  # 1,000 services; 2^19 calls a request
    assert_runs_with_finite_results(scenario)


@pytest.mark.parametrize(
    "overrides",
    [
        {"teams": {"qa": {"headcount": 3, "oncall_size": 2}}},  # pvals must have 1 dimension
        {"teams": {"web": {"incidents": {"restore_sigma": 1e6}}}},  # int(inf) at restore
        {"start": "9999-12-31T00:00:00"},  # the calendar overflowed
        {"segments": {"free": {"acquisition": {"base_per_day": 1e12}}}},  # 3.6 TiB
        {"services": {"auth": {"capacity_rps_per_replica": float("inf")}}},
        {"services": {"web-bff": {"calls": {"auth": 1e300}}}},  # p95 of 2e303 ms
        {"segments": {"free": {"n_users": True}}},  # became 1
        {"name": ""},
        {"segments": {"enterprise": {"churn": {"price_elasticity": 10.0}}},  # hazards overflowed
         "interventions": [{"kind": "price_change", "at": 0, "price_usd_month": 1e6}]},
        {"segments": {"enterprise": {"sessions_per_user_day": 50, "intensity_sigma": 1.5,
                                     "churn": {"experience_coef": 20,
                                               "experience_half_life_days": 0.01}}}},
    ],
)  # fmt: skip
def test_what_used_to_crash_or_run_absurdly_is_refused(overrides: dict[str, Any]):
    with pytest.raises(ScenarioError):
        load_scenario(BASELINE, overrides=overrides)


def test_a_day_of_bad_sessions_cannot_overflow_the_churn_hazard():
    """The users' churn clocks are float32: past e^88 a day, a user's clock turns infinite
    and stays so after they leave, so their slot leaves again every day and the segment's
    user count goes negative (then acquisition draws from a negative Poisson mean)."""
    risky = {"sessions_per_user_day": 50, "intensity_sigma": 1.5,
             "churn": {"experience_coef": 20, "experience_half_life_days": 0.01}}  # fmt: skip
    with pytest.raises(ScenarioError, match="churn log-hazard below 80") as caught:
        load_scenario(BASELINE, overrides={"segments": {"enterprise": risky}})
    assert caught.value.path == "segments.enterprise.churn"
    assert "a day of bad sessions for its heaviest user" in caught.value.problem


def test_a_paging_storm_runs_to_the_end():
    """Fatigue has no bound of its own: every off-hours page adds to it, and restore time
    grows as exp(fatigue_coef × fatigue); it used to pass e^709 and fail on int(inf)."""
    storm = {"headcount": 10_000, "incidents": {"fatigue_coef": 5.0},
             "people": {"fatigue_per_offhours_page": 1.0}}  # fmt: skip
    scenario = load_scenario(
        BASELINE,
        overrides={"days": 4, "segments": {s: {"n_users": 0} for s in NAMES["segments"]},
                   "teams": {"web": storm}},
    )  # fmt: skip
    assert_runs_with_finite_results(scenario, seed=0)
