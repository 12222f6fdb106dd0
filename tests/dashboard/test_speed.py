"""What makes the dashboard answer fast, without changing an answer (``orgtwin.dashboard.state``).

- Nothing moved costs nothing: a change equal to its base runs no simulation, and the
  base is shared by every lever change of its scenarios and by the Compare page.
- A first estimate from the first seeds equals a run of that many seeds, and the refined
  figures equal a full run's: the estimate's seeds are reused, never run twice.

Runs are counted, not timed (timings are in ``benchmarks/bench_app.py``): with one worker
the seeds run in this process, through :func:`orgtwin.runs.runner.simulate_shipped`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import streamlit as st
from polars.testing import assert_frame_equal

from orgtwin import explore, load_scenario
from orgtwin.dashboard import folders, state
from orgtwin.runs import runner
from tests.dashboard.harness import start, texts

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
BASELINE = str(SCENARIOS / "baseline.yaml")
CAB = str(SCENARIOS / "cab_policy.yaml")
MEETINGS = "interventions[0].meeting_every_hours"
DAYS, SEEDS, SEED = 15, 3, 7


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Empty caches, the bundled scenarios as the scenarios folder; yields their stamp."""
    monkeypatch.setenv(folders.SCENARIOS_ENV, str(SCENARIOS))
    st.cache_resource.clear()
    st.cache_data.clear()
    state._STARTED.clear()
    yield folders.folder_stamp(SCENARIOS)
    st.cache_resource.clear()
    st.cache_data.clear()
    state._STARTED.clear()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, fresh: int) -> list[str]:
    """Seeds run in this process (one worker), one scenario name per simulation."""
    ran: list[str] = []
    simulate = runner.simulate_shipped

    def count(shipped, **options):
        ran.append(shipped[0]["name"])
        return simulate(shipped, **options)

    monkeypatch.setattr(state, "WORKERS", 1)
    monkeypatch.setattr(runner, "simulate_shipped", count)
    return ran


def test_run_with_nothing_moved_runs_only_the_base(counted: list[str], fresh: int):
    assert state.nothing_moved(BASELINE, fresh, ())
    found = state.exploration(BASELINE, fresh, (), DAYS, SEEDS, SEED)
    assert counted == ["baseline"] * SEEDS  # the change is the base: not run again
    assert found.change is found.base
    assert (found.comparison["delta"].fill_null(0.0) == 0.0).all()


def test_pressing_run_again_runs_nothing(counted: list[str], fresh: int):
    key = (CAB, fresh, ((MEETINGS, 336),), DAYS, SEEDS, SEED)
    state.exploration(*key)
    before = len(counted)
    st.cache_resource.clear()  # even with the page's caches gone, the runs are kept
    state.exploration(*key)
    state.kpi_cards(*key)
    assert len(counted) == before == 2 * SEEDS


def test_a_scenario_with_a_base_is_not_nothing_moved(fresh: int):
    assert not state.nothing_moved(CAB, fresh, ())  # it compares with the baseline
    assert not state.nothing_moved(BASELINE, fresh, (("teams.web.oncall_size", 3),))


def test_lever_changes_share_the_base_and_compare_reuses_it(counted: list[str], fresh: int):
    state.exploration(CAB, fresh, ((MEETINGS, 336),), DAYS, SEEDS, SEED)
    assert sorted(counted) == sorted(["baseline"] * SEEDS + ["cab_policy"] * SEEDS)
    counted.clear()
    state.exploration(CAB, fresh, ((MEETINGS, 72),), DAYS, SEEDS, SEED)
    assert counted == ["cab_policy"] * SEEDS  # the base was kept
    counted.clear()
    table = state.comparison((BASELINE, CAB), fresh, DAYS, SEEDS, SEED, ("revenue_usd",))
    assert counted == ["cab_policy"] * SEEDS  # the baseline is the explored base
    assert table["scenario"].to_list() == ["baseline", "cab_policy"]


def test_estimate_is_a_run_of_its_seeds_and_the_refinement_a_full_run(fresh: int):
    values = ((MEETINGS, 72),)
    key = (CAB, fresh, values, DAYS, SEEDS, SEED)
    first = state.exploration_estimate(*key)
    full = state.exploration(*key)
    assert first.seeds == explore.ESTIMATE_SEEDS and full.seeds == SEEDS
    for seeds, found in ((explore.ESTIMATE_SEEDS, first), (SEEDS, full)):
        base = explore.run_base(CAB, days=DAYS, seeds=seeds, seed=SEED)
        change = explore.run_change(CAB, values, days=DAYS, seeds=seeds, seed=SEED)
        assert_frame_equal(found.base.summary, base.summary)
        assert_frame_equal(found.change.summary, change.summary)
        assert_frame_equal(found.change.series, change.series)
        alone = explore.explore_from(base, change, state.scenario(CAB, fresh), values=values)
        assert_frame_equal(found.comparison, alone.comparison)
    assert state.exploration_ready(*key)


def test_compare_estimate_is_the_table_of_its_seeds(fresh: int):
    paths, kpis = (BASELINE, CAB), ("revenue_usd", "pages")
    first = state.comparison(paths, fresh, DAYS, SEEDS, SEED, kpis, estimate=True)
    full = state.comparison(paths, fresh, DAYS, SEEDS, SEED, kpis)
    few = state.comparison(paths, fresh, DAYS, explore.ESTIMATE_SEEDS, SEED, kpis)
    assert_frame_equal(first, few)
    assert state.scenarios_ready(paths, fresh, DAYS, SEEDS, SEED)
    assert not first.equals(full)


def test_started_runs_queue_first_seeds_first_and_equal_run():
    scenarios = [load_scenario(BASELINE), load_scenario(CAB)]
    started = runner.start_runs(scenarios, days=15, seeds=3, seed=SEED, workers=2, lean=True)
    for sc, pending in zip(scenarios, started, strict=True):
        alone = runner.run(sc, days=15, seeds=3, seed=SEED, lean=True)
        assert_frame_equal(pending.first(2).summary, alone.summary.head(2))
        assert_frame_equal(pending.result().series, alone.series)
        assert pending.done()
    assert isinstance(started[0].result().summary, pl.DataFrame)


def test_runs_taken_off_the_queue_run_again_when_waited_for():
    sc = load_scenario(CAB)
    (pending,) = runner.start_runs([sc], days=15, seeds=4, seed=SEED, workers=2, lean=True)
    pending.cancel_queued()  # a newer request needs the workers first
    assert_frame_equal(
        pending.result().summary, runner.run(sc, days=15, seeds=4, seed=SEED, lean=True).summary
    )
    assert pending.done()


def test_compare_page_replaces_its_estimate_with_every_seed(fresh: int):
    at = start("orgtwin/dashboard/pages/compare.py")
    at.multiselect(key="compare-scenarios").set_value(["baseline.yaml", "cab_policy.yaml"])
    at.number_input(key="compare-days").set_value(DAYS)
    at.number_input(key="compare-seeds").set_value(SEEDS)
    at.form_submit_button[0].click().run()
    assert not at.exception, at.exception
    assert "First estimate" not in texts(at.info)  # replaced in place
    assert f"{SEEDS} seeds × {DAYS} days" in texts(at.caption)
    assert len(at.dataframe) == 1
