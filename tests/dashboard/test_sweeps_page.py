"""The Sweeps page in words, through Streamlit's ``AppTest``: sentences and labels where a
lead looks, lever paths only under "Advanced", and a launcher whose pickers build the same
sweep as the typed ``path=spec`` syntax."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import orgtwin
from orgtwin.dashboard import folders
from orgtwin.scenario.wording import lever_label
from tests.dashboard.harness import start, texts

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
SWEEPS = "orgtwin/dashboard/pages/sweeps.py"
ONCALL, SPOT = "teams.*.oncall_size", "services.*.spot_share"


def test_the_page_speaks_in_sentences_and_labels(small_sweep: Path):
    at = start(SWEEPS)
    assert not at.exception, at.exception
    found = texts(at.success)  # the discovery, in words: the default condition's
    assert found.startswith("Availability misses its SLO") and found.endswith("."), found
    ranking = texts(at.info) + texts(at.warning)
    assert "matters most for availability" in ranking or "Inconclusive" in ranking, ranking
    assert lever_label(ONCALL) in texts(at.caption)
    assert at.selectbox(key="sweeps-x").options[0] in (lever_label(ONCALL), lever_label(SPOT))
    effects = next(d.value for d in at.dataframe if "Lever" in d.value.columns)
    assert set(effects["Lever"]) == {lever_label(ONCALL), lever_label(SPOT)}


def test_lever_paths_show_only_under_advanced(small_sweep: Path):
    at = start(SWEEPS)
    advanced = [e for e in at.expander if e.label.startswith("Advanced")]
    inside = "\n".join(texts(e.markdown) for e in advanced)
    assert ONCALL in inside and SPOT in inside
    for kind in ("caption", "success", "info", "warning", "error"):
        shown = texts(getattr(at, kind))
        assert ONCALL not in shown and SPOT not in shown, (kind, shown)
    outside = [m.value for m in at.main.markdown if not any(m in e.markdown for e in advanced)]
    assert not any(ONCALL in text or SPOT in text for text in outside), outside
    advanced_frames = [d.value for e in advanced for d in e.dataframe]
    assert any("lever" in frame.columns for frame in advanced_frames), "raw scores inside"


def launched(results_dir: Path) -> list[str]:
    made = folders.list_sweeps(results_dir)
    assert len(made) == 1, made
    manifest = json.loads((results_dir / made[0] / "manifest.json").read_text())
    return manifest["levers"]


def test_the_pickers_build_the_same_sweep_as_the_typed_syntax(
    results_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    at = start(SWEEPS)
    at.selectbox(key="launch-pick-1").set_value(lever_label(ONCALL)).run()
    at.selectbox(key="launch-pick-2").set_value("(none)").run()
    at.number_input(key=f"launch-1-{ONCALL}-low").set_value(2)
    at.number_input(key=f"launch-1-{ONCALL}-high").set_value(3)
    at.number_input(key=f"launch-1-{ONCALL}-levels").set_value(2)
    at.number_input(key="launch-seeds").set_value(1)
    at.number_input(key="launch-days").set_value(7)
    at.button(key="launch-picked").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    picked = launched(results_dir)

    typed_dir = tmp_path / "typed"
    typed_dir.mkdir()
    monkeypatch.setenv(folders.RESULTS_ENV, str(typed_dir))
    at = start(SWEEPS)
    at.text_input(key="launch-lever-1").set_value(f"{ONCALL}=2..3")
    at.text_input(key="launch-lever-2").set_value("")
    at.number_input(key="launch-seeds").set_value(1)
    at.number_input(key="launch-days").set_value(7)
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    assert picked == launched(typed_dir) == [f"{ONCALL}=2..3"]


def test_a_picker_is_bounded_by_what_the_lever_allows(results_dir: Path):
    at = start(SWEEPS)
    spot_low = at.number_input(key=f"launch-2-{SPOT}-low")
    assert spot_low.min == 0.0 and at.number_input(key=f"launch-2-{SPOT}-high").max == 1.0
    oncall_high = at.number_input(key=f"launch-1-{ONCALL}-high")
    smallest_team = min(t.headcount for t in orgtwin.load_scenario(SCENARIOS / "baseline.yaml")
                        .teams.values())  # fmt: skip
    assert oncall_high.max == smallest_team
