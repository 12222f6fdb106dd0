"""Time to detect and time to restore incidents, learned from the ``incidents`` table.

Produces the parameters of :class:`orgtwin.behaviours.teams.IncidentTiming` (the fields of
:class:`orgtwin.scenario.organisation.IncidentResponseSpec`) for one team:

- ``detect_median_hours``, ``detect_sigma``: a log-normal fitted by maximum likelihood to
  ``detected − started`` of every incident that is not a drill (cause ``chaos``);
- ``restore_median_hours``, ``restore_sigma``: the same for ``resolved − detected`` of the
  incidents restored by hand (cause ``deploy``; vendor and capacity incidents end when
  their cause does);
- ``batch_coef``: learned when the ``deploys`` table is given too (``fit(incidents,
  deploys=deploys)``): each deploy incident takes the batch of the latest failed deploy
  of its service before it started, and the log restore time is regressed on its log
  (the restore median is then that of a one-change batch); kept from the prior without;
- ``fatigue_coef``, ``expertise_coef``: kept from the prior (``prior``): telemetry
  carries neither the responder's fatigue nor the team's expertise, so the restore
  median learned is the team's typical one over them.

Times are whole hours (the simulator's detection is ``ceil(hours)`` after the start, its
restore ``max(1, ceil(hours))`` after detection), so every duration is interval-censored:
its likelihood is the probability of its hour bin. Incidents still open at the end
(``resolved`` null) are right-censored. Gamma and Weibull are fitted the same way and
compared by held-out log-likelihood; the behaviour stays log-normal, with a warning when
another family fits better.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import optimize, special, stats
from sklearn.utils.validation import check_is_fitted

from orgtwin.learn.base import Estimate, HoldoutScore, Learner, Source, shrink
from orgtwin.scenario.organisation import IncidentResponseSpec

Z95 = float(stats.norm.ppf(0.975))
FAMILIES: dict[str, Callable[[NDArray, NDArray], NDArray]] = {
    "lognormal": lambda x, t: special.ndtr((t[0] - np.log(x)) / np.exp(t[1])),
    "gamma": lambda x, t: special.gammaincc(np.exp(t[1]), x / np.exp(t[0])),
    "weibull": lambda x, t: np.exp(-((x / np.exp(t[0])) ** np.exp(t[1]))),
}
"""Survival function of each family at ``x`` hours from its two parameters on the log scale
(log scale, log shape): log-normal (log median, log sigma), gamma and Weibull (log scale,
log shape)."""
_MOST = {
    name: next(m.le for m in IncidentResponseSpec.model_fields[name].metadata if hasattr(m, "le"))
    for name in ("detect_median_hours", "detect_sigma", "restore_median_hours", "restore_sigma")
}
"""The largest value the spec allows of each learned field."""
MAX_LOG_HALF_WIDTH = float(np.log(10.0))
"""Wider log-intervals than this (a factor 10 either side) mean the data cannot tell."""
_UNITS = {
    "detect_median_hours": "hours",
    "detect_sigma": "log-hours",
    "restore_median_hours": "hours",
    "restore_sigma": "log-hours",
    "fatigue_coef": "log-hours per unit of fatigue",
    "expertise_coef": "log-hours per unit of expertise",
    "batch_coef": "log-hours per log of batch size",
}


@dataclass(frozen=True)
class Durations:
    """Durations in hours as bins ``(low, high]``; ``high`` infinite for a censored one.

    Attributes:
        low, high: bin edges, hours (``low`` 0 for the first hour).
        order: the rows' start times, for time-ordered splits.
    """

    low: NDArray
    high: NDArray
    order: NDArray

    def __len__(self) -> int:
        return int(self.low.size)

    def take(self, rows: NDArray) -> Durations:
        return Durations(self.low[rows], self.high[rows], self.order[rows])

    @property
    def n_observed(self) -> int:
        return int(np.isfinite(self.high).sum())


def hour_bins(hours: NDArray, censored_at: NDArray, order: NDArray, scale: NDArray) -> Durations:
    """Bins of whole-hour durations (``hours`` NaN: censored after ``censored_at``).

    ``scale`` divides the bins (0.5 where the simulator halves a detection time: the
    latent duration of a bin ``(d−1, d]`` halved lies in ``(2(d−1), 2d]``).
    """
    observed = np.isfinite(hours)
    whole = np.ceil(np.maximum(np.where(observed, hours, 1.0), 1.0))
    low = np.where(observed, whole - 1.0, np.maximum(censored_at, 0.0)) / scale
    high = np.where(observed, whole / scale, np.inf)
    return Durations(low, high, order)


def log_likelihood(family: str, theta: NDArray, data: Durations) -> NDArray:
    """Log-probability of each duration's bin under ``family`` with parameters ``theta``."""
    survival = FAMILIES[family]
    with np.errstate(divide="ignore"):
        p = survival(data.low, theta) - survival(data.high, theta)
    return np.log(np.maximum(p, 1e-300))


