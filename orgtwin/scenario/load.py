"""Load scenario files: YAML in, a validated :class:`~orgtwin.scenario.Scenario` out.

Two steps, one section each below: **read** the YAML (safe loading, at most 1 MiB) and
follow ``extends:`` (a path relative to the extending file) recursively; **merge** each
child over its base, then ``overrides`` over the result. The merged mapping then goes to
:mod:`orgtwin.scenario.checks`, which validates it with pydantic, checks what pydantic
cannot see (names that refer to other entities, an acyclic call graph, interventions
that start after the run ends) and words every problem found, in one pass, as a
:class:`~orgtwin.errors.ScenarioError`.

Reading is bounded: only regular files (never a FIFO or a device), at most 1 MiB, at most
:data:`MAX_VALUES` values once YAML aliases and merge keys are followed (counted while
parsing), ``extends:`` chains at most :data:`MAX_EXTENDS_DEPTH` files deep. With ``root``,
every file must lie inside that folder once symbolic links are followed, and an error in
a base file never quotes the base's text (only its line and column).

Merge rules: mappings merge key by key; a ``null`` in the child deletes the key; lists
replace, except the top-level ``interventions``, which are the base's then the child's;
``name`` and ``description`` are never inherited: a file without ``name`` takes its
file's stem. Paths in messages refer to the merged scenario: with ``extends:``,
``interventions[2]`` counts the base's interventions first.
"""

from __future__ import annotations

import errno
import os
import re
import stat
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
"""Most values a file may expand to once YAML aliases and merge keys are followed."""
MAX_PATH_LENGTH = 4096
"""Longest ``extends:`` path, characters."""
_MERGE_TAG = "tag:yaml.org,2002:merge"
_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


# --------------------------------------------------------------------------- public API


def load_scenario(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
    root: str | os.PathLike[str] | None = None,
) -> Scenario:
    """Read, merge, validate and check a scenario.

    Args:
        source: a YAML file path, or an already parsed mapping (its ``extends:`` is then
            resolved against the working directory).
        overrides: a nested mapping merged over the scenario last, with the ``extends:``
            rules (``{"teams": {"web": {"oncall_size": 2}}}``; ``None`` deletes a key).
        root: a folder every file read must lie in, once symbolic links are followed:
            ``source`` and each file of its ``extends:`` chain (a server passes the folder
            it serves scenarios from). ``None``: files may lie anywhere.

    Returns:
        The validated scenario, with ``source`` (the path as given) and ``base`` (the
        resolved path of the file it extends, or ``None``) set. Loaded from a file
        without ``name``, it is named after the file's stem.

    Raises:
        ScenarioError: the file cannot be read or parsed, is not a regular file, lies
            outside ``root``, the ``extends:`` chain is broken or leaves ``root``, or the
            scenario is invalid: its shapes, its references, its structure or its timing,
            all checked in one pass. The message lists every problem in document order;
            ``.errors`` holds them all, and ``.path``, ``.problem``, ``.hint`` are the
            first's.

    Example:
        >>> from orgtwin.scenario.load import load_scenario
        >>> sc = load_scenario("scenarios/baseline.yaml", overrides={"days": 30})
        >>> sc.days, len(sc.teams)
        (30, 5)
    """
    inside = None if root is None else _resolved(Path(os.fspath(root)), os.fspath(root))
    if isinstance(source, Mapping):
        shown, here = "<scenario>", None
        data = dict(source)
    else:
        shown = os.fspath(source)
        here = _resolved(Path(shown), shown)
        if inside is not None and not _is_inside(here, inside):
            raise ScenarioError(shown, "", f"must be a file inside {inside}, got one outside it")
        data = read_yaml(here, shown)
    chain = [(here, shown)]
    data, base = _resolve_extends(data, shown=shown, here=here, chain=chain, root=inside)
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
    """Check that every name a scenario uses is declared, that calls form a DAG, and that
    its structure holds (:func:`~orgtwin.scenario.checks.structure_issues`).

    Segments name features, features enter services, services name their team, callees
    and vendors, interventions name teams, services, segments, features and vendors.

    :func:`load_scenario` checks this already; call it again after changing a scenario.

    Args:
        scenario: a scenario whose shapes are already valid.

    Raises:
        ScenarioError: the first dangling name, call cycle or structural problem in
            document order, with ``.errors`` holding all of them.
    """
    data = scenario.model_dump()
    issues = checks.reference_issues(data) + checks.structure_issues(data)
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


