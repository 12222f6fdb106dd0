"""The dashboard (``app.py``) page by page, through Streamlit's ``AppTest``.

Each test sets widgets as a user would, runs the script and reads what the page shows:
KPI cards, captions, tables, errors. Runs are kept short (30 days, 2 seeds). The
scenarios and results folders are pointed at with ``ORGTWIN_SCENARIOS`` and
``ORGTWIN_RESULTS``, as a user would.
"""

from __future__ import annotations

import doctest
import re
import shutil
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

import orgtwin
from orgtwin.dashboard import charts, folders
from tests.dashboard.harness import start, texts

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
COMPARE = "orgtwin/dashboard/pages/compare.py"
SWEEPS = "orgtwin/dashboard/pages/sweeps.py"


def short_run(at: AppTest, prefix: str, *, days: int = 30, seeds: int = 2) -> None:
    at.number_input(key=f"{prefix}-days").set_value(days)
    at.number_input(key=f"{prefix}-seeds").set_value(seeds)


def metric(at: AppTest, label: str):
    found = [m for m in at.metric if m.label == label]
    assert found, f"no KPI card {label!r} among {[m.label for m in at.metric]}"
    return found[0]


# --------------------------------------------------------------------------- explore


def test_explore_price_increase_raises_revenue_and_draws_the_ripple(results_dir: Path):
    at = start()
    assert at.selectbox(key="explore-scenario").value == "baseline.yaml"
    at.selectbox(key="explore-scenario").set_value("price_increase.yaml").run()
    short_run(at, "explore")
    at.button(key="explore-run").click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)

    revenue = metric(at, "Revenue")
    assert revenue.delta.startswith("+$"), revenue.delta  # the Pro plan costs more
    assert revenue.value.startswith("$")
    assert metric(at, "Active users").delta.startswith("-")  # and loses some users
    captions = texts(at.caption)
    assert "price_increase vs baseline · 2 seeds × 30 days · base seed 7" in captions

    sc = orgtwin.load_scenario(SCENARIOS / "price_increase.yaml")
    n_nodes = len(sc.segments) + len(sc.teams) + len(sc.services) + len(sc.vendors)
    assert n_nodes == 32
    assert re.search(rf"Ripple graph: {n_nodes} nodes, \d+ links", captions), captions
    chain = texts(at.markdown)  # the mechanism that carried the change, in words
    assert "**How the change travelled:** price \\$12 → \\$15 → " in chain, chain
    assert "revenue +" in chain and "sign-ups" in chain
    downloads = [d.proto.label for d in at.get("download_button")]
    assert {"Comparison (CSV)", "Comparison (Parquet)", "Ripple chart (HTML)"} <= set(downloads)

    drill = at.selectbox(key="explore-ripple-drill")  # what moved at one link: by segment
    assert drill.value is None
    assert any(o.startswith("revenue +") and o.endswith("(in the chain)") for o in drill.options)
    drill.set_value("revenue_usd").run()
    assert not at.exception and not at.error, texts(at.error)
    shown = texts(at.markdown)
    assert "**Revenue, by segment.** revenue: 2 of " in shown, shown
    assert "pro_us +" in shown and "pro_eu +" in shown


def test_explore_a_lever_moves_the_kpis(results_dir: Path):
    """Baseline: double the US Pro price; the page says which lever moved."""
    at = start()
    short_run(at, "explore", days=14)
    price = next(s for s in at.slider if "pro_us" in s.label)
    price.set_value(24.0)  # double the US Pro price
    at.button(key="explore-run").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert metric(at, "Revenue").delta.startswith("+$")
    line = "baseline as set vs baseline · 2 seeds × 14 days · base seed 7"
    assert f"{line} · Price (segment pro_us): 24 USD/month" in texts(at.caption)


def test_a_broken_scenario_shows_the_field_path_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    shutil.copy(SCENARIOS / "baseline.yaml", folder / "baseline.yaml")
    (folder / "broken.yaml").write_text(
        "extends: baseline.yaml\nname: broken\nteams:\n  platform: {oncall_size: 0}\n"
    )
    monkeypatch.setenv(folders.SCENARIOS_ENV, str(folder))
    monkeypatch.setenv(folders.RESULTS_ENV, str(tmp_path / "results"))
    at = start()
    at.selectbox(key="explore-scenario").set_value("broken.yaml").run()
    assert not at.exception, at.exception
    shown = texts(at.error)
    assert "broken.yaml" in shown
    assert "`teams.platform.oncall_size` must be an integer >= 1, got 0" in shown
    assert "Traceback" not in shown
    assert "explore-run" not in {b.key for b in at.button}  # nothing to run


def test_a_run_that_cannot_start_says_why(results_dir: Path):
    """price_increase starts on day 14: a 10-day run is refused with the field path."""
    at = start()
    at.selectbox(key="explore-scenario").set_value("price_increase.yaml").run()
    short_run(at, "explore", days=10)
    at.button(key="explore-run").click().run()
    assert not at.exception, at.exception
    shown = texts(at.error)  # beside the start-day control, and on Run
    assert "must be before the end of the run (day 10), got 14" in shown, shown
    assert "Run is blocked until these are fixed: Starts on day" in shown
    assert not at.metric


