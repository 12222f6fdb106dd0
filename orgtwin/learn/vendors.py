"""Vendor outages, learned from the ``vendor_status`` table and the window it covers.

Produces the outage parameters of :class:`orgtwin.behaviours.vendors.VendorOutages` (the
fields ``outage_rate_per_month`` and ``outage_hours_mean`` of
:class:`orgtwin.scenario.organisation.VendorSpec`) for one vendor:

- ``outage_rate_per_month``: outages starting in the window over the hours the vendor
  was up (a Poisson process; the simulator merges an outage that starts while another
  runs, or as it ends, into it, so only up hours can show a start), with the exact
  (Garwood, chi-square) 95% interval;
- ``outage_hours_mean``: the exponential mean by maximum likelihood. The simulator rounds
  durations to whole hours, at least one (``max(1, rint(hours))``), so each duration's
  likelihood is the probability of its bin; an outage still running at the window's end
  is right-censored. The interval is the profile-likelihood one (the gamma interval of
  continuous exponential data does not hold for rounded hours). Merged outages read as
  one longer outage, which overstates the mean by about ``rate × mean`` (a warning says
  so when that passes 5%).

With fewer than ``min_outages`` outages both shrink toward the prior: the rate as a
gamma-Poisson posterior (the prior counting as ``prior_weight`` outages), the mean on the
log scale.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import optimize, stats
from sklearn.utils.validation import check_is_fitted

from orgtwin.learn.base import Estimate, HoldoutScore, Learner, shrink
from orgtwin.scenario.organisation import VendorSpec
from orgtwin.units import HOURS_PER_MONTH

CHI2_95 = float(stats.chi2.ppf(0.95, df=1))
_RATE, _MEAN = "outage_rate_per_month", "outage_hours_mean"


def outage_bins(hours: NDArray, censored: NDArray) -> tuple[NDArray, NDArray]:
    """Bins ``[low, high)`` of the latent exponential length of rounded outages, hours.

    A whole ``d`` comes from ``[d − ½, d + ½)``, a 1 from ``[0, 1½)``; a censored outage
    that had lasted ``d`` hours at the window's end from ``[d − ½, ∞)`` (``[0, ∞)`` for 1).
    """
    d = np.maximum(np.rint(hours), 1.0)
    low = np.where(d <= 1.0, 0.0, d - 0.5)
    high = np.where(censored, np.inf, d + 0.5)
    return low, high


def log_likelihood(mean_hours: float, low: NDArray, high: NDArray) -> float:
    """Log-likelihood of an exponential mean for outage-length bins."""
    with np.errstate(divide="ignore"):
        p = np.exp(-low / mean_hours) - np.exp(-high / mean_hours)
    return float(np.log(np.maximum(p, 1e-300)).sum())


def fit_mean(low: NDArray, high: NDArray) -> tuple[float, float, float]:
    """Maximum-likelihood exponential mean of binned lengths and its 95% profile interval."""

    def loss(log_mean: float) -> float:
        return -log_likelihood(float(np.exp(log_mean)), low, high)

    best = optimize.minimize_scalar(loss, bounds=(np.log(0.01), np.log(1e5)), method="bounded")
    floor = best.fun + CHI2_95 / 2.0

    def edge(log_end: float) -> float:
        if loss(log_end) < floor:
            return float(np.exp(log_end))  # the likelihood stays flat to the edge
        return float(np.exp(optimize.brentq(lambda t: loss(t) - floor, best.x, log_end)))

    return float(np.exp(best.x)), edge(np.log(1e-3)), edge(np.log(1e6))


class VendorOutageLearner(Learner):
    """Outage rate and mean outage length of one vendor.

    Args:
        vendor: the vendor whose outages to learn (None: every row given).
        prior: the vendor's spec in the base scenario (default: the spec's defaults).
        start, end: the window the table covers (default: its first outage start and
            last outage end, with a warning: a window that starts and ends with outages
            overstates the rate).
        min_outages: below this many outages, estimates shrink toward the prior.
        prior_weight: outages the prior counts as when shrinking.
        test_share: share of the window (its later part) held out by :meth:`holdout`.

    Example:
        >>> import polars as pl
        >>> from datetime import datetime, timedelta
        >>> t0 = datetime(2026, 1, 1)
        >>> starts = [t0 + timedelta(hours=40 * i) for i in range(50)]
        >>> status = pl.DataFrame({"vendor": ["stripe"] * 50, "outage_start": starts,
        ...     "outage_end": [s + timedelta(hours=1 + i % 3) for i, s in enumerate(starts)]})
        >>> learner = VendorOutageLearner(vendor="stripe", start=t0,
        ...     end=t0 + timedelta(hours=2000)).fit(status)
        >>> round(learner.params()["outage_rate_per_month"], 1)
        19.2
    """

    behaviour: ClassVar[str] = "vendor_outages"
    entity: ClassVar[str] = "vendor"

    def __init__(
        self,
        *,
        vendor: str | None = None,
        prior: VendorSpec | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        min_outages: int = 10,
        prior_weight: float = 2.0,
        test_share: float = 0.3,
    ) -> None:
        self.vendor = vendor
        self.prior = prior
        self.start = start
        self.end = end
        self.min_outages = min_outages
        self.prior_weight = prior_weight
        self.test_share = test_share

    def fit(self, vendor_status: pl.DataFrame | pl.LazyFrame, y: Any = None) -> VendorOutageLearner:
        """Learn from a ``vendor_status`` table (``vendor``, ``outage_start``, ``outage_end``)."""
        frame = (
            vendor_status.collect() if isinstance(vendor_status, pl.LazyFrame) else vendor_status
        )
        if self.vendor is not None:
            frame = frame.filter(pl.col("vendor") == self.vendor)
        self.warnings_: list[str] = []
        start, end = self.start, self.end
        if start is None or end is None:
            self.warnings_.append(
                f"{self._who()}: the observed window was not given; taken from the first "
                "outage start to the last outage end (overstates the rate)"
            )
            start = start or frame["outage_start"].min() or datetime(1970, 1, 1)
            end = end or frame["outage_end"].max() or start
        self.window_start_, self.window_end_ = start, end
        frame = frame.filter(
            (pl.col("outage_start") >= start) & (pl.col("outage_start") < end)
        ).sort("outage_start")
        self.starts_ = _hours_since(frame["outage_start"], start)
        ends = _hours_since(frame["outage_end"].fill_null(end), start)
        self.window_hours_ = max((end - start).total_seconds() / 3600.0, 1e-9)
        self.censored_ = ends >= self.window_hours_
        self.lengths_ = np.minimum(ends, self.window_hours_) - self.starts_
        blocked = np.minimum(ends, np.ceil(self.window_hours_) - 1.0) - self.starts_
        self.up_hours_ = max(self.window_hours_ - float(np.maximum(blocked, 0.0).sum()), 1e-9)
        self.estimates_ = [self._rate(), self._mean()]
        return self

    def _who(self) -> str:
        return f"vendor {self.vendor}" if self.vendor is not None else "vendors"

    def _prior(self) -> VendorSpec:
        return self.prior or VendorSpec()

    def _rate(self) -> Estimate:
        n, months = int(self.starts_.size), self.up_hours_ / HOURS_PER_MONTH
        method = "Poisson count over the hours up, exact chi-square interval"
        if n >= self.min_outages:
            low = stats.chi2.ppf(0.025, 2 * n) / 2.0 if n > 0 else 0.0
            high = stats.chi2.ppf(0.975, 2 * n + 2) / 2.0
            return Estimate(
                _RATE,
                n / months,
                float(low / months),
                float(high / months),
                "learned",
                "per month",
                method,
                n,
            )
        prior_rate = self._prior().outage_rate_per_month
        shape, exposure = n + self.prior_weight, months + self.prior_weight / max(prior_rate, 1e-9)
        posterior = stats.gamma(a=shape, scale=1.0 / exposure)
        self.warnings_.append(
            f"{self._who()}: only {n} outages (fewer than {self.min_outages}): "
            f"{_RATE} shrunk toward the prior ({prior_rate:g})"
        )
        return Estimate(
            _RATE, shape / exposure, float(posterior.ppf(0.025)), float(posterior.ppf(0.975)),
            "shrunk", "per month",
            f"gamma-Poisson posterior, the prior counting as {self.prior_weight:g} outages", n,
        )  # fmt: skip

    def _mean(self) -> Estimate:
        n = int(self.lengths_.size)
        prior = self._prior().outage_hours_mean
        if n == 0 or not (~self.censored_).any():
            self.warnings_.append(f"{self._who()}: no finished outage: {_MEAN} kept from the prior")
            return Estimate(_MEAN, prior, prior, prior, "prior", "hours", "kept from the prior", 0)
        mean, low, high = fit_mean(*outage_bins(self.lengths_, self.censored_))
        overlap = n / self.up_hours_ * mean
        if overlap > 0.05:
            self.warnings_.append(
                f"{self._who()}: outages are frequent for their length (rate × mean "
                f"{overlap:.2f}): overlapping ones read as one, so {_MEAN} is overstated "
                f"by about {overlap:.0%}"
            )
        method = "exponential MLE on rounded hours (censored at the window's end), profile interval"
        if n >= self.min_outages:
            return Estimate(_MEAN, mean, low, high, "learned", "hours", method, n)
        log_mean, source = shrink(np.log(mean), np.log(prior), n, self.prior_weight)
        keep = np.sqrt(n / (n + self.prior_weight))
        low = np.exp(log_mean - keep * (np.log(mean) - np.log(low)))
        high = np.exp(log_mean + keep * (np.log(high) - np.log(mean)))
        self.warnings_.append(
            f"{self._who()}: only {n} outages (fewer than {self.min_outages}): "
            f"{_MEAN} shrunk toward the prior ({prior:g} hours)"
        )
        return Estimate(_MEAN, float(np.exp(log_mean)), float(low), float(high), source,
                        "hours", method + ", shrunk on the log scale", n)  # fmt: skip

    def rows_used(self) -> int:
        """Rows behind the fit (call after ``fit``)."""
        check_is_fitted(self, "estimates_")
        return int(self.starts_.size)

    def holdout(self) -> HoldoutScore | None:
        """Outage hours in the later part of the window: learned against the prior's.

        The score is the absolute error of the expected outage hours (rate × mean × window)
        over the held-out part, learning from the earlier part; the baseline is the base
        scenario's vendor spec. None with fewer than two outages in the earlier part.
        """
        check_is_fitted(self, "estimates_")
        cut = self.window_hours_ * (1.0 - self.test_share)
        early = self.starts_ < cut
        if early.sum() < 2:
            return None
        span = self.window_end_ - self.window_start_
        train = VendorOutageLearner(
            vendor=None, prior=self.prior, start=self.window_start_,
            end=self.window_start_ + span * (1 - self.test_share),
            min_outages=self.min_outages, prior_weight=self.prior_weight,
        )  # fmt: skip
        frame = _frame(self.window_start_, self.starts_[early], self.lengths_[early])
        learned = train.fit(frame).params()
        test_hours = self.window_hours_ - cut
        observed = float(self.lengths_[~early].sum())
        prior = self._prior()
        return HoldoutScore(
            "absolute error of held-out outage hours",
            abs(learned[_RATE] * learned[_MEAN] * test_hours / HOURS_PER_MONTH - observed),
            abs(
                prior.outage_rate_per_month * prior.outage_hours_mean * test_hours
                / HOURS_PER_MONTH - observed
            ),
            "the base scenario's vendor spec",
            higher_is_better=False,
            n_train=int(early.sum()),
            n_test=int((~early).sum()),
        )  # fmt: skip


def _hours_since(times: pl.Series, start: datetime) -> NDArray:
    return ((times - start).dt.total_seconds() / 3600.0).to_numpy().astype(float)


def _frame(start: datetime, starts: NDArray, lengths: NDArray) -> pl.DataFrame:
    """A ``vendor_status`` table from outage starts and lengths in hours since ``start``."""
    begin = pl.lit(start, dtype=pl.Datetime("us"))
    return pl.DataFrame({"s": starts, "d": lengths}).select(
        vendor=pl.lit(""),
        outage_start=begin + pl.duration(seconds=pl.col("s") * 3600),
        outage_end=begin + pl.duration(seconds=(pl.col("s") + pl.col("d")) * 3600),
    )
