"""The JSON Schema of scenario files (``orgtwin schema``) marks no good file red and
refuses what the loader refuses, for complete files and derived ones (``extends:``) alike.

Editors validate scenario files against it, so every shipped scenario must pass it, read
as an editor reads YAML (1.2: ``2026-01-05`` stays text). A derived file is merged over
its base (:mod:`orgtwin.scenario.load`): its entries may be partial and ``null`` deletes
a key; each case below is judged by the schema and by the loader, and both must agree.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from orgtwin.cli import main
from orgtwin.errors import ScenarioError
from orgtwin.scenario.load import load_scenario
from orgtwin.scenario.reference import scenario_json_schema

jsonschema = pytest.importorskip("jsonschema")
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [
    *sorted((ROOT / "scenarios").glob("*.yaml")),
    *sorted((ROOT / "examples" / "twins").glob("*.yaml")),
    ROOT / "tests" / "golden" / "small.yaml",
]


class _EditorYaml(yaml.SafeLoader):
    """YAML as an editor reads it (1.2 core schema): a timestamp stays text, 1e6 is a number."""


_EditorYaml.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)
_EditorYaml.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = scenario_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def problems(validator: Any, data: dict[str, Any]) -> list[str]:
    """Every schema error as ``path: message``, the path dotted (``teams.web.headcount``)."""
    return sorted(
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(data)
    )


def loader_accepts(data: dict[str, Any], folder: Path) -> bool:
    """Whether :func:`load_scenario` accepts ``data`` written as a file in ``folder``."""
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    try:
        load_scenario(path)
    except ScenarioError:
        return False
    return True


def with_change(data: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``change`` written into it, key by key (a plain nested set)."""
    found = copy.deepcopy(data)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(found.get(key), dict):
            found[key] = with_change(found[key], value)
        else:
            found[key] = value
    return found


# --------------------------------------------------------------------------- shipped files


def test_every_shipped_kind_of_file_is_checked():
    names = {path.relative_to(ROOT).as_posix() for path in SHIPPED}
    assert {"scenarios/baseline.yaml", "scenarios/oncall_shrink.yaml"} <= names
    assert "examples/twins/nezha_onlineboutique.yaml" in names  # derived, deletes with null
    assert len(names) >= 18


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_schema_accepts_every_shipped_scenario(validator: Any, path: Path):
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_EditorYaml)
    assert problems(validator, data) == []


# --------------------------------------------------------------------------- derived files

DERIVED_GOOD = {
    "an entry given in part": {"teams": {"web": {"oncall_size": 2}}},
    "a new entry given whole": {
        "vendors": {"maps": {"kind": "maps", "latency_ms": 80, "price_usd_per_1k_calls": 0.5}}
    },
    "null deletes an entry": {"segments": {"free": None}},
    "null restores a default": {"days": None, "slo": None, "teams": {"payments": {"canary": None}}},
    "a bare date": {"start": "2026-03-02"},
    "a time with a zone": {"start": "2026-03-02 09:30+01:00"},
    "no name and nothing else": {},
}


@pytest.mark.parametrize("change", DERIVED_GOOD.values(), ids=DERIVED_GOOD.keys())
def test_a_derived_file_may_give_part_of_its_base_or_delete_with_null(
    validator: Any, baseline_path: Path, tmp_path: Path, change: dict[str, Any]
):
    data = {"extends": str(baseline_path), **change}
    assert problems(validator, data) == []
    assert loader_accepts(data, tmp_path)


DERIVED_BAD = {
    "null deletes a whole section": ({"segments": None}, "segments: None is not of type"),
    "null deletes a required key": (
        {"teams": {"web": {"headcount": None}}},
        "teams.web.headcount: None is not of type 'integer'",
    ),
    "an intervention in part": (
        {"interventions": [{"kind": "oncall_rotation", "at": 3}]},
        "interventions.0: ",
    ),
}


@pytest.mark.parametrize("change, expected", DERIVED_BAD.values(), ids=DERIVED_BAD.keys())
def test_a_derived_file_cannot_delete_what_the_merged_scenario_needs(
    validator: Any, baseline_path: Path, tmp_path: Path, change: dict[str, Any], expected: str
):
    data = {"extends": str(baseline_path), **change}
    found = problems(validator, data)
    assert len(found) == 1 and found[0].startswith(expected), found
    assert not loader_accepts(data, tmp_path)


# --------------------------------------------------------------------------- complete files


REQUIRED = ("segments", "features", "services", "teams")


