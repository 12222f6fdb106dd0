"""Invariants every run must keep: requests, users, money and events add up.

Each test recomputes a figure by hand from the scenario (not from the engine's own
operators) and checks the recorded series or telemetry against it, tick by tick.
"""

from __future__ import annotations

import graphlib
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from orgtwin.agents.services import ServiceMesh

from orgtwin import behaviours as bh
from orgtwin import load_scenario, simulate
from orgtwin.runs.results import RunResult
from orgtwin.scenario.spec import Scenario
from orgtwin.world.kpis import dora
from orgtwin.world.model import HOURS_PER_MONTH, OrgModel

SECONDS_PER_HOUR = 3600.0


def matrix(series: pl.DataFrame, entity_type: str, metric: str, names: list[str]) -> np.ndarray:
    """One metric of the series as a ``[ticks, entities]`` array, columns in ``names`` order."""
    frame = series.filter(
        (pl.col("entity_type") == entity_type) & (pl.col("metric") == metric)
    ).with_columns(pl.col("entity").cast(pl.String))
    wide = frame.pivot(on="entity", index="tick", values="value").sort("tick")
    assert wide["tick"].to_list() == list(range(wide.height)), "one row per tick, no gaps"
    return wide.select(names).to_numpy()


def fanout_of(scenario: Scenario) -> dict[tuple[str, str], float]:
    """(caller, callee) → calls per request, read from the scenario."""
    return {
        (caller, callee): k
        for caller, spec in scenario.services.items()
        for callee, k in spec.calls.items()
    }


def topological_order(scenario: Scenario) -> list[str]:
    """Services with every caller before its callees."""
    callers: dict[str, set[str]] = {name: set() for name in scenario.services}
    for caller, callee in fanout_of(scenario):
        callers[callee].add(caller)
    return list(graphlib.TopologicalSorter(callers).static_order())


def external_rps(scenario: Scenario, feature_requests: np.ndarray) -> np.ndarray:
    """External demand (rps) at every service from ``[ticks, features]`` requests an hour."""
    names = list(scenario.services)
    out = np.zeros((feature_requests.shape[0], len(names)))
    for f, feature in enumerate(scenario.features.values()):
        out[:, names.index(feature.entry)] += feature_requests[:, f] / SECONDS_PER_HOUR
    return out


# --------------------------------------------------------------------------- requests


def test_demand_is_external_plus_fanout_of_callers_at_every_tick(small_scenario: Scenario):
    """Live mesh demand after each hour equals a hand propagation in topological order."""
    model = OrgModel(small_scenario, seed=5, days=2)
    names = list(small_scenario.services)
    fanout = fanout_of(small_scenario)
    order = topological_order(small_scenario)
    rps = np.array([f.requests_per_session for f in small_scenario.features.values()])
    for _ in range(model.n_ticks):
        t = model.tick
        model.step()
        sessions = model.world.recorder.metric("feature", "sessions")[t]
        requests = model.world.recorder.metric("feature", "requests")[t]
        np.testing.assert_allclose(requests, sessions * rps)
        external = dict(zip(names, external_rps(small_scenario, requests[None, :])[0], strict=True))
        demand: dict[str, float] = {}
        for service in order:
            inflow = sum(k * demand[c] for (c, callee), k in fanout.items() if callee == service)
            demand[service] = external[service] + inflow
        expected = np.array([demand[n] for n in names])
        np.testing.assert_allclose(model.world.mesh.demand_rps, expected, rtol=1e-12, atol=1e-12)
        recorded = model.world.recorder.metric("service", "demand_rps")[t]
        np.testing.assert_array_equal(recorded, model.world.mesh.demand_rps)
    # users is no feature's entry: all of its demand arrives by fan-out, from three callers
    assert "users" not in {f.entry for f in small_scenario.features.values()}
    users = model.world.recorder.metric("service", "demand_rps")[:, names.index("users")]
    assert (users > 0).all()


def test_every_service_receives_external_plus_calls_in_the_baseline(
    baseline_run: RunResult, baseline_scenario: Scenario
):
    names = list(baseline_scenario.services)
    demand = matrix(baseline_run.series, "service", "demand_rps", names)
    requests = matrix(baseline_run.series, "feature", "requests", list(baseline_scenario.features))
    inflow = external_rps(baseline_scenario, requests)
    for (caller, callee), k in fanout_of(baseline_scenario).items():
        inflow[:, names.index(callee)] += k * demand[:, names.index(caller)]
    np.testing.assert_allclose(demand, inflow, rtol=1e-10)
    assert (demand > 0).all()


