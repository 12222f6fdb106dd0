"""Compare: two to four scenarios side by side on the same KPIs, seeds and days.

Every scenario runs with the same seeds, so the change of each against the first is a
paired comparison (the noise of the seeds cancels). The table shows each scenario's mean
with its 95% interval and its change against the first; the chart one KPI's means. Above
the table, each scenario's trust level where a scorecard is saved beside it.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from orgtwin import KPIS, explore
from orgtwin.dashboard import charts, folders, state, telemetry_state, ui
from orgtwin.units import format_delta, format_value

MIN_SCENARIOS, MAX_SCENARIOS = 2, 4
DEFAULT_DAYS, DEFAULT_SEEDS, MIN_DAYS = 90, 8, 7
TABLE_KPIS = (
    "users",
    "churned",
    "revenue_usd",
    "margin_usd",
    "infra_cost_usd",
    "availability_pct",
    "latency_p95_ms",
    "incidents",
    "pages",
    "off_hours_pages",
    "fatigue",
    "attrition",
    "deploy_frequency_per_day",
    "lead_time_hours",
    "change_failure_rate_pct",
    "time_to_restore_hours",
)
REQUEST = "compare-request"
DEFAULT_SEED = 7
"""The bundled baseline's seed."""


def compare_form(names: list[str]) -> dict[str, Any] | None:
    """Scenarios, days, seeds, Run. The request when pressed with a valid choice."""
    defaults = [n for n in ("baseline.yaml", "price_increase.yaml") if n in names] or names[:2]
    with st.form("compare-form"):
        chosen = st.multiselect(
            "Scenarios",
            names,
            default=defaults,
            max_selections=MAX_SCENARIOS,
            key="compare-scenarios",
            help=f"{MIN_SCENARIOS} to {MAX_SCENARIOS} scenarios; changes are shown "
            "against the first.",
        )
        left, mid, right = st.columns(3)
        with left:
            days = ui.days_input(
                key="compare-days", low=MIN_DAYS, high=explore.MAX_DAYS, default=DEFAULT_DAYS
            )
        with mid:
            seeds = ui.seeds_input(
                key="compare-seeds", high=explore.MAX_SEEDS, default=DEFAULT_SEEDS
            )
        with right:
            seed = ui.seed_input(
                key="compare-seed",
                default=DEFAULT_SEED,
                help="Every scenario runs the seeds derived from it, so changes are paired.",
            )
        pressed = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    if not pressed:
        return None
    if not MIN_SCENARIOS <= len(chosen) <= MAX_SCENARIOS:
        st.error(f"Pick {MIN_SCENARIOS} to {MAX_SCENARIOS} scenarios, got {len(chosen)}.")
        return None
    return {"names": tuple(chosen), "days": days, "seeds": seeds, "seed": seed}


def run_all(paths: tuple[str, ...], stamp: int, request: dict[str, Any]) -> pl.DataFrame:
    """Run every scenario (cached); their comparison table.

    While the runs go on, a first estimate from each scenario's first seeds is shown at
    once (labelled as such) and replaced by the full table when every seed is in.
    """
    runs = (paths, stamp, request["days"], request["seeds"], request["seed"])
    if request["seeds"] <= explore.ESTIMATE_SEEDS or state.scenarios_ready(*runs):
        return state.comparison(*runs, TABLE_KPIS)
    first = state.comparison(*runs, TABLE_KPIS, estimate=True)
    holder = st.empty()
    with holder.container():
        st.subheader("Side by side")
        st.info(
            f"First estimate from {explore.ESTIMATE_SEEDS} of {request['seeds']} seeds per "
            "scenario, shown while the other seeds run; the full table replaces it.",
            icon=":material/hourglass_top:",
        )
        st.dataframe(side_by_side(first), hide_index=True, width="stretch", height="content")
    table = state.comparison(*runs, TABLE_KPIS)
    holder.empty()
    return table


