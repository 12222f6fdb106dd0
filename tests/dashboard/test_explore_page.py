"""The Explore page (``orgtwin/dashboard/pages/explore.py``) through ``AppTest``: the
verdict that opens the results, the margin card, refusals shown beside the control that
causes them, the scenario picker by question, and an exploration kept in the address.

Runs are short (14 to 30 days, 2 seeds); the bundled scenarios are the scenarios folder.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pypdf import PdfReader
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

import orgtwin
from orgtwin.dashboard import charts, folders
from orgtwin.explore import html_report
from tests.dashboard.harness import start, texts

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
PRICE = "interventions[0].price_usd_month"
DRILL = "explore-ripple-drill"  # the page's widget keys
RIPPLE_CHART = "explore-ripple-chart"


@pytest.fixture(autouse=True)
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(folders.SCENARIOS_ENV, str(SCENARIOS))
    monkeypatch.setenv(folders.RESULTS_ENV, str(tmp_path / "results"))


def run_price_increase(at: AppTest, *, days: int = 30) -> AppTest:
    at.selectbox(key="explore-scenario").set_value("price_increase.yaml").run()
    at.number_input(key="explore-days").set_value(days)
    at.number_input(key="explore-seeds").set_value(2)
    at.button(key="explore-run").click().run()
    assert not at.exception, at.exception
    return at


def test_the_verdict_answers_the_question_and_margin_is_a_card():
    at = run_price_increase(start())
    assert not at.error, texts(at.error)
    verdict = texts(at.info)
    question = orgtwin.load_scenario(SCENARIOS / "price_increase.yaml").question.strip()
    assert verdict.startswith(f"**Verdict.** {question}"), verdict
    assert "Over 30 days (2 seeds, paired by seed)" in verdict
    assert "Projected" not in verdict
    margin = next(m for m in at.metric if m.label == "Margin after people cost")
    assert margin.value.startswith("$") and "95% CI" in margin.proto.delta_description

    at.number_input(key="explore-horizon-30").set_value(365).run()
    assert not at.exception and not at.error, texts(at.error)
    assert "Projected to 365 days (a projection, not a simulation" in texts(at.info)
    assert "Days 31 to 365 are projected, not simulated" in texts(at.caption)


def test_a_start_after_the_end_is_refused_beside_its_control():
    """price_increase starts on day 14: a 10-day run is refused at the start-day control,
    and Run says what blocks it; nothing runs."""
    at = run_price_increase(start(), days=10)
    shown = texts(at.error)
    assert "must be before the end of the run (day 10), got 14: start earlier or set Days" in shown
    assert "Run is blocked until these are fixed: Starts on day" in shown
    assert not at.metric
    starts = next(n for n in at.number_input if n.label.startswith("Starts on day"))
    assert "Allowed: 0 to 9 (before the end of the 10-day run)" in starts.help


def test_the_picker_offers_questions_not_file_names():
    at = start()
    picker = at.selectbox(key="explore-scenario")
    question = " ".join(orgtwin.load_scenario(SCENARIOS / "price_increase.yaml").question.split())
    assert f"{question} (price_increase)" in picker.options
    assert not any(o.endswith(".yaml") for o in picker.options), picker.options


def test_a_link_reopens_the_same_exploration():
    """The address holds scenario, days, seeds, base seed and moved levers: opening it
    runs the same exploration; Run writes them there."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params.update(
        scenario="price_increase.yaml", days="21", seeds="2", seed="7", **{PRICE: "18"}
    )
    at.switch_page("orgtwin/dashboard/pages/explore.py").run()
    assert not at.exception and not at.error, (at.exception, texts(at.error))
    assert at.selectbox(key="explore-scenario").value == "price_increase.yaml"
    line = "price_increase as set vs baseline · 2 seeds × 21 days · base seed 7"
    caption = texts(at.caption)
    assert f"{line} · New price (Pro 12 → 15 USD, from day 14): 18 USD/month" in caption, caption
    assert PRICE not in caption  # the path is in the downloads
    assert texts(at.info).startswith("**Verdict.**")

    at.number_input(key="explore-days").set_value(22)
    at.button(key="explore-run").click().run()
    assert at.query_params["days"] == "22" and at.query_params[PRICE] == "18.0"


def test_a_link_value_out_of_bounds_is_refused_in_words():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params.update(scenario="price_increase.yaml", **{PRICE: "100000"})
    at.switch_page("orgtwin/dashboard/pages/explore.py").run()
    assert not at.exception
    assert "does not fit it" in texts(at.warning), texts(at.warning)
    assert not at.metric  # nothing asked for a run


def test_one_click_report_is_offered_and_stands_alone():
    at = run_price_increase(start(), days=21)
    assert "Report (HTML)" in [d.proto.label for d in at.get("download_button")]

    sc = orgtwin.load_scenario(SCENARIOS / "price_increase.yaml")
    path = SCENARIOS / "price_increase.yaml"
    found = orgtwin.explore.explore(sc, days=21, seeds=2, seed=7)
    frame = orgtwin.explore.series_bands(found.change, entity_type="segment", metric="active_users")
    page = html_report(
        found,
        path,
        verdict="It pays.",
        seed=7,
        series={"Active users": (frame.with_columns(run=pl.lit("change")), "users")},
        start=sc.start,
    )
    assert "<b>Verdict.</b> It pays." in page
    assert "Margin after people cost" in page and "95% CI" in page
    assert "How the change travelled</h2><p>price $12 → $15 → " in page
    assert hashlib.sha256(path.read_bytes()).hexdigest() in page
    assert "2 seeds × 21 days, base seed 7" in page
    assert "<svg" in page and "2026-01-05" in page  # dated, drawn inline
    assert "<script" not in page and "src=" not in page  # nothing fetched when opened


