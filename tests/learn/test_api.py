"""learn(): a telemetry folder in, a scenario that loads and runs, and its report, out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import orgtwin
from orgtwin.cli import main
from orgtwin.learn.api import STEPS, learn
from orgtwin.runs.synth import synth
from orgtwin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
SEGMENTS = ("free", "pro_us", "pro_eu", "enterprise")


@pytest.fixture(scope="module")
def small_base():
    return load_scenario(BASELINE, overrides={"segments": {s: {"n_users": 500} for s in SEGMENTS}})


@pytest.fixture(scope="module")
def telemetry(small_base, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth(small_base, days=20, seed=3, out=tmp_path_factory.mktemp("synth") / "telemetry")


def test_learning_the_twins_own_telemetry_gives_back_its_latency_curves(small_base, telemetry):
    """Measured latency includes the calls'; the twin's own latency is recovered from it."""
    twin, report = learn(telemetry, base=small_base)
    for name, service in small_base.services.items():
        learned = twin.services[name].latency
        assert learned.base_ms == pytest.approx(service.latency.base_ms, rel=0.02), name
        assert learned.p95_over_p50 == pytest.approx(service.latency.p95_over_p50, rel=0.02)
    assert {f.behaviour for f in report.fits} >= {"latency", "change_failure", "incident_timing"}
    latency = [f for f in report.fits if f.behaviour == "latency"]
    assert len(latency) == len(small_base.services)
    for fit in latency:  # the twin's own curve predicts its later hours better than a median
        assert fit.holdout is not None and fit.holdout.beats_baseline, fit.entity
        assert fit.holdout.learned < 0.02, fit.entity


def test_what_no_table_informs_keeps_the_base_value_and_the_report_says_so(
    small_base, telemetry, tmp_path: Path
):
    kept = tmp_path / "t"
    shutil.copytree(telemetry, kept)
    for table in ("customers", "arrivals", "user_days", "calls"):
        (kept / f"{table}.parquet").unlink()
    twin, report = learn(kept, base=small_base)
    assert twin.segments == small_base.segments  # no customers, arrivals or user days
    for name, service in small_base.services.items():  # no calls table: the calls kept
        assert twin.services[name].calls == service.calls, name
    needs = {step.behaviour: step.tables for step in STEPS}
    for behaviour in ("churn", "demand", "structure", "acquisition"):
        (table,) = needs[behaviour]
        said = table.replace("|", " or ")
        assert any(f"no {said} table" in w for w in report.warnings), behaviour


def test_the_package_is_the_verb(small_base, telemetry):
    twin, _ = orgtwin.learn(telemetry, base=small_base, name="acme")
    assert twin.name == "acme"


def test_synth_then_learn_on_the_command_line_writes_a_scenario_that_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    small = tmp_path / "small.yaml"
    small.write_text(
        f"extends: {BASELINE}\nname: small\nsegments:\n"
        + "".join(f"  {s}:\n    n_users: 300\n" for s in SEGMENTS),
        encoding="utf-8",
    )
    synth_args = ["synth", str(small), "--days", "10", "--seed", "1", "--out", str(tmp_path / "t")]
    assert main(synth_args) == 0
    out = tmp_path / "twin" / "acme.yaml"
    assert main(["learn", str(tmp_path / "t"), "--base", str(small), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    report = json.loads((out.parent / "report.json").read_text(encoding="utf-8"))
    assert f"{out}: {len(report['applied'])} values learned into the scenario" in said
    assert any(p.endswith(".latency.base_ms") for p in report["applied"])
    assert report["scenario"] == "acme" and report["rows"]["requests"] > 0
    twin = load_scenario(out)
    result = orgtwin.simulate(twin, days=2, seed=0)
    assert result.summary()["revenue_usd"] > 0


def test_learn_refuses_an_out_that_is_not_a_scenario_file(
    telemetry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    code = main(["learn", str(telemetry), "--base", str(BASELINE), "--out", str(tmp_path / "x")])
    assert code == 2
    assert "--out must be a scenario file ending in .yaml" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_customers_of_segments_the_base_lacks_are_named_not_a_crash(small_base, tmp_path: Path):
    import polars as pl

    from orgtwin.telemetry.folder import write_telemetry
    from orgtwin.telemetry.schemas import CUSTOMERS

    n = 50
    customers = pl.DataFrame(
        {"customer": [f"c{i}" for i in range(n)], "segment": ["Month-to-month"] * n,
         "plan": ["basic"] * n, "price": [20.0] * n, "start": [None] * n, "end": [None] * n,
         "tenure_months": [float(i % 24) for i in range(n)],
         "churned": [i % 4 == 0 for i in range(n)], "entry_tenure_months": [None] * n},
        schema=CUSTOMERS,
    )  # fmt: skip
    write_telemetry(tmp_path / "t", {"customers": customers})
    twin, report = learn(tmp_path / "t", base=small_base)
    assert twin.segments == small_base.segments
    (said,) = [w for w in report.warnings if w.startswith("the churn hazard")]
    assert "theirs: Month-to-month" in said and "the base's: free, pro_us" in said


def test_spans_set_the_calls_per_request_of_the_base_services(small_base, tmp_path: Path):
    import datetime as dt

    import polars as pl

    from orgtwin.telemetry.folder import write_telemetry
    from orgtwin.telemetry.schemas import SPANS

    start, rows = dt.datetime(2026, 1, 1), []
    for i in range(100):  # web-bff calls auth 3 times a request, and a service the base lacks
        root = dict(trace_id=f"t{i}", span_id=f"a{i}", parent_id=None, service="web-bff",
                    operation="GET /", start=start, duration_ms=50.0, status="ok")  # fmt: skip
        rows.append(root)
        children = [("auth", k) for k in range(3)] + [("mystery", 0)]
        rows += [dict(trace_id=f"t{i}", span_id=f"b{i}-{s}-{k}", parent_id=f"a{i}", service=s,
                      operation="call", start=start, duration_ms=5.0, status="ok")
                 for s, k in children]  # fmt: skip
    write_telemetry(tmp_path / "t", {"spans": pl.DataFrame(rows, schema=SPANS)})
    twin, report = learn(tmp_path / "t", base=small_base)
    assert twin.services["web-bff"].calls == {"auth": 3.0}
    assert report.applied["services.web-bff.calls.auth"] == 3.0
    said = [w for f in report.fits if f.behaviour == "structure" for w in f.warnings]
    assert any("not in the base scenario" in w and "mystery" in w for w in said)
    removed = sorted(f"web-bff → {c}" for c in small_base.services["web-bff"].calls if c != "auth")
    assert any(w.endswith(", ".join(removed)) for w in said), said
    assert twin.services["auth"] == small_base.services["auth"]


def test_latency_of_services_whose_callees_were_not_measured_keeps_the_base(
    small_base, telemetry: Path
):
    """Own latency needs the callees' latency: a service whose callee has no rows is left
    at the base's values, the others are learned."""
    import polars as pl

    from orgtwin.learn.own import own_latency
    from orgtwin.telemetry.folder import read_telemetry

    requests = read_telemetry(telemetry).tables["requests"].collect()
    callee = next(c for c in small_base.services["web-bff"].calls)
    without = requests.filter(pl.col("service") != callee)
    own = own_latency(without, small_base)
    kept = set(own["service"].unique().to_list())
    assert "web-bff" not in kept and callee not in kept
    assert {s for s, spec in small_base.services.items() if not spec.calls} - {callee} <= kept
    assert own_latency(requests.filter(pl.col("service") == "nope"), small_base).is_empty()


