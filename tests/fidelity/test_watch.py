"""The drift watch, end to end: telemetry that changes at a known hour against the twin
of the scenario before the change.

Each case synthesises a small organisation twice with one seed: as it is, and with one
behaviour of one entity changed (a service twice as slow, its errors up, a team's deploys
failing three times as often, a segment's users leaving twice as fast, its sessions up
half, a team's incidents taking twice as long to restore, a vendor down five times as
often). The telemetry is the first run's up to the change hour and the second's from
then on. ``watch`` must flag that behaviour of that entity within a bounded delay, with a
change point near the change hour and a magnitude of the right sign, and raise no more
other alarms than its false-alarm budget allows.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from scipy import stats

from orgtwin.cli import main
from orgtwin.fidelity.watch import ALARMS, follow, reach, watch
from orgtwin.runs.synth import synth
from orgtwin.scenario import load_scenario
from orgtwin.telemetry.folder import read_telemetry, write_telemetry
from orgtwin.telemetry.schemas import TABLE_RULES
from tests.learn.conftest import LEARNING_SPEC

DAYS, CHANGE_DAY, REFERENCE_DAYS = 42, 28, 14
SEEDS = (1, 2)


def drifted(change: str) -> dict[str, Any]:
    """The learning organisation with one behaviour of one entity changed."""
    spec = copy.deepcopy(LEARNING_SPEC)
    services, teams, main_segment = spec["services"], spec["teams"], spec["segments"]["main"]
    if change == "latency":
        services["api"]["latency"] = {"base_ms": 40.0}  # twice the default 20 ms
    elif change == "errors":
        services["api"]["base_error_rate"] = 0.005
    elif change == "change_failure":
        teams["ops"]["change_failure"]["base"] = 0.24
    elif change == "churn":
        main_segment["churn"]["base_monthly"] = 0.8
    elif change == "demand":
        main_segment["sessions_per_user_day"] = 1.5
    elif change == "restore":
        teams["ops"]["incidents"]["restore_median_hours"] = 6.0  # twice the 3 hours
    elif change == "vendor_outages":
        spec["vendors"]["flaky"]["outage_rate_per_month"] = 50.0  # five times 10
    return spec


CASES = {  # change → (behaviour, entity, the latest alarm after the change, sign)
    "latency": ("latency", "api", timedelta(hours=2), 1),
    "errors": ("errors", "api", timedelta(hours=12), 1),
    "change_failure": ("change_failure", "ops", timedelta(days=7), 1),
    "churn": ("churn", "main", timedelta(days=7), 1),
    "demand": ("demand", "main", timedelta(days=2), 1),
    "restore": ("restore", "ops", timedelta(days=10), 1),
    "vendor_outages": ("vendor_outages", "flaky", timedelta(days=3), 1),
}
EARLY = {"restore": timedelta(days=7), "vendor_outages": timedelta(days=1)}
"""How long before the change an alarm may be raised and its change point lie (else: not
raised before it; the change point a day before): a restore is a point per incident, a
few a week, and the run that raises the alarm may begin with slow restores of chance a
few incidents before the change; outages are a point a day, and an outage of chance the
day before the change raises the alarm (the vendor is rare) whose episode the change's
outages then continue."""


def splice(before: Path, after: Path, at: datetime, out: Path) -> Path:
    """A telemetry folder: ``before``'s rows up to ``at``, ``after``'s from then on (tables
    without time, ``calls`` and ``customers``, from ``after``)."""
    first, then = read_telemetry(before).tables, read_telemetry(after).tables
    tables = {}
    for name, frame in then.items():
        times = TABLE_RULES[name].times
        if name in ("calls", "customers") or not times:
            tables[name] = frame.collect()
            continue
        when = pl.col(times[0]).cast(pl.Datetime("us"))
        later = frame.filter(when >= at)
        if name in ("incidents", "pages"):  # the second run's incidents are others
            later = later.with_columns(pl.col("incident_id") + 1_000_000)
        tables[name] = pl.concat([first[name].filter(when < at).collect(), later.collect()])
    write_telemetry(out, tables)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Per seed: the undrifted run's folder; per change and seed: the spliced folder."""
    twin = load_scenario(copy.deepcopy(LEARNING_SPEC))
    at = twin.start + timedelta(days=CHANGE_DAY)
    found: dict = {"twin": twin, "at": at}
    for seed in SEEDS:
        root = tmp_path_factory.mktemp(f"watch{seed}")
        plain = synth(twin, days=DAYS, seed=seed, out=root / "plain")
        found[("plain", seed)] = plain
        for change in CASES:
            other = synth(load_scenario(drifted(change)), days=DAYS, seed=seed,
                          out=root / change)  # fmt: skip
            found[(change, seed)] = splice(plain, other, at, root / f"{change}-spliced")
    return found


