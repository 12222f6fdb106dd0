"""Shared fixtures: the repository paths, a short seeded baseline run, a small scenario.

``small_spec`` is a complete scenario as a plain mapping (a fresh copy per test, so a
test may change it); ``small_scenario`` is the same mapping loaded and validated. It has
2 segments, 3 features, 5 services in a DAG with fan-out (a diamond: gateway calls
catalog and users, catalog calls users again), 2 vendors and 2 teams, and runs a day in
well under a second.

Helpers that several test files share are fixtures too:

- runs: ``make_run_result`` (a small hand-made run whose numbers depend on the seed) and
  ``make_summary_set`` (a run set holding only a summary, KPIs as given);
- sweeps: ``tiny_sweep`` (a 9-point x 2-seed x 3-day serial sweep of a scenario),
  ``synthetic_sweep`` (a grid sweep's runs with KPIs computed from the levers) and
  ``slo_sweep`` (a synthetic sweep that breaks its SLO in a known box of two levers);
- explore: ``price_increase_exploration`` (the price increase explored once a session).
"""

from __future__ import annotations

import copy
import itertools
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import polars as pl
import pytest

from orgtwin import load_scenario, simulate
from orgtwin.explore import explore
from orgtwin.runs import results
from orgtwin.runs.results import RunResult, RunSet
from orgtwin.scenario.spec import Scenario
from orgtwin.sweeps.api import SweepResult, sweep
from orgtwin.telemetry import schemas
from orgtwin.world.kpis import KPIS

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
BASELINE = SCENARIOS / "baseline.yaml"
BASELINE_SEED = 11
BASELINE_DAYS = 14

