"""The verdict (orgtwin/explore/verdict.py): a paragraph that answers the scenario's question.

The price increase runs against the baseline over several seeds (the shared exploration:
30 days x 3 seeds, paired); its verdict must lead with what decides it, give each figure
its interval and carry the margin beyond the run as a labelled projection. A change that
changes nothing must read as not distinguishable from zero.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import orgtwin
from orgtwin.errors import ExploreError
from orgtwin.explore import verdict
from orgtwin.world import costs
from orgtwin.world.kpis import KPIS, check_decides

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.fixture(scope="module")
def price_increase() -> orgtwin.Scenario:
    return orgtwin.load_scenario(ROOT / "scenarios" / "price_increase.yaml")


def projected(text: str) -> float:
    """The projected change of margin a verdict states, USD."""
    found = re.search(r"comes to ([+-])\$([\d,]+)", text)
    assert found, text
    return float(found.group(2).replace(",", "")) * (1 if found.group(1) == "+" else -1)


def test_price_increase_verdict_names_margin_users_and_intervals(
    price_increase_exploration: Any, price_increase: orgtwin.Scenario
) -> None:
    explored = price_increase_exploration
    text = verdict(explored.base, explored.change, price_increase)
    assert text.startswith(price_increase.question)
    assert "Over 30 days (3 seeds, paired by seed), against baseline, price_increase adds $" in text
    assert " to margin after people cost (95% CI +$" in text
    assert " fewer active users (95% CI -" in text
    assert "customer lifetime value" in text
    assert "Projected" not in text  # the horizon is the run's own days
    # the claims the text makes hold with margins from the spread across seeds
    rows = {r["kpi"]: r for r in explored.comparison.iter_rows(named=True)}
    assert rows["margin_after_people_usd"]["ci_low"] > 0
    assert rows["users"]["ci_high"] < 0
    assert "On margin after people cost, what decides first, the change is better" in text
    lost = f"ends with {abs(rows['users']['delta']):,.0f} fewer active users"
    assert lost in text


def test_projection_is_labelled_and_grows_with_the_horizon(
    price_increase_exploration: Any, price_increase: orgtwin.Scenario
) -> None:
    explored = price_increase_exploration
    texts = {
        h: verdict(explored.base, explored.change, price_increase, horizon_days=h)
        for h in (60, 180, 365)
    }
    for horizon, text in texts.items():
        assert f"Projected to {horizon} days (a projection, not a simulation:" in text
    amounts = [projected(texts[h]) for h in (60, 180, 365)]
    run_delta = explored.comparison.filter(explored.comparison["kpi"] == "margin_after_people_usd")[
        "delta"
    ][0]
    assert run_delta < amounts[0] < amounts[1] < amounts[2]
    # as documented: the run's margin plus each seed's end rate carried forward, compounding
    summary_b, summary_c = explored.base.summary, explored.change.summary
    by_seed = [
        c["margin_after_people_usd"] - b["margin_after_people_usd"]
        + costs.project(c["margin_per_day_end_usd"], c["user_growth_monthly_pct"], 335)
        - costs.project(b["margin_per_day_end_usd"], b["user_growth_monthly_pct"], 335)
        for b, c in zip(summary_b.iter_rows(named=True), summary_c.iter_rows(named=True),
                        strict=True)
    ]  # fmt: skip
    assert amounts[2] == pytest.approx(sum(by_seed) / len(by_seed), abs=1.0)
    assert texts[365].endswith(": still positive.")


def test_a_change_that_changes_nothing_is_not_distinguishable(tmp_path: Path) -> None:
    noop = tmp_path / "noop.yaml"
    noop.write_text(
        f"extends: {ROOT / 'scenarios' / 'baseline.yaml'}\nname: noop\n"
        "question: Does changing nothing change anything?\n"
        "decides: [margin_after_people_usd, users, pages]\n",
        encoding="utf-8",
    )
    scenario = orgtwin.load_scenario(noop)
    base = orgtwin.run(orgtwin.base_of(scenario), days=5, seeds=2)
    change = orgtwin.run(scenario, days=5, seeds=2)
    text = verdict(base, change, scenario, horizon_days=30)
    assert text.startswith("Does changing nothing change anything? Over 5 days (2 seeds")
    assert text.count("not distinguishable from zero") == 5  # 3 KPIs, answer, projection
    assert "beyond noise" not in text
    assert "changes margin after people cost by 0, not distinguishable from zero" in text
    assert "the change is not distinguishable from zero at 95%: the same in every seed." in text


def test_horizon_shorter_than_the_run_is_refused(
    price_increase_exploration: Any, price_increase: orgtwin.Scenario
) -> None:
    explored = price_increase_exploration
    with pytest.raises(ExploreError, match="horizon_days must be a whole number between 30"):
        verdict(explored.base, explored.change, price_increase, horizon_days=29)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_states_its_question_and_what_decides_it(path: Path) -> None:
    scenario = orgtwin.load_scenario(path)
    assert scenario.question.endswith("?") and len(scenario.question) > 20
    assert scenario.decides and all(kpi in KPIS for kpi in check_decides(scenario))


def test_cli_run_prints_the_verdict_before_the_comparison(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from orgtwin.cli import main

    price = str(ROOT / "scenarios" / "price_increase.yaml")
    argv = ["run", price, "--days", "21", "--seeds", "2", "--horizon-days", "90"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    first, rest = out.split("\n\n", 1)
    assert first.startswith("If we raise the Pro plan from 12 to 15 USD a month")
    assert "Projected to 90 days (a projection, not a simulation:" in first
    assert rest.startswith("price_increase vs baseline: 2 seeds x 21 days")
    assert main([*argv[:-1], "20"]) == 2
    err = capsys.readouterr().err
    assert "--horizon-days must be at least the run's 21 days, got 20" in err