def test_each_segment_learns_its_own_profile_in_its_own_time(small_base, telemetry):
    """The arrivals are in UTC and keyed by segment; each segment's profile is learned in
    its local time, so its peak hour is the base's, whatever its time zone."""
    twin, report = learn(telemetry, base=small_base)
    fits = {f.entity: f for f in report.fits if f.behaviour == "demand"}
    assert set(fits) == {f"segment {s}" for s in SEGMENTS}
    offsets = {s: small_base.segments[s].utc_offset_hours for s in SEGMENTS}
    assert len(set(offsets.values())) > 1  # the test means something
    for name in SEGMENTS:
        (peak,) = [e for e in fits[f"segment {name}"].estimates if e.name == "peak_hour"]
        truth = small_base.segments[name].demand_profile.peak_hour
        assert abs(peak.value - truth) <= 1, (name, peak.value, truth)
        assert twin.segments[name].demand_profile.peak_hour == peak.value


def test_without_a_customers_table_churn_is_learned_from_user_days(
    small_base, telemetry, tmp_path: Path
):
    kept = tmp_path / "t"
    shutil.copytree(telemetry, kept)
    (kept / "customers.parquet").unlink()
    _, from_days = learn(kept, base=small_base)
    _, from_customers = learn(telemetry, base=small_base)
    churn = [f for f in from_days.fits if f.behaviour == "churn"]
    assert churn and "customers made from user_days (one per user seen)" in churn[0].warnings
    same = [f for f in from_customers.fits if f.behaviour == "churn"]
    assert [e.value for f in churn for e in f.estimates] == pytest.approx(
        [e.value for f in same for e in f.estimates]
    )


def test_only_and_since_relearn_what_drifted_from_its_change_point(small_base, telemetry):
    from datetime import timedelta

    from orgtwin.errors import LearnError

    _, whole = learn(telemetry, base=small_base)
    since = small_base.start + timedelta(days=10)
    twin, part = learn(telemetry, base=small_base, only=["change_failure"], since=since)
    assert {f.behaviour for f in part.fits} == {"change_failure"}
    assert all(p.startswith("teams.") for p in part.applied)
    assert twin.services == small_base.services and twin.segments == small_base.segments
    rows = {f.entity: f.rows_used for f in whole.fits if f.behaviour == "change_failure"}
    for fit in part.fits:  # the later half of the deploys only
        assert 0 < fit.rows_used < rows[fit.entity], fit.entity
    assert "learned from the telemetry since 2026-01-15 00:00" in part.warnings
    with pytest.raises(LearnError, match="only must name behaviours among structure"):
        learn(telemetry, base=small_base, only=["latncy"])


