"""What every learner shares: scikit-learn conventions, estimates with intervals, scores.

A learner turns telemetry into the parameters of one behaviour the agents already use
(:mod:`orgtwin.behaviours`), so a learned twin is an ordinary scenario. It is a
scikit-learn estimator (``BaseEstimator``): ``__init__`` stores its arguments and nothing
else, ``fit`` stores what it learned in attributes ending in ``_`` and returns ``self``,
and it works with ``sklearn.base.clone``. Its fitting is done by scikit-learn, SciPy or
statsmodels, never by an optimiser of our own.

After ``fit``, a learner reports:

- :meth:`Learner.estimates`: one :class:`Estimate` per behaviour parameter, with a 95%
  interval and where the value came from (``learned`` from the data, ``shrunk`` toward
  the prior because the data were thin, or ``prior``: kept from the base scenario because
  the data cannot inform it);
- :meth:`Learner.holdout`: a :class:`HoldoutScore`, the learned behaviour against the best
  simple baseline for it on a time-ordered split (the learner refits on the earlier part).

Priors come in as a spec of the base scenario (``prior=``, a pydantic model of
:mod:`orgtwin.scenario.organisation`): what the data cannot inform keeps its value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

Source = Literal["learned", "shrunk", "prior"]
"""Where an estimate came from: the data, the data pulled toward the prior, or the prior."""


@dataclass(frozen=True)
class Estimate:
    """One learned behaviour parameter, with its 95% interval.

    Attributes:
        name: the parameter's name on the behaviour's spec (``restore_median_hours``).
        value: the estimate, in ``unit``.
        low, high: the 95% interval (equal to ``value`` for a prior with no spread
            known; NaN where no interval can be given, with a warning saying why).
        source: ``learned``, ``shrunk`` (thin data: pulled toward the prior) or ``prior``.
        unit: the unit, in words (``hours``, ``per month``, ``log-odds per log change``).
        method: how it was estimated, in words (``log-normal MLE, profile interval``).
        n: observations behind it (incidents, customers, hours…).
    """

    name: str
    value: float
    low: float
    high: float
    source: Source
    unit: str = ""
    method: str = ""
    n: int = 0

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise ValueError(f"{self.name}: an estimate must be finite, got {self.value}")

    def covers(self, truth: float) -> bool:
        """Whether ``truth`` lies in the interval (inclusive, give or take float rounding:
        a value learned from noise-free data has an interval as narrow as the rounding)."""
        slack = 1e-9 * max(abs(self.low), abs(self.high), abs(truth))
        return self.low - slack <= truth <= self.high + slack

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HoldoutScore:
    """The learned behaviour against a simple baseline on held-out, later data.

    Attributes:
        metric: what is scored, in words (``mean log-likelihood per incident``, ``MAPE``).
        learned: the learned behaviour's score.
        baseline: the baseline's score, computed in the same run on the same split.
        baseline_name: the baseline, in words (``same hour last week``).
        higher_is_better: True for likelihoods and AUC, False for errors.
        n_train, n_test: rows in each part of the split.
    """

    metric: str
    learned: float
    baseline: float
    baseline_name: str
    higher_is_better: bool
    n_train: int
    n_test: int

    @property
    def beats_baseline(self) -> bool:
        if self.higher_is_better:
            return self.learned > self.baseline
        return self.learned < self.baseline

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"beats_baseline": self.beats_baseline}


@dataclass
class Fit:
    """What the report says of one behaviour of one entity.

    Attributes:
        behaviour: the behaviour (``incident_timing``).
        entity: the entity it belongs to (``team web``, ``segment free``, ``vendor stripe``),
            or ``""`` for the organisation as a whole.
        estimates: one per parameter.
        holdout: the held-out score, or None where the data were too few to split.
        rows_used: rows of telemetry behind the fit.
        warnings: what the reader should know (thin data, a prior kept, a poor fit…).
    """

    behaviour: str
    entity: str
    estimates: list[Estimate]
    holdout: HoldoutScore | None = None
    rows_used: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "behaviour": self.behaviour,
            "entity": self.entity,
            "estimates": [e.as_dict() for e in self.estimates],
            "holdout": None if self.holdout is None else self.holdout.as_dict(),
            "rows_used": self.rows_used,
            "warnings": list(self.warnings),
        }


class Learner(BaseEstimator):
    """Base of every learner (see the module docstring for the contract).

    Subclasses set :attr:`behaviour` and implement ``fit``. A learner of one entity
    (:attr:`entity` names its constructor argument: ``team``, ``vendor``…) stores its
    estimates in ``estimates_``, says how many rows it used in :meth:`rows_used` and,
    where a time-ordered split makes sense, scores itself in :meth:`holdout`; then
    :meth:`estimates` and :meth:`fits` need no code of its own. Learners of many entities
    at once override :meth:`estimates` and :meth:`fits`.
    """

    behaviour: ClassVar[str] = ""
    """The behaviour this learner produces the parameters of (``churn``)."""
    entity: ClassVar[str] = ""
    """The constructor argument naming the one entity fitted (``team``); ``""`` if none."""

    def estimates(self) -> list[Estimate]:
        """The fitted parameters with their intervals (call after ``fit``)."""
        check_is_fitted(self, "estimates_")
        return list(self.estimates_)

    def params(self) -> dict[str, float]:
        """The fitted parameters as the behaviour's spec takes them."""
        return {e.name: e.value for e in self.estimates()}

    def warnings(self) -> list[str]:
        """What the fit could not do well, in words (empty by default)."""
        return list(getattr(self, "warnings_", []))

    def rows_used(self) -> int:
        """Rows of telemetry behind the fit (call after ``fit``)."""
        raise NotImplementedError

    def holdout(self) -> HoldoutScore | None:
        """The held-out score, or None where the data are too few to split."""
        return None

    def fits(self) -> list[Fit]:
        """The report's one :class:`Fit`: entity ``<entity> <name>``, or ``""`` when the
        learner took every row."""
        estimates = self.estimates()
        name = getattr(self, self.entity) if self.entity else None
        who = "" if name is None else f"{self.entity} {name}"
        return [Fit(self.behaviour, who, estimates, self.holdout(), self.rows_used(),
                    self.warnings())]  # fmt: skip


def shrink(value: float, prior: float, n: int, prior_n: float) -> tuple[float, Source]:
    """Pull ``value`` toward ``prior``, the prior counting as ``prior_n`` observations.

    The result is ``(n·value + prior_n·prior) / (n + prior_n)``: with few observations
    it stays near the prior, with many the data speak. Shrink on the scale the estimate
    is symmetric on (a log for durations and rates, log-odds for probabilities). The
    source is ``shrunk`` while the prior's weight is 5% or more, else ``learned``.

    Example:
        >>> shrink(10.0, 2.0, n=15, prior_n=15)
        (6.0, 'shrunk')
        >>> shrink(10.0, 2.0, n=1000, prior_n=15)[1]
        'learned'
    """
    weight = prior_n / (n + prior_n) if n + prior_n > 0 else 1.0
    source: Source = "shrunk" if weight >= 0.05 else "learned"
    return (1.0 - weight) * value + weight * prior, source
