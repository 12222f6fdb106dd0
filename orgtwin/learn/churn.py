"""Churn hazard learned from customers: the proportional-hazards law of :class:`ChurnHazard`.

The twin's users churn with the daily hazard
``h = h0 · exp(e·experience) · (price/ref)^p · (1 + tenure_months)^t``
(:class:`~orgtwin.behaviours.users.ChurnHazard`), one :class:`ChurnSpec` per segment.
:class:`ChurnLearner` fits that law to a ``customers`` table (one row per customer:
``segment``, ``price`` USD/month, ``tenure_months``, ``churned``) by maximum likelihood
(:func:`scipy.optimize.minimize`), as a parametric survival model:

- each customer is watched from an *entry* tenure to ``tenure_months`` (the column
  ``entry_tenure_months`` where given, else ``tenure_months − window_months``, else 0:
  the whole life), so a snapshot that says "left in the last month" is a one-month
  window (``window_months=1``) and a simulated period is left-truncated correctly;
- the log-likelihood is ``Σ churned·log h(T) − ∫ h`` over the watched tenure, with the
  tenure term integrated exactly;
- per segment: the base rate, price elasticity and tenure coefficient; shared: the
  experience coefficient (when customers carry ``experience``) and the log-hazard of any
  extra covariate columns (``covariates=``: strings are one-hot coded against their most
  common value, numbers enter as they are);
- a segment whose customers all pay one price cannot tell its price elasticity: it keeps
  the prior's, marked *prior*.

The twin has no per-user covariates beyond experience, price and tenure, so a segment's
``base_monthly`` is reported for the segment's average customer: the base hazard times
the mean of ``exp(β·x)`` over the segment's customers (the covariate mix folded in).
Intervals are Wald intervals from the inverse Hessian (delta method for
``base_monthly``). ``experience_coef`` stays at the prior without an ``experience``
column. Values outside the spec's bounds are clipped to them, with a warning.

Example:
    >>> import polars as pl
    >>> customers = pl.DataFrame({"segment": ["pro"] * 4, "price": [10.0, 12, 10, 8],
    ...     "tenure_months": [1.0, 5, 12, 30], "churned": [True, False, True, False]})
    >>> learner = ChurnLearner().fit(customers)
    >>> sorted(learner.specs())
    ['pro']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray
from scipy import optimize, stats
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from orgtwin.learn.base import Estimate, Fit, HoldoutScore, Learner
from orgtwin.scenario.organisation import ChurnSpec

_Z95 = float(stats.norm.ppf(0.975))
_PRIOR = ChurnSpec()
_PER_SEGMENT = ("log_base", "price_elasticity", "tenure_coef")


def _growth(k: NDArray, lo: NDArray, hi: NDArray) -> NDArray:
    """``∫ (1+τ)^(k−1) dτ`` from ``lo`` to ``hi`` given ``log(1+lo)``, ``log(1+hi)``."""
    small = np.abs(k) < 1e-8
    safe = np.where(small, 1.0, k)
    out = (np.expm1(safe * hi) - np.expm1(safe * lo)) / safe
    return np.where(small, hi - lo, out)


class ChurnLearner(Learner):
    """The churn hazard of each segment, learned from one row per customer.

    Args:
        covariates: extra columns of ``customers`` that shift the log-hazard (shared
            across segments); folded into each segment's base rate for the twin.
        window_months: months each customer was watched before ``tenure_months`` (1 for
            a snapshot of who left last month); None: since tenure 0.
        event_time: ``exact``: a churned customer left at ``tenure_months`` (daily
            telemetry); ``interval``: somewhere in the watched window (a snapshot), the
            grouped-time likelihood ``churned·log(1 − e^−H) − (1 − churned)·H``.
        prior: the base scenario's churn spec, for what the data cannot inform.
        l2: ridge penalty on the covariate coefficients (log-hazard units), for
            stability with rare levels.

    Attributes:
        segments_: the segments, in order.
        coef_: the fitted parameter vector; ``cov_`` its covariance.
        reference_price_: segment → reference price (the segment's median price).
        covariate_names_: the coded covariate columns; ``levels_``: column → the levels
            of a string covariate coded against its most common one.
        n_: customers per segment; ``events_``: churned per segment.
        price_varies_: per segment, whether its prices differ (else its elasticity is
            the prior's); ``free_``: which entries of ``coef_`` were fitted.
    """

    behaviour: ClassVar[str] = "churn"

    def __init__(
        self,
        *,
        covariates: Sequence[str] = (),
        window_months: float | None = None,
        event_time: Literal["exact", "interval"] = "exact",
        prior: ChurnSpec | None = None,
        l2: float = 0.01,
    ) -> None:
        self.covariates = covariates
        self.window_months = window_months
        self.event_time = event_time
        self.prior = prior
        self.l2 = l2

    # ------------------------------------------------------------------ design

    def _design(self, customers: pl.DataFrame, *, fitting: bool) -> dict[str, NDArray]:
        seg = customers["segment"].cast(pl.String).to_numpy()
        if fitting:
            self.segments_ = sorted(set(seg.tolist()))
            self.reference_price_ = {
                s: float(np.median(customers["price"].to_numpy()[seg == s])) for s in self.segments_
            }
            self.levels_ = {}
            for col in self.covariates:
                if customers[col].dtype == pl.String:
                    counts = customers[col].value_counts(sort=True)
                    self.levels_[col] = counts[col].to_list()[1:]
            self.covariate_names_ = [
                f"{c}={v}" if c in self.levels_ else c
                for c in self.covariates
                for v in self.levels_.get(c, [None])
            ]
        unknown = sorted(set(seg.tolist()) - set(self.segments_))
        if unknown:
            raise ValueError(f"customers.segment must be one of {self.segments_}, got {unknown}")
        index = np.searchsorted(self.segments_, seg)
        price = customers["price"].to_numpy().astype(float)
        ref = np.array([self.reference_price_[s] for s in self.segments_])[index]
        priced = (price > 0) & (ref > 0)
        log_price = np.log(np.divide(price, ref, out=np.ones_like(price), where=priced))
        exit_t = customers["tenure_months"].to_numpy().astype(float)
        if self.window_months is not None:
            entry = np.maximum(exit_t - self.window_months, 0.0)
        else:
            entry = np.zeros_like(exit_t)
        if "entry_tenure_months" in customers.columns:  # where given, it says
            given = customers["entry_tenure_months"].cast(pl.Float64).to_numpy()
            entry = np.where(np.isnan(given), entry, np.minimum(given, exit_t))
        columns = []
        for col in self.covariates:
            if col in self.levels_:
                values = customers[col].cast(pl.String).to_numpy()
                columns += [(values == v).astype(float) for v in self.levels_[col]]
            else:
                columns.append(customers[col].to_numpy().astype(float))
        x = np.column_stack(columns) if columns else np.zeros((len(seg), 0))
        has_exp = "experience" in customers.columns
        experience = customers["experience"].to_numpy().astype(float) if has_exp else None
        return {
            "segment": index,
            "log_price": log_price,
            "lo": np.log1p(entry),
            "hi": np.log1p(exit_t),
            "x": x,
            "experience": experience,
            "event": customers["churned"].to_numpy().astype(float),
        }

    # ------------------------------------------------------------------ likelihood

    def _unpack(self, theta: NDArray) -> dict[str, NDArray]:
        k = len(self.segments_)
        out = {name: theta[i * k : (i + 1) * k] for i, name in enumerate(_PER_SEGMENT)}
        rest = theta[3 * k :]
        out["experience_coef"] = rest[:1] if self.uses_experience_ else np.zeros(1)
        out["beta"] = rest[1:] if self.uses_experience_ else rest
        return out

    def _linear(self, theta: NDArray, d: dict[str, NDArray]) -> NDArray:
        p = self._unpack(theta)
        s = d["segment"]
        eta = p["log_base"][s] + p["price_elasticity"][s] * d["log_price"] + d["x"] @ p["beta"]
        if self.uses_experience_:
            eta = eta + p["experience_coef"][0] * d["experience"]
        return eta

    def _cumulative(self, theta: NDArray, d: dict[str, NDArray]) -> NDArray:
        """Expected churns of each customer over the watched tenure (∫ hazard, months)."""
        t = self._unpack(theta)["tenure_coef"][d["segment"]]
        return np.exp(self._linear(theta, d)) * _growth(t + 1.0, d["lo"], d["hi"])

    def _nll(self, theta: NDArray, d: dict[str, NDArray], penalty: bool = True) -> float:
        cumulative = self._cumulative(theta, d)
        if self.event_time == "interval":  # churned somewhere in the watched window
            churned = np.log(-np.expm1(-np.maximum(cumulative, 1e-300)))
            ll = np.sum(d["event"] * churned - (1.0 - d["event"]) * cumulative)
        else:  # churned at tenure_months exactly
            t = self._unpack(theta)["tenure_coef"][d["segment"]]
            log_h = self._linear(theta, d) + t * d["hi"]
            ll = np.sum(d["event"] * log_h) - np.sum(cumulative)
        ridge = 0.5 * self.l2 * np.sum(self._unpack(theta)["beta"] ** 2) if penalty else 0.0
        return float(-ll + ridge)

    def _hessian(self, theta: NDArray, d: dict[str, NDArray]) -> NDArray:
        """Hessian of the negative log-likelihood by central differences of its gradient."""

        def grad(th: NDArray) -> NDArray:
            return optimize.approx_fprime(th, self._nll, 1e-6, d)

        n = len(theta)
        h = np.empty((n, n))
        step = 1e-4 * np.maximum(1.0, np.abs(theta))
        for i in range(n):
            e = np.zeros(n)
            e[i] = step[i]
            h[i] = (grad(theta + e) - grad(theta - e)) / (2 * step[i])
        return 0.5 * (h + h.T)

    # ------------------------------------------------------------------ fit

    def fit(self, customers: pl.DataFrame, y: Any = None) -> ChurnLearner:
        """Fit the hazard to ``customers`` (one row per customer); returns ``self``."""
        for col in ("segment", "price", "tenure_months", "churned", *self.covariates):
            if col not in customers.columns:
                raise ValueError(f"customers must have a column {col!r}, got {customers.columns}")
        d = self._design(customers, fitting=True)
        self.uses_experience_ = d["experience"] is not None
        k = len(self.segments_)
        exposure = np.bincount(d["segment"], _growth(np.ones(1), d["lo"], d["hi"]), k)
        events = np.bincount(d["segment"], d["event"], k)
        start = np.log((events + 0.5) / (exposure + 1.0))
        prior = self.prior or _PRIOR
        theta0 = np.concatenate(
            [
                start,
                np.full(k, float(prior.price_elasticity)),
                np.zeros(k),
                np.zeros(int(self.uses_experience_)),
                np.zeros(d["x"].shape[1]),
            ]
        )
        # a segment whose customers all pay one price cannot tell its elasticity: it is
        # held at the prior (the price term is zero for every one of them anyway)
        spread = [d["log_price"][d["segment"] == i] for i in range(k)]
        self.price_varies_ = np.array([p.size > 1 and np.ptp(p) > 1e-9 for p in spread])
        free = np.ones(len(theta0), dtype=bool)
        free[k : 2 * k] = self.price_varies_
        self.free_ = free

        def nll(phi: NDArray) -> float:
            theta = theta0.copy()
            theta[free] = phi
            return self._nll(theta, d)

        result = optimize.minimize(nll, theta0[free], method="BFGS")
        self.coef_ = theta0.copy()
        self.coef_[free] = result.x
        self.converged_ = bool(result.success) or result.status == 2
        self.n_ = np.bincount(d["segment"], minlength=k).astype(int)
        self.events_ = events.astype(int)
        self.warnings_: list[str] = []
        if not self.converged_:
            self.warnings_.append(f"churn: the optimiser did not converge ({result.message})")
        self.cov_ = np.zeros((len(theta0), len(theta0)))
        try:
            hessian = self._hessian(self.coef_, d)[np.ix_(free, free)]
            self.cov_[np.ix_(free, free)] = np.linalg.inv(hessian)
        except np.linalg.LinAlgError:
            self.cov_ = np.full((len(theta0), len(theta0)), np.nan)
            self.warnings_.append("churn: the Hessian is singular; no intervals")
        self._mix = self._covariate_mix(d)
        return self

    def _covariate_mix(self, d: dict[str, NDArray]) -> list[tuple[float, NDArray]]:
        """Per segment: log mean exp(β·x) and its gradient in β (the folded-in mix)."""
        beta = self._unpack(self.coef_)["beta"]
        out = []
        for i in range(len(self.segments_)):
            x = d["x"][d["segment"] == i]
            if x.shape[1] == 0 or len(x) == 0:
                out.append((0.0, np.zeros(x.shape[1])))
                continue
            w = np.exp(x @ beta)
            out.append((float(np.log(w.mean())), (w[:, None] * x).sum(0) / w.sum()))
        return out

    # ------------------------------------------------------------------ predictions

    def predict_risk(self, customers: pl.DataFrame) -> NDArray[np.float64]:
        """Log-hazard of each customer apart from the tenure term (a risk score)."""
        check_is_fitted(self, "coef_")
        return self._linear(self.coef_, self._design(customers, fitting=False))

    def predict_log_hazard(self, customers: pl.DataFrame) -> NDArray[np.float64]:
        """Log of each customer's monthly hazard at their tenure (``tenure_months``)."""
        check_is_fitted(self, "coef_")
        d = self._design(customers, fitting=False)
        tenure = self._unpack(self.coef_)["tenure_coef"][d["segment"]]
        return self._linear(self.coef_, d) + tenure * d["hi"]

    def predict_proba(self, customers: pl.DataFrame) -> NDArray[np.float64]:
        """Probability that each customer churns over their watched tenure."""
        check_is_fitted(self, "coef_")
        d = self._design(customers, fitting=False)
        return -np.expm1(-self._cumulative(self.coef_, d))

    # ------------------------------------------------------------------ report

    def specs(self) -> dict[str, ChurnSpec]:
        """One :class:`ChurnSpec` per segment, with the learned values written in."""
        check_is_fitted(self, "coef_")
        prior = self.prior or _PRIOR
        out = {}
        for s in self.segments_:
            values = {e.name: e.value for e in self.estimates(segment=s)}
            out[s] = prior.model_copy(
                update=values | {"reference_price_usd_month": self.reference_price_[s]}
            )
        return out

    def estimates(self, segment: str | None = None) -> list[Estimate]:
        """The churn spec's parameters of ``segment`` (optional with one segment)."""
        check_is_fitted(self, "coef_")
        if segment is None and len(self.segments_) == 1:
            segment = self.segments_[0]
        if segment not in self.segments_:
            raise ValueError(f"segment must be one of {self.segments_}, got {segment!r}")
        i = self.segments_.index(segment)
        k = len(self.segments_)
        n, prior = int(self.n_[i]), self.prior or _PRIOR
        out = [self._base_monthly(i, n)]
        for name, index, unit in (
            ("price_elasticity", k + i, "log-hazard per log of price"),
            ("tenure_coef", 2 * k + i, "log-hazard per log(1 + tenure months)"),
        ):
            if self.free_[index]:
                out.append(self._wald(name, index, unit, n))
                continue
            value = float(self.coef_[index])
            why = "one price for every customer of the segment"
            out.append(Estimate(name, value, value, value, "prior", unit, why, 0))
        if self.uses_experience_:
            out.append(self._wald("experience_coef", 3 * k, "log-hazard per bad session a day", n))
        else:
            value = prior.experience_coef
            out.append(
                Estimate(
                    "experience_coef",
                    value,
                    value,
                    value,
                    "prior",
                    "log-hazard per bad session a day",
                    "no experience column",
                    0,
                )
            )
        return [self._clipped(e, segment) for e in out]

    def fits(self) -> list[Fit]:
        """One :class:`Fit` per segment (entity ``segment <name>``)."""
        return [
            Fit(
                self.behaviour,
                f"segment {s}",
                self.estimates(segment=s),
                rows_used=int(self.n_[i]),
                warnings=self.warnings(),
            )
            for i, s in enumerate(self.segments_)
        ]

    def _wald(self, name: str, index: int, unit: str, n: int) -> Estimate:
        value = float(self.coef_[index])
        se = math.sqrt(max(float(self.cov_[index, index]), 0.0))
        return Estimate(
            name,
            value,
            value - _Z95 * se,
            value + _Z95 * se,
            "learned",
            unit,
            "proportional-hazards MLE, Wald interval",
            n,
        )

    def _base_monthly(self, i: int, n: int) -> Estimate:
        k = len(self.segments_)
        shift, grad_beta = self._mix[i]
        log_rate = float(self.coef_[i]) + shift
        grad = np.zeros(len(self.coef_))
        grad[i] = 1.0
        if grad_beta.size:
            grad[-grad_beta.size :] = grad_beta
        se = math.sqrt(max(float(grad @ self.cov_ @ grad), 0.0))
        # a monthly hazard of exp(z) as a probability; past z = 700 it is 1 (exp overflows)
        as_prob = lambda z: float(-np.expm1(-np.exp(min(z, 700.0))))  # noqa: E731
        method = "proportional-hazards MLE, delta-method interval"
        if k and grad_beta.size:
            method += "; covariate mix of the segment folded in"
        return Estimate(
            "base_monthly",
            as_prob(log_rate),
            as_prob(log_rate - _Z95 * se),
            as_prob(log_rate + _Z95 * se),
            "learned",
            "probability per month",
            method,
            n,
        )

    def _clipped(self, e: Estimate, segment: str) -> Estimate:
        info = ChurnSpec.model_fields[e.name].metadata
        lo = next((m.ge for m in info if getattr(m, "ge", None) is not None), -math.inf)
        hi = next((m.le for m in info if getattr(m, "le", None) is not None), math.inf)
        hi = next((m.lt - 1e-9 for m in info if getattr(m, "lt", None) is not None), hi)
        if lo <= e.value <= hi:
            return e
        warning = (
            f"churn: segment {segment}: {e.name} = {e.value:.3g} lies outside the spec's "
            f"[{lo}, {hi}]; clipped"
        )
        if warning not in self.warnings_:
            self.warnings_.append(warning)
        value = min(max(e.value, lo), hi)
        low, high = min(max(e.low, lo), value), max(min(e.high, hi), value)
        return Estimate(
            e.name,
            value,
            low,
            high,
            e.source,
            e.unit,
            e.method + ", clipped to the spec's bounds",
            e.n,
        )

    def holdout(self, customers: pl.DataFrame, *, test_share: float = 0.3) -> HoldoutScore:
        """Refit on the customers who joined first (by ``start`` when given, else the
        longest tenure) and score the mean log-likelihood per held-out customer against a
        constant hazard per segment fitted on the same customers."""
        key = "start" if "start" in customers.columns else "tenure_months"
        order = customers.sort(key, descending=key == "tenure_months")
        n_train = round(len(order) * (1 - test_share))
        train, test = order[:n_train], order[n_train:]
        learner = clone(self).fit(train)
        d_test = learner._design(test, fitting=False)
        learned = -learner._nll(learner.coef_, d_test, penalty=False) / len(test)
        d_train = learner._design(train, fitting=False)
        theta = np.zeros_like(learner.coef_)
        for i in range(len(learner.segments_)):
            rows = {
                key: v[d_train["segment"] == i] if v is not None and v.ndim else v
                for key, v in d_train.items()
            }

            def nll(log_rate: float, i: int = i, rows: dict = rows) -> float:
                th = theta.copy()
                th[i] = log_rate
                return learner._nll(th, rows, penalty=False)

            theta[i] = optimize.minimize_scalar(nll, bounds=(-20.0, 5.0), method="bounded").x
        baseline = -learner._nll(theta, d_test, penalty=False) / len(test)
        return HoldoutScore(
            "mean log-likelihood per customer",
            float(learned),
            float(baseline),
            "constant hazard per segment",
            True,
            len(train),
            len(test),
        )


def concordance_index(time: NDArray, event: NDArray, risk: NDArray) -> float:
    """Harrell's C: among pairs where the earlier time is an event, the share in which
    the earlier one has the higher risk (ties in risk count one half).

    Example:
        >>> concordance_index(np.array([1, 2, 3]), np.array([1, 1, 0]), np.array([3, 2, 1]))
        1.0
    """
    time, event, risk = (np.asarray(a, dtype=float) for a in (time, event, risk))
    order = np.argsort(time, kind="stable")
    time, event, risk = time[order], event[order], risk[order]
    concordant = comparable = 0.0
    for i in np.flatnonzero(event):
        later = time > time[i]
        comparable += later.sum()
        concordant += (risk[later] < risk[i]).sum() + 0.5 * (risk[later] == risk[i]).sum()
    return float(concordant / comparable) if comparable else math.nan
