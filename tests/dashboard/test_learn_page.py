"""The Learn page through Streamlit's ``AppTest``: learn a twin from a synthesised telemetry
folder, show its fit report, save it into the scenarios folder; refuse what it must.

The telemetry root and the scenarios folder are temporary folders pointed at with
``ORGTWIN_TELEMETRY`` and ``ORGTWIN_SCENARIOS``, as a user would.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from orgtwin.dashboard import charts, folders
from orgtwin.runs.synth import synth
from orgtwin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
LEARN = "orgtwin/dashboard/pages/learn.py"
TIMEOUT = 300
SMALL = """\
extends: baseline.yaml
name: small
segments:
  free: {n_users: 200}
  pro_us: {n_users: 200}
  pro_eu: {n_users: 200}
  enterprise: {n_users: 200}
"""


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A telemetry folder synthesised from a small scenario (10 days, seed 1)."""
    scenarios = tmp_path_factory.mktemp("synth-scenarios")
    shutil.copy(ROOT / "scenarios" / "baseline.yaml", scenarios / "baseline.yaml")
    (scenarios / "small.yaml").write_text(SMALL)
    small = load_scenario(scenarios / "small.yaml", root=scenarios)
    return synth(small, days=10, seed=1, out=tmp_path_factory.mktemp("synth") / "acme")


@pytest.fixture
def learn_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, acme: Path) -> tuple[Path, Path]:
    """A telemetry root holding ``acme`` and a scenarios folder holding baseline and small."""
    telemetry, scenarios = tmp_path / "telemetry", tmp_path / "scenarios"
    shutil.copytree(acme, telemetry / "acme")
    scenarios.mkdir()
    shutil.copy(ROOT / "scenarios" / "baseline.yaml", scenarios / "baseline.yaml")
    (scenarios / "small.yaml").write_text(SMALL)
    monkeypatch.setenv(folders.TELEMETRY_ENV, str(telemetry))
    monkeypatch.setenv(folders.SCENARIOS_ENV, str(scenarios))
    monkeypatch.setenv(folders.RESULTS_ENV, str(tmp_path / "results"))
    return telemetry, scenarios


def start() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    at.switch_page(LEARN).run()
    assert not at.exception, at.exception
    return at


def learn(at: AppTest, folder: str = "acme", *, name: str = "acme-twin") -> AppTest:
    at.selectbox(key="learn-folder").set_value(folder)
    at.selectbox(key="learn-base").set_value("small.yaml")
    at.text_input(key="learn-name").set_value(name)
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def frames(at: AppTest) -> list[pl.DataFrame]:
    return [pl.from_pandas(d.value) for d in at.dataframe]


def test_learning_shows_the_data_read_and_latency_learned(learn_dirs):
    at = learn(start())
    assert not at.error, texts(at.error)
    tables = frames(at)
    data = next(t for t in tables if "rows read" in t.columns)
    assert dict(zip(data["table"], data["rows read"], strict=True))["requests"] > 0
    latency = next(t for t in tables if "parameter" in t.columns and "base_ms" in t["parameter"])
    base_ms = latency.filter(pl.col("parameter") == "base_ms")
    assert base_ms["source"].to_list() == ["learned"] * base_ms.height
    assert {"value", "95% interval", "unit", "method", "n"} <= set(latency.columns)
    titles = [e.label for e in at.expander]
    assert any(t.startswith("Latency against utilisation") for t in titles), titles
    main = at.main
    shown = texts(main.markdown) + texts(main.warning) + texts(main.caption)
    assert "the baseline." in shown  # the held-out sentences
    assert "no spans table" in shown  # a warning in words
    assert str(learn_dirs[0]) not in shown  # no internal paths
    assert at.get("vega_lite_chart"), "no latency chart"
    assert "hours of web-bff" in shown  # the first service's curve against its hours


