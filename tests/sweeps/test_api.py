"""Sweeps: rows, seeds, failures, resume, storage, the CLI, and Ray (marked slow).

A sweep's rows must not depend on how it ran: serially, on Ray, interrupted and resumed.
Rows are compared without ``wall_s`` (the only column that measures the machine).
"""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path
from typing import Any

import polars as pl
import psutil
import pytest

from orgtwin import derive_seed, load_scenario, simulate
from orgtwin.cli import main
from orgtwin.errors import LeverError, SweepError, SweepInterrupted
from orgtwin.runs.metrics import KPIS
from orgtwin.scenario.levers import apply_levers
from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps.api import SweepResult, sweep
from orgtwin.sweeps.executors import TASK_NAME, chunk_size
from orgtwin.sweeps.store import write_parquet_atomic

ROOT = Path(__file__).resolve().parents[2]
LEVERS = {"teams.platform.oncall_size": "1..3", "services.*.spot_share": "0..0.8:3"}
DAYS = 3


def rows(result: SweepResult) -> pl.DataFrame:
    """The runs without the machine-dependent ``wall_s``, in (point, replicate) order."""
    return result.runs.drop("wall_s").sort("point", "replicate")


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp-" in p.name]


def tiny(scenario: Scenario, out: Path, **options: Any) -> SweepResult:
    """A 9-point x 2-seed x 3-day serial sweep of the small scenario (about a second)."""
    options = {"seeds": 2, "days": DAYS, "out": out, "runner": "serial"} | options
    return sweep(scenario, LEVERS, **options)


