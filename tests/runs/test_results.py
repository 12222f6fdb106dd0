"""Run sets: gathering runs, saving and loading them safely, comparing two, and reporting."""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orgtwin.errors import ResultsError
from orgtwin.runs import comparison, metrics, results
from orgtwin.runs.comparison import compare
from orgtwin.runs.report import format_comparison, format_summary
from orgtwin.runs.results import RunResult, RunSet
from orgtwin.telemetry import schemas as tables
from orgtwin.units import format_delta, format_value

START = datetime(2026, 1, 5)


def make_run(replicate: int, seed: int, *, scenario: str = "base", days: int = 1) -> RunResult:
    """A small but complete run whose numbers depend on the seed."""
    ticks = list(range(4))
    kinds = [("segment", "pro", "active_users"), ("feature", "search", "requests")]
    kinds += [("feature", "search", "errors"), ("team", "core", "oncall_size")]
    series = pl.DataFrame(
        [
            (tick, kind, entity, metric, float(seed + tick + 10 * index))
            for index, (kind, entity, metric) in enumerate(kinds)
            for tick in ticks
        ],
        schema=tables.SERIES,
        orient="row",
    )
    events = {name: tables.empty(name) for name in tables.EVENT_TABLES}
    events["deploys"] = pl.DataFrame(
        {
            "time": [START, START + timedelta(hours=seed % 5 + 1)],
            "service": ["api", "web"],
            "team": ["core", "core"],
            "batch_size": [1, seed % 4 + 1],
            "failed": [False, seed % 2 == 0],
            "lead_time_hours": [2.0, 3.5 + seed],
        },
        schema=tables.DEPLOYS,
    )
    events["incidents"] = pl.DataFrame(
        {
            "incident_id": [1, 2],
            "service": ["api", "web"],
            "team": ["core", "core"],
            "severity": [1, 3],
            "cause": ["deploy", "vendor"],
            "started": [START, START + timedelta(hours=2)],
            "detected": [START, START + timedelta(hours=2)],
            "resolved": [START + timedelta(hours=seed % 3 + 1), None],
        },
        schema=tables.INCIDENTS,
    )
    return RunResult(scenario, seed, replicate, START, days, 0.999, 300.0, series, events)


@pytest.fixture
def runset() -> RunSet:
    return RunSet.from_runs([make_run(1, 12), make_run(0, 11)])


def summary_set(scenario: str, seeds: list[int], **kpis: list[float]) -> RunSet:
    """A set holding only a summary: the named KPIs as given, every other KPI 1.0."""
    n = len(seeds)
    columns: dict[str, list[object]] = {
        "run_id": [f"{scenario}/{i}" for i in range(n)],
        "scenario": [scenario] * n,
        "replicate": list(range(n)),
        "seed": seeds,
        "days": [30] * n,
    }
    columns |= {kpi: list(kpis.get(kpi, [1.0] * n)) for kpi in metrics.KPIS}
    summary = pl.DataFrame(columns, schema=results.SUMMARY)
    return RunSet(scenario, 30, summary, pl.DataFrame(schema=tables.SERIES), {})


def row(frame: pl.DataFrame, kpi: str) -> dict[str, object]:
    return frame.filter(pl.col("kpi") == kpi).row(0, named=True)


# --------------------------------------------------------------------------- gathering


def test_from_runs_orders_by_replicate_and_keys_every_row(runset: RunSet) -> None:
    assert runset.scenario == "base"
    assert runset.days == 1
    assert runset.seeds == [11, 12]
    assert runset.summary.columns == list(results.SUMMARY)
    assert runset.summary["run_id"].to_list() == ["base/0", "base/1"]
    assert runset.summary["users"].to_list() == [11.0 + 3, 12.0 + 3]
    assert runset.series.columns == ["run_id", "seed", *tables.SERIES]
    assert runset.series.height == 2 * 16
    assert set(runset.tables) == set(tables.EVENT_TABLES)
    deploys = runset.events("deploys")
    assert deploys.columns == ["run_id", "seed", *tables.DEPLOYS]
    assert deploys.group_by("seed").len().sort("seed")["len"].to_list() == [2, 2]


