"""The ripple: a node per segment, team, service and vendor; edges between them; the chain.

The approval board's chain starts with the board and runs through change failure before
pages (the causal order of DESIGN.md); a change that changes nothing gives no chain and
no impact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from orgtwin.explore.controls import apply_controls
from orgtwin.explore.exploration import explore
from orgtwin.explore.ripple import (
    NOTHING_MOVED,
    ChainStep,
    edges,
    format_move,
    intervention_words,
    node_ids,
    ripple,
)
from orgtwin.scenario.load import load_scenario
from orgtwin.scenario.spec import Scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_FILES = sorted((ROOT / "scenarios").glob("*.yaml"))
CAB = ROOT / "scenarios" / "cab_policy.yaml"
STRONG_CAB = {"interventions[0].at": 0, "interventions[0].meeting_every_hours": 336}
"""A board from day 0 meeting fortnightly: its chain shows within 30 days and 3 seeds."""


@pytest.fixture(scope="module")
def cab() -> Any:
    """The approval board (from day 0, fortnightly) against the baseline, 30 days × 3 seeds."""
    return explore(CAB, STRONG_CAB, days=30, seeds=3)


@pytest.fixture(scope="module")
def unchanged() -> Any:
    """The baseline against itself, 14 days × 2 seeds."""
    return explore(ROOT / "scenarios" / "baseline.yaml", days=14, seeds=2)


def entity_count(scenario: Scenario) -> int:
    return sum(len(getattr(scenario, k)) for k in ("segments", "teams", "services", "vendors"))


# --------------------------------------------------------------------------- graph


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_edge_joins_two_nodes(path: Path):
    scenario = load_scenario(path)
    ids = [node_id for node_id, _, _ in node_ids(scenario)]
    assert len(ids) == len(set(ids)) == entity_count(scenario)
    graph = edges(scenario)
    assert set(graph["source"]) | set(graph["target"]) <= set(ids)
    assert set(graph["kind"]) <= {"uses", "calls", "depends", "owns"}
    assert graph.filter(pl.col("kind") == "owns").height == len(scenario.services)
    assert graph.select("source", "target").is_duplicated().sum() == 0


def test_a_swapped_in_vendor_is_a_dependency():
    swap = load_scenario(ROOT / "scenarios" / "vendor_swap.yaml")
    depends = edges(swap).filter(pl.col("kind") == "depends")
    assert depends.filter(pl.col("target") == "vendor:adyen").height > 0


def test_nodes_of_an_exploration(cab: Any):
    nodes = cab.ripple.nodes
    changed = apply_controls(load_scenario(CAB), STRONG_CAB)
    assert nodes.height == entity_count(changed)
    assert set(nodes["kind"]) == {"segment", "team", "service", "vendor"}
    assert nodes["impact"].is_between(-1.0, 1.0).all()
    assert (nodes.filter(~pl.col("significant"))["impact"] == 0.0).all()
    teams = nodes.filter(pl.col("kind") == "team")
    assert (teams["impact"] < 0).any(), "the board must page some team more"
    assert set(teams["metric"]) == {"pages_per_oncall_engineer"}
    assert set(cab.ripple.edges["source"]) | set(cab.ripple.edges["target"]) <= set(nodes["id"])


# --------------------------------------------------------------------------- chain


def test_the_board_chain_runs_from_the_board_through_change_failure_to_pages(cab: Any):
    found = cab.ripple
    sentence = found.sentence
    words = intervention_words(apply_controls(load_scenario(CAB), STRONG_CAB))
    assert words == "approval board every 2 weeks"
    assert sentence.startswith(words + " → "), sentence
    assert "change failure +" in sentence and " pts" in sentence
    assert sentence.index("change failure") < sentence.index("pages"), sentence
    assert found.chain[0] == ChainStep("cause", words, words)
    assert all(step.key != "cause" for step in found.chain[1:])
    assert " → ".join(step.text for step in found.chain) == sentence


def test_no_change_gives_no_chain_and_no_impact(unchanged: Any):
    found = unchanged.ripple
    assert found.chain == []
    assert found.sentence == NOTHING_MOVED
    assert (found.nodes["impact"] == 0.0).all()
    assert not found.nodes["significant"].any()
    assert not unchanged.comparison["significant"].any()


def test_the_ripple_names_a_given_cause(unchanged: Any, cab: Any):
    again = ripple(cab.base, cab.change, load_scenario(CAB), cause="the board")
    assert again.sentence.startswith("the board → ")
    assert ripple(unchanged.base, unchanged.change, load_scenario(CAB)).chain == []


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda p: p.stem)
def test_every_scenario_has_words_for_its_interventions(path: Path):
    scenario = load_scenario(path)
    words = intervention_words(scenario)
    assert words
    assert all(iv.kind not in words for iv in scenario.interventions)
    assert (words == "the change") == (not scenario.interventions)


@pytest.mark.parametrize(
    ("base", "change", "unit", "text"),
    [(3.0, 10.2, "%", "+7.2 pts"), (2.2, 2.31, "%", "+0.11 pts"), (99.9, 99.895, "%", "-0.005 pts"),
     (2.0, 6.2, "changes", "×3.1"), (2.0, 30.0, "h", "×15"), (100.0, 140.0, "pages", "+40%"),
     (100.0, 97.0, "users", "-3.0%"), (100.0, 20.0, "deploys/day", "-80%"),
     (0.1, 0.3, "0-1", "↑"), (0.3, 0.1, "0-1", "↓"), (0.0, 3.0, "incidents", "+3")],
)  # fmt: skip
def test_moves_are_written_by_unit(base: float, change: float, unit: str, text: str):
    assert format_move(base, change, unit) == text
