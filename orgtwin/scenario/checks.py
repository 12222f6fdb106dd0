"""Validation: decide whether a scenario is valid, and say what is wrong in house style.

:mod:`orgtwin.scenario.load` reads and merges scenario files; this module judges the
result and words every problem as a :class:`~orgtwin.errors.ScenarioError` naming the
file, the field path and what was expected (``teams.platform.oncall_size must be an
integer >= 1, got 0``), with a hint when one helps (``did you mean 'teams.platform'?``).

Four parts, one section each below: **shapes** runs pydantic and translates its errors
(following each error location through the Scenario types to phrase what was expected,
and folding the per-member errors of a union into one); **references** checks what
pydantic cannot see: names that refer to other entities and an acyclic call graph;
**timing** checks that the interventions start before the run ends; **reporting** raises
the first problem in document order with every problem attached. References and timing
work on the parsed mapping too, skipping whatever is not the right shape (the shape
checks report it), so that :func:`validate` finds every kind of problem in one pass.
Every problem is an :class:`Issue` until it is raised.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, TypeAdapter, ValidationError

from orgtwin.errors import ScenarioError, did_you_mean
from orgtwin.scenario.fields import (
    MAX_NAME_LENGTH,
    MAX_PRICE_USD_MONTH,
    MIN_PAID_PRICE_USD_MONTH,
)
from orgtwin.scenario.interventions import INTERVENTION_KINDS, KINDS, VendorSwap
from orgtwin.scenario.organisation import SegmentSpec
from orgtwin.scenario.spec import MAX_DAYS, Scenario
from orgtwin.units import DAYS_PER_MONTH, HOURS_PER_DAY, parse_hours

LOADER_FIELDS = ("base", "source")
"""Scenario fields the loader sets; a file may not."""


class Issue(NamedTuple):
    """One problem found, before it becomes a :class:`ScenarioError`."""

    parts: tuple[str | int, ...]
    problem: str
    hint: str | None = None
    union: tuple[str | int, ...] | None = None  # the union a pydantic error came through
    expected: str | None = None
    got: str = ""


# --------------------------------------------------------------------------- shapes


def validate(data: dict[str, Any], shown: str) -> Scenario:
    """Validate merged data into a Scenario, finding every problem in one pass.

    Shapes (pydantic), references (on the parts that are well-formed) and timing (against
    ``days``, if valid) are all checked, whatever the others found.

    Args:
        data: the merged scenario mapping.
        shown: the file it came from, for messages.

    Raises:
        ScenarioError: the first problem in document order, with ``.errors`` holding all.
    """
    scenario, issues = _shapes(data)
    issues += reference_issues(data)
    issues += structure_issues(data)
    issues += _run_timing_issues(data)
    if issues:
        raise_issues(shown, issues, document_order(data))
    assert scenario is not None  # no issues means validation succeeded
    return scenario


def _shapes(data: dict[str, Any]) -> tuple[Scenario | None, list[Issue]]:
    """The validated scenario (None if pydantic refused it) and every shape issue."""
    issues = [
        Issue((name,), "is not a known key (the loader sets it)")
        for name in LOADER_FIELDS
        if name in data
    ]
    try:
        return Scenario.model_validate(data), issues
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        return None, issues + _collapse_unions([_translate(err) for err in errors])


class _Where(NamedTuple):
    parts: tuple[str | int, ...]
    annotation: Any
    owner: type[BaseModel] | None
    union: tuple[str | int, ...] | None


def _locate(loc: tuple[str | int, ...]) -> _Where:
    """Follow a pydantic error location through the Scenario types.

    Drops the segments pydantic inserts for union members (the intervention ``kind`` tag,
    ``list[str]``…) and reports the type found at the end and the model that owns the
    last key.
    """
    annotation: Any = Scenario
    parts: list[str | int] = []
    owner: type[BaseModel] | None = None
    union: tuple[str | int, ...] | None = None
    key = loc[-1:] == ("[key]",)  # the error is in a mapping's key, not its value
    for segment in loc[:-1] if key else loc:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if _is_model(annotation):
            owner = annotation
            field = annotation.model_fields.get(str(segment))
            annotation = field.annotation if field else Any
        elif origin in (typing.Union, types.UnionType):
            union = tuple(parts)
            annotation = _member(annotation, str(segment))
            continue
        elif origin is dict:
            annotation = typing.get_args(annotation)[1]
            segment = str(segment)
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        else:
            annotation = Any
        parts.append(segment)
    return _Where(tuple(parts), str if key else _unwrap(annotation), owner, union)


def _translate(err: Any) -> Issue:
    """Turn one pydantic error into an issue in the house message shape."""
    where = _locate(err["loc"])
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        return _unknown_key(where)
    if kind == "union_tag_invalid":
        hint = did_you_mean(str(ctx.get("tag")), INTERVENTION_KINDS)
        problem = f"must be one of {_quoted(INTERVENTION_KINDS)}, got {ctx.get('tag')!r}"
        return Issue((*where.parts, "kind"), problem, hint)
    if kind == "union_tag_not_found":
        return Issue((*where.parts, "kind"), f"is required: one of {_quoted(INTERVENTION_KINDS)}")
    if kind == "missing":
        return Issue(where.parts, "is required")
    if err["loc"][-1:] == ("[key]",):
        return Issue(where.parts[:-1], f"must have {_NAME_KEYS} as keys, got {show(value)}")
    if kind in ("value_error", "assertion_error"):
        return _value_issue(where, str(ctx.get("error", err["msg"])))
    if kind == "too_long":
        found = len(value) if isinstance(value, typing.Sized) else ctx.get("actual_length")
        return Issue(where.parts, f"must have at most {ctx['max_length']:,} entries, got {found:,}")
    expected = _expected(kind, ctx, where.annotation)
    got = repr(value) if kind == "int_type" and isinstance(value, float) else show(value)
    if expected is None:
        problem = str(err["msg"]).replace("Input should be", "must be")
        return Issue(where.parts, f"{problem[:1].lower()}{problem[1:]}, got {got}")
    return Issue(where.parts, f"must be {expected}, got {got}", None, where.union, expected, got)


def _unknown_key(where: _Where) -> Issue:
    owner = where.owner or Scenario
    allowed = [name for name in owner.model_fields if not owner.model_fields[name].exclude]
    if owner is Scenario:
        allowed.append("extends")
    hint = did_you_mean(str(where.parts[-1]), allowed) or f"known keys: {', '.join(allowed)}"
    return Issue(where.parts, "is not a known key", hint)


def _value_issue(where: _Where, message: str) -> Issue:
    """A validator's message; ``"until must be …"`` moves ``until`` into the path."""
    first, _, rest = message.partition(" ")
    if _is_model(where.annotation) and first in where.annotation.model_fields and rest:
        return Issue((*where.parts, first), rest)
    return Issue(where.parts, message)


