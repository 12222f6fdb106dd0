"""The drift watch against NYC taxi's labelled anomaly windows (real data).

The twin learns its demand on July–August 2014 and the watch follows September 2014 to
January 2015 (:func:`tests.fidelity.nyc.nyc_watch_figures`), its threshold calibrated
to the default budget (one false alarm a week) on the learning months. Measured: an
alarm in each of the five windows (the marathon, Thanksgiving, Christmas, New Year,
the blizzard), and about 2.4 false alarms per week outside them (45 over 18.8 weeks;
between 2.1 and 2.7 as the stream's gains and the calibration's seed vary). Many of
those are real events NAB does not label (Labor Day and the start of the school year,
Columbus Day, Veterans Day, Martin Luther King Day, storms): autumn and winter demand
wanders about twice as far as in the calm summer the threshold is calibrated on, so
the issue's target of at most one a week is not met; the test keeps it as an expected
failure and asserts what holds.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fidelity.nyc import nyc_watch_figures
from tests.learn.real_data import require

TARGET_PER_WEEK = 1.0
"""The issue's false-alarm target."""
HOLDS_PER_WEEK = 3.0
"""What holds today, with some room (measured 2.1 to 2.7)."""


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    require("nyc_taxi/nyc_taxi.csv")
    require("nyc_taxi/windows.json")
    return nyc_watch_figures()


def test_every_labelled_window_raises_an_alarm(figures: dict[str, Any]):
    assert figures["window_recall"] == 1.0, figures["missed"]
    for event in ("Thanksgiving", "Christmas", "Blizzard"):  # days far below the norm
        hits = [a for a in figures["alarms"] if a["window"] and a["window"].startswith(event)]
        assert any(a["direction"] == "down" for a in hits), (event, hits)


def test_false_alarms_stay_within_what_holds(figures: dict[str, Any]):
    assert figures["weeks_outside"] > 18
    assert figures["false_alarms_per_week"] <= HOLDS_PER_WEEK, figures["false_alarms"]


@pytest.mark.xfail(
    strict=True,
    reason="measured about 2.4 false alarms a week: autumn demand wanders more than the "
    "summer reference the threshold is calibrated on, and unlabelled holidays alarm too",
)
def test_false_alarms_meet_the_target_of_one_a_week(figures: dict[str, Any]):
    assert figures["false_alarms_per_week"] <= TARGET_PER_WEEK
