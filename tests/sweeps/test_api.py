"""Sweeps (orgtwin/sweeps/api.py): rows, seeds, series, resume, options and the CLI.

A sweep's rows are the runs of the levered scenario, with common random numbers across
points unless asked otherwise; its series are the daily means of each run; an
interrupted sweep resumes to the very rows of an uninterrupted one; bad options and bad
levers are refused before anything runs. Rows are compared without ``wall_s`` (the only
column that measures the machine). The results folder and the back ends have their own
tests (``test_store.py``, ``test_executors.py``).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from orgtwin import derive_seed, load_scenario, simulate
from orgtwin.cli import main
from orgtwin.errors import LeverError, SweepError, SweepInterrupted
from orgtwin.scenario.levers import apply_levers
from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps.api import SweepResult, sweep
from orgtwin.world.kpis import KPIS

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- rows


def test_rows_are_the_runs_of_the_levered_scenario(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    levers = tiny_sweep.levers
    result = tiny_sweep(small_scenario, tmp_path, series="none")
    runs = result.runs
    assert runs.height == 9 * 2 and result.n_ran == 18 and result.runner == "serial"
    assert runs.columns[:5] == ["point", "replicate", "seed", *levers]
    assert runs.columns[5:] == [*KPIS, "wall_s", "error"]
    assert runs["error"].null_count() == runs.height
    for point, replicate in [(0, 1), (7, 0)]:
        row = runs.filter(point=point, replicate=replicate).row(0, named=True)
        levered = apply_levers(small_scenario, {path: row[path] for path in levers})
        expected = simulate(levered, seed=row["seed"], days=tiny_sweep.days).summary()
        for kpi, value in expected.items():
            assert row[kpi] == value or (math.isnan(value) and math.isnan(row[kpi])), kpi


def test_common_random_numbers_share_seeds_across_points(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    crn = tiny_sweep(small_scenario, tmp_path / "crn", series="none").runs
    by_replicate = crn.group_by("replicate").agg(pl.col("seed").n_unique())
    assert by_replicate["seed"].to_list() == [1, 1]
    assert crn.filter(replicate=1)["seed"][0] == derive_seed(small_scenario.seed, 1)

    independent = tiny_sweep(
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
        days=3,
        out=tmp_path,
        runner="serial",
        series="none",
    )
    cost = result.runs.sort("point")["infra_cost_usd"].to_list()
    assert cost[0] > cost[1] > cost[2], cost


# --------------------------------------------------------------------------- series


def test_series_scan_has_daily_rows_for_every_run(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    days_per_run = tiny_sweep.days
    result = tiny_sweep(small_scenario, tmp_path)
    series = result.series()
    assert isinstance(series, pl.LazyFrame)
    days = series.group_by("point", "replicate").agg(pl.col("day").n_unique()).collect()
    assert days.height == 18 and set(days["day"]) == {days_per_run}
    row = result.runs.filter(point=5, replicate=1).row(0, named=True)
    levered = apply_levers(small_scenario, {path: row[path] for path in tiny_sweep.levers})
    hourly = simulate(levered, seed=row["seed"], days=days_per_run).series
    one = dict(entity_type="service", entity="users", metric="utilisation")
    expected = hourly.filter(**one).with_columns(day=pl.col("tick") // 24)
    expected = expected.group_by("day").agg(pl.col("value").mean()).sort("day")["value"]
    got = series.filter(point=5, replicate=1, **one).sort("day").collect()["value"]
    assert got.to_list() == pytest.approx(expected.to_list(), rel=1e-12)


# --------------------------------------------------------------------------- resume


def test_an_interrupted_sweep_resumes_to_the_same_rows(
    small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any
):
    calls: list[int] = []

    def interrupt_after_two_chunks(done: int, total: int, elapsed: float, eta: Any) -> None:
        calls.append(done)
        if len(calls) == 3:  # the start, the pilot, one chunk
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(SweepInterrupted, match="rerun the same command") as caught:
        tiny_sweep(small_scenario, out, progress=interrupt_after_two_chunks)
    saved = caught.value.n_saved
    assert 0 < saved < 18 and caught.value.n_total == 18
    assert SweepResult.load(out).runs.height == saved
    assert not tiny_sweep.temp_files(out)

    resumed = tiny_sweep(small_scenario, out)
    assert resumed.n_ran == 18 - saved
    assert resumed.runs.select("point", "replicate").is_duplicated().sum() == 0
    whole = tiny_sweep(small_scenario, tmp_path / "whole")
    assert tiny_sweep.rows(resumed).equals(tiny_sweep.rows(whole))
    assert (
        resumed.series()
        .collect()
        .sort("point", "replicate", maintain_order=True)
        .equals(whole.series().collect())
    )
    again = tiny_sweep(small_scenario, out)
    assert again.n_ran == 0 and again.runner == "none"


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"runner": "fast"}, "runner must be one of"),
        ({"series": "weekly"}, "series must be one of"),
        ({"seeds": 0}, "seeds must be a whole number between 1 and 1000, got 0"),
        ({"seeds": 200_000}, "seeds must be a whole number between 1 and 1000"),
        ({"days": 3651}, "days must be a whole number between 1 and 3650"),
        ({"seed": -1}, "seed must be a whole number"),
        ({"workers": 0}, "workers must be a whole number between 1 and 256, got 0"),
        ({"workers": 10**6}, "workers must be a whole number between 1 and 256"),
        ({"runner": "serial", "address": "auto"}, "runner must be 'auto' or 'ray'"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(
    small_scenario: Scenario,
    tmp_path: Path,
    tiny_sweep: Any,
    options: dict[str, Any],
    match: str,
):
    with pytest.raises(SweepError, match=match):
        sweep(small_scenario, tiny_sweep.levers, out=tmp_path / "never", **options)
    assert not (tmp_path / "never").exists()


def test_a_sweep_of_too_many_runs_is_refused_before_anything_runs(
    small_scenario: Scenario, tmp_path: Path
):
    levers = {"teams.platform.oncall_size": "1..8", "services.*.spot_share": "0..0.9:1000"}
    with pytest.raises(SweepError, match="at most 1,000,000 runs, got 8,000 points x 1000"):
        sweep(small_scenario, levers, seeds=1000, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_a_bad_lever_fails_before_anything_runs(small_scenario: Scenario, tmp_path: Path):
    with pytest.raises(LeverError, match="did you mean 'oncall_size'"):
        sweep(small_scenario, ["teams.platform.oncal_size=1..3"], out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_auto_runs_a_tiny_sweep_serially(small_scenario: Scenario, tmp_path: Path, tiny_sweep: Any):
    result = tiny_sweep(small_scenario, tmp_path, runner="auto", series="none")
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


@pytest.mark.usefixtures("at_repo_root")
def test_cli_names_a_truncated_shard_and_repairs_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "cli"
    argv = ["sweep", "scenarios/baseline.yaml", "--lever", "teams.platform.oncall_size=2..3",
            "--seeds", "2", "--days", "2", "--runner", "serial", "--series", "none",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    whole = SweepResult.load(out).runs.drop("wall_s")
    shard = sorted((out / "runs").iterdir())[-1]
    shard.write_bytes(shard.read_bytes()[:100])
    capsys.readouterr()

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"orgtwin: {shard}: file must be readable Parquet, got a truncated")
    assert "rerun the same sweep with --repair" in err

    assert main([*argv, "--repair"]) == 0
    err = capsys.readouterr().err
    assert f"moved 1 bad file to {out / 'quarantine'}/ and reran their runs" in err
    assert SweepResult.load(out).runs.drop("wall_s").equals(whole)
    assert (out / "quarantine" / "runs" / shard.name).is_file()


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("at_repo_root")
def test_two_cli_sweeps_at_once_into_one_folder_never_duplicate_runs(tmp_path: Path):
    out = tmp_path / "race"
    command = [sys.executable, "-c", "import sys; from orgtwin.cli import main; "
               "sys.exit(main(sys.argv[1:]))", "sweep", "scenarios/baseline.yaml",
               "--lever", "teams.platform.oncall_size=2..5", "--seeds", "8", "--days", "7",
               "--runner", "serial", "--series", "none", "--out", str(out)]  # fmt: skip
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    ended = [(p.wait(timeout=240), p.stderr.read()) for p in both if p.stderr is not None]
    for status, err in ended:  # refused while the other writes, or run after it: no duplicate
        assert status == 0 or "the results folder must be free" in err, err
    if all(status == 0 for status, _ in ended):
        assert any("nothing was missing" in err for _, err in ended)
    runs = SweepResult.load(out).runs
    assert runs.height == 32 and runs.select("point", "replicate").is_duplicated().sum() == 0
