"""Every intervention kind is declared whole, acts on the world at ``at`` and is undone at
``until``.

The first tests check each kind's one declaration: spec, words for people, controls and
effect. The others build the baseline with one intervention added, step the model to just
before, into and past the intervention window, and check the world's state directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orgtwin.scenario import interventions as iv
from orgtwin.scenario.fields import Knob, knob
from orgtwin.scenario.load import load_scenario
from orgtwin.units import WORK_END_HOUR, WORK_START_HOUR, WORKWEEK_HOURS
from orgtwin.world.build import World
from orgtwin.world.model import OrgModel

BASELINE = Path(__file__).resolve().parents[2] / "scenarios" / "baseline.yaml"
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


KINDS = list(iv.KINDS.items())


@pytest.mark.parametrize(("kind", "spec"), KINDS, ids=[k for k, _ in KINDS])
def test_every_kind_declares_its_title_words_and_effect(kind: str, spec: type):
    assert spec.title != iv.InterventionSpec.title, f"{kind} has no title of its own"
    assert spec.words is not iv.InterventionSpec.words, f"{kind} does not say itself in words"
    assert spec.effect is not iv.InterventionSpec.effect, f"{kind} declares no effect"
    assert spec.__doc__ and spec.__doc__ != iv.InterventionSpec.__doc__


@pytest.mark.parametrize(("kind", "spec"), KINDS, ids=[k for k, _ in KINDS])
def test_every_kind_documents_its_fields_and_offers_a_control(kind: str, spec: type):
    own = [name for name in spec.model_fields if name not in iv.InterventionSpec.model_fields]
    undocumented = [
        name for name in own if name != "kind" and not spec.model_fields[name].description
    ]
    assert not undocumented, f"{kind}: {undocumented} have no description"
    knobs = [name for name in own if knob(spec, name) is not None]
    has_fields = [name for name in own if name not in ("kind", "teams", "services", "segments",
                                                      "features", "vendor")]  # fmt: skip
    if has_fields and kind != "vendor_swap":
        assert knobs, f"{kind} offers no control for any of {has_fields}"


def test_knobs_state_their_range_or_leave_it_to_the_scenario():
    for spec in iv.KINDS.values():
        for name in spec.model_fields:
            offered = knob(spec, name)
            if offered is None:
                continue
            assert isinstance(offered, Knob) and offered.label
            if offered.low is not None and offered.high is not None:
                assert offered.low < offered.high, (spec.__name__, name)


def test_the_world_offers_what_interventions_use():
    hooks = [n for n in dir(iv.RunningWorld) if not n.startswith("_")]
    hooks += list(iv.RunningWorld.__annotations__)
    fields = set(World.__dataclass_fields__)
    missing = [name for name in hooks if not hasattr(World, name) and name not in fields]
    assert not missing


def test_words_say_the_change_and_its_size():
    scenario = load_scenario(BASELINE)
    price = iv.PriceChange(kind="price_change", segments=["pro_us"], price_usd_month=15)
    board = iv.ApprovalBoard(kind="approval_board", meeting_every_hours=336)
    outage = iv.VendorOutage(kind="vendor_outage", vendor="stripe", at=1, until="30h")
    assert price.words(scenario) == f"price ${scenario.segments['pro_us'].price_usd_month:g} → $15"
    assert board.words(scenario) == "approval board every 2 weeks"
    assert outage.words(scenario) == "6 h stripe outage"
    assert board.describe() == "approval board"
    assert iv.DeployFreeze(kind="deploy_freeze", label="code freeze").describe() == "code freeze"


def test_price_change_sets_and_restores_the_price():
    model = model_with(window("price_change", segments=["pro_us"], factor=1.5))
    segment = model.world.segments_named(["pro_us"])[0]
    before = segment.price_usd_month
    step_to(model, AT + 0.5)
    assert segment.price_usd_month == pytest.approx(before * 1.5)
    assert model.world.segments_named(["pro_eu"])[0].price_usd_month == before
    step_to(model, UNTIL + 0.5)
    assert segment.price_usd_month == before


def test_approval_board_ships_only_at_meetings():
    model = model_with(window("approval_board", teams=["web"], meeting_every_hours=24))
    web = model.world.teams_named(["web"])[0]
    step_to(model, AT)
    deploys_before = len(model.world.events.deploys)
    step_to(model, UNTIL)
    ticks = {d.tick for d in model.world.events.deploys[deploys_before:] if d.team == "web"}
    assert ticks, "the board approved nothing in two days"
    assert {(t - web.policy.anchor) % 24 for t in ticks} == {0}
    step_to(model, UNTIL + 1)
    assert web.policy.kind == "continuous"


def test_deploy_freeze_stops_deploys_in_its_window():
    model = model_with(window("deploy_freeze"))
    step_to(model, UNTIL + 1)
    ticks = [d.tick for d in model.world.events.deploys]
    assert not [t for t in ticks if AT * 24 <= t < UNTIL * 24]
    assert [t for t in ticks if t >= UNTIL * 24], "deploys did not resume"


def test_oncall_rotation_size_changes_and_returns():
    model = model_with(window("oncall_rotation", teams=["core"], oncall_size=2))
    core = model.world.teams_named(["core"])[0]
    step_to(model, AT + 0.1)
    assert core.oncall_size == 2
    step_to(model, UNTIL + 0.1)
    assert core.oncall_size == 6


def test_staffing_layoff_and_hiring_freeze():
    model = model_with(
        {"kind": "staffing", "at": AT, "teams": ["data"], "headcount_change": -2,
         "hiring_freeze": True},
    )  # fmt: skip
    data = model.world.teams_named(["data"])[0]
    step_to(model, AT + 0.1)
    assert data.headcount == 4
    assert data.hiring_frozen


def test_autoscaling_policy_changes_only_named_fields_and_services():
    model = model_with(window("autoscaling_policy", services=["web-bff"], max_replicas=3))
    mesh = model.world.mesh
    i, j = model.world.service_indices(["web-bff", "projects"])
    target_before = mesh.target_utilisation[i]
    step_to(model, AT + 0.6)  # mid-day: demand wants more than three replicas
    assert mesh.max_replicas[i] == 3 and mesh.replicas[i] <= 3
    assert mesh.max_replicas[j] == 50 and mesh.target_utilisation[i] == target_before
    step_to(model, UNTIL + 0.1)
    assert mesh.max_replicas[i] == 50


def test_spot_share_discounts_cost_and_preempts():
    model = model_with(window("spot_share", spot_share=0.8))
    mesh = model.world.mesh
    unit_before = mesh.replica_unit_cost().copy()
    step_to(model, AT + 1)
    assert np.all(mesh.replica_unit_cost() < unit_before)
    preempted = model.world.recorder.metric("service", "preempted_replicas")
    assert preempted[: AT * 24].sum() == 0 and preempted[AT * 24 : model.tick].sum() > 0
    step_to(model, UNTIL + 0.1)
    np.testing.assert_allclose(mesh.replica_unit_cost(), unit_before)


def test_vendor_swap_moves_calls_and_back():
    adyen = {"kind": "payments", "latency_ms": 200}
    model = model_with(
        window("vendor_swap", vendor="stripe", to="adyen"),
        vendors={"adyen": adyen},
    )
    stripe, new = model.world.vendor_index("stripe"), model.world.vendor_index("adyen")
    calls_before = model.world.mesh.vendor_fanout[:, stripe].copy()
    step_to(model, AT + 0.5)
    assert model.world.mesh.vendor_fanout[:, stripe].sum() == 0
    np.testing.assert_allclose(model.world.mesh.vendor_fanout[:, new], calls_before)
    step_to(model, UNTIL + 0.5)
    np.testing.assert_allclose(model.world.mesh.vendor_fanout[:, stripe], calls_before)


def test_vendor_outage_takes_the_vendor_down_exactly_in_its_window():
    model = model_with(window("vendor_outage", vendor="sendgrid"))
    v = model.world.vendor_index("sendgrid")
    assert not model.world.vendor_status.up[AT * 24 : UNTIL * 24, v].any()
    step_to(model, UNTIL + 1)
    errors = model.world.recorder.metric("vendor", "error_rate")[:, v]
    assert np.all(errors[AT * 24 : UNTIL * 24] == 1.0)


def test_chaos_program_runs_drills_in_working_hours_on_the_teams_own_services():
    model = model_with({"kind": "chaos_program", "at": 0, "drills_per_month": 20.0}, days=14)
    step_to(model, 14)
    model.finish()
    world = model.world
    drills = [i for i in world.events.incidents if i.cause == "chaos"]
    assert len(drills) >= 10
    offsets = {t.name: t.utc_offset_hours for t in world.teams}
    for drill in drills:
        owner = world.owner(world.service_indices([drill.service])[0])
        assert owner.name == drill.team
        local = world.clock.hour_of_week(drill.started, offsets[drill.team])
        assert local < WORKWEEK_HOURS, f"drill {drill.incident_id} on a weekend"
        assert WORK_START_HOUR <= local % 24 < WORK_END_HOUR, f"drill at {local % 24}:00"
    assert not [p for p in world.events.pages if p.incident_id in {d.incident_id for d in drills}]


def test_error_budget_policy_freezes_a_team_over_budget():
    model = model_with(
        {"kind": "error_budget_policy", "at": 0, "freeze_above_budget_used": 0.01},
        {"kind": "vendor_outage", "at": 1, "until": 1.5, "vendor": "auth0"},
    )
    step_to(model, 2.1)
    platform = model.world.teams_named(["platform"])[0]
    assert platform.budget_frozen  # auth0's outage burnt the platform team's budget


def test_traffic_surge_multiplies_sessions_of_named_features():
    model = model_with(window("traffic_surge", features=["search"], multiplier=3.0))
    f = model.world.features.index["search"]
    step_to(model, AT + 0.5)
    assert (
        model.world.features.surge[f] == 3.0
        and model.world.features.surge.sum() == 3.0 + len(model.world.features.surge) - 1
    )
    step_to(model, UNTIL + 0.5)
    assert np.all(model.world.features.surge == 1.0)


def test_feature_launch_adds_traffic_and_ships_a_large_deploy():
    overrides = {
        "features": {"insights": {"entry": "reports-api", "launched": False}},
    }
    model = model_with(
        {"kind": "feature_launch", "at": AT, "feature": "insights", "launch_changes": 40},
        **overrides,
    )
    f = model.world.features.index["insights"]
    step_to(model, AT)
    assert model.world.recorder.metric("feature", "sessions")[: AT * 24, f].sum() == 0
    step_to(model, AT + 1)
    assert model.world.recorder.metric("feature", "sessions")[AT * 24 : model.tick, f].sum() > 0
    deploys = model.world.events.deploys
    launch = [d for d in deploys if d.tick == AT * 24 and d.service == "reports-api"]
    assert launch and launch[0].batch_size >= 40


def test_dark_launch_hides_errors_until_reveal():
    overrides = {"features": {"insights": {"entry": "reports-api", "launched": False}}}
    model = model_with(
        {"kind": "feature_launch", "at": AT, "until": UNTIL, "feature": "insights",
         "dark": True},
        **overrides,
    )  # fmt: skip
    f = model.world.features.index["insights"]
    step_to(model, AT + 0.5)
    assert model.world.features.visible[f] == 0.0
    assert model.world.recorder.metric("feature", "sessions")[model.tick - 1, f] > 0
    step_to(model, UNTIL + 0.5)
    assert model.world.features.visible[f] == 1.0
