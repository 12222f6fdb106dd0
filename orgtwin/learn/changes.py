"""Change failure, learned from the ``deploys`` table.

Produces the parameters of :class:`orgtwin.behaviours.teams.ChangeFailure` (fields of
:class:`orgtwin.scenario.organisation.ChangeFailureSpec`) for one team, by logistic
regression of ``failed`` on ``log(batch_size)`` (scikit-learn, unpenalised):

- ``base``: the failure probability of a one-change deploy, ``expit(intercept)``;
- ``batch_coef``: the log-odds per log of batch size, the slope;
- ``fatigue_coef``: kept from the prior (``prior``): deploys carry no fatigue, so the
  ``base`` learned is that of the team at its typical fatigue.

Intervals are Wald intervals from the observed Fisher information (``XᵀWX``). With
fewer than ``min_failures`` failed deploys both shrink toward the prior (on the log-odds
scale for ``base``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import special, stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.utils.validation import check_is_fitted

from orgtwin.learn.base import Estimate, HoldoutScore, Learner, Source, shrink
from orgtwin.scenario.organisation import ChangeFailureSpec

Z95 = float(stats.norm.ppf(0.975))
_METHOD = "logistic regression on log(batch_size), Wald interval from the Fisher information"


def fit_logistic(log_batch: NDArray, failed: NDArray) -> tuple[NDArray, NDArray]:
    """Intercept and slope of ``logit p = a + b·log_batch`` and their covariance.

    With a single batch size the slope cannot be told: it is 0 with infinite variance.
    """
    varies = np.ptp(log_batch) > 0 if log_batch.size else False
    features = log_batch[:, None] if varies else np.zeros((log_batch.size, 1))
    model = LogisticRegression(C=np.inf, max_iter=1000)
    model.fit(features, failed)
    theta = np.array([model.intercept_[0], model.coef_[0, 0] if varies else 0.0])
    design = np.column_stack([np.ones(log_batch.size), features[:, 0]])
    p = model.predict_proba(features)[:, 1]
    information = design.T @ (design * (p * (1.0 - p))[:, None])
    covariance = np.full((2, 2), np.inf)
    if varies:
        covariance = np.linalg.pinv(information)
    elif information[0, 0] > 0:
        covariance[0, 0] = 1.0 / information[0, 0]
    return theta, covariance


class ChangeFailureLearner(Learner):
    """Failure probability of one team's deploys against their batch size.

    Args:
        team: the team whose deploys to learn from (None: every row given).
        prior: the team's ``change_failure`` spec in the base scenario (default: the
            spec's defaults).
        min_failures: below this many failed deploys, estimates shrink toward the prior.
        prior_weight: failed deploys the prior counts as when shrinking.
        test_share: share of the latest deploys held out by :meth:`holdout`.

    Example:
        >>> import polars as pl
        >>> from datetime import datetime, timedelta
        >>> t0 = datetime(2026, 1, 1)
        >>> deploys = pl.DataFrame({"time": [t0 + timedelta(hours=i) for i in range(400)],
        ...     "team": "web", "batch_size": [1 + i % 8 for i in range(400)],
        ...     "failed": [i % 8 > 5 and i % 3 == 0 for i in range(400)]})
        >>> learner = ChangeFailureLearner(team="web").fit(deploys)
        >>> [e.source for e in learner.estimates()]
        ['learned', 'learned', 'prior']
    """

    behaviour: ClassVar[str] = "change_failure"
    entity: ClassVar[str] = "team"

    def __init__(
        self,
        *,
        team: str | None = None,
        prior: ChangeFailureSpec | None = None,
        min_failures: int = 30,
        prior_weight: float = 10.0,
        test_share: float = 0.3,
    ) -> None:
        self.team = team
        self.prior = prior
        self.min_failures = min_failures
        self.prior_weight = prior_weight
        self.test_share = test_share

    def fit(self, deploys: pl.DataFrame | pl.LazyFrame, y: Any = None) -> ChangeFailureLearner:
        """Learn from a ``deploys`` table (``time``, ``team``, ``batch_size``, ``failed``)."""
        frame = deploys.collect() if isinstance(deploys, pl.LazyFrame) else deploys
        if self.team is not None:
            frame = frame.filter(pl.col("team") == self.team)
        frame = frame.filter(pl.col("failed").is_not_null()).sort("time")
        self.log_batch_ = np.log(np.maximum(frame["batch_size"].to_numpy().astype(float), 1.0))
        self.failed_ = frame["failed"].to_numpy().astype(int)
        self.warnings_: list[str] = []
        self.n_failures_ = int(self.failed_.sum())
        if self.n_failures_ in (0, self.failed_.size):
            self.theta_, self.covariance_ = None, None
            self.warnings_.append(
                f"{self._who()}: {self.failed_.size} deploys, {self.n_failures_} failed: "
                "nothing to regress; every parameter kept from the prior"
            )
        else:
            self.theta_, self.covariance_ = fit_logistic(self.log_batch_, self.failed_)
        self.estimates_ = self._estimate()
        return self

    def _who(self) -> str:
        return f"team {self.team}" if self.team is not None else "deploys"

    def _estimate(self) -> list[Estimate]:
        prior = self.prior or ChangeFailureSpec()
        if self.theta_ is None:
            return [_prior(name, prior) for name in ("base", "batch_coef", "fatigue_coef")]
        n = self.n_failures_
        half = Z95 * np.sqrt(np.diag(self.covariance_))
        intercept, batch = self._pull(self.theta_, half, prior, n)
        value, low, high = (float(special.expit(v)) for v in intercept[:3])
        method = _METHOD + ("" if intercept[3] == "learned" else ", shrunk on the log-odds")
        base = Estimate("base", value, low, high, intercept[3], "probability", method, n)
        if not np.isfinite(half[1]):
            self.warnings_.append(
                f"{self._who()}: every deploy had one batch size: batch_coef kept from the prior"
            )
            slope = _prior("batch_coef", prior)
        else:
            slope = Estimate("batch_coef", *batch, "log-odds per log of batch size", _METHOD, n)
            if slope.value < 0:
                self.warnings_.append(
                    f"{self._who()}: batch_coef came out negative ({slope.value:.3f}); "
                    "the behaviour allows none, so it is set to 0"
                )
                slope = Estimate("batch_coef", 0.0, max(slope.low, 0.0), max(slope.high, 0.0),
                                 slope.source, slope.unit, slope.method, n)  # fmt: skip
        if prior.fatigue_coef > 0:
            self.warnings_.append(
                f"{self._who()}: fatigue_coef kept from the prior (deploys carry no fatigue); "
                "the base learned includes the team's typical fatigue"
            )
        return [base, slope, _prior("fatigue_coef", prior)]

    def _pull(
        self, theta: NDArray, half: NDArray, prior: ChangeFailureSpec, n: int
    ) -> tuple[tuple[float, float, float, Source], tuple[float, float, float, Source]]:
        """Value, low, high and source of the intercept and slope, shrunk if data are thin."""
        priors = (float(special.logit(prior.base)), prior.batch_coef)
        out = []
        for value, width, towards in zip(theta, half, priors, strict=True):
            source: Source = "learned"
            if n < self.min_failures:
                value, source = shrink(float(value), towards, n, self.prior_weight)
                width = width * np.sqrt(n / (n + self.prior_weight))
            out.append((float(value), float(value - width), float(value + width), source))
        if out[0][3] == "shrunk":
            self.warnings_.append(
                f"{self._who()}: only {n} failed deploys (fewer than {self.min_failures}): "
                "base and batch_coef shrunk toward the prior"
            )
        return out[0], out[1]

    def rows_used(self) -> int:
        """Rows behind the fit (call after ``fit``)."""
        check_is_fitted(self, "estimates_")
        return int(self.failed_.size)

    def holdout(self) -> HoldoutScore | None:
        """Log-loss on the latest deploys: the regression against the constant rate.

        Both are fitted on the earlier deploys; None when either part has no failure or
        no success to score against.
        """
        check_is_fitted(self, "estimates_")
        cut = round(self.failed_.size * (1.0 - self.test_share))
        train, test = slice(0, cut), slice(cut, None)
        if len(set(self.failed_[train])) < 2 or not self.failed_[test].size:
            return None
        theta, _ = fit_logistic(self.log_batch_[train], self.failed_[train])
        learned = special.expit(theta[0] + theta[1] * self.log_batch_[test])
        rate = np.full(self.failed_[test].size, self.failed_[train].mean())
        return HoldoutScore(
            "log-loss per deploy",
            float(log_loss(self.failed_[test], learned, labels=[0, 1])),
            float(log_loss(self.failed_[test], rate, labels=[0, 1])),
            "the constant failure rate of the earlier deploys",
            higher_is_better=False,
            n_train=cut,
            n_test=self.failed_.size - cut,
        )


def _prior(name: str, prior: ChangeFailureSpec) -> Estimate:
    value = float(getattr(prior, name))
    return Estimate(name, value, value, value, "prior", "", "kept from the prior", 0)
