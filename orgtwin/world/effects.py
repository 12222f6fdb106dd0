"""Interventions: how each scenario change acts on the running world.

Every intervention family has one handler here, registered in :data:`HANDLERS`. A
handler receives the model and the intervention and returns ``(apply, revert)``: two
callables the model runs at the intervention's ``at`` and ``until`` ticks. ``apply``
remembers what it replaced so ``revert`` restores exactly that. A handler may also act
when the world is built (``plan``), for changes known in advance such as a vendor
outage. To add a family: declare its spec in :mod:`orgtwin.scenario`, write a handler,
register it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from orgtwin.agents.teams import DeployPolicy
from orgtwin.scenario import spec as sc

if TYPE_CHECKING:
    from orgtwin.world.model import OrgModel

Action = Callable[[], None]
Handler = Callable[["OrgModel", Any], tuple[Action, Action]]


def _select(names: Iterable[str], selector: sc.Selector) -> list[str]:
    names = list(names)
    return names if selector == "*" else [n for n in names if n in selector]


def _swap_attr(objects: list[Any], attr: str, value: Any) -> tuple[Action, Action]:
    """Set ``attr`` on each object; revert restores each object's own old value."""
    saved: list[Any] = []

    def apply() -> None:
        saved[:] = [getattr(o, attr) for o in objects]
        for o in objects:
            setattr(o, attr, value(o) if callable(value) else value)

    def revert() -> None:
        for o, old in zip(objects, saved, strict=True):
            setattr(o, attr, old)

    return apply, revert


def _swap_array(array: np.ndarray, index: list[int], value: float) -> tuple[Action, Action]:
    """Set ``array[index] = value``; revert restores the old entries."""
    saved = np.empty(0)

    def apply() -> None:
        nonlocal saved
        saved = array[index].copy()
        array[index] = value

    def revert() -> None:
        array[index] = saved

    return apply, revert


def _chain(*pairs: tuple[Action, Action]) -> tuple[Action, Action]:
    def apply() -> None:
        for a, _ in pairs:
            a()

    def revert() -> None:
        for _, r in reversed(pairs):
            r()

    return apply, revert


def price_change(model: OrgModel, spec: sc.PriceChange) -> tuple[Action, Action]:
    """New price (or a factor on the price) for the selected segments."""
    segments = [model.segments_by_name[n] for n in _select(model.segments_by_name, spec.segments)]
    if spec.factor is not None:
        return _swap_attr(segments, "price_usd_month", lambda s: s.price_usd_month * spec.factor)
    return _swap_attr(segments, "price_usd_month", spec.price_usd_month)


def feature_launch(model: OrgModel, spec: sc.FeatureLaunch) -> tuple[Action, Action]:
    """Traffic starts on the feature, shipped as one large deploy by its owning team."""
    f = model.feature_index[spec.feature]
    entry = model.feature_entry[f]
    team = model.teams_by_name[model.services[entry].team]
    weights = [_swap_array(seg.feature_weights, [f], spec.session_share) for seg in model.segments]
    visible = _swap_array(model.feature_visible, [f], 0.0 if spec.dark else 1.0)
    apply_traffic, revert_traffic = _chain(*weights, visible)

    def apply() -> None:
        apply_traffic()
        team.deploy(model.tick, entry, extra_changes=spec.launch_changes, canary=spec.dark)

    def revert() -> None:
        if spec.dark:  # the end of a dark launch is the reveal: users now see the feature
            model.feature_visible[f] = 1.0
        else:
            revert_traffic()

    return apply, revert


def approval_board(model: OrgModel, spec: sc.ApprovalBoard) -> tuple[Action, Action]:
    """Deploys wait for a board that meets every ``meeting_every_hours`` (Tuesdays 10:00)."""
    teams = [model.teams_by_name[n] for n in _select(model.teams_by_name, spec.teams)]

    def policy(team: Any) -> DeployPolicy:
        anchor = model.local_anchor(team.utc_offset_hours, weekday=1, hour=10)
        return DeployPolicy("approval_board", spec.meeting_every_hours, True, anchor)

    return _swap_attr(teams, "policy", policy)


def deploy_freeze(model: OrgModel, spec: sc.DeployFreeze) -> tuple[Action, Action]:
    """No deploys while the freeze lasts (freezes nest)."""
    teams = [model.teams_by_name[n] for n in _select(model.teams_by_name, spec.teams)]

    def shift(by: int) -> Action:
        def act() -> None:
            for t in teams:
                t.freezes += by

        return act

    return shift(+1), shift(-1)


def oncall_rotation(model: OrgModel, spec: sc.OncallRotation) -> tuple[Action, Action]:
    """A new on-call rotation size."""
    teams = [model.teams_by_name[n] for n in _select(model.teams_by_name, spec.teams)]
    return _swap_attr(teams, "oncall_target", spec.oncall_size)


def staffing(model: OrgModel, spec: sc.Staffing) -> tuple[Action, Action]:
    """Hire or lay off (not undone at ``until``); freeze hiring until ``until``."""
    teams = [model.teams_by_name[n] for n in _select(model.teams_by_name, spec.teams)]

    def apply() -> None:
        for t in teams:
            if spec.hiring_freeze:
                t.set_hiring_frozen(True, model.day)
            t.change_headcount(spec.headcount_change, model.day)

    def revert() -> None:
        if spec.hiring_freeze:
            for t in teams:
                t.set_hiring_frozen(False, model.day)

    return apply, revert


