"""Controls: the levers a scenario offers an interactive page, with plain labels and bounds.

A :class:`Control` is one knob: a lever path (see :mod:`orgtwin.scenario.levers`), the words to
show, its kind (``int``, ``float``, ``bool`` or ``choice``), its current value and the
range a page should offer. :func:`controls` lists them for a scenario: for each
intervention, its user-facing fields, when it starts, how long it lasts (when it ends)
and whether it is on; for an organisation without interventions, the organisation levers
:data:`~orgtwin.scenario.wording.ORGANISATION_LEVERS` marks for Explore (on-call
rotations, deploy policy, spot share, autoscaling target, prices), in the words and
ranges a sweep offers them (:func:`~orgtwin.scenario.wording.organisation_option`).

Three paths exist only here, because they are not fields of the scenario:

- ``interventions[i].active``: ``False`` drops the intervention;
- ``interventions[i].duration_hours`` / ``interventions[i].duration_days``: the length
  of an intervention that ends, mapped to ``until = at + duration``.

A change of ``interventions[i].at`` moves ``until`` with it (the length is kept).
:func:`apply_controls` applies values to a scenario and refuses a value outside its
control's range, naming the bound.

Example:
    >>> from orgtwin.scenario.load import load_scenario
    >>> cab = load_scenario("scenarios/cab_policy.yaml")
    >>> [c.path for c in controls(cab)]
    ['interventions[0].active', 'interventions[0].at', 'interventions[0].meeting_every_hours']
    >>> fortnightly = apply_controls(cab, {"interventions[0].meeting_every_hours": 336})
    >>> fortnightly.interventions[0].meeting_every_hours, cab.interventions[0].meeting_every_hours
    (336, 168)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from orgtwin.errors import LeverError
from orgtwin.scenario.fields import Selector, knob
from orgtwin.scenario.interventions import MAX_PRICE_FACTOR, InterventionSpec, VendorOutage
from orgtwin.scenario.levers import apply_levers
from orgtwin.scenario.load import check_references
from orgtwin.scenario.spec import Scenario
from orgtwin.scenario.wording import ORGANISATION_LEVERS, OrganisationLever, organisation_option
from orgtwin.units import HOURS_PER_DAY, parse_hours

ControlKind = Literal["int", "float", "bool", "choice"]
CONTROL_KINDS: tuple[ControlKind, ...] = ("int", "float", "bool", "choice")


@dataclass(frozen=True)
class Control:
    """One knob of a scenario, as a page shows it.

    Attributes:
        path: the lever path the value is applied to (``interventions[0].oncall_size``).
        label: what the knob does, in plain words, with the intervention it belongs to.
        kind: ``"int"``, ``"float"``, ``"bool"`` or ``"choice"``.
        value: the scenario's current value.
        low: the smallest value offered (numbers only; within the field's bounds).
        high: the largest value offered (numbers only).
        step: the step between offered values (numbers only).
        choices: the values offered (``"choice"`` only).
        unit: the value's unit (``"h"``, ``"USD/month"``, ``"engineers"``…), or ``""``.
        help: the field's meaning (its documentation in :mod:`orgtwin.scenario`).
    """

    path: str
    label: str
    kind: ControlKind
    value: Any
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()
    unit: str = ""
    help: str = ""


# --------------------------------------------------------------------------- listing


_SPECIAL = re.compile(r"^interventions\[(\d+)\]\.(active|at|duration_hours|duration_days)$")


def controls(scenario: Scenario) -> list[Control]:
    """The knobs ``scenario`` offers: its interventions' levers, or organisation levers.

    For each intervention: on/off, its start day, its length (when it ends) and its
    user-facing fields that are set. A scenario without interventions offers a few
    organisation levers instead; a lever covers every entity (``*``) when they all share
    its value, else there is one control per entity.

    Args:
        scenario: a loaded scenario.

    Returns:
        The controls, intervention by intervention, in a stable order.
    """
    if not scenario.interventions:
        return _organisation_controls(scenario)
    found: list[Control] = []
    for i, iv in enumerate(scenario.interventions):
        found += _timing_controls(scenario, i, iv)
        for name in type(iv).model_fields:
            control = _field_control(scenario, i, iv, name)
            if control is not None:
                found.append(control)
    return found


def _where(iv: InterventionSpec) -> str:
    day, hour = divmod(iv.start_hour, HOURS_PER_DAY)
    return f"{iv.describe()}, from day {day}" + (f" {hour:02d}:00" if hour else "")


def _timing_controls(scenario: Scenario, i: int, iv: InterventionSpec) -> list[Control]:
    docs = _docs(InterventionSpec)
    start_days = iv.start_hour / HOURS_PER_DAY
    whole = start_days.is_integer()
    found = [
        Control(f"interventions[{i}].active", f"{iv.describe()}: on", "bool", True,
                help="Off: run the scenario without this intervention."),
        Control(f"interventions[{i}].at", f"Starts on day ({iv.describe()})",
                "int" if whole else "float", int(start_days) if whole else start_days,
                low=0, high=scenario.days - 1, step=1 if whole else 1 / HOURS_PER_DAY,
                unit="day", help=docs.get("at", "")),
    ]  # fmt: skip
    if iv.end_hour is not None:
        hours = iv.end_hour - iv.start_hour
        if isinstance(iv, VendorOutage) or hours % HOURS_PER_DAY:
            found.append(Control(
                f"interventions[{i}].duration_hours", f"Length ({_where(iv)})", "int", hours,
                low=1, high=max(72, hours), step=1, unit="h",
                help="How long it lasts, hours (sets until = at + length).",
            ))  # fmt: skip
        else:
            days = hours // HOURS_PER_DAY
            found.append(Control(
                f"interventions[{i}].duration_days", f"Length ({_where(iv)})", "int", days,
                low=1, high=max(60, days), step=1, unit="days",
                help="How long it lasts, days (sets until = at + length).",
            ))  # fmt: skip
    return found


def _field_control(scenario: Scenario, i: int, iv: Any, name: str) -> Control | None:
    value = getattr(iv, name)
    offered = knob(type(iv), name)
    if offered is None or value is None:
        return None
    label, unit, low, high, step = (
        offered.label,
        offered.unit,
        offered.low,
        offered.high,
        offered.step,
    )
    path = f"interventions[{i}].{name}"
    text = f"{label} ({_where(iv)})"
    doc = _docs(type(iv)).get(name, "")
    if name in ("to", "vendor"):
        return Control(path, text, "choice", value, choices=_vendor_choices(scenario, iv, name),
                       help=doc)  # fmt: skip
    if isinstance(value, bool):
        return Control(path, text, "bool", value, help=doc)
    low, high = _bounds(scenario, iv, name, value, low, high)
    kind: ControlKind = "int" if isinstance(value, int) else "float"
    return Control(path, text, kind, value, low=low, high=high, step=step, unit=unit, help=doc)


def _bounds(
    scenario: Scenario, iv: Any, name: str, value: float, low: float | None, high: float | None
) -> tuple[float, float]:
    """The offered range of a numeric field, always holding the current value."""
    teams = _selected(scenario.teams, getattr(iv, "teams", "*"))
    if name == "oncall_size":
        high = max(scenario.teams[t].headcount for t in teams)
    elif name == "headcount_change":
        low = 1 - min(scenario.teams[t].headcount for t in teams)
    elif name == "price_usd_month":
        segments = _selected(scenario.segments, iv.segments)
        current = max(scenario.segments[s].price_usd_month for s in segments)
        high = max(100.0, math.ceil(MAX_PRICE_FACTOR * max(current, value)))
    assert low is not None and high is not None
    return min(low, value), max(high, value)


def _selected(entities: Mapping[str, Any], selector: Selector) -> list[str]:
    return list(entities) if selector == "*" else [n for n in selector if n in entities]


def _vendor_choices(scenario: Scenario, iv: Any, name: str) -> tuple[str, ...]:
    if name == "vendor":
        return tuple(scenario.vendors)
    kind = scenario.vendors[iv.vendor].kind
    alike = [v for v, spec in scenario.vendors.items() if spec.kind == kind and v != iv.vendor]
    return tuple(alike or [iv.to])


def _docs(spec: type[BaseModel]) -> dict[str, str]:
    """Each field's description (the docstring under it), as one Markdown line."""
    return {
        name: " ".join(field.description.split()).replace("``", "`")
        for name, field in spec.model_fields.items()
        if field.description
    }


def _organisation_controls(scenario: Scenario) -> list[Control]:
    """Organisation levers: one control for all entities when they agree, else one each."""
    found: list[Control] = []
    for lever in ORGANISATION_LEVERS:
        if not lever.explore:
            continue
        entities = getattr(scenario, lever.kind)
        values = {name: _get(spec, lever.field) for name, spec in entities.items()}
        if lever.field == "price_usd_month":  # free segments stay free
            values = {name: v for name, v in values.items() if v > 0}
        agree = len(values) == len(entities) and len(set(values.values())) == 1
        found += [_organisation_control(scenario, lever, name)
                  for name in (["*"] if agree else list(values))]  # fmt: skip
    return found


def _organisation_control(scenario: Scenario, lever: OrganisationLever, name: str) -> Control:
    """Lever ``lever`` on entity ``name`` (or ``*``) as a control, in the sweep's words."""
    option = organisation_option(scenario, lever, name)
    entities = getattr(scenario, lever.kind)
    parent, _, leaf = lever.field.rpartition(".")
    spec = _get(entities[name] if name != "*" else next(iter(entities.values())), parent)
    control = Control(option.path, option.label, "choice", option.value, unit=option.unit,
                      help=_docs(type(spec)).get(leaf, ""))  # fmt: skip
    value = option.value
    if isinstance(value, bool):
        return replace(control, kind="bool")
    if option.choices:
        return replace(control, choices=option.choices)
    high = option.high
    if lever.field == "price_usd_month":  # a page offers up to a few times today's price
        high = max(100.0, math.ceil(MAX_PRICE_FACTOR * value))
    assert option.low is not None and high is not None
    cast = int if option.integer else float
    return replace(control, kind="int" if option.integer else "float",
                   low=cast(min(option.low, value)), high=cast(max(high, value)),
                   step=lever.step)  # fmt: skip


def _get(spec: Any, field: str) -> Any:
    for part in filter(None, field.split(".")):
        spec = getattr(spec, part)
    return spec


# --------------------------------------------------------------------------- applying


def apply_controls(scenario: Scenario, values: Mapping[str, Any]) -> Scenario:
    """A copy of ``scenario`` with control values applied (the original is unchanged).

    Values of the scenario's controls (:func:`controls`) are checked against their
    control's range and kind; other lever paths go to :func:`orgtwin.scenario.levers.apply_levers`
    as they are (checked against the field's own bounds only).

    Args:
        scenario: the scenario the controls were listed for.
        values: lever path -> value; paths may be those of :func:`controls`,
            including ``interventions[i].active`` and ``…duration_hours``/``…_days``.

    Returns:
        The changed scenario, validated.

    Raises:
        LeverError: a path does not fit the scenario, or a value is outside its range
            (the message names the range).
    """
    known = {c.path: c for c in controls(scenario)}
    values = {path: _checked(known.get(path), path, value) for path, value in values.items()}
    plain: dict[str, Any] = {}
    timing: dict[int, dict[str, Any]] = {}
    off: list[int] = []
    for path, value in values.items():
        match = _SPECIAL.match(path)
        if not path.startswith("interventions[") or match is None:
            continue
        index, what = int(match[1]), match[2]
        if what == "active":
            off += [] if value else [index]
        elif what == "at" and not _ends(scenario, index):
            plain[path] = value
        else:
            timing.setdefault(index, {})[what] = value
    by_index = {p: v for p, v in values.items() if p.startswith("interventions[")}
    plain |= {p: v for p, v in by_index.items() if not _SPECIAL.match(p)}
    changed = apply_levers(scenario, plain)
    for index, changes in timing.items():
        _retime(changed, index, changes)
    for index in sorted(set(off), reverse=True):
        del changed.interventions[index]
    rest = {p: v for p, v in values.items() if p not in by_index}
    if rest:
        changed = apply_levers(changed, rest)
    check_references(changed)
    return changed


def _ends(scenario: Scenario, index: int) -> bool:
    """Whether intervention ``index`` has an end (its start then moves its end too)."""
    return index < len(scenario.interventions) and scenario.interventions[index].until is not None


def _retime(scenario: Scenario, index: int, changes: Mapping[str, Any]) -> None:
    """Set an intervention's start and length at once (``until = at + length``)."""
    if index >= len(scenario.interventions):
        raise LeverError(f"interventions[{index}]", "matches no intervention")
    iv = scenario.interventions[index]
    at = changes.get("at", iv.at)
    if "duration_hours" in changes:
        hours: int | None = int(changes["duration_hours"])
    elif "duration_days" in changes:
        hours = int(changes["duration_days"]) * HOURS_PER_DAY
    else:
        hours = None if iv.end_hour is None else iv.end_hour - iv.start_hour
    end = None if hours is None else parse_hours(at) + hours
    if end is None or (parse_hours(at), end) == (iv.start_hour, iv.end_hour):
        return
    until: float | str = end // HOURS_PER_DAY if end % HOURS_PER_DAY == 0 else f"{end}h"
    try:
        new = type(iv).model_validate(iv.model_dump() | {"at": at, "until": until})
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise LeverError(f"interventions[{index}]", problem) from None
    scenario.interventions[index] = new


def _checked(control: Control | None, path: str, value: Any) -> Any:
    """``value`` as its control takes it, or a LeverError naming the control's range."""
    if control is None:
        return value
    if control.kind == "bool":
        if not isinstance(value, bool):
            raise LeverError(path, f"must be true or false, got {value!r}")
        return value
    if control.kind == "choice":
        if value not in control.choices:
            options = ", ".join(map(repr, control.choices))
            raise LeverError(path, f"must be one of {options}, got {value!r}")
        return value
    number = _number(path, value, integer=control.kind == "int")
    assert control.low is not None and control.high is not None
    if not control.low <= number <= control.high:
        raise LeverError(
            path, f"must be between {control.low:g} and {control.high:g}, got {number:g}"
        )
    return number


def _number(path: str, value: Any, *, integer: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise LeverError(path, f"must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise LeverError(path, f"must be a finite number, got {value!r}")
    if integer:
        if float(value) != int(value):
            raise LeverError(path, f"must be a whole number, got {value!r}")
        return int(value)
    return value
