"""Levers: named, bounded knobs on a scenario, and the designs that set them.

A lever is a dotted path into the scenario with the values it may take::

    services.*.spot_share=0..0.9:10       ten values from 0 to 0.9
    teams.platform.oncall_size=2..8       the whole numbers 2 to 8
    segments.pro_us.price_usd_month=12,15,19
    teams.web.deploy_policy.kind=continuous,approval_board
    interventions.spot_share.spot_share=0.3..0.9:4

Paths name entities of a kind (``segments``, ``features``, ``services``, ``vendors``,
``teams``) by name or ``*`` for all, then a field, possibly nested; ``interventions``
are named by index (``interventions[0]``), label or kind. A lever sets the value
everywhere the scenario sets that quantity for those entities: the organisation's own
spec *and* any intervention that sets the same field on them (split if it also covers
other entities), so ``services.*.spot_share`` means "this spot share, whatever the
scenario does", not "this spot share until an intervention says otherwise".

Levers in words (labels, units) and the levers a scenario offers people live in
:mod:`orgtwin.scenario.wording`; the designs that set levers for a sweep in
:mod:`orgtwin.sweeps.design`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ValidationError

from orgtwin.errors import LeverError, did_you_mean
from orgtwin.scenario.load import check_references
from orgtwin.scenario.spec import Scenario

ENTITY_KINDS = ("segments", "features", "services", "vendors", "teams")
_SELECTOR_OF = {"segments": "segments", "services": "services", "teams": "teams",
                "features": "features"}  # fmt: skip
_RANGE = re.compile(
    r"^\s*(-?[\d.]+(?:e-?\d+)?)\s*\.\.\s*(-?[\d.]+(?:e-?\d+)?)\s*(?::\s*(\d+))?\s*$"
)
DEFAULT_COUNT = 5
MAX_LEVELS = 1_000_000
"""Most levels a counted range may ask for (``0..1:1000000``)."""


@dataclass(frozen=True)
class Lever:
    """A knob of a sweep: a path into the scenario and the values it may take.

    Attributes:
        path: dotted path, ``*`` allowed in place of an entity name.
        values: explicit values (a list or categorical choices), or None for a range.
        low: lowest value of a range.
        high: highest value of a range.
        count: number of evenly spaced grid levels of a range.
        integer: whether a range takes whole numbers only.
    """

    path: str
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    count: int | None = None
    integer: bool = False

    @property
    def is_range(self) -> bool:
        """Whether the lever spans a numeric range (rather than listing values)."""
        return self.values is None

    @property
    def size(self) -> int:
        """How many levels :meth:`levels` gives, counted without building them."""
        if self.values is not None:
            return len(self.values)
        assert self.count is not None
        return self.count

    def levels(self) -> list[Any]:
        """The values a grid design takes, in order.

        Raises:
            LeverError: the lever has more than :data:`MAX_LEVELS` levels (an integer range
                as wide as ``0..10000000``: sample it with a Latin hypercube instead).
        """
        if self.values is not None:
            return list(self.values)
        assert self.low is not None and self.high is not None and self.count is not None
        if self.count > MAX_LEVELS:
            raise LeverError(str(self), f"must have at most {MAX_LEVELS:,} levels, got "
                             f"{self.count:,}", "sample it with design='lhs'")  # fmt: skip
        if self.integer:
            return [
                int(v) for v in np.unique(np.rint(np.linspace(self.low, self.high, self.count)))
            ]
        return [float(round(v, 12)) for v in np.linspace(self.low, self.high, self.count)]

    def at(self, u: np.ndarray) -> list[Any]:
        """Values at positions ``u`` in [0, 1) of the lever's range (for sampled designs)."""
        if self.values is not None:
            index = np.minimum((u * len(self.values)).astype(int), len(self.values) - 1)
            return [self.values[i] for i in index]
        assert self.low is not None and self.high is not None
        raw = self.low + u * (self.high - self.low)
        if self.integer:
            return [int(v) for v in np.floor(self.low + u * (self.high - self.low + 1))]
        return [float(v) for v in raw]

    def __str__(self) -> str:
        if self.values is not None:
            return f"{self.path}={','.join(map(str, self.values))}"
        if self.integer:
            return f"{self.path}={self.low:g}..{self.high:g}"
        return f"{self.path}={self.low:g}..{self.high:g}:{self.count}"


