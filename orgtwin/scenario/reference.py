"""The scenario reference and schema: generated from the scenario specs, so they cannot drift.

Every key of a scenario file is declared once, in :mod:`orgtwin.scenario`: its type,
default and bounds on the pydantic field, its meaning in the docstring under it (pydantic
reads it as the field's description). :func:`scenario_reference` turns those
declarations into Markdown: one table per object (``key | type | default | bounds |
meaning``) and one per intervention kind; :func:`scenario_json_schema` into a JSON
Schema for editors. Fields the loader sets (``exclude=True``: ``base``, ``source``) are
left out of both.

``docs/scenarios.md`` is this module's output (``python -m orgtwin.scenario.reference``),
and ``tests/test_docs.py`` checks that the two agree.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from orgtwin.scenario.checks import LOADER_FIELDS
from orgtwin.scenario.interventions import KINDS, InterventionSpec
from orgtwin.scenario.spec import Scenario

__all__ = ["scenario_json_schema", "scenario_reference"]

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", datetime: "datetime"}
_HEADER = ["| key | type | default | bounds | meaning |", "|---|---|---|---|---|"]
_INTERVENTIONS = tuple(KINDS.values())
"""The members of the ``Intervention`` union, in declaration order."""
EXTENDS = "Path (relative to this file) of a scenario to merge this one over."
"""What the ``extends`` key means (the loader reads it; it is no field of the specs)."""


def scenario_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of a scenario file, for editors and external validators.

    Returns:
        A JSON-serialisable dict (draft 2020-12): the scenario's fields plus ``extends``,
        without the fields the loader sets (``base``, ``source``). A file without
        ``extends`` must declare the organisation (segments, features, services, teams);
        one with ``extends`` takes what it leaves out from its base; ``name`` defaults to
        the file's stem.

    Example:
        >>> schema = scenario_json_schema()
        >>> schema["properties"]["extends"]["type"], "source" in schema["properties"]
        ('string', False)
    """
    schema = Scenario.model_json_schema(mode="validation")
    properties = schema.pop("properties")
    for name in LOADER_FIELDS:
        properties.pop(name, None)
    extends = {"type": "string", "title": "Extends", "description": EXTENDS}
    schema.pop("title", None)
    required = [key for key in schema.pop("required", []) if key != "name"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "orgtwin scenario",
        **schema,
        "properties": {"extends": extends, **properties},
        # a derived scenario takes its organisation from its base; a file's name is its stem
        "if": {"not": {"required": ["extends"]}},
        "then": {"required": required},
    }


def scenario_reference() -> str:
    """Markdown reference of the scenario format: one table per object and intervention kind.

    Returns:
        Markdown text starting with a ``###`` heading, without a trailing newline.

    Example:
        >>> scenario_reference().splitlines()[0]
        '### Scenario'
    """
    lines: list[str] = []
    for model, path in _specs(Scenario, ""):
        where = f"At `{path}`." if path else "The top level of a scenario file."
        extra = [] if path else [f"| `extends` | string | — |  | {_md(EXTENDS)} |"]
        lines += [f"### {model.__name__}", "", f"{where} {_doc(model)}", "", *_HEADER, *extra]
        lines += [*_rows(model, [n for n, f in model.model_fields.items() if not f.exclude]), ""]
    common = list(InterventionSpec.model_fields)
    intro = "Each entry of `interventions` names its `kind` (a section below) and may set:"
    lines += ["### Interventions", "", intro, "", *_HEADER, *_rows(InterventionSpec, common)]
    for kind, model in KINDS.items():
        own = [n for n in model.model_fields if n not in common and n != "kind"]
        lines += ["", f"#### `{kind}`", "", _doc(model, full=True), "", *_HEADER]
        lines += _rows(model, own)
    return "\n".join(lines)


def _specs(model: type[BaseModel], path: str) -> list[tuple[type[BaseModel], str]]:
    """``model`` and every spec nested in it, depth first, each with its YAML path."""
    found = [(model, path)]
    for name, field in model.model_fields.items():
        if (nested := _nested(field.annotation)) and not field.exclude:
            found += _specs(nested[0], (f"{path}.{name}" if path else name) + nested[1])
    return found


