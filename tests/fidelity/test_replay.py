"""Shadow replay and its scorecard, end to end on synthetic telemetry.

A small organisation (the learning scenario) is synthesised for three weeks; the replay
covers the last. Production here *is* a scenario, so the answer is known: the scenario
replayed against its own telemetry must mirror it, and a twin with one behaviour wrong
(a service slower, deploys failing more often, users leaving faster, more requests per
session) must be caught on the lines of that behaviour and entity.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from orgtwin.cli import main
from orgtwin.errors import TelemetryError
from orgtwin.fidelity.scorecard import (
    SCORECARD,
    SCORECARD_FILES,
    read_scorecard,
    score,
    scorecard_of,
    trust,
    validate,
    verdict,
)
from orgtwin.fidelity.shadow import MAX_REPLAY_DAYS, replay
from orgtwin.runs.synth import synth
from orgtwin.scenario import load_scenario
from orgtwin.telemetry.folder import read_telemetry
from orgtwin.world import OrgModel
from tests.learn.conftest import LEARNING_SPEC

DAYS = 21
START = datetime(2026, 1, 5)
WINDOW = (START + timedelta(days=14), START + timedelta(days=21))
SEEDS = (1, 2, 3)


def spec(change: str | None = None) -> dict[str, Any]:
    """The learning organisation, with one behaviour changed (the wrong twin)."""
    out = copy.deepcopy(LEARNING_SPEC)
    out["days"] = DAYS
    if change == "latency":
        out["services"]["api"]["latency"] = {"base_ms": 60.0}  # three times the default
    elif change == "change_failure":
        out["teams"]["ops"]["change_failure"]["base"] = 0.3
        out["teams"]["web"]["change_failure"]["base"] = 0.3
    elif change == "churn":
        out["segments"]["main"]["churn"]["base_monthly"] = 0.95
    elif change == "requests":
        out["features"]["browse"]["requests_per_session"] = 40
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Three weeks of the learning organisation's telemetry, per seed."""
    root = tmp_path_factory.mktemp("replay")
    return {s: synth(load_scenario(spec()), days=DAYS, seed=s, out=root / f"t{s}") for s in SEEDS}


def test_the_replay_imposes_the_inputs_production_was_given(folders: dict[int, Path]) -> None:
    twin = load_scenario(spec())
    ran = replay(twin, folders[1], start=WINDOW[0], end=WINDOW[1], seeds=2)
    assert ran.hours == 7 * 24 and ran.window == WINDOW
    observed = ran.observed
    # sessions: each hour's arrivals of the segment, in every seed
    model = OrgModel(ran.scenario, seed=5, days=7, drive=ran.drive)
    model.run()
    sessions = model.world.recorder.metric("segment", "sessions")[:, 0]
    arrivals = observed["arrivals"].sort("time")["count"].to_numpy()
    np.testing.assert_allclose(sessions, arrivals)
    # deploys: the same ones, at the same hours, in the same batches; failures drawn
    key = ["time", "team", "service", "batch_size"]
    for tables in ran.simulated:
        assert (
            tables["deploys"]
            .select(key)
            .sort(key)
            .equals(observed["deploys"].select(key).sort(key))
        )
    # vendor outages: production's, not the drawn ones
    model.finish()
    made = model.world.events.tables(model.world.recorder, only=["vendor_status"])["vendor_status"]
    seen = observed["vendor_status"]
    assert made.height == seen.height > 0
    assert made["outage_start"].to_list() == seen["outage_start"].to_list()
    assert "sessions: the arrivals observed" in ran.driven_by


def test_a_twin_replaying_its_own_telemetry_mirrors_it(folders: dict[int, Path]) -> None:
    twin = load_scenario(spec())
    for seed, folder in folders.items():
        card = validate(twin, folder, start=WINDOW[0], end=WINDOW[1], seeds=4)
        counts = card.counts()
        assert card.lines.height >= 12, card.lines
        assert counts["off"] == 0, (seed, card.to_markdown())
        assert counts["mirrors"] >= 0.8 * card.lines.height, (seed, card.to_markdown())
        assert card.trust == "high"
        assert {"service", "incidents", "churn", "dora"} <= set(card.lines["behaviour"])


