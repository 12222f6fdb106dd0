"""Fidelity: how far the twin mirrors production, and when production drifts from it.

- :mod:`~orgtwin.fidelity.detect`: change detection on standardised residuals (two-sided
  CUSUM) with thresholds calibrated by simulation to a false-alarm budget;
- :mod:`~orgtwin.fidelity.residuals`: per behaviour and entity, what the telemetry shows
  against what the twin predicts given the observed inputs (latency given load, demand
  given the profile, deploy failures given batch sizes, churn given the hazard), as
  standardised residual streams;
- :mod:`~orgtwin.fidelity.watch`: the drift watch (``orgtwin watch``): every stream
  watched with its calibrated threshold, and an alarms table saying which behaviour,
  which entity, since when, how big and what stands downstream;
- :mod:`~orgtwin.fidelity.shadow`: shadow replay (:func:`replay`): the twin run over a
  window of production fed what production was fed there (arrivals or entry requests,
  deploys, vendor outages: :class:`orgtwin.world.drive.Drive`);
- :mod:`~orgtwin.fidelity.scorecard`: validation (:func:`validate`, ``orgtwin
  validate``): the replay scored against what production did, per behaviour, KPI and entity, against
  persistence, with a plain verdict per line and a trust level, saved beside the
  scenario.

May import: :mod:`orgtwin.errors`, :mod:`orgtwin.units`, :mod:`orgtwin.scenario`,
:mod:`orgtwin.behaviours`, :mod:`orgtwin.telemetry`, :mod:`orgtwin.world`,
:mod:`orgtwin.learn`, and scikit-learn and SciPy.
"""

from orgtwin.fidelity.scorecard import (
    SCORECARD,
    TRUST_WORDS,
    VERDICTS,
    Scorecard,
    persistence,
    read_scorecard,
    score,
    scorecard_of,
    trust,
    validate,
)
from orgtwin.fidelity.shadow import MAX_REPLAY_DAYS, Replay, replay

__all__ = [
    "MAX_REPLAY_DAYS",
    "SCORECARD",
    "TRUST_WORDS",
    "VERDICTS",
    "Replay",
    "Scorecard",
    "persistence",
    "read_scorecard",
    "replay",
    "score",
    "scorecard_of",
    "trust",
    "validate",
]
