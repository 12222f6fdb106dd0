"""The ripple: a node per segment, team, service and vendor; edges between them; the chain.

The chain follows the model's mechanisms (:mod:`orgtwin.explore.mechanisms`): every link
is downstream of a link of the step before, moved beyond noise and the way its mechanism
carries it. The approval board's chain starts with the board and runs through change
failure before pages (the causal order of DESIGN.md); the price rise's chain runs
through users and load to cost; a large move no chain reaches gets a note, not a link;
a change that changes nothing gives no chain and no impact. Drilling into a figure
names the entities that carried it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from orgtwin.errors import ExploreError
from orgtwin.explore import mechanisms
from orgtwin.explore.chain import NOTHING_MOVED, ChainStep, chain_sentence, format_move, trace
from orgtwin.explore.controls import apply_controls
from orgtwin.explore.drill import SOURCES, drill
from orgtwin.explore.exploration import explore
from orgtwin.explore.ripple import (
    Ripple,
    edges,
    intervention_words,
    levers_of,
    node_ids,
    ripple,
)
from orgtwin.scenario.interventions import INTERVENTION_KINDS
from orgtwin.scenario.load import load_scenario
from orgtwin.scenario.spec import Scenario
from orgtwin.telemetry import series
from orgtwin.world.kpis import KPIS

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
def price() -> Any:
    """The Pro price 12 → 15 USD from day 14 against the baseline, 60 days × 4 seeds."""
    return explore(ROOT / "scenarios" / "price_increase.yaml", days=60, seeds=4)


WEB_FAILS = {"teams.web.change_failure.base": 0.4}
"""Team web's deploys fail ten times as often: its incidents and pages, no one else's."""


@pytest.fixture(scope="module")
def web_fails() -> Any:
    """Baseline with team web's change failure at 40%, 21 days × 4 seeds."""
    return explore(ROOT / "scenarios" / "baseline.yaml", WEB_FAILS, days=21, seeds=4)


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


def test_a_launched_feature_is_used_by_every_segment():
    launch = load_scenario(ROOT / "scenarios" / "feature_launch.yaml")
    uses = edges(launch).filter(pl.col("kind") == "uses", pl.col("target") == "service:assist-api")
    assert set(uses["source"]) == {f"segment:{name}" for name in launch.segments}
    assert (uses["label"].str.contains("ai_assist")).all()
    base = edges(load_scenario(ROOT / "scenarios" / "baseline.yaml"))
    assert "service:assist-api" not in set(base["target"])


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
    assert chain_sentence(found.chain) == sentence
    first = {step.key for step in found.chain if step.step == 1}
    assert {"batch_size", "lead_time_hours"} <= first  # what the board does itself
    by_key = {step.key: step for step in found.chain}
    assert by_key["change_failure_rate_pct"].via == "batch_size"
    assert_follows_the_mechanisms(found, ["approval_board"])


# --------------------------------------------------------------------------- mechanisms


def assert_follows_the_mechanisms(found: Ripple, levers: list[str]) -> None:
    """Every link: downstream of a link of the step before along a mechanism, its move
    beyond noise (the paired interval excludes zero) and the way the mechanism carries it."""
    first = mechanisms.entries(levers)
    figures = {row["key"]: row for row in found.figures.iter_rows(named=True)}
    steps = {step.key: step for step in found.chain}
    for step in found.chain[1:]:
        row = figures[step.key]
        assert row["significant"] and not row["ci_low"] <= 0.0 <= row["ci_high"], step
        if step.via == "cause":
            assert step.step == 1 and step.key in first, step
            continue
        cause = steps[step.via]
        assert cause.step == step.step - 1, (cause, step)
        (link,) = [m for m in mechanisms.downstream(step.via) if m.effect == step.key]
        assert step.how == link.how
        assert not link.sign or (step.delta > 0) == ((cause.delta > 0) == (link.sign > 0)), step
    assert all(step.key not in steps for step in found.unexplained)