def _nested(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """The spec a field holds and the path suffix that reaches it (``".<name>"`` in a map)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    if typing.get_origin(annotation) is dict and (inner := _nested(typing.get_args(annotation)[1])):
        return inner[0], ".<name>"
    return None


def _rows(model: type[BaseModel], names: list[str]) -> list[str]:
    rows = []
    for name in names:
        field = model.model_fields[name]
        cells = [f"`{name}`", _type(field.annotation), _default(field), _bounds(field)]
        rows.append(f"| {' | '.join(cells)} | {_meaning(model, name, field)} |")
    return rows


def _type(annotation: Any) -> str:
    """A field type in words, with links to nested specs."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in _SCALARS or annotation is type(None):
        return _SCALARS.get(annotation, "null")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if origin is typing.Literal:
        values = ", ".join(f'`"{v}"`' if isinstance(v, str) else f"`{v}`" for v in args)
        return values if len(args) == 1 else f"one of {values}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(arg) for arg in args)
    if origin is list and set(_flatten(args[0])) >= set(_INTERVENTIONS):
        return "list of [interventions](#interventions)"
    if origin is list:
        inner = _type(args[0])
        return f"list of {inner}s" if inner in _SCALARS.values() else f"list of {inner}"
    if origin is dict:
        return f"map of name → {_type(args[1])}"
    return _type(args[0]) if origin is typing.Annotated else str(annotation)


def _bounds(field: FieldInfo) -> str:
    """Bounds declared on a field or inside its type (``0 ≤ x ≤ 1``, ``> 0``), or the sizes
    it declares (``1 to 100 characters``, ``at most 1,000 entries``)."""
    return _range(field) or _sizes(field)


def _sizes(field: FieldInfo) -> str:
    """The least and most characters (of a string) or entries (of a map or list)."""
    found = {
        key: getattr(m, key)
        for m in field.metadata
        for key in ("min_length", "max_length")
        if getattr(m, key, None) is not None
    }
    if "max_length" not in found:
        return ""
    unit = "characters" if field.annotation is str else "entries"
    if found.get("min_length"):
        return f"{found['min_length']:,} to {found['max_length']:,} {unit}"
    return f"at most {found['max_length']:,} {unit}"


def _range(field: FieldInfo) -> str:
    """Numeric bounds declared on a field or inside its type."""
    items = list(field.metadata)
    for node in _flatten(field.annotation):
        if typing.get_origin(node) is typing.Annotated:
            items += [m for x in typing.get_args(node)[1:] for m in getattr(x, "metadata", [x])]
    keys = ("gt", "ge", "lt", "le")
    found = {k: getattr(m, k) for m in items for k in keys if getattr(m, k, None) is not None}
    low = next(((op, found[k]) for k, op in (("gt", "<"), ("ge", "≤")) if k in found), None)
    high = next(((op, found[k]) for k, op in (("lt", "<"), ("le", "≤")) if k in found), None)
    if low and high:
        return f"{_num(low[1])} {low[0]} x {high[0]} {_num(high[1])}"
    if low:
        return f"{'>' if low[0] == '<' else '≥'} {_num(low[1])}"
    return f"{high[0]} {_num(high[1])}" if high else ""


def _default(field: FieldInfo) -> str:
    value = field.default
    if field.is_required() or isinstance(value, BaseModel):
        return "required" if field.is_required() else "(defaults)"
    if value is None or isinstance(value, dict | list):
        return "`null`" if value is None else f"`{value!r}`"
    if isinstance(value, datetime):
        return f"`{value.isoformat()}`"
    return f'`"{value}"`' if isinstance(value, str) else f"`{_num(value)}`"


def _num(value: Any) -> str:
    """A number as a scenario file would spell it: ``0.00002``, ``50,000,000``, ``true``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        return value.date().isoformat() if value == datetime(*value.timetuple()[:3]) else str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.10f}".rstrip("0")
    return f"{int(value):,}"


def _meaning(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    """The field's description (the docstring under it), else the summary of its spec."""
    nested = _nested(field.annotation)
    if field.description:
        text = _md(field.description)
    elif nested:
        text = _doc(nested[0])
    elif set(_flatten(field.annotation)) >= set(_INTERVENTIONS):
        text = "Changes applied during the run; see [Interventions](#interventions)."
    else:
        text = ""
    return text[:1].upper() + text[1:]


def _flatten(annotation: Any) -> list[Any]:
    """``annotation`` and every type argument inside it, depth first."""
    return [annotation, *(x for arg in typing.get_args(annotation) for x in _flatten(arg))]


def _doc(model: type, *, full: bool = False) -> str:
    """A class docstring in Markdown: its first paragraph, or all before the first section."""
    paragraphs = (inspect.getdoc(model) or "").split("\n\n")[: None if full else 1]
    end = next((i for i, p in enumerate(paragraphs) if re.match(r"^\w+:\n", p)), None)
    return "\n\n".join(_md(p) for p in paragraphs[:end])


def _md(text: str) -> str:
    """Docstring text as one Markdown line: reST roles and double backticks become code."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", " ".join(text.split()))
    return text.replace("``", "`").replace("|", "\\|")


if __name__ == "__main__":
    print(scenario_reference())