def watched(runs: dict, key: tuple) -> Any:
    twin = runs["twin"]
    reference = (twin.start, twin.start + timedelta(days=REFERENCE_DAYS))
    return watch(twin, runs[key], reference=reference)


def allowed(found: Any, weeks: float) -> int:
    """The most false alarms the budget allows over ``weeks`` for every behaviour
    watched, at the 99.9% Poisson quantile (budget: one a week per behaviour)."""
    behaviours = found.thresholds["behaviour"].n_unique()
    return int(stats.poisson.ppf(0.999, behaviours * weeks))


@pytest.mark.parametrize("change", sorted(CASES))
def test_a_drift_is_flagged_on_its_behaviour_and_entity_within_a_bounded_delay(
    runs: dict, change: str
):
    behaviour, entity, latest, sign = CASES[change]
    at = runs["at"]
    for seed in SEEDS:
        found = watched(runs, (change, seed))
        ours = found.alarms.filter(
            (pl.col("behaviour") == behaviour)
            & (pl.col("entity") == entity)
            & (pl.col("raised") >= at - EARLY.get(change, timedelta(0)))
        )
        assert ours.height >= 1, (seed, found.alarms)
        first = ours.row(0, named=True)
        assert first["raised"] <= at + latest, (seed, first)
        early = max(EARLY.get(change, timedelta(0)), timedelta(days=1))
        assert first["since"] >= at - early, (seed, first)
        assert (first["magnitude"] > 0) == (sign > 0), (seed, first)
        assert first["words"].startswith(f"{entity}: {behaviour.replace('_', ' ')} is ")
        others = found.alarms.filter(
            (pl.col("behaviour") != behaviour) | (pl.col("entity") != entity)
        )
        weeks = (DAYS - REFERENCE_DAYS) / 7
        assert others.height <= allowed(found, weeks), (seed, others)


def test_a_slower_network_is_flagged_on_the_callers_client_latency(runs: dict, tmp_path: Path):
    """The simulator has no network delay: from the change hour, ``gateway``'s client
    latency is put up by half (its wait on ``api`` grows, ``api``'s own latency holds).
    The watch flags ``client_latency`` of ``gateway`` within two hours, with the change
    point at the hour and the wait added in ms; the slow ``api`` of the latency case,
    which ``gateway`` also waits on, raises no client latency alarm."""
    at = runs["at"]
    twin = runs["twin"]
    reference = (twin.start, twin.start + timedelta(days=REFERENCE_DAYS))
    for seed in SEEDS:
        folder = tmp_path / f"network{seed}"
        tables = {n: f.collect() for n, f in read_telemetry(runs[("plain", seed)]).tables.items()}
        later = (pl.col("service") == "gateway") & (pl.col("time") >= at)
        tables["requests"] = tables["requests"].with_columns(
            client_latency_p95_ms=pl.when(later)
            .then(pl.col("client_latency_p95_ms") * 1.5)
            .otherwise(pl.col("client_latency_p95_ms"))
        )
        write_telemetry(folder, tables)
        found = watch(twin, folder, reference=reference)
        ours = found.alarms.filter(
            (pl.col("behaviour") == "client_latency") & (pl.col("entity") == "gateway")
        )
        assert ours.height >= 1, (seed, found.alarms)
        first = ours.row(0, named=True)
        assert at <= first["raised"] <= at + timedelta(hours=2), (seed, first)
        assert first["since"] == at and first["unit"] == "ms" and first["magnitude"] > 0
        assert first["words"].startswith("gateway: client latency is +"), first["words"]
        others = found.alarms.filter(pl.col("behaviour") != "client_latency")
        assert others.height <= allowed(found, (DAYS - REFERENCE_DAYS) / 7), (seed, others)
        slow_api = watched(runs, ("latency", seed)).alarms
        assert slow_api.filter(pl.col("behaviour") == "client_latency").is_empty(), slow_api


def test_stable_telemetry_raises_no_more_alarms_than_the_budget(runs: dict):
    total, budget = 0, 0
    for seed in SEEDS:
        found = watched(runs, ("plain", seed))
        after = found.alarms.filter(
            pl.col("raised") >= runs["twin"].start + timedelta(days=REFERENCE_DAYS)
        )
        total += after.height
        budget += found.thresholds["behaviour"].n_unique() * (DAYS - REFERENCE_DAYS) / 7
        assert dict(found.alarms.schema) == ALARMS
    assert total <= stats.poisson.ppf(0.999, budget), (total, budget)


