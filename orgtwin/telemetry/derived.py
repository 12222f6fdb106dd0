"""Tables made from other tables: what one table implies about another.

An organisation does not always export every table. :func:`customers_from_user_days`
turns the daily activity of users (``user_days``, with each user's tenure) into one row
per customer, the shape the churn hazard is learned from; the simulator's synthetic
telemetry is written the same way (:func:`orgtwin.runs.synth.synth`).

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

import polars as pl

from orgtwin.telemetry import schemas
from orgtwin.units import DAYS_PER_MONTH


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
