"""Lever words: a lever path in words, and the levers a scenario offers people.

- :func:`lever_words` and :func:`lever_label`: a lever path in words ("On-call size
  (every team)") with the unit of its values; no scenario needed;
- :data:`ORGANISATION_LEVERS`: the organisation levers offered to people, declared once:
  the sweep launcher's pickers (:func:`lever_options`) and the Explore page's controls
  (:mod:`orgtwin.explore.controls`) both read it;
- :func:`organisation_option`: one organisation lever of a scenario, with its range;
- :func:`lever_options`: every lever a scenario offers a sweep, with its range.

Parsing lever paths and setting them on a scenario live in :mod:`orgtwin.scenario.levers`.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic import BaseModel

from orgtwin.errors import LeverError, did_you_mean
from orgtwin.scenario.fields import knob
from orgtwin.scenario.interventions import KINDS
from orgtwin.scenario.levers import ENTITY_KINDS
from orgtwin.scenario.organisation import (
    FeatureSpec,
    SegmentSpec,
    ServiceSpec,
    TeamSpec,
    VendorSpec,
)
from orgtwin.scenario.spec import Scenario

# --------------------------------------------------------------------------- words

SPECS: dict[str, type[BaseModel]] = {"segments": SegmentSpec, "features": FeatureSpec,
                                     "services": ServiceSpec, "vendors": VendorSpec,
                                     "teams": TeamSpec}  # fmt: skip
"""The spec class of each entity kind."""
FIELD_WORDS: dict[str, tuple[str, str]] = {
    "oncall_size": ("On-call size", "engineers"),
    "headcount": ("Headcount", "engineers"),
    "canary": ("Canary deploys", ""),
    "replicas": ("Replicas", "replicas"),
    "spot_share": ("Spot share", "0-1"),
    "deploy_policy.kind": ("Deploy policy", ""),
    "deploy_policy.every_hours": ("Deploy interval", "h"),
    "autoscale.target_utilisation": ("Autoscaling target utilisation", "0-1"),
    "autoscale.enabled": ("Autoscaling on", ""),
    "n_users": ("Users at the start", "users"),
    "price_usd_month": ("Price", "USD/month"),
    "utc_offset_hours": ("Time zone", "h from UTC"),
    "at": ("Start day", "day"),
}
"""Words for the fields whose key does not read well on its own (label, unit); the other
fields read from their key (``restore_median_hours`` → "Restore median", ``h``) or, on an
intervention, from their :class:`~orgtwin.scenario.fields.Knob`."""
_UNIT_SUFFIXES = (("_usd_per_1k_calls", "USD/1k calls"), ("_usd_month", "USD/month"),
                  ("_usd_hour", "USD/h"), ("_per_month", "/month"), ("_per_day", "/day"),
                  ("_hours", "h"), ("_days", "days"), ("_ms", "ms"), ("_rps", "rps"),
                  ("_pct", "%"), ("_yearly", "/year"))  # fmt: skip
_WORDS = {"oncall": "on-call", "utc": "UTC", "rps": "rps", "sla": "SLA", "p95": "p95"}


@dataclass(frozen=True)
class LeverWords:
    """A lever path in words: what it sets, on whom, and the unit of its values.

    Attributes:
        label: the field in words (``"On-call size"``).
        who: the entities it covers (``"every team"``, ``"team platform"``), or ``""``.
        unit: the unit of its values (``"engineers"``, ``"0-1"``, ``"USD/month"``), or ``""``.
    """

    label: str
    who: str
    unit: str

    def __str__(self) -> str:
        return f"{self.label} ({self.who})" if self.who else self.label


def lever_words(path: str) -> LeverWords:
    """Lever ``path`` in words; no scenario needed, and never an error.

    Example:
        >>> str(lever_words("teams.*.oncall_size")), lever_words("teams.*.oncall_size").unit
        ('On-call size (every team)', 'engineers')
        >>> str(lever_words("interventions.spot_share.spot_share"))
        'Share of replicas on spot instances (spot instances)'
    """
    parts = re.sub(r"\[(\w+)\]", r".\1", path).split(".")
    head = parts[0]
    if head in ENTITY_KINDS and len(parts) >= 3:
        noun = head[:-1]
        who = f"every {noun}" if parts[1] == "*" else f"{noun} {parts[1]}"
        label, unit = _field_words(SPECS[head], ".".join(parts[2:]))
        return LeverWords(label, who, unit)
    if head == "interventions" and len(parts) >= 3:
        spec = KINDS.get(parts[1])
        if parts[1] == "*":
            who = "every intervention"
        elif parts[1].isdigit():
            who = f"intervention {int(parts[1]) + 1}"
        else:
            who = spec.title if spec is not None else parts[1].replace("_", " ")
        label, unit = _field_words(spec, ".".join(parts[2:]))
        return LeverWords(label, who, unit)
    label, unit = _field_words(None, path)
    return LeverWords(label, "", unit)


def lever_label(path: str) -> str:
    """Lever ``path`` in words: ``"On-call size (every team)"``.

    Example:
        >>> lever_label("services.*.spot_share"), lever_label("segments.pro_us.price_usd_month")
        ('Spot share (every service)', 'Price (segment pro_us)')
    """
    return str(lever_words(path))


def _field_words(spec: type[BaseModel] | None, field: str) -> tuple[str, str]:
    """A field's label and unit: its Knob, :data:`FIELD_WORDS`, or its key."""
    offered = None if spec is None else knob(spec, field)
    if offered is not None:
        return offered.label, offered.unit
    if field in FIELD_WORDS:
        return FIELD_WORDS[field]
    *parents, name = field.split(".")
    unit = ""
    for suffix, suffix_unit in _UNIT_SUFFIXES:
        if name.endswith(suffix) and name != suffix[1:]:
            name, unit = name.removesuffix(suffix), suffix_unit
            break
    words = " ".join(_WORDS.get(w, w) for w in name.split("_"))
    if parents:
        words = f"{' '.join(_WORDS.get(w, w) for w in parents[-1].split('_'))}: {words}"
    return words[:1].upper() + words[1:], unit


