"""The drift watch against NYC taxi's labelled anomaly windows: the whole run, and its
figures.

NAB's NYC taxi series (``../shared/data/nyc_taxi``) counts passengers per 30 minutes
from 2014-07-01 to 2015-01-31; ``windows.json`` labels five anomaly windows, each some
four days wide (the NYC marathon, Thanksgiving, Christmas, New Year, the January
blizzard). :func:`nyc_watch_figures`:

1. reads the series through the example mapping (one arrivals series, key
   ``taxi_passengers``);
2. learns the twin's demand (:func:`orgtwin.learn.learn`, ``only=["demand"]``) on
   July–August 2014, from :data:`BASE` (one segment named as the arrivals' key): the
   hour-of-week profile and its burstiness;
3. watches the whole series with July–August as the reference window and the watch's
   default budget (one false alarm a week per behaviour; demand is the only one here),
   the threshold calibrated to it;
4. scores the alarms raised from September on: a window is recalled when an alarm is
   raised inside it; a false alarm is one raised outside every window, counted per
   week of watched time outside the windows.
"""

from __future__ import annotations

import json
import time as clock
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from orgtwin.fidelity.watch import watch
from orgtwin.learn import learn
from tests.learn.real_data import TWINS, read_example, require

NAME = "nyc_taxi"
BASE = TWINS / f"{NAME}.yaml"
"""The base twin: one segment, ``taxi_passengers``, as the mapping keys the arrivals."""
LEARN = (datetime(2014, 7, 1), datetime(2014, 9, 1))
"""The months the twin learns on, and the watch's reference window."""
WEEK = timedelta(weeks=1)


def anomaly_windows() -> list[tuple[str, datetime, datetime]]:
    """NAB's labelled windows: (event, start, end), from ``windows.json``."""
    data = json.loads(require(f"{NAME}/windows.json").read_text())
    return [
        (event, datetime.fromisoformat(start), datetime.fromisoformat(end))
        for event, (start, end) in zip(data["events"], data["windows"], strict=True)
    ]


def nyc_watch_figures() -> dict[str, Any]:
    """Learn on July–August, watch the rest, score the alarms against the windows.

    Returns:
        ``window_recall`` (share of the windows with an alarm inside), ``recalled`` and
        ``missed`` (the windows' events), ``false_alarms`` (alarms outside every window,
        from September on), ``false_alarms_per_week`` (per week of watched time outside
        the windows), ``weeks_outside``, ``alarms`` (each alarm from September on:
        raised, since, direction, shift in sd, the window it falls in or None),
        ``threshold`` (the calibrated CUSUM threshold), ``burst_cv`` (learned) and
        ``seconds`` (the whole run). The benchmark keys ``nyc_taxi_window_recall`` and
        ``nyc_taxi_false_alarms_per_week`` are ``window_recall`` and
        ``false_alarms_per_week``.
    """
    began = clock.perf_counter()
    telemetry = read_example(NAME)
    learning = replace(
        telemetry,
        tables={
            name: frame.filter(pl.col("time").is_between(*LEARN, closed="left"))
            for name, frame in telemetry.tables.items()
        },
    )
    twin, _report = learn(learning, base=BASE, only=["demand"])
    found = watch(twin, telemetry, reference=LEARN)
    windows = anomaly_windows()
    start = LEARN[1]
    end = found.residuals["time"].max() + timedelta(hours=1)
    alarms = []
    for row in found.alarms.filter(pl.col("raised") >= start).iter_rows(named=True):
        inside = next((e for e, a, b in windows if a <= row["raised"] < b), None)
        alarms.append(dict(raised=row["raised"], since=row["since"], window=inside,
                           direction=row["direction"], shift_sd=row["shift_sd"]))  # fmt: skip
    recalled = [e for e, _, _ in windows if any(a["window"] == e for a in alarms)]
    inside_weeks = sum(max(min(b, end) - max(a, start), timedelta(0)) / WEEK for _, a, b in windows)
    weeks_outside = (end - start) / WEEK - inside_weeks
    false = [a for a in alarms if a["window"] is None]
    segment = twin.segments["taxi_passengers"]
    return {
        "window_recall": len(recalled) / len(windows),
        "recalled": recalled,
        "missed": [e for e, _, _ in windows if e not in recalled],
        "false_alarms": len(false),
        "false_alarms_per_week": len(false) / weeks_outside,
        "weeks_outside": weeks_outside,
        "alarms": alarms,
        "threshold": float(found.thresholds["threshold"][0]),
        "burst_cv": float(segment.demand_profile.burst_cv),
        "seconds": clock.perf_counter() - began,
    }


if __name__ == "__main__":
    figures = nyc_watch_figures()
    for row in figures.pop("alarms"):
        print(row)
    print(figures)
