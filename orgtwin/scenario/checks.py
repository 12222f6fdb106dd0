"""Validation: decide whether a scenario is valid, and say what is wrong in house style.

:mod:`orgtwin.loading` reads and merges scenario files; this module judges the result and
words every problem as a :class:`~orgtwin.errors.ScenarioError` naming the file, the
field path and what was expected (``teams.platform.oncall_size must be an integer >= 1,
got 0``), with a hint when one helps (``did you mean 'teams.platform'?``).

Three parts, one section each below: **shapes** runs pydantic and translates its errors
(following each error location through the Scenario types to phrase what was expected,
and folding the per-member errors of a union into one); **references** checks what
pydantic cannot see: names that refer to other entities and an acyclic call graph;
**reporting** raises the first problem in document order with every problem attached.
Every problem is an :class:`Issue` until it is raised.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ValidationError

from orgtwin.errors import ScenarioError, did_you_mean
from orgtwin.scenario.interventions import INTERVENTION_KINDS, VendorSwap
from orgtwin.scenario.spec import Scenario

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
    """Validate merged data into a Scenario, translating every pydantic error."""
    issues = [
        Issue((name,), "is not a known key (the loader sets it)")
        for name in LOADER_FIELDS
        if name in data
    ]
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        issues += _collapse_unions([_translate(err) for err in exc.errors(include_url=False)])
        scenario = None
    raise_issues(shown, issues, document_order(data))
    assert scenario is not None  # no issues means validation succeeded
    return scenario


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


def reference_issues(sc: Scenario) -> list[Issue]:
    """Every dangling name and call cycle in a scenario whose shapes are already valid.

    Segments name features, features enter services, services name their team, callees
    and vendors, interventions name teams, services, segments, features and vendors.
    """
    return [*_entity_issues(sc), *_cycle_issues(sc), *_intervention_issues(sc)]


def _entity_issues(sc: Scenario) -> Iterator[Issue]:
    """Names in segments, features and services that are not declared."""
    for name, segment in sc.segments.items():
        for feature in segment.features:
            if feature not in sc.features:
                yield _dangling(("segments", name, "features", feature), "feature", sc.features)
    for name, feature in sc.features.items():
        if feature.entry not in sc.services:
            yield _dangling(("features", name, "entry"), "service", sc.services, feature.entry)
    for name, service in sc.services.items():
        if service.team not in sc.teams:
            yield _dangling(("services", name, "team"), "team", sc.teams, service.team)
        for callee in service.calls:
            if callee == name:
                yield Issue(("services", name, "calls", callee), "is the service itself")
            elif callee not in sc.services:
                yield _dangling(("services", name, "calls", callee), "service", sc.services)
        for vendor in service.vendors:
            if vendor not in sc.vendors:
                yield _dangling(("services", name, "vendors", vendor), "vendor", sc.vendors)


def _cycle_issues(sc: Scenario) -> Iterator[Issue]:
    """The first cycle in the call graph, spelled from its earliest-declared service."""
    graph = {
        name: [c for c in service.calls if c in sc.services and c != name]
        for name, service in sc.services.items()
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


def _intervention_issues(sc: Scenario) -> Iterator[Issue]:
    for i, intervention in enumerate(sc.interventions):
        for field, noun in _SELECTORS.items():
            names = getattr(intervention, field, "*")
            if names == "*":
                continue
            if not names:
                yield Issue(("interventions", i, field), f"must be '*' or name a {noun}, got []")
            known = getattr(sc, field)
            for j, name in enumerate(names):
                if name not in known:
                    yield _dangling(("interventions", i, field, j), noun, known, name)
        for field, (noun, section) in _NAMED.items():
            value = getattr(intervention, field, None)
            if value is not None and value not in getattr(sc, section):
                yield _dangling(("interventions", i, field), noun, getattr(sc, section), value)
        if isinstance(intervention, VendorSwap) and intervention.to == intervention.vendor:
            problem = f"must differ from vendor, got {intervention.to!r}"
            yield Issue(("interventions", i, "to"), problem)


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
