"""Load scenario files: YAML in, a validated :class:`~orgtwin.scenario.Scenario` out.

Two steps, one section each below: **read** the YAML (safe loading, at most 1 MiB) and
follow ``extends:`` (a path relative to the extending file) recursively; **merge** each
child over its base, then ``overrides`` over the result. The merged mapping then goes to
:mod:`orgtwin.scenario.checks`, which validates it with pydantic, checks what pydantic
cannot see (names that refer to other entities, an acyclic call graph, interventions
that start after the run ends) and words every problem found, in one pass, as a
:class:`~orgtwin.errors.ScenarioError`.

Merge rules: mappings merge key by key; a ``null`` in the child deletes the key; lists
replace, except the top-level ``interventions``, which are the base's then the child's;
``name`` and ``description`` are never inherited: a file without ``name`` takes its
file's stem. Paths in messages refer to the merged scenario: with ``extends:``,
``interventions[2]`` counts the base's interventions first.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from orgtwin.errors import ScenarioError
from orgtwin.scenario import checks
from orgtwin.scenario.spec import Scenario

__all__ = [
    "check_references",
    "check_timing",
    "load_scenario",
    "pin_reference_prices",
]

MAX_FILE_BYTES = 1024 * 1024
"""Largest scenario file read, in bytes (1 MiB)."""
MAX_EXTENDS_DEPTH = 10
"""Most ``extends:`` steps from a file to its root base."""
MAX_VALUES = 200_000
"""Most values a file may expand to once YAML aliases are followed."""


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
        resolved path of the file it extends, or ``None``) set. Loaded from a file
        without ``name``, it is named after the file's stem.

    Raises:
        ScenarioError: the file cannot be read or parsed, the ``extends:`` chain is broken,
            or the scenario is invalid: its shapes, its references or its timing, all
            checked in one pass. The message lists every problem in document order;
            ``.errors`` holds them all, and ``.path``, ``.problem``, ``.hint`` are the
            first's.

    Example:
        >>> from orgtwin.scenario.load import load_scenario
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
    if here is not None and "name" not in data:
        data["name"] = Path(shown).stem
    if overrides:
        data = _merge(data, overrides)
    scenario = checks.validate(data, shown)
    scenario.source = shown
    scenario.base = base
    pin_reference_prices(scenario)
    return scenario


def pin_reference_prices(scenario: Scenario) -> None:
    """Fix each segment's reference price (where unset) at the price the file gives.

    Churn and acquisition respond to price relative to this reference, so a lever or a
    sweep that later moves ``price_usd_month`` moves demand, not the yardstick.
    """
    for segment in scenario.segments.values():
        if segment.churn.reference_price_usd_month is None:
            segment.churn.reference_price_usd_month = segment.price_usd_month


def check_references(scenario: Scenario) -> None:
    """Check that every name a scenario uses is declared, and that calls form a DAG.

    Segments name features, features enter services, services name their team, callees
    and vendors, interventions name teams, services, segments, features and vendors.

    :func:`load_scenario` checks this already; call it again after changing a scenario.

    Args:
        scenario: a scenario whose shapes are already valid.

    Raises:
        ScenarioError: the first dangling name or call cycle in document order, with
            ``.errors`` holding all of them.
    """
    data = scenario.model_dump()
    issues = checks.reference_issues(data)
    checks.raise_issues(scenario.source, issues, checks.document_order(data))


def check_timing(scenario: Scenario, days: int | None = None) -> None:
    """Check that every intervention starts before the run ends.

    :func:`load_scenario` checks this against the scenario's own ``days``; a run that
    overrides ``days`` checks again.

    Args:
        scenario: the scenario to check.
        days: length of the run in days; defaults to ``scenario.days``.

    Raises:
        ScenarioError: an intervention starts at or after the end of the run (the first
            such, with ``.errors`` holding all of them).
    """
    days = scenario.days if days is None else days
    starts = [intervention.at for intervention in scenario.interventions]
    checks.raise_issues(scenario.source, checks.timing_issues(starts, days))


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
    if sum(1 for _ in zip(checks.walk(data), range(MAX_VALUES + 1), strict=False)) > MAX_VALUES:
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
        problem = f"must be the path of a YAML file, got {checks.show(target)}"
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