WRONG = {  # change → the lines that must not mirror: (behaviour, kpi, entity)
    "latency": [("service", "latency_p50_ms", "api"), ("service", "latency_p95_ms", "api")],
    "change_failure": [("dora", "change_failure_rate", "all")],
    "churn": [("churn", "churn_per_1000_user_days", "main")],
    "requests": [("service", "requests", "gateway"), ("service", "requests", "api")],
}


@pytest.mark.parametrize("change", sorted(WRONG))
def test_a_wrong_twin_is_caught_on_its_wrong_behaviour(
    folders: dict[int, Path], change: str
) -> None:
    twin = load_scenario(spec(change))
    for folder in list(folders.values())[:2]:
        card = validate(twin, folder, start=WINDOW[0], end=WINDOW[1], seeds=4)
        lines = {
            (r["behaviour"], r["kpi"], r["entity"]): r for r in card.lines.iter_rows(named=True)
        }
        for key in WRONG[change]:
            assert lines[key]["verdict"] != "mirrors", (change, key, lines[key]["words"])
            assert lines[key]["bias"] > 0.2, (change, key, lines[key])  # the twin is above
        assert card.trust != "high" or card.counts()["mirrors"] < card.lines.height


def test_the_same_inputs_give_the_same_scorecard(folders: dict[int, Path]) -> None:
    twin = load_scenario(spec())
    telemetry = read_telemetry(folders[2])
    one = validate(twin, telemetry, start=WINDOW[0], end=WINDOW[1], seeds=3, seed=7)
    two = validate(twin, telemetry, start=WINDOW[0], end=WINDOW[1], seeds=3, seed=7)
    assert one.lines.equals(two.lines)
    other = validate(twin, telemetry, start=WINDOW[0], end=WINDOW[1], seeds=3, seed=8)
    assert not one.lines.equals(other.lines)


def test_persistence_is_a_week_before_where_the_telemetry_holds_it(
    folders: dict[int, Path],
) -> None:
    twin = load_scenario(spec())
    ran = replay(twin, folders[1], start=WINDOW[0], end=WINDOW[1], seeds=2)
    card = score(ran)
    requests = card.lines.filter(
        (pl.col("kpi") == "requests") & (pl.col("entity") == "gateway")
    ).row(0, named=True)
    assert "a week before" in requests["words"]
    seen = ran.observed["requests"].filter(
        (pl.col("service") == "gateway") & (pl.col("requests") > 0)
    )
    week_before = ran.before["requests"].filter(
        (pl.col("service") == "gateway")
        & pl.col("time").is_in((seen["time"] - timedelta(days=7)).to_list())
    )
    assert week_before.height == seen.height == requests["n"]
    assert requests["persistence"] == pytest.approx(week_before["requests"].mean(), rel=1e-9)
    # the first day has no earlier week or day: the last hour before, carried forward
    first = score(replay(twin, folders[1], start=START + timedelta(hours=6),
                         end=START + timedelta(hours=18), seeds=2))  # fmt: skip
    words = first.lines.filter(pl.col("kpi") == "requests")["words"].to_list()
    assert words and all("the last hour before the window" in w for w in words)


