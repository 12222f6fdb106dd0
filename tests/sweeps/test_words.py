"""Words for people: lever labels, the importance sentence, discovery in words.

Every lever the shipped scenarios offer (to a sweep's pickers or to the Explore page's
controls) has a label without a path's dots, stars or underscores; the importance sentence
names the top lever by its label, and says "inconclusive" when the surrogate explains
little; the discovered box reads as a sentence about labels, not paths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from orgtwin.explore.controls import controls
from orgtwin.scenario.levers import parse_lever
from orgtwin.scenario.load import load_scenario
from orgtwin.scenario.wording import lever_label, lever_options
from orgtwin.sweeps.analysis import (
    MIN_SURROGATE_R2,
    effects_in_words,
    importance_sentence,
    is_conclusive,
    lever_effects,
    lever_importance,
)
from orgtwin.sweeps.discovery import condition_words, discover

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))
ONCALL, SPOT = "teams.*.oncall_size", "services.*.spot_share"
RAW = (".", "*", "_", "[")


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_lever_a_shipped_scenario_offers_has_a_label_without_a_path(path: Path):
    scenario = load_scenario(path)
    offered = [o.path for o in lever_options(scenario)] + [c.path for c in controls(scenario)]
    assert offered
    names = [n for kind in ("segments", "services", "teams") for n in getattr(scenario, kind)]
    for lever in offered:
        label = lever_label(lever)
        words = label
        for name in names:  # entity names are the scenario's own (``pro_us``)
            words = words.replace(f" {name})", ")")
        assert label and not any(mark in words for mark in RAW), (lever, label)
    labels = [o.label for o in lever_options(scenario)]
    assert len(set(labels)) == len(labels), "a picker tells its levers apart by label"


def test_lever_labels_read_as_words():
    assert lever_label(ONCALL) == "On-call size (every team)"
    assert lever_label(SPOT) == "Spot share (every service)"
    assert lever_label("segments.pro_us.price_usd_month") == "Price (segment pro_us)"
    assert lever_label("teams.web.incidents.restore_median_hours") == (
        "Incidents: restore median (team web)"
    )


def test_a_picked_range_is_the_lever_typed_by_hand():
    options = {o.path: o for o in lever_options(load_scenario(SCENARIOS[1]))}
    oncall, spot = options[ONCALL], options[SPOT]
    assert oncall.integer and oncall.low == 1 and oncall.high is not None
    assert oncall.text(2, 5, 4) == "teams.*.oncall_size=2..5"
    assert parse_lever(oncall.text(2, 6, 3)).levels() == [2, 4, 6]
    assert parse_lever(spot.text(0, 0.8, 3)).levels() == parse_lever(f"{SPOT}=0..0.8:3").levels()
    policy = options["teams.*.deploy_policy.kind"]
    assert policy.choices == ("continuous", "batched", "approval_board")


def sweep_frame(noise: float, *, seed: int = 3) -> pl.DataFrame:
    """A 5 × 5 grid × 4 seeds where availability falls with spot share (plus noise)."""
    rng = np.random.default_rng(seed)
    oncall, spot = np.meshgrid([1, 2, 3, 4, 5], [0.0, 0.2, 0.4, 0.6, 0.8])
    oncall, spot = np.repeat(oncall.ravel(), 4), np.repeat(spot.ravel(), 4)
    availability = 99.99 - 0.2 * spot + rng.normal(0.0, noise, spot.size)
    return pl.DataFrame(
        {
            "point": np.repeat(np.arange(25), 4),
            "replicate": np.tile(np.arange(4), 25),
            ONCALL: oncall,
            SPOT: spot,
            "availability_pct": availability,
            "error_budget_used": (100.0 - availability) / 0.1,
            "error": pl.Series([None] * spot.size, dtype=pl.String),
        }
    )


def test_the_sentence_names_the_top_lever_by_its_label():
    ranks = lever_importance(sweep_frame(0.001), [ONCALL, SPOT], kpi="availability_pct")
    assert ranks["lever"][0] == SPOT and is_conclusive(ranks)
    sentence = importance_sentence(ranks)
    assert sentence.startswith("Spot share (every service) matters most for availability")
    assert "on-call size (every team) barely matters" in sentence
    assert not any(path in sentence for path in (ONCALL, SPOT))


def test_a_ranking_whose_surrogate_explains_little_is_inconclusive():
    ranks = lever_importance(sweep_frame(1.0), [ONCALL, SPOT], kpi="availability_pct")
    assert ranks["surrogate_r2"][0] < MIN_SURROGATE_R2
    sentence = importance_sentence(ranks)
    assert sentence.startswith("Inconclusive") and "matters most" not in sentence
    made_up = ranks.with_columns(surrogate_r2=pl.lit(MIN_SURROGATE_R2 - 0.01))
    assert not is_conclusive(made_up)


def test_the_discovered_box_reads_as_a_sentence_about_labels():
    runs = sweep_frame(0.001)
    found = discover(runs, [ONCALL, SPOT], condition="availability_pct < 99.9")
    text = found.in_words()
    assert text.startswith("Availability is below 99.9% mostly when spot share (every service)")
    assert f"{found.density:.0%} of those runs" in text and f"{found.support:.0%} of all" in text
    assert not any(path in text for path in (ONCALL, SPOT)) and "\n" not in text
    assert condition_words("error_budget_used > 1") == "Availability misses its SLO"
    never = discover(runs, [ONCALL, SPOT], condition="availability_pct > 100")
    assert never.in_words() == "Availability is above 100% in none of the 100 runs."


def test_the_effects_table_for_people_has_labels_and_formatted_numbers():
    table = effects_in_words(lever_effects(sweep_frame(0.001), [ONCALL, SPOT]))
    assert set(table["Lever"]) == {lever_label(ONCALL), lever_label(SPOT)}
    assert set(table["KPI"]) == {"Availability"}
    change = table.filter(pl.col("Lever") == lever_label(SPOT))["Change"][0]
    assert change.endswith(" pp") and change.startswith("-"), change