def test_broken_telemetry_shows_the_problem_in_words(learn_dirs):
    telemetry, _ = learn_dirs
    broken = telemetry / "broken"
    shutil.copytree(telemetry / "acme", broken)
    requests = pl.read_parquet(broken / "requests.parquet")
    requests.drop("service").write_parquet(broken / "requests.parquet")
    at = learn(start(), "broken")
    assert not at.exception
    message = texts(at.error)
    assert "cannot be learned from" in message
    assert "missing column" in message and "service" in message
    assert "Traceback" not in message
    assert str(telemetry) not in message
    assert not [d for d in at.dataframe]


def test_save_writes_a_loadable_scenario_and_never_overwrites(learn_dirs):
    _, scenarios = learn_dirs
    at = learn(start())
    at.button(key="learn-save").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    saved = scenarios / "acme-twin.yaml"
    assert "Saved acme-twin.yaml" in texts(at.success)
    twin = load_scenario(saved, root=scenarios)
    assert twin.name == "acme-twin"
    assert (scenarios / "acme-twin.report.md").is_file()
    report = (scenarios / "acme-twin.report.json").read_text()
    assert '"telemetry": "acme"' in report
    assert "acme-twin.yaml" in folders.list_scenarios(scenarios)

    before = saved.read_bytes()
    again = learn(start())
    again.button(key="learn-save").click().run()
    assert not again.exception, again.exception
    assert "already" in texts(again.error)
    assert saved.read_bytes() == before
    assert sorted(p.name for p in scenarios.glob("acme-twin*")) == [
        "acme-twin.report.json",
        "acme-twin.report.md",
        "acme-twin.yaml",
    ]


def test_the_folder_list_never_offers_paths_outside_the_root(tmp_path: Path):
    root = tmp_path / "telemetry"
    (root / "acme").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "map.yaml").write_text("tables: {}\n")
    (root / "notes.txt").write_text("")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "escape.yaml").symlink_to(tmp_path / "secret.yaml")
    (tmp_path / "secret.yaml").write_text("")
    assert folders.list_telemetry(root) == (["acme"], ["map.yaml"])
    assert folders.list_telemetry(tmp_path / "missing") == ([], [])
    for name in ("..", "../elsewhere", "escape", str(outside), "/etc"):
        with pytest.raises(folders.FolderError):
            folders.telemetry_path(root, name)
    for name in ("escape.yaml", "../secret.yaml", "notes.txt", "acme"):
        with pytest.raises(folders.FolderError):
            folders.mapping_path(root, name)
    assert folders.telemetry_path(root, "acme") == (root / "acme").resolve()


def test_a_name_is_made_safe_and_a_file_is_claimed_once(tmp_path: Path):
    assert folders.safe_name("../../etc/passwd") == "etc_passwd"
    assert folders.safe_name("..") == "twin"
    path = folders.claim_file(tmp_path, "acme.yaml")
    assert path.is_file() and path.read_text() == ""
    with pytest.raises(folders.FolderError, match="already"):
        folders.claim_file(tmp_path, "acme.yaml")
    with pytest.raises(folders.FolderError):
        folders.claim_file(tmp_path, "../acme.yaml")


def test_an_empty_telemetry_root_says_how_to_make_one(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(folders.TELEMETRY_ENV, str(tmp_path / "none"))
    monkeypatch.setenv(folders.SCENARIOS_ENV, str(ROOT / "scenarios"))
    at = start()
    assert "No telemetry folders" in texts(at.info)


def test_the_latency_chart_is_a_valid_vega_lite_spec():
    points = pl.DataFrame({"cpu": [0.1, 0.3], "latency_p50_ms": [10.0, 14.0]})
    curve = pl.DataFrame({"cpu": [0.0, 0.5], "latency_p50_ms": [9.0, 18.0]})
    chart = charts.curve_against_points(
        points, curve, "cpu", "latency_p50_ms", x_title="utilisation", y_title="ms"
    )
    spec = chart.to_dict()  # validates against the Vega-Lite schema
    assert spec["autosize"] == {"type": "fit-x", "contains": "padding"}
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["circle", "line"]
