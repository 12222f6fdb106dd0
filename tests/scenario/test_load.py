"""Loading scenarios: extends, overrides, error messages, reference checks, JSON Schema.

The bad-scenario corpus lives in ``tests/scenario/bad/``: each file opens with
``# expect: <dotted path> | <substring of the message>`` and must fail with exactly that.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import yaml

from orgtwin.errors import ScenarioError
from orgtwin.scenario.interventions import INTERVENTION_KINDS
from orgtwin.scenario.load import check_timing, load_scenario
from orgtwin.scenario.reference import scenario_json_schema
from orgtwin.scenario.spec import Scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
BASELINE = SCENARIOS / "baseline.yaml"
BAD = Path(__file__).resolve().parent / "bad"
EXPECT = "# expect:"


def _expectation(path: Path) -> tuple[str, str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(EXPECT), f"{path.name} must open with '{EXPECT} <path> | <text>'"
    field_path, _, text = first[len(EXPECT) :].partition("|")
    return field_path.strip(), text.strip()


def _write(folder: Path, name: str, data: dict | str) -> Path:
    path = folder / name
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def org(tmp_path: Path) -> Path:
    """A folder holding a copy of the baseline, for child scenarios to extend."""
    shutil.copy(BASELINE, tmp_path / "baseline.yaml")
    return tmp_path


# --------------------------------------------------------------------------- the corpus

CORPUS = sorted(BAD.glob("*.yaml"))
EXPECTED_FILES = [p for p in CORPUS if p.read_text(encoding="utf-8").startswith(EXPECT)]


def test_corpus_is_large_enough() -> None:
    assert len(EXPECTED_FILES) >= 18


@pytest.mark.parametrize("path", EXPECTED_FILES, ids=[p.stem for p in EXPECTED_FILES])
def test_bad_scenario_is_refused_with_path_and_message(path: Path) -> None:
    field_path, text = _expectation(path)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert caught.value.path == field_path, message
    assert text in message
    assert path.name in message
    assert isinstance(caught.value, ValueError)


# --------------------------------------------------------------------------- the baseline


def test_baseline_has_the_reference_organisation() -> None:
    sc = load_scenario(BASELINE)
    assert len(sc.segments) >= 3
    assert 180_000 <= sum(s.n_users for s in sc.segments.values()) <= 220_000
    assert len(sc.services) >= 12
    assert len(sc.features) >= 4
    assert len(sc.vendors) >= 4
    assert len(sc.teams) >= 4
    assert sc.days == 90
    assert sc.interventions == []


def test_source_is_the_path_as_given_and_base_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    sc = load_scenario("scenarios/baseline.yaml")
    assert sc.source == "scenarios/baseline.yaml"
    assert sc.base is None


def test_a_mapping_loads_with_a_placeholder_source() -> None:
    data = yaml.safe_load(BASELINE.read_text(encoding="utf-8"))
    sc = load_scenario(data)
    assert sc.source == "<scenario>"
    assert sc.name == "baseline"


# --------------------------------------------------------------------------- extends


def test_child_override_keeps_the_siblings_of_the_field(org: Path) -> None:
    child = {"extends": "baseline.yaml", "name": "child", "teams": {"web": {"oncall_size": 3}}}
    sc = load_scenario(_write(org, "child.yaml", child))
    assert sc.teams["web"].oncall_size == 3
    assert sc.teams["web"].headcount == 9
    assert sc.teams["web"].changes_per_engineer_day == 1.2
    assert sc.base == str((org / "baseline.yaml").resolve())


def test_null_deletes_a_key(org: Path) -> None:
    child = {
        "extends": "baseline.yaml",
        "name": "no_exporter",
        "segments": {"enterprise": None},
        "services": {"exporter": None, "reports-api": {"calls": {"exporter": None}}},
    }
    sc = load_scenario(_write(org, "child.yaml", child))
    assert "exporter" not in sc.services
    assert "enterprise" not in sc.segments
    assert sc.services["reports-api"].calls == {"auth": 1.0, "analytics": 2.0}


def test_lists_replace_but_interventions_append(org: Path) -> None:
    middle = {
        "extends": "baseline.yaml",
        "name": "middle",
        "description": "not inherited",
        "interventions": [{"kind": "deploy_freeze", "at": 40, "until": 54}],
    }
    child = {
        "extends": "middle.yaml",
        "name": "child",
        "segments": {"free": {"features": {"boards": 1.0}}},
        "interventions": [{"kind": "spot_share", "at": 14, "spot_share": 0.5}],
    }
    _write(org, "middle.yaml", middle)
    sc = load_scenario(_write(org, "child.yaml", child))
    assert [i.kind for i in sc.interventions] == ["deploy_freeze", "spot_share"]
    assert sc.segments["free"].features == {"boards": 1.0, "search": 0.25, "collaborate": 0.05}
    assert (sc.name, sc.description) == ("child", "")
    assert sc.base == str((org / "middle.yaml").resolve())


def test_extends_in_a_subfolder_is_relative_to_the_extending_file(org: Path) -> None:
    (org / "nested").mkdir()
    child = {"extends": "../baseline.yaml", "name": "nested"}
    assert load_scenario(_write(org / "nested", "child.yaml", child)).name == "nested"


def test_a_base_that_is_not_a_mapping_is_an_extends_error(org: Path) -> None:
    _write(org, "list.yaml", "- 1\n- 2\n")
    child = _write(org, "child.yaml", {"extends": "list.yaml", "name": "child"})
    with pytest.raises(ScenarioError, match=r"list\.yaml") as caught:
        load_scenario(child)
    assert caught.value.path == "extends"
    assert "mapping" in caught.value.problem


def test_extends_deeper_than_ten_files_is_refused(org: Path) -> None:
    previous = "baseline.yaml"
    for depth in range(12):
        previous = _write(org, f"d{depth}.yaml", {"extends": previous, "name": "d"}).name
    with pytest.raises(ScenarioError, match="longer than 10 files") as caught:
        load_scenario(org / previous)
    assert caught.value.path == "extends"


# --------------------------------------------------------------------------- overrides


def test_overrides_merge_last_with_the_same_rules() -> None:
    overrides = {
        "days": 30,
        "teams": {"web": {"oncall_size": 2}},
        "vendors": {"cdn": None},
        "services": {"web-bff": {"vendors": None}},
        "interventions": [{"kind": "chaos_program", "at": 0}],
    }
    sc = load_scenario(BASELINE, overrides=overrides)
    assert sc.days == 30
    assert (sc.teams["web"].oncall_size, sc.teams["web"].headcount) == (2, 9)
    assert "cdn" not in sc.vendors
    assert sc.services["web-bff"].vendors == {}
    assert [i.kind for i in sc.interventions] == ["chaos_program"]


def test_overrides_do_not_change_the_callers_mapping() -> None:
    overrides = {"teams": {"web": {"oncall_size": 2}}}
    data = yaml.safe_load(BASELINE.read_text(encoding="utf-8"))
    load_scenario(data, overrides=overrides)
    assert data["teams"]["web"]["oncall_size"] == 6
    assert overrides == {"teams": {"web": {"oncall_size": 2}}}


def test_an_override_error_names_the_file_and_the_path() -> None:
    with pytest.raises(ScenarioError, match=r"baseline\.yaml") as caught:
        load_scenario(BASELINE, overrides={"teams": {"web": {"oncall_size": 0}}})
    assert caught.value.path == "teams.web.oncall_size"


# --------------------------------------------------------------------------- timing


def test_timing_is_checked_against_overridden_days() -> None:
    freeze = [{"kind": "deploy_freeze", "at": 40, "until": 54}]
    with pytest.raises(ScenarioError, match=r"before the end of the run \(day 30\)") as caught:
        load_scenario(BASELINE, overrides={"days": 30, "interventions": freeze})
    assert caught.value.path == "interventions[0].at"


def test_check_timing_can_be_rerun_with_other_days() -> None:
    sc = load_scenario(SCENARIOS / "traffic_surge.yaml")
    check_timing(sc, 46)
    with pytest.raises(ScenarioError, match="day 45") as caught:
        check_timing(sc, 45)
    assert caught.value.path == "interventions[0].at"


def test_hour_strings_are_checked_in_hours() -> None:
    outage = {"kind": "vendor_outage", "vendor": "stripe", "at": "2159h", "until": "2170h"}
    sc = load_scenario(BASELINE, overrides={"interventions": [outage]})
    with pytest.raises(ScenarioError, match="got '2159h'"):
        check_timing(sc, 89)


# --------------------------------------------------------------------------- messages


def test_every_error_is_kept_and_the_first_in_document_order_is_raised() -> None:
    data = yaml.safe_load(BASELINE.read_text(encoding="utf-8"))
    data = {"teams": data.pop("teams"), **data}  # teams now come first in the document
    data["teams"]["web"]["oncall_size"] = 0
    data["segments"]["free"]["n_users"] = -5
    data["services"]["auth"]["replicaz"] = 3
    with pytest.raises(ScenarioError) as caught:
        load_scenario(data)
    paths = [error.path for error in caught.value.errors]
    assert paths == ["teams.web.oncall_size", "segments.free.n_users", "services.auth.replicaz"]
    assert caught.value is caught.value.errors[0]
    assert "did you mean 'replicas'?" in str(caught.value.errors[2])


def test_all_reference_errors_are_kept() -> None:
    overrides = {
        "features": {"search": {"entry": "nowhere"}},
        "services": {"auth": {"team": "nobody"}},
    }
    with pytest.raises(ScenarioError) as caught:
        load_scenario(BASELINE, overrides=overrides)
    paths = [error.path for error in caught.value.errors]
    assert paths == ["features.search.entry", "services.auth.team"]


def test_unknown_intervention_kind_lists_the_kinds() -> None:
    bad = [{"kind": "freeze", "at": 3}]
    with pytest.raises(ScenarioError) as caught:
        load_scenario(BASELINE, overrides={"interventions": bad})
    assert all(kind in caught.value.problem for kind in INTERVENTION_KINDS)


def test_a_wrong_element_inside_a_selector_gets_its_own_path() -> None:
    bad = [{"kind": "deploy_freeze", "teams": ["web", 5]}]
    with pytest.raises(ScenarioError, match="must be a string, got 5") as caught:
        load_scenario(BASELINE, overrides={"interventions": bad})
    assert caught.value.path == "interventions[0].teams[1]"


def test_loader_fields_cannot_be_set_from_a_file() -> None:
    with pytest.raises(ScenarioError, match="is not a known key") as caught:
        load_scenario(BASELINE, overrides={"source": "elsewhere.yaml"})
    assert caught.value.path == "source"


def test_scenario_error_survives_pickling() -> None:
    error = ScenarioError("a.yaml", "teams.web.oncall_size", "must be >= 1, got 0", "hint")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.path, copy.hint) == (str(error), error.path, error.hint)


# --------------------------------------------------------------------------- safety


def test_python_object_tags_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = f"name: x\ndescription: !!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(ScenarioError, match="python/object"):
        load_scenario(_write(tmp_path, "evil.yaml", text))
    assert not marker.exists()


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    text = BASELINE.read_text(encoding="utf-8") + "#" * (1024 * 1024) + "\n"
    with pytest.raises(ScenarioError, match="larger than 1 MiB"):
        load_scenario(_write(tmp_path, "huge.yaml", text))


def test_alias_bombs_are_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    with pytest.raises(ScenarioError, match="expands to more than"):
        load_scenario(_write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n"))


def test_anchors_and_merge_keys_work_but_duplicate_keys_do_not(org: Path) -> None:
    text = (
        "extends: baseline.yaml\nname: anchors\n"
        "teams:\n  web: &small {headcount: 4, oncall_size: 2}\n  core: {<<: *small, headcount: 5}\n"
    )
    sc = load_scenario(_write(org, "anchors.yaml", text))
    assert (sc.teams["core"].headcount, sc.teams["core"].oncall_size) == (5, 2)
    with pytest.raises(ScenarioError, match="duplicate key 'web'"):
        load_scenario(_write(org, "twice.yaml", text.replace("core:", "web:")))


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "nowhere.yaml")


def test_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="got nothing"):
        load_scenario(_write(tmp_path, "empty.yaml", "# nothing here\n"))


# --------------------------------------------------------------------------- JSON Schema


def test_json_schema_describes_the_file_format() -> None:
    schema = json.loads(json.dumps(scenario_json_schema()))
    properties = schema["properties"]
    for key in ("segments", "services", "teams", "interventions", "extends"):
        assert key in properties
    assert "source" not in properties
    assert "base" not in properties
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"name", "segments", "features", "services", "teams"}


# --------------------------------------------------------------------------- scenario files

SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_every_scenario_file_loads(path: Path) -> None:
    sc = load_scenario(path)
    assert isinstance(sc, Scenario)
    assert sc.name == path.stem


@pytest.mark.parametrize(
    "path",
    [p for p in SCENARIO_FILES if p != BASELINE],
    ids=[p.stem for p in SCENARIO_FILES if p != BASELINE],
)
def test_every_question_extends_the_baseline_and_asks_it_in_words(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# "), "open with a comment stating the question"
    assert yaml.safe_load(text)["extends"] == "baseline.yaml"
    sc = load_scenario(path)
    assert sc.description
    assert sc.interventions
