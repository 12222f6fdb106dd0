"""The ``orgtwin`` command line: run, sweep, check and describe scenarios; synthesise,
learn from, validate against and watch telemetry.

Every user mistake (a bad scenario, a missing file, a bad option) ends with exit status 2
and a message on standard error naming what was wrong (one line, or one line per problem
of a scenario file that has several), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from orgtwin.errors import OrgTwinError, SweepInterrupted, whole_number

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


Bounds = tuple[int, int | None]


def _whole_number(bounds: Callable[[], Bounds]) -> Callable[[str], int]:
    """An argparse type: a whole number within ``bounds()`` (low, high or None).

    The bounds are declared where the library checks them and read only when the option
    is given, so a command imports the modules that declare them only if it needs them.
    """

    def whole(text: str) -> int:
        low, high = bounds()
        return whole_number(text, name="", low=low, high=high, error=argparse.ArgumentTypeError)

    return whole


def _setting_bounds(name: str) -> Callable[[], Bounds]:
    """The bounds of a scenario's run setting (``days``, ``seeds``, ``seed``)."""

    def bounds() -> Bounds:
        from orgtwin.runs.runner import setting_bounds

        return setting_bounds(name)

    return bounds


def _points_bounds() -> Bounds:
    from orgtwin.sweeps.design import MAX_POINTS

    return 1, MAX_POINTS


def _workers_bounds() -> Bounds:
    from orgtwin.runs.pool import MAX_WORKERS

    return 1, MAX_WORKERS


_days = _whole_number(_setting_bounds("days"))
_seeds = _whole_number(_setting_bounds("seeds"))
_seed = _whole_number(_setting_bounds("seed"))
_points = _whole_number(_points_bounds)
_workers = _whole_number(_workers_bounds)


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
    run.add_argument("--days", type=_days, help="days per run (default: the scenario's)")
    run.add_argument("--seeds", type=_seeds, help="number of seeds (default: the scenario's)")
    run.add_argument("--seed", type=_seed, help="base seed (default: the scenario's)")
    run.add_argument(
        "--horizon-days", type=_days, metavar="N",
        help="days the verdict answers for; beyond the run's days the margin is projected "
        "(default: the run's days)",
    )  # fmt: skip
    run.add_argument(
        "--out", type=Path, metavar="DIR",
        help="write summary.parquet, series.parquet and one Parquet file per event table "
        "(the base scenario's under DIR/base/) into DIR, a new or empty folder",
    )  # fmt: skip
    run.add_argument(
        "--overwrite", action="store_true",
        help="replace the earlier results in DIR, as a whole",
    )  # fmt: skip
    _add_sweep_parser(commands)
    check = commands.add_parser(
        "check",
        help="validate a scenario file, estimate the memory a run needs, and exit",
        description="Validate SCENARIO without running it, and estimate the peak memory of "
        "running it (its seeds, and its base's if it extends one); refuse it if the "
        "estimate passes --max-memory-mib.",
    )
    check.add_argument("scenario", metavar="SCENARIO")
    check.add_argument(
        "--max-memory-mib", type=_memory_mib, metavar="MIB",
        help="largest estimated peak memory accepted, MiB (default: half the memory "
        "available now)",
    )  # fmt: skip
    commands.add_parser(
        "schema",
        help="print the JSON Schema of scenario files, for editors",
        description="Print the JSON Schema (draft 2020-12) of scenario files: one schema for "
        "complete files and for files that extend a base (every key optional there, null "
        "deletes). Save it and point an editor at it; see docs/scenarios.md.",
    )
    _add_learning_parsers(commands)
    _add_watch_parser(commands)
    _add_validate_parser(commands)
    return parser


def _time(text: str) -> datetime:
    """An argparse type: an ISO 8601 time, read as UTC (a zone given is converted)."""
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2026-03-02T10:14, got {text!r}"
        ) from None
    if found.tzinfo is not None:
        found = found.astimezone(UTC).replace(tzinfo=None)
    return found