def test_a_complete_file_must_declare_its_organisation(validator: Any):
    found = problems(validator, {"name": "lonely", "days": 30})
    assert found == [f": '{key}' is a required property" for key in sorted(REQUIRED)]


def test_a_complete_file_gives_every_entry_whole_and_no_null(
    validator: Any, small_spec: dict[str, Any], tmp_path: Path
):
    del small_spec["teams"]["web"]["headcount"]
    small_spec["days"] = None
    found = problems(validator, small_spec)
    assert found == [
        "days: None is not of type 'integer'",
        "teams.web: 'headcount' is a required property",
    ]
    assert not loader_accepts(small_spec, tmp_path)


def test_a_complete_file_needs_no_name(validator: Any, small_spec: dict[str, Any]):
    del small_spec["name"]  # the loader names it after its file
    assert problems(validator, small_spec) == []


# --------------------------------------------------------------------------- wrong files

WRONG = {
    "a misspelt key": (
        {"teams": {"web": {"oncall_sise": 2}}},
        "teams.web: Additional properties are not allowed ('oncall_sise' was unexpected)",
    ),
    "a misspelt section": (
        {"dayz": 30},
        ": Additional properties are not allowed ('dayz' was unexpected)",
    ),
    "a value out of bounds": (
        {"teams": {"web": {"oncall_size": 0}}},
        "teams.web.oncall_size: 0 is less than the minimum of 1",
    ),
    "a nested value out of bounds": (
        {"segments": {"pro": {"churn": {"base_monthly": -0.1}}}},
        "segments.pro.churn.base_monthly: -0.1 is less than the minimum of 0",
    ),
    "a wrong type": ({"days": "ninety"}, "days: 'ninety' is not of type 'integer'"),
    "a value outside its enum": (
        {"teams": {"web": {"deploy_policy": {"kind": "sometimes"}}}},
        "teams.web.deploy_policy.kind: 'sometimes' is not one of",
    ),
    "a start that is no time": ({"start": "05/01/2026"}, "start: '05/01/2026' does not match"),
    "an unknown intervention": (
        {"interventions": [{"kind": "reorg", "at": 3}]},
        "interventions.0: {'kind': 'reorg', 'at': 3} is not valid under any",
    ),
}


@pytest.mark.parametrize("kind", ["complete", "derived"])
@pytest.mark.parametrize("change, expected", WRONG.values(), ids=WRONG.keys())
def test_the_schema_and_the_loader_refuse_a_wrong_file(
    validator: Any,
    small_spec: dict[str, Any],
    tmp_path: Path,
    kind: str,
    change: dict[str, Any],
    expected: str,
):
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(small_spec), encoding="utf-8")
    if kind == "complete":
        data = with_change(small_spec, change)
    else:
        data = {"extends": "small.yaml", **change}
    found = problems(validator, data)
    assert len(found) == 1 and found[0].startswith(expected), found
    assert not loader_accepts(data, tmp_path)


# --------------------------------------------------------------------------- one declaration


_MERGED = ("type", "enum", "anyOf", "$ref", "additionalProperties")
"""What a partial spec may change in a field: null added, nested specs and maps partial."""


def test_partial_specs_keep_the_declared_descriptions_and_bounds():
    defs = scenario_json_schema()["$defs"]
    partials = [name for name in defs if name.endswith("Partial")]
    assert {"TeamSpecPartial", "SegmentSpecPartial", "ChurnSpecPartial"} <= set(partials)
    for name in partials:
        whole, partial = defs[name.removesuffix("Partial")], defs[name]
        assert partial["additionalProperties"] is False
        assert partial["properties"].keys() == whole["properties"].keys(), name
        for key, field in whole["properties"].items():
            kept = {k: v for k, v in field.items() if k not in _MERGED}
            assert kept.items() <= partial["properties"][key].items(), f"{name}.{key}"


def test_the_schema_describes_the_file_format():
    """Its top level: the sections users write, not the loader's own fields (``source``,
    ``base``); no section required of every file, the organisation of one without
    ``extends``."""
    schema = json.loads(json.dumps(scenario_json_schema()))
    properties = schema["properties"]
    for key in ("segments", "services", "teams", "interventions", "extends"):
        assert key in properties
    assert "source" not in properties and "base" not in properties
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False
    assert "required" not in schema, "a derived file or one without a name is valid"
    assert set(schema["then"]["required"]) == {"segments", "features", "services", "teams"}


def test_orgtwin_schema_prints_the_schema(capsys: pytest.CaptureFixture[str]):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == scenario_json_schema()