def test_kept_thresholds_are_the_ones_a_new_calibration_gives(
    runs: dict, monkeypatch: pytest.MonkeyPatch
):
    """A watch handed the thresholds an earlier one calibrated (as ``follow`` keeps them
    between looks) gives the same thresholds and alarms, and calibrates again only the
    streams on the twin's count noise, which depend on every point. The residuals are
    the same to the last bit (a day's churn and deploy failures were summed by a hashed
    group-by, whose threads added them in an order that moved the last bits)."""
    import orgtwin.fidelity.watch as watching

    twin, folder = runs["twin"], runs[("plain", SEEDS[0])]
    reference = (twin.start, twin.start + timedelta(days=CHANGE_DAY))  # demand's: bootstrap
    fresh = watch(twin, folder, reference=reference)
    kept: dict[tuple, float] = {}
    watch(twin, folder, reference=reference, calibrated=kept)
    calls = []
    calibrate = watching.detect.calibrate
    monkeypatch.setattr(watching.detect, "calibrate",
                        lambda *a, **k: calls.append(1) or calibrate(*a, **k))  # fmt: skip
    again = watch(twin, folder, reference=reference, calibrated=kept)
    assert again.residuals.equals(fresh.residuals)
    assert again.thresholds.equals(fresh.thresholds)
    assert again.alarms.equals(fresh.alarms)
    hows = fresh.thresholds["null"].to_list()
    counted = sum(how.startswith("the twin's count noise") for how in hows)
    assert len(calls) == counted < len(hows), (len(calls), hows)
    assert any(how.startswith("block bootstrap") for how in hows), hows


def test_reach_follows_the_call_graph_downstream(runs: dict):
    twin = runs["twin"]
    assert reach(twin, "latency", "api") == ["service gateway", "feature browse", "segment main"]
    assert reach(twin, "errors", "flaky") == ["service gateway", "feature browse", "segment main"]
    assert reach(twin, "change_failure", "ops") == ["service api", *reach(twin, "latency", "api")]
    assert reach(twin, "demand", "main") == []