def fit_family(family: str, data: Durations) -> tuple[NDArray, NDArray]:
    """Maximum-likelihood ``(theta, covariance)`` of ``family`` on interval-censored data."""
    observed = np.isfinite(data.high)
    mid = 0.5 * (data.low[observed] + data.high[observed]) if observed.any() else np.ones(1)
    start = np.array([np.log(max(float(np.median(mid)), 0.1)), 0.0])
    edges, counts = np.unique(np.stack([data.low, data.high]), axis=1, return_counts=True)
    bins = Durations(edges[0], edges[1], np.zeros(counts.size))  # each bin once, weighted

    def loss(theta: NDArray) -> float:
        return -float(counts @ log_likelihood(family, theta, bins))

    bounds = [(-12.0, 12.0), (-5.0, 3.0)]
    result = optimize.minimize(loss, start, method="L-BFGS-B", bounds=bounds)
    return result.x, _covariance(loss, result.x)


def fit_batch_regression(data: Durations, log_batch: NDArray) -> tuple[NDArray, NDArray]:
    """Log-normal with ``log median = a + b·log_batch``: ``(a, log sigma, b)`` and covariance."""
    rows = np.stack([data.low, data.high, log_batch])
    unique, counts = np.unique(rows, axis=1, return_counts=True)
    start = np.append(fit_family("lognormal", data)[0], 0.0)

    def loss(theta: NDArray) -> float:
        median = theta[0] + theta[2] * unique[2]
        sigma = np.exp(theta[1])
        with np.errstate(divide="ignore"):
            p = special.ndtr((median - np.log(unique[0])) / sigma) - special.ndtr(
                (median - np.log(unique[1])) / sigma
            )
        return -float(counts @ np.log(np.maximum(p, 1e-300)))

    bounds = [(-12.0, 12.0), (-5.0, 3.0), (-10.0, 10.0)]
    result = optimize.minimize(loss, start, method="L-BFGS-B", bounds=bounds)
    return result.x, _covariance(loss, result.x)


def _covariance(loss: Callable[[NDArray], float], theta: NDArray) -> NDArray:
    """Inverse of the observed information (central differences), NaN where singular."""
    k, step = theta.size, 1e-4
    hessian = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * step, np.eye(k)[j] * step
            hessian[i, j] = (
                loss(theta + ei + ej)
                - loss(theta + ei - ej)
                - loss(theta - ei + ej)
                + loss(theta - ei - ej)
            ) / (4 * step * step)
    try:
        covariance = np.linalg.inv(hessian)
    except np.linalg.LinAlgError:
        return np.full((k, k), np.nan)
    return covariance if np.all(np.diag(covariance) > 0) else np.full((k, k), np.nan)


