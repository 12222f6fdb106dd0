"""Plain-text reports (orgtwin/runs/report.py): a run set's summary and a comparison.

:func:`format_summary` lists every KPI under a header of seeds and days;
:func:`format_comparison` lists every KPI aligned and then says, in a sentence per KPI,
what moved beyond noise (or that nothing did, and why there is no interval with one seed).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from orgtwin.runs.comparison import compare
from orgtwin.runs.report import format_comparison, format_summary
from orgtwin.runs.results import RunResult, RunSet
from orgtwin.world.kpis import KPIS

MakeSet = Callable[..., RunSet]


@pytest.fixture
def runset(make_run_result: Callable[..., RunResult]) -> RunSet:
    return RunSet.from_runs([make_run_result(1, 12), make_run_result(0, 11)])


def test_format_comparison_tells_what_moved(make_summary_set: MakeSet) -> None:
    base = make_summary_set("base", [1, 2, 3, 4], lead_time_hours=[6.0, 6.2, 6.4, 6.2])
    change = make_summary_set("cab", [1, 2, 3, 4], lead_time_hours=[25.0, 25.5, 25.6, 25.5])
    table = compare(base, change)
    text = format_comparison(table, base_name="base", change_name="cab", seeds=4, days=30)

    assert text.startswith("cab vs base: 4 seeds x 30 days, paired by seed")
    assert "What moved beyond noise:" in text
    moved = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(moved) == 1
    assert moved[0].startswith("- Lead time for changes rose 310% (from 6.2 h to 25.4 h; 95% CI +")
    assert moved[0].endswith(" h): worse.")
    kpi_lines = [line for line in text.splitlines() if line.startswith(tuple(KPIS))]
    assert len(kpi_lines) == len(KPIS)
    assert len({line.index(" h ") for line in kpi_lines if " h " in line}) == 1  # aligned


def test_format_comparison_says_when_nothing_moved(make_summary_set: MakeSet) -> None:
    table = compare(make_summary_set("a", [1]), make_summary_set("b", [1]))
    text = format_comparison(table, base_name="a", change_name="b", seeds=1, days=30)
    assert "- Nothing: no KPI's 95% interval excludes zero." in text
    assert "fewer than two seeds" in text


def test_format_summary_lists_every_kpi(runset: RunSet) -> None:
    text = format_summary(runset)
    assert text.splitlines()[0] == "base: 2 seeds x 1 day"
    assert sum(line.startswith(tuple(KPIS)) for line in text.splitlines()) == len(KPIS)
