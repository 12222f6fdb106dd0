"""Sweeps: open a sweep's results folder, or launch a small sweep on this machine.

Open: a heatmap of one KPI over two levers (mean over seeds), which lever drives the KPI
(a sentence, or "inconclusive"), each lever's effect, and the lever ranges where a
condition on the KPIs holds (a sentence). Levers and KPIs are named in words
(:func:`orgtwin.scenario.wording.lever_label`); lever paths, importance scores and PRIM's
coverage/density table are under "Advanced" expanders and in the downloads.
Launch: up to two levers picked by name from the scenario's levers, each with a range
bounded by what its field allows (or typed as ``path=spec`` under "Advanced"), a grid
bounded to :data:`MAX_RUNS` runs, written into the results folder with a live progress
bar (serial when small, else local Ray).
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from orgtwin import KPIS, sweeps
from orgtwin.dashboard import charts, folders, state, ui
from orgtwin.sweeps import LeverOption, lever_label, lever_options

MAX_RUNS = 500
"""Most runs (grid points × seeds) a sweep launched from the dashboard may have."""
MAX_SEEDS, MAX_DAYS, MIN_DAYS = 8, 90, 7
MAX_LEVERS = 2
OPENED = "sweeps-open"
LAUNCHED = "sweeps-launched"


# --------------------------------------------------------------------------- open


def open_section() -> None:
    """Pick a results folder and show what the sweep says."""
    root = folders.results_folder()
    names = folders.list_sweeps(root)
    if not names:
        st.info(
            f"No sweep results in {root} yet: launch one below, or run "
            f"`orgtwin sweep … --out {root}/<name>`."
        )
        return
    wanted = st.session_state.pop(OPENED, None)
    if wanted in names:  # a sweep just launched: open it
        st.session_state["sweeps-folder"] = wanted
    name = st.selectbox(
        "Results folder",
        names,
        key="sweeps-folder",
        help=f"Sweep folders (with a manifest.json) in {root}, newest first.",
    )
    with ui.guarded("opening the sweep"):
        out = folders.sweep_folder(root, name)
        show_sweep(str(out), folders.sweep_stamp(out), name)


def show_sweep(out: str, stamp: int, name: str) -> None:
    result = state.sweep_result(out, stamp)
    manifest, levers = result.manifest, result.lever_paths
    runs = state.sweep_runs(out, stamp)
    failed = runs.filter(pl.col("error").is_not_null()).height
    line = (
        f"{manifest['scenario']} · {manifest['seeds']} seeds × {manifest['days']} days · "
        f"{manifest['n']} points, {runs.height} of {manifest['runs']} runs saved"
        + (f", {failed} failed" if failed else "")
        + f" · levers: {', '.join(lever_label(lever) for lever in levers)}"
    )
    ui.caption(line)
    kpis = [k for k in KPIS if k in runs.columns]
    kpi = st.selectbox(
        "KPI",
        kpis,
        index=kpis.index("availability_pct"),
        key="sweeps-kpi",
        format_func=lambda k: f"{KPIS[k].label} ({KPIS[k].unit})",
    )
    files = ui.Downloads(ui.slug(name), key="dl-sweep")
    files.table("runs", runs)
    left, right = st.columns([3, 2])
    with left:
        heatmap_section(out, stamp, levers, kpi, line, files)
    with right:
        importance_section(out, stamp, kpi, runs.height - failed, files)
    effects_title = "Each lever's effect on the main KPIs (lowest to highest level)"
    with st.expander(effects_title), ui.guarded("the lever effects"):
        effects = state.sweep_effects(out, stamp)
        st.dataframe(sweeps.effects_in_words(effects), hide_index=True, width="stretch")
        ui.caption(
            "Change: mean at the lever's highest level less the mean at its lowest, over "
            "the other levers and the seeds; clear when its 95% interval excludes zero."
        )
        files.table("lever effects", effects)
    discovery_section(out, stamp, sweeps.default_condition(runs, kpi=kpi), files)
    with st.expander("Advanced: lever paths"):
        st.markdown("\n".join(f"- {lever_label(p)}: `{p}`" for p in levers))
    files.render()


def heatmap_section(
    out: str, stamp: int, levers: list[str], kpi: str, line: str, files: ui.Downloads
) -> None:
    st.markdown("**Heatmap** (mean over seeds and the other levers)")
    x = st.selectbox("x lever", levers, index=0, key="sweeps-x", format_func=lever_label)
    others = [lever for lever in levers if lever != x]
    y = (
        st.selectbox("y lever", others, index=0, key="sweeps-y", format_func=lever_label)
        if others
        else None
    )
    chosen = (x,) if y is None else (x, y)
    cells = state.sweep_cells(out, stamp, chosen, kpi)
    unit = KPIS[kpi].unit
    y_title = lever_label(y) if y else ""
    chart = charts.heatmap(cells, lever_label(x), y_title, f"{KPIS[kpi].label} ({unit})")
    title = f"{KPIS[kpi].label}: {manifest_line(line)}"
    st.altair_chart(chart.properties(title=title), width="stretch")
    ui.caption(f"{cells.height} cells · {line}")
    files.table(f"{kpi} heatmap cells", cells)
    files.chart(f"{kpi} heatmap", chart)


def manifest_line(line: str) -> str:
    """The provenance line without Markdown, for a chart title (which shows it as text)."""
    return line.split(" · levers:")[0]


def importance_section(out: str, stamp: int, kpi: str, n_ok: int, files: ui.Downloads) -> None:
    st.markdown(f"**Which lever matters most for {KPIS[kpi].label.lower()}?**")
    if n_ok < sweeps.MIN_IMPORTANCE_RUNS:
        st.info(
            f"Ranking levers needs at least {sweeps.MIN_IMPORTANCE_RUNS} successful runs, this "
            f"sweep has {n_ok}: sweep more points or seeds."
        )
        return
    with ui.guarded("ranking the levers"):
        table = state.sweep_importance(out, stamp, kpi)
        sentence = sweeps.importance_sentence(table)
        r2 = table["surrogate_r2"][0]
        conclusive = sweeps.is_conclusive(table)
        labelled = table.with_columns(pl.col("lever").map_elements(lever_label, pl.String))
        chart = charts.importance_chart(labelled)
        if conclusive:
            st.info(sentence, icon=":material/insights:")
            st.altair_chart(chart, width="stretch")
        else:
            st.warning(sentence, icon=":material/help:")
        ui.caption(
            "How much a random-forest model of the sweep gets worse at predicting "
            f"{KPIS[kpi].label.lower()} when a lever's values are shuffled; it explains "
            f"{max(r2, 0.0):.0%} of the variation between held-out runs."
        )
        with st.expander("Advanced: importance scores"):
            st.dataframe(
                table.select(
                    "rank",
                    "lever",
                    pl.col("importance_mean").round(3).alias("importance"),
                    pl.col("importance_std").round(3).alias("sd"),
                    pl.col("surrogate_r2").round(2).alias("held-out R²"),
                ),
                hide_index=True,
                width="stretch",
            )
            ui.caption(
                "importance: mean drop of the surrogate's held-out R² when the lever is "
                f"shuffled; a ranking is said only when R² is at least {sweeps.MIN_SURROGATE_R2}."
            )
        files.table(f"{kpi} lever importance", table)
        files.chart(f"{kpi} lever importance", chart)


def discovery_section(out: str, stamp: int, default: str, files: ui.Downloads) -> None:
    """Where a condition holds; ``default`` holds in some runs and not in others (missing
    the SLO, else the KPI's worse half: :func:`orgtwin.sweeps.default_condition`)."""
    st.markdown("**Discovered conditions**: where in the lever space does a condition hold?")
    condition = st.text_input(
        "Condition",
        value=default,
        key="sweeps-condition",
        help="Clauses `<kpi> <op> <number>` joined by `and`, e.g. "
        "`availability_pct < 99.9 and pages > 40`; op is one of < <= > >= == !=. "
        "The default holds in some runs and not others: missing the SLO "
        "(`error_budget_used > 1`) where some runs miss it, else the KPI's worse half.",
    )
    with ui.guarded("the discovery"):
        found = state.sweep_result(out, stamp).discover(condition.strip())
        rules, trajectory = found.rules(), found.trajectory
        st.success(found.in_words(), icon=":material/search:")
        with st.expander("Advanced: the box as rules, and PRIM's peeling trajectory"):
            if rules:
                st.markdown("\n".join(f"- `{rule}`" for rule in rules))
            ui.caption(
                "coverage: share of the runs where the condition holds that are in the box; "
                "density: share of the box's runs where it holds; support: share of all runs "
                "in the box."
            )
            st.dataframe(trajectory, hide_index=True, width="stretch")
        files.table("discovery trajectory", trajectory)


# --------------------------------------------------------------------------- launch


DEFAULTS: dict[str, tuple[float, float, int]] = {
    "teams.*.oncall_size": (2, 5, 4),
    "services.*.spot_share": (0.0, 0.8, 3),
}
"""The range first offered for a lever (low, high, levels); others: around their value."""
NONE = "(none)"


def launch_section() -> None:
    """A small grid sweep into the results folder, with a live progress bar."""
    scenarios = folders.scenarios_folder()
    names = folders.list_scenarios(scenarios)
    if not names:
        st.warning(f"No scenario files in {scenarios}.")
        return
    name = st.selectbox(
        "Scenario",
        names,
        key="launch-scenario",
        index=names.index("baseline.yaml") if "baseline.yaml" in names else 0,
    )
    with ui.guarded("the scenario's levers"):
        path = folders.scenario_path(scenarios, name)
        options = lever_options(state.scenario(path, folders.folder_stamp(scenarios)))
        picked = [
            pick_lever(1, options, "teams.*.oncall_size"),
            pick_lever(2, options, "services.*.spot_share", optional=True),
        ]
    left, right = st.columns(2)
    with left:
        seeds = ui.seeds_input(key="launch-seeds", high=MAX_SEEDS, default=2)
    with right:
        days = ui.days_input(key="launch-days", low=MIN_DAYS, high=MAX_DAYS, default=30)
    st.caption(
        f"At most {MAX_LEVERS} levers and {MAX_RUNS} runs (grid points × seeds), "
        f"{MAX_SEEDS} seeds and {MAX_DAYS} days."
    )
    if st.button("Launch sweep", type="primary", icon=":material/rocket_launch:",
                 key="launch-picked"):  # fmt: skip
        levers = tuple(text for text in picked if text)
        with ui.guarded("the sweep"):
            launch(name, levers, seeds=seeds, days=days)
    typed_section(name, seeds=seeds, days=days)


def pick_lever(slot: int, options: list[LeverOption], default: str, *, optional: bool = False
               ) -> str:  # fmt: skip
    """A lever picked by its label, with its range: the lever as typed (``path=spec``)."""
    labels = {o.label: o for o in options}
    choices = [NONE, *labels] if optional else list(labels)
    first = next((o.label for o in options if o.path == default), choices[0])
    label = st.selectbox(
        f"Lever {slot}" + (" (optional)" if optional else ""),
        choices,
        index=choices.index(first),
        key=f"launch-pick-{slot}",
    )
    if label == NONE:
        return ""
    option = labels[label]
    key = f"launch-{slot}-{option.path}"
    if option.choices:
        values = st.multiselect(
            "Values", option.choices, default=list(option.choices), key=f"{key}-values"
        )
        return option.chosen(values) if values else ""
    low, high, count = _default_range(option)
    step = 1.0 if option.integer else _step(option)
    unit = f" ({option.unit})" if option.unit else ""
    cast = int if option.integer else float
    bounds = {"min_value": option.low, "max_value": option.high, "step": step}
    bounds = {k: cast(v) for k, v in bounds.items() if v is not None}
    columns = st.columns(3)
    with columns[0]:
        lo = st.number_input(f"From{unit}", value=cast(low), key=f"{key}-low", **bounds)
    with columns[1]:
        hi = st.number_input(f"To{unit}", value=cast(high), key=f"{key}-high", **bounds)
    with columns[2]:
        n = st.number_input("Levels", 1, 50, count, key=f"{key}-levels")
    if hi < lo:
        st.error(f"{label}: 'To' must be at least 'From', got {hi:g} < {lo:g}.")
        return ""
    return option.text(lo, hi, int(n))


def _default_range(option: LeverOption) -> tuple[float, float, int]:
    """The range first offered: :data:`DEFAULTS`, else half to one and a half the value."""
    low_bound = option.low if option.low is not None else -float("inf")
    high_bound = option.high if option.high is not None else float("inf")
    low, high, count = DEFAULTS.get(option.path, (option.value * 0.5, option.value * 1.5, 3))
    low, high = max(low, low_bound), min(high, high_bound)
    if option.integer:
        low, high = round(low), round(high)
        count = min(count, int(high - low) + 1)
    high = max(low, high)
    return low, high, max(count, 1) if high > low else 1


def _step(option: LeverOption) -> float:
    span = (option.high or 1.0) - (option.low or 0.0)
    return 0.05 if span <= 2 else 0.5 if span <= 100 else 10.0


def typed_section(name: str, *, seeds: int, days: int) -> None:
    """Levers typed as ``path=spec`` (any field of the scenario), under "Advanced"."""
    with st.expander("Advanced: type levers as path=spec"), st.form("sweeps-launch"):
        lever_help = (
            "A lever as `path=spec`: `teams.*.oncall_size=2..6` (whole numbers), "
            "`services.*.spot_share=0..0.8:5` (5 levels), "
            "`segments.pro_us.price_usd_month=12,15,19` (a list)."
        )
        first = st.text_input(
            "Lever 1", value="teams.*.oncall_size=2..5", key="launch-lever-1", help=lever_help
        )
        second = st.text_input(
            "Lever 2 (optional)",
            value="services.*.spot_share=0..0.8:3",
            key="launch-lever-2",
            help=lever_help,
        )
        pressed = st.form_submit_button("Launch typed sweep", icon=":material/rocket_launch:")
    if pressed:
        levers = tuple(text.strip() for text in (first, second) if text.strip())
        with ui.guarded("the sweep"):
            launch(name, levers, seeds=seeds, days=days)


def launch(name: str, levers: tuple[str, ...], *, seeds: int, days: int) -> None:
    if not levers:
        st.error("Give at least one lever as `path=spec`.")
        return
    scenarios = folders.scenarios_folder()
    path = folders.scenario_path(scenarios, name)
    if len(levers) > MAX_LEVERS:
        st.error(
            f"A sweep from the dashboard takes at most {MAX_LEVERS} levers, got {len(levers)}."
        )
        return
    points = state.sweep_size(levers)
    total = points * seeds
    if total > MAX_RUNS:
        st.error(
            f"A sweep from the dashboard must have at most {MAX_RUNS} runs, got "
            f"{points} points × {seeds} seeds = {total}. Use fewer levels or seeds, "
            "or run it with `orgtwin sweep`."
        )
        return
    state.check_sweep(path, folders.folder_stamp(scenarios), levers)
    out = folders.claim_sweep_folder(folders.results_folder(), name)
    bar = st.progress(0.0, text=f"Starting {total} runs…")

    def progress(done: int, all_runs: int, elapsed_s: float, eta_s: float | None) -> None:
        left = f", about {eta_s:.0f} s left" if eta_s is not None else ""
        bar.progress(
            done / max(all_runs, 1), text=f"{done} of {all_runs} runs · {elapsed_s:.0f} s{left}"
        )

    result = state.launch_sweep(path, levers, seeds=seeds, days=days, out=out, progress=progress)
    bar.empty()
    st.session_state[LAUNCHED] = (
        f"Sweep saved in {out.name}: {total} runs in {result.wall_s:.1f} s "
        f"({result.runner}, {result.workers} worker(s)). It is open below."
    )
    st.session_state[OPENED] = out.name
    st.rerun()


def page() -> None:
    st.title("Sweeps")
    message = st.session_state.pop(LAUNCHED, None)
    if message:
        st.success(message, icon=":material/check_circle:")
    opened, launched = st.tabs(["Open results", "Launch a sweep"])
    with opened:
        open_section()
    with launched:
        launch_section()


page()