# --------------------------------------------------------------------------- offered levers


@dataclass(frozen=True)
class OrganisationLever:
    """An organisation lever offered to people: one field of the entities of one kind.

    Its words come from :func:`lever_words`, its range from the field's declared bounds
    (see :func:`organisation_option`).

    Attributes:
        kind: the entity kind (``"teams"``).
        field: the field, dotted when nested (``"deploy_policy.kind"``).
        low: the smallest value offered where it is above the field's own bound, else ``None``.
        step: the step between the values a page offers (numbers only), or ``None``.
        explore: whether the Explore page offers it too (for a scenario without
            interventions); a sweep is offered every one.
    """

    kind: str
    field: str
    low: float | None = None
    step: float | None = None
    explore: bool = False

    def path(self, name: str = "*") -> str:
        """The lever path for entity ``name``, or every entity (``*``)."""
        return f"{self.kind}.{name}.{self.field}"


ORGANISATION_LEVERS: tuple[OrganisationLever, ...] = (
    OrganisationLever("teams", "oncall_size", step=1, explore=True),
    OrganisationLever("teams", "headcount"),
    OrganisationLever("teams", "deploy_policy.kind", explore=True),
    OrganisationLever("teams", "deploy_policy.every_hours"),
    OrganisationLever("teams", "canary"),
    OrganisationLever("services", "spot_share", step=0.05, explore=True),
    OrganisationLever("services", "replicas"),
    OrganisationLever("services", "autoscale.target_utilisation", low=0.1, step=0.05, explore=True),
    OrganisationLever("segments", "price_usd_month", step=0.5, explore=True),
    OrganisationLever("vendors", "outage_rate_per_month"),
)
"""The organisation levers a scenario offers people, in the order they are shown."""


@dataclass(frozen=True)
class LeverOption:
    """A lever a scenario offers, with the range its field allows.

    Attributes:
        path: the lever path (``teams.*.oncall_size``).
        label: the lever in words (:func:`lever_label`).
        unit: the unit of its values, or ``""``.
        value: the scenario's current value (the first entity's, for ``*``).
        low: the smallest value the field takes (numbers only).
        high: the largest value the field takes (numbers only).
        integer: whether it takes whole numbers only.
        choices: the values it takes (a choice, such as a deploy policy), else ``()``.
    """

    path: str
    label: str
    unit: str
    value: Any
    low: float | None = None
    high: float | None = None
    integer: bool = False
    choices: tuple[Any, ...] = ()

    def text(self, low: float, high: float, count: int) -> str:
        """The lever as typed (``path=spec``) for ``count`` levels from ``low`` to ``high``.

        A whole-number lever spanning every whole number reads ``path=2..5``; with fewer
        levels it lists them (``path=2,4,6``), so it never takes a fraction.

        Example:
            >>> option = LeverOption("teams.*.oncall_size", "On-call size", "engineers", 4,
            ...                      1, 6, integer=True)
            >>> option.text(2, 5, 4), option.text(2, 6, 3)
            ('teams.*.oncall_size=2..5', 'teams.*.oncall_size=2,4,6')
        """
        if not self.integer:
            return f"{self.path}={low:g}..{high:g}:{count}"
        if count == int(high) - int(low) + 1:
            return f"{self.path}={int(low)}..{int(high)}"
        levels = np.unique(np.rint(np.linspace(low, high, max(count, 1))).astype(int))
        return f"{self.path}={','.join(map(str, levels))}"

    def chosen(self, values: Sequence[Any]) -> str:
        """The lever as typed for a list of choices: ``path=continuous,batched``."""
        return f"{self.path}={','.join(map(str, values))}"


