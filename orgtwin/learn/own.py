"""Own latency: a service's measured latency with its calls' taken out, as the twin adds
them (:class:`~orgtwin.behaviours.LatencyComposition`). The latency learner fits its
curves to it, and the drift watch compares it with them.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from orgtwin.behaviours.services import (
    calls_moments,
    lognormal_moments,
    lognormal_quantiles,
    own_quantiles,
)
from orgtwin.scenario import Scenario

CALLEES_OVER_S = 3600.0
"""The learner's window for a callee's typical latency in :func:`own_latency` (an hour:
per-minute metrics are taken at their hour's median; hourly telemetry row by row)."""


def own_latency(
    requests: pl.DataFrame, base: Scenario, *, callees_over_s: float = 0.0
) -> pl.DataFrame:
    """``requests`` with each service's own latency in place of the measured one.

    A service's measured latency includes what its calls take. The twin adds latency
    along calls by moments (:class:`~orgtwin.behaviours.LatencyComposition`); this
    undoes it (:func:`~orgtwin.behaviours.services.own_quantiles`): the own mean is the
    measured mean less the calls' (``F`` per request times the callees' measured mean,
    plus the vendors'), the own variance likewise, each read from a row's median and
    95th percentile as a lognormal. Only services of the base whose latency and whose
    callees' latency were measured are kept, each at the times it and its callees were;
    the result is empty when there are none. Times are first cut to the table's spacing
    (a minute, an hour: :func:`spacing_s`), so that services measured at different
    seconds of the same minute line up.

    A table with a 95th percentile and no median at all (metrics that keep tail
    percentiles only) gives each service's median from the base's own ``p95_over_p50``:
    callees first, each service's own median is the one whose composed 95th percentile
    is the measured one, and its total median the composition's. The own ``p95`` over
    the own median is then the base's ratio, and a twin's own telemetry stripped of its
    medians gives back its own latency exactly.

    ``callees_over_s``: where longer than the spacing, each callee's latency is taken as
    its median over that many seconds up to the row (the caller's stays the row's). A
    percentile does not subtract row by row: a minute's p95 of the caller and of each
    callee come from different requests, so the difference of noisy rows lands far off,
    while the caller's median less its callees' typical latency is what the twin adds
    back. The learner takes an hour (:data:`CALLEES_OVER_S`); the drift watch row by row
    (0), where a callee's fault must leave its callers' own latency as it was.
    """
    if "latency_p50_ms" not in requests.columns:  # tail percentiles only
        requests = requests.with_columns(latency_p50_ms=pl.lit(None, dtype=pl.Float64))
    has_p95 = requests.filter(pl.col("latency_p95_ms").is_not_null())
    tail = has_p95.height > 0 and has_p95["latency_p50_ms"].null_count() == has_p95.height
    measured = has_p95.filter(
        pl.col("service").is_in(list(base.services))
        & (pl.col("latency_p50_ms").is_not_null() | tail)
    )
    present = set(measured["service"].unique().to_list())
    usable = [s for s in base.services if s in present and set(base.services[s].calls) <= present]
    if not usable:
        return measured.clear()
    step = spacing_s(measured)
    measured = measured.with_columns(pl.col("time").dt.truncate(f"{step}s")).unique(
        subset=["time", "service"], keep="first", maintain_order=True
    )
    wide = {
        column: measured.pivot(on="service", index="time", values=column).sort("time")
        for column in ("latency_p95_ms",) + (() if tail else ("latency_p50_ms",))
    }
    names = [c for c in wide["latency_p95_ms"].columns if c != "time"]
    vendors = {}  # what each service's vendor calls add: mean and variance, ms
    for name in names:
        calls = base.services[name].vendors
        ms = [base.vendors[v].latency_ms for v in calls]
        mean, var = calls_moments(list(calls.values()), ms, 0.0)
        vendors[name] = (float(mean), float(var))
    if tail:
        wide["latency_p50_ms"] = _tail_medians(wide["latency_p95_ms"], base, names, vendors)
    window = f"{round(callees_over_s)}s" if callees_over_s > step else None
    callee_wide = wide
    if window is not None:
        callee_wide = {
            column: frame.select(
                "time",
                *(
                    pl.col(c).fill_nan(None).rolling_median_by("time", window_size=window)
                    for c in names
                ),
            )
            for column, frame in wide.items()
        }
    column = {name: i for i, name in enumerate(names)}

    def matrix(frames: dict[str, pl.DataFrame], quantile: str) -> np.ndarray:
        """``[time, service]`` in the order of ``names``; NaN where not measured."""
        values = frames[quantile].select(names).fill_null(np.nan).to_numpy()
        return values.astype(float).reshape(-1, len(names))

    total = {q: matrix(wide, q) for q in ("latency_p50_ms", "latency_p95_ms")}
    seen = {q: matrix(callee_wide, q) for q in ("latency_p50_ms", "latency_p95_ms")}
    times = wide["latency_p95_ms"]["time"]
    parts = []
    for name in usable:
        calls = base.services[name].calls
        at = [column[c] for c in calls]
        callee_p50, callee_p95 = seen["latency_p50_ms"][:, at], seen["latency_p95_ms"][:, at]
        total_p50 = total["latency_p50_ms"][:, column[name]]
        total_p95 = total["latency_p95_ms"][:, column[name]]
        rows = np.isfinite(total_p50) & np.isfinite(total_p95)
        rows &= np.isfinite(callee_p50).all(axis=1) & np.isfinite(callee_p95).all(axis=1)
        known = (
            total_p95[rows], np.array(list(calls.values()), dtype=float),
            callee_p50[rows], callee_p95[rows], *vendors[name],
        )  # fmt: skip
        if tail:  # the own p95 is the base's ratio times the own median
            ratio = base.services[name].latency.p95_over_p50
            p50 = _own_for_p95(known[0], ratio, *known[1:])[0]
            p95 = p50 * ratio
        else:
            p50, p95 = own_quantiles(total_p50[rows], *known)
        parts.append(pl.DataFrame({"time": times.filter(rows), "service": name,
                                   "latency_p50_ms": p50, "latency_p95_ms": p95}))  # fmt: skip
    owned = pl.concat(parts)
    return measured.drop("latency_p50_ms", "latency_p95_ms").join(owned, on=["time", "service"])


def _tail_medians(
    p95: pl.DataFrame, base: Scenario, names: list[str], vendors: dict[str, tuple]
) -> pl.DataFrame:
    """Each measured service's total median per row (``p95``: time × service), callees
    first (:func:`_own_for_p95` on the callees' totals found before). A service with a
    callee not measured is taken as calling nothing."""
    order: list[str] = []

    def visit(name: str, path: set[str]) -> None:
        if name in order or name in path:
            return
        for callee in base.services[name].calls:
            if callee in names:
                visit(callee, path | {name})
        order.append(name)

    for name in names:
        visit(name, set())
    medians: dict[str, np.ndarray] = {}
    for name in order:
        calls = base.services[name].calls
        if not set(calls) <= set(names):
            calls = {}
        callee_p50 = np.column_stack([medians[c] for c in calls] or [np.zeros(p95.height)])
        callee_p95 = p95.select(list(calls) or names[:1]).fill_nan(None).to_numpy()
        _, medians[name] = _own_for_p95(
            p95[name].fill_nan(None).to_numpy().astype(float),
            base.services[name].latency.p95_over_p50,
            np.array(list(calls.values()), dtype=float), callee_p50[:, : len(calls)],
            callee_p95[:, : len(calls)].astype(float), *vendors[name],
        )  # fmt: skip
    return p95.select("time", *(pl.Series(n, medians[n]) for n in names))


def _own_for_p95(
    target: np.ndarray, ratio: float, calls: np.ndarray, callee_p50: np.ndarray,
    callee_p95: np.ndarray, vendor_mean: float, vendor_var: float,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The own median whose own 95th percentile is ``ratio`` times it and whose
    composition with the calls (:class:`~orgtwin.behaviours.LatencyComposition`) has the
    95th percentile ``target``, per row (by bisection on its log: the composed 95th
    percentile grows with it; 1e-6 ms where the calls alone exceed it), and the
    composition's median. NaN where ``target`` or a callee's latency is missing."""
    target = np.asarray(target, dtype=float)
    calls_mean, calls_var = calls_moments(calls, *lognormal_moments(callee_p50, callee_p95))
    calls_mean, calls_var = calls_mean + vendor_mean, calls_var + vendor_var

    def composed(own_p50: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        own_mean, own_var = lognormal_moments(own_p50, own_p50 * ratio)
        return lognormal_quantiles(own_mean + calls_mean, own_var + calls_var)

    known = np.isfinite(target) & (target > 0) & np.isfinite(calls_mean) & np.isfinite(calls_var)
    low = np.full(target.shape, np.log(1e-6))
    high = np.log(np.where(known, target, 1.0))
    for _ in range(60):
        middle = 0.5 * (low + high)
        above = composed(np.exp(middle))[1] > target
        low, high = np.where(above, low, middle), np.where(above, middle, high)
    own = np.exp(high)
    return np.where(known, own, np.nan), np.where(known, composed(own)[0], np.nan)


def spacing_s(table: pl.DataFrame) -> int:
    """The spacing of a table's rows in whole seconds: the smallest, over its services,
    of the median step between a service's times (an hour for hourly telemetry)."""
    steps = (
        table.select("time", "service")
        .unique()
        .sort("service", "time")
        .group_by("service")
        .agg(pl.col("time").diff().dt.total_seconds().median().alias("step"))["step"]
        .drop_nulls()
    )
    return max(round(float(steps.min())), 1) if steps.len() else 3600
