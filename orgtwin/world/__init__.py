"""The world and the model: agents under one Mesa model, advanced one hour at a time.

- :mod:`~orgtwin.world.rng`: derived seeds and one random stream per entity;
- :mod:`~orgtwin.world.build`: a scenario turned into agents and behaviours;
- :mod:`~orgtwin.world.effects`: interventions scheduled on the running world;
- :mod:`~orgtwin.world.model`: :class:`~orgtwin.world.model.OrgModel`.

May import: :mod:`orgtwin.errors`, :mod:`orgtwin.units`, :mod:`orgtwin.scenario`,
:mod:`orgtwin.behaviours`, :mod:`orgtwin.telemetry`, :mod:`orgtwin.agents`.
"""

from orgtwin.world.model import OrgModel
from orgtwin.world.rng import derive_seed, entity_rng

__all__ = ["OrgModel", "derive_seed", "entity_rng"]