@pytest.fixture
def no_ray_left_behind():
    """Ray processes a test starts (children of this process) must be gone after it."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    left = [
        p
        for p in psutil.Process().children(recursive=True)
        if p.pid not in before and p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    ]
    psutil.wait_procs(left, timeout=10)
    assert not [p for p in left if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


# --------------------------------------------------------------------------- rows


def test_rows_are_the_runs_of_the_levered_scenario(small_scenario: Scenario, tmp_path: Path):
    result = tiny(small_scenario, tmp_path, series="none")
    runs = result.runs
    assert runs.height == 9 * 2 and result.n_ran == 18 and result.runner == "serial"
    assert runs.columns[:5] == ["point", "replicate", "seed", *LEVERS]
    assert runs.columns[5:] == [*KPIS, "wall_s", "error"]
    assert runs["error"].null_count() == runs.height
    for point, replicate in [(0, 1), (7, 0)]:
        row = runs.filter(point=point, replicate=replicate).row(0, named=True)
        levered = apply_levers(small_scenario, {path: row[path] for path in LEVERS})
        expected = simulate(levered, seed=row["seed"], days=DAYS).summary()
        for kpi, value in expected.items():
            assert row[kpi] == value or (math.isnan(value) and math.isnan(row[kpi])), kpi


def test_common_random_numbers_share_seeds_across_points(small_scenario: Scenario, tmp_path):
    crn = tiny(small_scenario, tmp_path / "crn", series="none").runs
    by_replicate = crn.group_by("replicate").agg(pl.col("seed").n_unique())
    assert by_replicate["seed"].to_list() == [1, 1]
    assert crn.filter(replicate=1)["seed"][0] == derive_seed(small_scenario.seed, 1)

    independent = tiny(
        small_scenario, tmp_path / "ind", series="none", common_random_numbers=False
    ).runs
    assert independent["seed"].n_unique() == independent.height
    assert independent.filter(point=4, replicate=1)["seed"][0] == derive_seed(
        small_scenario.seed, 4, 1
    )


def test_a_lever_on_an_intervention_is_applied(small_spec: dict[str, Any], tmp_path: Path):
    small_spec["interventions"] = [
        {"kind": "spot_share", "at": 1, "services": "*", "spot_share": 0.7}
    ]
    scenario = load_scenario(small_spec)
    result = sweep(
        scenario,
        {"interventions.spot_share.spot_share": [0.0, 0.5, 0.9]},
        seeds=1,
        days=DAYS,
        out=tmp_path,
        runner="serial",
        series="none",
    )
    cost = result.runs.sort("point")["infra_cost_usd"].to_list()
    assert cost[0] > cost[1] > cost[2], cost


def test_a_run_that_raises_is_recorded_and_the_sweep_goes_on(
    small_scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import orgtwin.sweeps.executors as executors

    def flaky(scenario: Scenario, **kwargs: Any):
        if scenario.teams["platform"].oncall_size == 2:
            raise RuntimeError("pager melted")
        return simulate(scenario, **kwargs)

    monkeypatch.setattr(executors, "simulate", flaky)
    result = tiny(small_scenario, tmp_path)
    assert result.runs.height == 18
    failed = result.failed
    assert failed.height == 6
    assert set(failed["teams.platform.oncall_size"]) == {2}
    assert set(failed["error"]) == {"RuntimeError: pager melted"}
    assert failed["availability_pct"].null_count() == 6
    assert result.runs.filter(pl.col("error").is_null())["availability_pct"].null_count() == 0


# --------------------------------------------------------------------------- storage


def test_series_scan_has_daily_rows_for_every_run(small_scenario: Scenario, tmp_path: Path):
    result = tiny(small_scenario, tmp_path)
    series = result.series()
    assert isinstance(series, pl.LazyFrame)
    days = series.group_by("point", "replicate").agg(pl.col("day").n_unique()).collect()
    assert days.height == 18 and set(days["day"]) == {DAYS}
    row = result.runs.filter(point=5, replicate=1).row(0, named=True)
    levered = apply_levers(small_scenario, {path: row[path] for path in LEVERS})
    hourly = simulate(levered, seed=row["seed"], days=DAYS).series
    one = dict(entity_type="service", entity="users", metric="utilisation")
    expected = hourly.filter(**one).with_columns(day=pl.col("tick") // 24)
    expected = expected.group_by("day").agg(pl.col("value").mean()).sort("day")["value"]
    got = series.filter(point=5, replicate=1, **one).sort("day").collect()["value"]
    assert got.to_list() == pytest.approx(expected.to_list(), rel=1e-12)


def test_no_series_kept_means_no_scan(small_scenario: Scenario, tmp_path: Path):
    result = tiny(small_scenario, tmp_path, series="none")
    assert not (tmp_path / "series").exists()
    with pytest.raises(SweepError, match="series must be kept"):
        result.series()


def test_a_folder_reopens_with_its_runs_and_design(small_scenario: Scenario, tmp_path: Path):
    result = tiny(small_scenario, tmp_path)
    manifest = (tmp_path / "manifest.json").read_text()
    assert result.manifest["scenario_sha256"] in manifest
    assert result.manifest["seed_scheme"].startswith("crn")
    loaded = SweepResult.load(tmp_path)
    assert loaded.levers == result.levers
    assert loaded.design.equals(result.design)
    assert rows(loaded).equals(rows(result))
    assert not temp_files(tmp_path)


def test_an_atomic_write_that_fails_leaves_nothing(tmp_path: Path):
    class Broken(pl.DataFrame):
        def write_parquet(self, file: Any, *args: Any, **kwargs: Any) -> None:
            Path(file).write_bytes(b"half a file")
            raise OSError("disk full")

    target = tmp_path / "part-0-0.parquet"
    with pytest.raises(OSError, match="disk full"):
        write_parquet_atomic(Broken({"a": [1]}), target)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- resume


def test_an_interrupted_sweep_resumes_to_the_same_rows(small_scenario: Scenario, tmp_path):
    calls: list[int] = []

    def interrupt_after_two_chunks(done: int, total: int, elapsed: float, eta: Any) -> None:
        calls.append(done)
        if len(calls) == 3:  # the start, the pilot, one chunk
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(SweepInterrupted, match="rerun the same command") as caught:
        tiny(small_scenario, out, progress=interrupt_after_two_chunks)
    saved = caught.value.n_saved
    assert 0 < saved < 18 and caught.value.n_total == 18
    assert SweepResult.load(out).runs.height == saved
    assert not temp_files(out)

    resumed = tiny(small_scenario, out)
    assert resumed.n_ran == 18 - saved
    assert resumed.runs.select("point", "replicate").is_duplicated().sum() == 0
    whole = tiny(small_scenario, tmp_path / "whole")
    assert rows(resumed).equals(rows(whole))
    assert (
        resumed.series()
        .collect()
        .sort("point", "replicate", maintain_order=True)
        .equals(whole.series().collect())
    )
    again = tiny(small_scenario, out)
    assert again.n_ran == 0 and again.runner == "none"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"seeds": 3}, "seeds"),
        ({"days": 2}, "days"),
        ({"series": "none"}, "series"),
        ({"common_random_numbers": False}, "seed_scheme"),
        ({"seed": 99}, "seed"),
    ],
)
def test_another_sweep_in_the_same_folder_is_refused(
    small_scenario: Scenario, tmp_path: Path, change: dict[str, Any], field: str
):
    first = {"series": "daily"} if field == "series" else {"series": "none"}
    tiny(small_scenario, tmp_path, **first)
    with pytest.raises(SweepError, match=rf"its {field} must be .*delete the folder"):
        tiny(small_scenario, tmp_path, **({"series": "none"} | change))


def test_another_scenario_or_levers_in_the_same_folder_is_refused(
    small_spec: dict[str, Any], tmp_path: Path
):
    original = load_scenario(small_spec)
    tiny(original, tmp_path, series="none")
    with pytest.raises(SweepError, match="its levers must be"):
        sweep(original, {"teams.web.oncall_size": "1..2"}, out=tmp_path)
    small_spec["teams"]["web"]["headcount"] = 7
    with pytest.raises(SweepError, match="its scenario_sha256 must be"):
        tiny(load_scenario(small_spec), tmp_path, series="none")


def test_a_folder_of_other_files_is_refused(small_scenario: Scenario, tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match="empty folder or a sweep's results folder"):
        tiny(small_scenario, tmp_path)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"runner": "fast"}, "runner must be one of"),
        ({"series": "weekly"}, "series must be one of"),
        ({"seeds": 0}, "seeds must be a whole number >= 1"),
        ({"workers": 0}, "workers must be a whole number >= 1"),
        ({"runner": "serial", "address": "auto"}, "runner must be 'auto' or 'ray'"),
        ({"seeds": 200_000}, "at most 1,000,000 runs"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    small_scenario: Scenario, tmp_path: Path, options: dict[str, Any], match: str
):
    with pytest.raises(SweepError, match=match):
        sweep(small_scenario, LEVERS, out=tmp_path / "never", **options)
    assert not (tmp_path / "never").exists()


def test_a_bad_lever_fails_before_anything_runs(small_scenario: Scenario, tmp_path: Path):
    with pytest.raises(LeverError, match="did you mean 'oncall_size'"):
        sweep(small_scenario, ["teams.platform.oncal_size=1..3"], out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_chunks_carry_about_a_second_of_work_and_balance():
    assert chunk_size(0.5, 0, 200, 2) == 2
    assert chunk_size(0.02, 0, 10_000, 2) == 50
    assert chunk_size(0.02, 0, 200, 2) == 33  # at least 3 chunks per worker
    assert chunk_size(0.001, 500_000, 10_000, 2) == 2  # a chunk's series stay small
    assert chunk_size(5.0, 0, 3, 16) == 1


def test_auto_runs_a_tiny_sweep_serially(small_scenario: Scenario, tmp_path: Path):
    result = tiny(small_scenario, tmp_path, runner="auto", series="none")
    assert result.runner == "serial" and result.runs.height == 18


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scenario paths on the command line are relative to the repository root."""
    monkeypatch.chdir(ROOT)