def test_watch_on_the_command_line_writes_the_alarms_and_follows(
    runs: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    scenario = tmp_path / "twin.yaml"
    import yaml

    scenario.write_text(yaml.safe_dump(copy.deepcopy(LEARNING_SPEC)), encoding="utf-8")
    out = tmp_path / "alarms.parquet"
    start = runs["twin"].start
    args = ["watch", str(scenario), str(runs[("latency", SEEDS[0])]), "--out", str(out),
            "--reference", start.isoformat(),
            (start + timedelta(days=REFERENCE_DAYS)).isoformat()]  # fmt: skip
    assert main(args) == 0
    said = capsys.readouterr().out
    alarms = pl.read_parquet(out)
    assert dict(alarms.schema) == ALARMS and alarms.height >= 1
    assert alarms.filter((pl.col("behaviour") == "latency") & (pl.col("entity") == "api")).height
    assert f"{alarms.height} alarm(s) on" in said
    assert main(["watch", str(scenario), str(runs[("plain", SEEDS[0])]), "--out",
                 str(tmp_path / "alarms.csv")]) == 2  # fmt: skip
    assert "--out must be a file ending in .parquet" in capsys.readouterr().err
    pooled = tmp_path / "pooled.parquet"
    assert main([*args[:4], str(pooled), *args[5:], "--pool", "--clip", "4"]) == 0
    capsys.readouterr()
    found = pl.read_parquet(pooled)  # the slow api is flagged with the options too
    assert found.filter((pl.col("behaviour") == "latency") & (pl.col("entity") == "api")).height
    assert main([*args[:5], "--pool"]) == 2
    assert "--pool calibrates on the reference residuals" in capsys.readouterr().err


def test_follow_raises_the_alarm_when_the_file_that_shows_it_arrives(runs: dict, tmp_path: Path):
    """A folder whose requests come as a subfolder of files: the later file, where api
    turned slow, arrives while the watch follows; its alarm is emitted then, and the
    alarms of the earlier files are emitted once."""
    import shutil
    import threading
    import time

    spliced = runs[("latency", SEEDS[0])]
    folder = tmp_path / "live"
    shutil.copytree(spliced, folder)
    requests = pl.read_parquet(folder / "requests.parquet")
    (folder / "requests.parquet").unlink()
    (folder / "requests").mkdir()
    at = runs["at"]
    requests.filter(pl.col("time") < at).write_parquet(folder / "requests" / "part-0.parquet")
    emitted: list[dict] = []
    watched_count = []
    stop = threading.Event()
    twin = runs["twin"]
    reference = (twin.start, twin.start + timedelta(days=REFERENCE_DAYS))
    worker = threading.Thread(
        target=follow,
        args=(twin, folder),
        kwargs=dict(emit=emitted.append, stop=stop, poll_s=0.2, reference=reference,
                    on_watch=watched_count.append),
    )  # fmt: skip
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while not watched_count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert watched_count, "the first look at the folder never ended"
        slow = [a for a in emitted if (a["behaviour"], a["entity"]) == ("latency", "api")]
        assert not slow  # nothing yet: api is as the twin says before the change
        before = len(emitted)
        later = requests.filter(pl.col("time") >= at)
        later.write_parquet(folder / "requests" / ".part-1.tmp")  # written, then renamed
        (folder / "requests" / ".part-1.tmp").rename(folder / "requests" / "part-1.parquet")
        while time.monotonic() < deadline and not any(
            (a["behaviour"], a["entity"]) == ("latency", "api") for a in emitted
        ):
            time.sleep(0.1)
    finally:
        stop.set()
        worker.join(timeout=30)
    slow = [a for a in emitted if (a["behaviour"], a["entity"]) == ("latency", "api")]
    assert slow and slow[0]["raised"] >= at and len(watched_count) >= 2
    keys = [(a["behaviour"], a["entity"], a["raised"]) for a in emitted]
    assert len(keys) == len(set(keys)) and len(emitted) > before  # each alarm once


def test_follow_on_the_command_line_prints_alarms_until_interrupted(runs: dict, tmp_path: Path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    scenario = tmp_path / "twin.yaml"
    scenario.write_text(yaml.safe_dump(copy.deepcopy(LEARNING_SPEC)), encoding="utf-8")
    out = tmp_path / "alarms.parquet"
    start = runs["twin"].start
    args = [sys.executable, "-m", "orgtwin.cli", "watch", str(scenario),
            str(runs[("latency", SEEDS[0])]), "--follow", "--poll", "0.5", "--out", str(out),
            "--reference", start.isoformat(),
            (start + timedelta(days=REFERENCE_DAYS)).isoformat()]  # fmt: skip
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "ALARM api: latency is +" in line:
                break
        assert any("ALARM api: latency is +" in line for line in lines), lines
        time.sleep(0.5)
        child.send_signal(signal.SIGINT)
        code = child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
    assert code == 130
    assert pl.read_parquet(out).height >= 1  # saved after each look


def test_sparse_counts_are_calibrated_on_the_twins_count_noise():
    """A daily count expected at 0.2 (a user leaving now and then) is far from normal: a
    threshold calibrated on normal null streams lets through several times the budget;
    one calibrated on the twin's count noise keeps it."""
    import numpy as np

    from orgtwin.fidelity import detect
    from orgtwin.fidelity.watch import _Calibration, _threshold, episodes

    rng = np.random.default_rng(7)
    days, mean = 365, 0.2
    times = [datetime(2026, 1, 1) + timedelta(days=d) for d in range(days)]

    def stream(counts):
        z = (counts - mean) / np.sqrt(mean)
        return pl.DataFrame({"time": times, "behaviour": "churn", "entity": "s",
                             "expected": mean, "residual": counts - mean, "z": z})  # fmt: skip

    rate = detect.false_alarm_rate(1.0, 7.0, 52)  # a week's budget over 52 streams
    kept = _Calibration(k=0.5, seed=0, clip=None, thresholds={})
    h_counts, how = _threshold(stream(rng.poisson(mean, days).astype(float)), None, rate, kept)
    normal = rng.standard_normal((100, 4096))
    h_normal = detect.calibrate(normal, k=0.5, rate=rate, rearm="restart")
    assert how == "the twin's count noise around its expected counts"
    fresh = rng.poisson(mean, (300, days)).astype(float)
    z = (fresh - mean) / np.sqrt(mean)

    def alarms(h: float) -> int:
        return sum(len(episodes(detect.cusum(row, k=0.5, h=h, rearm="restart"))) for row in z)

    budget = rate * z.size
    assert alarms(h_counts) <= stats.poisson.ppf(0.999, budget)
    assert alarms(h_normal) > 2 * budget  # what a normal null lets through (measured 3.7×)
