"""Run results (orgtwin/runs/results.py): gathering runs, saving and loading them safely.

:class:`RunSet` gathers :class:`RunResult` s in replicate order and refuses mixed or
duplicate ones; it saves its tables as Parquet files, atomically (a failed save leaves
no files, or the previous results), and loading names the file and columns that are
missing, corrupt or mistyped. A results folder is written as a whole, a run and its base
together: earlier results are replaced only when asked, a folder holding anything orgtwin
did not write is never touched, and what a killed write left behind goes on the next one.
``describe`` gives each KPI's mean with a Student-t interval across seeds.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from orgtwin.errors import ResultsError
from orgtwin.runs import results
from orgtwin.runs.results import RunResult, RunSet, check_results_folder, save_results
from orgtwin.telemetry import schemas as tables
from orgtwin.world.kpis import KPIS

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
    with pytest.raises(ResultsError, match="must be a folder orgtwin can write in, got disk full"):
        runset.save(tmp_path / "out")
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
    with pytest.raises(ResultsError, match="disk full; the earlier contents are kept"):
        runset.save(tmp_path, overwrite=True)

    assert sorted(os.listdir(tmp_path)) == before
    beside = [name for name in os.listdir(tmp_path.parent) if name.startswith(f".{tmp_path.name}")]
    assert beside == []  # no temporary folder left beside it
    loaded = RunSet.load(tmp_path)
    assert_frame_equal(loaded.summary, old.summary)
    assert_frame_equal(loaded.series, old.series)


# --------------------------------------------------------------------------- folders


def listing(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> contents), hidden ones included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def base_set(make_run_result: MakeRun) -> RunSet:
    return RunSet.from_runs([make_run_result(0, 11, scenario="baseline")])


def test_save_refuses_earlier_results_unless_told_to_overwrite(
    runset: RunSet, base_set: RunSet, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    save_results(out, base_set, base_set)
    before = listing(out)
    with pytest.raises(ResultsError) as info:
        runset.save(out)
    assert str(info.value) == (
        f"{out}: must be a new or empty folder, got earlier results (summary.parquet); "
        "--overwrite (overwrite=True in Python) replaces them"
    )
    with pytest.raises(ResultsError, match="earlier results"):
        check_results_folder(out)
    assert listing(out) == before


def test_overwrite_replaces_the_folder_as_a_whole(
    runset: RunSet, base_set: RunSet, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    save_results(out, base_set, base_set)  # a comparison: results and base/
    assert (out / "base" / "summary.parquet").is_file()

    assert runset.save(out, overwrite=True) == out

    assert sorted(os.listdir(out)) == sorted(results.RESULT_FILES)  # no stale base/
    assert_frame_equal(RunSet.load(out).summary, runset.summary)
    assert os.listdir(tmp_path) == ["out"]  # nothing left beside it


def test_a_run_and_its_base_are_written_together_or_not_at_all(
    runset: RunSet, base_set: RunSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    save_results(out, runset, base_set)
    assert RunSet.load(out).scenario == "base"
    assert RunSet.load(out / "base").scenario == "baseline"
    before = listing(out)

    failing_writer(monkeypatch, fail_at=len(results.RESULT_FILES) + 1)  # the base's first file
    with pytest.raises(ResultsError, match="disk full"):
        save_results(out, base_set, runset, overwrite=True)
    assert listing(out) == before
    assert os.listdir(tmp_path) == ["out"]


def test_a_failed_swap_puts_the_earlier_results_back(
    runset: RunSet, base_set: RunSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    save_results(out, base_set, base_set)
    before = listing(out)
    rename = Path.rename

    def refuse_the_new_folder(self: Path, target: Path) -> Path:
        if self.name.endswith(".new.tmp"):
            raise OSError("rename refused")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", refuse_the_new_folder)
    with pytest.raises(ResultsError, match="rename refused; the earlier contents are kept"):
        runset.save(out, overwrite=True)
    assert listing(out) == before
    assert os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_holding_other_files_is_never_touched(
    runset: RunSet, base_set: RunSet, tmp_path: Path, overwrite: bool
) -> None:
    out = tmp_path / "out"
    save_results(out, base_set, base_set)
    (out / "base" / "notes.txt").write_text("mine", encoding="utf-8")
    before = listing(out)
    with pytest.raises(ResultsError) as info:
        runset.save(out, overwrite=overwrite)
    assert str(info.value) == (
        f"{out}: must be a new or empty folder or one of orgtwin results, got base/notes.txt, "
        "which orgtwin did not write (nothing was changed)"
    )
    assert listing(out) == before

    (out / "base" / "notes.txt").unlink()
    (out / "figures").mkdir()
    with pytest.raises(ResultsError, match="got figures/, which orgtwin did not write"):
        runset.save(out, overwrite=overwrite)


def test_a_file_is_not_a_results_folder(runset: RunSet, tmp_path: Path) -> None:
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder", encoding="utf-8")
    with pytest.raises(ResultsError, match=r"results\.txt: must be a folder, got a file"):
        check_results_folder(a_file, overwrite=True)
    with pytest.raises(ResultsError, match=r"results\.txt: must be a folder, got a file"):
        runset.save(a_file / "out")
    assert a_file.read_text(encoding="utf-8") == "not a folder"


def test_the_current_folder_is_never_replaced(
    runset: RunSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    (out / "base").mkdir(parents=True)
    for where in (out, out / "base"):
        monkeypatch.chdir(where)
        with pytest.raises(ResultsError) as info:
            runset.save(".." if where.name == "base" else ".", overwrite=True)
        assert "must be a folder that can be replaced as a whole, got the current folder" in str(
            info.value
        )
    assert Path.cwd() == out / "base" and os.listdir(out) == ["base"]


def test_check_creates_nothing_and_save_creates_the_missing_folders(
    runset: RunSet, tmp_path: Path
) -> None:
    out = tmp_path / "a" / "b" / "out"
    assert check_results_folder(out) == out
    assert os.listdir(tmp_path) == []
    runset.save(out)
    assert sorted(os.listdir(out)) == sorted(results.RESULT_FILES)


@pytest.mark.parametrize("inside", [False, True])
def test_an_unwritable_folder_is_refused_before_any_write(
    runset: RunSet, unwritable_folder: Path, inside: bool
) -> None:
    if not inside and unwritable_folder == Path("/sys"):
        pytest.skip("/sys is not a folder to write results into, only one to write inside")
    out = unwritable_folder / "out" if inside else unwritable_folder
    message = f"{unwritable_folder}: must be a folder orgtwin can write in, got "
    with pytest.raises(ResultsError, match=re.escape(message)):
        check_results_folder(out)
    with pytest.raises(ResultsError, match=re.escape(message)):
        runset.save(out)


def test_an_existing_folder_must_be_writable_too(
    runset: RunSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    temporary_file = tempfile.TemporaryFile

    def refuse_in_out(*args: object, dir: Path, **kwargs: object) -> object:
        if Path(dir) == out:
            raise PermissionError(13, "Permission denied")
        return temporary_file(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse_in_out)
    with pytest.raises(ResultsError) as info:
        runset.save(out)
    assert str(info.value) == f"{out}: must be a folder orgtwin can write in, got Permission denied"
    assert os.listdir(tmp_path) == ["out"] and os.listdir(out) == []


def _dead_pid() -> int:
    """The pid of a process that has ended (and was reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_next_write_removes_what_a_killed_one_left(
    runset: RunSet, base_set: RunSet, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".summary.parquet.k1ll3d.tmp").write_bytes(b"PAR1 half")  # a killed RunSet.save
    (out / "base").mkdir()
    (out / "base" / ".pages.parquet.k1ll3d.tmp").write_bytes(b"PAR1 half")
    staged = tmp_path / ".out.0badf00d.new.tmp"  # a killed save_results, mid-write
    (staged / "base").mkdir(parents=True)
    (staged / "calls.parquet").write_bytes(b"PAR1 half")
    (staged / "base" / "summary.parquet").write_bytes(b"PAR1")
    aside = tmp_path / ".out.0badf00d.old.tmp"  # a killed overwrite, mid-swap
    aside.mkdir()
    (aside / "summary.parquet").write_bytes(b"PAR1")
    not_ours = tmp_path / ".out.keep.tmp"  # named like ours, holding a file that is not
    not_ours.mkdir()
    (not_ours / "notes.txt").write_text("mine", encoding="utf-8")
    dead = _dead_pid()
    killed = tmp_path / f".out.{dead}-0badf00d.new.tmp"  # of a writer that is gone
    (killed / "base").mkdir(parents=True)
    writing = tmp_path / f".out.{os.getpid()}-cafe.new.tmp"  # a writer still at work
    writing.mkdir()
    (writing / "summary.parquet").write_bytes(b"PAR1")

    save_results(out, runset, base_set)  # only leftovers, so no overwrite is needed

    assert sorted(os.listdir(tmp_path)) == sorted([".out.keep.tmp", writing.name, "out"])
    assert sorted(os.listdir(out)) == sorted([*results.RESULT_FILES, "base"])
    assert sorted(os.listdir(out / "base")) == sorted(results.RESULT_FILES)
    assert (not_ours / "notes.txt").read_text(encoding="utf-8") == "mine"


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
    assert described.height == len(KPIS)