def expected_chain(found: Ripple, levers: list[str], min_rel_change: float = 0.002) -> set[str]:
    """The figures the chain must hold, derived from the measured moves and the model's
    mechanisms: reachable from what the lever moves first through moves beyond noise
    that agree with each mechanism's direction (rescalings alike their cause left out)."""
    rows = {row["key"]: row for row in found.figures.iter_rows(named=True)}

    def moved(key: str) -> bool:
        row = rows.get(key)
        if row is None or not row["significant"]:
            return False
        return row["rel_change"] is None or abs(row["rel_change"]) >= min_rel_change

    reached = {k for k in mechanisms.entries(levers) if moved(k)}
    frontier = set(reached)
    while frontier:
        following = set()
        for m in mechanisms.MECHANISMS:
            if m.cause not in frontier or m.effect in reached or not moved(m.effect):
                continue
            same = (rows[m.effect]["delta"] > 0) == (rows[m.cause]["delta"] > 0)
            if m.sign and same != (m.sign > 0):
                continue
            rel = rows[m.effect]["rel_change"], rows[m.cause]["rel_change"]
            if (m.cause, m.effect) in mechanisms.SAME_THING and abs(rel[0] - rel[1]) <= 0.05 * max(
                map(abs, rel)
            ):
                continue
            following.add(m.effect)
        reached |= following
        frontier = following
    return reached


def test_the_price_chain_is_the_mechanism_from_price_to_users_load_and_cost(price: Any):
    found = price.ripple
    assert found.sentence.startswith("price $12 → $15 → "), found.sentence
    assert_follows_the_mechanisms(found, ["price_change"])
    assert {step.key for step in found.chain[1:]} == expected_chain(found, ["price_change"])
    steps = {step.key: step for step in found.chain}
    # DESIGN.md: price up → revenue per user up; churn up, acquisition down → load and cost down
    assert steps["revenue_usd"].delta > 0
    assert steps["acquired"].delta < 0 and steps["acquired"].step == 1
    assert steps["users"].delta < 0 and steps["users"].via in {"acquired", "churn_rate_monthly_pct"}
    path = ["users", "sessions", "load"]
    assert [steps[k].step for k in path] == [2, 3, 4], found.sentence
    assert all(steps[k].delta < 0 for k in path)
    costs = [steps[k] for k in ("infra_cost_usd", "vendor_cost_usd") if k in steps]
    assert costs and all(c.via == "load" and c.delta < 0 for c in costs), found.sentence
    assert "sign-ups -" in found.sentence and "load -" in found.sentence


@pytest.mark.parametrize("kind", INTERVENTION_KINDS)
def test_every_intervention_kind_says_what_it_moves_first(kind: str):
    assert mechanisms.LEVERS[kind]
    assert {key for key, _ in mechanisms.LEVERS[kind]} <= set(mechanisms.WORDS)


def test_the_mechanisms_join_declared_figures():
    keys = set(mechanisms.WORDS)
    assert len(keys) == len(mechanisms.FIGURES)
    for m in mechanisms.MECHANISMS:
        assert {m.cause, m.effect} <= keys and m.sign in (-1, 0, 1) and m.how, m
    kpis = {f.key for f in mechanisms.FIGURES if f.series is None} - {"batch_size"}
    assert kpis <= set(KPIS)
    for figure in mechanisms.FIGURES:
        if figure.series is not None:
            series.metric(*figure.series)  # declared
            assert figure.key in mechanisms.BETTER
    assert set(SOURCES) == keys  # every figure can be drilled into


def test_levers_come_from_interventions_and_from_the_controls_the_cause_names():
    cab = apply_controls(load_scenario(CAB), STRONG_CAB)
    assert levers_of(cab) == ["approval_board"]
    base = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    moved = apply_controls(base, {"segments.pro_us.price_usd_month": 15.0})
    assert levers_of(moved, "Price (segment pro_us) 12 → 15") == ["price_change"]
    assert levers_of(moved, "the change") == []


# --------------------------------------------------------------------------- not connected


def figures_table(moves: dict[str, tuple[float, float, bool]]) -> pl.DataFrame:
    """A figures table as :attr:`Ripple.figures`: key -> (base, change, significant)."""
    rows = []
    for key, (base, change, significant) in moves.items():
        figure = next(f for f in mechanisms.FIGURES if f.key == key)
        unit = KPIS[key].unit if key in KPIS else "changes"
        if figure.series is not None:
            unit = series.metric(*figure.series).unit
        delta = change - base
        half = abs(delta) / 2 if significant else abs(delta) * 2
        rows.append({"key": key, "words": figure.words, "unit": unit, "base": base,
                     "change": change, "delta": delta, "ci_low": delta - half,
                     "ci_high": delta + half, "rel_change": delta / abs(base),
                     "significant": significant})  # fmt: skip
    return pl.DataFrame(rows)


def test_a_large_move_no_path_reaches_gets_a_note_not_a_link():
    table = figures_table({
        "revenue_usd": (100.0, 115.0, True), "acquired": (100.0, 93.0, True),
        "lead_time_hours": (3.0, 3.6, True),  # nothing but a deploy policy moves lead time
    })  # fmt: skip
    found = trace(table, "price $12 → $15", ["price_change"])
    assert found.sentence == "price $12 → $15 → sign-ups -7.0%, revenue +15%"
    assert [s.key for s in found.unexplained] == ["lead_time_hours"]
    assert found.notes == [
        "lead time +20%, but no path of the model leads there from price $12 → $15: "
        "read it as noise."
    ]


