"""The scenario format: an organisation plus the interventions that change it.

- :mod:`~orgtwin.scenario.fields`: the base of every spec, strict bounded values, knobs;
- :mod:`~orgtwin.scenario.organisation`: the organisation: segments, features, services,
  vendors and teams;
- :mod:`~orgtwin.scenario.interventions`: every intervention kind, declared once (fields,
  words for people, controls, effect);
- :mod:`~orgtwin.scenario.spec`: :class:`~orgtwin.scenario.spec.Scenario`, the whole file;
- :mod:`~orgtwin.scenario.load`: reading YAML (bounded, inside an optional root),
  ``extends:`` and merging;
- :mod:`~orgtwin.scenario.checks`: validation and its messages (file, field path,
  expected, found), every problem at once, the structure included (call-graph growth,
  overlapping surges, compounding prices, churn hazards);
- :mod:`~orgtwin.scenario.memory`: the peak memory a run needs, estimated before it runs;
- :mod:`~orgtwin.scenario.levers`: dotted lever paths into a scenario and setting them;
- :mod:`~orgtwin.scenario.wording`: levers in words (labels, units), and the levers a
  scenario offers people (sweeps' pickers, the Explore page's controls);
- :mod:`~orgtwin.scenario.reference`: the Markdown reference and JSON Schema of the format.

May import: :mod:`orgtwin.errors`, :mod:`orgtwin.units`.
"""

from orgtwin.scenario.load import check_timing, load_scenario
from orgtwin.scenario.spec import Scenario

__all__ = ["Scenario", "check_timing", "load_scenario"]
