"""The landing page (``orgtwin/dashboard/pages/home.py``) through ``AppTest``: it opens
the app, says what the twin is for and offers each shipped scenario by its question, a
link to Explore with that scenario chosen."""

from __future__ import annotations

from pathlib import Path

import pytest

import orgtwin
from orgtwin.dashboard import folders
from tests.dashboard.harness import EXPLORE, start, texts

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(autouse=True)
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(folders.SCENARIOS_ENV, str(SCENARIOS))
    monkeypatch.setenv(folders.RESULTS_ENV, str(tmp_path / "results"))


def links(at) -> list:
    return list(at.get("page_link"))


def test_the_app_opens_on_the_questions_the_scenarios_answer():
    at = start(None)
    assert not at.error, texts(at.error)
    assert at.title[0].value == "What would happen if…?"
    assert "digital twin of a software organisation" in texts(at.markdown)
    shown = {link.proto.label: link.proto for link in links(at)}
    assert len(shown) == len(list(SCENARIOS.glob("*.yaml")))
    question = " ".join(orgtwin.load_scenario(SCENARIOS / "price_increase.yaml").question.split())
    link = shown[question]
    assert link.page.endswith("explore")
    assert "scenario=price_increase.yaml" in link.query_string
    assert not at.selectbox  # a page to read, not a form


def test_following_a_question_opens_explore_with_that_scenario():
    """What the link does: Explore, with the scenario from the address chosen."""
    at = start(None)
    at.query_params["scenario"] = "price_increase.yaml"
    at.switch_page(EXPLORE).run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.selectbox(key="explore-scenario").value == "price_increase.yaml"
    assert not at.metric  # chosen, not run: the lead moves a lever first
