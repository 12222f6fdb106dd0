"""The ``orgtwin`` command line, run in-process through ``orgtwin.cli.main``.

Mistakes end with a message (one line per problem of a scenario) and exit status 2,
never a traceback; ``run``
prints a comparison against the base scenario and writes Parquet files that load back.
``run --out`` checks its folder before simulating and replaces earlier results only with
``--overwrite``, as a whole; the numbers the command takes keep to the bounds declared
where the library checks them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import annotated_types
import polars as pl
import pytest

import orgtwin
from orgtwin import derive_seed, load_scenario
from orgtwin.cli import build_parser, main
from orgtwin.runs import pool
from orgtwin.runs.results import RESULT_FILES
from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps import design
from orgtwin.telemetry import schemas as tables
from orgtwin.world.kpis import KPIS

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


def test_overwrite_without_out_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exited:
        main(["run", BASELINE, "--days", "1", "--seeds", "1", "--overwrite"])
    assert exited.value.code == 2
    assert "--overwrite replaces the results in --out DIR" in capsys.readouterr().err


def test_check_counts_in_words_that_agree_with_the_number(capsys: pytest.CaptureFixture[str]):
    assert main(["check", "scenarios/cab_policy.yaml"]) == 0  # one intervention
    line = capsys.readouterr().out
    assert ", 1 intervention," in line and "interventions" not in line


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
    assert set(KPIS) <= set(summary.columns)
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
    for kpi in KPIS:
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
        (["run", BASELINE, "--days", "0"], "must be a whole number between 1 and 3650, got '0'"),
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


SWEEP = ["sweep", BASELINE, "--lever", "teams.web.oncall_size=2..4"]
LHS = [*SWEEP, "--design", "lhs"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", BASELINE, "--days", "1000000000"], "between 1 and 3650, got '1000000000'"),
        (["run", BASELINE, "--days", "100000"], "between 1 and 3650, got '100000'"),
        (["run", BASELINE, "--seeds", "1000000"], "between 1 and 1000, got '1000000'"),
        ([*SWEEP, "--days", "3651"], "between 1 and 3650, got '3651'"),
        ([*SWEEP, "--seeds", "1001"], "between 1 and 1000, got '1001'"),
        ([*SWEEP, "--seed", "-3"], ">= 0, got '-3'"),
        ([*LHS, "--n", str(design.MAX_POINTS + 1)], f"between 1 and {design.MAX_POINTS}, got"),
        ([*SWEEP, "--workers", str(pool.MAX_WORKERS + 1)], f"between 1 and {pool.MAX_WORKERS}"),
    ],
)
def test_numbers_out_of_bounds_exit_with_status_2_before_running(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(orgtwin, "run", refuse_to_run)
    monkeypatch.setattr(orgtwin, "sweep", refuse_to_run)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {argv[-2]}: must be a whole number {message}" in err
    assert "Traceback" not in err


def test_the_bounds_are_read_where_they_are_declared(monkeypatch: pytest.MonkeyPatch):
    fields = Scenario.model_fields
    monkeypatch.setattr(fields["days"], "metadata", [annotated_types.Ge(2)])
    monkeypatch.setattr(fields["seeds"], "metadata", [annotated_types.Interval(ge=1, le=3)])
    monkeypatch.setattr(design, "MAX_POINTS", 5)
    monkeypatch.setattr(pool, "MAX_WORKERS", 2)
    parser = build_parser()
    args = parser.parse_args(
        [*LHS, "--days", "99999", "--seeds", "3", "--n", "5", "--workers", "2"]
    )
    assert (args.days, args.seeds, args.n, args.workers) == (99999, 3, 5, 2)
    for option, value in [("--days", "1"), ("--seeds", "4"), ("--n", "6"), ("--workers", "3")]:
        with pytest.raises(SystemExit):
            parser.parse_args([*LHS, option, value])


def refuse_to_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("ran although the command line was refused")


@pytest.mark.parametrize("kind", ["a file", "inside a file", "unwritable"])
def test_run_out_that_cannot_hold_results_fails_before_simulating(
    kind: str,
    tmp_path: Path,
    unwritable_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    a_file = tmp_path / "results.txt"
    a_file.write_text("mine", encoding="utf-8")
    out, expected = {
        "a file": (a_file, f"{a_file}: must be a folder, got a file"),
        "inside a file": (a_file / "out", f"{a_file}: must be a folder, got a file"),
        "unwritable": (
            unwritable_folder / "out",
            f"{unwritable_folder}: must be a folder orgtwin can write in, got ",
        ),
    }[kind]
    monkeypatch.setattr(orgtwin, "run", refuse_to_run)
    assert main(["run", BASELINE, "--days", "2", "--seeds", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"orgtwin: {expected}")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert a_file.read_text(encoding="utf-8") == "mine"


def test_run_out_replaces_earlier_results_only_with_overwrite_and_as_a_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "out"
    assert main(["run", PRICE, "--days", str(PRICE_DAYS), "--seeds", "1", "--out", str(out)]) == 0
    assert (out / "base" / "summary.parquet").is_file()
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()

    again = ["run", BASELINE, "--days", "2", "--seeds", "1", "--out", str(out)]
    assert main(again) == 2
    err = capsys.readouterr().err
    assert err == (
        f"orgtwin: {out}: must be a new or empty folder, got earlier results (summary.parquet); "
        "--overwrite (overwrite=True in Python) replaces them\n"
    )
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    assert main([*again, "--overwrite"]) == 0
    assert sorted(os.listdir(out)) == sorted(RESULT_FILES)  # the stale base/ went too
    assert set(pl.read_parquet(out / "summary.parquet")["scenario"]) == {"baseline"}
    assert os.listdir(tmp_path) == ["out"]


def test_run_out_overwrite_never_deletes_a_folder_of_other_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("years of work", encoding="utf-8")
    (out / "summary.parquet").write_bytes(b"PAR1")
    monkeypatch.setattr(orgtwin, "run", refuse_to_run)
    argv = ["run", BASELINE, "--days", "2", "--seeds", "1", "--out", str(out), "--overwrite"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        f"orgtwin: {out}: must be a new or empty folder or one of orgtwin results, got "
        "chapter1.tex, which orgtwin did not write (nothing was changed)\n"
    )
    assert (out / "chapter1.tex").read_text(encoding="utf-8") == "years of work"


def test_run_out_removes_what_a_killed_run_left(tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".summary.parquet.k1ll3d.tmp").write_bytes(b"PAR1 half")
    staged = tmp_path / ".out.0badf00d.new.tmp"
    (staged / "base").mkdir(parents=True)
    (staged / "series.parquet").write_bytes(b"PAR1 half")
    assert main(["run", BASELINE, "--days", "2", "--seeds", "1", "--out", str(out)]) == 0
    assert os.listdir(tmp_path) == ["out"]
    assert sorted(os.listdir(out)) == sorted(RESULT_FILES)


def test_console_script_checks_a_scenario():
    script = shutil.which("orgtwin", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "orgtwin.cli"]
    done = subprocess.run(
        [*command, "check", BASELINE], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"{BASELINE}: ok" in done.stdout


# --------------------------------------------------------------------------- check: limits


def test_check_prints_the_memory_a_run_needs(capsys: pytest.CaptureFixture[str]):
    assert main(["check", BASELINE]) == 0
    line = capsys.readouterr().out.strip()
    assert line.endswith(" MiB to run 8 seeds of 90 days")
    assert main(["check", PRICE, "--max-memory-mib", "100000"]) == 0
    assert capsys.readouterr().out.strip().endswith("90 days, its base's included")


def test_check_refuses_a_run_above_the_memory_limit(capsys: pytest.CaptureFixture[str]):
    assert main(["check", BASELINE, "--max-memory-mib", "100"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"orgtwin: {BASELINE}: must fit in 100 MiB to run 8 seeds of 90 days")
    assert "got about " in err and "Traceback" not in err


def test_check_refuses_fifty_million_users_a_segment_before_they_run_out_of_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    many = tmp_path / "many_users.yaml"
    segments = "".join(f"  {s}: {{n_users: 50000000}}\n" for s in ("free", "pro_us", "pro_eu"))
    many.write_text(f"extends: {ROOT / BASELINE}\nsegments:\n{segments}", encoding="utf-8")
    assert main(["check", str(many), "--max-memory-mib", "16384"]) == 2
    assert "must fit in 16,384 MiB" in capsys.readouterr().err


@pytest.mark.parametrize("limit", ["0", "-5", "nan", "inf", "lots"])
def test_check_refuses_a_memory_limit_that_is_no_number_of_mib(
    limit: str, capsys: pytest.CaptureFixture[str]
):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", BASELINE, "--max-memory-mib", limit])
    assert exit_info.value.code == 2
    assert "must be a number of MiB above 0" in capsys.readouterr().err


@pytest.mark.timeout(60)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_check_of_a_fifo_returns_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    os.mkfifo(tmp_path / "pipe.yaml")
    assert main(["check", str(tmp_path / "pipe.yaml")]) == 2
    assert "must be a regular file, got a FIFO" in capsys.readouterr().err


def test_run_prints_the_trust_level_of_a_scenario_validated_against_production(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from datetime import datetime

    from orgtwin.fidelity import SCORECARD, Scorecard

    for name in ("baseline.yaml", "price_increase.yaml"):
        shutil.copy(ROOT / "scenarios" / name, tmp_path / name)
    verdicts = ["mirrors"] * 4 + ["biased"]
    lines = pl.DataFrame(
        {"behaviour": ["service"] * 5, "kpi": ["requests"] * 5, "entity": list("abcde"),
         "unit": ["requests per hour"] * 5, "n": [168] * 5, "observed": [1.0] * 5,
         "twin": [1.0] * 5, "persistence": [1.0] * 5, "score": ["mape"] * 5,
         "twin_score": [0.05] * 5, "persistence_score": [0.1] * 5, "bias": [0.0] * 5,
         "verdict": verdicts, "words": ["…"] * 5},
        schema=SCORECARD,
    )  # fmt: skip
    window = (datetime(2026, 1, 19), datetime(2026, 1, 26))
    argv = ["run", str(tmp_path / "price_increase.yaml"), "--days", str(PRICE_DAYS), "--seeds", "1"]

    Scorecard("someone_else", window, 3, ["sessions"], lines).save(tmp_path)
    assert main(argv) == 0
    assert "validated against production" not in capsys.readouterr().out  # not its own

    Scorecard("price_increase", window, 3, ["sessions"], lines).save(tmp_path)
    assert main(argv) == 0
    out = capsys.readouterr().out
    comparison = out.index("price_increase vs baseline")
    trust = out.index(
        "price_increase validated against production 2026-01-19 00:00 to 2026-01-26 00:00 "
        "(3 seeds): trust high (4 mirrors, 1 biased): the twin mirrors production"
    )
    assert trust > comparison  # under the comparison it qualifies
