"""The Learn page through Streamlit's ``AppTest``: learn a twin from a synthesised telemetry
folder, show its fit report, save it into the scenarios folder; refuse what it must.

The telemetry root and the scenarios folder are temporary folders pointed at with
``ORGTWIN_TELEMETRY`` and ``ORGTWIN_SCENARIOS``, as a user would.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from orgtwin.dashboard import charts, folders, telemetry_state
from orgtwin.runs.synth import synth
from orgtwin.scenario import load_scenario
from orgtwin.telemetry.schemas import ARRIVALS
from tests.dashboard.harness import start, texts

ROOT = Path(__file__).resolve().parents[2]
LEARN = "orgtwin/dashboard/pages/learn.py"
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


def learn(
    at: AppTest, folder: str = "acme", *, name: str = "acme-twin", drop: bool = False
) -> AppTest:
    at.selectbox(key="learn-folder").set_value(folder)
    at.selectbox(key="learn-base").set_value("small.yaml")
    at.text_input(key="learn-name").set_value(name)
    at.checkbox(key="learn-drop").set_value(drop)
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    return at


PEAK_UTC_HOUR = 12
"""The hour (UTC) at which the arrivals written by :func:`write_arrivals` peak."""


def write_arrivals(
    folder: Path, segments: tuple[str | None, ...] = ("free", "pro_us")
) -> pl.DataFrame:
    """An ``arrivals`` table over the requests' hours: per segment (its key; None: no key),
    10 an hour and 100 at 12:00 UTC every day."""
    hours = pl.read_parquet(folder / "requests.parquet")["time"].unique().sort()
    arrivals = pl.concat(
        pl.DataFrame({"time": hours}).with_columns(
            count=pl.when(pl.col("time").dt.hour() == PEAK_UTC_HOUR).then(100.0).otherwise(10.0),
            key=pl.lit(segment, dtype=pl.String),
        )
        for segment in segments
    ).cast(ARRIVALS)  # type: ignore[arg-type]
    arrivals.write_parquet(folder / "arrivals.parquet")
    return arrivals


def chart_layers(at: AppTest, title: str) -> list[pl.DataFrame]:
    """The data of each layer of the chart whose title starts with ``title``."""
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        if str(spec.get("title", "")).startswith(title):
            data = {
                d.name: pl.read_ipc_stream(io.BytesIO(d.data.data)) for d in element.proto.datasets
            }
            return [data[layer["data"]["name"]] for layer in spec["layer"]]
    raise AssertionError(f"no chart titled {title!r}")


def frames(at: AppTest) -> list[pl.DataFrame]:
    return [pl.from_pandas(d.value) for d in at.dataframe]


def test_learning_shows_the_data_read_and_latency_learned(learn_dirs):
    at = learn(start(LEARN))
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
    assert "kept from the prior" in shown  # the fits' notes, in words
    assert str(learn_dirs[0]) not in shown  # no internal paths
    assert at.get("vega_lite_chart"), "no latency chart"
    assert "hours of web-bff" in shown  # the first service's curve against its hours


def test_broken_telemetry_shows_the_problem_in_words(learn_dirs):
    telemetry, _ = learn_dirs
    broken = telemetry / "broken"
    shutil.copytree(telemetry / "acme", broken)
    requests = pl.read_parquet(broken / "requests.parquet")
    requests.drop("service").write_parquet(broken / "requests.parquet")
    at = learn(start(LEARN), "broken")
    assert not at.exception
    message = texts(at.error)
    assert "cannot be learned from" in message
    assert "missing column" in message and "service" in message
    assert "Traceback" not in message
    assert str(telemetry) not in message
    assert not [d for d in at.dataframe]


def test_save_writes_a_loadable_scenario_and_never_overwrites(learn_dirs):
    _, scenarios = learn_dirs
    at = learn(start(LEARN))
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
    again = learn(start(LEARN))
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
    at = start(LEARN)
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


def test_the_restore_times_and_demand_are_drawn_against_the_data(learn_dirs):
    telemetry, scenarios = learn_dirs
    write_arrivals(telemetry / "acme")
    at = learn(start(LEARN))
    assert not at.error, texts(at.error)
    titles = [e.label for e in at.expander]
    assert any(t.startswith("Time to detect and restore") for t in titles), titles
    assert any(t.startswith("Demand profile") for t in titles), titles

    incidents = pl.read_parquet(telemetry / "acme" / "incidents.parquet")
    web = incidents.filter(
        (pl.col("team") == "web") & (pl.col("cause") == "deploy") & pl.col("resolved").is_not_null()
    )
    assert web.height > 0  # the synthesised folder has restores to draw
    steps, observed, curve = chart_layers(at, "Time to restore of team web")
    assert observed.height == web.height  # a dot per incident
    assert steps.height == web.height + 1  # a step per incident, from (0, 0)
    assert observed["share"][-1] == pytest.approx(1.0)  # nothing left open: the ECDF ends at 1
    assert observed["share"].is_sorted() and curve["share"].is_sorted()
    hours = (web["resolved"] - web["detected"]).dt.total_seconds() / 3600
    assert sorted(observed["hours"]) == sorted(hours.ceil().clip(lower_bound=1.0))
    assert curve["share"].min() >= 0.0 and curve["share"].max() <= 1.0
    shown = texts(at.main.caption)
    assert f"{web.height} incidents of team web" in shown
    assert "the line is the learned distribution" in shown

    observed, profile = chart_layers(at, "Demand of free over the week")
    assert profile.height == 168
    assert profile["rate"].mean() == pytest.approx(1.0)
    assert observed["rate"].mean() == pytest.approx(1.0)
    at.selectbox(key="learn-demand-segment").set_value("pro_us").run()
    assert not at.exception, at.exception
    observed, profile = chart_layers(at, "Demand of pro_us over the week")
    per_segment = "in the segment's local time" in texts(at.main.caption)
    offset = load_scenario(scenarios / "small.yaml", root=scenarios).segments["pro_us"]
    shift = offset.utc_offset_hours if per_segment else 0
    peak = int(observed["hour_of_week"][int(np.argmax(observed["rate"].to_numpy()))])
    assert peak % 24 == (PEAK_UTC_HOUR + shift) % 24  # the arrivals in the segment's time
    if per_segment:  # learned in the same local time: the learned profile peaks there too
        learned_peak = int(np.argmax(profile["rate"].to_numpy()))
        assert learned_peak % 24 == (PEAK_UTC_HOUR + shift) % 24


def test_arrivals_without_a_segment_key_are_drawn_as_one_series(learn_dirs):
    telemetry, scenarios = learn_dirs
    write_arrivals(telemetry / "acme", segments=(None,))
    at = learn(start(LEARN))
    assert not at.error, texts(at.error)
    segments = at.selectbox(key="learn-demand-segment")
    assert set(segments.options) == {"free", "pro_us", "pro_eu", "enterprise"}
    segments.set_value("pro_us").run()
    assert not at.exception, at.exception
    observed, profile = chart_layers(at, "Demand of pro_us over the week")
    assert observed["rate"].mean() == pytest.approx(1.0)
    shown = texts(at.main.caption)
    assert "The grey line is all the arrivals" in shown
    per_segment = "in the segment's local time" in shown
    offset = load_scenario(scenarios / "small.yaml", root=scenarios).segments["pro_us"]
    shift = offset.utc_offset_hours if per_segment else 0
    peak = int(observed["hour_of_week"][int(np.argmax(observed["rate"].to_numpy()))])
    assert peak % 24 == (PEAK_UTC_HOUR + shift) % 24
    assert int(np.argmax(profile["rate"].to_numpy())) % 24 == peak % 24  # the same clock


def test_dropping_bad_rows_learns_and_counts_them(learn_dirs):
    telemetry, _ = learn_dirs
    bad = telemetry / "bad"
    shutil.copytree(telemetry / "acme", bad)
    requests = pl.read_parquet(bad / "requests.parquet")
    requests.with_columns(
        requests=pl.when(pl.int_range(pl.len()) == 0).then(-5.0).otherwise(pl.col("requests"))
    ).write_parquet(bad / "requests.parquet")

    refused = learn(start(LEARN), "bad")
    assert "cannot be learned from" in texts(refused.error)
    assert not [d for d in refused.dataframe]

    at = learn(start(LEARN), "bad", drop=True)
    assert not at.error, texts(at.error)
    data = next(t for t in frames(at) if "rows read" in t.columns)
    row = data.filter(pl.col("table") == "requests")
    assert row["rows dropped"].to_list() == [1]
    assert "negative" in row["why dropped"][0]
    assert "1 bad row dropped" in texts(at.main.caption)


def test_the_restore_and_demand_charts_are_valid_vega_lite_specs():
    observed = pl.DataFrame({"hours": [1.0, 2.0, 2.0, 5.0], "share": [0.25, 0.75, 0.75, 1.0]})
    curve = pl.DataFrame({"hours": [0.0, 2.0, 6.0], "share": [0.0, 0.5, 0.9]})
    chart = charts.distribution_against_data(observed, curve, x_title="hours", y_title="share")
    spec = chart.to_dict()  # validates against the Vega-Lite schema
    assert spec["autosize"] == {"type": "fit-x", "contains": "padding"}
    steps, dots, line = spec["layer"]
    assert steps["mark"]["interpolate"] == "step-after" and line["mark"]["type"] == "line"
    assert dots["mark"]["type"] == "circle"
    first = spec["datasets"][steps["data"]["name"]][0]
    assert (first["hours"], first["share"]) == (0.0, 0.0)  # the steps start at the origin
    assert len(spec["datasets"][dots["data"]["name"]]) == observed.height  # a dot per row

    week = np.arange(168)
    profile = pl.DataFrame({"hour_of_week": week, "rate": np.ones(168)})
    chart = charts.profile_against_observed(profile, profile, y_title="relative rate")
    spec = chart.to_dict()
    x = spec["layer"][0]["encoding"]["x"]
    assert x["title"].startswith("hour of the week (Mon 0h")
    assert x["axis"]["values"] == list(range(0, 168, 24))
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "line"]


def test_restore_shares_count_open_incidents_as_lasting_at_least_until_the_end():
    times = np.array([1.0, 2.0, 2.0, 3.0])
    assert telemetry_state.kaplan_meier_cdf(times, np.empty(0)).tolist() == [0.25, 0.75, 0.75, 1.0]
    # one still open after 2.5 hours: at risk at 1 and 2, not at 3
    shares = telemetry_state.kaplan_meier_cdf(np.array([1.0, 2.0, 3.0]), np.array([2.5]))
    assert shares.tolist() == pytest.approx([0.25, 0.5, 1.0])
    # one still open after 5 hours: the data cannot say all are restored by 3
    shares = telemetry_state.kaplan_meier_cdf(np.array([1.0, 2.0, 3.0]), np.array([5.0]))
    assert shares.tolist() == pytest.approx([0.25, 0.5, 0.75])
