"""The scenario format's JSON Schema (orgtwin/scenario/reference.py) fits the files users write.

Editors validate scenario files with ``orgtwin schema``. Every shipped scenario, derived
ones included, must pass; a file that extends nothing must still declare its organisation.
(``docs/scenarios.md`` against the generated Markdown is checked in ``tests/test_docs.py``.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from orgtwin.scenario.reference import scenario_json_schema

jsonschema = pytest.importorskip("jsonschema")
ROOT = Path(__file__).resolve().parents[2]
FILES = [*sorted((ROOT / "scenarios").glob("*.yaml")), ROOT / "tests" / "golden" / "small.yaml"]


class _TextTimes(yaml.SafeLoader):
    """Safe YAML with timestamps kept as text, as an editor sees them."""


_TextTimes.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def problems(data: object) -> list[str]:
    validator = jsonschema.Draft202012Validator(scenario_json_schema())
    return [error.message for error in validator.iter_errors(data)]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_the_schema_accepts_every_shipped_scenario(path: Path):
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_TextTimes)
    assert problems(data) == []


def test_a_file_without_extends_must_declare_its_organisation():
    found = problems({"name": "lonely", "days": 30})
    assert sorted(m.split("'")[1] for m in found) == ["features", "segments", "services", "teams"]


def test_a_derived_file_needs_no_name_and_no_organisation():
    assert problems({"extends": "baseline.yaml", "days": 30}) == []


def test_the_schema_refuses_an_unknown_key_and_a_value_out_of_bounds():
    found = problems({"extends": "baseline.yaml", "dayz": 30, "seeds": 0})
    assert any("dayz" in m for m in found) and any("0 is less than" in m for m in found)


def test_json_schema_describes_the_file_format():
    schema = json.loads(json.dumps(scenario_json_schema()))
    properties = schema["properties"]
    for key in ("segments", "services", "teams", "interventions", "extends"):
        assert key in properties
    assert "source" not in properties
    assert "base" not in properties
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False
    assert "required" not in schema, "a derived file or one without a name is valid"
    assert set(schema["then"]["required"]) == {"segments", "features", "services", "teams"}
