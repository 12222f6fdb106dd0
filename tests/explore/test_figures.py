"""Figures for pages (orgtwin/explore/figures.py): KPI cards and series with bands.

On the price increase explored over 30 days and 3 seeds (fixture
``price_increase_exploration``): a metric's band across seeds holds its mean, a day's
accrued totals add up to the run's KPI, one entity's band lies under the band of all of
them, bad requests are refused with a suggestion, and the KPI cards follow the
comparison they are made from, with their interval in words.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from orgtwin.errors import ResultsError
from orgtwin.explore import kpi_cards, series_bands


@pytest.mark.parametrize(
    ("entity_type", "metric", "kpi"),
    [("team", "pages", "pages"), ("segment", "churned", "churned"),
     ("segment", "revenue_usd", "revenue_usd"), ("segment", "active_users", None),
     ("service", "error_rate", None), ("team", "fatigue", None)],
)  # fmt: skip
def test_series_bands_hold_the_mean_inside_the_band(
    price_increase_exploration: Any, entity_type: str, metric: str, kpi: str | None
):
    runs = price_increase_exploration.change
    for freq in ("day", "week"):
        bands = series_bands(runs, entity_type=entity_type, metric=metric, freq=freq)
        assert bands.columns == ["day", "mean", "low", "high", "n"]
        assert bands.height == (30 if freq == "day" else 5)
        assert (bands["low"] <= bands["mean"] + 1e-9).all()
        assert (bands["mean"] <= bands["high"] + 1e-9).all()
        assert (bands["n"] == 3).all()
        if kpi is not None:  # a day's totals add up to the run's KPI
            assert bands["mean"].sum() == pytest.approx(runs.summary[kpi].mean(), rel=1e-9)


def test_series_bands_of_one_entity_and_bad_requests(price_increase_exploration: Any):
    runs = price_increase_exploration.change
    one = series_bands(runs, entity_type="team", metric="pages", entity="web")
    every = series_bands(runs, entity_type="team", metric="pages")
    assert (one["mean"] <= every["mean"] + 1e-9).all()
    with pytest.raises(ResultsError, match="did you mean 'pages'"):
        series_bands(runs, entity_type="team", metric="pagez")
    with pytest.raises(ResultsError, match="entity_type must be one of"):
        series_bands(runs, entity_type="teams", metric="pages")
    with pytest.raises(ResultsError, match="entity must be a team"):
        series_bands(runs, entity_type="team", metric="pages", entity="nobody")
    with pytest.raises(ResultsError, match="freq must be"):
        series_bands(runs, entity_type="team", metric="pages", freq="hour")  # type: ignore[arg-type]


def test_kpi_cards_follow_the_comparison(price_increase_exploration: Any):
    comparison = price_increase_exploration.comparison
    cards = kpi_cards(comparison, ["revenue_usd", "churn_rate_monthly_pct"])
    revenue, churn = cards
    row = comparison.filter(pl.col("kpi") == "revenue_usd").row(0, named=True)
    assert revenue["label"] == "Revenue" and revenue["unit"] == "USD"
    assert revenue["delta"] == row["delta"] and revenue["significant"] == row["significant"]
    assert revenue["text"].startswith("+$") and "95% CI +$" in revenue["text"]
    assert churn["text"].endswith(" pp)") and " pp (95% CI " in churn["text"]
    with pytest.raises(ResultsError, match="did you mean 'revenue_usd'"):
        kpi_cards(comparison, ["revenue"])