def autoscaling_policy(model: OrgModel, spec: sc.AutoscalingPolicy) -> tuple[Action, Action]:
    """New autoscaling settings for the selected services."""
    index = [model.service_index[n] for n in _select(model.service_index, spec.services)]
    mesh = model.mesh
    fields = {
        "enabled": mesh.autoscale_enabled,
        "target_utilisation": mesh.target_utilisation,
        "min_replicas": mesh.min_replicas,
        "max_replicas": mesh.max_replicas,
        "lag_hours": mesh.lag_hours,
    }
    pairs = [
        _swap_array(array, index, getattr(spec, name))
        for name, array in fields.items()
        if getattr(spec, name) is not None
    ]
    return _chain(*pairs)


def spot_share(model: OrgModel, spec: sc.SpotShare) -> tuple[Action, Action]:
    """Run a share of the selected services' replicas on spot instances."""
    index = [model.service_index[n] for n in _select(model.service_index, spec.services)]
    return _swap_array(model.mesh.spot_share, index, spec.spot_share)


def vendor_swap(model: OrgModel, spec: sc.VendorSwap) -> tuple[Action, Action]:
    """Every call to ``vendor`` goes to ``to`` instead."""
    fanout = model.mesh.vendor_fanout
    old, new = model.vendor_index[spec.vendor], model.vendor_index[spec.to]
    saved = fanout.copy()

    def apply() -> None:
        saved[:] = fanout
        fanout[:, new] += fanout[:, old]
        fanout[:, old] = 0.0

    def revert() -> None:
        fanout[:] = saved

    return apply, revert


def vendor_outage(model: OrgModel, spec: sc.VendorOutage) -> tuple[Action, Action]:
    """Planned when the world is built; nothing to do at run time."""
    return _noop, _noop


def plan_vendor_outage(model: OrgModel, spec: sc.VendorOutage) -> None:
    """Add the outage to the vendor's plan before the run starts."""
    end = spec.end_hour if spec.end_hour is not None else model.n_ticks
    model.vendors_by_name[spec.vendor].force_outage(spec.start_hour, end)


def chaos_program(model: OrgModel, spec: sc.ChaosProgram) -> tuple[Action, Action]:
    """Planned drills in working hours on the selected teams' services."""
    teams = [model.teams_by_name[n] for n in _select(model.teams_by_name, spec.teams)]
    settings = spec.model_dump(include={"drills_per_month", "drill_hours", "expertise_per_drill"})
    return _swap_attr(teams, "chaos", settings)


def error_budget_policy(model: OrgModel, spec: sc.ErrorBudgetPolicy) -> tuple[Action, Action]:
    """Freeze a team's deploys while its error budget over the window is spent."""
    teams = [model.teams_by_name[n] for n in _select(model.teams_by_name, spec.teams)]
    gate = (spec.window_days, spec.freeze_above_budget_used)
    return _swap_attr(teams, "budget_gate", gate)


def traffic_surge(model: OrgModel, spec: sc.TrafficSurge) -> tuple[Action, Action]:
    """Multiply the sessions of the selected features."""
    index = [model.feature_index[n] for n in _select(model.feature_index, spec.features)]

    def scale(by: float) -> Action:
        def act() -> None:
            model.surge[index] *= by

        return act

    return scale(spec.multiplier), scale(1.0 / spec.multiplier)


def _noop() -> None:
    return None


HANDLERS: dict[str, Handler] = {
    "price_change": price_change,
    "feature_launch": feature_launch,
    "approval_board": approval_board,
    "deploy_freeze": deploy_freeze,
    "oncall_rotation": oncall_rotation,
    "staffing": staffing,
    "autoscaling_policy": autoscaling_policy,
    "spot_share": spot_share,
    "vendor_swap": vendor_swap,
    "vendor_outage": vendor_outage,
    "chaos_program": chaos_program,
    "error_budget_policy": error_budget_policy,
    "traffic_surge": traffic_surge,
}
"""Intervention kind → handler returning ``(apply, revert)``."""

PLANNERS: dict[str, Callable[[OrgModel, Any], None]] = {"vendor_outage": plan_vendor_outage}
"""Intervention kind → action taken when the world is built, before the first tick."""


def schedule(model: OrgModel, interventions: list[Any]) -> dict[int, list[Action]]:
    """Turn the scenario's interventions into actions keyed by the tick they run at.

    Interventions starting at the same tick apply in file order; reverts run before
    applies at the same tick, so back-to-back changes hand over cleanly.
    """
    reverts: dict[int, list[Action]] = {}
    applies: dict[int, list[Action]] = {}
    for spec in interventions:
        if spec.kind in PLANNERS:
            PLANNERS[spec.kind](model, spec)
        apply, revert = HANDLERS[spec.kind](model, spec)
        applies.setdefault(spec.start_hour, []).append(apply)
        if spec.end_hour is not None:
            reverts.setdefault(spec.end_hour, []).append(revert)
    ticks = sorted(set(applies) | set(reverts))
    return {t: [*reverts.get(t, []), *applies.get(t, [])] for t in ticks}
