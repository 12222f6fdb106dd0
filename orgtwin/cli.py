"""The ``orgtwin`` command line: run, check and describe scenarios.

Every user mistake (a bad scenario, a missing file, a bad option) ends with one line on
standard error naming what was wrong and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from orgtwin.errors import OrgTwinError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``orgtwin`` command."""
    parser = argparse.ArgumentParser(
        prog="orgtwin",
        description="An agent-based digital twin of a software organisation.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run a scenario over several seeds (and its base, if it extends one)",
        description="Run SCENARIO over several seeds. If it extends a base scenario, the base "
        "runs with the same seeds and the report compares the two.",
    )
    run.add_argument("scenario", metavar="SCENARIO", help="scenario file (YAML)")
    run.add_argument("--days", type=_positive, help="days per run (default: the scenario's)")
    run.add_argument("--seeds", type=_positive, help="number of seeds (default: the scenario's)")
    run.add_argument("--seed", type=_non_negative, help="base seed (default: the scenario's)")
    run.add_argument(
        "--out", type=Path, metavar="DIR",
        help="write summary.parquet, series.parquet and one Parquet file per event table "
        "(the base scenario's under DIR/base/)",
    )  # fmt: skip
    check = commands.add_parser("check", help="validate a scenario file and exit")
    check.add_argument("scenario", metavar="SCENARIO")
    commands.add_parser("schema", help="print the JSON Schema of scenario files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``orgtwin`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except OrgTwinError as exc:
        print(f"orgtwin: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("orgtwin: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    from orgtwin import report
    from orgtwin.loading import check_timing, load_scenario
    from orgtwin.results import compare
    from orgtwin.runner import base_of, run

    scenario = load_scenario(args.scenario)
    days = args.days or scenario.days
    seeds = args.seeds or scenario.seeds
    seed = scenario.seed if args.seed is None else args.seed
    check_timing(scenario, days)
    base = base_of(scenario)
    started = time.perf_counter()
    _progress(f"running {scenario.name}: {seeds} seeds x {days} days")
    change = run(scenario, days=days, seeds=seeds, seed=seed)
    if base is not None:
        _progress(f"running its base {base.name} with the same seeds")
        base_runs = run(base, days=days, seeds=seeds, seed=seed)
        table = compare(base_runs, change)
        print(report.format_comparison(table, base_name=base.name, change_name=scenario.name,
                                       seeds=seeds, days=days))  # fmt: skip
    else:
        base_runs = None
        print(report.format_summary(change))
    if args.out is not None:
        change.save(args.out)
        if base_runs is not None:
            base_runs.save(args.out / "base")
        _progress(f"wrote results to {args.out}/")
    _progress(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def _check(args: argparse.Namespace) -> int:
    from orgtwin.loading import load_scenario

    scenario = load_scenario(args.scenario)
    extends = f", extends {scenario.base}" if scenario.base else ""
    print(
        f"{args.scenario}: ok — {scenario.name}: {len(scenario.segments)} segments, "
        f"{len(scenario.services)} services, {len(scenario.vendors)} vendors, "
        f"{len(scenario.teams)} teams, {len(scenario.interventions)} interventions{extends}"
    )
    return 0


def _schema(args: argparse.Namespace) -> int:
    from orgtwin.loading import scenario_json_schema

    print(json.dumps(scenario_json_schema(), indent=2))
    return 0


def _progress(message: str) -> None:
    print(f"[orgtwin] {message}", file=sys.stderr, flush=True)


_COMMANDS = {"run": _run, "check": _check, "schema": _schema}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