SMALL: dict[str, Any] = {
    "name": "small",
    "start": "2026-01-05T00:00:00",
    "days": 7,
    "seed": 3,
    "seeds": 2,
    "segments": {
        "free": {
            "plan": "free",
            "n_users": 20000,
            "price_usd_month": 0,
            "sessions_per_user_day": 1.0,
            "features": {"browse": 0.7, "search": 0.3},
            "acquisition": {"base_per_day": 60},
        },
        "pro": {
            "plan": "pro",
            "n_users": 6000,
            "price_usd_month": 20,
            "utc_offset_hours": -5,
            "sessions_per_user_day": 2.0,
            "features": {"browse": 0.5, "search": 0.2, "buy": 0.3},
            "acquisition": {"base_per_day": 20},
        },
    },
    "features": {
        "browse": {"entry": "gateway", "requests_per_session": 12},
        "search": {"entry": "catalog", "requests_per_session": 6},
        "buy": {"entry": "checkout", "requests_per_session": 4},
    },
    "services": {
        "gateway": {
            "team": "web",
            "replicas": 3,
            "capacity_rps_per_replica": 8,
            "calls": {"catalog": 2.0, "users": 1.0},
        },
        "catalog": {
            "team": "web",
            "replicas": 3,
            "capacity_rps_per_replica": 10,
            "calls": {"users": 0.5},
        },
        "checkout": {
            "team": "web",
            "replicas": 2,
            "capacity_rps_per_replica": 5,
            "replica_cost_usd_hour": 0.2,
            "calls": {"users": 1.0, "payments": 0.8},
        },
        "users": {
            "team": "platform",
            "replicas": 4,
            "capacity_rps_per_replica": 15,
            "replica_cost_usd_hour": 0.3,
            "vendors": {"authz": 0.1},
        },
        "payments": {
            "team": "platform",
            "replicas": 2,
            "capacity_rps_per_replica": 5,
            "replica_cost_usd_hour": 0.25,
            "spot_discount": 0.5,
            "vendors": {"stripe": 1.0},
        },
    },
    "vendors": {
        "stripe": {"kind": "payments", "latency_ms": 200, "price_usd_per_1k_calls": 2.0},
        "authz": {"kind": "auth", "latency_ms": 50, "price_usd_per_1k_calls": 0.1},
    },
    "teams": {
        "web": {"headcount": 6, "oncall_size": 3, "changes_per_engineer_day": 1.5},
        "platform": {"headcount": 4, "oncall_size": 2, "utc_offset_hours": 1},
    },
}


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (scenario paths in docs and examples are relative to it)."""
    return ROOT


@pytest.fixture(scope="session")
def baseline_path() -> Path:
    """``scenarios/baseline.yaml``."""
    return BASELINE


@pytest.fixture(scope="session")
def baseline_scenario(baseline_path: Path) -> Scenario:
    """The baseline scenario, loaded once."""
    return load_scenario(baseline_path)


@pytest.fixture(scope="session")
def baseline_run(baseline_scenario: Scenario) -> RunResult:
    """One 14-day run of the baseline with a fixed seed (shared: do not mutate)."""
    return simulate(baseline_scenario, seed=BASELINE_SEED, days=BASELINE_DAYS)


@pytest.fixture
def small_spec() -> dict[str, Any]:
    """The small scenario as a mapping; a fresh deep copy for every test."""
    return copy.deepcopy(SMALL)


@pytest.fixture
def small_scenario(small_spec: dict[str, Any]) -> Scenario:
    """The small scenario, validated."""
    return load_scenario(small_spec)


# --------------------------------------------------------------------------- runs

HAND_MADE_START = datetime(2026, 1, 5)


def _hand_made_run(
    replicate: int, seed: int, *, scenario: str = "base", days: int = 1
) -> RunResult:
    kinds = [("segment", "pro", "active_users"), ("feature", "search", "requests")]
    kinds += [("feature", "search", "errors"), ("team", "core", "oncall_size")]
    series = pl.DataFrame(
        [
            (tick, kind, entity, metric, float(seed + tick + 10 * index))
            for index, (kind, entity, metric) in enumerate(kinds)
            for tick in range(4)
        ],
        schema=schemas.SERIES,
        orient="row",
    )
    start = HAND_MADE_START
    events = {name: schemas.empty(name) for name in schemas.EVENT_TABLES}
    events["deploys"] = pl.DataFrame(
        {
            "time": [start, start + timedelta(hours=seed % 5 + 1)],
            "service": ["api", "web"],
            "team": ["core", "core"],
            "batch_size": [1, seed % 4 + 1],
            "failed": [False, seed % 2 == 0],
            "lead_time_hours": [2.0, 3.5 + seed],
        },
        schema=schemas.DEPLOYS,
    )
    events["incidents"] = pl.DataFrame(
        {
            "incident_id": [1, 2],
            "service": ["api", "web"],
            "team": ["core", "core"],
            "severity": [1, 3],
            "cause": ["deploy", "vendor"],
            "started": [start, start + timedelta(hours=2)],
            "detected": [start, start + timedelta(hours=2)],
            "resolved": [start + timedelta(hours=seed % 3 + 1), None],
        },
        schema=schemas.INCIDENTS,
    )
    return RunResult(scenario, seed, replicate, start, days, 0.999, 300.0, series, events)


@pytest.fixture
def make_run_result() -> Callable[..., RunResult]:
    """``make(replicate, seed, *, scenario="base", days=1)``: a small but complete run.

    Four ticks of four series (``segment pro active_users``, ``feature search requests``
    and ``errors``, ``team core oncall_size``) valued ``seed + tick + 10 * series``, two
    deploys and two incidents (the second still open) whose details depend on the seed;
    every other event table is empty. It starts on :data:`HAND_MADE_START`.
    """
    return _hand_made_run


def _summary_set(scenario: str, seeds: list[int], **kpis: list[float]) -> RunSet:
    n = len(seeds)
    columns: dict[str, list[object]] = {
        "run_id": [f"{scenario}/{i}" for i in range(n)],
        "scenario": [scenario] * n,
        "replicate": list(range(n)),
        "seed": seeds,
        "days": [30] * n,
    }
    columns |= {kpi: list(kpis.get(kpi, [1.0] * n)) for kpi in KPIS}
    summary = pl.DataFrame(columns, schema=results.SUMMARY)
    return RunSet(scenario, 30, summary, pl.DataFrame(schema=schemas.SERIES), {})


@pytest.fixture
def make_summary_set() -> Callable[..., RunSet]:
    """``make(scenario, seeds, **kpis)``: a 30-day set holding only a summary.

    One run per seed; the KPIs named get the values given (one per seed), every other
    KPI is 1.0. The set has no series and no event tables.
    """
    return _summary_set


# --------------------------------------------------------------------------- sweeps


@dataclass(frozen=True)
class TinySweep:
    """A 9-point x 2-seed x 3-day serial sweep of a scenario (about a second).

    Call it as ``tiny_sweep(scenario, out, **options)``; options override the defaults
    (``seeds=2``, ``days=3``, ``runner="serial"``).
    """

    levers: dict[str, str]
    days: int
    chunk: int = 5
    """Runs per chunk after the first run, fixed: the sweep sizes its chunks by the first
    run's time (:func:`orgtwin.sweeps.executors.chunk_size`), which follows the machine's
    speed, and the store's tests name the shards the runs land in."""

    def __call__(self, scenario: Scenario, out: Path, **options: Any) -> SweepResult:
        options = {"seeds": 2, "days": self.days, "out": out, "runner": "serial"} | options
        with mock.patch("orgtwin.sweeps.api.chunk_size", lambda *_, **__: self.chunk):
            return sweep(scenario, self.levers, **options)

    @staticmethod
    def rows(result: SweepResult) -> pl.DataFrame:
        """The runs without the machine-dependent ``wall_s``, in (point, replicate) order."""
        return result.runs.drop("wall_s").sort("point", "replicate")

    @staticmethod
    def temp_files(folder: Path) -> list[Path]:
        """Files an unfinished atomic write left behind under ``folder``."""
        return [p for p in folder.rglob("*") if ".tmp-" in p.name]


