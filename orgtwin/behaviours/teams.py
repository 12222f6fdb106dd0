"""Behaviours of teams: which deploys fail, and how long incidents take to detect and restore."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from orgtwin.behaviours.base import Behaviour, expit, logit
from orgtwin.scenario.organisation import ChangeFailureSpec, IncidentResponseSpec

_FAILURE, _RESPONSE = ChangeFailureSpec(), IncidentResponseSpec()
MAX_INCIDENT_HOURS = 24.0 * 366
"""The longest an incident can take to detect or to restore (a year): fatigue has no
bound of its own (each off-hours page adds to it), so without a ceiling a paging storm
would stretch restore times past what a float holds."""
_LOG_MAX_HOURS = math.log(MAX_INCIDENT_HOURS)


def _hours(log_hours: float) -> float:
    """Hours from their log, at most :data:`MAX_INCIDENT_HOURS`."""
    return MAX_INCIDENT_HOURS if log_hours >= _LOG_MAX_HOURS else math.exp(log_hours)


class ChangeFailure(Behaviour):
    """Probability that a deploy fails: ``logit p = logit base + b·log(batch) + f·fatigue``.

    Args:
        base: failure probability of a one-change deploy by a rested team.
        batch_coef: log-odds per log of batch size (bigger batches fail more).
        fatigue_coef: log-odds per unit of fatigue of the deploying team.
    """

    spec = ChangeFailureSpec

    def __init__(
        self,
        base: float = _FAILURE.base,
        batch_coef: float = _FAILURE.batch_coef,
        fatigue_coef: float = _FAILURE.fatigue_coef,
    ) -> None:
        self.base = base
        self.batch_coef = batch_coef
        self.fatigue_coef = fatigue_coef

    def predict_proba(self, batch_size: ArrayLike, fatigue: ArrayLike = 0.0) -> NDArray | float:
        """Failure probability of deploys of the given batch sizes (a float for scalars)."""
        if isinstance(batch_size, int | float) and isinstance(fatigue, int | float):
            z = (
                math.log(self.base / (1.0 - self.base))
                + self.batch_coef * math.log(max(batch_size, 1.0))
                + self.fatigue_coef * fatigue
            )
            return 1.0 / (1.0 + math.exp(-z))  # one deploy at a time: no array round trip
        batch = np.maximum(np.asarray(batch_size, dtype=float), 1.0)
        z = logit(self.base) + self.batch_coef * np.log(batch) + self.fatigue_coef * fatigue
        return expit(z)


class IncidentTiming(Behaviour):
    """Time to detect and time to restore an incident (log-normal, in hours).

    Restore time stretches with the responder's fatigue and with the size of the change
    that caused it (more suspects), and shrinks with the team's expertise.

    Args:
        detect_median_hours: median time from start to detection.
        detect_sigma: log-normal shape of detection time.
        restore_median_hours: median time from detection to resolution.
        restore_sigma: log-normal shape of restore time.
        fatigue_coef: log-duration per unit of responder fatigue.
        expertise_coef: log-duration per unit of team expertise (reduces time).
        batch_coef: log-duration per log of the causing batch size.
    """

    spec = IncidentResponseSpec

    def __init__(
        self,
        detect_median_hours: float = _RESPONSE.detect_median_hours,
        detect_sigma: float = _RESPONSE.detect_sigma,
        restore_median_hours: float = _RESPONSE.restore_median_hours,
        restore_sigma: float = _RESPONSE.restore_sigma,
        fatigue_coef: float = _RESPONSE.fatigue_coef,
        expertise_coef: float = _RESPONSE.expertise_coef,
        batch_coef: float = _RESPONSE.batch_coef,
    ) -> None:
        self.detect_median_hours = detect_median_hours
        self.detect_sigma = detect_sigma
        self.restore_median_hours = restore_median_hours
        self.restore_sigma = restore_sigma
        self.fatigue_coef = fatigue_coef
        self.expertise_coef = expertise_coef
        self.batch_coef = batch_coef

    def sample_detect(self, rng: np.random.Generator, normal: float | None = None) -> float:
        """Hours from incident start to detection (pass ``normal`` to reuse a draw), at
        most :data:`MAX_INCIDENT_HOURS`."""
        z = rng.standard_normal() if normal is None else normal
        log_hours = math.log(self.detect_median_hours) + self.detect_sigma * z
        return _hours(log_hours)

    def restore_median(self, fatigue: float, expertise: float, batch_size: float = 1.0) -> float:
        """Median restore time (hours) for a responder and a causing batch, at most
        :data:`MAX_INCIDENT_HOURS`."""
        return _hours(self._log_restore_median(fatigue, expertise, batch_size))

    def _log_restore_median(self, fatigue: float, expertise: float, batch_size: float) -> float:
        return (
            math.log(self.restore_median_hours)
            + self.fatigue_coef * fatigue
            - self.expertise_coef * (expertise - 1.0)
            + self.batch_coef * math.log(max(batch_size, 1.0))
        )

    def sample_restore(
        self,
        rng: np.random.Generator,
        *,
        fatigue: float,
        expertise: float,
        batch_size: float = 1.0,
        normal: float | None = None,
    ) -> float:
        """Hours from detection to resolution, at most :data:`MAX_INCIDENT_HOURS`."""
        z = rng.standard_normal() if normal is None else normal
        log_median = self._log_restore_median(fatigue, expertise, batch_size)
        return _hours(log_median + self.restore_sigma * z)
