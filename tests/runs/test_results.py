"""Run results (orgtwin/runs/results.py): gathering runs, saving and loading them safely.

:class:`RunSet` gathers :class:`RunResult` s in replicate order and refuses mixed or
duplicate ones; it saves its tables as Parquet files, atomically (a failed save leaves
no files, or the previous results), and loading names the file and columns that are
missing, corrupt or mistyped. ``describe`` gives each KPI's mean with a Student-t
interval across seeds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orgtwin.errors import ResultsError
from orgtwin.runs import metrics, results
from orgtwin.runs.results import RunResult, RunSet
from orgtwin.telemetry import schemas as tables

MakeRun = Callable[..., RunResult]


@pytest.fixture
def runset(make_run_result: MakeRun) -> RunSet:
    return RunSet.from_runs([make_run_result(1, 12), make_run_result(0, 11)])


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


def test_from_runs_rejects_mixed_or_duplicate_runs(make_run_result: MakeRun) -> None:
    with pytest.raises(ResultsError, match="at least one RunResult"):
        RunSet.from_runs([])
    with pytest.raises(ResultsError, match="must share one scenario"):
        RunSet.from_runs([make_run_result(0, 1), make_run_result(1, 2, scenario="other")])
    with pytest.raises(ResultsError, match=r"replicates must be distinct, got \[0, 0\]"):
        RunSet.from_runs([make_run_result(0, 1), make_run_result(0, 2)])


def test_a_run_without_every_event_table_is_rejected(make_run_result: MakeRun) -> None:
    run = make_run_result(0, 1)
    events = dict(run.events)
    del events["pages"]
    with pytest.raises(ResultsError, match="missing pages"):
        RunResult("base", 1, 0, run.start, 1, 0.999, 300.0, run.series, events)


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
    runset: RunSet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_run_result: MakeRun,
) -> None:
    old = RunSet.from_runs([make_run_result(0, 5)])
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


# --------------------------------------------------------------------------- describe


def test_describe_gives_a_t_interval_per_kpi(make_summary_set: Callable[..., RunSet]) -> None:
    described = make_summary_set("a", [1, 2, 3], users=[10.0, 20.0, 30.0]).describe()
    users = row(described, "users")
    assert users["mean"] == 20.0
    assert users["ci_high"] - users["mean"] == pytest.approx(4.303 * 10 / math.sqrt(3), abs=1e-2)
    assert described.height == len(metrics.KPIS)