class IncidentTimingLearner(Learner):
    """Log-normal time to detect and to restore of one team's incidents.

    Args:
        team: the team whose incidents to learn from (None: every row given).
        prior: the team's spec in the base scenario (default: the spec's defaults); what
            the data cannot inform keeps its value, and thin data shrink toward it.
        canary: whether the team ships canaries (the simulator then halves the detection
            time of incidents caused by deploys; the learner undoes it).
        end: end of the observed window (default: the latest time in the table); open
            incidents are censored there.
        min_incidents: below this many durations, estimates shrink toward the prior.
        prior_weight: observations the prior counts as when shrinking.
        test_share: share of the latest incidents held out by :meth:`holdout`.

    Example:
        >>> import polars as pl
        >>> from datetime import datetime, timedelta
        >>> t0 = datetime(2026, 1, 1)
        >>> rows = [(t0 + timedelta(hours=5 * i), 1 + i % 2, 1 + i % 4) for i in range(60)]
        >>> incidents = pl.DataFrame({
        ...     "team": ["web"] * 60, "cause": ["deploy"] * 60,
        ...     "started": [s for s, _, _ in rows],
        ...     "detected": [s + timedelta(hours=d) for s, d, _ in rows],
        ...     "resolved": [s + timedelta(hours=d + r) for s, d, r in rows]})
        >>> learner = IncidentTimingLearner(team="web").fit(incidents)
        >>> [(e.name, e.source) for e in learner.estimates()][2:4]
        [('restore_median_hours', 'learned'), ('restore_sigma', 'learned')]
    """

    behaviour: ClassVar[str] = "incident_timing"
    entity: ClassVar[str] = "team"

    def __init__(
        self,
        *,
        team: str | None = None,
        prior: IncidentResponseSpec | None = None,
        canary: bool = False,
        end: datetime | None = None,
        min_incidents: int = 30,
        prior_weight: float = 10.0,
        test_share: float = 0.3,
    ) -> None:
        self.team = team
        self.prior = prior
        self.canary = canary
        self.end = end
        self.min_incidents = min_incidents
        self.prior_weight = prior_weight
        self.test_share = test_share

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        incidents: pl.DataFrame | pl.LazyFrame,
        y: Any = None,
        *,
        deploys: pl.DataFrame | pl.LazyFrame | None = None,
    ) -> IncidentTimingLearner:
        """Learn from an ``incidents`` table (its schema's columns; see the module).

        With the ``deploys`` table too, each deploy incident gets the batch of the latest
        failed deploy of its service before it started, and ``batch_coef`` is learned by
        regressing the log restore time on the log of that batch.
        """
        self.detect_, self.restore_ = self._durations(incidents)
        self.log_batch_ = self._batches(incidents, deploys)
        self.warnings_: list[str] = []
        self.fits_: dict[str, dict[str, tuple[NDArray, NDArray]]] = {}
        for kind, data in (("detect", self.detect_), ("restore", self.restore_)):
            if data.n_observed < 2:
                self.warnings_.append(
                    f"{self._who()}: {data.n_observed} {kind} times: "
                    f"{kind}_median_hours and {kind}_sigma kept from the prior"
                )
                continue
            self.fits_[kind] = {"lognormal": fit_family("lognormal", data)}
        if "restore" in self.fits_ and self.log_batch_.size and np.ptp(self.log_batch_) > 0:
            self.fits_["restore"]["batch"] = fit_batch_regression(self.restore_, self.log_batch_)
        self.family_scores_ = {kind: self._compare_families(kind) for kind in self.fits_}
        for kind, scores in self.family_scores_.items():
            best = max(scores, key=scores.__getitem__)
            n_test = len(
                _split(self.detect_ if kind == "detect" else self.restore_, self.test_share)[1]
            )
            if best != "lognormal" and (scores[best] - scores["lognormal"]) * n_test > 2.0:
                self.warnings_.append(
                    f"{self._who()}: {kind} times fit a {best} better than a log-normal "
                    f"(held-out log-likelihood {scores[best]:.3f} against "
                    f"{scores['lognormal']:.3f} per incident); the behaviour stays log-normal"
                )
        self.estimates_ = self._estimate()
        return self

    def _who(self) -> str:
        return f"team {self.team}" if self.team is not None else "incidents"

    def _durations(self, incidents: pl.DataFrame | pl.LazyFrame) -> tuple[Durations, Durations]:
        frame = incidents.collect() if isinstance(incidents, pl.LazyFrame) else incidents
        if self.team is not None:
            frame = frame.filter(pl.col("team") == self.team)
        frame = frame.filter(pl.col("cause") != "chaos").sort("started")
        times = [frame["started"], frame["detected"], frame["resolved"]]
        end = self.end or max((t.max() for t in times if t.drop_nulls().len()), default=None)
        hours = {
            name: ((frame[a] - frame[b]).dt.total_seconds() / 3600.0).fill_null(np.nan)
            for name, a, b in (
                ("detect", "detected", "started"),
                ("restore", "resolved", "detected"),
            )
        }
        order = frame["started"].to_numpy()
        end_lit = pl.lit(end, dtype=pl.Datetime("us"))
        to_end = {
            col: frame.select((end_lit - pl.col(col)).dt.total_seconds() / 3600.0)
            .to_series()
            .fill_null(0.0)
            .to_numpy()
            for col in ("started", "detected")
        }
        deploy = (frame["cause"] == "deploy").to_numpy()
        scale = np.where(deploy & self.canary, 0.5, 1.0)
        detect = hour_bins(hours["detect"].to_numpy(), to_end["started"] - 1.0, order, scale)
        restore = hour_bins(
            hours["restore"].to_numpy(), to_end["detected"] - 1.0, order, np.ones(deploy.size)
        ).take(np.flatnonzero(deploy))
        return detect, restore

    def _batches(
        self, incidents: pl.DataFrame | pl.LazyFrame, deploys: pl.DataFrame | pl.LazyFrame | None
    ) -> NDArray:
        """Log batch of the failed deploy behind each deploy incident (0 without deploys)."""
        if deploys is None:
            return np.zeros(len(self.restore_))
        frame = incidents.lazy()
        if self.team is not None:
            frame = frame.filter(pl.col("team") == self.team)
        joined = causing_batch(frame.filter(pl.col("cause") == "deploy"), deploys)
        return np.log(np.maximum(joined["batch_size"].to_numpy(), 1.0))

    def _compare_families(self, kind: str) -> dict[str, float]:
        """Mean held-out log-likelihood per duration of each family (later data held out)."""
        data = self.detect_ if kind == "detect" else self.restore_
        train, test = _split(data, self.test_share)
        if train.n_observed < 2 or not len(test):
            return {"lognormal": 0.0}
        return {
            family: float(log_likelihood(family, fit_family(family, train)[0], test).mean())
            for family in FAMILIES
        }

    # ------------------------------------------------------------------ reporting

    def _estimate(self) -> list[Estimate]:
        prior = self.prior or IncidentResponseSpec()
        out: list[Estimate] = []
        for kind in ("detect", "restore"):
            data = self.detect_ if kind == "detect" else self.restore_
            if kind not in self.fits_:
                out += [_prior(f"{kind}_median_hours", prior), _prior(f"{kind}_sigma", prior)]
                continue
            theta, cov = self.fits_[kind].get("batch", self.fits_[kind]["lognormal"])
            priors = (
                np.log(getattr(prior, f"{kind}_median_hours")),
                np.log(max(getattr(prior, f"{kind}_sigma"), 1e-3)),
            )
            for i, name in enumerate((f"{kind}_median_hours", f"{kind}_sigma")):
                out.append(self._one(name, theta[i], cov[i, i], priors[i], len(data)))
            if out[-1].source == "shrunk":
                self.warnings_.append(
                    f"{self._who()}: only {len(data)} {kind} times (fewer than "
                    f"{self.min_incidents}): {kind} estimates shrunk toward the prior"
                )
        out += [_prior(name, prior) for name in ("fatigue_coef", "expertise_coef")]
        if "restore" in self.fits_ and (prior.fatigue_coef > 0 or prior.expertise_coef > 0):
            self.warnings_.append(
                f"{self._who()}: restore_median_hours is the typical restore time over the "
                "team's fatigue and expertise (telemetry shows neither); the prior's "
                f"fatigue_coef ({prior.fatigue_coef:g}) and expertise_coef "
                f"({prior.expertise_coef:g}) act on top of it"
            )
        out.append(self._batch_coef(prior))
        return out

    def _batch_coef(self, prior: IncidentResponseSpec) -> Estimate:
        if "batch" not in self.fits_.get("restore", {}):
            return _prior("batch_coef", prior)
        theta, cov = self.fits_["restore"]["batch"]
        half = Z95 * np.sqrt(cov[2, 2]) if np.isfinite(cov[2, 2]) else np.inf
        value, n = float(theta[2]), len(self.restore_)
        source: Source = "learned"
        if n < self.min_incidents:
            value, source = shrink(value, prior.batch_coef, n, self.prior_weight)
            half *= np.sqrt(n / (n + self.prior_weight))
        if not np.isfinite(half):
            return _prior("batch_coef", prior)
        low, high = value - half, value + half
        if value < 0:
            self.warnings_.append(
                f"{self._who()}: batch_coef came out negative ({value:.3f}); "
                "the behaviour allows none, so it is set to 0"
            )
        clip = _clip_batch
        return Estimate(
            "batch_coef", clip(value), clip(low), clip(high), source, _UNITS["batch_coef"],
            "log-normal regression on log(batch) of the failed deploy, Wald interval", n,
        )  # fmt: skip

    def _one(
        self, name: str, log_value: float, variance: float, log_prior: float, n: int
    ) -> Estimate:
        source: Source = "learned"
        half = Z95 * np.sqrt(variance) if np.isfinite(variance) else np.nan
        if not half <= MAX_LOG_HALF_WIDTH:  # NaN too: whole-hour times cannot tell
            self.warnings_.append(
                f"{self._who()}: {name} cannot be told from whole-hour times "
                f"(95% interval wider than a factor {np.exp(MAX_LOG_HALF_WIDTH):.0f} either "
                "side): kept from the prior"
            )
            return _prior(name, self.prior or IncidentResponseSpec())
        if n < self.min_incidents:
            log_value, source = shrink(log_value, log_prior, n, self.prior_weight)
            half *= np.sqrt(n / (n + self.prior_weight))
        low, high = (np.exp(log_value - half), np.exp(log_value + half))
        value = float(np.exp(log_value))
        most = _MOST[name]
        if value > most:
            self.warnings_.append(
                f"{self._who()}: {name} came out {value:.3g}, above the most the behaviour "
                f"allows ({most:g}); set to {most:g}"
            )
            value = most
        return Estimate(
            name, value, float(min(low, value)), float(high), source, _UNITS[name],
            "log-normal MLE on hour bins (open incidents censored), Wald interval on the log",
            n,
        )  # fmt: skip

    def rows_used(self) -> int:
        """Rows behind the fit (call after ``fit``)."""
        check_is_fitted(self, "estimates_")
        return len(self.detect_)

    def holdout(self) -> HoldoutScore | None:
        """Log-normal against an exponential with the training mean, on the latest incidents.

        The score is the mean log-probability of each held-out duration's hour bin (time
        to detect and time to restore together); None when there are too few to split.
        """
        check_is_fitted(self, "estimates_")
        learned, baseline, n_train, n_test = [], [], 0, 0
        for data in (self.detect_, self.restore_):
            train, test = _split(data, self.test_share)
            if train.n_observed < 2 or not len(test):
                continue
            theta = fit_family("lognormal", train)[0]
            learned.append(log_likelihood("lognormal", theta, test))
            mean = float(np.mean(0.5 * (train.low + train.high)[np.isfinite(train.high)]))
            rate = 1.0 / max(mean, 1e-3)
            p = np.exp(-rate * test.low) - np.exp(-rate * test.high)
            baseline.append(np.log(np.maximum(p, 1e-300)))
            n_train, n_test = n_train + len(train), n_test + len(test)
        if not learned:
            return None
        return HoldoutScore(
            "mean log-likelihood per duration (hour bins)",
            float(np.concatenate(learned).mean()),
            float(np.concatenate(baseline).mean()),
            "exponential with the training mean",
            higher_is_better=True,
            n_train=n_train,
            n_test=n_test,
        )


