"""The Watch page through Streamlit's ``AppTest``: watch a telemetry folder whose service
``api`` turns twice as slow at a known hour, see the alarm in words, the stream's charts
with the alarm marked, and re-learn the latency from the change point.

The telemetry is the learning organisation's (``tests/learn/conftest.py``) synthesised
twice with one seed, as it is and with ``api`` twice as slow, spliced at day 14 (as in
``tests/fidelity/test_watch.py``). The telemetry root and the scenarios folder are
temporary folders pointed at with ``ORGTWIN_TELEMETRY`` and ``ORGTWIN_SCENARIOS``.
"""

from __future__ import annotations

import copy
import io
import json
import re
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from orgtwin.dashboard import charts, folders
from orgtwin.runs.synth import synth
from orgtwin.scenario import load_scenario
from tests.dashboard.harness import start, texts
from tests.fidelity.test_watch import drifted, splice
from tests.learn.conftest import LEARNING_SPEC

ROOT = Path(__file__).resolve().parents[2]
WATCH = "orgtwin/dashboard/pages/watch.py"
DAYS, CHANGE_DAY = 21, 14


@pytest.fixture(scope="module")
def slower(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A telemetry folder in which ``api`` is twice as slow from day 14; and that hour."""
    twin = load_scenario(copy.deepcopy(LEARNING_SPEC))
    at = twin.start + timedelta(days=CHANGE_DAY)
    root = tmp_path_factory.mktemp("watch-synth")
    plain = synth(twin, days=DAYS, seed=1, out=root / "plain")
    other = synth(load_scenario(drifted("latency")), days=DAYS, seed=1, out=root / "slow")
    return splice(plain, other, at, root / "spliced"), at


@pytest.fixture
def watch_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slower) -> tuple[Path, Path]:
    """A telemetry root holding ``acme`` (the spliced folder) and a scenarios folder
    holding the twin (``learning.yaml``)."""
    import shutil

    telemetry, scenarios = tmp_path / "telemetry", tmp_path / "scenarios"
    shutil.copytree(slower[0], telemetry / "acme")
    scenarios.mkdir()
    text = yaml.safe_dump(copy.deepcopy(LEARNING_SPEC))
    (scenarios / "learning.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv(folders.TELEMETRY_ENV, str(telemetry))
    monkeypatch.setenv(folders.SCENARIOS_ENV, str(scenarios))
    monkeypatch.setenv(folders.RESULTS_ENV, str(tmp_path / "results"))
    return telemetry, scenarios


def watched() -> AppTest:
    at = start(WATCH)
    at.selectbox(key="watch-folder").set_value("acme")
    at.selectbox(key="watch-scenario").set_value("learning.yaml")
    at.button(key="watch-run").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    return at


def frames(at: AppTest) -> list[pl.DataFrame]:
    return [pl.from_pandas(d.value) for d in at.dataframe]


def chart(at: AppTest, title: str) -> tuple[dict, dict[str, pl.DataFrame]]:
    """The spec and the datasets (by name) of the chart whose title starts with ``title``."""
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        if str(spec.get("title", "")).startswith(title):
            data = {
                d.name: pl.read_ipc_stream(io.BytesIO(d.data.data)) for d in element.proto.datasets
            }
            return spec, data
    titles = [json.loads(e.proto.spec).get("title") for e in at.get("vega_lite_chart")]
    raise AssertionError(f"no chart titled {title!r}: {titles}")


def test_the_reference_window_defaults_to_the_first_two_weeks(watch_dirs, slower):
    at = start(WATCH)
    at.selectbox(key="watch-folder").set_value("acme").run()
    start_day = load_scenario(copy.deepcopy(LEARNING_SPEC)).start.date()
    assert at.date_input(key="watch-ref-from-acme").value == start_day
    assert at.date_input(key="watch-ref-to-acme").value == start_day + timedelta(days=14)
    assert at.number_input(key="watch-budget").value == 1.0


def test_a_slower_service_is_flagged_charted_and_relearned(watch_dirs, slower):
    _, change = slower
    at = watched()
    shown = texts(at.main.markdown)
    assert re.search(r"\b\d+ alarms? on 15 streams since 2026-01-05 00:00 \(UTC\)", shown), shown
    (table,) = frames(at)
    assert {"raised", "what", "since", "how big", "downstream"} <= set(table.columns)
    ours = table.filter(pl.col("what").str.contains("Latency of service api"))
    assert ours.height >= 1, table
    row = ours.row(0, named=True)
    assert "higher than the twin" in row["what"]
    assert row["how big"].startswith("+") and " ms " in row["how big"]
    assert "service gateway" in row["downstream"]
    assert "change_failure" not in texts(at.main.markdown) + "".join(table["what"])

    at.selectbox(key="watch-stream").set_value("Latency of service api").run()
    assert not at.exception, at.exception
    spec, data = chart(at, "Latency of service api: residuals")
    line, _zero, rules, diamonds = spec["layer"]
    assert rules["mark"]["type"] == "rule" and diamonds["mark"]["shape"] == "diamond"
    since = data[rules["data"]["name"]]["since"].dt.replace_time_zone(None)
    assert (since >= change - timedelta(days=1)).any(), since  # the change point is marked
    raised = data[diamonds["data"]["name"]]
    assert raised["z"].null_count() == 0  # each diamond sits on the line
    assert data[line["data"]["name"]].height == DAYS * 24
    spec, data = chart(at, "Latency of service api: production against the twin (ms)")
    assert spec["layer"][0]["encoding"]["y"]["title"] == "ms"

    alarms = at.selectbox(key="watch-alarm")
    after = [o for o in alarms.options if o.split("since ")[1][:16] >= f"{change:%Y-%m-%d %H:%M}"]
    assert after, alarms.options
    alarms.set_value(after[0]).run()
    at.button(key="watch-relearn").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    relearned = next(t for t in frames(at) if "after (re-learned)" in t.columns)
    base_ms = relearned.filter(pl.col("parameter") == "base_ms").row(0, named=True)
    assert base_ms["before (the twin)"] == pytest.approx(20.0)
    assert base_ms["after (re-learned)"] == pytest.approx(40.0, rel=0.1)
    assert base_ms["95% interval"] != "—" and base_ms["source"] == "learned"
    assert "Nothing is saved" in texts(at.main.caption)
    assert not list(watch_dirs[1].glob("*.report.*"))  # nothing written
    assert sorted(p.name for p in watch_dirs[1].iterdir()) == ["learning.yaml"]


def test_failed_requests_say_they_cannot_be_relearned(watch_dirs):
    at = watched()
    stream = at.selectbox(key="watch-stream")
    assert "Failed requests of service api" in stream.options
    stream.set_value("Failed requests of service api").run()
    assert not at.exception, at.exception
    chart(at, "Failed requests of service api: residuals")
    assert "Failed requests cannot be re-learned" in texts(at.info)
    assert not [b for b in at.button if b.key == "watch-relearn"]


def test_an_empty_telemetry_root_says_how_to_make_one(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(folders.TELEMETRY_ENV, str(tmp_path / "none"))
    monkeypatch.setenv(folders.SCENARIOS_ENV, str(ROOT / "scenarios"))
    at = start(WATCH)
    assert "No telemetry folders" in texts(at.info)


def test_the_watch_charts_are_valid_vega_lite_specs():
    from datetime import datetime

    times = [datetime(2026, 1, 5) + timedelta(hours=i) for i in range(6)]
    points = pl.DataFrame(
        {"time": times, "z": [0.0, 0.1, 2.0, 3.0, 4.0, 5.0], "observed": [20.0] * 6,
         "expected": [19.0] * 6}
    )  # fmt: skip
    alarms = pl.DataFrame({"since": [times[2]], "raised": [times[4]]})
    spec = charts.residual_timeline(points, alarms).to_dict()  # validates the spec
    rules, diamonds = spec["layer"][2:]
    assert spec["datasets"][rules["data"]["name"]][0]["since"].startswith("2026-01-05T02:00")
    assert spec["datasets"][diamonds["data"]["name"]][0]["z"] == 4.0
    assert len(charts.residual_timeline(points, alarms.clear()).to_dict()["layer"]) == 2
    spec = charts.observed_against_expected(points, alarms, y_title="ms").to_dict()
    assert spec["datasets"][spec["layer"][2]["data"]["name"]][0]["value"] == 20.0
