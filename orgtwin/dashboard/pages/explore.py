"""Explore: one scenario, its levers as controls, and what changes against its base.

Pick a scenario, set its levers, press Run: KPI cards with the change against the base
and its 95% interval over seeds, daily series with seed bands, and the ripple graph of
segments, services, vendors and teams coloured by how much each moved. Under the
scenario, its trust level where a scorecard is saved beside it (the Validate page).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import streamlit as st

from orgtwin import KPIS, explore
from orgtwin.dashboard import address, charts, folders, state, telemetry_state, ui
from orgtwin.errors import OrgTwinError, ScenarioError
from orgtwin.units import format_delta, format_value

DEFAULT_SCENARIO = "baseline.yaml"
DEFAULT_DAYS = 90
DEFAULT_SEEDS = 8
MIN_DAYS = 7
CARDS_PER_ROW = 4
REQUEST = "explore-request"
RUN_KEY = "explore-run"
RIPPLE_CHART = "explore-ripple-chart"
DRILL = "explore-ripple-drill"
RIPPLE_CLICKED = "explore-ripple-clicked"
WALL = "explore-wall-s"
UNITS_UNSAID = {"%", "USD", "fraction", "0-1"}
"""Units a card's value shows by itself (``99.95%``, ``$1,200``) or that have no name."""


def pick_scenario(names: list[str], questions: dict[str, str]) -> str:
    """The scenario select box: each scenario by the question it answers (the bundled
    baseline first time, or the one the address asks for)."""
    index = 0
    if address.SCENARIO_KEY not in st.session_state and DEFAULT_SCENARIO in names:
        index = names.index(DEFAULT_SCENARIO)
    return st.selectbox(
        "Scenario",
        names,
        index=index,
        key=address.SCENARIO_KEY,
        format_func=lambda name: question_label(name, questions),
        help="The question each scenario in the scenarios folder answers (its file in "
        "brackets; see the sidebar for the folder).",
    )


def question_label(name: str, questions: dict[str, str]) -> str:
    """``"If we raise the Pro plan …? (price_increase)"``, or the file name without one."""
    question = " ".join(questions.get(name, "").split())
    return f"{question} ({Path(name).stem})" if question else name


# --------------------------------------------------------------------------- the form


def control_widget(control: Any, key: str, *, days: int, start: Any = None) -> Any:
    """One lever as a widget, chosen by its kind; the bounds and unit in its label/help.

    Args:
        days: days of the run asked for: a start day must fall before its end, and the
            help says so.
        start: the starting value (a link's), else the scenario's.
    """
    label = f"{control.label} ({control.unit})" if control.unit else control.label
    value = control.value if start is None else start
    bounds = ""
    if control.low is not None and control.high is not None:
        bounds = f" Allowed: {control.low:g} to {control.high:g}."
    if is_start(control):
        last = min(control.high, days - 1) if control.high is not None else days - 1
        bounds = f" Allowed: {control.low:g} to {last:g} (before the end of the {days}-day run)."
    help_text = f"{control.help or ''}{bounds} Path: `{control.path}`".strip()
    if control.kind == "bool":
        return st.toggle(label, value=bool(value), key=key, help=help_text)
    if control.kind == "choice":
        choices = list(control.choices)
        index = choices.index(value) if value in choices else 0
        return st.selectbox(label, choices, index=index, key=key, help=help_text)
    if control.kind == "int":
        return int(
            st.number_input(
                label,
                min_value=_int(control.low),
                max_value=_int(control.high),
                value=int(value),
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
                value=float(value),
                step=_step(control),
                key=key,
                help=help_text,
            )
        )
    return float(
        st.number_input(label, value=float(value), step=_step(control), key=key, help=help_text)
    )


def is_start(control: Any) -> bool:
    """Whether ``control`` is an intervention's start day (``interventions[i].at``)."""
    return control.path.startswith("interventions[") and control.path.endswith("].at")


def refusal(control: Any, value: Any, days: int) -> str | None:
    """Why ``value`` cannot run in a run of ``days`` days, in words; None when it can."""
    if is_start(control) and value >= days:
        return (
            f"must be before the end of the run (day {days}), got {value:g}: "
            f"start earlier or set Days above {value:g}"
        )
    return None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _step(control: Any) -> float | None:
    return None if control.step is None else float(control.step)