def _clip_batch(value: float) -> float:
    """A restore batch coefficient within the spec's bounds (0 to 5)."""
    return float(min(max(value, 0.0), 5.0))


def _split(data: Durations, test_share: float) -> tuple[Durations, Durations]:
    """The earlier ``1 − test_share`` of the durations and the later rest."""
    rows = np.argsort(data.order, kind="stable")
    cut = round(len(data) * (1.0 - test_share))
    return data.take(rows[:cut]), data.take(rows[cut:])


def _prior(name: str, prior: IncidentResponseSpec) -> Estimate:
    value = float(getattr(prior, name))
    return Estimate(name, value, value, value, "prior", _UNITS[name], "kept from the prior", 0)


def causing_batch(
    incidents: pl.DataFrame | pl.LazyFrame, deploys: pl.DataFrame | pl.LazyFrame | None
) -> pl.DataFrame:
    """``incidents`` in order of their start, with ``batch_size``: that of the latest failed
    deploy of the service at or before each one's start (1 without one, or without
    ``deploys``). The restore-time law's batch (the learner's, and the drift watch's)."""
    frame = incidents.lazy()
    if deploys is None:
        return frame.sort("started").with_columns(batch_size=pl.lit(1.0)).collect()
    failed = (
        deploys.lazy()
        .filter(pl.col("failed").fill_null(False))
        .select("service", pl.col("batch_size").cast(pl.Float64), started=pl.col("time"))
        .sort("started")
    )
    return (
        frame.sort("started")
        .join_asof(failed, on="started", by="service", strategy="backward", check_sortedness=False)
        .with_columns(pl.col("batch_size").fill_null(1.0))
        .collect()
    )