class _TooLarge(yaml.YAMLError):
    """A document that expands past :data:`MAX_VALUES` while it is being parsed."""


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""PyYAML's safe loader, on libyaml's parser where PyYAML was built with it (faster)."""


class _StrictSafeLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """PyYAML's safe loader that refuses duplicate keys and counts merge-key expansion.

    A merge key (``<<: *base``) copies the base's keys into the mapping; a chain of
    merges copies ever more, so the copies are counted as they are made and parsing
    stops past :data:`MAX_VALUES` (before PyYAML builds them).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.merged = 0
        self.flattened: set[int] = set()

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """Merge ``<<`` keys into ``node`` (once per node), counting what they copy."""
        if id(node) in self.flattened:
            return
        self.flattened.add(id(node))
        for source in _merge_sources(node):
            self.flatten_mapping(source)
            self.merged += len(source.value)
            if self.merged > MAX_VALUES:
                raise _TooLarge(f"merge keys copy more than {MAX_VALUES:,} values")
        super().flatten_mapping(node)


def _merge_sources(node: yaml.MappingNode) -> list[yaml.MappingNode]:
    """The mappings a node's merge keys copy (PyYAML reports the ill-formed ones)."""
    sources = []
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE_TAG:
            continue
        if isinstance(value_node, yaml.SequenceNode):
            sources += [n for n in value_node.value if isinstance(n, yaml.MappingNode)]
        elif isinstance(value_node, yaml.MappingNode):
            sources.append(value_node)
    return sources


