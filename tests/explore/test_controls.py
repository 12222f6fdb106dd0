"""Controls (orgtwin/explore/controls.py): the knobs a scenario offers an interactive page.

Every scenario file's controls cover each intervention (on/off, start, length when it
ends, its user-facing fields), apply at their bounds and refuse values beyond them with
the bound named, land on the field they name, and leave the scenario as it is when set
to their current values; moving an outage's start keeps its length. Organisation controls
speak as the sweeps do (one declaration of lever words: their labels are
:func:`~orgtwin.scenario.wording.lever_label`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orgtwin.errors import LeverError
from orgtwin.explore import apply_controls, controls
from orgtwin.explore.controls import Control
from orgtwin.scenario.fields import knob
from orgtwin.scenario.load import load_scenario
from orgtwin.scenario.spec import Scenario
from orgtwin.scenario.wording import lever_label, lever_words

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_FILES = sorted((ROOT / "scenarios").glob("*.yaml"))
CAB = str(ROOT / "scenarios" / "cab_policy.yaml")


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_controls_cover_every_intervention_and_its_fields(path: Path):
    scenario = load_scenario(path)
    paths = {c.path for c in controls(scenario)}
    for i, iv in enumerate(scenario.interventions):
        assert {f"interventions[{i}].active", f"interventions[{i}].at"} <= paths
        fields = {
            name for name in type(iv).model_fields
            if knob(type(iv), name) is not None and getattr(iv, name) is not None
        }  # fmt: skip
        assert {f"interventions[{i}].{name}" for name in fields} <= paths, iv.kind
        if iv.until is not None:
            lengths = {f"interventions[{i}].duration_{unit}" for unit in ("hours", "days")}
            assert paths & lengths, f"{iv.kind} ends but has no length control"
    if not scenario.interventions:
        assert any(p.startswith("teams.") and p.endswith("oncall_size") for p in paths)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_control_applies_at_its_bounds_and_refuses_beyond(path: Path):
    scenario = load_scenario(path)
    for control in controls(scenario):
        assert control.kind in ("int", "float", "bool", "choice")
        for value in _allowed(control):
            changed = apply_controls(scenario, {control.path: value})
            assert isinstance(changed, Scenario)
        for value in _refused(control):
            with pytest.raises(LeverError, match=_bounds_words(control)):
                apply_controls(scenario, {control.path: value})
    assert scenario.model_dump() == load_scenario(path).model_dump(), "the original changed"


def _allowed(control: Control) -> list[Any]:
    if control.kind == "bool":
        return [True, False]
    if control.kind == "choice":
        return list(control.choices)
    assert control.low is not None and control.high is not None and control.step
    assert control.low <= control.value <= control.high
    return [control.low, control.high]


def _refused(control: Control) -> list[Any]:
    if control.kind == "bool":
        return ["yes"]
    if control.kind == "choice":
        return ["no-such-choice"]
    assert control.low is not None and control.high is not None and control.step
    return [control.low - control.step, control.high + control.step]


def _bounds_words(control: Control) -> str:
    if control.kind in ("bool", "choice"):
        return "must be"
    return f"must be between {control.low:g} and {control.high:g}"


def test_control_values_land_where_they_say():
    cab = load_scenario(CAB)
    changed = apply_controls(cab, {"interventions[0].meeting_every_hours": 336})
    assert changed.interventions[0].meeting_every_hours == 336
    assert cab.interventions[0].meeting_every_hours == 168
    assert apply_controls(cab, {"interventions[0].active": False}).interventions == []
    baseline = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    moved = apply_controls(baseline, {"teams.platform.oncall_size": 2})
    assert moved.teams["platform"].oncall_size == 2
    assert moved.teams["web"].oncall_size == baseline.teams["web"].oncall_size


def test_moving_the_start_of_an_outage_keeps_its_length():
    outage = load_scenario(ROOT / "scenarios" / "vendor_outage.yaml")
    iv = outage.interventions[0]
    length = iv.end_hour - iv.start_hour
    moved = apply_controls(outage, {"interventions[0].at": 20}).interventions[0]
    assert (moved.start_hour, moved.end_hour) == (20 * 24, 20 * 24 + length)
    longer = apply_controls(outage, {"interventions[0].duration_hours": 12}).interventions[0]
    assert (longer.start_hour, longer.end_hour) == (iv.start_hour, iv.start_hour + 12)


def test_unchanged_values_leave_the_scenario_as_it_is():
    for path in SCENARIO_FILES:
        scenario = load_scenario(path)
        same = apply_controls(scenario, {c.path: c.value for c in controls(scenario)})
        assert same.model_dump() == scenario.model_dump(), path.stem


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_organisation_controls_read_as_the_lever_words(path: Path):
    """One declaration: an organisation control's label and unit are its lever's words."""
    organisation = load_scenario(path).model_copy(update={"interventions": []})
    found = controls(organisation)
    assert found
    for control in found:
        assert control.label == lever_label(control.path), control.path
        assert control.unit == lever_words(control.path).unit, control.path


def test_one_organisation_control_for_all_entities_when_they_agree_else_one_each():
    baseline = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    labels = {c.path: c.label for c in controls(baseline)}
    assert labels["teams.*.deploy_policy.kind"] == "Deploy policy (every team)"
    assert labels["teams.web.oncall_size"] == "On-call size (team web)"
    assert labels["segments.pro_us.price_usd_month"] == "Price (segment pro_us)"
    assert "segments.free.price_usd_month" not in labels, "free segments stay free"
    same_price = baseline.model_copy(deep=True)
    for segment in same_price.segments.values():
        segment.price_usd_month = 12.0 if segment.price_usd_month else 0.0
    prices = [c.path for c in controls(same_price) if c.path.startswith("segments.")]
    assert prices == [f"segments.{name}.price_usd_month" for name in ("pro_us", "pro_eu",
                                                                     "enterprise")]  # fmt: skip