def test_utilisation_is_demand_over_capacity(baseline_run: RunResult, baseline_scenario: Scenario):
    names = list(baseline_scenario.services)
    series = baseline_run.series
    demand = matrix(series, "service", "demand_rps", names)
    capacity = matrix(series, "service", "capacity_rps", names)
    utilisation = matrix(series, "service", "utilisation", names)
    assert (capacity > 0).all()
    np.testing.assert_allclose(utilisation, demand / capacity, rtol=1e-12)


def test_calls_table_counts_caller_demand_times_fanout(
    baseline_run: RunResult, baseline_scenario: Scenario
):
    names = list(baseline_scenario.services)
    hourly = matrix(baseline_run.series, "service", "demand_rps", names) * SECONDS_PER_HOUR
    totals = dict(zip(names, hourly.sum(axis=0), strict=True))
    expected = {
        (c, callee): k * totals[c] for (c, callee), k in fanout_of(baseline_scenario).items()
    }
    expected |= {
        (caller, vendor): k * totals[caller]
        for caller, spec in baseline_scenario.services.items()
        for vendor, k in spec.vendors.items()
    }
    calls = baseline_run.events["calls"]
    got = {(r["caller"], r["callee"]): r["count"] for r in calls.iter_rows(named=True)}
    assert calls.height == len(got), "one row per caller/callee pair"
    assert set(got) == set(expected)
    for edge, count in expected.items():
        assert got[edge] == pytest.approx(count, rel=1e-9), edge


def test_requests_table_has_one_row_per_service_hour(
    baseline_run: RunResult, baseline_scenario: Scenario
):
    names = list(baseline_scenario.services)
    n_ticks = baseline_run.days * 24
    table = baseline_run.events["requests"]
    assert table.height == n_ticks * len(names)
    assert table.select("time", "service").n_unique() == table.height
    assert set(table["service"]) == set(names)
    hours = ((table["time"] - baseline_run.start).dt.total_seconds() / 3600).unique().sort()
    assert hours.to_list() == list(range(n_ticks))
    assert (table["errors"] >= 0).all()
    assert (table["errors"] <= table["requests"]).all()
    assert (table["errors"] > 0).any()
    ordered = table.with_columns(pl.col("service").cast(pl.String)).sort("time", "service")
    demand = matrix(baseline_run.series, "service", "demand_rps", sorted(names))
    np.testing.assert_allclose(
        ordered["requests"].to_numpy(), demand.reshape(-1) * SECONDS_PER_HOUR, rtol=1e-12
    )


# --------------------------------------------------------------------------- errors


def _mesh(fanout: list[list[float]], base_error: list[float], vendor_fanout=None) -> ServiceMesh:
    n = len(fanout)
    vendor_fanout = np.zeros((n, 0)) if vendor_fanout is None else np.asarray(vendor_fanout)
    return ServiceMesh(
        names=[f"s{i}" for i in range(n)],
        fanout=np.asarray(fanout, dtype=float),
        vendor_fanout=vendor_fanout,
        replicas=np.full(n, 10.0),
        capacity_rps_per_replica=np.full(n, 100.0),
        replica_cost_usd_hour=np.full(n, 0.1),
        spot_share=np.zeros(n),
        spot_discount=np.zeros(n),
        spot_preemption_per_hour=np.zeros(n),
        spot_recovery_hours=np.full(n, 2),
        base_error_rate=np.asarray(base_error, dtype=float),
        latency=bh.LatencyCurve(),
        autoscale_enabled=np.zeros(n, dtype=bool),
        target_utilisation=np.full(n, 0.6),
        min_replicas=np.ones(n),
        max_replicas=np.full(n, 50.0),
        lag_hours=np.ones(n, dtype=int),
        rng=np.random.default_rng(0),
    )