def test_verdicts_and_trust_follow_their_rules() -> None:
    assert verdict("mape", 0.05, 0.01, 0.0) == "mirrors"  # within tolerance
    assert verdict("mape", 0.30, 0.40, 0.2) == "mirrors"  # beats persistence
    assert verdict("mape", 0.30, 0.10, 0.25) == "biased"  # mostly an offset
    assert verdict("mape", 0.30, 0.10, 0.05) == "off"
    assert verdict("mape", 0.30, 0.10, 0.05, z=1.0) == "mirrors"  # within the seeds' noise
    assert [verdict("z", z, None, 0.0) for z in (1.9, 3.0, 4.5)] == ["mirrors", "biased", "off"]
    assert verdict("ks", 0.2, 0.0, 0.0) == "mirrors"
    assert verdict("ks", 0.01, 0.9, 0.5) == "biased" and verdict("ks", 0.01, 0.1, 0.5) == "off"
    assert trust(["mirrors"] * 8 + ["biased"] * 2) == "high"
    assert trust(["mirrors"] * 9 + ["off"]) == "medium"
    assert trust(["mirrors"] * 4 + ["biased"] * 6) == "low"
    assert trust(["mirrors"] * 7 + ["off"] * 3) == "medium"
    assert trust(["mirrors"] * 6 + ["off"] * 3) == "low"  # a third off
    assert trust(["mirrors"] * 2 + ["off"]) == "low"
    assert trust([]) == "low"


def test_a_window_that_cannot_be_replayed_is_refused_clearly(folders: dict[int, Path]) -> None:
    twin = load_scenario(spec())
    with pytest.raises(TelemetryError, match="no row between 2027-01-01"):
        replay(twin, folders[1], start=datetime(2027, 1, 1), end=datetime(2027, 1, 8))
    with pytest.raises(TelemetryError, match="must end after it starts"):
        replay(twin, folders[1], start=WINDOW[1], end=WINDOW[0])
    with pytest.raises(TelemetryError, match=f"at most {MAX_REPLAY_DAYS}"):
        replay(twin, folders[1], start=START, end=START + timedelta(days=MAX_REPLAY_DAYS + 1))
    with pytest.raises(TelemetryError, match="seeds must be at least 1"):
        replay(twin, folders[1], start=WINDOW[0], end=WINDOW[1], seeds=0)


def test_the_scorecard_is_saved_whole_and_read_back(
    folders: dict[int, Path], tmp_path: Path
) -> None:
    twin = load_scenario(spec())
    card = validate(twin, folders[1], start=WINDOW[0], end=WINDOW[1], seeds=2)
    paths = card.save(tmp_path / "report")
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(SCORECARD_FILES)
    back = read_scorecard(tmp_path / "report")
    assert back is not None and back.lines.equals(card.lines) and back.trust == card.trust
    assert back.window == card.window and back.scenario == "learning"
    meta = json.loads(paths["scorecard.json"].read_text())
    assert meta["trust"] == card.trust and len(meta["lines"]) == card.lines.height
    assert set(meta["lines"][0]) == set(SCORECARD)
    markdown = paths["scorecard.md"].read_text()
    assert markdown.startswith("# Scorecard: learning") and f"**Trust: {card.trust}**" in markdown
    scenario_file = tmp_path / "report" / "learning.yaml"
    assert scorecard_of(scenario_file, name="learning") is not None
    assert scorecard_of(scenario_file, name="another") is None  # another scenario's
    (tmp_path / "report" / "scorecard.parquet").write_bytes(b"PAR1 cut short")
    assert read_scorecard(tmp_path / "report") is None


def test_validate_on_the_command_line(folders: dict[int, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    twin = tmp_path / "twin" / "learning.yaml"
    twin.parent.mkdir()
    twin.write_text(json.dumps(spec()))  # JSON is YAML
    args = ["validate", str(twin), str(folders[1]), "--from", WINDOW[0].isoformat(),
            "--to", WINDOW[1].isoformat(), "--seeds", "2"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("trust ") and "scorecard:" in out
    assert sorted(p.name for p in twin.parent.iterdir()) == sorted([*SCORECARD_FILES, twin.name])
    assert main([*args[:3], "--from", WINDOW[1].isoformat(), "--to", WINDOW[0].isoformat()]) == 2
    assert "--from must be before --to" in capsys.readouterr().err
