"""Tables made from other tables: what one table implies about another.

An organisation does not always export every table. :func:`customers_from_user_days`
turns the daily activity of users (``user_days``, with each user's tenure) into one row
per customer, the shape the churn hazard is learned from; the simulator's synthetic
telemetry is written the same way (:func:`orgtwin.runs.synth.synth`).
:func:`client_latency_p95` is what a service's callees' latency implies about its own
client latency (the ``requests`` table's ``client_latency_p95_ms``): the simulator
records it so, and the drift watch predicts it so.

Example:
    >>> import datetime as dt, polars as pl
    >>> days = pl.DataFrame({"day": [dt.date(2026, 1, 1), dt.date(2026, 1, 2)] * 2,
    ...     "user": [1, 1, 2, 2], "segment": "pro", "plan": "pro", "price": 10.0,
    ...     "sessions": 1, "errors": 0, "latency": 50.0, "churned": [False, True, False, False],
    ...     "tenure_days": [30.0, 31.0, 0.0, 1.0]})
    >>> customers_from_user_days(days).select("customer", "start", "end", "churned").rows()
    [('1', datetime.date(2025, 12, 2), datetime.date(2026, 1, 2), True), ('2', datetime.date(2026, 1, 1), None, False)]
"""  # noqa: E501

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from orgtwin.telemetry import schemas
from orgtwin.units import DAYS_PER_MONTH

Z95 = 1.6448536269514722
"""The standard normal's 95th percentile."""
LOG_SD_FLOOR = 1e-3
"""The least log sd of a callee's latency (a callee whose p95 is its median)."""
_BISECTIONS = 32
"""Halvings of the interval the mix's percentile lies in (its log: under 1e-8 left)."""


def customers_from_user_days(user_days: pl.DataFrame) -> pl.DataFrame:
    """One row per user of ``user_days`` who carries a tenure: the ``customers`` table.

    A user is watched from their first day in the table to their last. So that a table
    that covers a window is read without bias (users who joined before it, and were
    still there when it began, are seen from its start; those who left before are not
    seen at all), each row says where the watching began: ``entry_tenure_months`` is the
    tenure on the user's first day, ``tenure_months`` the tenure at the end of their last
    day. ``start`` is the first day less the tenure then; ``end`` the day the user left
    (null while still a customer). Segment, plan and price are the last day's.

    Args:
        user_days: the ``user_days`` table (schema
            :data:`orgtwin.telemetry.schemas.USER_DAYS`).

    Returns:
        The ``customers`` table (schema :data:`orgtwin.telemetry.schemas.CUSTOMERS`),
        ordered by customer; users whose tenure is never given are left out.
    """
    known = user_days.filter(pl.col("tenure_days").is_not_null()).sort("user", "day")
    month = DAYS_PER_MONTH
    rows = known.group_by("user", maintain_order=True).agg(
        pl.col("segment").last(),
        pl.col("plan").last(),
        pl.col("price").last(),
        first_day=pl.col("day").first(),
        last_day=pl.col("day").last(),
        first_tenure=pl.col("tenure_days").first(),
        last_tenure=pl.col("tenure_days").last(),
        churned=pl.col("churned").any(),
    )
    out = rows.select(
        customer=pl.col("user").cast(pl.String),
        segment=pl.col("segment"),
        plan=pl.col("plan"),
        price=pl.col("price"),
        start=pl.col("first_day") - pl.duration(days=pl.col("first_tenure").floor().cast(pl.Int64)),
        end=pl.when(pl.col("churned")).then(pl.col("last_day")),
        tenure_months=(pl.col("last_tenure") + 1.0) / month,
        churned=pl.col("churned"),
        entry_tenure_months=pl.col("first_tenure") / month,
    )
    return out.select([pl.col(c).cast(t) for c, t in schemas.CUSTOMERS.items()])


def client_latency_p95(
    latency_p95: ArrayLike, share: ArrayLike, p95_over_p50: ArrayLike
) -> NDArray[np.float64]:
    """The 95th percentile of a service's calls, mixed over its callees.

    Each callee's latency is taken as lognormal with its 95th percentile and its ratio of
    the 95th percentile to the median; the calls are a mix of them in ``share``, and the
    mix's 95th percentile ``q`` solves ``Σ_b share_b · P(L_b > q) = 0.05`` (by bisection
    on ``log q``, which lies between the callees' least and greatest 95th percentiles).
    A callee that turns slow moves it little while its calls are under 5% of the mix (the
    other callees' tails still hold the 95th percentile), and up towards that callee's
    own latency once they are more.

    Args:
        latency_p95: the callees' 95th percentiles, ms, one row per time and one column
            per callee ``[rows, callees]``.
        share: each callee's share of the calls (``[callees]``; scaled to sum to 1).
        p95_over_p50: each callee's 95th percentile over its median, broadcast against
            ``latency_p95`` (below 1 counts as 1).

    Returns:
        The mix's 95th percentile per row, ms; NaN where a callee's is not a positive
        number.

    Example:
        >>> client_latency_p95([[10.0, 10.0], [10.0, 100.0]], [0.5, 0.5], 2.0).round(1)
        array([10. , 85.8])
    """
    l95 = np.atleast_2d(np.asarray(latency_p95, dtype=float))
    weights = np.asarray(share, dtype=float)
    weights = weights / weights.sum()
    ratio = np.broadcast_to(np.asarray(p95_over_p50, dtype=float), l95.shape)
    good = np.all(np.isfinite(l95) & (l95 > 0), axis=1)
    log95 = np.log(np.where(good[:, None], l95, 1.0))
    sigma = np.maximum(np.log(np.maximum(np.nan_to_num(ratio, nan=1.0), 1.0)) / Z95, LOG_SD_FLOOR)
    low, high = log95.min(axis=1), log95.max(axis=1)
    for _ in range(_BISECTIONS):
        middle = 0.5 * (low + high)
        tail = ndtr(-Z95 - (middle[:, None] - log95) / sigma) @ weights
        above = tail > 0.05  # q is further up
        low, high = np.where(above, middle, low), np.where(above, high, middle)
    return np.where(good, np.exp(0.5 * (low + high)), np.nan)
