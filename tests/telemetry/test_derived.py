"""Tables made from other tables: customers from user_days."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from orgtwin.telemetry import schemas
from orgtwin.telemetry.derived import customers_from_user_days
from orgtwin.units import DAYS_PER_MONTH

D0 = dt.date(2026, 3, 1)


def user_days(rows: list[tuple]) -> pl.DataFrame:
    """Rows of (day offset, user, churned, tenure_days) of one segment."""
    return pl.DataFrame(
        [
            {"day": D0 + dt.timedelta(days=d), "user": u, "segment": "pro", "plan": "pro",
             "price": 10.0 + d, "sessions": 1, "errors": 0, "latency": 50.0, "churned": c,
             "tenure_days": t}
            for d, u, c, t in rows
        ],
        schema=schemas.USER_DAYS,
    )  # fmt: skip


def test_a_customer_is_watched_from_its_first_day_to_its_last() -> None:
    days = user_days([
        (0, 1, False, 60.0), (1, 1, False, 61.0), (2, 1, True, 62.0),  # left on day 2
        (1, 2, False, 0.0), (2, 2, False, 1.0),  # joined in the window, still there
        (0, 3, False, None), (1, 3, True, None),  # no tenure: left out
    ])  # fmt: skip
    customers = customers_from_user_days(days)
    assert dict(customers.schema) == schemas.CUSTOMERS
    assert customers["customer"].to_list() == ["1", "2"]
    one, two = customers.rows(named=True)
    assert one["start"] == D0 - dt.timedelta(days=60) and one["end"] == D0 + dt.timedelta(days=2)
    assert one["churned"] and one["price"] == 12.0  # the last day's price
    assert one["entry_tenure_months"] == pytest.approx(60 / DAYS_PER_MONTH)
    assert one["tenure_months"] == pytest.approx(63 / DAYS_PER_MONTH)  # through its last day
    assert two["start"] == D0 + dt.timedelta(days=1) and two["end"] is None
    assert not two["churned"] and two["entry_tenure_months"] == 0.0


def test_no_tenure_anywhere_gives_no_customers() -> None:
    days = user_days([(0, 1, False, None), (1, 1, True, None)])
    assert customers_from_user_days(days).is_empty()


def test_since_keeps_later_rows_and_watches_customers_from_then(tmp_path) -> None:
    from orgtwin.telemetry.folder import read_telemetry, write_telemetry

    days = user_days([(0, 1, False, 60.0), (1, 1, True, 61.0), (1, 2, False, 0.0),
                      (2, 2, False, 1.0)])  # fmt: skip
    write_telemetry(tmp_path / "t", {"user_days": days,
                                     "customers": customers_from_user_days(days)})  # fmt: skip
    later = read_telemetry(tmp_path / "t").since(dt.datetime(2026, 3, 2, 12))
    assert later.tables["user_days"].collect()["day"].to_list() == [D0 + dt.timedelta(days=2)]
    (kept,) = later.tables["customers"].collect().rows(named=True)  # 1 left before then
    assert kept["customer"] == "2"
    assert kept["entry_tenure_months"] == pytest.approx(0.5 / DAYS_PER_MONTH)  # half a day in


def test_between_keeps_the_rows_of_the_window_only(tmp_path) -> None:
    from orgtwin.telemetry.folder import read_telemetry, write_telemetry

    days = user_days([(0, 1, False, 60.0), (1, 1, False, 61.0), (2, 1, False, 62.0),
                      (3, 1, True, 63.0)])  # fmt: skip
    write_telemetry(tmp_path / "t", {"user_days": days,
                                     "customers": customers_from_user_days(days)})  # fmt: skip
    window = read_telemetry(tmp_path / "t").between(
        dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 4)
    )
    kept = window.tables["user_days"].collect()["day"].to_list()
    assert kept == [D0 + dt.timedelta(days=1), D0 + dt.timedelta(days=2)]
    assert window.tables["customers"].collect().height == 1  # as since() leaves them
