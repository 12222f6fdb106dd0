"""The building blocks of scenario specs: the base class, strict bounded values and knobs.

Every scenario object derives from :class:`Spec`: unknown keys are errors, values are
validated when set, and the docstring under each field is its description (pydantic reads
it), so the reference, the JSON Schema and the dashboard's help all say the same words.
A :class:`Knob` on a field says how a page offers it as a control.

Values are strict and finite: a :data:`Number` is a finite number (never ``true``, text,
``.inf`` or ``.nan``), a :data:`Whole` a whole number (never ``2.0`` or ``true``), a
:data:`Flag` ``true`` or ``false``, a :data:`Name` a non-empty name. Each field then
declares its own range and unit, once: ``Annotated[Number, Field(ge=0.0, le=1e6)]``. The
ranges are wider than any real organisation needs and narrow enough that a run's
arithmetic stays finite; the checks pydantic cannot make (the call graph's growth, the
memory a run needs) live in :mod:`orgtwin.scenario.checks` and
:mod:`orgtwin.scenario.memory`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, StringConstraints


class Spec(BaseModel):
    """Base of every scenario object: unknown keys are errors, values are validated on set."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, frozen=False, use_attribute_docstrings=True
    )


# --------------------------------------------------------------------------- strict values

Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A finite number (``3`` or ``2.5``); never ``true``, text, ``.inf`` or ``.nan``."""
Whole = Annotated[int, Strict()]
"""A whole number (``3``); never ``3.0``, ``true`` or text."""
Flag = Annotated[bool, Strict()]
"""``true`` or ``false``; never ``1``, ``0`` or text."""

MAX_NAME_LENGTH = 100
"""Longest name of an entity or a scenario, characters."""


def _printable(name: str) -> str:
    """Refuse names that are blank or hold control characters (NUL, tab, newline…)."""
    if not name.strip():
        raise ValueError(f"must be a name with a visible character, got {name!r}")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ValueError(f"must be a name without control characters, got {name!r}")
    return name


Name = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH), AfterValidator(_printable)
]
"""A name: 1 to 100 characters, not blank, no control characters."""

EARLIEST_START = datetime(1970, 1, 1)
"""The earliest ``start`` a scenario may have."""
LATEST_START = datetime(2200, 1, 1)
"""The latest ``start`` a scenario may have (a 10-year run then still ends in 2210)."""


def _naive_utc(value: datetime) -> datetime:
    """A wall time in UTC without a time zone (``…+05:00`` becomes the same instant in UTC)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


Start = Annotated[datetime, Field(ge=EARLIEST_START, le=LATEST_START), AfterValidator(_naive_utc)]
"""A wall time in UTC between :data:`EARLIEST_START` and :data:`LATEST_START`."""

# --------------------------------------------------------------------------- shared ranges

Probability = Annotated[Number, Field(ge=0.0, le=1.0)]
"""A share or a probability, 0 to 1."""
Milliseconds = Annotated[Number, Field(gt=0.0, le=3_600_000.0)]
"""A latency or latency threshold, ms: above 0, at most an hour."""
CallsPerRequest = Annotated[Number, Field(ge=0.0, le=1_000.0)]
"""Calls one request makes to a service or vendor, 0 to 1,000."""
Coefficient = Annotated[Number, Field(ge=0.0, le=100.0)]
"""A log-scale coefficient of a behaviour (per unit of its driver), 0 to 100."""
MAX_PRICE_USD_MONTH = 1_000_000.0
"""Highest price per user per month, USD."""
MIN_PAID_PRICE_USD_MONTH = 0.01
"""Lowest price per user per month that is not free, USD (a cent)."""


def _cent_or_free(price: float) -> float:
    """Refuse prices between free and a cent: price ratios then stay within 10^8."""
    if 0.0 < price < MIN_PAID_PRICE_USD_MONTH:
        raise ValueError(f"must be 0 (free) or at least 0.01 USD/month, got {price!r}")
    return price


Price = Annotated[Number, Field(ge=0.0, le=MAX_PRICE_USD_MONTH), AfterValidator(_cent_or_free)]
"""A price per user per month, USD: 0 (free), or 0.01 to 1,000,000."""
Selector = Literal["*"] | list[str]
"""Names of entities of one kind, or ``"*"`` for all of them."""


@dataclass(frozen=True)
class Knob:
    """How an interactive page offers a field as a control.

    Put it in the field's annotation: ``Annotated[int, Field(ge=1), Knob("Board meets
    every", "h", 24, 672, 24)]``. A bound left ``None`` is worked out for each scenario
    (an on-call rotation can be no larger than its team).

    Attributes:
        label: what the field does, in plain words.
        unit: the value's unit (``"h"``, ``"USD/month"``…), or ``""``.
        low: the smallest value offered (numbers only).
        high: the largest value offered (numbers only).
        step: the step between offered values (numbers only).
    """

    label: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    step: float | None = None


def knob(spec: type[BaseModel], name: str) -> Knob | None:
    """The :class:`Knob` field ``name`` of ``spec`` declares, if any.

    Example:
        >>> from orgtwin.scenario.interventions import SpotShare
        >>> knob(SpotShare, "spot_share").label, knob(SpotShare, "at")
        ('Share of replicas on spot instances', None)
    """
    info = spec.model_fields.get(name)
    return None if info is None else next((m for m in info.metadata if isinstance(m, Knob)), None)
