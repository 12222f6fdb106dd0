"""The Validate page and the trust badge through Streamlit's ``AppTest``: validate a twin
against telemetry in which its service ``api`` is twice as slow, read the trust level,
the lines that do not mirror production and the table, save the scorecard beside the
twin; then see its trust level on the Explore, Compare and Watch pages.

The telemetry is the learning organisation's (``tests/learn/conftest.py``) with ``api``
twice as slow (``tests/fidelity/test_watch.py``'s ``drifted``), synthesised for two
weeks; the twin is the learning organisation as it is. The telemetry root and the
scenarios folder are temporary folders pointed at with ``ORGTWIN_TELEMETRY`` and
``ORGTWIN_SCENARIOS``.
"""

from __future__ import annotations

import copy
import io
import json
import shutil
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from orgtwin.dashboard import folders
from orgtwin.fidelity import SCORECARD, read_scorecard, validate
from orgtwin.runs.synth import synth
from orgtwin.scenario import load_scenario
from tests.dashboard.harness import start, texts
from tests.fidelity.test_watch import drifted
from tests.learn.conftest import LEARNING_SPEC

VALIDATE = "orgtwin/dashboard/pages/validate.py"
EXPLORE = "orgtwin/dashboard/pages/explore.py"
COMPARE = "orgtwin/dashboard/pages/compare.py"
WATCH = "orgtwin/dashboard/pages/watch.py"
DAYS, SEEDS = 14, 2
WINDOW = (datetime(2026, 1, 12), datetime(2026, 1, 19))
"""The telemetry's last week (it runs from 2026-01-05 for 14 days)."""


