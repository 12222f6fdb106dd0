"""OrgModel behaves like a Mesa model: run protocol, batch_run with levers, DataCollector.

The KPIs a Mesa user reads (``mesa.batch_run``, ``model.datacollector``) are checked
against :func:`orgtwin.run`'s per-seed summary for the same scenario, seeds and days; the
hourly model variables against the recorded series, recomputed by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import mesa
import numpy as np
import polars as pl
import pytest
from orgtwin.agents.teams import Team
from orgtwin.agents.users import UserSegment

import orgtwin
from orgtwin import LeverError, RunError, derive_seed, simulate
from orgtwin.scenario.levers import apply_levers
from orgtwin.scenario.spec import Scenario
from orgtwin.world.kpis import KPIS
from orgtwin.world.model import OrgModel

DAYS = 3
BASE_SEED = 11
PRICE = "segments.pro_us.price_usd_month"


def per_tick(series: pl.DataFrame, entity_type: str, metric: str) -> np.ndarray:
    """Sum over entities of one recorded metric at each tick, by hand."""
    frame = series.filter((pl.col("entity_type") == entity_type) & (pl.col("metric") == metric))
    return frame.group_by("tick").agg(pl.col("value").sum()).sort("tick")["value"].to_numpy()


def assert_kpis_equal(got: dict[str, float], want: dict[str, float]) -> None:
    """Every KPI equal to float precision (NaN where orgtwin.run has NaN)."""
    for name in KPIS:
        if math.isnan(want[name]):
            assert math.isnan(got[name]), name
        else:
            assert got[name] == pytest.approx(want[name], rel=1e-12, abs=1e-12), name


# --------------------------------------------------------------------------- batch_run


def test_batch_run_over_seeds_and_a_lever_gives_orgtwin_runs_kpis(baseline_path: Path):
    """2 seeds x 2 prices: one row per run at the last hour, KPIs equal to orgtwin.run's."""
    seeds = [derive_seed(BASE_SEED, r) for r in range(2)]
    rows = mesa.batch_run(
        OrgModel,
        parameters={"scenario": str(baseline_path), "seed": seeds, "days": [DAYS],
                    PRICE: [12.0, 15.0]},
        max_steps=DAYS * 24, number_processes=1, display_progress=False,
    )  # fmt: skip
    assert len(rows) == 4
    assert {row["Step"] for row in rows} == {DAYS * 24 - 1}  # the last hour
    base = orgtwin.load_scenario(baseline_path)
    revenue = {}
    for price in (12.0, 15.0):
        runs = orgtwin.run(apply_levers(base, {PRICE: price}), days=DAYS, seeds=2, seed=BASE_SEED)
        for want in runs.summary.iter_rows(named=True):
            (got,) = [r for r in rows if r["seed"] == want["seed"] and r[PRICE] == price]
            assert_kpis_equal(got, want)
            revenue[want["seed"], price] = got["revenue_usd"]
    for seed in seeds:  # the lever reached the run: dearer pro_us, more revenue in 3 days
        assert revenue[seed, 15.0] > revenue[seed, 12.0] * 1.05
    assert revenue[seeds[0], 12.0] != revenue[seeds[1], 12.0]  # the seeds differ


def test_batch_run_every_hour_has_the_series_and_kpis_only_at_the_end(small_scenario: Scenario):
    rows = mesa.batch_run(
        OrgModel, parameters={"scenario": [small_scenario], "seed": 3, "days": 2},
        max_steps=48, data_collection_period=1, number_processes=1, display_progress=False,
    )  # fmt: skip
    assert [row["Step"] for row in rows] == list(range(48))
    assert all(math.isnan(row["margin_usd"]) for row in rows[:-1])
    want = simulate(small_scenario, seed=3, days=2)
    assert_kpis_equal(rows[-1], want.summary())
    active = per_tick(want.series, "segment", "active_users")
    assert [row["active_users"] for row in rows] == active.tolist()


