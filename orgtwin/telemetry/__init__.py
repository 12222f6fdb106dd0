"""Telemetry: the tables an organisation's systems emit, and the recording of a run into them.

- :mod:`~orgtwin.telemetry.schemas`: one schema per table (requests, calls, deploys,
  incidents, user_days, vendor_status, pages) and the tidy per-tick series;
- :mod:`~orgtwin.telemetry.series`: the registry of the per-tick series metrics (unit,
  gauge or accruing, intensive or extensive);
- :mod:`~orgtwin.telemetry.recording`: a run's figures and events, recorded in those shapes.

The simulator writes telemetry in exactly the shapes a real organisation's telemetry is
read into, so a scenario can stand in for a real organisation.

May import: :mod:`orgtwin.errors`, :mod:`orgtwin.units`, :mod:`orgtwin.scenario`.
"""