@pytest.fixture(scope="module")
def slower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two weeks of telemetry of the learning organisation with ``api`` twice as slow."""
    root = tmp_path_factory.mktemp("validate-synth")
    return synth(load_scenario(drifted("latency")), days=DAYS, seed=1, out=root / "slow")


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slower: Path) -> tuple[Path, Path]:
    """A telemetry root holding ``acme`` and a scenarios folder holding the twin
    (``learning.yaml``) and another scenario (``other.yaml``, named ``other``)."""
    telemetry, scenarios = tmp_path / "telemetry", tmp_path / "scenarios"
    shutil.copytree(slower, telemetry / "acme")
    scenarios.mkdir()
    spec = copy.deepcopy(LEARNING_SPEC)
    (scenarios / "learning.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    other = spec | {"name": "other"}
    (scenarios / "other.yaml").write_text(yaml.safe_dump(other), encoding="utf-8")
    monkeypatch.setenv(folders.TELEMETRY_ENV, str(telemetry))
    monkeypatch.setenv(folders.SCENARIOS_ENV, str(scenarios))
    monkeypatch.setenv(folders.RESULTS_ENV, str(tmp_path / "results"))
    return telemetry, scenarios


def validated(*, seeds: int = SEEDS) -> AppTest:
    at = start(VALIDATE)
    at.selectbox(key="validate-folder").set_value("acme")
    at.selectbox(key="validate-scenario").set_value("learning.yaml")
    at.number_input(key="validate-seeds").set_value(seeds)
    at.button(key="validate-run").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    return at


def expected(dirs: tuple[Path, Path]):
    """The scorecard ``orgtwin validate`` computes for the same twin, window and seeds."""
    telemetry, scenarios = dirs
    return validate(scenarios / "learning.yaml", telemetry / "acme", start=WINDOW[0],
                    end=WINDOW[1], seeds=SEEDS)  # fmt: skip


def chart(at: AppTest, title: str) -> tuple[dict, dict[str, pl.DataFrame]]:
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        if str(spec.get("title", "")).startswith(title):
            data = {
                d.name: pl.read_ipc_stream(io.BytesIO(d.data.data)) for d in element.proto.datasets
            }
            return spec, data
    titles = [json.loads(e.proto.spec).get("title") for e in at.get("vega_lite_chart")]
    raise AssertionError(f"no chart titled {title!r}: {titles}")


# --------------------------------------------------------------------------- validate


def test_the_window_defaults_to_the_last_week(dirs):
    at = start(VALIDATE)
    at.selectbox(key="validate-folder").set_value("acme").run()
    assert at.date_input(key="validate-from-acme").value == date(2026, 1, 12)
    assert at.date_input(key="validate-to-acme").value == date(2026, 1, 19)
    assert at.number_input(key="validate-seeds").value == 5
    assert "Not validated against production telemetry yet" in texts(at.caption)


def test_a_slower_service_lowers_the_trust_and_its_lines_come_first(dirs):
    at = validated()
    card = expected(dirs)
    assert card.trust == "medium"  # a latency off, the rest as production
    assert "Trust: medium — the twin mirrors production in part" in texts(at.warning)
    counts = {m.label: m.value for m in at.metric}
    assert counts == {
        "Mirrors production": str(card.counts()["mirrors"]),
        "Biased (a consistent offset)": str(card.counts()["biased"]),
        "Off": str(card.counts()["off"]),
    }
    shown = texts(at.markdown)
    assert "Where the twin does not mirror production" in shown
    assert "api latency p50 ms: the twin is" in shown  # the line's sentence
    assert "2026-01-12 to 2026-01-19" in texts(at.caption)

    (table,) = [pl.from_pandas(d.value) for d in at.dataframe]
    assert table.height == card.lines.height
    assert {"what", "production", "the twin", "persistence", "unit", "verdict"} <= set(
        table.columns
    )
    ranks = [{"off": 0, "biased": 1, "mirrors": 2}[v] for v in table["verdict"]]
    assert ranks == sorted(ranks) and ranks[0] < 2  # the lines that do not mirror first
    api = table.filter(pl.col("what") == "latency p50 of service api").row(0, named=True)
    assert api["verdict"] != "mirrors" and api["unit"] == "ms"
    assert float(api["production"]) == pytest.approx(40.0, rel=0.05)  # a number, formatted
    assert float(api["the twin"]) == pytest.approx(20.0, rel=0.05)
    failure = table.filter(pl.col("what") == "change failure rate of the organisation")
    assert failure.row(0, named=True)["production"].endswith("%")
    assert all(isinstance(v, str) for v in table["production"])  # no raw floats

    at.selectbox(key="validate-kpi").set_value("latency p50 of service api (ms)").run()
    assert not at.exception, at.exception
    spec, data = chart(at, "Latency p50 of service api (ms): production, the twin")
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["area", "line"]
    (frame,) = [d for d in data.values() if "run" in d.columns]
    means = frame.group_by("run").agg(pl.col("mean").mean())
    by_run = dict(means.iter_rows())
    assert by_run["production"] == pytest.approx(40.0, rel=0.05)
    assert by_run[f"the twin ({SEEDS} seeds)"] == pytest.approx(20.0, rel=0.05)
    assert any(k.startswith("persistence (a week before)") for k in by_run)


def test_save_writes_the_scorecard_beside_the_twin(dirs):
    _, scenarios = dirs
    at = validated()
    at.button(key="validate-save").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    assert "Saved beside learning.yaml: scorecard.json, scorecard.md, scorecard.parquet" in (
        texts(at.success)
    )
    saved = read_scorecard(scenarios)
    card = expected(dirs)
    assert saved is not None and saved.scenario == "learning" and saved.trust == card.trust
    assert saved.lines.schema == pl.Schema(SCORECARD)
    assert not list(scenarios.glob(".*tmp"))  # written whole, nothing left behind
    badge = texts(at.caption)  # the page ran again: the badge shows what was saved
    assert f"trust {card.trust}] Validated against production 2026-01-12 to 2026-01-19" in badge


def test_a_window_without_telemetry_says_so(dirs):
    at = start(VALIDATE)
    at.selectbox(key="validate-folder").set_value("acme")
    at.selectbox(key="validate-scenario").set_value("learning.yaml")
    at.date_input(key="validate-from-acme").set_value(date(2025, 3, 1))
    at.date_input(key="validate-to-acme").set_value(date(2025, 3, 8))
    at.button(key="validate-run").click().run()
    assert not at.exception, at.exception
    assert (
        "The window 2025-03-01 to 2025-03-08 holds no telemetry of acme: it runs from "
        "2026-01-05 00:00 to 2026-01-18 23:00 (UTC)"
    ) in texts(at.error)
    assert not at.metric

    at.date_input(key="validate-to-acme").set_value(date(2025, 2, 1))
    at.button(key="validate-run").click().run()
    assert not at.exception, at.exception
    assert "The window must end after it starts." in texts(at.error)

    at.date_input(key="validate-from-acme").set_value(date(2025, 9, 1))
    at.date_input(key="validate-to-acme").set_value(date(2026, 1, 19))
    at.button(key="validate-run").click().run()
    assert not at.exception, at.exception
    assert "validate: the window is 140 days; at most 92 are replayed at once" in texts(at.error)
    assert not at.metric


def test_an_empty_telemetry_root_says_how_to_make_one(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(folders.TELEMETRY_ENV, str(tmp_path / "none"))
    monkeypatch.setenv(folders.SCENARIOS_ENV, str(tmp_path))
    at = start(VALIDATE)
    assert "No telemetry folders" in texts(at.info)


# --------------------------------------------------------------------------- the badge


def test_explore_compare_and_watch_show_the_saved_trust_level(dirs):
    _, scenarios = dirs
    card = expected(dirs)
    card.save(scenarios)
    said = f"trust {card.trust}] Validated against production 2026-01-12 to 2026-01-19"

    at = start()
    at.selectbox(key="explore-scenario").set_value("learning.yaml").run()
    assert not at.exception, at.exception
    assert said in texts(at.caption)
    assert f"({SEEDS} seeds): trust {card.trust} (" in texts(at.caption)
    at.selectbox(key="explore-scenario").set_value("other.yaml").run()
    assert said not in texts(at.caption)  # a scorecard of another scenario is not its own
    assert "Not validated against production telemetry yet" in texts(at.caption)

    at = start(COMPARE)
    at.multiselect(key="compare-scenarios").set_value(["learning.yaml", "other.yaml"])
    at.number_input(key="compare-days").set_value(7)
    at.number_input(key="compare-seeds").set_value(1)
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    captions = texts(at.caption)
    assert "**learning**: Validated against production 2026-01-12 to 2026-01-19" in captions
    assert ":orange-badge[:material/verified: trust medium] **learning**" in captions
    assert "**other**: Not validated against production telemetry yet" in captions

    at = start(WATCH)
    at.selectbox(key="watch-folder").set_value("acme")
    at.selectbox(key="watch-scenario").set_value("learning.yaml").run()
    assert said in texts(at.caption)


def test_no_scorecard_no_trust_level(dirs):
    _, scenarios = dirs
    at = start()
    at.selectbox(key="explore-scenario").set_value("learning.yaml").run()
    assert "Validated against production" not in texts(at.caption)
    assert "Not validated against production telemetry yet" in texts(at.caption)
    (scenarios / "scorecard.json").write_text("{not json", encoding="utf-8")  # unreadable
    at.selectbox(key="explore-scenario").set_value("other.yaml").run()
    at.selectbox(key="explore-scenario").set_value("learning.yaml").run()
    assert not at.exception, at.exception
    assert "Not validated against production telemetry yet" in texts(at.caption)
