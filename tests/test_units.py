"""Time and units (orgtwin/units.py): scenario times, the run's clock, numbers for people.

:func:`parse_hours` reads days or durations with a unit; the :class:`Clock` gives the
hour of the week, working hours and the first tick at a local time, each checked hour by
hour against ``datetime`` arithmetic over two weeks from several starts and in several
time zones; :func:`format_value`, :func:`format_delta`, :func:`with_unit` and
:func:`format_table` write values by unit and align tables.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from orgtwin.units import (
    DAYS_PER_MONTH,
    HOURS_PER_MONTH,
    HOURS_PER_WEEK,
    Clock,
    format_delta,
    format_table,
    format_value,
    parse_hours,
    with_unit,
)

STARTS = [datetime(2026, 1, 5, 8), datetime(2026, 1, 7, 13), datetime(2026, 3, 1, 23)]
"""A Monday 08:00, a Wednesday 13:00 and a Sunday 23:00 (UTC)."""
OFFSETS = [-12, -5, 0, 1, 14]
TWO_WEEKS = range(2 * HOURS_PER_WEEK)


def local(start: datetime, tick: int, utc_offset_hours: int) -> datetime:
    """Wall time in the time zone at ``tick``."""
    return start + timedelta(hours=tick + utc_offset_hours)


# --------------------------------------------------------------------------- scenario times


@pytest.mark.parametrize(
    ("value", "hours"),
    [(1, 24), (1.5, 36), (0, 0), (0.25, 6), ("36h", 36), ("3d", 72), ("2w", 336),
     (" 2.5 d ", 60), ("0.5w", 84)],
)  # fmt: skip
def test_parse_hours_reads_days_and_durations(value: float | str, hours: int):
    assert parse_hours(value) == hours


@pytest.mark.parametrize("value", [True, "90", "3 days", "h", "-1d", "", "1.5.2h", None])
def test_parse_hours_refuses_what_is_neither_days_nor_a_duration(value: object):
    with pytest.raises(ValueError, match="must be a number of days or a duration like '36h'"):
        parse_hours(value)  # type: ignore[arg-type]


def test_parse_hours_rounds_to_the_nearest_hour():
    assert parse_hours(1 / 24 * 2.4) == 2
    assert parse_hours(1 / 24 * 2.6) == 3
    assert parse_hours("1.2h") == 1 and parse_hours("0.1d") == 2


def test_a_month_is_the_mean_gregorian_month():
    assert math.isclose(DAYS_PER_MONTH, 365.25 / 12)
    assert math.isclose(HOURS_PER_MONTH, 365.25 / 12 * 24)


# --------------------------------------------------------------------------- the clock


@pytest.mark.parametrize("start", STARTS, ids=lambda s: s.strftime("%a %H:%M"))
@pytest.mark.parametrize("offset", OFFSETS)
def test_hour_of_week_counts_from_monday_midnight_in_the_time_zone(start: datetime, offset: int):
    clock = Clock(start, n_ticks=len(TWO_WEEKS))
    for tick in TWO_WEEKS:
        wall = local(start, tick, offset)
        assert clock.hour_of_week(tick, offset) == wall.weekday() * 24 + wall.hour, tick
    utc = local(start, 0, 0)
    assert clock.hour_of_week() == utc.weekday() * 24 + utc.hour, "now is tick 0, in UTC"


@pytest.mark.parametrize("start", STARTS, ids=lambda s: s.strftime("%a %H:%M"))
@pytest.mark.parametrize("offset", OFFSETS)
def test_working_hours_are_weekdays_from_nine_to_six_local(start: datetime, offset: int):
    clock = Clock(start, n_ticks=len(TWO_WEEKS))
    working = []
    for tick in TWO_WEEKS:
        wall = local(start, tick, offset)
        expected = wall.weekday() < 5 and 9 <= wall.hour < 18
        assert clock.is_working_hour(tick, offset) == expected, (tick, wall)
        working.append(expected)
    assert sum(working) == 2 * 5 * 9


@pytest.mark.parametrize("start", STARTS, ids=lambda s: s.strftime("%a %H:%M"))
@pytest.mark.parametrize("offset", OFFSETS)
def test_first_tick_at_is_the_first_tick_at_that_local_weekday_and_hour(
    start: datetime, offset: int
):
    clock = Clock(start, n_ticks=HOURS_PER_WEEK)
    for weekday in range(7):
        for hour in (0, 9, 11, 23):
            tick = clock.first_tick_at(offset, weekday=weekday, hour=hour)
            assert 0 <= tick < HOURS_PER_WEEK
            wall = local(start, tick, offset)
            assert (wall.weekday(), wall.hour) == (weekday, hour)
            earlier = [local(start, t, offset) for t in range(tick)]
            assert all((w.weekday(), w.hour) != (weekday, hour) for w in earlier)


def test_the_clock_moves_an_hour_at_a_time_and_a_day_ends_every_24_ticks():
    clock = Clock(datetime(2026, 1, 7, 13), n_ticks=72)
    ends = []
    for tick in range(72):
        assert (clock.tick, clock.day) == (tick, tick // 24)
        assert clock.hour_of_week() == clock.hour_of_week(tick)
        assert clock.is_working_hour(utc_offset_hours=1) == clock.is_working_hour(tick, 1)
        if clock.ends_day():
            ends.append(tick)
        clock.advance()
    assert ends == [23, 47, 71], "a day of the run ends at its 24th hour, whatever the start"
    assert clock.tick == 72


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1234567.8, "users", "1,234,568"),
        (99.95123, "%", "99.95%"),
        (12345.6, "USD", "$12,346"),
        (-12345.6, "USD", "-$12,346"),
        (12.345, "USD", "$12.35"),
        (6.24, "h", "6.2"),
        (0.4219, "0-1", "0.42"),
        (math.nan, "h", "n/a"),
        (None, "h", "n/a"),
    ],
)
def test_format_value(value: float | None, unit: str, expected: str) -> None:
    assert format_value(value, unit) == expected


def test_format_delta() -> None:
    assert format_delta(-0.512, "%") == "-0.51 pp"
    assert format_delta(-0.0412, "%") == "-0.041 pp"
    assert format_delta(0.0, "%") == "0 pp"
    assert format_delta(1200.0, "USD") == "+$1,200"
    assert format_delta(19.24, "h") == "+19.2"


def test_format_delta_of_tiny_percentage_moves_keeps_four_decimals_and_is_missing_for_nan():
    assert format_delta(0.00512, "%") == "+0.0051 pp"
    assert format_delta(0.0, "h") == "0"
    assert format_delta(None, "%") == format_delta(math.nan, "h") == "n/a"


def test_with_unit_writes_the_unit_unless_it_goes_unsaid():
    assert with_unit("6.2", "h") == "6.2 h"
    assert with_unit("99.95%", "%") == "99.95%"
    assert with_unit("$12", "USD") == "$12"
    assert with_unit("-0.51 pp", "pp") == "-0.51 pp"
    assert with_unit("n/a", "h") == "n/a"


def test_format_table_pads_columns_to_their_widest_cell_and_aligns_numbers_right():
    text = format_table(
        ["lever", "effect", "note"],
        [["oncall", "+1.5", "ok"], ["spot_share", "-12", ""]],
        right=[1],
    )
    lines = text.split("\n")
    assert lines == [
        "lever       effect  note",
        "----------  ------  ----",
        "oncall        +1.5  ok",
        "spot_share     -12",
    ]
    assert not text.endswith("\n")
    assert all(line == line.rstrip() for line in lines), "no trailing spaces"
