"""Latency against load learned per service: the queueing curve of :class:`LatencyCurve`.

The twin's services answer with median latency
``p50 = base_ms · (1 + queueing_factor · u / (1 − u))`` at utilisation ``u`` and a 95th
percentile ``p95_over_p50`` times that (:class:`~orgtwin.behaviours.services.LatencyCurve`),
where the twin's ``u`` is the load on a replica over its capacity
(``capacity_rps_per_replica``). :class:`LatencyLearner` fits the curve to a ``requests``
table (``time``, ``service``, ``latency_p50_ms``, ``latency_p95_ms``, and the utilisation
source), one service at a time, by least squares on the log latency
(:func:`scipy.optimize.least_squares`: relative errors, as latency spreads
multiplicatively). ``p95_over_p50`` is the geometric mean of the per-row ratios, with a t
interval on the log scale. ``timeout_ms`` is not informed (prior).

Where ``u`` comes from (``utilisation``):

- ``"cpu"``: the ``cpu`` column (0..1). In the twin's own telemetry this *is* load over
  capacity; in a real system it is the CPU share, which need not be what queues.
- ``"load"``: ``requests`` per second per replica (the row's interval is the typical gap
  between a service's times; ``replicas`` is 1 where absent: rows are then per pod) over
  the capacity: ``capacity`` when given (the base scenario's ``capacity_rps_per_replica``,
  so that ``queueing_factor`` means what it means in the twin), else fitted per service by
  profiling: the busiest rows' utilisation (99th percentile of load) on a grid 0.05..0.95,
  the curve fitted at each, the best (least mean absolute log residual) refined between
  its neighbours and kept (``capacity_``; the Wald intervals are then conditional on it).
  A fitted capacity makes ``queueing_factor`` relative to it: hand the twin the base's
  capacity to learn a factor the twin's utilisation can use as it is.
- ``"auto"``: per service, whichever of the two predicts the later half of its rows
  better (mean absolute log error, ``validation_``), rolling forward in time: that half
  in four blocks, each predicted by a fit on every row before it; then refitted on all
  rows (``utilisation_``). One cut at 70% flipped its choice between neighbouring splits.

On Nezha's OnlineBoutique fault-free minutes (a load generator at a constant rate) neither
source moves much, and the curve is within a few tenths of a point of MAPE of a constant
median (``tests/learn/test_latency.py`` gives the figures per service).

The robust loss's scale follows the data: a tenth of the robust spread (1.4826 · MAD) of
the log residuals of a first fit, so ``soft_l1`` is close to least absolute deviations
(the curve follows the conditional median, which is what ``p50`` means) whatever the
service's noise — a fixed scale turned into plain least squares on quiet services, whose
few outliers then pulled ``base_ms`` off their median. The Wald intervals use the
M-estimator's sandwich variance ``n/(n−2) · mean(ψ²) / mean(ψ')²`` (the residual variance
for ``loss="linear"``) with the Jacobian of the log curve.

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

import itertools
import math
from collections.abc import Callable, Mapping
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
_SCALE_SHARE = 0.1
"""The robust loss's scale as a share of the residuals' robust spread (near-L1)."""
_MIN_SCALE = 1e-3
_BUSY_GRID = np.round(np.arange(0.05, 0.951, 0.1), 2)
"""Utilisations tried for the busiest rows (99th percentile of load) when profiling capacity;
the best is refined between its neighbours."""
_VALIDATION_SHARE = 0.5
"""The later share of a service's rows ``"auto"`` predicts to choose its source."""
_SOURCES = {"cpu": ("cpu",), "load": ("requests",), "auto": ("cpu", "requests")}