def test_from_runs_rejects_mixed_or_duplicate_runs() -> None:
    with pytest.raises(ResultsError, match="at least one RunResult"):
        RunSet.from_runs([])
    with pytest.raises(ResultsError, match="must share one scenario"):
        RunSet.from_runs([make_run(0, 1), make_run(1, 2, scenario="other")])
    with pytest.raises(ResultsError, match=r"replicates must be distinct, got \[0, 0\]"):
        RunSet.from_runs([make_run(0, 1), make_run(0, 2)])


def test_a_run_without_every_event_table_is_rejected() -> None:
    run = make_run(0, 1)
    events = dict(run.events)
    del events["pages"]
    with pytest.raises(ResultsError, match="missing pages"):
        RunResult("base", 1, 0, START, 1, 0.999, 300.0, run.series, events)


def test_events_names_the_tables_it_knows(runset: RunSet) -> None:
    with pytest.raises(ResultsError, match="did you mean 'deploys'"):
        runset.events("deploy")


# --------------------------------------------------------------------------- files


def test_save_and_load_round_trip(runset: RunSet, tmp_path: Path) -> None:
    runset.save(tmp_path / "out")
    loaded = RunSet.load(tmp_path / "out")

    assert (loaded.scenario, loaded.days) == (runset.scenario, runset.days)
    assert_frame_equal(loaded.summary, runset.summary)
    assert_frame_equal(loaded.series, runset.series)
    assert loaded.tables.keys() == runset.tables.keys()
    for name, frame in runset.tables.items():
        assert_frame_equal(loaded.tables[name], frame)
    assert loaded.events("incidents")["resolved"].null_count() == 2


def test_save_leaves_exactly_the_result_files(runset: RunSet, tmp_path: Path) -> None:
    runset.save(tmp_path)
    expected = {"summary.parquet", "series.parquet"}
    expected |= {f"{name}.parquet" for name in tables.EVENT_TABLES}
    assert set(os.listdir(tmp_path)) == expected


def failing_writer(monkeypatch: pytest.MonkeyPatch, *, fail_at: int) -> None:
    """Make the ``fail_at``-th file write raise after writing half a file."""
    calls = []

    def write(frame: pl.DataFrame, path: Path) -> None:
        calls.append(path)
        if len(calls) == fail_at:
            path.write_bytes(b"PAR1 half a file")
            raise OSError("disk full")
        frame.write_parquet(path)

    monkeypatch.setattr(results, "_write_frame", write)


