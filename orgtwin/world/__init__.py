"""The world and the model: agents under one Mesa model, advanced one hour at a time.

- :mod:`~orgtwin.world.rng`: derived seeds and one random stream per entity;
- :mod:`~orgtwin.world.parts`: the shared parts that are not agents (product features,
  vendor status, user ids, the ledger of error budgets, blame and calls);
- :mod:`~orgtwin.world.desk`: the incident desk where incidents are opened and closed;
- :mod:`~orgtwin.world.effects`: interventions scheduled on the running world;
- :mod:`~orgtwin.world.drive`: the inputs production was given, imposed on a replay;
- :mod:`~orgtwin.world.build`: :func:`~orgtwin.world.build.build_world`, the one build
  step, and the :class:`~orgtwin.world.build.World` it returns;
- :mod:`~orgtwin.world.kpis`: :data:`~orgtwin.world.kpis.KPIS`, what a run's KPIs mean,
  and :func:`~orgtwin.world.kpis.summarise`, how a run's telemetry becomes its KPIs;
- :mod:`~orgtwin.world.costs`: the KPIs of the whole cost (people in money, lifetime
  value, run rates);
- :mod:`~orgtwin.world.collecting`: :class:`~orgtwin.world.collecting.OrgCollector`, the
  model's Mesa ``datacollector`` (hourly series, the run's KPIs, agents on request), and
  how :func:`mesa.batch_run` takes seeds, days and lever paths;
- :mod:`~orgtwin.world.model`: :class:`~orgtwin.world.model.OrgModel`, which owns a world
  and advances it an hour at a time, as a Mesa model (``running``, ``datacollector``).

May import: :mod:`orgtwin.errors`, :mod:`orgtwin.units`, :mod:`orgtwin.scenario`,
:mod:`orgtwin.behaviours`, :mod:`orgtwin.telemetry`, :mod:`orgtwin.agents`.
"""

from orgtwin.world.build import Behaviours, World, build_world
from orgtwin.world.collecting import OrgCollector
from orgtwin.world.model import OrgModel
from orgtwin.world.rng import derive_seed, entity_rng

__all__ = [
    "Behaviours",
    "OrgCollector",
    "OrgModel",
    "World",
    "build_world",
    "derive_seed",
    "entity_rng",
]
