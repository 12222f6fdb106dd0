"""Time and units: the constants every stage shares, and numbers formatted for people.

One tick of the simulation is one hour. Scenario times are days from the scenario's
``start`` (``at: 30``) or durations with a unit (``at: "36h"``, ``"3d"``, ``"2w"``); see
:func:`parse_hours`. A month is the mean Gregorian month, :data:`DAYS_PER_MONTH` days.

Values are formatted by their unit (:func:`format_value`, :func:`format_delta`):
thousands separators, percentages with two decimals and their changes in percentage
points (``pp``), money with ``$`` and no cents from $1,000 up.

The :class:`Clock` is the one home of a run's time arithmetic: the hour of the week at a
tick, in UTC or a local time zone, working hours, and the first tick at a local time.

This module imports nothing from orgtwin: every stage may use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24
DAYS_PER_WEEK = 7
HOURS_PER_WEEK = HOURS_PER_DAY * DAYS_PER_WEEK
DAYS_PER_MONTH = 30.4375
"""The mean Gregorian month (365.25 / 12 days): monthly rates in scenarios use it."""
HOURS_PER_MONTH = DAYS_PER_MONTH * 24.0
WORKWEEK_HOURS = 5 * HOURS_PER_DAY
"""Hours of the week from Monday 00:00 to Friday 24:00 (the weekdays)."""
WORK_START_HOUR, WORK_END_HOUR = 9, 18
"""Working hours on a weekday, local time: from 09:00 to 18:00."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([hdw])\s*$")
_UNIT_HOURS = {"h": 1, "d": HOURS_PER_DAY, "w": HOURS_PER_WEEK}


def parse_hours(value: float | int | str) -> int:
    """Convert a scenario time (days as a number, or ``"36h"``, ``"3d"``, ``"2w"``) to hours.

    Args:
        value: a number of days, or a string with unit ``h``, ``d`` or ``w``.

    Returns:
        The time in whole hours (rounded to the nearest hour).

    Raises:
        ValueError: the value is neither a number nor a duration string.

    Example:
        >>> parse_hours(1.5), parse_hours("36h"), parse_hours("2w")
        (36, 36, 336)
    """
    if isinstance(value, bool):
        raise ValueError(f"must be a number of days or a duration like '36h', got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number of days, got {value!r}")
        return round(float(value) * HOURS_PER_DAY)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"must be a number of days or a duration like '36h', '3d', got {value!r}")
    return round(float(match.group(1)) * _UNIT_HOURS[match.group(2)])


# --------------------------------------------------------------------------- the clock


@dataclass
class Clock:
    """The simulated time of one run: tick 0 is the scenario's ``start``, one tick an hour.

    Hours of the week count from Monday 00:00 (0) to Sunday 23:00 (167), in UTC unless a
    time zone's ``utc_offset_hours`` is given.

    Args:
        start: wall time of tick 0 (timezone-naive UTC).
        n_ticks: ticks in the run.
        tick: the current tick (the hour being simulated).

    Example:
        >>> clock = Clock(datetime(2026, 1, 5, 8), n_ticks=48)  # a Monday, 08:00 UTC
        >>> clock.hour_of_week(), clock.is_working_hour(), clock.is_working_hour(utc_offset_hours=1)
        (8, False, True)
        >>> clock.first_tick_at(0, weekday=1, hour=10)  # Tuesday 10:00 UTC
        26
    """

    start: datetime
    n_ticks: int
    tick: int = 0
    offset: int = field(init=False)
    """Hour of the week (UTC) of tick 0."""

    def __post_init__(self) -> None:
        self.offset = self.start.weekday() * HOURS_PER_DAY + self.start.hour

    @property
    def day(self) -> int:
        """The day the current tick falls in (0 = the first)."""
        return self.tick // HOURS_PER_DAY

    def hour_of_week(self, tick: int | None = None, utc_offset_hours: int = 0) -> int:
        """Hour of the week at ``tick`` (default: now), in the given time zone."""
        now = self.tick if tick is None else tick
        return (now + self.offset + utc_offset_hours) % HOURS_PER_WEEK

    def is_working_hour(self, tick: int | None = None, utc_offset_hours: int = 0) -> bool:
        """Whether ``tick`` (default: now) is a weekday working hour in the time zone."""
        now = self.tick if tick is None else tick
        hour_of_week = (now + self.offset + utc_offset_hours) % HOURS_PER_WEEK
        hour = hour_of_week % HOURS_PER_DAY
        return hour_of_week < WORKWEEK_HOURS and WORK_START_HOUR <= hour < WORK_END_HOUR

    def first_tick_at(self, utc_offset_hours: int, *, weekday: int, hour: int) -> int:
        """First tick at which it is ``weekday`` (0 = Monday) ``hour`` in a time zone."""
        local = weekday * HOURS_PER_DAY + hour
        return (local - self.offset - utc_offset_hours) % HOURS_PER_WEEK

    def ends_day(self) -> bool:
        """Whether the current tick is the last hour of a day."""
        return (self.tick + 1) % HOURS_PER_DAY == 0

    def advance(self) -> None:
        """Move on to the next hour."""
        self.tick += 1