# --------------------------------------------------------------------------- parsing


def parse_lever(text: str) -> Lever:
    """Parse ``path=spec`` as written on the command line.

    Example:
        >>> parse_lever("teams.platform.oncall_size=2..8").levels()
        [2, 3, 4, 5, 6, 7, 8]
        >>> parse_lever("services.*.spot_share=0..0.9:4").levels()
        [0.0, 0.3, 0.6, 0.9]
    """
    path, sep, spec = text.partition("=")
    if not sep or not path.strip() or not spec.strip():
        raise LeverError(
            text,
            "must look like path=low..high[:count] or path=a,b,c, got no '='"
            if not sep
            else "must have a path and values on both sides of '='",
        )
    return make_lever(path.strip(), spec.strip())


def make_lever(path: str, spec: Any) -> Lever:
    """Build a lever from Python values.

    Args:
        path: dotted path into the scenario.
        spec: ``"low..high[:count]"`` or ``"a,b,c"``; a ``(low, high)`` or
            ``(low, high, count)`` tuple; a list of values; a ``range``; or a Lever.
    """
    if isinstance(spec, Lever):
        return spec
    if isinstance(spec, range):
        return Lever(path, values=tuple(spec))
    if isinstance(spec, list):
        return _listed(path, spec)
    if isinstance(spec, tuple):
        if len(spec) not in (2, 3) or not all(isinstance(v, int | float) for v in spec):
            raise LeverError(path, f"must be (low, high) or (low, high, count), got {spec!r}")
        integer = len(spec) == 2 and all(isinstance(v, int) for v in spec)
        return _range(path, *spec, integer=integer)
    if isinstance(spec, str):
        match = _RANGE.match(spec)
        if match:
            low, high, count = match.groups()
            integer = count is None and _is_int(low) and _is_int(high)
            return _range(path, float(low), float(high), int(count) if count else None, integer)
        return _listed(path, [_value(path, v.strip()) for v in spec.split(",") if v.strip()])
    raise LeverError(path, f"values must be a range, a list or a string, got {spec!r}")