def test_learn_since_and_only_on_the_command_line(
    telemetry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "twin.yaml"
    args = ["learn", str(telemetry), "--base", str(BASELINE), "--out", str(out)]
    assert main([*args, "--only", "latency", "--since", "2026-01-12T00:00:00+01:00"]) == 0
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert {f["behaviour"] for f in report["fits"]} == {"latency"}
    assert "learned from the telemetry since 2026-01-11 23:00" in report["warnings"]
    with pytest.raises(SystemExit) as exited:
        main([*args, "--since", "last tuesday"])
    assert exited.value.code == 2
    assert "expected an ISO 8601 time" in capsys.readouterr().err


def test_what_churn_data_cannot_inform_is_each_segments_own_value(small_base, telemetry):
    _, report = learn(telemetry, base=small_base)
    kept = 0
    for fit in (f for f in report.fits if f.behaviour == "churn"):
        spec = small_base.segments[fit.entity.split(" ", 1)[1]].churn
        for e in fit.estimates:
            if e.source == "prior":
                assert e.value == e.low == e.high == getattr(spec, e.name), (fit.entity, e)
                kept += 1
    assert kept >= 4  # experience in every segment, and one price per segment


def test_a_requests_table_with_a_p95_and_no_median_learns_the_curve_to_its_p95(
    small_base, telemetry, tmp_path: Path
):
    """Telemetry with latency p95 only (Nezha's pod metrics): the median is the p95 over
    the base's ratio, so the learned curve's p95 is the measured one; the report says so."""
    import polars as pl

    from orgtwin.telemetry.folder import read_telemetry, write_telemetry

    requests = read_telemetry(telemetry).tables["requests"].collect()
    write_telemetry(tmp_path / "t", {"requests": requests.with_columns(
        latency_p50_ms=pl.lit(None, dtype=pl.Float64))})  # fmt: skip
    twin, report = learn(tmp_path / "t", base=small_base, only=["latency"])
    assert any("p95 but no median" in w for w in report.warnings)
    for name, service in small_base.services.items():
        learned, truth = twin.services[name].latency, service.latency
        assert learned.p95_over_p50 == truth.p95_over_p50  # kept: the data cannot say
        assert learned.base_ms == pytest.approx(truth.base_ms, rel=0.02), name


def test_own_latency_lines_up_services_measured_at_different_seconds(small_base, telemetry):
    """Each service's rows stamped a few seconds apart within the hour (as pods report)
    give the same own latency as rows stamped on the hour."""
    from datetime import timedelta

    import polars as pl

    from orgtwin.learn.own import own_latency
    from orgtwin.telemetry.folder import read_telemetry

    requests = read_telemetry(telemetry).tables["requests"].collect()
    offsets = {name: timedelta(seconds=7 * i) for i, name in enumerate(small_base.services)}
    shifted = requests.with_columns(
        pl.col("time") + pl.col("service").replace_strict(offsets, return_dtype=pl.Duration("us"))
    )
    key = ["time", "service", "latency_p50_ms", "latency_p95_ms"]
    on_the_hour = own_latency(requests, small_base).select(key).sort("service", "time")
    apart = own_latency(shifted, small_base).select(key).sort("service", "time")
    assert apart.height == on_the_hour.height > 0
    assert apart.equals(on_the_hour)


def test_latency_is_taken_out_with_the_calls_per_request_learned_in_the_same_run(
    small_base, telemetry
):
    """Each step sees what the steps before it learned: a base whose calls per request are
    twice the truth learns the structure first, then own latency with the learned calls,
    as the twin will add them; with the base's calls the callers' own latency would come
    out far too low."""
    doubled = load_scenario(BASELINE, overrides={
        "segments": {s: {"n_users": 500} for s in SEGMENTS},
        "services": {name: {"calls": {c: 2 * n for c, n in spec.calls.items()}}
                     for name, spec in small_base.services.items() if spec.calls},
    })  # fmt: skip
    twin, _ = learn(telemetry, base=doubled, only=["structure", "latency"])
    callers = [name for name, spec in small_base.services.items() if spec.calls]
    assert callers
    for name in callers:
        for callee, n in small_base.services[name].calls.items():
            assert twin.services[name].calls[callee] == pytest.approx(n, rel=0.05), (name, callee)
    for name, service in small_base.services.items():
        learned = twin.services[name].latency
        assert learned.base_ms == pytest.approx(service.latency.base_ms, rel=0.02), name
