"""Telemetry: the tables an organisation's systems emit, and the recording of a run into them.

- :mod:`~orgtwin.telemetry.schemas`: one schema per table (requests, calls, deploys,
  incidents, user_days, vendor_status, pages; spans, customers and arrivals, which only
  real telemetry has), each table's validation rules, and the tidy per-tick series;
- :mod:`~orgtwin.telemetry.series`: the registry of the per-tick series metrics (unit,
  gauge or accruing, intensive or extensive);
- :mod:`~orgtwin.telemetry.recording`: a run's figures and events, recorded in those shapes;
- :mod:`~orgtwin.telemetry.folder`: an organisation's telemetry folder read into typed,
  validated, lazy tables (:func:`~orgtwin.telemetry.folder.read_telemetry`), and written;
- :mod:`~orgtwin.telemetry.mapping`: mapping files that say how files of another shape
  make the tables (columns, values, units, epochs, time zones);
- :mod:`~orgtwin.telemetry.otlp`: OpenTelemetry spans as the Collector writes them in
  OTLP JSON, read into the ``spans`` table;
- :mod:`~orgtwin.telemetry.derived`: tables made from other tables (``customers`` from
  ``user_days``), and a service's client latency from its callees' latency.

The simulator writes telemetry in exactly the shapes a real organisation's telemetry is
read into, so a scenario can stand in for a real organisation.

May import: :mod:`orgtwin.errors`, :mod:`orgtwin.units`, :mod:`orgtwin.scenario`.
"""
