"""The Mesa agents of the world, one module per actor (installed as ``orgtwin.agents``).

- :mod:`~orgtwin.agents.users`: :class:`~orgtwin.agents.users.UserSegment`, users in arrays;
- :mod:`~orgtwin.agents.services`: :class:`~orgtwin.agents.services.Service` and the
  vectorised :class:`~orgtwin.agents.services.ServiceMesh`;
- :mod:`~orgtwin.agents.vendors`: :class:`~orgtwin.agents.vendors.Vendor`;
- :mod:`~orgtwin.agents.teams`: :class:`~orgtwin.agents.teams.Team`.

Agents sit below the world that builds them: they import numpy and mesa, and from orgtwin
only the types and protocols they are handed (time, specs, behaviours, the event log);
never polars, Ray, Streamlit or the higher stages.
"""