_NAME_KEYS = f"names (1 to {MAX_NAME_LENGTH} characters, not blank, no control characters)"
_EXPECTED_BY_PREFIX = {
    "finite_number": "a finite number",
    "string_too_short": "a non-empty name",
    "string_too_long": f"a name of at most {MAX_NAME_LENGTH} characters",
    "int_": "an integer",
    "float_": "a number",
    "string_": "a string",
    "bool_": "true or false",
    "dict_": "a mapping",
    "model_": "a mapping",
    "list_": "a list",
    "datetime_": "a date-time like 2026-01-05T00:00:00",
    "date_": "a date-time like 2026-01-05T00:00:00",
}
_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}
_NOUNS = {int: "an integer", float: "a number", datetime: "a date-time"}


def _expected(kind: str, ctx: Mapping[str, Any], annotation: Any) -> str | None:
    """What the value should have been, in words (``an integer >= 1``), if known."""
    if kind in _BOUNDS:
        operator, key = _BOUNDS[kind]
        bound = ctx.get(key)
        shown = bound if annotation is datetime else show(bound)  # ISO text, unquoted
        return f"{_NOUNS.get(annotation, 'a number')} {operator} {shown}"
    if kind == "literal_error":
        if typing.get_origin(annotation) is Literal:
            values = typing.get_args(annotation)
            return repr(values[0]) if len(values) == 1 else f"one of {_quoted(values)}"
        return f"one of {ctx.get('expected')}"
    for prefix, words in _EXPECTED_BY_PREFIX.items():
        if kind.startswith(prefix):
            return words
    return None