def test_a_lever_with_a_wildcard_reaches_every_team(small_scenario: Scenario):
    model = OrgModel(small_scenario, seed=1, days=1, **{"teams.*.oncall_size": 1})
    assert model.teams.get("oncall_size") == [1, 1]
    assert [t.oncall_size for t in small_scenario.teams.values()] == [3, 2]  # not mutated


@pytest.mark.parametrize(
    ("levers", "words"),
    [
        ({"teams.*.oncal_size": 2}, "did you mean 'oncall_size'?"),
        ({"segments.gold.price_usd_month": 2}, "segments.gold is not in the scenario"),
        ({"teams.*.oncall_size": 0}, "greater than or equal to 1"),
        ({"rng": 4}, "did you mean 'seed'?"),
        ({"agent_reporter": True}, "did you mean 'agent_reporters'?"),
    ],
)
def test_an_unknown_lever_or_a_bad_value_is_a_lever_error(small_scenario, levers, words):
    with pytest.raises(LeverError, match=words.replace("?", r"\?").replace("*", r"\*")):
        OrgModel(small_scenario, seed=1, days=1, **levers)


def test_batch_run_reports_an_unknown_lever(small_scenario: Scenario):
    with pytest.raises(LeverError, match="did you mean 'oncall_size'"):
        mesa.batch_run(
            OrgModel, parameters={"scenario": [small_scenario], "seed": 1, "days": 1,
                                  "teams.web.oncal_size": [2]},
            max_steps=24, display_progress=False,
        )  # fmt: skip


def test_a_bare_scenario_in_batch_run_is_refused_with_a_hint(small_scenario: Scenario):
    """batch_run iterates a bare Scenario (pydantic yields its fields): say to wrap it."""
    with pytest.raises(RunError, match=r"put a Scenario in a list"):
        mesa.batch_run(
            OrgModel, parameters={"scenario": small_scenario, "seed": 1, "days": 1},
            max_steps=24, display_progress=False,
        )  # fmt: skip


# --------------------------------------------------------------------------- run protocol


def test_running_turns_false_after_the_last_hour_and_a_step_past_it_is_refused(
    small_scenario: Scenario,
):
    model = OrgModel(small_scenario, seed=2, days=2)
    for hour in range(48):
        assert model.running, hour
        model.step()
    assert not model.running and model.tick == 48 and model.steps == 48
    with pytest.raises(RunError, match=r"run is over after 2 days .*the last was day 1"):
        model.step()
    assert model.steps == 48 and model.tick == 48  # the refused step left no trace
    model.finish()  # already closed by the last hour: nothing is recorded twice
    assert len(model.world.events.calls) == len(
        {(c.caller, c.callee) for c in model.world.events.calls}
    )


def test_mesa_run_model_stops_at_the_end(small_scenario: Scenario):
    model = OrgModel(small_scenario, seed=2, days=1)
    model.run_model()
    assert model.steps == 24 and not model.running


def test_the_scenario_may_be_a_path_or_a_mapping(baseline_path: Path, small_spec: dict):
    from_path = OrgModel(baseline_path, seed=1, days=1)
    assert from_path.scenario.name == "baseline" and from_path.scenario.source.endswith(".yaml")
    from_mapping = OrgModel(small_spec, seed=1, days=1)
    assert list(from_mapping.scenario.teams) == ["web", "platform"]


def test_days_must_be_a_whole_number(small_scenario: Scenario):
    with pytest.raises(RunError, match="days must be a whole number >= 1, got 0"):
        OrgModel(small_scenario, seed=1, days=0)


# --------------------------------------------------------------------------- the collector