@pytest.fixture
def tiny_sweep() -> TinySweep:
    """Sweeps of on-call size 1..3 of platform x spot share 0, 0.4, 0.8 of every service."""
    levers = {"teams.platform.oncall_size": "1..3", "services.*.spot_share": "0..0.8:3"}
    return TinySweep(levers=levers, days=3)


def _synthetic_sweep(
    levers: dict[str, list[Any]],
    replicates: int,
    kpis: Callable[[pl.DataFrame], dict[str, Any]],
) -> pl.DataFrame:
    points = list(itertools.product(*levers.values()))
    frame = pl.DataFrame(
        {
            "point": np.repeat(np.arange(len(points)), replicates),
            "replicate": np.tile(np.arange(replicates), len(points)),
            **{
                name: [p[i] for p in points for _ in range(replicates)]
                for i, name in enumerate(levers)
            },
        }
    ).with_columns(seed=pl.col("point") * 100 + pl.col("replicate"))
    return frame.with_columns(**kpis(frame), error=pl.lit(None, dtype=pl.String))


@pytest.fixture
def synthetic_sweep() -> Callable[..., pl.DataFrame]:
    """``make(levers, replicates, kpis)``: the runs of a grid sweep, without simulating.

    Every combination of the lever values (``{path: [values]}``) times ``replicates``,
    with ``point``, ``replicate``, ``seed``, one column per lever, the KPI columns
    ``kpis(frame)`` returns and a null ``error``.
    """
    return _synthetic_sweep


@dataclass(frozen=True)
class SloSweep:
    """A synthetic sweep whose availability breaks its SLO in a known box of two levers.

    ``availability_pct`` is about 99.5 exactly when ``oncall < oncall_cut`` and
    ``spot > spot_cut``, else about 99.95; ``noise`` flips that many labels at random.
    """

    oncall: str = "teams.platform.oncall_size"
    spot: str = "services.*.spot_share"
    oncall_levels: tuple[int, ...] = tuple(range(1, 9))
    spot_levels: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))
    oncall_cut: int = 4
    spot_cut: float = 0.6

    def __call__(
        self,
        *,
        noise: float = 0.0,
        seed: int = 2,
        oncall: Any = None,
        spot: Any = None,
        replicates: int = 3,
    ) -> pl.DataFrame:
        rng = np.random.default_rng(seed)

        def kpis(f: pl.DataFrame) -> dict[str, np.ndarray]:
            bad = (f[self.oncall].to_numpy() < self.oncall_cut) & (
                f[self.spot].to_numpy() > self.spot_cut
            )
            bad ^= rng.random(f.height) < noise
            return {"availability_pct": np.where(bad, 99.5, 99.95) + rng.normal(0, 0.01, f.height)}

        levels = {
            self.oncall: list(self.oncall_levels if oncall is None else oncall),
            self.spot: list(self.spot_levels if spot is None else spot),
        }
        return _synthetic_sweep(levels, replicates, kpis)


@pytest.fixture
def slo_sweep() -> SloSweep:
    """``slo_sweep(noise=, seed=, oncall=, spot=, replicates=)``: see :class:`SloSweep`."""
    return SloSweep()


# --------------------------------------------------------------------------- explore

PRICE_INCREASE = SCENARIOS / "price_increase.yaml"


@pytest.fixture(scope="session")
def price_increase_exploration() -> Any:
    """The price increase (12 -> 15 USD) against the baseline, 30 days x 3 seeds (shared)."""
    return explore(str(PRICE_INCREASE), days=30, seeds=3)


def accepts_files(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


@pytest.fixture
def unwritable_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may create files in: a read-only one, or (for root) ``/sys``."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if not accepts_files(folder):
            yield folder
        elif not accepts_files(Path("/sys")):
            yield Path("/sys")
        else:
            pytest.skip("no folder here refuses new files (root, and /sys is writable)")
    finally:
        folder.chmod(0o755)