@pytest.mark.usefixtures("at_repo_root")
def test_cli_sweeps_reports_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "cli"
    argv = ["sweep", "scenarios/baseline.yaml", "--lever", "teams.platform.oncall_size=2..3",
            "--lever", "services.*.spot_share=0,0.8", "--seeds", "2", "--days", "3",
            "--runner", "serial", "--out", str(out),
            "--breaks", "availability_pct < 99.9"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "Lever effects" in captured.out and "teams.platform.oncall_size" in captured.out
    assert "8/8 runs" in captured.err and "ran 8 of 8 runs serially" in captured.err
    assert (out / "manifest.json").is_file() and len(list((out / "runs").iterdir())) >= 2
    assert main(argv) == 0
    assert "nothing was missing" in capsys.readouterr().err


@pytest.mark.usefixtures("at_repo_root")
def test_cli_bad_lever_exits_2_with_a_suggestion(capsys: pytest.CaptureFixture[str], tmp_path):
    argv = ["sweep", "scenarios/baseline.yaml", "--lever", "teams.platform.oncal_size=2..3",
            "--out", str(tmp_path / "x")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "did you mean 'oncall_size'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.usefixtures("at_repo_root")
def test_cli_interrupted_sweep_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    import orgtwin

    def interrupted(*args: Any, **kwargs: Any) -> SweepResult:
        raise SweepInterrupted(str(tmp_path), 3, 8)

    monkeypatch.setattr(orgtwin, "sweep", interrupted)
    assert (
        main(["sweep", "scenarios/baseline.yaml", "--lever", "teams.web.oncall_size=2..3"]) == 130
    )
    assert "3 of 8 runs are saved" in capsys.readouterr().err


# --------------------------------------------------------------------------- Ray


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("no_ray_left_behind")
def test_ray_with_two_workers_gives_the_serial_rows(small_scenario: Scenario, tmp_path: Path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'orgtwin[sweep]')")
    serial = tiny(small_scenario, tmp_path / "serial")
    on_ray = tiny(small_scenario, tmp_path / "ray", runner="ray", workers=2)
    assert on_ray.runner == "ray" and on_ray.workers == 2
    assert rows(on_ray).equals(rows(serial))
    key = ["point", "replicate"]
    assert (
        on_ray.series()
        .collect()
        .sort(key, maintain_order=True)
        .equals(serial.series().collect().sort(key, maintain_order=True))
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("no_ray_left_behind")
def test_a_killed_ray_worker_costs_a_retry_not_a_row(small_scenario: Scenario, tmp_path: Path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'orgtwin[sweep]')")
    killed: list[int] = []

    def kill_one_busy_worker(done: int, total: int, elapsed: float, eta: Any) -> None:
        if killed or done < 2:
            return
        busy = [
            p
            for p in psutil.Process().children(recursive=True)
            if TASK_NAME in " ".join(p.cmdline())
        ]
        if busy:
            os.kill(busy[0].pid, signal.SIGKILL)
            killed.append(busy[0].pid)

    result = sweep(small_scenario, LEVERS, seeds=6, days=7, out=tmp_path, runner="ray",
                   workers=2, series="none", progress=kill_one_busy_worker)  # fmt: skip
    assert killed, "no busy worker was found to kill"
    runs = result.runs
    assert runs.height == 9 * 6
    assert runs.select("point", "replicate").is_duplicated().sum() == 0
    assert runs["error"].null_count() == runs.height