# ψ'(r) over ρ'(z) of scipy's losses, z = (r/scale)²: ψ(r) = ρ'(z)·r, ψ'(r) = ρ' + 2zρ''.
_RHO1: dict[str, Callable[[NDArray], NDArray]] = {
    "linear": lambda z: np.ones_like(z),
    "soft_l1": lambda z: (1 + z) ** -0.5,
    "huber": lambda z: np.where(z <= 1, 1.0, np.maximum(z, 1e-300) ** -0.5),
    "cauchy": lambda z: 1 / (1 + z),
    "arctan": lambda z: 1 / (1 + z**2),
}
_DPSI: dict[str, Callable[[NDArray], NDArray]] = {
    "linear": lambda z: np.ones_like(z),
    "soft_l1": lambda z: (1 + z) ** -1.5,
    "huber": lambda z: np.where(z <= 1, 1.0, 0.0),
    "cauchy": lambda z: (1 - z) / (1 + z) ** 2,
    "arctan": lambda z: 1 / (1 + z**2) - 4 * z**2 / (1 + z**2) ** 2,
}


_CPU_FLOOR = 0.01
"""Rows whose CPU share is at or below this (1%) do not inform the capacity."""


def _curve(u: NDArray, base: float, q: float) -> NDArray:
    u = np.minimum(u, _U_MAX)
    return base * (1.0 + q * u / (1.0 - u))


def _spread(r: NDArray) -> float:
    return max(1.4826 * float(np.median(np.abs(r - np.median(r)))), _MIN_SCALE)