def side_by_side(table: pl.DataFrame) -> pl.DataFrame:
    """One row per KPI, per scenario a column "mean [95% CI]" and one "Δ vs first"."""
    names = table["scenario"].unique(maintain_order=True).to_list()
    rows = []
    for kpi in table["kpi"].unique(maintain_order=True).to_list():
        part = table.filter(pl.col("kpi") == kpi)
        unit = part["unit"][0]
        row: dict[str, str] = {"KPI": part["label"][0], "unit": unit}
        for r in part.iter_rows(named=True):
            row[r["scenario"]] = _with_interval(r["mean"], r["ci_low"], r["ci_high"], unit)
            if r["scenario"] != names[0]:
                row[f"Δ {r['scenario']}"] = _delta(r, unit)
        rows.append(row)
    return pl.DataFrame(rows)


def _with_interval(mean: float | None, low: float | None, high: float | None, unit: str) -> str:
    if low is None or high is None:
        return format_value(mean, unit)
    return f"{format_value(mean, unit)} [{format_value(low, unit)}, {format_value(high, unit)}]"


def _delta(row: dict[str, Any], unit: str) -> str:
    text = format_delta(row["delta"], unit)
    if row["delta_low"] is not None and row["delta_high"] is not None:
        text += (
            f" [{format_delta(row['delta_low'], unit)}, {format_delta(row['delta_high'], unit)}]"
        )
    if row["significant"]:
        text += " ✓" if row["better"] else " ✗" if row["better"] is False else " •"
    return text


def results(request: dict[str, Any], stamp: int) -> None:
    folder = folders.scenarios_folder()
    paths = tuple(folders.scenario_path(folder, n) for n in request["names"])
    table = run_all(paths, stamp, request)
    names = table["scenario"].unique(maintain_order=True).to_list()
    line = (
        f"{', '.join(names)} · {request['seeds']} seeds × {request['days']} days · "
        f"base seed {request['seed']} · changes against {names[0]}"
    )
    st.subheader("Side by side")
    ui.caption(line + " · [95% CI]; ✓ better, ✗ worse where the interval excludes zero")
    trust_badges(paths, stamp)
    wide = side_by_side(table)
    st.dataframe(wide, hide_index=True, width="stretch", height="content")
    st.subheader("One KPI")
    kpi = st.selectbox(
        "KPI",
        TABLE_KPIS,
        key="compare-kpi",
        format_func=lambda k: f"{KPIS[k].label} ({KPIS[k].unit})",
    )
    bars = table.filter(pl.col("kpi") == kpi).select(
        "scenario", "mean", "ci_low", "ci_high", "unit"
    )
    chart = charts.kpi_interval_chart(bars).properties(title=f"{KPIS[kpi].label} · {line}")
    st.altair_chart(chart, width="stretch")
    ui.caption(f"Mean over seeds with its 95% interval. {line}")
    files = ui.Downloads(
        ui.slug("compare", *names, f"{request['seeds']}x{request['days']}d"), key="dl-compare"
    )
    files.table("comparison", table)
    files.table("side by side", wide)
    files.chart(kpi, chart)
    files.render()


def trust_badges(paths: tuple[str, ...], stamp: int) -> None:
    """Each scenario's trust level, from the scorecard saved beside it; one line for those
    not validated against production yet."""
    names = [state.scenario_info(p, stamp).name for p in paths]
    cards = [telemetry_state.saved_scorecard(p, n) for p, n in zip(paths, names, strict=True)]
    for name, card in zip(names, cards, strict=True):
        if card is not None:
            ui.trust_badge(card, name=name)
    if None in cards:
        unvalidated = ", ".join(n for n, c in zip(names, cards, strict=True) if c is None)
        ui.trust_badge(None, name=unvalidated)


def page() -> None:
    st.title("Compare scenarios")
    folder = folders.scenarios_folder()
    names = folders.list_scenarios(folder)
    if len(names) < MIN_SCENARIOS:
        st.warning(f"Comparing needs at least {MIN_SCENARIOS} scenario files in {folder}.")
        return
    stamp = folders.folder_stamp(folder)
    request = compare_form(names)
    if request is not None:
        st.session_state[REQUEST] = request
    last = st.session_state.get(REQUEST)
    if last is not None:
        with ui.guarded("the comparison"):
            results(last, stamp)


page()
