"""The scenario reference and schema: generated from the scenario specs, so they cannot drift.

Every key of a scenario file is declared once, in :mod:`orgtwin.scenario`: its type,
default and bounds on the pydantic field, its meaning in the docstring under it (pydantic
reads it as the field's description). :func:`scenario_reference` turns those
declarations into Markdown: one table per object (``key | type | default | bounds |
meaning``) and one per intervention kind; :func:`scenario_json_schema` into a JSON
Schema for editors, which fits complete files and files that ``extends:`` a base (their
specs made partial, by the loader's merge rules). Fields the loader sets
(``exclude=True``: ``base``, ``source``) are left out of both.

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
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

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

    One schema fits both kinds of file. A complete scenario (no ``extends``) must declare
    its organisation (segments, features, services, teams) and give every entry whole. A
    derived one (with ``extends``) is merged over its base by the loader's rules
    (:mod:`orgtwin.scenario.load`), so every key is optional there: an entry it gives may
    be partial (it merges into the base's), a ``null`` deletes a key that has a default
    or a map entry, and a list replaces the base's list, so list items are whole. Types,
    bounds, enums and descriptions are the same in both; they come from the specs.

    Returns:
        A JSON-serialisable dict (draft 2020-12). ``properties`` names every top-level key
        (``extends`` plus the scenario's fields, without the loader's ``base`` and
        ``source``); ``then`` types a complete file, ``else`` a derived one, whose partial
        specs are the ``$defs`` ending in ``Partial``. ``name`` is never required: it
        defaults to the file's stem.

    Example:
        >>> schema = scenario_json_schema()
        >>> schema["properties"]["extends"]["type"], "source" in schema["properties"]
        ('string', False)
        >>> schema["else"]["properties"]["teams"]["additionalProperties"]
        {'$ref': '#/$defs/TeamSpecPartial'}
    """
    whole = Scenario.model_json_schema(mode="validation", schema_generator=_FileSchema)
    defs = whole.get("$defs", {})
    fields = {k: v for k, v in whole["properties"].items() if k not in LOADER_FIELDS}
    required = [key for key in whole.get("required", []) if key != "name"]
    partial = _Partial(defs)
    derived = {
        key: partial.field(value, nullable=key not in required) for key, value in fields.items()
    }
    extends = {"type": "string", "minLength": 1, "title": "Extends", "description": EXTENDS}
    annotations = {key: _annotations(value) for key, value in fields.items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "orgtwin scenario",
        "description": _DESCRIPTION,
        "type": "object",
        "properties": {"extends": extends, **annotations},  # every key, for completion
        "additionalProperties": False,
        "if": {"not": {"required": ["extends"]}},
        "then": {"required": required, "properties": fields},
        "else": {"properties": derived},
        "$defs": {**defs, **partial.defs},
    }


_DESCRIPTION = (
    "An orgtwin scenario. A complete one declares segments, features, services and teams; "
    "one that names a base in `extends` gives only what it changes: every key is optional, "
    "an entry given merges into the base's, null deletes a key or an entry, lists replace."
)
_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?)?$"
)
"""A time as pydantic reads it from text: a date, then optionally a time and a zone."""


class _FileSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, with a time spelt as a scenario file may spell it.

    JSON Schema's ``date-time`` format wants a zone (editors mark ``2026-01-05T00:00:00``
    red); the loader also takes a bare date or a time without one.
    """

    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> JsonSchemaValue:
        return {"type": "string", "pattern": _TIME_PATTERN}


def _annotations(schema: dict[str, Any]) -> dict[str, Any]:
    """A field's title and description alone (its type is in ``then`` and ``else``)."""
    return {key: schema[key] for key in ("title", "description") if key in schema}


class _Partial:
    """Turns the JSON Schema of a field into the schema of what a derived file may give.

    A spec becomes its ``…Partial`` definition (in :attr:`defs`): no key required, an
    optional key may be ``null``, and the spec itself may be ``null`` (which deletes it).
    A map's entries become partial and may be ``null``. Scalars and lists stay as they are:
    the file's value replaces the base's.
    """

    def __init__(self, defs: dict[str, Any]) -> None:
        self.whole = defs
        self.defs: dict[str, Any] = {}

    def field(self, schema: dict[str, Any], *, nullable: bool) -> dict[str, Any]:
        """The partial schema of a field; ``nullable``: ``null`` may delete the field."""
        found = self.value(schema)
        if nullable:
            return _nullable(found)
        return {**found, "type": "object"} if _is_partial(found) else found  # never null

    def value(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The partial schema of a value: a spec or a map merges, anything else replaces."""
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if "properties" not in self.whole.get(name, {}):
                return schema  # an enum or other plain definition
            return {**schema, "$ref": f"#/$defs/{self.spec(name)}"}
        if schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
            entries = _nullable(self.value(schema["additionalProperties"]))
            return {**schema, "additionalProperties": entries}
        if "anyOf" in schema:
            return {**schema, "anyOf": [self.value(option) for option in schema["anyOf"]]}
        return schema

    def spec(self, name: str) -> str:
        """The name of the partial definition of spec ``name``, made on first use."""
        partial = f"{name}Partial"
        if partial not in self.defs:
            self.defs[partial] = {}  # claimed first: a spec may nest itself
            whole = self.whole[name]
            required = set(whole.get("required", ()))
            fields = {
                key: self.field(value, nullable=key not in required)
                for key, value in whole["properties"].items()
            }
            kept = {k: v for k, v in whole.items() if k not in ("required", "properties", "type")}
            title = f"{whole.get('title', name)} (partial)"
            self.defs[partial] = {**kept, "title": title, "type": ["object", "null"]}
            self.defs[partial]["properties"] = fields
        return partial


def _is_partial(schema: dict[str, Any]) -> bool:
    """Whether ``schema`` refers to a partial spec (which accepts ``null`` itself)."""
    return str(schema.get("$ref", "")).endswith("Partial")


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` that also accepts ``null`` (a partial spec accepts it already)."""
    if _is_partial(schema):
        return schema
    if "$ref" in schema or ("type" not in schema and "anyOf" not in schema):
        kept = {k: v for k, v in schema.items() if k in ("title", "description", "default")}
        rest = {k: v for k, v in schema.items() if k not in kept}
        return {**kept, "anyOf": [rest, {"type": "null"}]}
    found = dict(schema)
    if "anyOf" in found and {"type": "null"} not in found["anyOf"]:
        found["anyOf"] = [*found["anyOf"], {"type": "null"}]
    if isinstance(found.get("type"), str):
        found["type"] = [found["type"], "null"]
    if "enum" in found:
        found["enum"] = [*found["enum"], None]
    if "const" in found:
        found["enum"] = [found.pop("const"), None]
    return found


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
