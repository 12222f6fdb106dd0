"""The golden summary: a small seeded scenario gives exactly the KPIs checked in.

``tests/golden/small.yaml`` holds one change of most intervention kinds; its summary is in
``tests/golden/small_summary.json``. Any change of behaviour, meant or not, shows here:
regenerate the file with ``make golden`` only for a change you mean to make.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def regenerate_module():
    spec = importlib.util.spec_from_file_location("golden_regenerate", GOLDEN / "regenerate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_golden_scenario_gives_the_checked_in_summary():
    expected = json.loads((GOLDEN / "small_summary.json").read_text(encoding="utf-8"))
    got = regenerate_module().golden_summary()
    assert (got["scenario"], got["days"]) == (expected["scenario"], expected["days"])
    assert len(got["runs"]) == len(expected["runs"])
    for run, want in zip(got["runs"], expected["runs"], strict=True):
        assert run.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(run[key]), (run["run_id"], key)
            elif isinstance(value, str):
                assert run[key] == value
            else:
                assert run[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (run["run_id"], key)


def test_the_golden_scenario_exercises_most_intervention_kinds():
    from orgtwin import load_scenario

    kinds = {iv.kind for iv in load_scenario(GOLDEN / "small.yaml").interventions}
    assert len(kinds) >= 10
