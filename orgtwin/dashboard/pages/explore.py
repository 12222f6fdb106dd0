"""Explore: one scenario, its levers as controls, and what changes against its base.

Pick a scenario, set its levers, press Run: KPI cards with the change against the base
and its 95% interval over seeds, daily series with seed bands, and the ripple graph of
segments, services, vendors and teams coloured by how much each moved. Under the
scenario, its trust level where a scorecard is saved beside it (the Validate page).
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from orgtwin import KPIS, explore
from orgtwin.dashboard import charts, folders, state, ui
from orgtwin.units import format_delta, format_value

DEFAULT_SCENARIO = "baseline.yaml"
DEFAULT_DAYS = 90
DEFAULT_SEEDS = 8
MIN_DAYS = 7
CARDS_PER_ROW = 4
REQUEST = "explore-request"
WALL = "explore-wall-s"
UNITS_UNSAID = {"%", "USD", "fraction", "0-1"}
"""Units a card's value shows by itself (``99.95%``, ``$1,200``) or that have no name."""


def pick_scenario(names: list[str]) -> str:
    """The scenario select box (the bundled baseline first time)."""
    index = names.index(DEFAULT_SCENARIO) if DEFAULT_SCENARIO in names else 0
    return st.selectbox(
        "Scenario",
        names,
        index=index,
        key="explore-scenario",
        help="Scenario files in the scenarios folder (see the sidebar).",
    )


