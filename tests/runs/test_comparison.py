"""Comparing run sets (orgtwin/runs/comparison.py): each KPI's change, with its uncertainty.

:func:`compare` pairs runs by seed when both sets ran the same seeds (a Student-t
interval of the paired differences, which finds shifts that Welch's interval across
different seeds cannot), and otherwise uses Welch's interval. A KPI that did not move is
flat and never significant; runs where a KPI is undefined are left out of that KPI only.
:func:`compare_scenarios` puts several sets side by side, each compared with the first.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from orgtwin.errors import ResultsError
from orgtwin.runs import comparison
from orgtwin.runs.comparison import compare, compare_scenarios
from orgtwin.runs.results import RunSet
from orgtwin.world.kpis import KPIS

MakeSet = Callable[..., RunSet]


def row(frame: pl.DataFrame, kpi: str) -> dict[str, object]:
    return frame.filter(pl.col("kpi") == kpi).row(0, named=True)


SEEDS = list(range(100, 108))
RNG = np.random.default_rng(42)
BASE_REVENUE = RNG.normal(1000.0, 50.0, len(SEEDS))  # seeds differ a lot
NOISE = RNG.normal(0.0, 0.5, len(SEEDS))  # the change moves each seed by 5 ± 0.5


def test_paired_interval_for_a_known_shift(make_summary_set: MakeSet) -> None:
    base = make_summary_set("base", SEEDS, revenue_usd=list(BASE_REVENUE))
    change = make_summary_set(
        "change", SEEDS[::-1], revenue_usd=list(BASE_REVENUE[::-1] + 5 + NOISE)
    )
    result = row(compare(base, change, kpis=["revenue_usd"]), "revenue_usd")

    differences = 5 + NOISE[::-1]  # matched by seed, not by position
    half = 2.3646 * differences.std(ddof=1) / math.sqrt(8)
    assert result["method"] == "paired"
    assert result["n"] == 8
    assert result["delta"] == pytest.approx(differences.mean())
    assert result["ci_low"] == pytest.approx(differences.mean() - half, abs=1e-3)
    assert result["ci_high"] == pytest.approx(differences.mean() + half, abs=1e-3)
    assert result["ci_low"] < 5 < result["ci_high"]
    assert result["significant"] is True
    assert (result["direction"], result["better"]) == ("up", True)


def test_welch_interval_when_seeds_differ(make_summary_set: MakeSet) -> None:
    base = make_summary_set("base", [1, 2, 3, 4], lead_time_hours=[1.0, 2.0, 3.0, 4.0])
    change = make_summary_set("change", [5, 6, 7, 8], lead_time_hours=[11.0, 12.0, 13.0, 14.0])
    result = row(compare(base, change), "lead_time_hours")

    # equal sizes and variances: Welch's df is 2(n - 1) = 6, t(0.975, 6) = 2.447
    half = 2.4469 * math.sqrt(2 * (5 / 3) / 4)
    assert result["method"] == "welch"
    assert result["delta"] == 10.0
    assert result["ci_low"] == pytest.approx(10 - half, abs=1e-3)
    assert result["ci_high"] == pytest.approx(10 + half, abs=1e-3)
    assert result["rel_delta"] == pytest.approx(10 / 2.5)
    assert (result["direction"], result["better"], result["significant"]) == ("up", False, True)


def test_pairing_finds_what_welch_cannot(make_summary_set: MakeSet) -> None:
    base = make_summary_set("base", SEEDS, revenue_usd=list(BASE_REVENUE))
    change_revenue = list(BASE_REVENUE + 5 + NOISE)
    paired = compare(base, make_summary_set("c", SEEDS, revenue_usd=change_revenue))
    unpaired = compare(
        base, make_summary_set("c", [s + 1 for s in SEEDS], revenue_usd=change_revenue)
    )
    assert row(paired, "revenue_usd")["significant"] is True
    assert row(unpaired, "revenue_usd")["significant"] is False


def test_constant_kpi_is_flat_and_not_significant(make_summary_set: MakeSet) -> None:
    result = row(compare(make_summary_set("a", SEEDS), make_summary_set("b", SEEDS)), "users")
    assert result["direction"] == "flat"
    assert result["delta"] == 0.0
    assert result["significant"] is False
    assert result["better"] is None


def test_relative_change_is_null_from_zero(make_summary_set: MakeSet) -> None:
    base = make_summary_set("base", [1, 2, 3], incidents=[0.0, 0.0, 0.0])
    change = make_summary_set("change", [1, 2, 3], incidents=[1.0, 2.0, 3.0])
    result = row(compare(base, change), "incidents")
    assert result["rel_delta"] is None
    assert result["delta"] == 2.0
    assert result["better"] is False


def test_one_seed_has_no_interval(make_summary_set: MakeSet) -> None:
    base = make_summary_set("base", [1], margin_usd=[10.0])
    change = make_summary_set("change", [1], margin_usd=[20.0])
    result = row(compare(base, change), "margin_usd")
    assert result["n"] == 1
    assert (result["ci_low"], result["ci_high"], result["significant"]) == (None, None, False)
    assert result["direction"] == "up"


def test_nan_runs_are_left_out_of_that_kpi(make_summary_set: MakeSet) -> None:
    base = make_summary_set("base", [1, 2, 3], mttr_hours=[1.0, math.nan, 3.0])
    change = make_summary_set("change", [1, 2, 3], mttr_hours=[2.0, 5.0, math.nan])
    result = row(compare(base, change), "mttr_hours")
    assert (result["n"], result["base_mean"], result["change_mean"]) == (1, 1.0, 2.0)
    assert result["ci_low"] is None
    assert row(compare(base, change), "users")["n"] == 3, "other KPIs keep every run"


def test_a_kpi_undefined_in_every_run_compares_as_null(make_summary_set: MakeSet) -> None:
    base = make_summary_set("base", [1, 2], mttr_hours=[math.nan, math.nan])
    result = row(compare(base, make_summary_set("change", [1, 2])), "mttr_hours")
    assert (result["n"], result["delta"], result["direction"]) == (0, None, None)
    assert result["significant"] is False


def test_compare_schema_and_kpi_selection(make_summary_set: MakeSet) -> None:
    table = compare(
        make_summary_set("a", [1, 2]), make_summary_set("b", [1, 2]), kpis=["users", "pages"]
    )
    assert table.schema == pl.Schema(comparison.COMPARISON)
    assert table["kpi"].to_list() == ["users", "pages"]
    assert table["unit"].to_list() == ["users", "pages"]


def test_compare_rejects_unknown_kpis_and_bad_confidence(make_summary_set: MakeSet) -> None:
    a, b = make_summary_set("a", [1, 2]), make_summary_set("b", [1, 2])
    with pytest.raises(ResultsError, match=r"got 'lead_time' .did you mean 'lead_time_hours'"):
        compare(a, b, kpis=["lead_time"])
    with pytest.raises(ResultsError, match=r"confidence must be between 0 and 1 .*, got 95"):
        compare(a, b, confidence=95)


def test_compare_scenarios_puts_each_set_beside_the_first(make_summary_set: MakeSet) -> None:
    kpis = ["revenue_usd", "lead_time_hours"]
    first = make_summary_set("base", SEEDS, revenue_usd=list(BASE_REVENUE))
    later = make_summary_set(
        "dearer",
        SEEDS,
        revenue_usd=list(BASE_REVENUE + 5 + NOISE),
        lead_time_hours=[2.0 + 0.1 * i for i in range(len(SEEDS))],
    )
    other = make_summary_set("cheaper", SEEDS, revenue_usd=list(BASE_REVENUE - 40 + NOISE))
    table = compare_scenarios([first, later, other], kpis=kpis)

    assert table.schema == pl.Schema(comparison.SCENARIOS_COMPARISON)
    assert table.select("scenario", "kpi").rows() == [
        (scenario, kpi) for scenario in ("base", "dearer", "cheaper") for kpi in kpis
    ]
    deltas = ["delta", "delta_low", "delta_high", "significant", "better"]
    base_rows = table.filter(pl.col("scenario") == "base")
    assert all(base_rows[column].null_count() == len(kpis) for column in deltas)
    for runset in (later, other):
        mine = table.filter(pl.col("scenario") == runset.scenario)
        versus = compare(first, runset, kpis=kpis)
        assert mine["kpi"].to_list() == versus["kpi"].to_list()
        assert mine["delta"].to_list() == versus["delta"].to_list()
        assert mine["delta_low"].to_list() == versus["ci_low"].to_list()
        assert mine["delta_high"].to_list() == versus["ci_high"].to_list()
        assert mine["significant"].to_list() == versus["significant"].to_list()
        assert mine["better"].to_list() == versus["better"].to_list()
    revenue = table.filter(pl.col("kpi") == "revenue_usd")
    assert revenue["mean"].to_list() == pytest.approx(
        [BASE_REVENUE.mean(), (BASE_REVENUE + 5 + NOISE).mean(), (BASE_REVENUE - 40 + NOISE).mean()]
    )
    assert revenue["label"].to_list() == [KPIS["revenue_usd"].label] * 3
    assert row(revenue.filter(pl.col("scenario") == "cheaper"), "revenue_usd")["better"] is False


def test_compare_scenarios_needs_a_run_set() -> None:
    with pytest.raises(ResultsError, match="at least one RunSet"):
        compare_scenarios([])