def test_the_report_is_offered_as_a_pdf_too(monkeypatch: pytest.MonkeyPatch):
    """Report (PDF) beside Report (HTML): the file its button makes (the callable the page
    hands Streamlit, run as a click would) is a PDF with the scenario file's hash."""
    made = {}  # deferred file id -> the callable that makes the file
    add = MediaFileManager.add_deferred

    def record(manager: MediaFileManager, data: Any, *args: Any, **kwargs: Any) -> str:
        made[file_id := add(manager, data, *args, **kwargs)] = data
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    at = run_price_increase(start(), days=21)
    buttons = {d.proto.label: d.proto for d in at.get("download_button")}
    assert {"Report (HTML)", "Report (PDF)"} <= set(buttons)
    button = buttons["Report (PDF)"]
    assert button.deferred_file_id and button.help.startswith("The same report as a PDF")
    pdf = made[button.deferred_file_id]()
    assert pdf.startswith(b"%PDF")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    path = SCENARIOS / "price_increase.yaml"
    assert f"SHA-256 {hashlib.sha256(path.read_bytes()).hexdigest()}" in " ".join(text.split())


def test_labels_and_limits_follow_the_other_controls_before_run():
    """cab_policy: once its start moved to day 20, the cadence lever says "from day 20",
    not the file's day 14 nor its label "weekly CAB"; with Days at 10 the start's limit
    says so and the start is refused beside it at once, before Run; Run then says what
    blocks it and runs nothing."""
    at = start()
    at.selectbox(key="explore-scenario").set_value("cab_policy.yaml").run()
    cadence = next(n for n in at.number_input if n.label.startswith("Board meets every"))
    assert "from day 14" in cadence.label
    starts = next(n for n in at.number_input if n.label.startswith("Starts on day"))
    assert "(before the end of the 90-day run)" in starts.help, starts.help
    starts.set_value(20)
    at.number_input(key="explore-days").set_value(10).run()  # no Run pressed
    assert not at.exception, at.exception
    cadence = next(n for n in at.number_input if n.label.startswith("Board meets every"))
    assert "from day 20" in cadence.label, cadence.label
    assert "weekly" not in cadence.label and "approval board as set" in cadence.label
    starts = next(n for n in at.number_input if n.label.startswith("Starts on day"))
    assert "to 9 (before the end of the 10-day run)" in starts.help, starts.help
    assert "got 20: start earlier or set Days above 20" in texts(at.error)
    assert "Run is blocked" not in texts(at.error)  # said on Run
    at.button(key="explore-run").click().run()
    assert "Run is blocked until these are fixed: Starts on day" in texts(at.error)
    assert not at.metric


def test_run_with_nothing_moved_says_so_instead_of_a_page_of_zeros():
    """The baseline run against itself with no lever moved: the page says nothing moved
    (and nothing but the base ran: tests/dashboard/test_speed.py counts the runs); a
    scenario with an intervention of its own does not say it."""
    at = start()
    at.selectbox(key="explore-scenario").set_value("baseline.yaml").run()
    at.number_input(key="explore-days").set_value(14)
    at.number_input(key="explore-seeds").set_value(2)
    at.button(key="explore-run").click().run()
    assert not at.exception, at.exception
    assert "Nothing moved" in texts(at.info), texts(at.info)
    at = run_price_increase(start())
    assert at.metric and not at.error, texts(at.error)  # it ran
    assert "Nothing moved" not in texts(at.info)


def test_every_kpi_reads_in_words_and_the_raw_columns_wait_under_advanced():
    at = run_price_increase(start())
    tables = [d.value for d in at.dataframe]
    words = next(t for t in tables if "Beyond noise" in t.columns)
    assert list(words.columns)[:2] == ["KPI", "Base"]
    assert "Revenue" in set(words["KPI"]) and "revenue_usd" not in set(words["KPI"])
    assert {"yes", "no"} >= set(words["Beyond noise"])
    raw = next(t for t in tables if "base_mean" in t.columns)
    assert {"base_mean", "ci_low", "rel_delta"} <= set(raw.columns)


def test_a_click_on_a_ripple_node_drills_into_it():
    """A click on the graph's node for team platform (the selection the chart sends, as
    Streamlit stores it) opens the drill there, though the team did not move; the picker
    can then move on, and the click does not pull it back."""
    at = run_price_increase(start(), days=21)
    drill = at.selectbox(key=DRILL)
    assert drill.value is None and "team:platform" not in drill.options  # it did not move
    at.session_state[RIPPLE_CHART] = {"selection": {charts.PICKED_NODE: [{"id": "team:platform"}]}}
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key=DRILL).value == "team:platform"
    assert "**Team platform, by figure.** team platform: " in texts(at.markdown)
    at.selectbox(key=DRILL).set_value("revenue_usd").run()
    assert at.selectbox(key=DRILL).value == "revenue_usd"
    assert "**Revenue, by segment.**" in texts(at.markdown)
    words = next(d.value for d in at.dataframe if "Who" in d.value.columns)
    assert set(words["Figure"]) == {"revenue"}  # in words, formatted for its unit
    assert all(v.startswith("$") for v in words["Base"]), words
    assert "pro_us" in set(words["Who"]) and {"yes", "no"} >= set(words["Beyond noise"])
