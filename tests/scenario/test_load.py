"""Loading scenarios: extends, overrides, error messages, reference checks, JSON Schema.

The bad-scenario corpus lives in ``tests/scenario/bad/``: each file opens with one
``# expect: <dotted path> | <substring of the message>`` line per problem, in document
order, and must fail with exactly those problems, in that order.
"""

from __future__ import annotations

import itertools
import pickle
import shutil
from pathlib import Path

import pytest
import yaml

from orgtwin.errors import LeverError, ScenarioError
from orgtwin.scenario.interventions import INTERVENTION_KINDS
from orgtwin.scenario.load import check_timing, load_scenario
from orgtwin.scenario.spec import Scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
BASELINE = SCENARIOS / "baseline.yaml"
BAD = Path(__file__).resolve().parent / "bad"
EXPECT = "# expect:"


def _expectations(path: Path) -> list[tuple[str, str]]:
    """The (field path, message text) of each ``# expect:`` line a corpus file opens with."""
    lines = path.read_text(encoding="utf-8").splitlines()
    expects = list(itertools.takewhile(lambda line: line.startswith(EXPECT), lines))
    assert expects, f"{path.name} must open with '{EXPECT} <path> | <text>'"
    split = (line[len(EXPECT) :].partition("|") for line in expects)
    return [(field_path.strip(), text.strip()) for field_path, _, text in split]


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
def test_bad_scenario_is_refused_with_exactly_the_expected_problems_in_order(path: Path) -> None:
    expected = _expectations(path)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    errors = caught.value.errors
    assert [error.path for error in errors] == [field_path for field_path, _ in expected]
    for error, (_, text) in zip(errors, expected, strict=True):
        assert text in error.line
        assert error.line.startswith(f"{error.source}: ")
    assert path.name in str(caught.value)
    assert caught.value is errors[0]
    assert isinstance(caught.value, ValueError)


SEVERAL = [p for p in EXPECTED_FILES if len(_expectations(p)) > 1]


def test_corpus_has_at_least_four_files_with_several_mistakes() -> None:
    assert len(SEVERAL) >= 4
    assert any(len(_expectations(p)) > ScenarioError.MAX_LISTED for p in SEVERAL)


@pytest.mark.parametrize("path", SEVERAL, ids=[p.stem for p in SEVERAL])
def test_message_of_several_problems_has_a_header_then_one_line_each(path: Path) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    errors = caught.value.errors
    listed = errors[: ScenarioError.MAX_LISTED]
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{caught.value.source}: {len(errors)} problems"
    assert lines[1 : len(listed) + 1] == [f"  {error.line}" for error in listed]
    assert len(lines) == len(listed) + 1 + (len(errors) > len(listed))


def test_more_than_twenty_problems_are_listed_to_twenty_then_counted() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(BAD / "several_more_than_twenty.yaml")
    lines = str(caught.value).splitlines()
    assert len(caught.value.errors) == 24
    assert len(lines) == 22
    assert lines[20].endswith(
        "teams.platform.oncal_size is not a known key (did you mean 'oncall_size'?)"
    )
    assert lines[21] == "  … and 4 more problems"


def test_the_first_problem_gives_path_problem_and_hint() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(BAD / "several_bad_type_and_dangling_team.yaml")
    error = caught.value
    assert error.path == "services.search-api.team"
    assert error.problem == "must name a team declared in teams, got 'platfrom'"
    assert error.hint == "did you mean 'platform'?"


def test_unknown_keys_among_other_mistakes_are_named_with_a_suggestion() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(BAD / "several_days_unknown_key_n_users.yaml")
    unknown = caught.value.errors[2]
    assert (unknown.path, unknown.problem) == ("interventons", "is not a known key")
    assert unknown.hint == "did you mean 'interventions'?"


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


# --------------------------------------------------------------------------- names


def test_a_derived_file_without_a_name_takes_its_stem(org: Path) -> None:
    child = {"extends": "baseline.yaml", "teams": {"web": {"oncall_size": 3}}}
    assert load_scenario(_write(org, "small_rotation.yaml", child)).name == "small_rotation"


def test_a_whole_file_without_a_name_takes_its_stem(tmp_path: Path) -> None:
    text = BASELINE.read_text(encoding="utf-8").replace("name: baseline\n", "", 1)
    assert "name:" not in text.split("description:")[0]
    assert load_scenario(_write(tmp_path, "acme.yaml", text)).name == "acme"


def test_a_file_with_a_name_keeps_it(org: Path) -> None:
    child = {"extends": "baseline.yaml", "name": "rotation"}
    assert load_scenario(_write(org, "small_rotation.yaml", child)).name == "rotation"


def test_a_mapping_without_a_name_is_refused() -> None:
    data = yaml.safe_load(BASELINE.read_text(encoding="utf-8"))
    del data["name"]
    with pytest.raises(ScenarioError) as caught:
        load_scenario(data)
    assert (caught.value.path, caught.value.problem) == ("name", "is required")
    assert str(caught.value) == "<scenario>: name is required"


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


