"""Behaviours: the small, swappable laws the agents follow, one module per agent kind.

- :mod:`~orgtwin.behaviours.users`: :class:`DemandProfile`, :class:`ChurnHazard`,
  :class:`Acquisition`;
- :mod:`~orgtwin.behaviours.services`: :class:`LatencyCurve`, :class:`LatencyComposition`
  (how latency adds up along calls);
- :mod:`~orgtwin.behaviours.teams`: :class:`ChangeFailure`, :class:`IncidentTiming`;
- :mod:`~orgtwin.behaviours.vendors`: :class:`VendorOutages`.

Each is a scikit-learn style estimator (:class:`~orgtwin.behaviours.base.Behaviour`)
that the agents call batched over whole populations. This is the prediction side: it
imports numpy and the scenario specs it is built from, never scikit-learn or mesa, so
a run starts fast and a behaviour can be tested without a model.

May import: :mod:`orgtwin.errors`, :mod:`orgtwin.units`, :mod:`orgtwin.scenario`.
"""

from orgtwin.behaviours.base import Behaviour
from orgtwin.behaviours.services import LatencyComposition, LatencyCurve
from orgtwin.behaviours.teams import ChangeFailure, IncidentTiming
from orgtwin.behaviours.users import Acquisition, ChurnHazard, DemandProfile
from orgtwin.behaviours.vendors import VendorOutages

__all__ = [
    "Acquisition",
    "Behaviour",
    "ChangeFailure",
    "ChurnHazard",
    "DemandProfile",
    "IncidentTiming",
    "LatencyComposition",
    "LatencyCurve",
    "VendorOutages",
]