def lever_form(path: str, info: state.ScenarioInfo, *, run: bool = False) -> state.Request | None:
    """The run form: days, seeds, the scenario's levers, Run. The request when pressed
    (or when ``run``: a link asked for one), unless a control refuses its value: then
    the control says why and so does Run.

    Not an ``st.form``: each control takes effect as it is set, so limits, labels and
    refusals follow the other controls at once (a start day against Days); nothing runs
    before Run, and the last results stay below meanwhile.
    """
    link = address.asked(Path(path).name)
    with st.container(border=True):
        left, mid, right = st.columns(3)
        with left:
            days = ui.days_input(
                key="explore-days",
                low=MIN_DAYS,
                high=explore.MAX_DAYS,
                default=_link_int(link, "days", min(DEFAULT_DAYS, info.days)),
            )
        with mid:
            seeds = ui.seeds_input(
                key="explore-seeds",
                high=explore.MAX_SEEDS,
                default=_link_int(link, "seeds", DEFAULT_SEEDS),
            )
        with right:
            seed = ui.seed_input(
                key=f"explore-seed-{info.name}",
                default=_link_int(link, "seed", info.seed),
                help="The seeds of the runs derive from it; base and change run the same "
                "seeds (a paired comparison).",
            )
        values, refused = lever_controls(info, days=days, link=link, path=path)
        pressed = st.button("Run", type="primary", icon=":material/play_arrow:", key=RUN_KEY)
        if refused and (pressed or run):
            st.error(
                "Run is blocked until these are fixed: " + "; ".join(refused) + ".",
                icon=":material/block:",
            )
    if not (pressed or run) or refused:
        return None
    changed = tuple((c.path, values[c.path]) for c in info.controls if values[c.path] != c.value)
    return state.Request(path, changed, days, seeds, seed)


def _link_int(link: dict[str, str], name: str, default: int) -> int:
    try:
        return int(link[name]) if name in link else default
    except ValueError:
        st.warning(f"The link's {name} ({link[name]!r}) is not a whole number: kept {default}.")
        return default


def lever_key(info: state.ScenarioInfo, control: Any) -> str:
    """The widget key of a lever (per scenario, so each keeps its own values)."""
    return f"lever-{info.name}-{control.path}"


def current_labels(info: state.ScenarioInfo, path: str) -> dict[str, str]:
    """Each lever's label for the values last set (``…, from day 20`` once the start
    moved), by path; nothing where no lever moved or the values do not apply.

    An intervention's own ``label`` in the file (``weekly CAB for all teams``) may state
    the values it was written with: once one of its levers moved, it gives way to the
    plain description (``approval board as set``).
    """
    moved = {}
    for control in info.controls:
        value = st.session_state.get(lever_key(info, control), control.value)
        if value != control.value and not control.path.endswith(".active"):
            moved[control.path] = value  # (an intervention turned off keeps its label)
    if not moved:
        return {}
    try:
        stamp = folders.folder_stamp(folders.scenarios_folder())
        changed = explore.apply_controls(state.scenario(path, stamp), moved)
    except OrgTwinError:
        return {}  # the controls say why beside themselves
    labels = {control.path: control.label for control in explore.controls(changed)}
    for i, iv in enumerate(changed.interventions):  # a file's label may state old values
        if iv.label and any(p.startswith(f"interventions[{i}].") for p in moved):
            plain_name = f"{iv.model_copy(update={'label': None}).describe()} as set"
            mine = [p for p in labels if p.startswith(f"interventions[{i}].")]
            labels |= {p: labels[p].replace(iv.label, plain_name) for p in mine}
    return labels


