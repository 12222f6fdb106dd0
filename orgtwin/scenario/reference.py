"""The scenario reference: Markdown generated from the scenario models, so it cannot drift.

Every key of a scenario file is declared once, in :mod:`orgtwin.scenario`: its type,
default and bounds on the pydantic field, its meaning in the attribute docstring under
it. :func:`scenario_reference` turns those declarations into one table per object
(``key | type | default | bounds | meaning``) and one per intervention kind. A key with
no attribute docstring borrows the summary of the spec it holds, or else the ``Args:``
entry of the behaviour or agent parameter of the same name that it configures. Fields
the loader sets (``exclude=True``: ``base``, ``source``) are left out.

The README pastes the output between its ``scenario-reference`` markers and
``tests/test_readme.py`` checks that the two agree. Print it with
``python -m orgtwin.reference``.
"""

from __future__ import annotations

import ast
import inspect
import re
import types
import typing
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from orgtwin import behaviours as bh
from orgtwin.agents.services import ServiceMesh
from orgtwin.agents.teams import Team
from orgtwin.agents.users import UserSegment
from orgtwin.agents.vendors import Vendor
from orgtwin.scenario import spec as sc
from orgtwin.scenario.load import scenario_json_schema

__all__ = ["scenario_reference"]

_CONSUMERS: dict[type[BaseModel], tuple[type, ...]] = {
    sc.SegmentSpec: (UserSegment,),
    sc.DemandProfileSpec: (bh.DemandProfile,),
    sc.ChurnSpec: (bh.ChurnHazard, UserSegment),
    sc.AcquisitionSpec: (bh.Acquisition,),
    sc.ServiceSpec: (ServiceMesh,),
    sc.LatencySpec: (bh.LatencyCurve,),
    sc.VendorSpec: (Vendor,),
    sc.TeamSpec: (Team,),
    sc.ChangeFailureSpec: (bh.ChangeFailure,),
    sc.IncidentResponseSpec: (bh.IncidentTiming,),
}
"""Spec → the classes its keys configure, whose ``Args:`` describe keys left undocumented."""
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean", datetime: "datetime"}
_HEADER = ["| key | type | default | bounds | meaning |", "|---|---|---|---|---|"]
_INTERVENTIONS = typing.get_args(typing.get_args(sc.Intervention)[0])
"""The members of the ``Intervention`` union, in declaration order."""


def scenario_reference() -> str:
    """Markdown reference of the scenario format: one table per object and intervention kind.

    Returns:
        Markdown text starting with a ``###`` heading, without a trailing newline.

    Example:
        >>> scenario_reference().splitlines()[0]
        '### Scenario'
    """
    lines: list[str] = []
    extends = scenario_json_schema()["properties"]["extends"]["description"]
    for model, path in _specs(sc.Scenario, ""):
        where = f"At `{path}`." if path else "The top level of a scenario file."
        extra = [] if path else [f"| `extends` | string | — |  | {_md(extends)} |"]
        lines += [f"### {model.__name__}", "", f"{where} {_doc(model)}", "", *_HEADER, *extra]
        lines += [*_rows(model, [n for n, f in model.model_fields.items() if not f.exclude]), ""]
    common = list(sc.InterventionSpec.model_fields)
    intro = "Each entry of `interventions` names its `kind` (a section below) and may set:"
    lines += ["### Interventions", "", intro, "", *_HEADER, *_rows(sc.InterventionSpec, common)]
    kinds = {typing.get_args(m.model_fields["kind"].annotation)[0]: m for m in _INTERVENTIONS}
    for kind in sc.INTERVENTION_KINDS:
        model = kinds[kind]
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
    """Bounds declared on a field or inside its type (``0 ≤ x ≤ 1``, ``> 0``)."""
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
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.10f}".rstrip("0")
    return f"{int(value):,}"


def _meaning(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    """The field's attribute docstring, else its spec's summary, else a consumer's ``Args:``."""
    own = [_attribute_docs().get(owner.__name__, {}).get(name) for owner in model.__mro__]
    borrowed = [_args_docs(consumer).get(name) for consumer in _CONSUMERS.get(model, ())]
    nested = _nested(field.annotation)
    if any(own):
        text = _md(next(doc for doc in own if doc))
    elif nested:
        text = _doc(nested[0])
    elif set(_flatten(field.annotation)) >= set(_INTERVENTIONS):
        text = "Changes applied during the run; see [Interventions](#interventions)."
    else:
        text = _md(next((doc for doc in borrowed if doc), ""))
    return text[:1].upper() + text[1:]


def _flatten(annotation: Any) -> list[Any]:
    """``annotation`` and every type argument inside it, depth first."""
    return [annotation, *(x for arg in typing.get_args(annotation) for x in _flatten(arg))]


@cache
def _attribute_docs() -> dict[str, dict[str, str]]:
    """Class name → field → the docstring under the field in :mod:`orgtwin.scenario`."""
    docs: dict[str, dict[str, str]] = {}
    for node in ast.walk(ast.parse(inspect.getsource(sc))):
        if not isinstance(node, ast.ClassDef):
            continue
        for field, doc in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(field, ast.AnnAssign)
                and isinstance(field.target, ast.Name)
                and isinstance(doc, ast.Expr)
                and isinstance(doc.value, ast.Constant)
                and isinstance(doc.value.value, str)
            ):
                docs.setdefault(node.name, {})[field.target.id] = doc.value.value
    return docs


@cache
def _args_docs(cls: type) -> dict[str, str]:
    """Parameter → description, from the single-name entries of a class's ``Args:``."""
    found: dict[str, str] = {}
    name = None
    lines = (inspect.getdoc(cls) or "").splitlines()
    for line in lines[lines.index("Args:") + 1 :] if "Args:" in lines else []:
        if not line.startswith("    "):
            break
        entry = re.match(r"^ {4}(\w[\w, ]*): (.*)$", line)
        name = (entry[1] if "," not in entry[1] else None) if entry else name
        if name:
            found[name] = entry[2] if entry else f"{found[name]} {line.strip()}"
    return found


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