def _value(path: str, text: str) -> Any:
    """One listed value as written: a number, true/false, or a name (safe-loaded YAML).

    Raises:
        LeverError: the text is not one plain value (``[1``, ``!!python/name:…``,
            ``{a: 1}``), or is a number that is not finite (``.nan``, ``1e999``).
    """
    plain = "must be numbers, true/false or names"
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise LeverError(path, f"values {plain}, got {text!r}") from None
    if isinstance(value, list | dict | set | tuple | bytes) or value is None:
        raise LeverError(path, f"values {plain}, got {text!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise LeverError(path, f"values must be finite numbers, got {text!r}")
    return value


def _is_int(text: str) -> bool:
    return re.fullmatch(r"-?\d+", text) is not None


def _range(path: str, low: float, high: float, count: int | None = None,
           integer: bool | None = None) -> Lever:  # fmt: skip
    if not (math.isfinite(low) and math.isfinite(high)):
        raise LeverError(path, f"range must have finite ends, got {low:g}..{high:g}")
    if high < low:
        raise LeverError(path, f"range must go from low to high, got {low:g}..{high:g}",
                         f"did you mean {high:g}..{low:g}?")  # fmt: skip
    if integer is None:
        integer = count is None and float(low).is_integer() and float(high).is_integer()
    if count is not None and not 1 <= count <= MAX_LEVELS:
        raise LeverError(path, f"count must be between 1 and {MAX_LEVELS:,}, got {count:,}")
    if integer:
        count = int(high - low) + 1
    return Lever(path, low=float(low), high=float(high), count=count or DEFAULT_COUNT,
                 integer=integer)  # fmt: skip


def _listed(path: str, values: Sequence[Any]) -> Lever:
    if not values:
        raise LeverError(path, "must list at least one value")
    if len(set(map(repr, values))) != len(values):
        raise LeverError(path, f"values must be distinct, got {list(values)!r}")
    return Lever(path, values=tuple(values))


def parse_levers(levers: Mapping[str, Any] | Sequence[str | Lever]) -> list[Lever]:
    """Levers from a mapping ``{path: spec}`` or a list of ``path=spec`` strings/Levers."""
    if isinstance(levers, Mapping):
        parsed = [make_lever(path, spec) for path, spec in levers.items()]
    else:
        parsed = [lv if isinstance(lv, Lever) else parse_lever(lv) for lv in levers]
    if not parsed:
        raise LeverError("", "a sweep needs at least one lever")
    paths = [lv.path for lv in parsed]
    dupes = sorted({p for p in paths if paths.count(p) > 1})
    if dupes:
        raise LeverError(dupes[0], "is given twice")
    return parsed


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class Target:
    """One place a lever writes to: a field of a spec object inside a scenario.

    Attributes:
        container: the spec object that holds the field.
        field: the field's name.
        where: the place in words, for messages (``teams.web.oncall_size``).
        selector: for an intervention that also covers entities the lever does not name:
            its selector field (``teams``); the lever's entities then get their own copy
            of the intervention (see :func:`apply_levers`). ``None``: no split.
        mine: the lever's entities among those the intervention covers.
        others: the entities the intervention covers that the lever does not name.
    """

    container: BaseModel
    field: str
    where: str
    selector: str | None = None
    mine: tuple[str, ...] = ()
    others: tuple[str, ...] = ()


def _split(path: str) -> list[str]:
    parts = re.sub(r"\[(\w+)\]", r".\1", path).split(".")
    if any(not p for p in parts):
        raise LeverError(path, "must be a dotted path like services.*.spot_share")
    return parts


def _walk(path: str, obj: BaseModel, parts: Sequence[str], where: str) -> Target:
    """Follow field names from ``obj`` to the last field, which becomes the target."""
    for i, part in enumerate(parts):
        fields = type(obj).model_fields
        if part not in fields or fields[part].exclude:
            known = [f for f, info in fields.items() if not info.exclude]
            raise LeverError(path, f"{where}{'.' if where else ''}{part} is not a field",
                             did_you_mean(part, known))  # fmt: skip
        if i == len(parts) - 1:
            return Target(obj, part, f"{where}{'.' if where else ''}{part}")
        child = getattr(obj, part)
        if not isinstance(child, BaseModel):
            raise LeverError(path, f"{where}.{part} has no fields below it")
        obj, where = child, f"{where}{'.' if where else ''}{part}"
    raise LeverError(path, "must name a field")


def _entities(path: str, scenario: Scenario, kind: str, selector: str) -> list[str]:
    names = list(getattr(scenario, kind))
    if selector == "*":
        return names
    if selector not in names:
        raise LeverError(path, f"{kind}.{selector} is not in the scenario",
                         did_you_mean(selector, names))  # fmt: skip
    return [selector]


def _interventions(path: str, scenario: Scenario, selector: str) -> list[int]:
    items = scenario.interventions
    if selector == "*":
        found = list(range(len(items)))
    elif selector.isdigit():
        found = [int(selector)] if int(selector) < len(items) else []
    else:
        found = [i for i, iv in enumerate(items) if selector in (iv.label, iv.kind)]
    if not found:
        names = [iv.label or iv.kind for iv in items]
        raise LeverError(path, f"interventions.{selector} matches no intervention "
                         f"(by index, label or kind)", did_you_mean(selector, names))  # fmt: skip
    return found


def targets(scenario: Scenario, path: str) -> list[Target]:
    """Every place lever ``path`` writes to in ``scenario``; the scenario is not changed.

    Raises:
        LeverError: the path names no field of the scenario (with a suggestion).
    """
    parts = _split(path)
    head = parts[0]
    if head in ENTITY_KINDS:
        if len(parts) < 3:
            raise LeverError(path, f"must name a field: {head}.<name or *>.<field>")
        names = _entities(path, scenario, head, parts[1])
        found = [
            _walk(path, getattr(scenario, head)[name], parts[2:], f"{head}.{name}")
            for name in names
        ]
        if len(parts) == 3 and head in _SELECTOR_OF:
            found += _intervention_targets(scenario, head, names, parts[2])
        return found
    if head == "interventions":
        if len(parts) < 3:
            raise LeverError(
                path, "must name a field: interventions.<index, label or kind>.<field>"
            )
        indices = _interventions(path, scenario, parts[1])
        return [
            _walk(path, scenario.interventions[i], parts[2:], f"interventions[{i}]")
            for i in indices
            if parts[2] in type(scenario.interventions[i]).model_fields or len(indices) == 1
        ] or [_walk(path, scenario.interventions[indices[0]], parts[2:], "interventions")]
    return [_walk(path, scenario, parts, "")]


def _intervention_targets(
    scenario: Scenario, kind: str, names: list[str], field: str
) -> list[Target]:
    """Interventions that set ``field`` on any of ``names`` (to be split if they cover more)."""
    selector_field = _SELECTOR_OF[kind]
    found = []
    for i, iv in enumerate(scenario.interventions):
        if field not in type(iv).model_fields or selector_field not in type(iv).model_fields:
            continue
        selected = getattr(iv, selector_field)
        covered = list(getattr(scenario, kind)) if selected == "*" else list(selected)
        mine = tuple(n for n in covered if n in names)
        if not mine:
            continue
        others = tuple(n for n in covered if n not in names)
        where = f"interventions[{i}] ({iv.kind}).{field}"
        found.append(Target(iv, field, where, selector_field if others else None, mine, others))
    return found


def apply_levers(scenario: Scenario, values: Mapping[str, Any]) -> Scenario:
    """A copy of ``scenario`` with each lever path set to its value.

    Raises:
        LeverError: a path does not fit the scenario, or a value is out of bounds.
    """
    sc = scenario.model_copy(deep=True)
    for path, value in values.items():
        for target in targets(sc, path):
            container = _split_off(sc, target) if target.selector else target.container
            try:
                _set(container, target.field, _plain(value))
            except ValidationError as exc:
                problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
                raise LeverError(f"{path}={value}", f"{target.where}: {problem}") from None
    check_references(sc)
    return sc


def _split_off(scenario: Scenario, target: Target) -> BaseModel:
    """Give the lever's entities their own copy of an intervention, right after it."""
    intervention = target.container
    copy = intervention.model_copy(deep=True)
    setattr(copy, str(target.selector), list(target.mine))
    setattr(intervention, str(target.selector), list(target.others))
    index = next(i for i, iv in enumerate(scenario.interventions) if iv is intervention)
    scenario.interventions.insert(index + 1, copy)
    return copy


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _set(container: BaseModel, field: str, value: Any) -> None:
    """Set a field; a whole float (``4.0``, a counted range's level) fits a whole-number field."""
    try:
        setattr(container, field, value)
    except ValidationError as exc:
        whole = isinstance(value, float) and value.is_integer()
        if not whole or exc.errors()[0]["type"] != "int_type":
            raise
        setattr(container, field, int(value))


def describe_targets(scenario: Scenario, path: str) -> list[str]:
    """Where lever ``path`` writes to, for messages and reports."""
    return [t.where for t in targets(scenario, path)]