def test_a_move_whose_way_runs_through_noise_names_the_way():
    table = figures_table({
        "revenue_usd": (100.0, 115.0, True), "churn_rate_monthly_pct": (2.0, 2.1, True),
        "users": (1000.0, 990.0, True), "sessions": (1000.0, 993.0, True),
        "load": (1000.0, 993.0, True), "error_budget_used": (1.9, 1.7, True),
        "bad_sessions": (100.0, 91.0, False), "tickets": (100.0, 91.0, False),
        "toil_hours": (100.0, 89.0, False), "feature_hours": (100.0, 102.0, False),
        "deploy_frequency_per_day": (20.0, 20.4, False),
        "failed_deploys": (100.0, 103.1, True), "incidents": (70.0, 72.0, True),
    })  # fmt: skip
    found = trace(table, "price $12 → $15", ["price_change"])
    keys = [step.key for step in found.chain]
    assert "incidents" not in keys and "failed_deploys" not in keys
    assert keys[-1] == "error_budget_used", found.sentence
    (note,) = found.notes
    assert note.startswith("failed deploys +3.1% → incidents +2.9%, but the model's way there ")
    assert "(errors → bad sessions → tickets → toil → feature work → deploys → failed " in note
    assert "within noise (bad sessions, tickets, toil, feature work, deploys)" in note


def test_a_move_against_its_mechanism_is_not_carried_by_it():
    table = figures_table({
        "revenue_usd": (100.0, 115.0, True), "acquired": (100.0, 93.0, True),
        "users": (1000.0, 990.0, True), "sessions": (1000.0, 993.0, True),
        "load": (1000.0, 993.0, True), "infra_cost_usd": (100.0, 105.0, True),
    })  # fmt: skip
    found = trace(table, "price $12 → $15", ["price_change"])
    assert "infra_cost_usd" not in {step.key for step in found.chain}
    assert [s.key for s in found.unexplained] == ["infra_cost_usd"]
    assert found.sentence.endswith("→ users -1.0% → sessions -0.7% → load -0.7%")


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


# --------------------------------------------------------------------------- drill


def test_drilling_into_pages_names_the_team_that_was_paged(web_fails: Any):
    found = drill(web_fails.base, web_fails.change, "pages")
    assert found.title == "pages, by team"
    moved = found.rows.filter(pl.col("significant"))
    assert moved["entity"].to_list() == ["web"], found.rows
    web = moved.row(0, named=True)
    assert web["ci_low"] > 0 and web["share"] > 0.5
    assert found.rows["entity"].to_list()[0] == "web"
    assert set(found.events["team"]) == {"web"} and found.events.height > 0
    assert found.words.startswith("pages: 1 of 5 teams moved beyond noise; most: web +")


def test_drilling_into_incidents_names_the_services_of_that_team(web_fails: Any):
    found = drill(web_fails.base, web_fails.change, "incidents")
    scenario = load_scenario(ROOT / "scenarios" / "baseline.yaml")
    webs = {name for name, service in scenario.services.items() if service.team == "web"}
    moved = set(found.rows.filter(pl.col("significant"))["entity"])
    assert moved and moved <= webs, found.rows
    assert set(found.events["team"]) == {"web"}
    assert abs(found.rows["share"].sum() - 1.0) < 1e-9


def test_drilling_into_a_node_lists_its_figures(web_fails: Any):
    found = drill(web_fails.base, web_fails.change, "team:web")
    assert set(found.rows["metric"]) == set(series.metrics_of("team"))
    moved = set(found.rows.filter(pl.col("significant"))["metric"])
    assert {"failed_deploys", "pages"} <= moved
    assert set(found.events["team"]) == {"web"}
    with pytest.raises(ExploreError, match="key must be a figure"):
        drill(web_fails.base, web_fails.change, "nonsense")


def test_the_failing_team_chain_starts_at_change_failure(web_fails: Any):
    changed = apply_controls(load_scenario(ROOT / "scenarios" / "baseline.yaml"), WEB_FAILS)
    found = ripple(web_fails.base, web_fails.change, changed, cause="web fails",
                   levers=list(WEB_FAILS))  # fmt: skip
    assert found.sentence.startswith("web fails → change failure +"), found.sentence
    assert "failed deploys" in found.sentence and "incidents" in found.sentence
    assert_follows_the_mechanisms(found, ["change_failure"])