def test_check_timing_reports_every_late_intervention() -> None:
    late = [
        {"kind": "deploy_freeze", "at": 40, "until": 54},
        {"kind": "chaos_program", "at": 50},
        {"kind": "spot_share", "at": 5, "spot_share": 0.5},
    ]
    sc = load_scenario(BASELINE, overrides={"interventions": late})
    with pytest.raises(ScenarioError) as caught:
        check_timing(sc, 30)
    assert [error.path for error in caught.value.errors] == [
        "interventions[0].at",
        "interventions[1].at",
    ]
    assert caught.value.errors[1].problem == "must be before the end of the run (day 30), got 50"


def test_timing_is_not_checked_against_days_that_are_invalid() -> None:
    late = [{"kind": "deploy_freeze", "at": 120, "until": 130}]
    with pytest.raises(ScenarioError) as caught:
        load_scenario(BASELINE, overrides={"days": "many", "interventions": late})
    assert [error.path for error in caught.value.errors] == ["days"]


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


def test_shapes_references_and_timing_are_reported_in_one_pass() -> None:
    overrides = {
        "services": {"auth": {"team": "nobody"}},
        "teams": {"web": {"oncall_size": 0}},
        "interventions": [{"kind": "deploy_freeze", "at": 95, "until": 99}],
    }
    with pytest.raises(ScenarioError) as caught:
        load_scenario(BASELINE, overrides=overrides)
    assert [(error.path, error.problem) for error in caught.value.errors] == [
        ("services.auth.team", "must name a team declared in teams, got 'nobody'"),
        ("teams.web.oncall_size", "must be an integer >= 1, got 0"),
        ("interventions[0].at", "must be before the end of the run (day 90), got 95"),
    ]


@pytest.mark.parametrize(
    ("overrides", "paths"),
    [
        ({"teams": ["web"]}, ["teams"]),
        ({"features": None}, ["features"]),
        ({"services": {"auth": 5}}, ["services.auth"]),
        (
            {"services": {"auth": {"calls": [1], "vendors": "x"}}},
            ["services.auth.calls", "services.auth.vendors"],
        ),
        ({"services": {"auth": {"team": {"name": "web"}}}}, ["services.auth.team"]),
        ({"segments": {"free": {"features": [1, 2]}}}, ["segments.free.features"]),
        ({"features": {"search": {"entry": 5}}}, ["features.search.entry"]),
        ({"interventions": {"a": 1}}, ["interventions"]),
        ({"interventions": [5]}, ["interventions[0]"]),
        ({"interventions": [{"kind": ["x"], "teams": ["nobody"]}]}, ["interventions[0].kind"]),
        (
            {"interventions": [{"kind": "deploy_freeze", "teams": "web"}]},
            ["interventions[0].teams"],
        ),
        (
            {"interventions": [{"kind": "deploy_freeze", "teams": [5], "at": [1]}]},
            ["interventions[0].teams[0]", "interventions[0].at"],
        ),
        (
            {"interventions": [{"kind": "vendor_swap", "vendor": ["a"], "to": ["a"]}]},
            ["interventions[0].vendor", "interventions[0].to"],
        ),
    ],
)
def test_parts_of_the_wrong_shape_are_reported_once_and_never_crash_other_checks(
    overrides: dict, paths: list[str]
) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(BASELINE, overrides=overrides)
    assert [error.path for error in caught.value.errors] == paths


def test_names_of_an_invalid_entry_still_count_as_declared() -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(BASELINE, overrides={"teams": {"platform": {"headcount": "eight"}}})
    assert [error.path for error in caught.value.errors] == ["teams.platform.headcount"]


def test_one_problem_is_one_line() -> None:
    error = ScenarioError("a.yaml", "teams.web.oncall_size", "must be >= 1, got 0", "hint")
    assert str(error) == error.line == "a.yaml: teams.web.oncall_size must be >= 1, got 0 (hint)"
    assert error.errors == [error]


def _several(n: int) -> ScenarioError:
    errors = [ScenarioError("a.yaml", f"teams.t{i}.headcount", f"got {i}") for i in range(n)]
    errors[0].errors = errors
    return errors[0]


def test_two_problems_are_a_header_and_a_line_each() -> None:
    assert str(_several(2)).splitlines() == [
        "a.yaml: 2 problems",
        "  a.yaml: teams.t0.headcount got 0",
        "  a.yaml: teams.t1.headcount got 1",
    ]


def test_twenty_problems_are_all_listed() -> None:
    lines = str(_several(20)).splitlines()
    assert (len(lines), lines[-1]) == (21, "  a.yaml: teams.t19.headcount got 19")


def test_one_problem_past_twenty_is_counted_in_the_singular() -> None:
    lines = str(_several(21)).splitlines()
    assert lines[0] == "a.yaml: 21 problems"
    assert lines[-2:] == ["  a.yaml: teams.t19.headcount got 19", "  … and 1 more problem"]


def test_several_problems_survive_pickling() -> None:
    error = _several(3)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert [e.path for e in copy.errors] == [e.path for e in error.errors]
    assert copy.errors[0] is copy


def test_a_lever_error_stays_one_line_and_pickles() -> None:
    error = LeverError("teams.web.oncall_size=0", "must be >= 1", "hint")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) == "lever: teams.web.oncall_size=0 must be >= 1 (hint)"
    assert isinstance(copy, LeverError)


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