def _add_learning_parsers(commands: argparse._SubParsersAction) -> None:
    synth = commands.add_parser(
        "synth",
        help="run a scenario once and write its telemetry as a telemetry folder",
        description="Run SCENARIO once (one seed) and write the telemetry it emits "
        "(requests, calls, deploys, incidents, user_days, vendor_status, pages, and "
        "customers and hourly arrivals per segment) into DIR, a new or empty folder, as "
        "Parquet: a known answer for `orgtwin learn`.",
    )
    synth.add_argument("scenario", metavar="SCENARIO", help="scenario file (YAML)")
    synth.add_argument("--days", type=_days, help="days to run (default: the scenario's)")
    synth.add_argument("--seed", type=_seed, help="the run's seed (default: the scenario's)")
    synth.add_argument("--out", type=Path, metavar="DIR", required=True, help="telemetry folder")
    learn = commands.add_parser(
        "learn",
        help="learn a twin from a telemetry folder: a scenario and its fit report",
        description="Read the telemetry in TELEMETRY (the twin's own tables, or any "
        "export through --mapping), learn every behaviour its tables inform, and write "
        "the learned scenario to --out with report.md and report.json beside it.",
    )
    learn.add_argument("telemetry", metavar="TELEMETRY", help="telemetry folder")
    learn.add_argument(
        "--base", metavar="SCENARIO", required=True,
        help="the scenario the twin starts from: its structure, and the values no table informs",
    )  # fmt: skip
    learn.add_argument("--mapping", metavar="FILE", help="mapping file (YAML) for other shapes")
    learn.add_argument(
        "--out", type=Path, metavar="FILE", required=True,
        help="the learned scenario (YAML); the fit report goes beside it",
    )  # fmt: skip
    learn.add_argument(
        "--drop-bad-rows", action="store_true",
        help="drop rows that fail validation, counted per reason in the report, instead of "
        "refusing the folder",
    )  # fmt: skip
    learn.add_argument(
        "--since", type=_time, metavar="TIME",
        help="learn from the telemetry from TIME on only (ISO 8601, UTC), e.g. from the "
        "change point of a drift alarm",
    )  # fmt: skip
    learn.add_argument(
        "--only", metavar="BEHAVIOUR", action="append",
        help="learn this behaviour only (structure, demand, latency, change_failure, "
        "incident_timing, churn, acquisition, vendor_outages); repeat for more; the others "
        "keep the base's values",
    )  # fmt: skip


def _add_watch_parser(commands: argparse._SubParsersAction) -> None:
    watch = commands.add_parser(
        "watch",
        help="watch telemetry against a twin and raise an alarm where a behaviour drifted",
        description="Follow, per behaviour and entity, what TELEMETRY shows against what "
        "the twin of SCENARIO predicts given the observed inputs, and raise an alarm where "
        "one moved: which behaviour, which entity, since when, how big, and what stands "
        "downstream. Thresholds are calibrated to the false-alarm budget.",
    )
    watch.add_argument("scenario", metavar="SCENARIO", help="the twin (scenario file, YAML)")
    watch.add_argument("telemetry", metavar="TELEMETRY", help="telemetry folder")
    watch.add_argument("--mapping", metavar="FILE", help="mapping file (YAML) for other shapes")
    watch.add_argument(
        "--reference", nargs=2, type=_time, metavar=("FROM", "TO"),
        help="a window in which production was as the twin learned it (ISO 8601, UTC): "
        "it sets each stream's scale and calibrates its threshold",
    )  # fmt: skip
    watch.add_argument(
        "--alarms-per-week", type=_positive_number, default=1.0, metavar="N",
        help="false-alarm budget per behaviour, split across its entities (default 1)",
    )  # fmt: skip
    watch.add_argument(
        "--clip", type=_positive_number, metavar="SD",
        help="clip each standardised residual (and the calibration's alike) at ±SD, so one "
        "outlying point cannot raise an alarm alone (per-minute metrics: 4)",
    )  # fmt: skip
    watch.add_argument(
        "--pool", action="store_true",
        help="with --reference: calibrate each behaviour on the reference residuals of all "
        "its entities together (a short reference of per-minute metrics)",
    )  # fmt: skip
    watch.add_argument("--out", type=Path, metavar="FILE", help="write the alarms (Parquet)")
    watch.add_argument(
        "--follow", action="store_true",
        help="keep watching as new files arrive in TELEMETRY (a table may be a folder of "
        "files), printing each alarm as a line when it is raised, until Ctrl-C",
    )  # fmt: skip
    watch.add_argument(
        "--poll", type=_positive_number, default=10.0, metavar="SECONDS",
        help="with --follow: seconds between looks at the folder (default 10)",
    )  # fmt: skip


