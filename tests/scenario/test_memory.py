"""The memory estimate of a run (orgtwin/scenario/memory.py): what it counts, and how close
it comes to the peak memory of real runs.

The calibration test runs a few scenarios, each dominated by one term (the series, the
users, the sampled users), in fresh processes and compares their peak resident memory
(``ru_maxrss``) with the estimate: within :data:`CALIBRATION_FACTOR` either way. A
segment that grows is estimated as if nobody churned, so there the estimate is an upper
bound and is only checked from below.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from orgtwin.errors import ScenarioError
from orgtwin.scenario.load import load_scenario
from orgtwin.scenario.memory import (
    CALIBRATION_FACTOR,
    MIB,
    SERIES_METRICS,
    MemoryEstimate,
    check_memory,
    default_limit_mib,
    memory_estimate,
    peak_users,
)
from orgtwin.telemetry.series import ENTITY_TYPES, metrics_of

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
SEGMENTS = ("free", "pro_us", "pro_eu", "enterprise")


def _baseline(**overrides: Any):
    return load_scenario(BASELINE, overrides=overrides)


def test_the_estimate_counts_every_series_metric_the_telemetry_declares():
    assert {kind: len(metrics_of(kind)) for kind in ENTITY_TYPES} == SERIES_METRICS


def test_seeds_days_and_users_add_up():
    base = memory_estimate(_baseline(), days=30, seeds=1)
    assert memory_estimate(_baseline(), days=30, seeds=4).kept == pytest.approx(4 * base.kept)
    assert memory_estimate(_baseline(), days=60, seeds=1).kept > 1.5 * base.kept
    crowd = _baseline(segments={s: {"n_users": 5_000_000} for s in SEGMENTS})
    assert memory_estimate(crowd, days=30, seeds=1).kept > base.kept + 4 * 5e6 * 32
    both = base.plus(base)
    assert (both.process, both.kept, both.once) == (base.process, 2 * base.kept, base.once)


def test_users_grow_by_every_arrival_the_acquisition_law_allows():
    quiet = {"acquisition": {"base_per_day": 100, "word_of_mouth_per_user_day": 0}}
    sc = _baseline(segments={"free": {"n_users": 1000, **quiet}})
    assert peak_users(sc, 30)["free"] == pytest.approx(1000 + 30 * 100)
    cheaper = _baseline(
        segments={"pro_us": {"n_users": 1000, **quiet}},
        interventions=[{"kind": "price_change", "at": 1, "segments": ["pro_us"], "factor": 0.5}],
    )
    assert peak_users(cheaper, 30)["pro_us"] == pytest.approx(1000 + 30 * 100 * 0.5**-1.2)


def test_a_segment_that_grows_without_bound_is_refused():
    viral = {"acquisition": {"base_per_day": 1e6, "word_of_mouth_per_user_day": 0.1}}
    sc = _baseline(days=3650, segments={"free": viral})
    estimate = memory_estimate(sc)
    assert estimate.words() == "more than 1,000,000,000 MiB"
    with pytest.raises(ScenarioError, match="got more than 1,000,000,000 MiB"):
        check_memory(sc, estimate, default_limit_mib())


def test_the_limit_is_half_the_memory_available():
    assert default_limit_mib() > 0
    assert MemoryEstimate(100 * MIB, 0, 0, 1, 1).words() == "about 100 MiB"


# --------------------------------------------------------------------------- calibration

MEASURE = """
import json, pathlib, resource, sys
import orgtwin
spec = json.loads(sys.argv[1])
scenario = orgtwin.load_scenario(spec["path"])
orgtwin.run(scenario, days=spec["days"], seeds=spec["seeds"])
status = pathlib.Path("/proc/self/status")
if status.exists():  # this process's own peak (ru_maxrss keeps the parent's across exec)
    line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
    print(int(line.split()[1]) / 1024)
else:  # macOS: bytes, and no inheritance across exec
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)
"""
"""Runs a scenario in a fresh process and prints its peak resident memory, MiB."""


def _services(n: int) -> dict[str, Any]:
    teams = ("web", "core", "payments", "data", "platform")
    return {
        f"s{i}": {"team": teams[i % 5], "replicas": 2, "capacity_rps_per_replica": 1000,
                  "calls": {f"s{i + 1}": 1.0} if i % 20 != 19 and i + 1 < n else {}}
        for i in range(n)
    }  # fmt: skip


def _shape(name: str) -> tuple[dict[str, Any], int, int]:
    """A scenario mapping dominated by one term, with its days and seeds."""
    data = yaml.safe_load(BASELINE.read_text(encoding="utf-8"))
    segments = data["segments"]
    if name == "baseline":
        return data, 30, 2
    if name == "users":
        for segment in segments.values():
            segment["n_users"] = 1_000_000
        return data, 2, 1
    if name == "sampled_users":
        data["telemetry"] = {"user_sample_per_segment": 20_000}
        for segment in segments.values():
            segment["n_users"] = 20_000
        return data, 20, 1
    for segment in segments.values():
        segment["n_users"] = 100
    if name == "series":
        data["services"] = _services(200)
        for i, feature in enumerate(data["features"].values()):
            feature["entry"] = f"s{20 * i}"
        data["vendors"] = {}
        return data, 40, 1
    assert name == "growth"
    for segment in segments.values():
        segment["acquisition"] = {"base_per_day": 1000, "word_of_mouth_per_user_day": 0.1}
    return data, 30, 1


def _measured_mib(path: Path, days: int, seeds: int) -> float:
    spec = json.dumps({"path": str(path), "days": days, "seeds": seeds})
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", MEASURE, spec],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=True,
    )  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["baseline", "users", "sampled_users", "series", "growth"])
def test_the_estimate_is_within_its_factor_of_a_measured_run(shape: str, tmp_path: Path):
    data, days, seeds = _shape(shape)
    path = tmp_path / f"{shape}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    estimated = memory_estimate(load_scenario(path), days=days, seeds=seeds).mib
    measured = _measured_mib(path, days, seeds)
    assert estimated >= measured / CALIBRATION_FACTOR, (shape, estimated, measured)
    if shape != "growth":  # nobody churns in the estimate: an upper bound for growth
        assert estimated <= measured * CALIBRATION_FACTOR, (shape, estimated, measured)
