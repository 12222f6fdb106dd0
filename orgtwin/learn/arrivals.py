"""Is the arrival process Poisson? Diagnostics of an ``arrivals`` table.

The twin draws requests and sessions as Poisson counts around its demand profile. Real
arrivals can be far burstier (batch jobs, retries, code assistants firing at every
keystroke); a twin built on them should say so. :func:`diagnose_arrivals` measures:

- the coefficient of variation (CV) of the inter-arrival times: 1 for a Poisson process,
  above 1 for bursts, below 1 for regular arrivals;
- the index of dispersion of counts per window (variance / mean; 1 for Poisson) and its
  chi-square test: ``(n − 1) · index`` follows χ² with ``n − 1`` degrees of freedom under
  a homogeneous Poisson process (two-sided p-value).

The verdict: ``bursty`` when the CV exceeds ``bursty_cv`` (2 by default), ``regular``
when it is below 1 / ``bursty_cv``, else ``near_poisson``. The dispersion test alone is
not the verdict: over a long window a slowly varying rate makes it significant even for
Poisson arrivals; its index says how much the counts vary beyond Poisson.

The twin can represent what is found: a segment's ``demand_profile.burst_cv`` scales each
hour's rate by a gamma factor of that CV, so its hourly counts vary as much beyond Poisson
as the data's do (:attr:`ArrivalDiagnostics.burst_cv`, measured at the window given; the
demand learner measures it at the twin's hour from a long series).

Example:
    >>> import numpy as np, polars as pl
    >>> from datetime import datetime, timedelta
    >>> gaps = np.random.default_rng(0).exponential(1.0, 5000)
    >>> times = [datetime(2026, 1, 1) + timedelta(seconds=float(s)) for s in gaps.cumsum()]
    >>> d = diagnose_arrivals(pl.DataFrame({"time": times}), window_s=60)
    >>> d.verdict, round(d.cv, 1)
    ('near_poisson', 1.0)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from scipy import stats

Verdict = Literal["bursty", "near_poisson", "regular"]


@dataclass(frozen=True)
class ArrivalDiagnostics:
    """How far an arrival process is from Poisson.

    Attributes:
        n_arrivals: arrivals counted.
        rate_per_s: mean arrivals per second over the span observed.
        cv: coefficient of variation of the inter-arrival times (1 for Poisson).
        dispersion_index: variance / mean of the counts per window (1 for Poisson).
        dispersion_p_value: two-sided chi-square p-value of the dispersion index.
        window_s: the window of the counts, seconds; ``n_windows`` of them.
        verdict: ``bursty``, ``near_poisson`` or ``regular`` (from the CV).
        burst_cv: the coefficient of variation of the rate per window beyond Poisson,
            ``sqrt(max(index − 1, 0) / mean count)``: the twin's ``burst_cv``
            (:class:`~orgtwin.scenario.organisation.DemandProfileSpec`) at this window.
    """

    n_arrivals: int
    rate_per_s: float
    cv: float
    dispersion_index: float
    dispersion_p_value: float
    window_s: float
    n_windows: int
    verdict: Verdict
    burst_cv: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose_arrivals(
    arrivals: pl.DataFrame, *, window_s: float = 60.0, bursty_cv: float = 2.0
) -> ArrivalDiagnostics:
    """Inter-arrival CV and count dispersion of ``arrivals`` (``time``; a ``count``
    column, when present, repeats each row that many times).

    Raises:
        ValueError: fewer than 3 arrivals, or ``window_s`` or ``bursty_cv`` not positive.
    """
    if window_s <= 0 or bursty_cv <= 1:
        raise ValueError(f"window_s must be > 0 and bursty_cv > 1, got {window_s}, {bursty_cv}")
    seconds = arrivals["time"].dt.epoch("us").to_numpy().astype(float) / 1e6
    if "count" in arrivals.columns:
        seconds = np.repeat(seconds, arrivals["count"].to_numpy().astype(int))
    seconds = np.sort(seconds)
    if seconds.size < 3:
        raise ValueError(f"arrivals must hold at least 3 arrivals, got {seconds.size}")
    gaps = np.diff(seconds)
    cv = float(gaps.std() / gaps.mean()) if gaps.mean() > 0 else math.inf
    edges = np.arange(seconds[0], seconds[-1] + window_s, window_s)
    counts = np.histogram(seconds, bins=edges)[0] if edges.size > 2 else np.array([seconds.size])
    n = counts.size
    index = float(counts.var(ddof=1) / counts.mean()) if n > 1 else math.nan
    if n > 1:
        tail = stats.chi2.sf((n - 1) * index, n - 1)
        p_value = float(min(1.0, 2 * min(tail, 1 - tail)))
    else:
        p_value = math.nan
    verdict: Verdict = (
        "bursty" if cv > bursty_cv else "regular" if cv < 1 / bursty_cv else "near_poisson"
    )
    span = max(seconds[-1] - seconds[0], 1e-9)
    return ArrivalDiagnostics(
        n_arrivals=int(seconds.size),
        rate_per_s=float(seconds.size / span),
        cv=cv,
        dispersion_index=index,
        dispersion_p_value=p_value,
        window_s=float(window_s),
        n_windows=int(n),
        verdict=verdict,
        burst_cv=math.sqrt(max(index - 1.0, 0.0) / counts.mean()) if n > 1 else math.nan,
    )
