"""Fidelity: how far the twin mirrors production, and when production drifts from it.

- :mod:`~orgtwin.fidelity.detect`: change detection on standardised residuals (two-sided
  CUSUM) with thresholds calibrated by simulation to a false-alarm budget;
- :mod:`~orgtwin.fidelity.residuals`: per behaviour and entity, what the telemetry shows
  against what the twin predicts given the observed inputs (latency given load, demand
  given the profile, deploy failures given batch sizes, churn given the hazard), as
  standardised residual streams;
- :mod:`~orgtwin.fidelity.watch`: the drift watch (``orgtwin watch``): every stream
  watched with its calibrated threshold, and an alarms table saying which behaviour,
  which entity, since when, how big and what stands downstream.

Validation by shadow replay (``orgtwin validate``) is not built yet.

May import: :mod:`orgtwin.errors`, :mod:`orgtwin.units`, :mod:`orgtwin.scenario`,
:mod:`orgtwin.behaviours`, :mod:`orgtwin.telemetry`, :mod:`orgtwin.world`,
:mod:`orgtwin.learn`, and scikit-learn and SciPy.
"""
