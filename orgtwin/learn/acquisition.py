"""Acquisition, learned from the daily count of new users in the ``user_days`` table.

Produces the parameters of :class:`orgtwin.behaviours.users.Acquisition` (fields of
:class:`orgtwin.scenario.organisation.AcquisitionSpec`) for one segment. A user's first
day in the table is the day after they arrived (the simulator adds arrivals at the end
of a day), so the arrivals of day ``d`` are the users first seen on day ``d + 1``, and
the users active at the end of day ``d`` are those seen that day who did not leave.

The arrivals of a day are Poisson with mean
``base_per_day + word_of_mouth_per_user_day · active · exp(−experience_penalty · bad)``
(``bad``: bad sessions per user that day), an identity-link Poisson GLM fitted by maximum
likelihood (SciPy), with Wald intervals from the Fisher information. Word of mouth is
learned only when the data tell it apart from the base rate (its interval narrower than
its prior value either side); otherwise it keeps the prior and only the base is fitted.
``price_elasticity`` and ``experience_penalty`` stay at the prior (the price rarely moves
within a window; the penalty acts through word of mouth only).

The count is right only where ``user_days`` records every user of the segment: the
simulator records a sample (``telemetry.user_sample_per_segment``, at most the users at
the start), and arrivals beyond it are not seen.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import optimize, stats
from sklearn.metrics import mean_poisson_deviance
from sklearn.utils.validation import check_is_fitted

from orgtwin.learn.base import Estimate, HoldoutScore, Learner, Source, shrink
from orgtwin.scenario.organisation import AcquisitionSpec

Z95 = float(stats.norm.ppf(0.975))
_BASE, _WOM = "base_per_day", "word_of_mouth_per_user_day"
_UNITS = {
    _BASE: "users per day",
    _WOM: "users per active user per day",
    "price_elasticity": "ratio of logs",
    "experience_penalty": "per bad session a day",
}


def daily_arrivals(user_days: pl.DataFrame) -> pl.DataFrame:
    """Per day: ``arrivals`` (users first seen the next day), ``active`` and ``bad``.

    ``active`` counts the users seen that day who did not leave; ``bad`` is the bad
    sessions per user that day. The last day is dropped: the table cannot show its
    arrivals.
    """
    first = user_days.group_by("user").agg(pl.col("day").min().alias("first_day"))
    arrivals = first.group_by(day=pl.col("first_day") - pl.duration(days=1)).agg(arrivals=pl.len())
    days = user_days.group_by("day").agg(
        active=(~pl.col("churned")).sum(),
        bad=pl.col("errors").sum() / pl.len(),
    )
    window = days["day"].sort()
    return (
        days.filter(pl.col("day") < window.max())
        .join(arrivals, on="day", how="left")
        .with_columns(pl.col("arrivals").fill_null(0))
        .filter(pl.col("day") >= window.min())
        .sort("day")
    )


def fit_poisson(counts: NDArray, reach: NDArray, wom: float | None) -> tuple[NDArray, NDArray]:
    """``(base, wom)`` of ``counts ~ Poisson(base + wom·reach)`` and their covariance.

    With ``wom`` given, only the base is fitted (its variance alone in the covariance).
    """

    def loss(theta: NDArray) -> float:
        mean = np.maximum(theta[0] + theta[1] * reach, 1e-12)
        return float((mean - counts * np.log(mean)).sum())

    start_base = max(float(counts.mean()) - (wom or 0.0) * float(reach.mean()), 0.1)
    if wom is None:
        bounds = [(1e-9, None), (0.0, None)]
        theta = optimize.minimize(loss, [start_base, 0.0], method="L-BFGS-B", bounds=bounds).x
    else:
        fixed = optimize.minimize_scalar(
            lambda b: loss(np.array([b, wom])), bounds=(1e-9, 10 * counts.max() + 10.0),
            method="bounded",
        )  # fmt: skip
        theta = np.array([fixed.x, wom])
    mean = np.maximum(theta[0] + theta[1] * reach, 1e-12)
    design = np.column_stack([np.ones_like(reach), reach])
    information = design.T @ (design / mean[:, None])
    if wom is not None:
        return theta, np.array([[1.0 / information[0, 0], 0.0], [0.0, 0.0]])
    if np.linalg.cond(information) > 1e12:  # the reach does not vary: wom cannot be told
        return theta, np.full((2, 2), np.inf)
    return theta, np.linalg.inv(information)


class AcquisitionLearner(Learner):
    """New users a day of one segment: base rate and word of mouth.

    Args:
        segment: the segment to learn (None: every row given).
        prior: the segment's ``acquisition`` spec in the base scenario (default: the
            spec's defaults).
        min_arrivals: below this many arrivals, the base shrinks toward the prior.
        prior_weight: arrivals the prior counts as when shrinking.
        test_share: share of the latest days held out by :meth:`holdout`.
    """

    behaviour: ClassVar[str] = "acquisition"
    entity: ClassVar[str] = "segment"

    def __init__(
        self,
        *,
        segment: str | None = None,
        prior: AcquisitionSpec | None = None,
        min_arrivals: int = 30,
        prior_weight: float = 10.0,
        test_share: float = 0.3,
    ) -> None:
        self.segment = segment
        self.prior = prior
        self.min_arrivals = min_arrivals
        self.prior_weight = prior_weight
        self.test_share = test_share

    def fit(self, user_days: pl.DataFrame | pl.LazyFrame, y: Any = None) -> AcquisitionLearner:
        """Learn from a ``user_days`` table (``day``, ``user``, ``segment``, ``errors``,
        ``churned``)."""
        frame = user_days.collect() if isinstance(user_days, pl.LazyFrame) else user_days
        if self.segment is not None:
            frame = frame.filter(pl.col("segment") == self.segment)
        self.warnings_: list[str] = []
        prior = self.prior or AcquisitionSpec()
        self.daily_ = daily_arrivals(frame) if frame.height else pl.DataFrame()
        if self.daily_.height < 2:
            self.warnings_.append(
                f"{self._who()}: {self.daily_.height} days of arrivals: every parameter "
                "kept from the prior"
            )
            self.estimates_ = [_prior(name, prior) for name in _UNITS]
            return self
        counts, reach = self._columns(self.daily_, prior)
        theta, covariance = fit_poisson(counts, reach, None)
        wom_half = Z95 * np.sqrt(max(covariance[1, 1], 0.0))
        self.wom_learned_ = bool(wom_half < prior.word_of_mouth_per_user_day)
        if not self.wom_learned_:
            theta, covariance = fit_poisson(counts, reach, prior.word_of_mouth_per_user_day)
            self.warnings_.append(
                f"{self._who()}: the active users varied too little to tell word of mouth "
                f"from the base rate: {_WOM} kept from the prior"
            )
        self.theta_, self.covariance_ = theta, covariance
        self.estimates_ = self._estimate(prior, int(counts.sum()))
        return self

    def _who(self) -> str:
        return f"segment {self.segment}" if self.segment is not None else "user days"

    @staticmethod
    def _columns(daily: pl.DataFrame, prior: AcquisitionSpec) -> tuple[NDArray, NDArray]:
        counts = daily["arrivals"].to_numpy().astype(float)
        damping = np.exp(-prior.experience_penalty * daily["bad"].to_numpy())
        return counts, daily["active"].to_numpy().astype(float) * damping

    def _estimate(self, prior: AcquisitionSpec, n: int) -> list[Estimate]:
        method = "identity-link Poisson GLM on daily arrivals, Wald interval"
        value = float(self.theta_[0])
        half = Z95 * float(np.sqrt(self.covariance_[0, 0]))
        low, high = value - half, value + half
        source: Source = "learned"
        if n < self.min_arrivals:
            log_value, source = shrink(
                np.log(max(value, 1e-9)), np.log(max(prior.base_per_day, 1e-9)), n,
                self.prior_weight,
            )  # fmt: skip
            keep = np.sqrt(n / (n + self.prior_weight))
            low = np.exp(log_value) - keep * (value - low)
            high = np.exp(log_value) + keep * (high - value)
            value = float(np.exp(log_value))
            method += ", shrunk on the log scale"
            self.warnings_.append(
                f"{self._who()}: only {n} arrivals (fewer than {self.min_arrivals}): "
                f"{_BASE} shrunk toward the prior ({prior.base_per_day:g})"
            )
        base = Estimate(_BASE, value, max(low, 0.0), high, source, _UNITS[_BASE], method, n)
        if self.wom_learned_:
            w, w_half = float(self.theta_[1]), Z95 * float(np.sqrt(self.covariance_[1, 1]))
            wom = Estimate(_WOM, w, max(w - w_half, 0.0), w + w_half, "learned", _UNITS[_WOM],
                           method, n)  # fmt: skip
        else:
            wom = _prior(_WOM, prior)
        return [base, wom, _prior("price_elasticity", prior), _prior("experience_penalty", prior)]

    def rows_used(self) -> int:
        """Rows behind the fit (call after ``fit``)."""
        check_is_fitted(self, "estimates_")
        return int(self.daily_.height)

    def holdout(self) -> HoldoutScore | None:
        """Mean Poisson deviance of the latest days' arrivals: the GLM against the training
        mean (both fitted on the earlier days); None with fewer than 4 days."""
        check_is_fitted(self, "estimates_")
        if self.daily_.height < 4:
            return None
        prior = self.prior or AcquisitionSpec()
        counts, reach = self._columns(self.daily_, prior)
        cut = round(counts.size * (1.0 - self.test_share))
        wom = None if self.wom_learned_ else prior.word_of_mouth_per_user_day
        theta, _ = fit_poisson(counts[:cut], reach[:cut], wom)
        learned = np.maximum(theta[0] + theta[1] * reach[cut:], 1e-9)
        flat = np.full(counts.size - cut, max(float(counts[:cut].mean()), 1e-9))
        return HoldoutScore(
            "mean Poisson deviance of daily arrivals",
            float(mean_poisson_deviance(counts[cut:], learned)),
            float(mean_poisson_deviance(counts[cut:], flat)),
            "the training mean",
            higher_is_better=False,
            n_train=cut,
            n_test=counts.size - cut,
        )


def _prior(name: str, prior: AcquisitionSpec) -> Estimate:
    value = float(getattr(prior, name))
    return Estimate(name, value, value, value, "prior", _UNITS[name], "kept from the prior", 0)