def _collapse_unions(issues: list[Issue]) -> list[Issue]:
    """Merge the errors each member of a union reports into one issue per union.

    When some member got deeper (``teams[1] must be a string``) keep only those; else
    say every alternative (``must be '*' or a list, got 5``).
    """
    kept = [issue for issue in issues if issue.union is None]
    groups: dict[tuple[str | int, ...], list[Issue]] = {}
    for issue in issues:
        if issue.union is not None:
            groups.setdefault(issue.union, []).append(issue)
    for path, group in groups.items():
        deeper = [issue for issue in group if len(issue.parts) > len(path)]
        if deeper:
            kept += deeper
            continue
        alternatives = " or ".join(dict.fromkeys(str(issue.expected) for issue in group))
        kept.append(Issue(path, f"must be {alternatives}, got {group[0].got}"))
    return kept


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[…]`` and ``X | None`` down to ``X``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [m for m in typing.get_args(annotation) if m is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _member(union: Any, tag: str) -> Any:
    """The member of a union that a pydantic location segment (``list[str]``, a kind) names."""
    for member in map(_unwrap, typing.get_args(union)):
        if _is_model(member) and "kind" in member.model_fields:
            matches = tag in typing.get_args(member.model_fields["kind"].annotation)
        else:
            named = typing.get_origin(member) or member
            matches = tag.split("[")[0] == getattr(named, "__name__", "").lower()
        if matches:
            return member
    return Any


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


# --------------------------------------------------------------------------- references

_SECTIONS = ("segments", "features", "services", "vendors", "teams")
_Known = Mapping[str, dict[str, Any] | None]
"""Each section's entries by name; ``None`` where the section's names are unknown."""


def reference_issues(data: Scenario | Mapping[str, Any]) -> list[Issue]:
    """Every dangling name and call cycle among the well-formed parts of a scenario.

    Segments name features, features enter services, services name their team, callees
    and vendors, interventions name teams, services, segments, features and vendors.

    Args:
        data: a scenario, or a parsed scenario mapping whose shapes may be invalid: a
            section, entry or field that is not the right shape is skipped (the shape
            checks report it), and a name is declared if it is a key of its section.
    """
    if isinstance(data, Scenario):
        data = data.model_dump()
    known = {section: _declared(data, section) for section in _SECTIONS}
    return [*_entity_issues(known), *_cycle_issues(known), *_intervention_issues(data, known)]


def _declared(data: Mapping[str, Any], section: str) -> dict[str, Any] | None:
    """A section's entries by name, or None if it is missing (and required) or no mapping."""
    field = Scenario.model_fields[section]
    value = data.get(section) if section in data or field.is_required() else field.default
    return _entries(value) if isinstance(value, Mapping) else None


def _entries(value: Any) -> dict[str, Any]:
    """A mapping's items with string keys (as paths show them); ``{}`` for anything else."""
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _get(entry: Any, key: str, default: Any = None) -> Any:
    """``entry[key]`` if ``entry`` is a mapping holding it, else ``default``."""
    return entry.get(key, default) if isinstance(entry, Mapping) else default


def _entity_issues(known: _Known) -> Iterator[Issue]:
    """Names in segments, features and services that are not declared."""
    for name, segment in (known["segments"] or {}).items():
        for feature in _entries(_get(segment, "features")):
            parts = ("segments", name, "features", feature)
            yield from _undeclared_key(parts, "feature", known["features"])
    for name, feature in (known["features"] or {}).items():
        entry = _get(feature, "entry")
        yield from _undeclared(("features", name, "entry"), entry, "service", known["services"])
    for name, service in (known["services"] or {}).items():
        yield from _service_issues(name, service, known)


def _service_issues(name: str, service: Any, known: _Known) -> Iterator[Issue]:
    """Undeclared names in one service: its team, callees and vendors."""
    team = _get(service, "team")
    yield from _undeclared(("services", name, "team"), team, "team", known["teams"])
    for callee in _entries(_get(service, "calls")):
        parts = ("services", name, "calls", callee)
        if callee == name:
            yield Issue(parts, "is the service itself")
        else:
            yield from _undeclared_key(parts, "service", known["services"])
    for vendor in _entries(_get(service, "vendors")):
        parts = ("services", name, "vendors", vendor)
        yield from _undeclared_key(parts, "vendor", known["vendors"])


def _cycle_issues(known: _Known) -> Iterator[Issue]:
    """The first cycle in the call graph, spelled from its earliest-declared service."""
    services = known["services"] or {}
    graph = {
        name: [c for c in _entries(_get(service, "calls")) if c in services and c != name]
        for name, service in services.items()
    }
    cycle = _find_cycle(graph)
    if cycle:
        position = {name: i for i, name in enumerate(graph)}
        start = min(range(len(cycle)), key=lambda i: position[cycle[i]])
        ring = [*cycle[start:], *cycle[:start], cycle[start]]
        problem = f"form a cycle: {' → '.join(ring)} (calls must form a DAG)"
        yield Issue(("services", ring[0], "calls"), problem)


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """A cycle of a directed graph (its nodes, in order) or ``None``; depth-first, iterative."""
    done: set[str] = set()
    for root in graph:
        if root in done:
            continue
        path, stack = [root], [iter(graph[root])]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                done.add(path.pop())
                stack.pop()
            elif child in path:
                return path[path.index(child) :]
            elif child not in done:
                path.append(child)
                stack.append(iter(graph[child]))
    return None


_SELECTORS = {"teams": "team", "services": "service", "segments": "segment", "features": "feature"}
_NAMED = {
    "feature": ("feature", "features"),
    "vendor": ("vendor", "vendors"),
    "to": ("vendor", "vendors"),
}


def _intervention_issues(data: Mapping[str, Any], known: _Known) -> Iterator[Issue]:
    """Undeclared names in the interventions of a known kind (selectors, vendors…)."""
    interventions = data.get("interventions")
    for i, intervention in enumerate(interventions if isinstance(interventions, list) else []):
        kind = _get(intervention, "kind")
        spec = KINDS.get(kind) if isinstance(kind, str) else None
        if spec is None:
            continue
        for field, noun in _SELECTORS.items():
            if field in spec.model_fields:
                names = _get(intervention, field, "*")
                yield from _selector_issues(("interventions", i, field), names, noun, known[field])
        for field, (noun, section) in _NAMED.items():
            if field in spec.model_fields:
                value = _get(intervention, field)
                yield from _undeclared(("interventions", i, field), value, noun, known[section])
        to = _get(intervention, "to")
        if spec is VendorSwap and isinstance(to, str) and to == _get(intervention, "vendor"):
            yield Issue(("interventions", i, "to"), f"must differ from vendor, got {to!r}")


def _selector_issues(
    parts: tuple[str | int, ...], names: Any, noun: str, known: dict[str, Any] | None
) -> Iterator[Issue]:
    """An empty selector, or the names in a selector that are not declared."""
    if names == []:
        yield Issue(parts, f"must be '*' or name a {noun}, got []")
    for j, name in enumerate(names if isinstance(names, list) else []):
        yield from _undeclared((*parts, j), name, noun, known)


def _undeclared(
    parts: tuple[str | int, ...], value: Any, noun: str, known: dict[str, Any] | None
) -> Iterator[Issue]:
    """A name given as a value (``entry: x``) that is not declared (names known, a string)."""
    if known is not None and isinstance(value, str) and value not in known:
        yield _dangling(parts, noun, known, value)


def _undeclared_key(
    parts: tuple[str | int, ...], noun: str, known: dict[str, Any] | None
) -> Iterator[Issue]:
    """A name given as the last key of ``parts`` that is not declared (if names are known)."""
    if known is not None and parts[-1] not in known:
        yield _dangling(parts, noun, known)


def _dangling(
    parts: tuple[str | int, ...], noun: str, known: Mapping[str, Any], value: str | None = None
) -> Issue:
    """A name that is not declared: a value (``entry: x``) or, with no value, the last key."""
    if value is None:
        problem, value = f"is not a {noun} declared in {noun}s", str(parts[-1])
    else:
        problem = f"must name a {noun} declared in {noun}s, got {value!r}"
    listed = ", ".join(list(known)[:10]) + (", …" if len(known) > 10 else "")
    return Issue(parts, problem, did_you_mean(value, known) or f"declared {noun}s: {listed}")


# --------------------------------------------------------------------------- structure

MAX_CALLS_PER_REQUEST = 1_000_000.0
"""Most calls one request to a service may cause downstream, every call path counted."""
MAX_SURGE = 10_000.0
"""Largest factor that overlapping traffic surges may put on a feature's sessions."""
MAX_HEADCOUNT = 10_000
"""Most engineers a team may reach with every hire of its staffing changes."""
MAX_CALLS_PER_EDGE = 1_000.0
"""Most calls one request to a service may make to one callee (the field's own bound)."""
_PATH_SHOWN = 8
"""Services a message spells out along a call path before it abbreviates."""


class _Timed(NamedTuple):
    """An intervention of the parsed mapping with its start and end hour."""

    index: int
    spec: Mapping[str, Any]
    start: int
    end: int | None


def structure_issues(data: Scenario | Mapping[str, Any]) -> list[Issue]:
    """What a run cannot survive though every field is within its own bounds.

    A team that owns no service (its engineers' changes have nowhere to go), a call graph
    whose requests multiply past :data:`MAX_CALLS_PER_REQUEST` along its paths, traffic
    surges that overlap past :data:`MAX_SURGE`, price changes that carry a price out of
    its range, a churn hazard that can pass :data:`MAX_CHURN_LOG_HAZARD`, staffing that
    grows a team past :data:`MAX_HEADCOUNT`.

    Args:
        data: a scenario, or a parsed scenario mapping whose shapes may be invalid (what
            is not the right shape is skipped, as in :func:`reference_issues`).
    """
    if isinstance(data, Scenario):
        data = data.model_dump()
    known = {section: _declared(data, section) for section in _SECTIONS}
    timed = _timed(data)
    return [
        *_ownerless_teams(known),
        *_fanout_issues(known),
        *_surge_issues(timed, known),
        *_price_issues(timed, known),
        *_churn_issues(timed, known),
        *_headcount_issues(timed, known),
    ]


def _number(value: Any) -> float | None:
    """A finite number as a float, or None for anything else (the shape checks report it)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _timed(data: Mapping[str, Any]) -> list[_Timed]:
    """The interventions whose ``at`` and ``until`` are valid times, with their hours."""
    interventions = data.get("interventions")
    found = []
    for i, spec in enumerate(interventions if isinstance(interventions, list) else []):
        if not isinstance(spec, Mapping):
            continue
        start, until = _start_hour(spec.get("at", 0)), spec.get("until")
        end = None if until is None else _start_hour(until)
        if start >= 0 and (end is None or end > start):
            found.append(_Timed(i, spec, int(start), None if end is None else int(end)))
    return found


def _events(timed: Sequence[_Timed]) -> list[tuple[int, bool, int, _Timed]]:
    """Starts and ends in the order the run meets them: by hour, ends first, file order."""
    ends = [(t.end, False, t.index, t) for t in timed if t.end is not None]
    return sorted([*ends, *((t.start, True, t.index, t) for t in timed)])


def _covered(spec: Mapping[str, Any], field: str, names: Mapping[str, Any]) -> list[str]:
    """The declared names an intervention's selector covers (``"*"``: all of them)."""
    selected = spec.get(field, "*")
    if selected == "*":
        return list(names)
    return [n for n in selected if n in names] if isinstance(selected, list) else []


def _of_kind(timed: Sequence[_Timed], kind: str) -> list[_Timed]:
    return [t for t in timed if t.spec.get("kind") == kind]


def _ownerless_teams(known: _Known) -> Iterator[Issue]:
    """Teams that no service names as its team (the model needs a service to deploy to)."""
    teams, services = known["teams"], known["services"]
    owners = [_get(service, "team") for service in (services or {}).values()]
    if teams is None or services is None or not all(isinstance(o, str) for o in owners):
        return
    for name in teams:
        if name not in owners:
            hint = "name it as the team of a service, or remove it"
            yield Issue(("teams", name), "must own at least one service, got none", hint)


def _fanout_issues(known: _Known) -> Iterator[Issue]:
    """The service whose requests cause the most calls downstream, if past the bound."""
    services = known["services"] or {}
    calls = {name: _entries(_get(service, "calls")) for name, service in services.items()}
    if any(_calls(value) is None for callees in calls.values() for value in callees.values()):
        return  # the shape checks report the value
    graph = {
        name: {c: _calls(value) or 0.0 for c, value in callees.items() if c in services}
        for name, callees in calls.items()
    }
    looped = any(name in g for name, g in graph.items())
    if not graph or looped or _find_cycle({name: list(g) for name, g in graph.items()}):
        return  # the reference checks report the cycle (or the service calling itself)
    total, heaviest = _amplification(graph)
    worst = max(graph, key=lambda name: total[name])
    if total[worst] > MAX_CALLS_PER_REQUEST:
        path = [worst]
        while (step := heaviest[path[-1]]) is not None:
            path.append(step)
        shown = " → ".join(path[:_PATH_SHOWN]) + (" → …" if len(path) > _PATH_SHOWN else "")
        problem = (
            f"must cause at most {MAX_CALLS_PER_REQUEST:,.0f} calls per request downstream, "
            f"got {_big(total[worst])} along {shown} ({len(path)} services deep)"
        )
        yield Issue(("services", worst, "calls"), problem, "lower the calls per request")


def _calls(value: Any) -> float | None:
    """Calls per request, if ``value`` is a valid one (a number within the field's bounds)."""
    calls = _number(value)
    return calls if calls is not None and 0.0 <= calls <= MAX_CALLS_PER_EDGE else None


def _amplification(
    graph: Mapping[str, Mapping[str, float]],
) -> tuple[dict[str, float], dict[str, str | None]]:
    """Calls one request to each service causes, itself included (a row sum of (I − F)⁻¹),
    and the callee on each service's heaviest path; depth first, iterative."""
    total: dict[str, float] = {}
    heaviest: dict[str, str | None] = {}
    for root in graph:
        stack = [root]
        while stack:
            name = stack[-1]
            if name in total:  # reached along another path first
                stack.pop()
                continue
            waiting = [c for c in graph[name] if c not in total]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            shares = {c: calls * total[c] for c, calls in graph[name].items()}
            total[name] = 1.0 + sum(shares.values())
            heaviest[name] = max(shares, key=shares.__getitem__) if shares else None
    return total, heaviest


def _big(value: float) -> str:
    """A count as a message shows it: ``2,048`` or ``1.27e+30`` (``> 1e308`` past floats)."""
    if math.isinf(value):
        return "more than 1e308"
    return f"{value:,.0f}" if value < 1e15 else f"{value:.3g}"


def _surge_issues(timed: Sequence[_Timed], known: _Known) -> Iterator[Issue]:
    """Traffic surges that overlap on a feature past :data:`MAX_SURGE`; one issue each."""
    features = known["features"] or {}
    surges = [t for t in _of_kind(timed, "traffic_surge") if _surge(t) is not None]
    blamed: set[int] = set()
    for feature in features:
        mine = [t for t in surges if feature in _covered(t.spec, "features", features)]
        factor = 1.0
        for _, starts, index, t in _events(mine):
            multiplier = _surge(t) or 1.0
            factor = factor * multiplier if starts else factor / multiplier
            if starts and factor > MAX_SURGE and index not in blamed:
                blamed.add(index)
                problem = (
                    f"must keep the overlapping traffic surges on feature {feature!r} within "
                    f"{MAX_SURGE:,.0f}x, got {factor:,.0f}x"
                )
                yield Issue(("interventions", index, "multiplier"), problem)


def _surge(t: _Timed) -> float | None:
    multiplier = _number(t.spec.get("multiplier", 2.0))
    return multiplier if multiplier is not None and multiplier > 0 else None


def _price_issues(timed: Sequence[_Timed], known: _Known) -> Iterator[Issue]:
    """Price changes that carry a segment's price out of its range, replayed in run order."""
    segments = known["segments"] or {}
    changes = _of_kind(timed, "price_change")
    blamed: set[tuple[str | int, ...]] = set()
    for name, segment in segments.items() if changes else ():
        price = _number(_get(segment, "price_usd_month", 0.0))
        mine = [t for t in changes if name in _covered(t.spec, "segments", segments)]
        for issue in _price_path(name, price, mine) if price is not None else ():
            if issue.parts not in blamed:  # one issue per price change, for its first segment
                blamed.add(issue.parts)
                yield issue


def _price_path(segment: str, price: float, changes: Sequence[_Timed]) -> Iterator[Issue]:
    """The first price change that takes ``segment``'s price out of range, if any."""
    for new, index, spec in _prices(price, changes):
        if new > MAX_PRICE_USD_MONTH or 0.0 < new < MIN_PAID_PRICE_USD_MONTH:
            field = "factor" if spec.get("factor") is not None else "price_usd_month"
            problem = (
                f"must keep the price of segment {segment!r} at 0 or between 0.01 and "
                f"{MAX_PRICE_USD_MONTH:,.0f} USD/month, got {_money(new)}"
            )
            yield Issue(("interventions", index, field), problem)
            return


def _money(amount: float) -> str:
    """``1,200,000``, ``12.5`` or ``0.0012``: an amount as a message shows it."""
    return f"{amount:,.2f}".removesuffix(".00") if amount >= 0.01 else f"{amount:.3g}"


def _prices(
    price: float, changes: Sequence[_Timed]
) -> Iterator[tuple[float, int, Mapping[str, Any]]]:
    """Each price a segment's price changes set, in run order, with the change that set it.

    A change applies at ``at`` (a new price, or the current one times its factor) and puts
    back, at ``until``, the price it replaced, as the running world does.
    """
    saved: dict[int, float] = {}
    for _, starts, index, t in _events(changes):
        if not starts:
            price = saved.pop(index, price)
            continue
        new = _new_price(t.spec, price)
        if new is not None:
            saved[index], price = price, new
            yield price, index, t.spec


def segment_prices(scenario: Scenario) -> dict[str, list[float]]:
    """Every price each segment charges during a run: its own, then its price changes'.

    Example:
        >>> from orgtwin.scenario.load import load_scenario
        >>> segment_prices(load_scenario("scenarios/price_increase.yaml"))["pro_us"]
        [12.0, 15.0]
    """
    data = scenario.model_dump()
    changes = _of_kind(_timed(data), "price_change")
    found = {}
    for name, segment in scenario.segments.items():
        mine = [t for t in changes if name in _covered(t.spec, "segments", scenario.segments)]
        price = segment.price_usd_month
        found[name] = [price, *(new for new, _, _ in _prices(price, mine))]
    return found


def _new_price(spec: Mapping[str, Any], price: float) -> float | None:
    """The price a price change sets (a new price, or the current one times a factor)."""
    factor, new = spec.get("factor"), spec.get("price_usd_month")
    if (factor is None) == (new is None):
        return None
    value = _number(new if factor is None else factor)
    if value is None:
        return None
    return value if factor is None else price * value


MAX_CHURN_LOG_HAZARD = 80.0
"""Highest daily churn log-hazard any user slot may reach: the model keeps hazards and
their running sums in float32, which ends at about e^88 (a ten-year sum at e^80)."""
_CHURNED_BY = 4.0
"""A user whose daily log-hazard passes this has churned (their threshold is below e^4)."""


def _churn_issues(timed: Sequence[_Timed], known: _Known) -> Iterator[Issue]:
    """Segments whose churn log-hazard can rise past :data:`MAX_CHURN_LOG_HAZARD`.

    The log-hazard adds a base, a price term (at the dearest price the segment charges)
    and a tenure term (at the longest tenure it may see); a user still there has a
    log-hazard of at most that, or about 4, and one day of bad sessions adds at most
    ``experience_coef × sessions_per_user_day × (1 − 0.5^(1/half-life)) × intensity``
    for its heaviest user.
    """
    segments = known["segments"] or {}
    changes = _of_kind(timed, "price_change")
    for name, segment in segments.items():
        mine = [t for t in changes if name in _covered(t.spec, "segments", segments)]
        terms = _churn_terms(segment, mine)
        if terms is None:
            continue
        steady, bad_day = terms
        highest = max(steady, _CHURNED_BY) + bad_day
        if highest > MAX_CHURN_LOG_HAZARD:
            problem = (
                f"must keep the daily churn log-hazard below {MAX_CHURN_LOG_HAZARD:g}, got "
                f"{highest:,.0f} ({steady:,.1f} at its dearest price and longest tenure, "
                f"{bad_day:,.1f} more in a day of bad sessions for its heaviest user)"
            )
            hint = "lower experience_coef, sessions_per_user_day, intensity_sigma or the price"
            yield Issue(("segments", name, "churn"), problem, hint)


_CHURN_INPUTS = {
    "base": "churn.base_monthly", "price": "churn.price_elasticity",
    "tenure": "churn.tenure_coef", "coef": "churn.experience_coef",
    "half_life": "churn.experience_half_life_days", "sessions": "sessions_per_user_day",
    "sigma": "intensity_sigma", "months": "initial_tenure_months_mean", "paid": "price_usd_month",
}  # fmt: skip
"""What the highest churn log-hazard of a segment depends on, by where it is declared."""


def _churn_terms(segment: Any, changes: Sequence[_Timed]) -> tuple[float, float] | None:
    """A segment's highest steady churn log-hazard, and the most one day of bad sessions
    adds to it (None if the segment's figures are not valid numbers)."""
    read = {key: _field(segment, where) for key, where in _CHURN_INPUTS.items()}
    if any(value is None for value in read.values()):
        return None
    v: dict[str, float] = read  # type: ignore[assignment]
    if not 0 <= v["base"] < 1 or v["half_life"] <= 0:
        return None
    base = math.log(max(-math.log1p(-v["base"]) / DAYS_PER_MONTH, 1e-300))
    pinned = _number(_get(_get(segment, "churn"), "reference_price_usd_month"))
    reference = v["paid"] if pinned is None else pinned  # the loader pins it to the price
    prices = [v["paid"], *(p for p, _, _ in _prices(v["paid"], changes))]
    dearest = max(prices) / reference if reference > 0 else 1.0
    price = v["price"] * math.log(dearest) if dearest > 1 else 0.0
    users = 10.0 * max(_number(_get(segment, "n_users")) or 0.0, 1000.0)  # with arrivals
    tenure_months = v["months"] * (math.log(users) + 5) + MAX_DAYS / DAYS_PER_MONTH
    tenure = max(v["tenure"], 0.0) * math.log1p(tenure_months)
    tail = math.sqrt(2 * math.log(users)) + 2  # standard deviations: the heaviest user, surely
    heaviest = math.exp(min(-(v["sigma"] ** 2) / 2 + v["sigma"] * tail, 700.0))
    kept = 1.0 - 0.5 ** (1.0 / v["half_life"])  # the share of a day's bad sessions remembered
    return base + price + tenure, v["coef"] * v["sessions"] * kept * heaviest


def _field(segment: Any, where: str) -> float | None:
    """A number of a parsed segment (``"churn.tenure_coef"``), or its declared default when
    the file leaves it out; None when it is not a number."""
    spec: Any = SegmentSpec
    entry = segment
    for key in where.split("."):
        field = spec.model_fields[key]
        spec = field.annotation
        found = isinstance(entry, Mapping) and key in entry
        entry = entry[key] if found else field.get_default(call_default_factory=True)
        if isinstance(entry, BaseModel):
            entry = entry.model_dump()
    return _number(entry)


def _headcount_issues(timed: Sequence[_Timed], known: _Known) -> Iterator[Issue]:
    """Staffing changes whose hires, all added up, grow a team past :data:`MAX_HEADCOUNT`."""
    teams = known["teams"] or {}
    staffing = [t for t in _of_kind(timed, "staffing") if t.spec.get("headcount_change")]
    for name, team in teams.items() if staffing else ():
        headcount = _number(_get(team, "headcount"))
        for _, _, index, t in _events(staffing):
            change = _number(t.spec.get("headcount_change"))
            if headcount is None or change is None or name not in _covered(t.spec, "teams", teams):
                continue
            headcount += max(change, 0.0)  # layoffs are not counted: hires may arrive later
            if headcount > MAX_HEADCOUNT:
                problem = (
                    f"must keep team {name!r} within {MAX_HEADCOUNT:,} engineers with every "
                    f"hire, got {headcount:,.0f}"
                )
                yield Issue(("interventions", index, "headcount_change"), problem)
                break


# --------------------------------------------------------------------------- timing

_DAYS = TypeAdapter(Annotated[(int, *Scenario.model_fields["days"].metadata)])
"""Validates ``days`` as :class:`Scenario` does."""


def timing_issues(starts: Sequence[Any], days: int) -> list[Issue]:
    """The interventions that start at or after the end of a run of ``days`` days.

    Args:
        starts: each intervention's ``at``, in order; one that is not a valid time (or
            ``None``) is skipped, for the shape checks report it.
        days: length of the run in days.
    """
    ends = f"must be before the end of the run (day {days})"
    return [
        Issue(("interventions", i, "at"), f"{ends}, got {show(at)}")
        for i, at in enumerate(starts)
        if _start_hour(at) >= days * HOURS_PER_DAY
    ]


def _run_timing_issues(data: Mapping[str, Any]) -> list[Issue]:
    """Timing issues of a parsed scenario against its own ``days``, if those are valid."""
    interventions = data.get("interventions")
    if not isinstance(interventions, list):
        return []
    try:
        days = _DAYS.validate_python(data.get("days", Scenario.model_fields["days"].default))
    except ValidationError:
        return []
    return timing_issues([_get(x, "at") for x in interventions], days)


def _start_hour(at: Any) -> float:
    """The hour a start time names, or minus infinity if it names none (a shape error)."""
    try:
        return parse_hours(at)
    except (ValueError, OverflowError):
        return -math.inf


# --------------------------------------------------------------------------- reporting


def raise_issues(
    source: str, issues: list[Issue], order: Mapping[tuple[str | int, ...], int] | None = None
) -> None:
    """Raise the first issue (in document order, if ``order`` is given) with all attached."""
    if not issues:
        return
    if order is not None:
        issues = sorted(issues, key=lambda issue: _position(issue.parts, order))
    errors = [ScenarioError(source, _dotted(i.parts), i.problem, i.hint) for i in issues]
    errors[0].errors = errors
    raise errors[0]


def document_order(data: Any) -> dict[tuple[str | int, ...], int]:
    """Position of every path in a parsed document (pre-order: a key before its values)."""
    return {path: i for i, (path, _) in enumerate(walk(data))}


def walk(data: Any) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every (path, value) of nested mappings and lists, in document order; iterative."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, Mapping):
            children = [((*path, str(k)), v) for k, v in value.items()]
        elif isinstance(value, list):
            children = [((*path, i), v) for i, v in enumerate(value)]
        else:
            continue
        stack.extend(reversed(children))


def _position(parts: tuple[str | int, ...], order: Mapping[tuple[str | int, ...], int]) -> int:
    """Document position of a path, or of its nearest existing ancestor (missing keys)."""
    while parts and parts not in order:
        parts = parts[:-1]
    return order.get(parts, 0)


def _dotted(parts: tuple[str | int, ...]) -> str:
    """``("interventions", 2, "until")`` → ``interventions[2].until``."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


def _quoted(values: typing.Iterable[Any]) -> str:
    return ", ".join(repr(v) for v in values)


def show(value: Any) -> str:
    """A value as a message shows it: whole floats without ``.0``, long values cut."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