def _add_validate_parser(commands: argparse._SubParsersAction) -> None:
    validate = commands.add_parser(
        "validate",
        help="replay a twin over a window of telemetry it did not learn from and score it",
        description="Replay the twin of SCENARIO over FROM..TO fed what production was fed "
        "there (arrivals or entry requests, deploys, vendor outages), compare what it "
        "simulated with what TELEMETRY shows, per behaviour, KPI and entity, against "
        "persistence, and write the scorecard (Parquet, JSON, Markdown) beside the "
        "scenario, where compare and the dashboard find its trust level.",
    )
    validate.add_argument("scenario", metavar="SCENARIO", help="the twin (scenario file, YAML)")
    validate.add_argument("telemetry", metavar="TELEMETRY", help="telemetry folder")
    validate.add_argument("--mapping", metavar="FILE", help="mapping file (YAML) for other shapes")
    validate.add_argument("--from", dest="start", type=_time, required=True, metavar="T0",
                          help="start of the window (ISO 8601, UTC)")  # fmt: skip
    validate.add_argument("--to", dest="end", type=_time, required=True, metavar="T1",
                          help="end of the window (ISO 8601, UTC)")  # fmt: skip
    validate.add_argument("--seeds", type=_seeds, default=5, metavar="N",
                          help="seeds of the replay (default 5)")  # fmt: skip
    validate.add_argument("--seed", type=_seed, default=0, metavar="N",
                          help="base seed of the replay (default 0)")  # fmt: skip
    validate.add_argument(
        "--out", type=Path, metavar="DIR",
        help="folder for the scorecard (default: the scenario's folder, its report folder)",
    )  # fmt: skip