@pytest.mark.parametrize("fanout", [0.5, 1.0, 3.0])
def test_errors_compound_over_fanout(fanout: float):
    own, callee = 0.01, 0.2
    mesh = _mesh([[0.0, fanout], [0.0, 0.0]], [own, callee])
    mesh.route(np.array([10.0, 0.0]))
    mesh.serve(np.zeros(0), np.zeros(0), 1.0)
    assert mesh.error_rate[1] == pytest.approx(callee, rel=1e-12)
    assert mesh.error_rate[0] == pytest.approx(1 - (1 - own) * (1 - callee) ** fanout, rel=1e-12)


def test_incident_and_vendor_errors_compound_along_a_chain():
    # s0 --2--> s1 --0.5--> s2; s2 calls vendor v (1.5 per request), which fails 10%.
    base = [0.001, 0.002, 0.003]
    mesh = _mesh([[0, 2.0, 0], [0, 0, 0.5], [0, 0, 0]], base, vendor_fanout=[[0.0], [0.0], [1.5]])
    mesh.set_incidents(1, [0.1, 0.2], 0.0)  # two incidents open on s1
    mesh.route(np.array([10.0, 0.0, 0.0]))
    mesh.serve(np.array([0.1]), np.array([50.0]), 1.0)
    ok2 = (1 - base[2]) * 0.9**1.5
    ok1 = (1 - base[1]) * 0.9 * 0.8 * ok2**0.5
    ok0 = (1 - base[0]) * ok1**2
    np.testing.assert_allclose(mesh.error_rate, [1 - ok0, 1 - ok1, 1 - ok2], rtol=1e-12)


def test_recorded_errors_and_latency_follow_the_call_graph_every_hour(small_spec: dict[str, Any]):
    """A full model with a vendor outage and a rate limit: each hour, a service's error is
    its own error compounded with its vendors' and callees' errors, and its latency is its
    own plus its vendors' and its callees' latency per request, added by moments: the
    mean of the callees' recorded latency times the calls, the variance of each call plus
    that of the number of calls (⌊k⌋ or ⌈k⌉), read back as a lognormal."""

    def moments(p50: float, p95: float) -> tuple[float, float]:
        s2 = (np.log(p95 / p50) / 1.6448536269514722) ** 2
        mean = p50 * np.exp(s2 / 2)
        return mean, mean**2 * (np.exp(s2) - 1)

    def calls_variance(k: float) -> float:
        return (k - np.floor(k)) * (1 - (k - np.floor(k)))

    small_spec["vendors"]["authz"]["rate_limit_rps"] = 1.0  # partial errors at peaks
    small_spec["interventions"] = [
        {"kind": "vendor_outage", "vendor": "stripe", "at": "20h", "until": "26h"}
    ]
    scenario = load_scenario(small_spec)
    model = OrgModel(scenario, seed=2, days=2)
    names = list(scenario.services)
    vendors = list(scenario.vendors)
    fanout = fanout_of(scenario)
    vendor_ms = np.array([scenario.vendors[v].latency_ms for v in vendors])
    partial = 0
    for _ in range(model.n_ticks):
        t = model.tick
        model.step()
        rec = model.world.recorder
        error = rec.metric("service", "error_rate")[t]
        p50 = rec.metric("service", "latency_p50_ms")[t]
        p95 = rec.metric("service", "latency_p95_ms")[t]
        vendor_error = rec.metric("vendor", "error_rate")[t]
        utilisation = rec.metric("service", "utilisation")[t]
        own_p50, own_p95 = model.world.mesh.latency.predict_quantiles(utilisation)
        partial += int(((vendor_error > 0.01) & (vendor_error < 0.99)).any())
        for i, name in enumerate(names):
            spec = scenario.services[name]
            ok = 1 - model.world.mesh.own_error[i]
            mean, var = moments(own_p50[i], own_p95[i])
            for vendor, k in spec.vendors.items():
                ok *= (1 - vendor_error[vendors.index(vendor)]) ** k
                mean += k * vendor_ms[vendors.index(vendor)]
                var += calls_variance(k) * vendor_ms[vendors.index(vendor)] ** 2
            for (caller, callee), k in fanout.items():
                if caller == name:
                    ok *= (1 - error[names.index(callee)]) ** k
                    callee_mean, callee_var = moments(p50[names.index(callee)],
                                                      p95[names.index(callee)])  # fmt: skip
                    mean += k * callee_mean
                    var += k * callee_var + calls_variance(k) * callee_mean**2
            s2 = np.log1p(var / mean**2)
            assert error[i] == pytest.approx(1 - ok, abs=1e-9), (t, name)
            assert p50[i] == pytest.approx(mean * np.exp(-s2 / 2), rel=1e-9), (t, name)
            assert p95[i] == pytest.approx(p50[i] * np.exp(1.6448536269514722 * np.sqrt(s2)),
                                           rel=1e-9), (t, name)  # fmt: skip
            if not spec.vendors and not any(c == name for c, _ in fanout):
                assert (p50[i], p95[i]) == (own_p50[i], own_p95[i]), "a leaf's own, exactly"
    down = rec.metric("vendor", "up")[:, vendors.index("stripe")]
    assert (down[20:26] == 0).all() and (down[:20] == 1).all() and (down[26:] == 1).all()
    checkout = rec.metric("service", "error_rate")[20:26, names.index("checkout")]
    assert (checkout > 0.99).all(), "a failed vendor fails every caller up the path"
    assert partial > 0, "the rate limit produced partial vendor errors"


