"""Sweeps: a scenario over a design of lever values × seeds, local or on Ray, and what it says.

- :mod:`~orgtwin.sweeps.api`: :func:`sweep` and :class:`SweepResult`;
- :mod:`~orgtwin.sweeps.design`: grids and Latin hypercubes of lever values;
- :mod:`~orgtwin.sweeps.executors`: one chunk of runs, and the serial and Ray back ends;
- :mod:`~orgtwin.sweeps.choice`: which back end ``runner="auto"`` picks, and why;
- :mod:`~orgtwin.sweeps.store`: the results folder (manifest, design, Parquet shards);
- :mod:`~orgtwin.sweeps.analysis`: lever effects and importance, the text report;
- :mod:`~orgtwin.sweeps.discovery`: PRIM scenario discovery, and a default condition for it.

Ray is imported only inside the Ray back end, and scikit-learn only by the analysis, which
this package loads on first use (``orgtwin.sweeps.lever_importance``), so that importing
orgtwin stays quick.

May import every lower stage, up to :mod:`orgtwin.runs`.
"""

from __future__ import annotations

import importlib
from typing import Any

from orgtwin.scenario.wording import LeverOption, lever_label, lever_options
from orgtwin.sweeps.api import SweepResult, sweep
from orgtwin.sweeps.design import check_levers, grid_size, make_design

_ANALYSIS = (
    "MIN_IMPORTANCE_RUNS",
    "MIN_SURROGATE_R2",
    "default_condition",
    "discover",
    "effects_in_words",
    "format_sweep_report",
    "importance_sentence",
    "is_conclusive",
    "lever_effects",
    "lever_importance",
    "parse_condition",
)

__all__ = [
    "LeverOption",
    "SweepResult",
    "check_levers",
    "grid_size",
    "lever_label",
    "lever_options",
    "make_design",
    "sweep",
    *_ANALYSIS,
]


def __getattr__(name: str) -> Any:
    """The analysis names, imported on first use (they need scikit-learn)."""
    if name in _ANALYSIS:
        return getattr(importlib.import_module("orgtwin.sweeps.analysis"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