# --------------------------------------------------------------------------- formatting

MISSING = "n/a"
"""How a value that is missing or undefined (``None``, ``NaN``) is shown."""
UNITS_UNSAID = frozenset({"%", "USD", "fraction", "0-1"})
"""Units whose values read well without the unit written after them."""


def format_value(value: float | None, unit: str) -> str:
    """A value for people: ``"1,234"``, ``"99.95%"``, ``"$12,345"``, ``"0.42"``.

    Example:
        >>> format_value(12345.678, "USD"), format_value(99.951, "%"), format_value(6.24, "h")
        ('$12,346', '99.95%', '6.2')
    """
    if value is None or math.isnan(value):
        return MISSING
    if unit == "%":
        return f"{value:,.2f}%"
    if unit == "USD":
        sign = "-" if value < 0 else ""
        digits = ",.0f" if abs(value) >= 1000 else ",.2f"
        return f"{sign}${abs(value):{digits}}"
    return _plain(value)


def format_delta(value: float | None, unit: str) -> str:
    """A signed change for people: ``"+19.2"``, ``"-0.51 pp"``, ``"+$1,200"``, ``"0"``.

    Changes of a percentage are in percentage points, with a third or fourth decimal
    when they are small (availability moves by hundredths of a point).

    Example:
        >>> format_delta(-0.512, "%"), format_delta(-0.0412, "%"), format_delta(1200.0, "USD")
        ('-0.51 pp', '-0.041 pp', '+$1,200')
    """
    if value is None or math.isnan(value):
        return MISSING
    if value == 0:
        return "0 pp" if unit == "%" else "0"
    sign = "-" if value < 0 else "+"
    if unit == "%":  # small moves of a percentage (availability) need more than 2 decimals
        decimals = 2 if abs(value) >= 0.1 else 3 if abs(value) >= 0.01 else 4
        return f"{sign}{abs(value):,.{decimals}f} pp"
    return sign + format_value(abs(value), unit)


def with_unit(text: str, unit: str) -> str:
    """A formatted value followed by its unit, unless the unit goes unsaid (``%``, ``USD``).

    Example:
        >>> with_unit("6.2", "h"), with_unit("99.95%", "%"), with_unit("n/a", "h")
        ('6.2 h', '99.95%', 'n/a')
    """
    if text == MISSING or unit in UNITS_UNSAID or text.endswith(" pp"):
        return text
    return f"{text} {unit}"


def in_sentence(label: str) -> str:
    """A label as it reads inside a sentence: its first letter lower case, unless the label
    starts with an acronym or a name (``"Spot share"`` → ``"spot share"``, ``"UTC offset"``
    stays).

    Example:
        >>> in_sentence("On-call size (every team)"), in_sentence("SLO error budget used")
        ('on-call size (every team)', 'SLO error budget used')
    """
    if len(label) > 1 and label[1].isupper():
        return label
    return label[:1].lower() + label[1:]


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Collection[int] = ()
) -> str:
    """An aligned plain-text table: a header line, a rule of dashes, one line per row.

    Columns are padded to their widest cell and separated by two spaces; trailing spaces
    are trimmed.

    Args:
        headers: the column names.
        rows: the cells, already formatted; each row as long as ``headers``.
        right: indexes of the columns aligned right (numbers); the others align left.

    Returns:
        The table, newline-separated (no trailing newline).

    Example:
        >>> print(format_table(["lever", "effect"], [["oncall", "+1.5"], ["spot", "-12"]],
        ...                    right=[1]))
        lever   effect
        ------  ------
        oncall    +1.5
        spot       -12
    """
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths).rstrip()
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def _plain(value: float) -> str:
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size == 0:
        return "0"
    if size >= 1:
        return f"{value:.1f}"
    if size >= 0.01:
        return f"{value:.2f}"
    return f"{value:.2g}"