# --------------------------------------------------------------------------- money


def _replica_cost_check(run: RunResult, scenario: Scenario, spot: np.ndarray) -> None:
    names = list(scenario.services)
    replicas = matrix(run.series, "service", "replicas", names)
    cost = matrix(run.series, "service", "cost_usd", names)
    price = np.array([scenario.services[n].replica_cost_usd_hour for n in names])
    discount = np.array([scenario.services[n].spot_discount for n in names])
    np.testing.assert_allclose(cost, replicas * price * (1 - spot * discount), rtol=1e-12)
    assert run.summary()["infra_cost_usd"] == pytest.approx(cost.sum(), rel=1e-9)


def test_cost_is_replica_hours_times_price(baseline_run: RunResult, baseline_scenario: Scenario):
    spot = np.array([s.spot_share for s in baseline_scenario.services.values()])
    assert not spot.any()
    _replica_cost_check(baseline_run, baseline_scenario, spot[None, :])


def test_cost_blends_spot_and_on_demand_prices_from_the_switch(small_spec: dict[str, Any]):
    small_spec["services"]["users"]["spot_share"] = 0.25
    small_spec["interventions"] = [
        {"kind": "spot_share", "services": ["payments", "users"], "spot_share": 0.6,
         "at": "30h", "until": "60h"}
    ]  # fmt: skip
    scenario = load_scenario(small_spec)
    run = simulate(scenario, seed=4, days=3)
    names = list(scenario.services)
    spot = np.tile([scenario.services[n].spot_share for n in names], (run.days * 24, 1))
    for name in ("payments", "users"):
        spot[30:60, names.index(name)] = 0.6
    _replica_cost_check(run, scenario, spot)
    price = matrix(run.series, "service", "cost_usd", names) / matrix(
        run.series, "service", "replicas", names
    )
    payments = price[:, names.index("payments")]
    assert payments[29] == pytest.approx(0.25) and payments[30] == pytest.approx(0.25 * 0.7)
    assert payments[60] == pytest.approx(0.25)


def test_users_never_negative_and_conserved(small_scenario: Scenario):
    """Each hour's active users = the previous hour's + arrivals − leavers; slots agree."""
    model = OrgModel(small_scenario, seed=8, days=4)
    for _ in range(model.days):
        for _ in range(24):
            model.step()
        for segment in model.world.segments:
            live = segment.intensity > 0
            assert 0 <= segment.active_users <= segment.intensity.size
            assert segment.active_users == int(live.sum())
            ids = segment.user_id[live]
            assert np.unique(ids).size == ids.size and (ids >= 0).all()
    names = list(small_scenario.segments)
    rec = model.world.recorder
    active = rec.metric("segment", "active_users")
    churned, acquired = rec.metric("segment", "churned"), rec.metric("segment", "acquired")
    assert (active >= 0).all() and (churned >= 0).all() and (acquired >= 0).all()
    np.testing.assert_array_equal(np.diff(active, axis=0), (acquired - churned)[:-1])
    assert churned.sum() > 0 and acquired.sum() > 0
    paying = rec.metric("segment", "paying_users")
    for i, name in enumerate(names):
        paid = small_scenario.segments[name].price_usd_month > 0
        np.testing.assert_array_equal(paying[:, i], active[:, i] if paid else 0)


