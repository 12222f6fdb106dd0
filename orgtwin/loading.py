"""Load scenario files: YAML in, a validated :class:`~orgtwin.scenario.Scenario` out.

Four steps, one section each below: **read** the YAML (safe loading, at most 1 MiB) and
follow ``extends:`` (a path relative to the extending file) recursively; **merge** each
child over its base, then ``overrides`` over the result; **validate** with pydantic,
translating its errors into :class:`~orgtwin.errors.ScenarioError` messages that name the
file, the field path and what was expected; **check** what pydantic cannot see: names
that refer to other entities, an acyclic call graph, interventions inside the run.

Merge rules: mappings merge key by key; a ``null`` in the child deletes the key; lists
replace, except the top-level ``interventions``, which are the base's then the child's;
``name`` and ``description`` are never inherited. Paths in messages refer to the merged
scenario: with ``extends:``, ``interventions[2]`` counts the base's interventions first.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

import yaml
from pydantic import BaseModel, ValidationError

from orgtwin.errors import ScenarioError
from orgtwin.scenario import HOURS_PER_DAY, INTERVENTION_KINDS, Scenario, VendorSwap

__all__ = ["check_references", "check_timing", "load_scenario", "scenario_json_schema"]

MAX_FILE_BYTES = 1024 * 1024
"""Largest scenario file read, in bytes (1 MiB)."""
MAX_EXTENDS_DEPTH = 10
"""Most ``extends:`` steps from a file to its root base."""
MAX_VALUES = 200_000
"""Most values a file may expand to once YAML aliases are followed."""
_LOADER_FIELDS = ("base", "source")
"""Scenario fields the loader sets; a file may not."""


class _Issue(NamedTuple):
    """One problem found, before it becomes a :class:`ScenarioError`."""

    parts: tuple[str | int, ...]
    problem: str
    hint: str | None = None
    union: tuple[str | int, ...] | None = None  # the union a pydantic error came through
    expected: str | None = None
    got: str = ""


# --------------------------------------------------------------------------- public API


def load_scenario(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
) -> Scenario:
    """Read, merge, validate and check a scenario.

    Args:
        source: a YAML file path, or an already parsed mapping (its ``extends:`` is then
            resolved against the working directory).
        overrides: a nested mapping merged over the scenario last, with the ``extends:``
            rules (``{"teams": {"web": {"oncall_size": 2}}}``; ``None`` deletes a key).

    Returns:
        The validated scenario, with ``source`` (the path as given) and ``base`` (the
        resolved path of the file it extends, or ``None``) set.

    Raises:
        ScenarioError: the file cannot be read or parsed, the ``extends:`` chain is broken,
            or the scenario is invalid. The message names the first problem in document
            order; ``.errors`` holds every problem found in the same pass.

    Example:
        >>> from orgtwin.loading import load_scenario
        >>> sc = load_scenario("scenarios/baseline.yaml", overrides={"days": 30})
        >>> sc.days, len(sc.teams)
        (30, 5)
    """
    if isinstance(source, Mapping):
        shown, here = "<scenario>", None
        data = dict(source)
    else:
        shown = os.fspath(source)
        here = Path(shown).resolve()
        data = _read_yaml(Path(shown), shown)
    data, base = _resolve_extends(data, shown=shown, here=here, chain=[(here, shown)])
    if overrides:
        data = _merge(data, overrides)
    scenario = _validate(data, shown)
    scenario.source = shown
    scenario.base = base
    check_references(scenario)
    check_timing(scenario)
    return scenario


def check_references(scenario: Scenario) -> None:
    """Check that every name a scenario uses is declared, and that calls form a DAG.

    Segments name features, features enter services, services name their team, callees
    and vendors, interventions name teams, services, segments, features and vendors.

    Args:
        scenario: a scenario whose shapes are already valid.

    Raises:
        ScenarioError: the first dangling name or call cycle in document order, with
            ``.errors`` holding all of them.
    """
    issues = [
        *_entity_issues(scenario),
        *_cycle_issues(scenario),
        *_intervention_issues(scenario),
    ]
    _raise_issues(scenario.source, issues, _document_order(scenario.model_dump()))


def check_timing(scenario: Scenario, days: int | None = None) -> None:
    """Check that every intervention starts before the run ends.

    Kept apart from :func:`load_scenario` because a run may override ``days``.

    Args:
        scenario: the scenario to check.
        days: length of the run in days; defaults to ``scenario.days``.

    Raises:
        ScenarioError: an intervention starts at or after the end of the run.
    """
    days = scenario.days if days is None else days
    issues = [
        _Issue(
            ("interventions", i, "at"),
            f"must be before the end of the run (day {days}), got {_show(intervention.at)}",
        )
        for i, intervention in enumerate(scenario.interventions)
        if intervention.start_hour >= days * HOURS_PER_DAY
    ]
    _raise_issues(scenario.source, issues)


def scenario_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of a scenario file, for editors and external validators.

    Returns:
        A JSON-serialisable dict (draft 2020-12): the scenario's fields plus ``extends``,
        without the fields the loader sets (``base``, ``source``).
    """
    schema = Scenario.model_json_schema(mode="validation")
    properties = schema.pop("properties")
    for name in _LOADER_FIELDS:
        properties.pop(name, None)
    about = "Path (relative to this file) of a scenario to merge this one over."
    extends = {"type": "string", "title": "Extends", "description": about}
    schema.pop("title", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "orgtwin scenario",
        **schema,
        "properties": {"extends": extends, **properties},
    }