def test_days_and_seeds_are_bounded_and_say_so(results_dir: Path):
    at = start()
    days, seeds = at.number_input(key="explore-days"), at.number_input(key="explore-seeds")
    assert (days.min, days.max, seeds.min, seeds.max) == (
        7,
        orgtwin.explore.MAX_DAYS,
        1,
        orgtwin.explore.MAX_SEEDS,
    )
    assert f"7 to {orgtwin.explore.MAX_DAYS}" in days.help
    assert f"1 to {orgtwin.explore.MAX_SEEDS}" in seeds.help


# --------------------------------------------------------------------------- compare


def test_compare_two_scenarios_side_by_side(results_dir: Path):
    at = start(COMPARE)
    at.multiselect(key="compare-scenarios").set_value(["baseline.yaml", "price_increase.yaml"])
    short_run(at, "compare")
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    table = at.dataframe[0].value
    assert {"baseline", "price_increase", "Δ price_increase"} <= set(table.columns)
    revenue = table[table["KPI"] == "Revenue"].iloc[0]
    assert revenue["Δ price_increase"].startswith("+$")
    assert "baseline, price_increase · 2 seeds × 30 days" in texts(at.caption)


def test_compare_needs_two_scenarios(results_dir: Path):
    at = start(COMPARE)
    at.multiselect(key="compare-scenarios").set_value(["baseline.yaml"])
    at.form_submit_button[0].click().run()
    assert not at.exception
    assert "Pick 2 to 4 scenarios, got 1" in texts(at.error)
    assert not at.dataframe


# --------------------------------------------------------------------------- sweeps


def test_sweeps_open_a_results_folder(small_sweep: Path):
    at = start(SWEEPS)
    assert at.selectbox(key="sweeps-folder").value == small_sweep.name
    assert not at.exception, at.exception
    shown = texts(at.caption)
    assert "baseline · 2 seeds × 3 days · 6 points, 12 of 12 runs saved" in shown
    assert "6 cells" in shown  # the heatmap: 3 on-call sizes × 2 spot shares
    importance = next(d.value for d in at.dataframe if "importance" in d.value.columns)
    assert set(importance["lever"]) == {"teams.*.oncall_size", "services.*.spot_share"}
    assert at.success  # the discovery's sentence
    # the default condition splits the runs: it holds in some and not in others
    condition = at.text_input(key="sweeps-condition").value
    runs = orgtwin.SweepResult.load(small_sweep).runs
    held = runs.filter(orgtwin.sweeps.parse_condition(condition)).height
    assert 0 < held < runs.height, condition

    at.text_input(key="sweeps-condition").set_value("availability_pct << 2").run()
    assert not at.exception, at.exception
    assert "condition must be clauses '<kpi> <op> <number>'" in texts(at.error)


def test_sweeps_with_no_results_say_how_to_make_some(results_dir: Path):
    at = start(SWEEPS)
    assert not at.exception
    assert "No sweep results in" in texts(at.info)


def test_sweeps_launch_a_small_sweep_and_open_it(results_dir: Path):
    at = start(SWEEPS)
    at.selectbox(key="launch-scenario").set_value("baseline.yaml")
    at.text_input(key="launch-lever-1").set_value("teams.*.oncall_size=2..3")
    at.text_input(key="launch-lever-2").set_value("")
    at.number_input(key="launch-seeds").set_value(1)
    at.number_input(key="launch-days").set_value(7)
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    made = folders.list_sweeps(results_dir)
    assert len(made) == 1 and made[0].startswith("baseline-")
    assert "Sweep saved in" in texts(at.success)
    assert at.selectbox(key="sweeps-folder").value == made[0]
    assert "2 of 2 runs saved" in texts(at.caption)


def test_sweeps_refuse_a_launch_over_the_bound(results_dir: Path):
    at = start(SWEEPS)
    at.text_input(key="launch-lever-1").set_value("teams.*.oncall_size=1..4")
    at.text_input(key="launch-lever-2").set_value("services.*.spot_share=0..0.99:100")
    at.form_submit_button[0].click().run()
    assert not at.exception
    assert "at most 500 runs, got 400 points × 2 seeds = 800" in texts(at.error)
    assert not folders.list_sweeps(results_dir)


@pytest.mark.parametrize(
    "lever", ["services.*.spot_share=0..0.9:30000000", "services.*.spot_share=0..0.9:2000000000"]
)
def test_a_huge_lever_typed_in_is_refused_at_once(results_dir: Path, lever: str):
    """It used to build every level before counting them: 148 s of a server thread (the
    test app's 3 s limit per run fails the test if it still does)."""
    at = start(SWEEPS)
    at.text_input(key="launch-lever-1").set_value(lever)
    at.form_submit_button[0].click().run()
    assert not at.exception
    shown = texts(at.error)
    assert "`services.*.spot_share` count must be between 1 and 1,000,000" in shown, shown
    assert not folders.list_sweeps(results_dir)