def control_widget(control: Any, key: str) -> Any:
    """One lever as a widget, chosen by its kind; the bounds and unit in its label/help."""
    label = f"{control.label} ({control.unit})" if control.unit else control.label
    bounds = ""
    if control.low is not None and control.high is not None:
        bounds = f" Allowed: {control.low:g} to {control.high:g}."
    help_text = f"{control.help or ''}{bounds} Path: `{control.path}`".strip()
    if control.kind == "bool":
        return st.toggle(label, value=bool(control.value), key=key, help=help_text)
    if control.kind == "choice":
        choices = list(control.choices)
        index = choices.index(control.value) if control.value in choices else 0
        return st.selectbox(label, choices, index=index, key=key, help=help_text)
    if control.kind == "int":
        return int(
            st.number_input(
                label,
                min_value=_int(control.low),
                max_value=_int(control.high),
                value=int(control.value),
                step=int(control.step or 1),
                key=key,
                help=help_text,
            )
        )
    if control.low is not None and control.high is not None:
        return float(
            st.slider(
                label,
                min_value=float(control.low),
                max_value=float(control.high),
                value=float(control.value),
                step=_step(control),
                key=key,
                help=help_text,
            )
        )
    return float(
        st.number_input(
            label, value=float(control.value), step=_step(control), key=key, help=help_text
        )
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _step(control: Any) -> float | None:
    return None if control.step is None else float(control.step)


def lever_form(path: str, info: state.ScenarioInfo) -> state.Request | None:
    """The run form: days, seeds, the scenario's levers, Run. The request when pressed."""
    with st.form("explore-form", border=True):
        left, mid, right = st.columns(3)
        with left:
            days = ui.days_input(
                key="explore-days",
                low=MIN_DAYS,
                high=explore.MAX_DAYS,
                default=min(DEFAULT_DAYS, info.days),
            )
        with mid:
            seeds = ui.seeds_input(
                key="explore-seeds", high=explore.MAX_SEEDS, default=DEFAULT_SEEDS
            )
        with right:
            seed = ui.seed_input(
                key=f"explore-seed-{info.name}",
                default=info.seed,
                help="The seeds of the runs derive from it; base and change run the same "
                "seeds (a paired comparison).",
            )
        values = lever_controls(info)
        pressed = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    if not pressed:
        return None
    changed = tuple((c.path, values[c.path]) for c in info.controls if values[c.path] != c.value)
    return state.Request(path, changed, days, seeds, seed)


def lever_controls(info: state.ScenarioInfo) -> dict[str, Any]:
    """The scenario's levers as widgets, three to a row; their current values by path."""
    if not info.controls:
        st.caption(
            "This scenario has no interventions, so there are no levers to set: "
            "Run compares it with its base as it is."
        )
        return {}
    st.markdown("**Levers**")
    values: dict[str, Any] = {}
    columns = st.columns(3)
    for i, control in enumerate(info.controls):
        with columns[i % 3]:
            values[control.path] = control_widget(control, f"lever-{info.name}-{control.path}")
    return values


def run_request(request: state.Request, stamp: int) -> explore.Exploration:
    """Run base and change (cached), with a progress bar while they run."""
    path, days, seeds, seed = request.path, request.days, request.seeds, request.seed
    bar = st.progress(0.0, text=f"Running the base: {seeds} seeds × {days} days…")
    started = time.perf_counter()
    state.base_runs(path, stamp, days, seeds, seed)
    bar.progress(0.45, text=f"Running the change: {seeds} seeds × {days} days…")
    state.change_runs(path, stamp, request.values, days, seeds, seed)
    bar.progress(0.9, text="Comparing and tracing the ripple…")
    found = state.exploration(*request.key(stamp))
    bar.empty()
    st.session_state.setdefault(WALL, {}).setdefault(request, time.perf_counter() - started)
    return found


def kpi_cards(cards: list[dict[str, Any]]) -> None:
    """The headline KPIs: value after the change, its delta and the delta's 95% interval."""
    for start in range(0, len(cards), CARDS_PER_ROW):
        row = cards[start : start + CARDS_PER_ROW]
        for column, card in zip(st.columns(CARDS_PER_ROW), row, strict=False):
            with column:
                kpi_card(card)


def kpi_card(card: dict[str, Any]) -> None:
    """One KPI card (``st.metric``): green when the change is better, red when worse,
    grey when the KPI has no good direction or the interval includes zero."""
    unit = card["unit"]
    if card["better"] is None or not card["significant"] or not card["delta"]:
        colour = "off"
    else:
        colour = "normal" if card["better"] == (card["delta"] > 0) else "inverse"
    low, high = card["ci_low"], card["ci_high"]
    interval = (
        f"±{format_delta((high - low) / 2, unit).lstrip('+')} (95% CI)"
        if low is not None and high is not None and high > low
        else "no interval (1 seed)"
        if low is None
        else ""
    )
    label = card["label"]
    if unit not in UNITS_UNSAID and unit.split("/")[0] not in label.lower():
        label += f" ({unit})"
    st.metric(
        label,
        format_value(card["change"], unit),
        delta=format_delta(card["delta"], unit),
        delta_color=colour,
        delta_arrow="auto" if card["delta"] else "off",
        delta_description=interval,
        help=f"{KPIS[card['kpi']].description}.  \nBase: {card['base_text']}; "
        f"with the change: {card['change_text']}; change {card['text']}.",
        border=True,
    )


def series_charts(request: state.Request, stamp: int) -> dict[str, Any]:
    """The daily series with seed bands, two to a row; the charts by name for download."""
    made = {}
    columns = st.columns(2)
    for i, (title, entity_type, metric, unit) in enumerate(state.SERIES):
        frame = state.bands(*request.key(stamp), entity_type, metric)
        chart = charts.band_chart(frame, title, unit)
        with columns[i % 2]:
            st.altair_chart(chart, width="stretch")
        made[title] = chart
    return made


def ripple_section(found: explore.Exploration) -> Any:
    """The ripple: the mechanism that carried the change, in words; the moves it does not
    reach; the graph; and a drill into any link or node."""
    ripple = found.ripple
    st.subheader("Ripple")
    st.markdown(f"**How the change travelled:** {chain_words(ripple)}")
    for note in ripple.notes:
        st.caption(f"Not in the chain: {plain(note)}")
    if len(ripple.chain) > 1:
        with st.expander("Why each link follows"):
            st.dataframe(chain_table(ripple), hide_index=True, width="stretch")
    chart = charts.ripple_chart(ripple.nodes, ripple.edges)
    st.altair_chart(chart, width="stretch")
    st.caption(
        f"Ripple graph: {ripple.nodes.height} nodes, {ripple.edges.height} links. "
        "Colour: how much each moved (green better, red worse); size: how far."
    )
    with st.expander("Every node"):
        st.dataframe(ripple.nodes, hide_index=True, width="stretch")
    drill_section(found)
    return chart


def chain_words(ripple: Any) -> str:
    """The chain as Markdown, each link green when better and red when worse."""
    if not ripple.chain:
        return plain(ripple.sentence)
    colour = {True: "green", False: "red", None: "gray"}

    def write(step: Any) -> str:
        text = plain(step.text)
        return text if step.key == "cause" else f":{colour[step.better]}[{text}]"

    return explore.chain_sentence(ripple.chain, write=write)


def plain(text: str) -> str:
    """Text for Markdown with its dollar signs kept as such (``$12 → $15`` is not maths)."""
    return text.replace("$", "\\$")


def chain_table(ripple: Any) -> list[dict[str, str]]:
    """Each link of the chain, the link it follows from and the mechanism between them."""
    words = {step.key: step.text for step in ripple.chain}
    return [
        {"link": step.text, "follows from": words.get(step.via, ""), "how": step.how}
        for step in ripple.chain[1:]
    ]


def drill_options(ripple: Any) -> dict[str, str]:
    """What a lead can drill into: the chain's links, the moves it does not reach, and
    the nodes that moved; key -> label."""
    options = {step.key: f"{step.text} (in the chain)" for step in ripple.chain[1:]}
    options |= {step.key: f"{step.text} (not in the chain)" for step in ripple.unexplained}
    moved = ripple.nodes.filter(ripple.nodes["significant"]).sort("impact")
    options |= {row["id"]: f"{row['kind']} {row['name']}" for row in moved.iter_rows(named=True)}
    return options


def drill_section(found: explore.Exploration) -> None:
    """Drill into a link of the chain or a node: which entities carried the move."""
    options = drill_options(found.ripple)
    if not options:
        return
    key = st.selectbox(
        "Drill into",
        list(options),
        index=None,
        format_func=options.__getitem__,
        key="explore-ripple-drill",
        placeholder="Pick a link of the chain or a node that moved",
        help="Which teams, services or segments carried the move, each with its 95% "
        "interval over seeds, and the events behind it.",
    )
    if key is None:
        return
    found_drill = explore.drill(found.base, found.change, key)
    st.markdown(f"**{found_drill.title.capitalize()}.** {plain(found_drill.words)}")
    st.dataframe(found_drill.rows, hide_index=True, width="stretch")
    if found_drill.events.height:
        with st.expander(f"The events behind it ({found_drill.events.height} shown)"):
            st.dataframe(found_drill.events, hide_index=True, width="stretch")


def results(request: state.Request, stamp: int) -> None:
    """Everything below the form, for the last request."""
    found = run_request(request, stamp)
    changed_name = state.change_label(found)
    st.subheader(f"{changed_name} against {found.base_name}")
    line = ui.provenance(
        changed_name,
        base=found.base_name,
        seeds=request.seeds,
        days=request.days,
        seed=request.seed,
    )
    changed = ", ".join(f"{p} = {v}" for p, v in request.values) or "levers as in the file"
    ran = st.session_state[WALL][request]
    ui.caption(f"{line} · {changed} · ran in {ran:.1f} s")
    kpi_cards(state.kpi_cards(*request.key(stamp)))
    ui.caption(
        "Change against the base, ± the half-width of its 95% interval over seeds: "
        "green better, red worse, grey when the interval includes zero or the KPI "
        "has no better direction."
    )
    with st.expander("Every KPI"):
        st.dataframe(found.comparison, hide_index=True, width="stretch")
    st.subheader("Over time")
    ui.caption("Daily mean over seeds; the band is the 95% interval of the mean. " + line)
    files = ui.Downloads(
        ui.slug(found.scenario_name, "vs", found.base_name, f"{request.seeds}x{request.days}d"),
        key="dl-explore",
    )
    files.table("comparison", found.comparison)
    files.table("run summaries", found.base.summary.vstack(found.change.summary))
    for title, chart in series_charts(request, stamp).items():
        files.chart(title, chart)
    files.chart("Ripple", ripple_section(found))
    files.table("ripple nodes", found.ripple.nodes)
    files.render()


def page() -> None:
    st.title("Explore a scenario")
    state.warm_up()
    folder = folders.scenarios_folder()
    names = folders.list_scenarios(folder)
    if not names:
        st.warning(f"No scenario files (*.yaml) in {folder}.")
        return
    name = pick_scenario(names)
    stamp = folders.folder_stamp(folder)
    path = None
    with ui.guarded("loading the scenario"):
        info = state.scenario_info(folders.scenario_path(folder, name), stamp)
        path = folders.scenario_path(folder, name)
        if info.description:
            st.caption(info.description)
        ui.trust_badge(state.saved_scorecard(path, info.name))  # how far its what-ifs hold
        request = lever_form(path, info)
        if request is not None:
            st.session_state[REQUEST] = request
    last = st.session_state.get(REQUEST)
    if path is None or last is None or last.path != path:
        return  # the scenario did not load, or nothing was run for it yet
    with ui.guarded("the run"):
        results(last, stamp)


page()