# --------------------------------------------------------------------------- 1. read


class _StrictSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader that also refuses duplicate keys in a mapping."""


def _construct_mapping(loader: _StrictSafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, typing.Hashable):
            continue  # the safe constructor reports unhashable keys itself
        if key in seen:
            problem = f"duplicate key {key!r}"
            raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictSafeLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def _read_yaml(path: Path, shown: str) -> dict[str, Any]:
    """Read one YAML file into a mapping (no ``extends:`` processing)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ScenarioError(shown, "", "does not exist") from None
    except OSError as exc:
        raise ScenarioError(shown, "", f"cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(shown, "", "is larger than 1 MiB; a scenario is a small text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(shown, "", f"is not UTF-8 text (byte {exc.start})") from None
    return _parse_yaml(text, shown)


def _parse_yaml(text: str, shown: str) -> dict[str, Any]:
    """Safe-load YAML text that must hold a mapping at the top level."""
    try:
        data = yaml.load(text, Loader=_StrictSafeLoader)  # a SafeLoader: no object tags
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        hint = "scenarios are safe-loaded: no !!python/… tags" if "tag" in problem else None
        raise ScenarioError(shown, "", f"is not valid YAML: {problem}{where}", hint) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(shown, "", f"is not valid YAML: {exc}") from None
    except RecursionError:
        raise ScenarioError(shown, "", "is nested too deeply to be a scenario") from None
    if not isinstance(data, dict):
        kind = "nothing" if data is None else f"a {type(data).__name__}"
        problem = f"must hold a mapping of scenario keys at the top level, got {kind}"
        raise ScenarioError(shown, "", problem)
    if sum(1 for _ in zip(_walk(data), range(MAX_VALUES + 1), strict=False)) > MAX_VALUES:
        problem = f"expands to more than {MAX_VALUES:,} values (through YAML aliases?)"
        raise ScenarioError(shown, "", problem)
    return data


def _resolve_extends(
    data: dict[str, Any],
    *,
    shown: str,
    here: Path | None,
    chain: list[tuple[Path | None, str]],
) -> tuple[dict[str, Any], str | None]:
    """Merge ``data`` over the base its ``extends:`` names; return it and the base's path."""
    target = data.pop("extends", None)
    if target is None:
        return data, None
    if not isinstance(target, str) or not target.strip():
        problem = f"must be the path of a YAML file, got {_show(target)}"
        raise ScenarioError(shown, "extends", problem)
    base_path = ((here.parent if here else Path.cwd()) / target).resolve()
    base_shown = _display(base_path)
    spelled = " → ".join(name for _, name in [*chain, (base_path, base_shown)])
    if any(path == base_path for path, _ in chain):
        raise ScenarioError(shown, "extends", f"forms a cycle: {spelled}")
    if len(chain) > MAX_EXTENDS_DEPTH:
        problem = f"chain is longer than {MAX_EXTENDS_DEPTH} files: {spelled}"
        raise ScenarioError(shown, "extends", problem)
    try:
        base = _read_yaml(base_path, base_shown)
    except ScenarioError as exc:
        problem = f"names {target!r}, which {exc.problem} (chain: {spelled})"
        raise ScenarioError(shown, "extends", problem, exc.hint) from None
    link = (base_path, base_shown)
    base, _ = _resolve_extends(base, shown=base_shown, here=base_path, chain=[*chain, link])
    base.pop("name", None)
    base.pop("description", None)
    return _merge(base, data), str(base_path)


def _display(path: Path) -> str:
    """A path as short as it can be shown: relative to the working directory if inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- 2. merge


def _merge(base: Mapping[str, Any], child: Mapping[str, Any], *, top: bool = True) -> dict:
    """Deep-merge ``child`` over ``base`` without changing either (rules: module docstring)."""
    merged = dict(base)
    for key, value in child.items():
        old = merged.get(key)
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(old, Mapping):
            merged[key] = _merge(old, value, top=False)
        elif top and key == "interventions" and isinstance(value, list) and isinstance(old, list):
            merged[key] = [*old, *value]
        else:
            merged[key] = value
    return merged


# --------------------------------------------------------------------------- 3. validate


def _validate(data: dict[str, Any], shown: str) -> Scenario:
    """Validate merged data into a Scenario, translating every pydantic error."""
    issues = [
        _Issue((name,), "is not a known key (the loader sets it)")
        for name in _LOADER_FIELDS
        if name in data
    ]
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        issues += _collapse_unions([_translate(err) for err in exc.errors(include_url=False)])
        scenario = None
    _raise_issues(shown, issues, _document_order(data))
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


def _translate(err: Any) -> _Issue:
    """Turn one pydantic error into an issue in the house message shape."""
    where = _locate(err["loc"])
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        return _unknown_key(where)
    if kind == "union_tag_invalid":
        hint = _did_you_mean(str(ctx.get("tag")), INTERVENTION_KINDS)
        problem = f"must be one of {_quoted(INTERVENTION_KINDS)}, got {ctx.get('tag')!r}"
        return _Issue((*where.parts, "kind"), problem, hint)
    if kind == "union_tag_not_found":
        return _Issue((*where.parts, "kind"), f"is required: one of {_quoted(INTERVENTION_KINDS)}")
    if kind == "missing":
        return _Issue(where.parts, "is required")
    if kind in ("value_error", "assertion_error"):
        return _value_issue(where, str(ctx.get("error", err["msg"])))
    expected = _expected(kind, ctx, where.annotation)
    got = _show(value)
    if expected is None:
        problem = str(err["msg"]).replace("Input should be", "must be")
        return _Issue(where.parts, f"{problem[:1].lower()}{problem[1:]}, got {got}")
    return _Issue(where.parts, f"must be {expected}, got {got}", None, where.union, expected, got)


def _unknown_key(where: _Where) -> _Issue:
    owner = where.owner or Scenario
    allowed = [name for name in owner.model_fields if not owner.model_fields[name].exclude]
    if owner is Scenario:
        allowed.append("extends")
    hint = _did_you_mean(str(where.parts[-1]), allowed) or f"known keys: {', '.join(allowed)}"
    return _Issue(where.parts, "is not a known key", hint)


def _value_issue(where: _Where, message: str) -> _Issue:
    """A validator's message; ``"until must be …"`` moves ``until`` into the path."""
    first, _, rest = message.partition(" ")
    if _is_model(where.annotation) and first in where.annotation.model_fields and rest:
        return _Issue((*where.parts, first), rest)
    return _Issue(where.parts, message)


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
        return f"{_NOUNS.get(annotation, 'a number')} {operator} {_show(ctx.get(key))}"
    if kind == "literal_error":
        if typing.get_origin(annotation) is Literal:
            values = typing.get_args(annotation)
            return repr(values[0]) if len(values) == 1 else f"one of {_quoted(values)}"
        return f"one of {ctx.get('expected')}"
    for prefix, words in _EXPECTED_BY_PREFIX.items():
        if kind.startswith(prefix):
            return words
    return None


def _collapse_unions(issues: list[_Issue]) -> list[_Issue]:
    """Merge the errors each member of a union reports into one issue per union.

    When some member got deeper (``teams[1] must be a string``) keep only those; else
    say every alternative (``must be '*' or a list, got 5``).
    """
    kept = [issue for issue in issues if issue.union is None]
    groups: dict[tuple[str | int, ...], list[_Issue]] = {}
    for issue in issues:
        if issue.union is not None:
            groups.setdefault(issue.union, []).append(issue)
    for path, group in groups.items():
        deeper = [issue for issue in group if len(issue.parts) > len(path)]
        if deeper:
            kept += deeper
            continue
        alternatives = " or ".join(dict.fromkeys(str(issue.expected) for issue in group))
        kept.append(_Issue(path, f"must be {alternatives}, got {group[0].got}"))
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


# --------------------------------------------------------------------------- 4. check


def _entity_issues(sc: Scenario) -> Iterator[_Issue]:
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
                yield _Issue(("services", name, "calls", callee), "is the service itself")
            elif callee not in sc.services:
                yield _dangling(("services", name, "calls", callee), "service", sc.services)
        for vendor in service.vendors:
            if vendor not in sc.vendors:
                yield _dangling(("services", name, "vendors", vendor), "vendor", sc.vendors)


def _cycle_issues(sc: Scenario) -> Iterator[_Issue]:
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
        yield _Issue(("services", ring[0], "calls"), problem)


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


def _intervention_issues(sc: Scenario) -> Iterator[_Issue]:
    for i, intervention in enumerate(sc.interventions):
        for field, noun in _SELECTORS.items():
            names = getattr(intervention, field, "*")
            if names == "*":
                continue
            if not names:
                yield _Issue(("interventions", i, field), f"must be '*' or name a {noun}, got []")
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
            yield _Issue(("interventions", i, "to"), problem)


def _dangling(
    parts: tuple[str | int, ...], noun: str, known: Mapping[str, Any], value: str | None = None
) -> _Issue:
    """A name that is not declared: a value (``entry: x``) or, with no value, the last key."""
    if value is None:
        problem, value = f"is not a {noun} declared in {noun}s", str(parts[-1])
    else:
        problem = f"must name a {noun} declared in {noun}s, got {value!r}"
    listed = ", ".join(list(known)[:10]) + (", …" if len(known) > 10 else "")
    return _Issue(parts, problem, _did_you_mean(value, known) or f"declared {noun}s: {listed}")


# --------------------------------------------------------------------------- reporting


def _raise_issues(
    source: str, issues: list[_Issue], order: Mapping[tuple[str | int, ...], int] | None = None
) -> None:
    """Raise the first issue (in document order, if ``order`` is given) with all attached."""
    if not issues:
        return
    if order is not None:
        issues = sorted(issues, key=lambda issue: _position(issue.parts, order))
    errors = [ScenarioError(source, _dotted(i.parts), i.problem, i.hint) for i in issues]
    errors[0].errors = errors
    raise errors[0]


def _document_order(data: Any) -> dict[tuple[str | int, ...], int]:
    """Position of every path in a parsed document (pre-order: a key before its values)."""
    return {path: i for i, (path, _) in enumerate(_walk(data))}


def _walk(data: Any) -> Iterator[tuple[tuple[str | int, ...], Any]]:
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


def _did_you_mean(name: str, known: typing.Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _quoted(values: typing.Iterable[Any]) -> str:
    return ", ".join(repr(v) for v in values)


def _show(value: Any) -> str:
    """A value as a message shows it: whole floats without ``.0``, long values cut."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
