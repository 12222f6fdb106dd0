"""The memory a run of a scenario needs, estimated before it runs.

``orgtwin check`` prints :func:`memory_estimate` and refuses a scenario whose estimate
passes a limit (:func:`default_limit_mib`, or ``--max-memory-mib``), so that a file
``check`` accepts runs to the end. The estimate is of ``orgtwin run``: every seed of
the scenario in one process, with the hourly series and every event table (a sweep or
the dashboard keeps less).

What a run holds, and so what the estimate adds up:

- the process: the interpreter and its libraries (:data:`PROCESS_MIB`);
- per seed: the per-tick series (ticks × entities × metrics), the ``requests`` table
  (ticks × services), every user slot a segment may need (its users at the start plus
  every arrival its acquisition law allows at its most favourable price, with nobody
  churning, twice over once the arrays grow), the ``user_days`` rows of the sampled
  users, and the deploys;
- once: what turning a run into tables takes on top (:data:`ONCE_MIB` and the
  per-row terms of the last run's conversion).

Seeds add up rather than share: each run's world stays in memory until the process
ends (Mesa keeps every model in ``Agent._ids``).

The per-row costs are calibrated on measurements: the peak resident memory
(``ru_maxrss``) of ``orgtwin.run`` in a fresh process, on Linux with Python 3.11, for
scenarios dominated in turn by the series, the users and the sampled users.
``tests/scenario/test_memory.py`` reruns such measurements and checks that the estimate
stays within :data:`CALIBRATION_FACTOR` of them.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

from orgtwin.errors import ScenarioError
from orgtwin.scenario.checks import segment_prices
from orgtwin.scenario.spec import Scenario
from orgtwin.units import HOURS_PER_DAY, WORK_END_HOUR, WORK_START_HOUR

MIB = 1024 * 1024
PROCESS_MIB = 170.0
"""Resident memory of a process that has imported what a run needs, MiB."""
ONCE_MIB = 30.0
"""Memory a first run takes whatever its size (Mesa, polars' pools, caches), MiB."""
SERIES_METRICS = {"segment": 8, "service": 9, "vendor": 4, "feature": 4, "team": 14}
"""Series metrics per entity of each type (:mod:`orgtwin.telemetry.series` declares them;
the scenario package may not import it, and a test checks that the two agree)."""
SERIES_ROW_BYTES = 56.0
"""Per seed, per row of the series: the recorder's value and the tidy frame's row."""
SERIES_ROW_ONCE_BYTES = 20.0
"""Once, per row of the series: building the tidy frame and the KPIs of a run."""
REQUESTS_ROW_BYTES = 68.0
"""Per seed, per row of the ``requests`` table (a service's hour)."""
USER_SLOT_BYTES = 32.0
"""Per seed, per user slot: the per-user arrays (intensity, experience, tenure, churn
clock and threshold, id) and the free list."""
USER_SLOT_ONCE_BYTES = 8.0
"""Once, per user slot: the day's churn temporaries."""
USER_DAY_ROW_BYTES = 110.0
"""Per seed, per ``user_days`` row: the sampled users' arrays and the table."""
DEPLOY_BYTES = 400.0
"""Per seed, per deploy: its event, its row, and the pages and incidents it may bring."""
WORKDAYS_PER_DAY = 5 / 7
"""Working days in an average day."""
GROWTH = 2.0
"""User arrays grow to twice their size when full."""
MAX_USERS = 1e15
"""Users a segment is estimated at, at most (the arithmetic stays finite)."""
BEYOND_MIB = 1e9
"""An estimate past this (a pebibyte) is said as "more than" it."""
CALIBRATION_FACTOR = 1.5
"""The estimate is within this factor of the measured peak, either way, on the
calibration scenarios (``tests/scenario/test_memory.py``)."""
FALLBACK_LIMIT_MIB = 8192
"""The limit where the available memory cannot be read, MiB."""


class MemoryEstimate(NamedTuple):
    """Estimated peak memory of a run, in bytes, by what holds it.

    Attributes:
        process: the interpreter and its libraries.
        kept: what every seed keeps until the process ends.
        once: what the conversion of the largest run takes on top, once.
        days: days of the run estimated.
        seeds: seeds of each scenario estimated.
    """

    process: float
    kept: float
    once: float
    days: int
    seeds: int

    @property
    def total(self) -> float:
        """The estimated peak, bytes."""
        return self.process + self.kept + self.once

    @property
    def mib(self) -> float:
        """The estimated peak, MiB."""
        return self.total / MIB

    def words(self) -> str:
        """The estimate as ``check`` prints it: ``about 640 MiB``.

        Example:
            >>> MemoryEstimate(100 * MIB, 500 * MIB, 40 * MIB, 90, 8).words()
            'about 640 MiB'
        """
        if not self.mib <= BEYOND_MIB:  # NaN and infinity included
            return f"more than {BEYOND_MIB:,.0f} MiB"
        return f"about {self.mib:,.0f} MiB"

    def plus(self, other: MemoryEstimate) -> MemoryEstimate:
        """Both runs in one process (a scenario and its base, as ``orgtwin run`` does)."""
        return MemoryEstimate(
            max(self.process, other.process), self.kept + other.kept,
            max(self.once, other.once), self.days, self.seeds,
        )  # fmt: skip


def memory_estimate(
    scenario: Scenario, days: int | None = None, seeds: int | None = None
) -> MemoryEstimate:
    """Estimate the peak memory of running ``scenario`` (see the module docstring).

    Args:
        scenario: a validated scenario.
        days: days per run (default: the scenario's).
        seeds: seeds run in the process (default: the scenario's).

    Example:
        >>> from orgtwin.scenario.load import load_scenario
        >>> estimate = memory_estimate(load_scenario("scenarios/baseline.yaml"), seeds=1)
        >>> 200 < estimate.mib < 500
        True
    """
    days = scenario.days if days is None else int(days)
    seeds = scenario.seeds if seeds is None else int(seeds)
    ticks = days * HOURS_PER_DAY
    rows = ticks * series_entities(scenario)
    requests = ticks * len(scenario.services)
    slots = user_slots(scenario, days)
    kept = (
        SERIES_ROW_BYTES * rows
        + REQUESTS_ROW_BYTES * requests
        + USER_SLOT_BYTES * slots
        + USER_DAY_ROW_BYTES * user_day_rows(scenario, days)
        + DEPLOY_BYTES * deploys(scenario, days)
    )
    once = (
        ONCE_MIB * MIB
        + SERIES_ROW_ONCE_BYTES * rows
        + _name_bytes(scenario) * requests
        + USER_SLOT_ONCE_BYTES * slots
    )
    return MemoryEstimate(PROCESS_MIB * MIB, seeds * kept, once, days, seeds)


def series_entities(scenario: Scenario) -> int:
    """Values the series records each hour: every entity times its type's metrics."""
    counts = {
        "segment": len(scenario.segments),
        "service": len(scenario.services),
        "vendor": len(scenario.vendors),
        "feature": len(scenario.features),
        "team": len(scenario.teams),
    }
    return sum(SERIES_METRICS[kind] * n for kind, n in counts.items())


def _name_bytes(scenario: Scenario) -> float:
    """Bytes per ``requests`` row of building its service column (4 per character)."""
    return 4.0 * max((len(name) for name in scenario.services), default=0)


# --------------------------------------------------------------------------- users


def user_slots(scenario: Scenario, days: int) -> float:
    """User slots the segments' arrays may reach over ``days`` (see :func:`peak_users`)."""
    slots = 0.0
    for name, users in peak_users(scenario, days).items():
        first = max(16.0, 1.25 * scenario.segments[name].n_users)  # as the segment allocates
        slots += first if users <= first else GROWTH * users
    return slots


def peak_users(scenario: Scenario, days: int) -> dict[str, float]:
    """An upper bound on each segment's users during a run of ``days`` days.

    Each day brings ``(base + word of mouth × users) × price response`` new users at
    most (bad experience only damps word of mouth), at the segment's most favourable
    price over the run, and nobody churns: ``users' = users × (1 + a) + b``.

    Returns:
        Segment name -> users, at most :data:`MAX_USERS`.
    """
    prices = segment_prices(scenario)
    found = {}
    for name, segment in scenario.segments.items():
        acquisition = segment.acquisition
        response = _price_response(segment.churn.reference_price_usd_month, prices[name],
                                   acquisition.price_elasticity)  # fmt: skip
        a = response * acquisition.word_of_mouth_per_user_day
        b = response * acquisition.base_per_day
        found[name] = min(_grown(float(segment.n_users), a, b, days), MAX_USERS)
    return found


def _price_response(reference: float | None, prices: list[float], elasticity: float) -> float:
    """The largest factor on arrivals any of the prices gives, ``(price / ref) ** e``."""
    if not reference:
        return 1.0
    logs = [elasticity * math.log(p / reference) for p in prices if p > 0]
    return math.exp(min(max(logs, default=0.0), 700.0))


def _grown(users: float, a: float, b: float, days: int) -> float:
    """Users after ``days`` of ``users' = users × (1 + a) + b`` (infinite past floats)."""
    if a <= 0:
        return users + b * days
    exponent = days * math.log1p(a)
    if exponent > 700:
        return math.inf
    return (users + b / a) * math.exp(exponent) - b / a


def user_day_rows(scenario: Scenario, days: int) -> float:
    """Rows of the ``user_days`` table: each segment's sampled users, each day."""
    sample = scenario.telemetry.user_sample_per_segment
    return days * sum(min(sample, s.n_users) for s in scenario.segments.values())


def deploys(scenario: Scenario, days: int) -> float:
    """Deploys over ``days`` at most: a deploy ships at least one change, and each of a
    team's services ships at most once a working hour."""
    owned: dict[str, int] = {}
    for service in scenario.services.values():
        owned[service.team] = owned.get(service.team, 0) + 1
    hours = WORK_END_HOUR - WORK_START_HOUR
    per_workday = sum(
        min(team.headcount * team.changes_per_engineer_day, owned.get(name, 0) * hours)
        for name, team in scenario.teams.items()
    )
    return per_workday * days * WORKDAYS_PER_DAY


# --------------------------------------------------------------------------- the limit


def default_limit_mib() -> int:
    """Half the memory available now (``MemAvailable``), or :data:`FALLBACK_LIMIT_MIB`."""
    available = _available_bytes()
    return FALLBACK_LIMIT_MIB if available is None else int(available / 2 / MIB)


def _available_bytes() -> float | None:
    """Memory available to a new process, bytes: Linux's ``MemAvailable``, else free pages."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(scenario: Scenario, estimate: MemoryEstimate, limit_mib: float) -> None:
    """Refuse a run whose estimated peak passes ``limit_mib``.

    Raises:
        ScenarioError: the estimate is above the limit (the message gives both, and what
            to change).
    """
    if estimate.mib > limit_mib:
        problem = (
            f"must fit in {limit_mib:,.0f} MiB to run {estimate.seeds} seeds of "
            f"{estimate.days} days, got {estimate.words()}"
        )
        hint = "fewer users, services, days or seeds, or a smaller user sample"
        raise ScenarioError(scenario.source, "", problem, hint)