def lever_controls(
    info: state.ScenarioInfo,
    *,
    days: int,
    link: dict[str, str] | None = None,
    path: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The scenario's levers as widgets, three to a row, each refusing a value that
    cannot run right under it.

    Returns:
        Their current values by path, and what blocks Run (``"Starts on day (…) must be
        before …"``), empty when nothing does.
    """
    if not info.controls:
        st.caption(
            "This scenario has no interventions, so there are no levers to set: "
            "Run compares it with its base as it is."
        )
        return {}, []
    st.markdown("**Levers**")
    values: dict[str, Any] = {}
    refused = []
    link = link or {}
    labels = current_labels(info, path) if path else {}
    columns = st.columns(3)
    for i, control in enumerate(info.controls):
        control = dataclasses.replace(control, label=labels.get(control.path, control.label))
        with columns[i % 3]:
            start = address.from_text(control, link[control.path]) if control.path in link else None
            if start is None:
                link.pop(control.path, None)  # refused once, in words: not again each rerun
            key = lever_key(info, control)
            values[control.path] = control_widget(control, key, days=days, start=start)
            why = refusal(control, values[control.path], days)
            if why is not None:
                st.error(plain(why), icon=":material/error:")
                refused.append(f"{control.label} {why}")
    return values, refused


def run_request(request: state.Request, stamp: int) -> explore.Exploration:
    """Run base and change in the worker pool (cached, the base shared across lever
    changes). Where every seed is not in yet, a first estimate from the first
    :data:`orgtwin.explore.ESTIMATE_SEEDS` seeds shows at once, labelled, and is replaced
    in place by the answer from every seed."""
    key = request.key(stamp)
    seeds, days = request.seeds, request.days
    started = time.perf_counter()
    state.start_exploration(*key)
    if state.nothing_moved(request.path, stamp, request.values):
        st.info(
            "Nothing moved: this scenario changes nothing of its own, so the change is the "
            "base itself and every difference below is zero. Move a lever and press Run.",
            icon=":material/info:",
        )
    if seeds > explore.ESTIMATE_SEEDS and not state.exploration_ready(*key):
        holder = st.empty()
        with holder.container():
            st.info(
                f"A first estimate from {explore.ESTIMATE_SEEDS} of {seeds} seeds × {days} "
                "days; the answer from every seed replaces it when they are in.",
                icon=":material/hourglass_top:",
            )
            state.exploration_estimate(*key)
            kpi_cards(state.kpi_cards(*key, estimate=True))
        found = state.exploration(*key)
        holder.empty()
    else:
        with st.spinner(f"Running base and change: {seeds} seeds × {days} days…"):
            found = state.exploration(*key)
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
    """The daily series with seed bands, two to a row, dated from the scenario's start;
    the charts by name for download."""
    made = {}
    columns = st.columns(2)
    start = state.scenario(request.path, stamp).start
    for i, (title, entity_type, metric, unit) in enumerate(state.SERIES):
        frame = state.bands(*request.key(stamp), entity_type, metric)
        chart = charts.band_chart(frame, title, unit, start=start)
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
    event = st.altair_chart(
        chart,
        width="stretch",
        on_select="rerun",
        selection_mode=charts.PICKED_NODE,
        key=RIPPLE_CHART,
    )
    st.caption(
        f"Ripple graph: {ripple.nodes.height} nodes, {ripple.edges.height} links. "
        "Colour: how much each moved (green better, red worse); size: how far. "
        "Click a node to drill into it."
    )
    with st.expander("Every node"):
        st.dataframe(ripple.nodes, hide_index=True, width="stretch")
    drill_section(found, clicked=charts.picked_node(event))
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


def drill_options(ripple: Any, clicked: str | None = None) -> dict[str, str]:
    """What a lead can drill into: the chain's links, the moves it does not reach, the
    nodes that moved, and the node ``clicked`` on the graph (moved or not); key -> label."""
    options = {step.key: f"{step.text} (in the chain)" for step in ripple.chain[1:]}
    options |= {step.key: f"{step.text} (not in the chain)" for step in ripple.unexplained}
    nodes = ripple.nodes.filter(ripple.nodes["significant"] | ripple.nodes["id"].is_in([clicked]))
    options |= {
        row["id"]: f"{row['kind']} {row['name']}"
        for row in nodes.sort("impact").iter_rows(named=True)
    }
    return options


def drill_section(found: explore.Exploration, *, clicked: str | None = None) -> None:
    """Drill into a link of the chain or a node: which entities carried the move. A node
    ``clicked`` on the graph is picked for the lead (once per click: the picker can move
    on from it)."""
    options = drill_options(found.ripple, clicked)
    if not options:
        return
    if clicked in options and clicked != st.session_state.get(RIPPLE_CLICKED):
        st.session_state[DRILL] = clicked  # before the picker is drawn: it opens there
    st.session_state[RIPPLE_CLICKED] = clicked
    key = st.selectbox(
        "Drill into",
        list(options),
        index=None,
        format_func=options.__getitem__,
        key=DRILL,
        placeholder="Pick a link of the chain or a node that moved",
        help="Which teams, services or segments carried the move, each with its 95% "
        "interval over seeds, and the events behind it.",
    )
    if key is None:
        return
    found_drill = explore.drill(found.base, found.change, key)
    st.markdown(f"**{found_drill.title.capitalize()}.** {plain(found_drill.words)}")
    st.dataframe(ui.drill_in_words(found_drill.rows), hide_index=True, width="stretch")
    with st.expander("Advanced: the drill's raw columns"):
        st.dataframe(found_drill.rows, hide_index=True, width="stretch")
    if found_drill.events.height:
        with st.expander(f"The events behind it ({found_drill.events.height} shown)"):
            st.dataframe(found_drill.events, hide_index=True, width="stretch")


def verdict_section(request: state.Request, stamp: int) -> str:
    """The paragraph that answers the scenario's question, over a horizon the lead picks
    (the run's days by default; beyond them the margin is a labelled projection)."""
    horizon = int(
        st.number_input(
            "Answer over (days)",
            min_value=request.days,
            max_value=explore.MAX_HORIZON_DAYS,
            value=request.days,
            step=1,
            key=f"explore-horizon-{request.days}",
            help=f"{request.days} (the run) to {explore.MAX_HORIZON_DAYS}. Beyond the run's "
            f"{request.days} days, the margin after people cost is a projection: each run's "
            "last week carried forward with its users growing or shrinking as they did.",
        )
    )
    text = state.verdict(*request.key(stamp), horizon)
    st.info(f"**Verdict.** {plain(text)}", icon=":material/gavel:")
    if horizon > request.days:
        ui.caption(
            f"Days {request.days + 1} to {horizon} are projected, not simulated: "
            "prices, costs and behaviours stay as at the end of the run."
        )
    stem = ui.slug(Path(request.path).stem, "report", f"{request.seeds}x{request.days}d")
    st.download_button(
        "Report (HTML)",
        data=lambda: state.report_html(*request.key(stamp), horizon),
        file_name=f"{stem}.html",
        mime="text/html",
        key="explore-report",
        on_click="ignore",
        icon=":material/description:",
        help="One self-contained page: the verdict, the KPI cards, the ripple in words, "
        "the charts and how to reproduce them (scenario file SHA-256, seeds, version).",
    )
    st.download_button(
        "Report (PDF)",
        data=lambda: state.report_pdf(*request.key(stamp), horizon),
        file_name=f"{stem}.pdf",
        mime="application/pdf",
        key="explore-report-pdf",
        on_click="ignore",
        icon=":material/picture_as_pdf:",
        help="The same report as a PDF, for print: A4 pages, charts dated.",
    )
    return text


def on_controls(exc: ScenarioError, info: state.ScenarioInfo) -> None:
    """A refusal of the library, told against the control the lead set (``Starts on day
    (…)``) rather than the lever path alone."""
    labels = {c.path: c.label for c in info.controls}
    lines = []
    for error in exc.errors:
        where = labels.get(error.path)
        what = f"**{plain(where)}** (`{error.path}`)" if where else f"`{error.path}`"
        lines.append(f"- {what} {plain(error.problem)}")
    st.error("The run was refused:\n\n" + "\n".join(lines), icon=":material/error:")


def moved_in_words(info: state.ScenarioInfo, values: state.Values) -> str:
    """The levers a run moved, by their labels, each value formatted for its unit
    (``"Price (segment pro_us): 24 USD/month"``); the paths are in the downloads."""
    controls = {c.path: c for c in info.controls}
    words = []
    for path, value in values:
        control = controls.get(path)
        label, unit = (control.label, control.unit) if control else (path, "")
        if isinstance(value, bool):
            shown = "on" if value else "off"
        elif isinstance(value, int | float):
            shown = f"{float(value):,g}"  # as the lead set it
            shown += f" {unit}" if unit and unit not in UNITS_UNSAID else ""
        else:
            shown = str(value)
        words.append(f"{label}: {shown}")
    return "; ".join(words) or "levers as in the file"


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
    changed = moved_in_words(state.scenario_info(request.path, stamp), request.values)
    ran = st.session_state[WALL][request]
    ui.caption(f"{line} · {changed} · ran in {ran:.1f} s")
    verdict_section(request, stamp)
    kpi_cards(state.kpi_cards(*request.key(stamp)))
    ui.caption(
        "Change against the base, ± the half-width of its 95% interval over seeds: "
        "green better, red worse, grey when the interval includes zero or the KPI "
        "has no better direction."
    )
    with st.expander("Every KPI"):
        st.dataframe(ui.comparison_in_words(found.comparison), hide_index=True, width="stretch")
    with st.expander("Advanced: the comparison's raw columns"):
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
    stamp = folders.folder_stamp(folder)
    run = address.read_address(names)
    name = pick_scenario(names, state.scenario_questions(str(folder), stamp))
    address.scenario_picked(name)
    path = info = None
    with ui.guarded("loading the scenario"):
        info = state.scenario_info(folders.scenario_path(folder, name), stamp)
        path = folders.scenario_path(folder, name)
        if info.description:
            st.caption(info.description)
        # how far its what-ifs hold:
        ui.trust_badge(telemetry_state.saved_scorecard(path, info.name))
        request = lever_form(path, info, run=run)
        if request is not None:
            st.session_state[REQUEST] = request
            address.write_address(request, name)
    last = st.session_state.get(REQUEST)
    if path is None or info is None or last is None or last.path != path:
        return  # the scenario did not load, or nothing was run for it yet
    with ui.guarded("the run"):
        try:
            results(last, stamp)
        except ScenarioError as exc:  # told against the control the lead set
            on_controls(exc, info)


page()
