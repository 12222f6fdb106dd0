"""Latency against load learned per service: the queueing curve of :class:`LatencyCurve`.

The twin's services answer with median latency
``p50 = base_ms · (1 + queueing_factor · u / (1 − u))`` at utilisation ``u`` and a 95th
percentile ``p95_over_p50`` times that (:class:`~orgtwin.behaviours.services.LatencyCurve`).
:class:`LatencyLearner` fits the curve to a ``requests`` table (``time``, ``service``,
``cpu`` as utilisation 0..1, ``latency_p50_ms``, ``latency_p95_ms``), one service at a
time, by least squares on the log latency (:func:`scipy.optimize.least_squares`: relative
errors, as latency spreads multiplicatively), with Wald intervals from the Jacobian
scaled by the residual variance. ``p95_over_p50`` is the geometric mean of the per-row
ratios, with a t interval on the log scale. ``timeout_ms`` is not informed (prior).

Example:
    >>> import numpy as np, polars as pl
    >>> u = np.linspace(0.1, 0.8, 50)
    >>> rows = pl.DataFrame({"service": "api", "cpu": u, "latency_p50_ms": 10 * (1 + u / (1 - u)),
    ...                      "latency_p95_ms": 30 * (1 + u / (1 - u))})
    >>> learner = LatencyLearner().fit(rows)
    >>> {e.name: round(e.value, 2) for e in learner.estimates("api")}
    {'base_ms': 10.0, 'queueing_factor': 1.0, 'p95_over_p50': 3.0}
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import optimize, stats
from sklearn.utils.validation import check_is_fitted

from orgtwin.behaviours.services import LatencyCurve
from orgtwin.learn.base import Estimate, Fit, HoldoutScore, Learner
from orgtwin.scenario.organisation import LatencySpec

_Z95 = float(stats.norm.ppf(0.975))
_U_MAX = 0.98


def _curve(u: NDArray, base: float, q: float) -> NDArray:
    u = np.minimum(u, _U_MAX)
    return base * (1.0 + q * u / (1.0 - u))


class LatencyLearner(Learner):
    """Median latency against utilisation and the p95/p50 ratio, per service.

    Args:
        latency_column: the latency quantile the curve is fitted to (ms); another
            quantile than the median (``latency_p90_ms`` where a source has no median)
            makes ``base_ms`` that quantile's base, and ``p95_over_p50`` the ratio of
            ``latency_p95_ms`` to it.
        loss: the loss of :func:`scipy.optimize.least_squares` on the log residuals
            (``soft_l1``, scale 0.1: minutes of spikes weigh less; ``linear``: plain).
        min_rows: services with fewer usable rows keep the prior, with a warning.
        prior: the base scenario's latency spec, for what the data cannot inform.

    Attributes:
        services_: the services fitted.
        params_: service → (base_ms, queueing_factor); ``cov_``: their covariance.
        ratio_: service → (p95_over_p50, low, high).
        n_: service → rows used.
    """

    behaviour: ClassVar[str] = "latency"

    def __init__(
        self,
        *,
        latency_column: str = "latency_p50_ms",
        loss: str = "soft_l1",
        min_rows: int = 10,
        prior: LatencySpec | None = None,
    ) -> None:
        self.latency_column = latency_column
        self.loss = loss
        self.min_rows = min_rows
        self.prior = prior

    def fit(self, requests: pl.DataFrame, y: Any = None) -> LatencyLearner:
        """Fit each service's curve to ``requests``; returns ``self``."""
        for col in ("service", "cpu", self.latency_column):
            if col not in requests.columns:
                raise ValueError(f"requests must have a column {col!r}, got {requests.columns}")
        self.services_, self.params_, self.cov_, self.ratio_, self.n_ = [], {}, {}, {}, {}
        self.warnings_: list[str] = []
        usable = requests.filter(
            pl.col("cpu").is_finite()
            & (pl.col("cpu") >= 0)
            & pl.col(self.latency_column).is_finite()
            & (pl.col(self.latency_column) > 0)
        )
        for (service,), rows in usable.group_by("service", maintain_order=True):
            if rows.height < self.min_rows:
                self.warnings_.append(
                    f"latency: {service} has {rows.height} usable rows (< {self.min_rows}); "
                    "prior kept"
                )
                continue
            self._fit_service(str(service), rows)
        return self

    def _fit_service(self, service: str, rows: pl.DataFrame) -> None:
        u = rows["cpu"].to_numpy().astype(float)
        p50 = rows[self.latency_column].to_numpy().astype(float)

        def residual(x: NDArray) -> NDArray:
            return np.log(_curve(u, math.exp(x[0]), x[1])) - np.log(p50)

        x0 = [math.log(float(np.median(p50))), 0.1]
        fit = optimize.least_squares(
            residual, x0, bounds=([-20.0, 0.0], [20.0, 1000.0]), loss=self.loss, f_scale=0.1
        )
        dof = max(len(u) - 2, 1)
        s2 = 2.0 * fit.cost / dof
        cov = np.linalg.pinv(fit.jac.T @ fit.jac) * s2
        self.services_.append(service)
        self.params_[service] = (float(fit.x[0]), float(fit.x[1]))
        self.cov_[service] = cov
        self.n_[service] = len(u)
        if "latency_p95_ms" in rows.columns:
            p95 = rows["latency_p95_ms"].to_numpy().astype(float)
            ok = (p95 > 0) & np.isfinite(p95)
            log_ratio = np.maximum(np.log(p95[ok] / p50[ok]), 0.0)
            if log_ratio.size >= 2:
                half = stats.t.ppf(0.975, log_ratio.size - 1) * log_ratio.std(ddof=1)
                half /= math.sqrt(log_ratio.size)
                m = float(log_ratio.mean())
                self.ratio_[service] = (math.exp(m), math.exp(m - half), math.exp(m + half))

    def predict(self, service: str, utilisation: NDArray) -> NDArray[np.float64]:
        """Median latency (ms) of ``service`` at each utilisation."""
        check_is_fitted(self, "params_")
        return self.curve(service).predict(utilisation)

    def curve(self, service: str) -> LatencyCurve:
        """The fitted :class:`LatencyCurve` of ``service``."""
        check_is_fitted(self, "params_")
        return LatencyCurve.from_spec(self.spec(service))

    def spec(self, service: str) -> LatencySpec:
        """The prior's latency spec with ``service``'s learned values written in."""
        values = {e.name: e.value for e in self.estimates(service)}
        return (self.prior or LatencySpec()).model_copy(update=values)

    def estimates(self, service: str | None = None) -> list[Estimate]:
        """``base_ms``, ``queueing_factor`` and ``p95_over_p50`` of ``service`` (optional
        when one service was fitted); the prior's values where the data were too few."""
        check_is_fitted(self, "params_")
        if service is None and len(self.services_) == 1:
            service = self.services_[0]
        prior = self.prior or LatencySpec()
        if service not in self.services_:
            return [
                Estimate(n, getattr(prior, n), getattr(prior, n), getattr(prior, n), "prior")
                for n in ("base_ms", "queueing_factor", "p95_over_p50")
            ]
        (log_base, q), cov, n = self.params_[service], self.cov_[service], self.n_[service]
        se_b, se_q = (math.sqrt(max(cov[i, i], 0.0)) for i in range(2))
        method = "least squares on log latency, Wald interval"
        out = [
            Estimate("base_ms", math.exp(log_base), math.exp(log_base - _Z95 * se_b),
                     math.exp(log_base + _Z95 * se_b), "learned", "ms", method, n),
            Estimate("queueing_factor", q, max(q - _Z95 * se_q, 0.0), q + _Z95 * se_q,
                     "learned", "ratio", method, n),
        ]  # fmt: skip
        if service in self.ratio_:
            value, low, high = self.ratio_[service]
            value, low, high = max(value, 1.0), max(low, 1.0), max(high, 1.0)
            out.append(Estimate("p95_over_p50", value, low, high, "learned", "ratio",
                                "geometric mean of p95/p50, t interval", n))  # fmt: skip
        else:
            v = prior.p95_over_p50
            out.append(Estimate("p95_over_p50", v, v, v, "prior", "ratio", "no p95 column", 0))
        return out

    def fits(self) -> list[Fit]:
        """One :class:`Fit` per service fitted (entity ``service <name>``)."""
        check_is_fitted(self, "params_")
        return [
            Fit(self.behaviour, f"service {s}", self.estimates(s), None, self.n_[s],
                self.warnings())
            for s in self.services_
        ]  # fmt: skip

    def holdout(self, requests: pl.DataFrame, *, test_share: float = 0.3) -> HoldoutScore:
        """Refit on the earlier rows of each service; MAPE of the median latency on the
        later rows against each service's median latency in the earlier ones."""
        parts = [rows.sort("time") for _, rows in requests.group_by("service")]
        cuts = [round(r.height * (1 - test_share)) for r in parts]
        train = pl.concat([r[:c] for r, c in zip(parts, cuts, strict=True)])
        test = pl.concat([r[c:] for r, c in zip(parts, cuts, strict=True)])
        learner = type(self)(**self.get_params()).fit(train)
        errors, baseline = learner.mape_by_service(test, train)
        learned = float(np.mean(list(errors.values())))
        return HoldoutScore("mean over services of the MAPE of median latency", learned,
                            float(np.mean(list(baseline.values()))), "median latency so far",
                            False, train.height, test.height)  # fmt: skip

    def mape_by_service(
        self, test: pl.DataFrame, train: pl.DataFrame
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Per service: MAPE of the learned curve on ``test``, and of ``train``'s median."""
        learned, constant = {}, {}
        for service in self.services_:
            col = self.latency_column
            rows = test.filter(
                (pl.col("service") == service) & pl.col(col).is_finite() & (pl.col(col) > 0)
            )
            if rows.is_empty():
                continue
            actual = rows[col].to_numpy()
            median = float(train.filter(pl.col("service") == service)[col].median())
            learned[service] = _mape(actual, self.predict(service, rows["cpu"].to_numpy()))
            constant[service] = _mape(actual, np.full(len(actual), median))
        return learned, constant


def _mape(actual: NDArray, predicted: NDArray) -> float:
    return float(np.mean(np.abs(predicted - actual) / actual))
