"""Explore: one scenario with its levers moved, against its base, for an interactive page.

- :mod:`~orgtwin.explore.exploration`: run base and change, compare, trace the ripple;
- :mod:`~orgtwin.explore.controls`: the knobs a scenario offers a page;
- :mod:`~orgtwin.explore.ripple`: where a change landed, and the chain that carried it;
- :mod:`~orgtwin.explore.chain`: the chain of a ripple, traced along the mechanisms;
- :mod:`~orgtwin.explore.mechanisms`: the model's causal graph of figures the chain follows;
- :mod:`~orgtwin.explore.drill`: what moved at one link of the chain or node of the graph;
- :mod:`~orgtwin.explore.figures`: KPI cards and time series with bands across seeds;
- :mod:`~orgtwin.explore.verdict`: the paragraph that answers the scenario's question;
- :mod:`~orgtwin.explore.report`: an exploration as one self-contained HTML page;
- :mod:`~orgtwin.explore.pdf`: the same report as a PDF.

May import every lower stage, up to :mod:`orgtwin.sweeps`.
"""

from orgtwin.explore.chain import chain_sentence
from orgtwin.explore.controls import Control, apply_controls, controls
from orgtwin.explore.drill import Drill, drill
from orgtwin.explore.exploration import (
    ESTIMATE_SEEDS,
    MAX_DAYS,
    MAX_SEEDS,
    Exploration,
    base_scenario,
    check_bounds,
    explore,
    explore_from,
    run_base,
    run_change,
    start_lean,
)
from orgtwin.explore.figures import HEADLINE_KPIS, kpi_cards, series_bands
from orgtwin.explore.pdf import pdf_report
from orgtwin.explore.report import html_report
from orgtwin.explore.ripple import Ripple, ripple
from orgtwin.explore.verdict import MAX_HORIZON_DAYS, verdict

__all__ = [
    "ESTIMATE_SEEDS",
    "HEADLINE_KPIS",
    "MAX_DAYS",
    "MAX_HORIZON_DAYS",
    "MAX_SEEDS",
    "Control",
    "Drill",
    "Exploration",
    "Ripple",
    "apply_controls",
    "base_scenario",
    "chain_sentence",
    "check_bounds",
    "controls",
    "drill",
    "explore",
    "explore_from",
    "html_report",
    "kpi_cards",
    "pdf_report",
    "ripple",
    "run_base",
    "run_change",
    "series_bands",
    "start_lean",
    "verdict",
]