def test_model_vars_are_the_recorded_series_hour_by_hour(small_scenario: Scenario):
    model = OrgModel(small_scenario, seed=4, days=2)
    collector = model.datacollector
    assert isinstance(collector, mesa.DataCollector)
    for _ in range(5):
        model.step()
    early = collector.get_model_vars_dataframe()
    assert early.shape[0] == 5 and early["users"].isna().all()
    assert collector.kpis() is None
    model.run()
    frame = collector.get_model_vars_dataframe()
    series = simulate(small_scenario, seed=4, days=2).series
    requests = per_tick(series, "feature", "requests")
    errors = per_tick(series, "feature", "errors")
    np.testing.assert_allclose(frame["error_rate"], errors / requests, rtol=1e-12)
    np.testing.assert_allclose(frame["sessions"], per_tick(series, "segment", "sessions"))
    np.testing.assert_allclose(frame["pages_hour"], per_tick(series, "team", "pages"))
    cost = per_tick(series, "service", "cost_usd") + per_tick(series, "vendor", "cost_usd")
    np.testing.assert_allclose(frame["cost_usd_hour"], cost, rtol=1e-12)
    assert frame["revenue_usd_hour"].sum() == pytest.approx(frame["revenue_usd"].iloc[-1])
    assert frame["open_incidents"].min() >= 0


def test_the_hourly_p95_is_the_request_weighted_quantile_of_the_features(
    small_scenario: Scenario,
):
    """Recomputed by hand for a few hours: sort the features by p95, walk to 95% of requests."""
    model = OrgModel(small_scenario, seed=6, days=1)
    model.run()
    frame = model.datacollector.get_model_vars_dataframe()
    latency = model.world.recorder.metric("feature", "latency_p95_ms")
    requests = model.world.recorder.metric("feature", "requests")
    for t in (0, 7, 23):
        pairs = sorted(zip(latency[t], requests[t], strict=True))
        walked = np.cumsum([weight for _, weight in pairs])
        first = next(i for i, w in enumerate(walked) if w >= 0.95 * walked[-1] * (1 - 1e-12))
        assert frame["latency_p95_ms_hour"][t] == pairs[first][0]


def test_agent_reporters_are_opt_in_and_read_each_hour(small_scenario: Scenario):
    plain = OrgModel(small_scenario, seed=5, days=1)
    plain.run()
    assert plain.datacollector.agent_reporters == {} and plain.datacollector._agent_records == {}
    model = OrgModel(small_scenario, seed=5, days=1, agent_reporters=("teams", UserSegment))
    model.run()
    agents = model.datacollector.get_agent_vars_dataframe().reset_index()
    assert set(agents["kind"]) == {"team", "segment"}
    teams = agents[agents["kind"] == "team"].sort_values(["Step", "name"])
    assert len(teams) == 24 * 2
    recorded = model.world.recorder.metric("team", "headcount")  # [ticks, teams]
    names = [t.name for t in model.world.teams]
    for name in names:
        mine = teams[teams["name"] == name]
        np.testing.assert_array_equal(mine["headcount"], recorded[:, names.index(name)])
    assert agents[agents["kind"] == "segment"]["headcount"].isna().all()


def test_agent_reporters_name_known_kinds(small_scenario: Scenario):
    with pytest.raises(RunError, match=r"got 'team' \(did you mean 'teams'\?\)"):
        OrgModel(small_scenario, seed=1, days=1, agent_reporters=["team"])


def test_batch_run_carries_agent_rows(small_scenario: Scenario):
    rows = mesa.batch_run(
        OrgModel, parameters={"scenario": [small_scenario], "seed": 1, "days": 1,
                              "agent_reporters": [(Team,)]},
        max_steps=24, number_processes=1, display_progress=False,
    )  # fmt: skip
    assert sorted(row["name"] for row in rows) == ["platform", "web"]
    assert all(row["Step"] == 23 and row["kind"] == "team" for row in rows)


# --------------------------------------------------------------------------- the registry


def test_mesas_registry_holds_the_agents_the_world_indexes(small_scenario: Scenario):
    model = OrgModel(small_scenario, seed=1, days=1)
    assert model.teams is model.agents_by_type[Team]
    assert list(model.teams) == model.world.teams
    assert list(model.segments) == model.world.segments
    assert list(model.services) == model.world.services
    assert list(model.vendors) == model.world.vendors
    small = model.teams.select(lambda team: team.headcount < 5)
    assert [t.name for t in small] == ["platform"]
    model.teams.do(lambda team: setattr(team, "hiring_frozen", True))
    assert all(t.hiring_frozen for t in model.world.teams)
