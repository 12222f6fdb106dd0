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
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, TypeAdapter, ValidationError

from orgtwin.errors import ScenarioError, did_you_mean
from orgtwin.scenario.interventions import INTERVENTION_KINDS, KINDS, VendorSwap
from orgtwin.scenario.spec import Scenario
from orgtwin.units import HOURS_PER_DAY, parse_hours

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
    for segment in loc:
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
    return _Where(tuple(parts), _unwrap(annotation), owner, union)


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
    if kind in ("value_error", "assertion_error"):
        return _value_issue(where, str(ctx.get("error", err["msg"])))
    expected = _expected(kind, ctx, where.annotation)
    got = show(value)
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


_EXPECTED_BY_PREFIX = {
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
_NOUNS = {int: "an integer", float: "a number"}


def _expected(kind: str, ctx: Mapping[str, Any], annotation: Any) -> str | None:
    """What the value should have been, in words (``an integer >= 1``), if known."""
    if kind in _BOUNDS:
        operator, key = _BOUNDS[kind]
        return f"{_NOUNS.get(annotation, 'a number')} {operator} {show(ctx.get(key))}"
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
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