def _positive_number(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def _add_sweep_parser(commands: argparse._SubParsersAction) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="run a scenario over a grid or sample of lever values x seeds (resumable)",
        description="Run SCENARIO at every point of a design of lever values, SEEDS times "
        "each; save the runs as a Parquet dataset in DIR (rerunning into DIR resumes) and "
        "report each lever's effect, lever importance and, with --breaks, where a KPI breaks.",
    )
    sweep.add_argument("scenario", metavar="SCENARIO", help="scenario file (YAML)")
    sweep.add_argument(
        "--lever",
        action="append",
        required=True,
        metavar="PATH=SPEC",
        help="a lever: services.*.spot_share=0..0.9:10, teams.platform.oncall_size=2..8, "
        "segments.pro.price_usd_month=12,15,19 (repeat for several levers)",
    )
    sweep.add_argument("--seeds", type=_seeds, default=16, help="seeds per point (16)")
    sweep.add_argument("--days", type=_days, help="days per run (default: the scenario's)")
    sweep.add_argument("--seed", type=_seed, help="base seed (default: the scenario's)")
    sweep.add_argument(
        "--design",
        choices=("grid", "lhs"),
        default="grid",
        help="every combination (grid) or a Latin hypercube of --n points",
    )
    sweep.add_argument("--n", type=_points, help="points of a Latin hypercube")
    sweep.add_argument(
        "--out", type=Path, metavar="DIR", help="results folder (default: a new temporary folder)"
    )
    sweep.add_argument(
        "--address",
        metavar="ADDR",
        help="a Ray cluster: auto, host:port or ray://host:port "
        "(default: RAY_ADDRESS if set, else Ray on this machine)",
    )
    sweep.add_argument("--workers", type=_workers, help="Ray workers (default: every core)")
    sweep.add_argument(
        "--runner",
        choices=("auto", "serial", "ray"),
        default="auto",
        help="auto: Ray only when it should finish sooner than serial, its start-up included",
    )
    sweep.add_argument(
        "--series",
        choices=("none", "daily", "hourly"),
        default="daily",
        help="per-run series to keep (daily means by default)",
    )
    sweep.add_argument(
        "--breaks",
        metavar="CONDITION",
        help="find where a condition holds, e.g. 'availability_pct < 99.9'",
    )
    sweep.add_argument(
        "--repair",
        action="store_true",
        help="move bad files of DIR (truncated, corrupt or another sweep's shards, runs "
        "saved twice) into DIR/quarantine/ and rerun their runs",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``orgtwin`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "overwrite", False) and args.out is None:
        parser.error("--overwrite replaces the results in --out DIR: give --out too")
    try:
        return _COMMANDS[args.command](args)
    except SweepInterrupted as exc:
        print(f"orgtwin: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OrgTwinError as exc:
        print(f"orgtwin: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("orgtwin: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    from orgtwin import base_of, compare, load_scenario, run
    from orgtwin.errors import RunError
    from orgtwin.explore.verdict import verdict
    from orgtwin.runs import report
    from orgtwin.runs.results import check_results_folder, save_results
    from orgtwin.scenario import check_timing

    scenario = load_scenario(args.scenario)
    days = args.days or scenario.days
    seeds = args.seeds or scenario.seeds
    seed = scenario.seed if args.seed is None else args.seed
    check_timing(scenario, days)
    horizon = days if args.horizon_days is None else args.horizon_days
    if horizon < days:
        raise RunError(f"--horizon-days must be at least the run's {days} days, got {horizon}")
    if args.out is not None:
        check_results_folder(args.out, overwrite=args.overwrite)
    base = base_of(scenario)
    started = time.perf_counter()
    _progress(f"running {scenario.name}: {seeds} seeds x {days} days")
    change = run(scenario, days=days, seeds=seeds, seed=seed)
    if base is not None:
        _progress(f"running its base {base.name} with the same seeds")
        base_runs = run(base, days=days, seeds=seeds, seed=seed)
        table = compare(base_runs, change)
        print(verdict(base_runs, change, scenario, horizon_days=horizon), end="\n\n")
        print(report.format_comparison(table, base_name=base.name, change_name=scenario.name,
                                       seeds=seeds, days=days))  # fmt: skip
        _print_trust(args.scenario, scenario.name)
    else:
        base_runs = None
        print(report.format_summary(change))
    if args.out is not None:
        save_results(args.out, change, base_runs, overwrite=args.overwrite)
        _progress(f"wrote results to {args.out}/")
    _progress(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def _print_trust(path: str, name: str) -> None:
    """The trust level of a what-if's scenario, where a scorecard (``orgtwin validate``)
    is saved beside it: how far the comparison above can be trusted."""
    if not (Path(path).parent / "scorecard.json").is_file():
        return  # nothing saved: the fidelity stage (and scikit-learn) is not loaded
    from orgtwin.fidelity import scorecard_of

    card = scorecard_of(path, name=name)
    if card is not None:
        start, end = card.window
        print(f"{name} validated against production {start:%Y-%m-%d %H:%M} to "
              f"{end:%Y-%m-%d %H:%M} ({card.seeds} seeds): {card.summary()}")  # fmt: skip


def _sweep(args: argparse.Namespace) -> int:
    from orgtwin import KPIS, load_scenario, sweep
    from orgtwin.scenario.levers import parse_levers
    from orgtwin.sweeps.analysis import parse_condition

    scenario = load_scenario(args.scenario)
    paths = [lever.path for lever in parse_levers(args.lever)]
    if args.breaks is not None:
        parse_condition(args.breaks, columns=[*KPIS, *paths])
    days = args.days or scenario.days
    header = f"sweeping {scenario.name}: {{total:,}} runs of {days} days ({args.seeds} seeds)"
    bar = ProgressBar(sys.stderr, header=f"[orgtwin] {header}")
    try:
        result = sweep(
            scenario,
            args.lever,
            seeds=args.seeds,
            design=args.design,
            n=args.n,
            days=args.days,
            seed=args.seed,
            out=args.out,
            address=args.address,
            runner=args.runner,
            workers=args.workers,
            series=args.series,
            progress=bar,
            repair=args.repair,
        )
    finally:
        bar.finish()
    total = result.manifest["runs"]
    if result.quarantined:
        moved = len(result.quarantined)
        _progress(
            f"moved {moved:,} bad file{'s' * (moved != 1)} to {result.out / 'quarantine'}/ "
            "and reran their runs"
        )
    if result.n_ran == 0:
        _progress(f"nothing was missing: all {total:,} runs were already in {result.out}/")
    else:
        how = "serially" if result.runner == "serial" else f"on Ray ({result.workers} workers)"
        _progress(
            f"ran {result.n_ran:,} of {total:,} runs {how} in {result.wall_s:.1f} s "
            f"({result.why}); results in {result.out}/"
        )
    if result.failed.height:
        _progress(f"{result.failed.height:,} runs raised an error (see the error column)")
    print(result.report(condition=args.breaks))
    return 0


class ProgressBar:
    """A one-line progress bar for sweeps: ``progress(done, total, elapsed_s, eta_s)``.

    On a terminal the line is redrawn in place; otherwise a line is written about every
    5% so logs stay short.

    Args:
        stream: where to write (standard error).
        header: a line written before the first bar; ``{total}`` is replaced by the
            number of runs.
    """

    WIDTH = 24
    STEP_PCT = 5.0

    def __init__(self, stream: TextIO, *, header: str | None = None) -> None:
        self.stream = stream
        self.header = header
        self.tty = stream.isatty()
        self._next_pct = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int, elapsed_s: float, eta_s: float | None) -> None:
        """Show ``done`` of ``total`` runs after ``elapsed_s`` s, ``eta_s`` s left."""
        if self.header is not None:
            self.stream.write(self.header.format(total=total) + "\n")
            self.header = None
        pct = 100.0 * done / total if total else 100.0
        filled = round(self.WIDTH * pct / 100.0)
        eta = _clock(eta_s) if eta_s is not None else "--:--"
        line = (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {pct:5.1f}%  "
            f"{done:,}/{total:,} runs  elapsed {_clock(elapsed_s)}  ETA {eta}"
        )
        if self.tty:
            self.stream.write(f"\r{line}")
            self._drawn = True
        elif pct >= self._next_pct or done == total:
            self.stream.write(f"{line}\n")
            self._next_pct = (pct // self.STEP_PCT + 1) * self.STEP_PCT
        self.stream.flush()

    def finish(self) -> None:
        """End the redrawn line (on a terminal)."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _memory_mib(text: str) -> float:
    """An argparse type: a memory limit, a number of MiB above 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):  # NaN fails both comparisons
        raise argparse.ArgumentTypeError(f"must be a number of MiB above 0, got {text!r}")
    return value


def _check(args: argparse.Namespace) -> int:
    from orgtwin.scenario import memory
    from orgtwin.scenario.load import load_scenario

    scenario = load_scenario(args.scenario)
    estimate = memory.memory_estimate(scenario)
    if scenario.base is not None:  # `orgtwin run` runs the base on the same seeds
        base = load_scenario(scenario.base)
        estimate = estimate.plus(memory.memory_estimate(base, scenario.days, scenario.seeds))
    limit = memory.default_limit_mib() if args.max_memory_mib is None else args.max_memory_mib
    memory.check_memory(scenario, estimate, limit)
    extends = f", extends {scenario.base}" if scenario.base else ""
    with_base = ", its base's included" if scenario.base else ""
    counts = ", ".join(
        _counted(len(getattr(scenario, kind)), kind)
        for kind in ("segments", "services", "vendors", "teams", "interventions")
    )
    print(
        f"{args.scenario}: ok — {scenario.name}: {counts}{extends}; {estimate.words()} to run "
        f"{_counted(estimate.seeds, 'seeds')} of {_counted(estimate.days, 'days')}{with_base}"
    )
    return 0


def _counted(n: int, plural: str) -> str:
    """``3 teams``, ``1 team``."""
    return f"{n:,} {plural if n != 1 else plural.removesuffix('s')}"


def _schema(args: argparse.Namespace) -> int:
    from orgtwin.scenario.reference import scenario_json_schema

    print(json.dumps(scenario_json_schema(), indent=2))
    return 0


def _progress(message: str) -> None:
    print(f"[orgtwin] {message}", file=sys.stderr, flush=True)


def _synth(args: argparse.Namespace) -> int:
    from orgtwin.runs.synth import synth
    from orgtwin.scenario.load import load_scenario

    scenario = load_scenario(args.scenario)
    days = args.days or scenario.days
    seed = scenario.seed if args.seed is None else args.seed
    _progress(f"running {scenario.name} for {days} days (seed {seed})")
    out = synth(scenario, days=days, seed=seed, out=args.out)
    print(f"telemetry of {scenario.name} ({days} days, seed {seed}) written to {out}")
    return 0


def _learn(args: argparse.Namespace) -> int:
    from orgtwin.learn.api import learn_to

    if args.out.suffix not in (".yaml", ".yml"):
        raise OrgTwinError(f"{args.out}: --out must be a scenario file ending in .yaml")
    started = time.perf_counter()
    path, report = learn_to(
        args.telemetry, args.out, base=args.base, mapping=args.mapping,
        drop_bad_rows=args.drop_bad_rows, since=args.since, only=args.only,
    )  # fmt: skip
    print(
        f"{path}: {len(report.applied)} values learned into the scenario, from "
        f"{len(report.fits)} fits of behaviours and entities, in "
        f"{time.perf_counter() - started:.1f} s; report: {path.parent / 'report.md'}"
    )
    for warning in report.warnings:
        print(f"  note: {warning}")
    return 0


def _watch(args: argparse.Namespace) -> int:
    from orgtwin.fidelity.watch import watch

    if args.out is not None and args.out.suffix != ".parquet":
        raise OrgTwinError(f"{args.out}: --out must be a file ending in .parquet")
    reference = tuple(args.reference) if args.reference else None
    if reference is not None and reference[0] >= reference[1]:
        raise OrgTwinError("--reference FROM must be before TO")
    if args.pool and reference is None:
        raise OrgTwinError("--pool calibrates on the reference residuals: give --reference too")
    if args.follow:
        return _follow(args, reference)
    found = watch(
        args.scenario, args.telemetry, mapping=args.mapping, reference=reference,
        alarms_per_week=args.alarms_per_week, clip=args.clip, pool=args.pool,
    )  # fmt: skip
    if args.out is not None:
        found.save(args.out)
    streams = found.thresholds.height
    print(
        f"{found.alarms.height} alarm(s) on {streams} stream(s) of behaviour and entity"
        + (f"; written to {args.out}" if args.out is not None else "")
    )
    return 0


def _follow(args: argparse.Namespace, reference: tuple | None) -> int:
    """``watch --follow``: each alarm as a line when raised, until Ctrl-C (exit 130)."""
    import threading

    from orgtwin.fidelity.watch import follow

    def emit(row: dict) -> None:
        print(f"{row['raised']:%Y-%m-%d %H:%M} ALARM {row['words']}", flush=True)

    def save(found: object) -> None:
        if args.out is not None:
            found.save(args.out)  # type: ignore[attr-defined]

    _progress(f"following {args.telemetry} (every {args.poll:g} s; Ctrl-C to stop)")
    follow(
        args.scenario, args.telemetry, emit=emit, stop=threading.Event(), poll_s=args.poll,
        mapping=args.mapping, reference=reference, alarms_per_week=args.alarms_per_week,
        clip=args.clip, pool=args.pool, on_watch=save,
    )  # fmt: skip
    return 0  # pragma: no cover (follow ends on Ctrl-C, which main turns into 130)


def _validate(args: argparse.Namespace) -> int:
    from orgtwin.fidelity.scorecard import validate

    if args.start >= args.end:
        raise OrgTwinError("--from must be before --to")
    started = time.perf_counter()
    _progress(f"replaying {args.scenario} from {args.start} to {args.end} ({args.seeds} seeds)")
    card = validate(
        args.scenario, args.telemetry, start=args.start, end=args.end, seeds=args.seeds,
        seed=args.seed, mapping=args.mapping,
    )  # fmt: skip
    out = args.out if args.out is not None else Path(args.scenario).parent
    paths = card.save(out)
    print(card.summary())
    for row in card.lines.iter_rows(named=True):
        if row["verdict"] != "mirrors":
            print(f"  {row['verdict']}: {row['words']}")
    print(f"scorecard: {paths['scorecard.md']} (and .json, .parquet), "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
    return 0


_COMMANDS = {
    "run": _run, "sweep": _sweep, "check": _check, "schema": _schema, "synth": _synth,
    "learn": _learn, "watch": _watch, "validate": _validate,
}  # fmt: skip

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