def test_sweeps_launch_reports_a_bad_lever(results_dir: Path):
    at = start(SWEEPS)
    at.text_input(key="launch-lever-1").set_value("teams.*.oncal_size=2..4")
    at.form_submit_button[0].click().run()
    assert not at.exception
    shown = texts(at.error)
    assert "A lever does not fit the scenario" in shown and "oncall_size" in shown, shown
    assert not folders.list_sweeps(results_dir)


# --------------------------------------------------------------------------- pieces


def test_folders_refuse_paths_outside_them(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("name: a\n")
    (tmp_path / "notes.txt").write_text("not a scenario\n")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.yaml"
    outside.write_text("name: x\n")
    (tmp_path / "link.yaml").symlink_to(outside)
    assert folders.list_scenarios(tmp_path) == ["a.yaml"]
    for name in ("../" + outside.name, str(outside), "link.yaml", "notes.txt"):
        with pytest.raises(folders.FolderError):
            folders.scenario_path(tmp_path, name)
    with pytest.raises(folders.FolderError):
        folders.sweep_folder(tmp_path, "..")
    assert doctest.testmod(folders, optionflags=doctest.ELLIPSIS).failed == 0


def test_two_launches_in_the_same_second_get_two_folders(tmp_path: Path):
    when = datetime(2026, 1, 5, 9, 30, 0)
    claimed = [folders.claim_sweep_folder(tmp_path / "results", "a b.yaml", when) for _ in "xyz"]
    assert [p.name for p in claimed] == [
        "a_b-20260105-093000",
        "a_b-20260105-093000-2",
        "a_b-20260105-093000-3",
    ]
    assert all(p.is_dir() and not any(p.iterdir()) for p in claimed)


def test_ripple_layout_puts_each_kind_in_its_column():
    nodes = pl.DataFrame(
        {
            "id": ["team:web", "segment:free", "service:api", "service:db", "vendor:s"],
            "kind": ["team", "segment", "service", "service", "vendor"],
            "name": ["web", "free", "api", "db", "s"],
        }
    )
    edges = pl.DataFrame(
        {
            "source": ["segment:free", "service:api", "team:web", "service:api"],
            "target": ["service:api", "service:db", "service:api", "service:gone"],
        }
    )
    placed, lines = charts.ripple_layout(nodes, edges)
    columns = dict(zip(placed["name"], placed["x"], strict=True))
    assert columns == {"free": 0.0, "api": 1.0, "db": 1.0, "s": 2.0, "web": 3.0}
    assert placed.filter(pl.col("kind") == "service")["y"].to_list() == [0.25, 0.75]
    assert lines.height == 3  # the edge to an unknown node is dropped


def test_every_chart_is_a_valid_vega_lite_spec():
    band = pl.DataFrame(
        {"day": [0, 1, 0, 1], "mean": [5.0, 6.0, 5.0, 7.0], "low": [-1.0, 5.0, 4.0, 6.0],
         "high": [9.0, 7.0, 6.0, 8.0], "run": ["base", "base", "change", "change"]}
    )  # fmt: skip
    means = pl.DataFrame(
        {"scenario": ["a", "b"], "mean": [1.0, 2.0], "ci_low": [0.5, 1.5],
         "ci_high": [1.5, 2.5], "unit": ["users", "users"]}
    )  # fmt: skip
    cells = pl.DataFrame({"x": [2, 2, 3, 3], "y": [0.0, 0.5, 0.0, 0.5], "value": [1.0, 2, 3, 4]})
    importance = pl.DataFrame(
        {"lever": ["teams.*.oncall_size"], "importance_mean": [0.1], "importance_std": [0.01]}
    )
    nodes = pl.DataFrame(
        {"id": ["segment:a", "service:b"], "kind": ["segment", "service"], "name": ["a", "b"],
         "metric": ["churned", "error_rate"], "base": [1.0, 0.1], "change": [2.0, 0.1],
         "rel_change": [1.0, 0.0], "impact": [-0.9, 0.0], "significant": [True, False]}
    )  # fmt: skip
    edges = pl.DataFrame({"source": ["segment:a"], "target": ["service:b"], "kind": ["uses"]})
    specs = [
        charts.band_chart(band, "Users", "users"),
        charts.kpi_interval_chart(means),
        charts.heatmap(cells, "teams.*.oncall_size", "services.*.spot_share", "pages"),
        charts.importance_chart(importance),
        charts.ripple_chart(nodes, edges),
    ]
    for chart in specs:
        spec = chart.to_dict()  # validates against the Vega-Lite schema
        assert spec["autosize"] == {"type": "fit-x", "contains": "padding"}
    band_data = specs[0].to_dict()["datasets"]
    assert min(row["low"] for rows in band_data.values() for row in rows) == 0.0  # cut at 0