def organisation_option(
    scenario: Scenario, lever: OrganisationLever, name: str = "*"
) -> LeverOption:
    """Organisation lever ``lever`` on entity ``name`` of ``scenario`` (``*``: every one).

    The label is :func:`lever_label` of the path; the value is the entity's (the first
    entity's, for ``*``); the range is the field's declared bounds, from ``lever.low``
    when it has one, and an on-call rotation no larger than the smallest team it covers.

    Raises:
        LeverError: ``name`` is not an entity of the lever's kind.

    Example:
        >>> from orgtwin.scenario.load import load_scenario
        >>> oncall = organisation_option(load_scenario("scenarios/baseline.yaml"),
        ...                              ORGANISATION_LEVERS[0], "web")
        >>> oncall.label, oncall.value, oncall.low, oncall.high
        ('On-call size (team web)', 6, 1.0, 9.0)
    """
    entities = getattr(scenario, lever.kind)
    if name != "*" and name not in entities:
        raise LeverError(lever.path(name), f"{lever.kind}.{name} is not in the scenario",
                         did_you_mean(name, list(entities)))  # fmt: skip
    covered = list(entities) if name == "*" else [name]
    *parents, leaf = lever.field.split(".")
    spec: BaseModel = entities[covered[0]]
    for parent in parents:
        spec = getattr(spec, parent)
    option = _option(lever.path(name), type(spec), leaf, getattr(spec, leaf))
    if option.choices:
        return option
    low = option.low if lever.low is None else float(lever.low)
    high = option.high
    if lever.kind == "teams" and lever.field == "oncall_size":
        high = _fewest(scenario, covered, high)
    return replace(option, low=low, high=high)


def lever_options(scenario: Scenario) -> list[LeverOption]:
    """The levers ``scenario`` offers a sweep: organisation levers, then interventions'.

    Organisation levers (:data:`ORGANISATION_LEVERS`) cover every entity of their kind
    (``*``); each intervention offers its fields that have a
    :class:`~orgtwin.scenario.fields.Knob`. Ranges are the field's declared bounds (an
    on-call rotation no larger than the smallest team).

    Example:
        >>> from orgtwin.scenario.load import load_scenario
        >>> first = lever_options(load_scenario("scenarios/baseline.yaml"))[0]
        >>> first.label, first.low, first.high, first.integer
        ('On-call size (every team)', 1.0, 6.0, True)
    """
    found = [
        organisation_option(scenario, lever)
        for lever in ORGANISATION_LEVERS
        if getattr(scenario, lever.kind)
    ]
    for i, iv in enumerate(scenario.interventions):
        for name in type(iv).model_fields:
            value = getattr(iv, name)
            if knob(type(iv), name) is None or value is None or name in ("to", "vendor"):
                continue
            option = _option(f"interventions[{i}].{name}", type(iv), name, value)
            if name == "oncall_size" and scenario.teams:
                option = replace(option, high=_fewest(scenario, list(scenario.teams), option.high))
            found.append(option)
    return found


def _fewest(scenario: Scenario, teams: Sequence[str], high: float | None) -> float:
    """``high`` lowered to the headcount of the smallest of ``teams``."""
    fewest = min(scenario.teams[team].headcount for team in teams)
    return float(min(high or fewest, fewest))


def _option(path: str, spec: type[BaseModel], name: str, value: Any) -> LeverOption:
    label, unit = str(lever_words(path)), lever_words(path).unit
    if path.startswith("interventions["):
        words, unit = _field_words(spec, name)
        label = f"{words} ({spec.title} {int(path[14:].split(']')[0]) + 1})"  # type: ignore[attr-defined]
    choices = typing.get_args(spec.model_fields[name].annotation)
    if isinstance(value, bool):
        return LeverOption(path, label, unit, value, choices=(False, True))
    if isinstance(value, str):
        return LeverOption(path, label, unit, value, choices=choices or (value,))
    low, high = _bounds(spec, name)
    return LeverOption(path, label, unit, value, low, high, isinstance(value, int))


def _bounds(spec: type[BaseModel], name: str) -> tuple[float | None, float | None]:
    """A field's declared range: the Knob's when it has one, else its ge/gt and le/lt."""
    low = high = None
    for meta in _metadata(spec.model_fields[name]):
        low = next((getattr(meta, a) for a in ("ge", "gt") if getattr(meta, a, None) is not None),
                   low)  # fmt: skip
        high = next((getattr(meta, a) for a in ("le", "lt") if getattr(meta, a, None) is not None),
                    high)  # fmt: skip
    offered = knob(spec, name)
    if offered is not None:
        low = offered.low if offered.low is not None else low
        high = offered.high if offered.high is not None else high
    return (None if low is None else float(low)), (None if high is None else float(high))


def _metadata(info: Any) -> list[Any]:
    """A field's constraints, also those inside an ``Optional[Annotated[...]]``."""
    found = list(info.metadata)
    for arg in typing.get_args(info.annotation):
        found += list(getattr(arg, "__metadata__", ()))
        for inner in typing.get_args(arg):
            found += list(getattr(inner, "__metadata__", ()))
    return found
