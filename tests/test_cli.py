"""The ``orgtwin`` command line, run in-process through ``orgtwin.cli.main``.

Mistakes end with a message (one line per problem of a scenario) and exit status 2,
never a traceback; ``run``
prints a comparison against the base scenario and writes Parquet files that load back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from orgtwin import derive_seed, load_scenario
from orgtwin.cli import main
from orgtwin.runs import metrics
from orgtwin.telemetry import schemas as tables

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "scenarios/baseline.yaml"
PRICE = "scenarios/price_increase.yaml"
PRICE_DAYS = 15  # the price change starts on day 14


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scenario paths on the command line are relative to the repository root."""
    monkeypatch.chdir(ROOT)


def test_check_accepts_a_good_file(capsys: pytest.CaptureFixture[str]):
    assert main(["check", BASELINE]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "ok" in line)
    assert line.startswith(BASELINE)
    sc = load_scenario(BASELINE)
    assert f"{len(sc.services)} services" in line and f"{len(sc.teams)} teams" in line


def test_check_names_the_file_and_field_of_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    bad = tmp_path / "broken_rotation.yaml"
    bad.write_text(
        f"extends: {ROOT / BASELINE}\nname: broken\nteams:\n  web:\n    oncall_size: 0\n",
        encoding="utf-8",
    )
    assert main(["check", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "broken_rotation.yaml" in captured.err
    assert "teams.web.oncall_size" in captured.err
    assert ">= 1" in captured.err and "got 0" in captured.err
    assert "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_check_prints_every_problem_of_a_file_in_document_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    bad = tmp_path / "first_try.yaml"
    bad.write_text(
        f"extends: {ROOT / BASELINE}\ndays: -5\nsegments:\n  free:\n    n_users: -3\n"
        "interventons: []\n",
        encoding="utf-8",
    )
    assert main(["check", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"orgtwin: {bad}: 3 problems",
        f"  {bad}: days must be an integer >= 1, got -5",
        f"  {bad}: segments.free.n_users must be an integer >= 0, got -3",
        f"  {bad}: interventons is not a known key (did you mean 'interventions'?)",
    ]


def test_check_lists_twenty_problems_and_counts_the_rest(capsys: pytest.CaptureFixture[str]):
    bad = "tests/scenario/bad/several_more_than_twenty.yaml"
    assert main(["check", bad]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"orgtwin: {bad}: 24 problems"
    assert lines[1] == f"  {bad}: seed must be an integer >= 0, got -1"
    assert all(line.startswith(f"  {bad}: ") for line in lines[1:21])
    assert lines[21:] == ["  … and 4 more problems"]


def test_check_of_a_file_without_a_name_uses_its_stem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    child = tmp_path / "small_rotation.yaml"
    child.write_text(f"extends: {ROOT / BASELINE}\n", encoding="utf-8")
    assert main(["check", str(child)]) == 0
    assert capsys.readouterr().out.startswith(f"{child}: ok — small_rotation: ")


def test_check_of_a_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    assert main(["check", "scenarios/no_such_file.yaml"]) == 2
    err = capsys.readouterr().err
    assert "no_such_file.yaml" in err and "does not exist" in err and "Traceback" not in err


def test_schema_prints_json_schema(capsys: pytest.CaptureFixture[str]):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"segments", "services", "teams", "interventions", "extends"} <= set(
        schema["properties"]
    )


def test_run_compares_against_the_base_and_writes_parquet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "out"
    argv = ["run", PRICE, "--days", str(PRICE_DAYS), "--seeds", "2", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "95%" in captured.out
    assert "price_increase vs baseline" in captured.out
    for kpi in ("revenue_usd", "users", "availability_pct", "lead_time_hours"):
        assert kpi in captured.out
    assert "Traceback" not in captured.err

    sc = load_scenario(PRICE)
    seeds = [derive_seed(sc.seed, r) for r in range(2)]
    summary = pl.read_parquet(out / "summary.parquet")
    assert summary.height == 2
    assert summary["seed"].to_list() == seeds
    assert set(metrics.KPIS) <= set(summary.columns)
    assert (summary["days"] == PRICE_DAYS).all()
    series = pl.read_parquet(out / "series.parquet")
    assert set(series["seed"]) == set(seeds)
    assert series["tick"].max() == PRICE_DAYS * 24 - 1
    for name in tables.EVENT_TABLES:
        frame = pl.read_parquet(out / f"{name}.parquet")
        assert {"run_id", "seed", *tables.EVENT_TABLES[name]} <= set(frame.columns), name
    base = pl.read_parquet(out / "base" / "summary.parquet")
    assert base["seed"].to_list() == seeds
    assert set(base["scenario"]) == {"baseline"}
    assert set(summary["scenario"]) == {"price_increase"}
    # the price rose on day 14, so revenue did for every paired seed
    joined = base.join(summary, on="seed", suffix="_change")
    assert (joined["revenue_usd_change"] > joined["revenue_usd"]).all()


def test_run_of_a_scenario_without_base_prints_a_summary(capsys: pytest.CaptureFixture[str]):
    assert main(["run", BASELINE, "--days", "3", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "baseline: 1 seed x 3 days"
    assert " vs " not in out
    for kpi in metrics.KPIS:
        assert kpi in out


def test_run_refuses_a_run_that_ends_before_its_intervention(
    capsys: pytest.CaptureFixture[str],
):
    assert main(["run", PRICE, "--days", "7", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert "interventions[0].at" in err and "day 7" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", BASELINE, "--days", "0"], "must be a whole number >= 1, got '0'"),
        (["run", BASELINE, "--seeds", "two"], "must be a whole number"),
        (["run", BASELINE, "--seed", "-1"], "must be a whole number >= 0, got '-1'"),
        (["launch", BASELINE], "invalid choice"),
    ],
)
def test_bad_options_exit_with_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_console_script_checks_a_scenario():
    script = shutil.which("orgtwin", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "orgtwin.cli"]
    done = subprocess.run(
        [*command, "check", BASELINE], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"{BASELINE}: ok" in done.stdout
