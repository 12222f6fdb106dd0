"""Learning: behaviours estimated from telemetry, and a learned twin as a scenario.

``orgtwin.learn(telemetry, base=..., mapping=...)`` (this package is callable: it is
:func:`orgtwin.learn.api.learn`) reads a telemetry folder, runs every learner its tables
feed, and returns the learned scenario and its fit report.

- :mod:`~orgtwin.learn.base`: the learner contract (scikit-learn estimators that yield a
  behaviour's parameters with 95% intervals, marked learned, shrunk or prior) and the
  report's parts;
- one module per behaviour: :mod:`~orgtwin.learn.structure` (services and call fan-out),
  :mod:`~orgtwin.learn.demand` (hour-of-week profile, level, trend),
  :mod:`~orgtwin.learn.latency` (latency against utilisation; :mod:`~orgtwin.learn.own`:
  own latency, the calls' taken out),
  :mod:`~orgtwin.learn.changes` (change failure), :mod:`~orgtwin.learn.incidents` (time
  to detect and restore), :mod:`~orgtwin.learn.churn` (churn hazard),
  :mod:`~orgtwin.learn.acquisition` (arrivals of new users), :mod:`~orgtwin.learn.vendors`
  (vendor outages), and :mod:`~orgtwin.learn.arrivals` (is an arrival process Poisson?);
- :mod:`~orgtwin.learn.api`: which learner each table feeds, and :func:`learn`;
- :mod:`~orgtwin.learn.report`: the fit report (Markdown and JSON);
- :mod:`~orgtwin.learn.twin`: the learned scenario, written as plain YAML.

May import: :mod:`orgtwin.errors`, :mod:`orgtwin.units`, :mod:`orgtwin.scenario`,
:mod:`orgtwin.behaviours`, :mod:`orgtwin.telemetry`, :mod:`orgtwin.world`, and
scikit-learn and SciPy.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from orgtwin.learn.api import latency_learner, learn, learn_to
from orgtwin.learn.base import Estimate, Fit, HoldoutScore, Learner
from orgtwin.learn.demand import weekly_profile
from orgtwin.learn.own import own_latency
from orgtwin.learn.report import LearnReport
from orgtwin.learn.twin import learned_scenario, write_scenario

__all__ = [
    "Estimate",
    "Fit",
    "HoldoutScore",
    "LearnReport",
    "Learner",
    "latency_learner",
    "learn",
    "learn_to",
    "learned_scenario",
    "own_latency",
    "weekly_profile",
    "write_scenario",
]


class _CallableModule(types.ModuleType):
    """This package, callable as :func:`orgtwin.learn.api.learn`: ``orgtwin.learn`` is both
    the package of learners and the verb."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from orgtwin.learn.api import learn

        return learn(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