def _construct_mapping(loader: _StrictSafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
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
_StrictSafeLoader.add_implicit_resolver(  # 1e6 is a number, as in YAML 1.2 (PyYAML: text)
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def _resolved(path: Path, shown: str) -> Path:
    """``path`` made absolute with every symbolic link followed.

    Raises:
        ScenarioError: the path holds a NUL byte, or its links loop.
    """
    try:
        return path.resolve()
    except ValueError:
        raise ScenarioError(shown, "", "must be a path without NUL bytes") from None
    except (RuntimeError, OSError) as exc:  # a loop: RuntimeError up to 3.12, OSError after
        looped = isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP
        problem = "is a loop of symbolic links" if looped else "cannot be resolved"
        raise ScenarioError(shown, "", problem) from None


def _is_inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def read_yaml(path: Path, shown: str, *, quote: bool = True) -> dict[str, Any]:
    """Read one YAML file into a mapping (no ``extends:`` processing).

    Args:
        path: the file.
        shown: the file as messages name it.
        quote: whether a parse error may quote the file's text (``False`` for a base,
            which need not be a scenario: then only the line and column are given).
    """
    text = _read_text(path, shown)
    return _parse_yaml(text, shown, quote=quote)


def _read_text(path: Path, shown: str) -> str:
    """The text of a regular file of at most 1 MiB, read without blocking."""
    try:
        _check_regular(os.stat(path), shown)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ScenarioError(shown, "", "does not exist") from None
    except OSError as exc:
        raise ScenarioError(shown, "", f"cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        _check_regular(os.fstat(handle.fileno()), shown)  # it may have changed since stat
        raw = handle.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(shown, "", "is larger than 1 MiB; a scenario is a small text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(shown, "", f"is not UTF-8 text (byte {exc.start})") from None


def _check_regular(info: os.stat_result, shown: str) -> None:
    """Refuse what is not a regular file of at most 1 MiB, before reading it."""
    for test, kind in _FILE_KINDS:
        if test(info.st_mode):
            raise ScenarioError(shown, "", f"must be a regular file, got {kind}")
    if info.st_size > MAX_FILE_BYTES:
        raise ScenarioError(shown, "", "is larger than 1 MiB; a scenario is a small text file")


def _parse_yaml(text: str, shown: str, *, quote: bool = True) -> dict[str, Any]:
    """Safe-load YAML text that must hold a mapping at the top level."""
    too_many = f"expands to more than {MAX_VALUES:,} values (through YAML aliases or merge keys?)"
    try:
        data = yaml.load(text, Loader=_StrictSafeLoader)  # a SafeLoader: no object tags
    except _TooLarge:
        raise ScenarioError(shown, "", too_many) from None
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, shown, quote=quote) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(
            shown, "", f"is not valid YAML: {exc}" if quote else "is not valid YAML"
        ) from None
    except RecursionError:
        raise ScenarioError(shown, "", "is nested too deeply to be a scenario") from None
    if not isinstance(data, dict):
        kind = "nothing" if data is None else f"a {type(data).__name__}"
        problem = f"must hold a mapping of scenario keys at the top level, got {kind}"
        raise ScenarioError(shown, "", problem)
    if sum(1 for _ in zip(checks.walk(data), range(MAX_VALUES + 1), strict=False)) > MAX_VALUES:
        raise ScenarioError(shown, "", too_many)
    return data


def _syntax_error(exc: yaml.MarkedYAMLError, shown: str, *, quote: bool) -> ScenarioError:
    """A YAML syntax error as a message: the problem in PyYAML's words, if it may be
    quoted, and where it is."""
    mark = exc.problem_mark or exc.context_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    if not quote:
        return ScenarioError(shown, "", f"is not valid YAML{where}")
    problem = exc.problem or exc.context or "syntax error"
    hint = "scenarios are safe-loaded: no !!python/… tags" if "tag" in problem else None
    return ScenarioError(shown, "", f"is not valid YAML: {problem}{where}", hint)


def _resolve_extends(
    data: dict[str, Any],
    *,
    shown: str,
    here: Path | None,
    chain: list[tuple[Path | None, str]],
    root: Path | None = None,
) -> tuple[dict[str, Any], str | None]:
    """Merge ``data`` over the base its ``extends:`` names; return it and the base's path."""
    target = data.pop("extends", None)
    if target is None:
        return data, None
    base_path = _base_path(target, shown=shown, here=here, root=root)
    base_shown = _display(base_path)
    spelled = " → ".join(name for _, name in [*chain, (base_path, base_shown)])
    if any(path == base_path for path, _ in chain):
        raise ScenarioError(shown, "extends", f"forms a cycle: {spelled}")
    if len(chain) > MAX_EXTENDS_DEPTH:
        problem = f"chain is longer than {MAX_EXTENDS_DEPTH} files: {spelled}"
        raise ScenarioError(shown, "extends", problem)
    try:
        base = read_yaml(base_path, base_shown, quote=False)
    except ScenarioError as exc:
        problem = f"names {target!r}, which {exc.problem} (chain: {spelled})"
        raise ScenarioError(shown, "extends", problem, exc.hint) from None
    link = (base_path, base_shown)
    base, _ = _resolve_extends(
        base, shown=base_shown, here=base_path, chain=[*chain, link], root=root
    )
    base.pop("name", None)
    base.pop("description", None)
    return _merge(base, data), str(base_path)


def _base_path(target: Any, *, shown: str, here: Path | None, root: Path | None) -> Path:
    """The file an ``extends:`` value names, resolved, and inside ``root`` if one is given.

    Raises:
        ScenarioError: the value is not a usable path, or the file lies outside ``root``.
    """
    if not isinstance(target, str) or not target.strip() or len(target) > MAX_PATH_LENGTH:
        problem = f"must be the path of a YAML file, got {checks.show(target)}"
        raise ScenarioError(shown, "extends", problem)
    try:
        base_path = _resolved((here.parent if here else Path.cwd()) / target, target)
    except ScenarioError as exc:
        raise ScenarioError(shown, "extends", f"{exc.problem}, got {checks.show(target)}") from None
    if root is not None and not _is_inside(base_path, root):
        problem = f"must name a file inside {root}, got {target!r}"
        raise ScenarioError(shown, "extends", problem, "a base must lie in the same folder tree")
    return base_path


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