def test_revenue_is_paying_users_times_price_and_moves_at_the_price_change(
    small_spec: dict[str, Any],
):
    small_spec["interventions"] = [
        {"kind": "price_change", "segments": ["pro"], "price_usd_month": 30,
         "at": "30h", "until": "60h"}
    ]  # fmt: skip
    scenario = load_scenario(small_spec)
    run = simulate(scenario, seed=6, days=3)
    names = list(scenario.segments)
    paying = matrix(run.series, "segment", "paying_users", names)
    revenue = matrix(run.series, "segment", "revenue_usd", names)
    prices = np.tile([scenario.segments[n].price_usd_month for n in names], (run.days * 24, 1))
    prices[30:60, names.index("pro")] = 30.0
    np.testing.assert_allclose(revenue, paying * prices / HOURS_PER_MONTH, rtol=1e-12)
    pro = revenue[:, names.index("pro")] / paying[:, names.index("pro")] * HOURS_PER_MONTH
    assert pro[29] == pytest.approx(20.0) and pro[30] == pytest.approx(30.0)
    assert pro[59] == pytest.approx(30.0) and pro[60] == pytest.approx(20.0)
    assert run.summary()["revenue_usd"] == pytest.approx(revenue.sum(), rel=1e-9)


# --------------------------------------------------------------------------- events


def test_dora_matches_a_direct_count(baseline_run: RunResult):
    deploys = baseline_run.events["deploys"]
    incidents = baseline_run.events["incidents"]
    assert deploys.height > 0 and incidents["resolved"].is_not_null().sum() > 0
    got = dora(deploys, incidents, days=baseline_run.days)
    failed = deploys["failed"].to_numpy()
    lead = np.repeat(deploys["lead_time_hours"].to_numpy(), deploys["batch_size"].to_numpy())
    resolved = incidents.filter(pl.col("resolved").is_not_null())
    restore = (resolved["resolved"] - resolved["started"]).dt.total_seconds().to_numpy() / 3600
    assert got["deploy_frequency_per_day"] == pytest.approx(len(failed) / baseline_run.days)
    assert got["change_failure_rate_pct"] == pytest.approx(100 * failed.sum() / len(failed))
    assert got["lead_time_hours"] == pytest.approx(np.median(lead))
    assert got["time_to_restore_hours"] == pytest.approx(np.median(restore))
    summary = baseline_run.summary()
    for key, value in got.items():
        assert summary[key] == pytest.approx(value, nan_ok=True), key


def test_incidents_are_ordered_in_time(baseline_run: RunResult):
    incidents = baseline_run.events["incidents"]
    assert incidents.height > 0
    assert incidents["incident_id"].n_unique() == incidents.height
    assert (incidents["started"] <= incidents["detected"]).all()
    resolved = incidents.filter(pl.col("resolved").is_not_null())
    assert resolved.height > 0
    assert (resolved["detected"] <= resolved["resolved"]).all()
    end = baseline_run.start + timedelta(days=baseline_run.days)
    assert (incidents["started"] < end).all()


def test_pages_reference_incidents_that_exist(baseline_run: RunResult):
    pages = baseline_run.events["pages"]
    incidents = baseline_run.events["incidents"]
    assert pages.height > 0
    assert set(pages["incident_id"]) <= set(incidents["incident_id"])
    joined = pages.join(incidents, on="incident_id", suffix="_incident")
    assert (joined["time"] >= joined["detected"]).all(), "no page before detection"
    assert (joined["team"] == joined["team_incident"]).all(), "the owning team is paged"


def test_user_days_have_no_more_errors_than_sessions(baseline_run: RunResult):
    days = baseline_run.events["user_days"]
    assert days.height > 0
    assert (days["errors"] >= 0).all()
    assert (days["sessions"] >= days["errors"]).all()
    assert days.select("day", "user").n_unique() == days.height
    left = days.filter(pl.col("churned")).group_by("user").agg(pl.col("day").min().alias("gone"))
    later = days.join(left, on="user").filter(pl.col("day") > pl.col("gone"))
    assert later.height == 0, "a user who churned never comes back under the same id"