class LatencyLearner(Learner):
    """Median latency against utilisation and the p95/p50 ratio, per service.

    Args:
        latency_column: the latency quantile the curve is fitted to (ms); another
            quantile than the median (``latency_p90_ms`` where a source has no median)
            makes ``base_ms`` that quantile's base, and ``p95_over_p50`` the ratio of
            ``latency_p95_ms`` to it.
        utilisation: where ``u`` comes from: ``"cpu"`` (the ``cpu`` column), ``"load"``
            (``requests`` per second per replica over ``capacity``) or ``"auto"`` (per
            service, whichever predicts its later training rows better); see the module.
        capacity: requests per second one replica serves (the base scenario's
            ``capacity_rps_per_replica``), one number or one per service; for
            ``"load"``/``"auto"``. Services without one have it fitted (``capacity_``).
        loss: the loss of :func:`scipy.optimize.least_squares` on the log residuals
            (``soft_l1``, scale a tenth of their robust spread: close to least absolute
            deviations, minutes of spikes weigh little; ``linear``: plain least squares).
        min_rows: services with fewer usable rows keep the prior, with a warning.
        prior: the base scenario's latency spec, for what the data cannot inform.

    Attributes:
        services_: the services fitted.
        params_: service → (log base_ms, queueing_factor); ``cov_``: their covariance.
        utilisation_: service → the source of ``u`` used (``"cpu"`` or ``"load"``).
        capacity_: service → requests per second per replica (``"load"`` services only).
        cpu_capacity_: service → for ``"cpu"`` services with their load measured, the
            load per replica at which the CPU would be full (median of load over CPU):
            as the twin's capacity, its utilisation (load over capacity) is the CPU share
            the curve was fitted against.
        interval_s_: service → seconds per row (``requests`` over it is the rate).
        validation_: service → source → mean absolute log error on the later half of the
            rows, each block predicted from the rows before it (``"auto"`` only).
        ratio_: service → (p95_over_p50, low, high).
        n_: service → rows used.
    """

    behaviour: ClassVar[str] = "latency"

    def __init__(
        self,
        *,
        latency_column: str = "latency_p50_ms",
        utilisation: str = "cpu",
        capacity: float | Mapping[str, float] | None = None,
        loss: str = "soft_l1",
        min_rows: int = 10,
        prior: LatencySpec | None = None,
    ) -> None:
        self.latency_column = latency_column
        self.utilisation = utilisation
        self.capacity = capacity
        self.loss = loss
        self.min_rows = min_rows
        self.prior = prior

    def fit(self, requests: pl.DataFrame, y: Any = None) -> LatencyLearner:
        """Fit each service's curve to ``requests``; returns ``self``."""
        if self.utilisation not in _SOURCES:
            raise ValueError(
                f"utilisation must be one of {list(_SOURCES)}, got {self.utilisation!r}"
            )
        if self.loss not in _DPSI:
            raise ValueError(f"loss must be one of {list(_DPSI)}, got {self.loss!r}")
        sources = [c for c in _SOURCES[self.utilisation] if c in requests.columns]
        needed = _SOURCES[self.utilisation] if self.utilisation != "auto" else sources[:1]
        for col in ("service", self.latency_column, *(needed or ("cpu or requests",))):
            if col not in requests.columns:
                raise ValueError(f"requests must have a column {col!r}, got {requests.columns}")
        self.services_, self.params_, self.cov_, self.ratio_, self.n_ = [], {}, {}, {}, {}
        self.utilisation_: dict[str, str] = {}
        self.capacity_: dict[str, float] = {}
        self.cpu_capacity_: dict[str, float] = {}
        self.interval_s_: dict[str, float] = {}
        self.validation_: dict[str, dict[str, float]] = {}
        self.warnings_: list[str] = []
        ok = pl.col(self.latency_column).is_finite() & (pl.col(self.latency_column) > 0)
        source_ok = [pl.col(c).is_finite() & (pl.col(c) >= 0) for c in sources]
        usable = requests.filter(ok & pl.any_horizontal(source_ok))
        for (service,), rows in usable.group_by("service", maintain_order=True):
            service = str(service)
            if "time" in rows.columns:
                rows = rows.sort("time", maintain_order=True)
            candidates = {
                "cpu" if c == "cpu" else "load": rows.filter(cond)
                for c, cond in zip(sources, source_ok, strict=True)
            }
            candidates = {k: r for k, r in candidates.items() if r.height >= self.min_rows}
            if not candidates:
                self.warnings_.append(
                    f"latency: {service} has {rows.height} usable rows (< {self.min_rows}); "
                    "prior kept"
                )
                continue
            self.interval_s_[service] = _interval_s(rows)
            kind = next(iter(candidates))
            if len(candidates) > 1:
                kind = self._choose(service, candidates)
            self._fit_service(service, candidates[kind], kind)
        return self

    def _choose(self, service: str, candidates: dict[str, pl.DataFrame]) -> str:
        """The source whose curve best predicts the later half of the rows, time-ordered:
        that half in four blocks, each predicted by a fit on all the rows before it."""
        scores = {}
        for kind, rows in candidates.items():
            cuts = [round(rows.height * e) for e in np.linspace(1 - _VALIDATION_SHARE, 1, 5)]
            if cuts[0] < self.min_rows or min(np.diff(cuts)) < 2:
                continue
            errors = []
            for start, end in itertools.pairwise(cuts):
                (log_base, q), _, capacity = self._fit_rows(service, rows[:start], kind)
                test = rows[start:end]
                predicted = _curve(self._u(service, test, kind, capacity), math.exp(log_base), q)
                actual = test[self.latency_column].to_numpy().astype(float)
                errors.append(np.abs(np.log(predicted / actual)))
            scores[kind] = float(np.mean(np.concatenate(errors)))
        self.validation_[service] = scores
        return min(scores, key=scores.__getitem__) if scores else next(iter(candidates))

    def _capacity_given(self, service: str) -> float | None:
        if isinstance(self.capacity, Mapping):
            value = self.capacity.get(service)
            return None if value is None else float(value)
        return None if self.capacity is None else float(self.capacity)

    def _load(self, service: str, rows: pl.DataFrame) -> NDArray:
        """Requests per second per replica of each row."""
        rate = rows["requests"].to_numpy().astype(float) / self.interval_s_[service]
        if "replicas" in rows.columns:
            replicas = rows["replicas"].cast(pl.Float64).fill_null(1.0).fill_nan(1.0)
            replicas = replicas.to_numpy()
            rate = rate / np.maximum(replicas, 1.0)
        return rate

    def _u(self, service: str, rows: pl.DataFrame, kind: str, capacity: float) -> NDArray:
        if kind == "cpu":
            return rows["cpu"].to_numpy().astype(float)
        return self._load(service, rows) / capacity

    def _fit_rows(
        self, service: str, rows: pl.DataFrame, kind: str
    ) -> tuple[NDArray, NDArray, float]:
        """(log base, q), their covariance and the capacity (nan for ``cpu``)."""
        latency = rows[self.latency_column].to_numpy().astype(float)
        if kind == "cpu":
            x, cov = self._fit_curve(rows["cpu"].to_numpy().astype(float), latency)
            return x, cov, math.nan
        load = self._load(service, rows)
        if (given := self._capacity_given(service)) is not None:
            x, cov = self._fit_curve(load / given, latency)
            return x, cov, given
        busy = float(np.quantile(load, 0.99))
        if busy <= 0:  # no load: no curve to find, the base only
            x, cov = self._fit_curve(np.zeros_like(load), latency)
            return x, cov, math.inf

        scale = _SCALE_SHARE * _spread(np.log(latency))  # one scale along the profile
        start = [np.array([float(np.median(np.log(latency))), 0.1])]

        def score(share: float) -> float:
            u = load * (share / busy)
            x, _ = self._fit_curve(u, latency, scale, start[0])
            start[0] = x  # the next share starts from here
            r = np.log(_curve(u, math.exp(x[0]), x[1]) / latency)
            return float(np.mean(r**2 if self.loss == "linear" else np.abs(r)))

        scores = [score(share) for share in _BUSY_GRID]
        i = int(np.argmin(scores))
        low, high = _BUSY_GRID[max(i - 1, 0)], _BUSY_GRID[min(i + 1, len(_BUSY_GRID) - 1)]
        refined = optimize.minimize_scalar(
            score, bounds=(low, high), method="bounded", options={"xatol": 1e-3}
        )
        share = float(refined.x) if refined.fun < scores[i] else float(_BUSY_GRID[i])
        x, cov = self._fit_curve(load * (share / busy), latency)
        return x, cov, busy / share

    def _fit_curve(
        self, u: NDArray, latency: NDArray, scale: float | None = None, x0: NDArray | None = None
    ) -> tuple[NDArray, NDArray]:
        """Least squares on log latency: (log base, q) and their sandwich covariance; the
        robust loss's scale from the residuals of a first fit unless ``scale`` is given."""
        log_y = np.log(latency)
        g = np.minimum(u, _U_MAX)
        g = g / (1.0 - g)

        def residual(x: NDArray) -> NDArray:
            return x[0] + np.log1p(x[1] * g) - log_y

        def jacobian(x: NDArray) -> NDArray:
            return np.column_stack([np.ones_like(g), g / (1.0 + x[1] * g)])

        if x0 is None:
            x0 = np.array([float(np.median(log_y)), 0.1 if np.any(g > 0) else 0.0])
        options = {
            "jac": jacobian, "bounds": ([-20.0, 0.0], [20.0, 1000.0]), "loss": self.loss,
            "xtol": 1e-12, "ftol": 1e-12, "gtol": 1e-12,  # noise-free data: to the rounding
        }  # fmt: skip
        given = scale is not None
        scale = scale if scale is not None else _SCALE_SHARE * _spread(log_y)
        fit = optimize.least_squares(residual, x0, f_scale=scale, **options)
        if self.loss != "linear" and not given:  # the residuals' scale, not the latencies'
            scale = _SCALE_SHARE * _spread(fit.fun)
            fit = optimize.least_squares(residual, fit.x, f_scale=scale, **options)
        jac = jacobian(fit.x)
        r = fit.fun
        z = (r / scale) ** 2
        psi, dpsi = _RHO1[self.loss](z) * r, float(np.mean(_DPSI[self.loss](z)))
        n = len(r)
        s2 = float(np.mean(psi**2)) / dpsi**2 if dpsi > 0 else float(np.mean(r**2))
        s2 *= n / max(n - 2, 1)
        return fit.x.astype(float), np.linalg.pinv(jac.T @ jac) * s2

    def _fit_service(self, service: str, rows: pl.DataFrame, kind: str) -> None:
        x, cov, capacity = self._fit_rows(service, rows, kind)
        self.services_.append(service)
        self.params_[service] = (float(x[0]), float(x[1]))
        self.cov_[service] = cov
        self.n_[service] = rows.height
        self.utilisation_[service] = kind
        if kind == "load":
            self.capacity_[service] = capacity
        elif "requests" in rows.columns:  # the load at which the CPU would be full
            load = self._load(service, rows)
            cpu = rows["cpu"].to_numpy().astype(float)
            seen = np.isfinite(load) & (load > 0) & (cpu > _CPU_FLOOR)
            if seen.sum() >= self.min_rows:
                self.cpu_capacity_[service] = float(np.median(load[seen] / cpu[seen]))
        if "latency_p95_ms" in rows.columns:
            p50 = rows[self.latency_column].to_numpy().astype(float)
            p95 = rows["latency_p95_ms"].to_numpy().astype(float)
            ok = (p95 > 0) & np.isfinite(p95)
            log_ratio = np.maximum(np.log(p95[ok] / p50[ok]), 0.0)
            if log_ratio.size >= 2:
                half = stats.t.ppf(0.975, log_ratio.size - 1) * log_ratio.std(ddof=1)
                half /= math.sqrt(log_ratio.size)
                m = float(log_ratio.mean())
                self.ratio_[service] = (math.exp(m), math.exp(m - half), math.exp(m + half))

    def utilisation_of(self, service: str, rows: pl.DataFrame) -> NDArray[np.float64]:
        """The utilisation of each of ``rows`` as ``service``'s curve was fitted against:
        its ``cpu``, or its load per replica over its capacity."""
        check_is_fitted(self, "params_")
        kind = self.utilisation_.get(service, "cpu")
        return self._u(service, rows, kind, self.capacity_.get(service, math.nan))

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
        method = f"{self.loss} fit of log latency against {self.utilisation_[service]} "
        method += "utilisation, Wald interval (sandwich variance)"
        if service in self.capacity_ and self._capacity_given(service) is None:
            method += f", given the fitted capacity {self.capacity_[service]:.4g} rps/replica"
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
        """Per service: MAPE of the learned curve on ``test`` (at each row's utilisation as
        :meth:`utilisation_of` gives it), and of ``train``'s median."""
        learned, constant = {}, {}
        col = self.latency_column
        usable = pl.col(col).is_finite() & (pl.col(col) > 0)
        for service in self.services_:
            source = "cpu" if self.utilisation_[service] == "cpu" else "requests"
            rows = test.filter((pl.col("service") == service) & usable & pl.col(source).is_finite())
            if rows.is_empty():
                continue
            actual = rows[col].to_numpy()
            median = float(train.filter((pl.col("service") == service) & usable)[col].median())
            u = self.utilisation_of(service, rows)
            learned[service] = _mape(actual, self.predict(service, u))
            constant[service] = _mape(actual, np.full(len(actual), median))
        return learned, constant


def _mape(actual: NDArray, predicted: NDArray) -> float:
    return float(np.mean(np.abs(predicted - actual) / actual))


def _interval_s(rows: pl.DataFrame) -> float:
    """Seconds per row: the median gap between the distinct times (an hour without them)."""
    if "time" not in rows.columns or rows["time"].n_unique() < 2:
        return 3600.0
    gaps = rows["time"].unique().sort().diff().dt.total_microseconds().drop_nulls() / 1e6
    return float(gaps.median() or 3600.0)