def test_a_failed_save_into_a_new_directory_leaves_no_files(
    runset: RunSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_writer(monkeypatch, fail_at=2)
    with pytest.raises(OSError, match="disk full"):
        runset.save(tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_failed_save_keeps_the_previous_results(
    runset: RunSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = RunSet.from_runs([make_run(0, 5)])
    old.save(tmp_path)
    before = sorted(os.listdir(tmp_path))

    failing_writer(monkeypatch, fail_at=len(tables.EVENT_TABLES) + 2)  # the summary
    with pytest.raises(OSError, match="disk full"):
        runset.save(tmp_path)

    assert sorted(os.listdir(tmp_path)) == before
    loaded = RunSet.load(tmp_path)
    assert_frame_equal(loaded.summary, old.summary)
    assert_frame_equal(loaded.series, old.series)


def test_load_from_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"nowhere: must be a directory written by RunSet"):
        RunSet.load(tmp_path / "nowhere")


def test_load_names_a_missing_file_and_its_columns(runset: RunSet, tmp_path: Path) -> None:
    runset.save(tmp_path)
    (tmp_path / "pages.parquet").unlink()
    with pytest.raises(ResultsError, match=r"pages\.parquet: must be a Parquet file") as info:
        RunSet.load(tmp_path)
    assert "run_id, seed, time, team, off_hours, incident_id" in str(info.value)
    assert "no such file" in str(info.value)


def test_load_names_a_corrupt_file(runset: RunSet, tmp_path: Path) -> None:
    runset.save(tmp_path)
    (tmp_path / "series.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ResultsError, match=r"series\.parquet: .* unreadable file"):
        RunSet.load(tmp_path)


def test_load_names_missing_and_mistyped_columns(runset: RunSet, tmp_path: Path) -> None:
    runset.save(tmp_path)
    runset.summary.drop("lead_time_hours").write_parquet(tmp_path / "summary.parquet")
    with pytest.raises(ResultsError, match=r"summary\.parquet: .* missing lead_time_hours"):
        RunSet.load(tmp_path)
    runset.summary.with_columns(pl.col("seed").cast(pl.String)).write_parquet(
        tmp_path / "summary.parquet"
    )
    with pytest.raises(ResultsError, match=r"summary\.parquet: columns must be .* seed is String"):
        RunSet.load(tmp_path)


# --------------------------------------------------------------------------- compare

SEEDS = list(range(100, 108))
RNG = np.random.default_rng(42)
BASE_REVENUE = RNG.normal(1000.0, 50.0, len(SEEDS))  # seeds differ a lot
NOISE = RNG.normal(0.0, 0.5, len(SEEDS))  # the change moves each seed by 5 ± 0.5


def test_paired_interval_for_a_known_shift() -> None:
    base = summary_set("base", SEEDS, revenue_usd=list(BASE_REVENUE))
    change = summary_set("change", SEEDS[::-1], revenue_usd=list(BASE_REVENUE[::-1] + 5 + NOISE))
    result = row(compare(base, change, kpis=["revenue_usd"]), "revenue_usd")

    differences = 5 + NOISE[::-1]  # matched by seed, not by position
    half = 2.3646 * differences.std(ddof=1) / math.sqrt(8)
    assert result["method"] == "paired"
    assert result["n"] == 8
    assert result["delta"] == pytest.approx(differences.mean())
    assert result["ci_low"] == pytest.approx(differences.mean() - half, abs=1e-3)
    assert result["ci_high"] == pytest.approx(differences.mean() + half, abs=1e-3)
    assert result["ci_low"] < 5 < result["ci_high"]
    assert result["significant"] is True
    assert (result["direction"], result["better"]) == ("up", True)


def test_welch_interval_when_seeds_differ() -> None:
    base = summary_set("base", [1, 2, 3, 4], lead_time_hours=[1.0, 2.0, 3.0, 4.0])
    change = summary_set("change", [5, 6, 7, 8], lead_time_hours=[11.0, 12.0, 13.0, 14.0])
    result = row(compare(base, change), "lead_time_hours")

    # equal sizes and variances: Welch's df is 2(n - 1) = 6, t(0.975, 6) = 2.447
    half = 2.4469 * math.sqrt(2 * (5 / 3) / 4)
    assert result["method"] == "welch"
    assert result["delta"] == 10.0
    assert result["ci_low"] == pytest.approx(10 - half, abs=1e-3)
    assert result["ci_high"] == pytest.approx(10 + half, abs=1e-3)
    assert result["rel_delta"] == pytest.approx(10 / 2.5)
    assert (result["direction"], result["better"], result["significant"]) == ("up", False, True)


def test_pairing_finds_what_welch_cannot() -> None:
    base = summary_set("base", SEEDS, revenue_usd=list(BASE_REVENUE))
    change_revenue = list(BASE_REVENUE + 5 + NOISE)
    paired = compare(base, summary_set("c", SEEDS, revenue_usd=change_revenue))
    unpaired = compare(base, summary_set("c", [s + 1 for s in SEEDS], revenue_usd=change_revenue))
    assert row(paired, "revenue_usd")["significant"] is True
    assert row(unpaired, "revenue_usd")["significant"] is False


def test_constant_kpi_is_flat_and_not_significant() -> None:
    result = row(compare(summary_set("a", SEEDS), summary_set("b", SEEDS)), "users")
    assert result["direction"] == "flat"
    assert result["delta"] == 0.0
    assert result["significant"] is False
    assert result["better"] is None


def test_relative_change_is_null_from_zero() -> None:
    base = summary_set("base", [1, 2, 3], incidents=[0.0, 0.0, 0.0])
    change = summary_set("change", [1, 2, 3], incidents=[1.0, 2.0, 3.0])
    result = row(compare(base, change), "incidents")
    assert result["rel_delta"] is None
    assert result["delta"] == 2.0
    assert result["better"] is False


def test_one_seed_has_no_interval() -> None:
    base = summary_set("base", [1], margin_usd=[10.0])
    change = summary_set("change", [1], margin_usd=[20.0])
    result = row(compare(base, change), "margin_usd")
    assert result["n"] == 1
    assert (result["ci_low"], result["ci_high"], result["significant"]) == (None, None, False)
    assert result["direction"] == "up"


def test_nan_runs_are_left_out_of_that_kpi() -> None:
    base = summary_set("base", [1, 2, 3], mttr_hours=[1.0, math.nan, 3.0])
    change = summary_set("change", [1, 2, 3], mttr_hours=[2.0, 5.0, math.nan])
    result = row(compare(base, change), "mttr_hours")
    assert (result["n"], result["base_mean"], result["change_mean"]) == (1, 1.0, 2.0)
    assert result["ci_low"] is None


def test_a_kpi_undefined_in_every_run_compares_as_null() -> None:
    base = summary_set("base", [1, 2], mttr_hours=[math.nan, math.nan])
    result = row(compare(base, summary_set("change", [1, 2])), "mttr_hours")
    assert (result["n"], result["delta"], result["direction"]) == (0, None, None)
    assert result["significant"] is False


def test_compare_schema_and_kpi_selection() -> None:
    table = compare(summary_set("a", [1, 2]), summary_set("b", [1, 2]), kpis=["users", "pages"])
    assert table.schema == pl.Schema(comparison.COMPARISON)
    assert table["kpi"].to_list() == ["users", "pages"]
    assert table["unit"].to_list() == ["users", "pages"]


def test_compare_rejects_unknown_kpis_and_bad_confidence() -> None:
    a, b = summary_set("a", [1, 2]), summary_set("b", [1, 2])
    with pytest.raises(ResultsError, match=r"got 'lead_time' .did you mean 'lead_time_hours'"):
        compare(a, b, kpis=["lead_time"])
    with pytest.raises(ResultsError, match=r"confidence must be between 0 and 1 .*, got 95"):
        compare(a, b, confidence=95)


def test_describe_gives_a_t_interval_per_kpi() -> None:
    described = summary_set("a", [1, 2, 3], users=[10.0, 20.0, 30.0]).describe()
    users = row(described, "users")
    assert users["mean"] == 20.0
    assert users["ci_high"] - users["mean"] == pytest.approx(4.303 * 10 / math.sqrt(3), abs=1e-2)
    assert described.height == len(metrics.KPIS)


# --------------------------------------------------------------------------- report


def test_format_comparison_tells_what_moved() -> None:
    base = summary_set("base", [1, 2, 3, 4], lead_time_hours=[6.0, 6.2, 6.4, 6.2])
    change = summary_set("cab", [1, 2, 3, 4], lead_time_hours=[25.0, 25.5, 25.6, 25.5])
    table = compare(base, change)
    text = format_comparison(table, base_name="base", change_name="cab", seeds=4, days=30)

    assert text.startswith("cab vs base: 4 seeds x 30 days, paired by seed")
    assert "What moved beyond noise:" in text
    moved = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(moved) == 1
    assert moved[0].startswith("- Lead time for changes rose 310% (from 6.2 h to 25.4 h; 95% CI +")
    assert moved[0].endswith(" h): worse.")
    kpi_lines = [line for line in text.splitlines() if line.startswith(tuple(metrics.KPIS))]
    assert len(kpi_lines) == len(metrics.KPIS)
    assert len({line.index(" h ") for line in kpi_lines if " h " in line}) == 1  # aligned


def test_format_comparison_says_when_nothing_moved() -> None:
    table = compare(summary_set("a", [1]), summary_set("b", [1]))
    text = format_comparison(table, base_name="a", change_name="b", seeds=1, days=30)
    assert "- Nothing: no KPI's 95% interval excludes zero." in text
    assert "fewer than two seeds" in text


def test_format_summary_lists_every_kpi(runset: RunSet) -> None:
    text = format_summary(runset)
    assert text.splitlines()[0] == "base: 2 seeds x 1 day"
    assert sum(line.startswith(tuple(metrics.KPIS)) for line in text.splitlines()) == len(
        metrics.KPIS
    )


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1234567.8, "users", "1,234,568"),
        (99.95123, "%", "99.95%"),
        (12345.6, "USD", "$12,346"),
        (-12345.6, "USD", "-$12,346"),
        (12.345, "USD", "$12.35"),
        (6.24, "h", "6.2"),
        (0.4219, "0-1", "0.42"),
        (math.nan, "h", "n/a"),
        (None, "h", "n/a"),
    ],
)
def test_format_value(value: float | None, unit: str, expected: str) -> None:
    assert format_value(value, unit) == expected


def test_format_delta() -> None:
    assert format_delta(-0.512, "%") == "-0.51 pp"
    assert format_delta(-0.0412, "%") == "-0.041 pp"
    assert format_delta(0.0, "%") == "0 pp"
    assert format_delta(1200.0, "USD") == "+$1,200"
    assert format_delta(19.24, "h") == "+19.2"
