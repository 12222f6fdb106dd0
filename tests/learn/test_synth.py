"""Synthetic telemetry: a scenario's run written as a telemetry folder, and read back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from orgtwin import simulate
from orgtwin.errors import RunError
from orgtwin.learn.acquisition import AcquisitionLearner
from orgtwin.learn.changes import ChangeFailureLearner
from orgtwin.learn.incidents import IncidentTimingLearner
from orgtwin.learn.vendors import VendorOutageLearner
from orgtwin.runs.synth import synth
from orgtwin.telemetry import schemas
from orgtwin.telemetry.folder import read_telemetry
from tests.learn.conftest import LEARNING_DAYS


def test_synth_writes_every_table_in_its_schema(tmp_path: Path, learning_scenario) -> None:
    folder = synth(learning_scenario, days=7, seed=3, out=tmp_path / "telemetry")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{name}.parquet" for name in [*schemas.EVENT_TABLES, "customers", "arrivals"]
    )
    run = simulate(learning_scenario, seed=3, days=7)
    for name, schema in schemas.EVENT_TABLES.items():
        frame = pl.read_parquet(folder / f"{name}.parquet")
        assert dict(frame.schema) == schema, name
        assert frame.equals(run.events[name]), name
    customers = pl.read_parquet(folder / "customers.parquet")
    assert dict(customers.schema) == schemas.CUSTOMERS
    user_days = run.events["user_days"]
    assert customers.height == user_days["user"].n_unique()
    assert customers["churned"].sum() == user_days["churned"].sum() > 0
    arrivals = pl.read_parquet(folder / "arrivals.parquet")
    assert dict(arrivals.schema) == schemas.ARRIVALS
    assert arrivals.height == 7 * 24 * len(learning_scenario.segments)
    sessions = run.series.filter(
        (pl.col("entity_type") == "segment")
        & (pl.col("metric") == "sessions")
        & (pl.col("tick") == 30)
    )
    at = arrivals.filter(pl.col("time") == learning_scenario.start + timedelta(hours=30))
    assert at["count"].to_list() == sessions["value"].to_list() and at["count"].sum() > 0


def test_synth_folder_reads_back(tmp_path: Path, learning_scenario) -> None:
    folder = synth(learning_scenario, days=3, seed=1, out=tmp_path / "t")
    telemetry = read_telemetry(folder)
    assert telemetry.tables["deploys"].collect().height > 0


def test_synth_accepts_an_empty_folder_and_refuses_a_full_one(
    tmp_path: Path, learning_scenario
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    synth(learning_scenario, days=1, seed=1, out=empty)
    assert (empty / "incidents.parquet").exists()
    with pytest.raises(RunError, match="must be a new or empty folder"):
        synth(learning_scenario, days=1, seed=1, out=empty)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_synth_runs_a_scenario_file(tmp_path: Path, repo_root: Path) -> None:
    folder = synth(repo_root / "scenarios/baseline.yaml", days=2, seed=1, out=tmp_path / "g")
    assert pl.read_parquet(folder / "requests.parquet").height > 0


def test_synthetic_folder_learns_back_the_scenario(
    tmp_path: Path, learning_scenario, enough_covered
) -> None:
    """The known-answer loop: synth, read the folder, learn, and the truth is covered."""
    days = LEARNING_DAYS
    folder = synth(learning_scenario, days=days, seed=11, out=tmp_path / "t")
    tables = {name: frame.collect() for name, frame in read_telemetry(folder).tables.items()}
    start, end = learning_scenario.start, learning_scenario.start + timedelta(days=days)
    teams, acquisition = learning_scenario.teams, learning_scenario.segments["main"].acquisition
    learners = [
        (IncidentTimingLearner(team="ops", end=end), "incidents", teams["ops"].incidents),
        (ChangeFailureLearner(team="web"), "deploys", teams["web"].change_failure),
        (VendorOutageLearner(vendor="flaky", start=start, end=end), "vendor_status",
         learning_scenario.vendors["flaky"]),
        (AcquisitionLearner(segment="main", prior=acquisition), "user_days", acquisition),
    ]  # fmt: skip
    learners[0][0].fit(tables["incidents"], deploys=tables["deploys"])
    for learner, table, _ in learners[1:]:
        learner.fit(tables[table])
    learned = [
        e.covers(getattr(truth, e.name))
        for learner, _, truth in learners
        for e in learner.estimates()
        if e.source == "learned"
    ]
    assert len(learned) >= 10
    assert sum(learned) >= enough_covered(len(learned))
