"""Every intervention family acts on the world at ``at`` and is undone at ``until``.

Each test builds the baseline with one intervention added, steps the model to just
before, into and past the intervention window, and checks the world's state directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orgtwin.scenario.load import load_scenario
from orgtwin.world.model import OrgModel

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
AT, UNTIL = 2, 4  # days


def model_with(*interventions: dict, days: int = 6, **overrides: object) -> OrgModel:
    scenario = load_scenario(
        BASELINE, overrides={"interventions": list(interventions), **overrides}
    )
    return OrgModel(scenario, seed=3, days=days)


def step_to(model: OrgModel, day: float) -> OrgModel:
    while model.tick < round(day * 24):
        model.step()
    return model


def window(kind: str, **fields: object) -> dict:
    return {"kind": kind, "at": AT, "until": UNTIL, **fields}


def test_price_change_sets_and_restores_the_price():
    model = model_with(window("price_change", segments=["pro_us"], factor=1.5))
    segment = model.segments_by_name["pro_us"]
    before = segment.price_usd_month
    step_to(model, AT + 0.5)
    assert segment.price_usd_month == pytest.approx(before * 1.5)
    assert model.segments_by_name["pro_eu"].price_usd_month == before
    step_to(model, UNTIL + 0.5)
    assert segment.price_usd_month == before


def test_approval_board_ships_only_at_meetings():
    model = model_with(window("approval_board", teams=["web"], meeting_every_hours=24))
    web = model.teams_by_name["web"]
    step_to(model, AT)
    deploys_before = len(model.events.deploys)
    step_to(model, UNTIL)
    ticks = {tick for tick, _, team, *_ in model.events.deploys[deploys_before:] if team == "web"}
    assert ticks, "the board approved nothing in two days"
    assert {(t - web.policy.anchor) % 24 for t in ticks} == {0}
    step_to(model, UNTIL + 1)
    assert web.policy.kind == "continuous"


def test_deploy_freeze_stops_deploys_in_its_window():
    model = model_with(window("deploy_freeze"))
    step_to(model, UNTIL + 1)
    ticks = [tick for tick, *_ in model.events.deploys]
    assert not [t for t in ticks if AT * 24 <= t < UNTIL * 24]
    assert [t for t in ticks if t >= UNTIL * 24], "deploys did not resume"


def test_oncall_rotation_size_changes_and_returns():
    model = model_with(window("oncall_rotation", teams=["core"], oncall_size=2))
    core = model.teams_by_name["core"]
    step_to(model, AT + 0.1)
    assert core.oncall_size == 2
    step_to(model, UNTIL + 0.1)
    assert core.oncall_size == 6


def test_staffing_layoff_and_hiring_freeze():
    model = model_with(
        {"kind": "staffing", "at": AT, "teams": ["data"], "headcount_change": -2,
         "hiring_freeze": True},
    )  # fmt: skip
    data = model.teams_by_name["data"]
    step_to(model, AT + 0.1)
    assert data.headcount == 4
    assert data.hiring_frozen


def test_autoscaling_policy_changes_only_named_fields_and_services():
    model = model_with(window("autoscaling_policy", services=["web-bff"], max_replicas=3))
    mesh = model.mesh
    i, j = model.service_index["web-bff"], model.service_index["projects"]
    target_before = mesh.target_utilisation[i]
    step_to(model, AT + 0.6)  # mid-day: demand wants more than three replicas
    assert mesh.max_replicas[i] == 3 and mesh.replicas[i] <= 3
    assert mesh.max_replicas[j] == 50 and mesh.target_utilisation[i] == target_before
    step_to(model, UNTIL + 0.1)
    assert mesh.max_replicas[i] == 50


def test_spot_share_discounts_cost_and_preempts():
    model = model_with(window("spot_share", spot_share=0.8))
    mesh = model.mesh
    unit_before = mesh.replica_unit_cost().copy()
    step_to(model, AT + 1)
    assert np.all(mesh.replica_unit_cost() < unit_before)
    preempted = model.recorder.metric("service", "preempted_replicas")
    assert preempted[: AT * 24].sum() == 0 and preempted[AT * 24 : model.tick].sum() > 0
    step_to(model, UNTIL + 0.1)
    np.testing.assert_allclose(mesh.replica_unit_cost(), unit_before)


def test_vendor_swap_moves_calls_and_back():
    adyen = {"kind": "payments", "latency_ms": 200}
    model = model_with(
        window("vendor_swap", vendor="stripe", to="adyen"),
        vendors={"adyen": adyen},
    )
    stripe, new = model.vendor_index["stripe"], model.vendor_index["adyen"]
    calls_before = model.mesh.vendor_fanout[:, stripe].copy()
    step_to(model, AT + 0.5)
    assert model.mesh.vendor_fanout[:, stripe].sum() == 0
    np.testing.assert_allclose(model.mesh.vendor_fanout[:, new], calls_before)
    step_to(model, UNTIL + 0.5)
    np.testing.assert_allclose(model.mesh.vendor_fanout[:, stripe], calls_before)


def test_vendor_outage_takes_the_vendor_down_exactly_in_its_window():
    model = model_with(window("vendor_outage", vendor="sendgrid"))
    v = model.vendor_index["sendgrid"]
    assert not model.vendor_up[AT * 24 : UNTIL * 24, v].any()
    step_to(model, UNTIL + 1)
    errors = model.recorder.metric("vendor", "error_rate")[:, v]
    assert np.all(errors[AT * 24 : UNTIL * 24] == 1.0)


def test_chaos_program_runs_drills_in_working_hours():
    model = model_with({"kind": "chaos_program", "at": 0, "drills_per_month": 20.0}, days=14)
    step_to(model, 14)
    model.finish()
    drills = [i for i in model.events.incidents if i[4] == "chaos"]
    assert drills
    for _, service, team, *_ in drills:
        assert model.services[model.service_index[service]].team == team
    assert not [p for p in model.events.pages if p[3] in {d[0] for d in drills}]


def test_error_budget_policy_freezes_a_team_over_budget():
    model = model_with(
        {"kind": "error_budget_policy", "at": 0, "freeze_above_budget_used": 0.01},
        {"kind": "vendor_outage", "at": 1, "until": 1.5, "vendor": "auth0"},
    )
    step_to(model, 2.1)
    platform = model.teams_by_name["platform"]
    assert platform.budget_frozen  # auth0's outage burnt the platform team's budget


def test_traffic_surge_multiplies_sessions_of_named_features():
    model = model_with(window("traffic_surge", features=["search"], multiplier=3.0))
    f = model.feature_index["search"]
    step_to(model, AT + 0.5)
    assert model.surge[f] == 3.0 and model.surge.sum() == 3.0 + len(model.surge) - 1
    step_to(model, UNTIL + 0.5)
    assert np.all(model.surge == 1.0)


def test_feature_launch_adds_traffic_and_ships_a_large_deploy():
    overrides = {
        "features": {"insights": {"entry": "reports-api", "launched": False}},
    }
    model = model_with(
        {"kind": "feature_launch", "at": AT, "feature": "insights", "launch_changes": 40},
        **overrides,
    )
    f = model.feature_index["insights"]
    step_to(model, AT)
    assert model.recorder.metric("feature", "sessions")[: AT * 24, f].sum() == 0
    step_to(model, AT + 1)
    assert model.recorder.metric("feature", "sessions")[AT * 24 : model.tick, f].sum() > 0
    launch = [d for d in model.events.deploys if d[0] == AT * 24 and d[1] == "reports-api"]
    assert launch and launch[0][3] >= 40


def test_dark_launch_hides_errors_until_reveal():
    overrides = {"features": {"insights": {"entry": "reports-api", "launched": False}}}
    model = model_with(
        {"kind": "feature_launch", "at": AT, "until": UNTIL, "feature": "insights",
         "dark": True},
        **overrides,
    )  # fmt: skip
    f = model.feature_index["insights"]
    step_to(model, AT + 0.5)
    assert model.feature_visible[f] == 0.0
    assert model.recorder.metric("feature", "sessions")[model.tick - 1, f] > 0
    step_to(model, UNTIL + 0.5)
    assert model.feature_visible[f] == 1.0
