"""Watch: is production still what the twin says it should be? The drift watch on a page.

Pick a telemetry folder from the telemetry root, the twin (a scenario from the scenarios
folder), a reference window (when production was as the twin learned it; default the
first two weeks of the telemetry) and the false-alarm budget; Watch runs
:func:`orgtwin.watch` (cached in :mod:`orgtwin.dashboard.state`). The page says how
many alarms on how many streams, lists the alarms in words (when, what, since when, how
big in the behaviour's unit, what stands downstream), and draws one stream at a time:
its residuals with the alarms marked (a dashed rule at each change point, a diamond where
the alarm was raised) and what production did against what the twin expected. For an
alarm whose behaviour has a learner, "Re-learn from the change point" learns that
behaviour again from the telemetry since the change point and shows the entity's
parameters before (the twin's) and after (re-learned, with their 95% intervals).
Nothing is saved. Under the twin, its scorecard's trust level where one is saved beside
it (the Validate page replays and scores it).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import streamlit as st

from orgtwin.dashboard import charts, folders, state, telemetry_state, ui

REQUEST = "watch-request"
RELEARN = "watch-relearn-request"
REFERENCE_DAYS = 14
"""The default reference window: the telemetry's first two weeks."""
BEHAVIOURS = {
    "latency": ("Latency", "service"),
    "errors": ("Failed requests", "service"),
    "demand": ("Demand", "segment"),
    "change_failure": ("Change failure", "team"),
    "churn": ("Churn", "segment"),
    "utilisation": ("Utilisation", "service"),
    "calls": ("Calls received", "service"),
    "client_latency": ("Client latency (the wait on its calls)", "service"),
    "restore": ("Time to restore", "team"),
    "vendor_outages": ("Outages", "vendor"),
}
"""Each watched behaviour in words, and what kind of entity it is watched for."""
NOT_RELEARNED = {
    "errors": "no learner estimates it from telemetry yet (the twin's error rates come "
    "from its scenario).",
    "utilisation": "it follows from the demand and the capacity per replica, which learning "
    "the latency curve against CPU sets: re-learn latency.",
    "calls": "it follows from the call graph, which learning the structure sets: re-learn "
    "the whole twin.",
    "client_latency": "it follows from its callees' latency and the call graph: where the "
    "callees mirror and this does not, the network between them moved.",
}
"""Why a watched behaviour with no learner of its own cannot be re-learned from the page."""
DIRECTION_WORDS = {"up": "higher than the twin", "down": "lower than the twin"}
SOURCE_WORDS = {"learned": "learned", "shrunk": "shrunk toward the twin's", "prior": "kept"}


def stream_words(behaviour: str, entity: str) -> str:
    """``"Latency of service api"``."""
    title, kind = BEHAVIOURS.get(behaviour, (behaviour.replace("_", " ").capitalize(), ""))
    return f"{title} of {kind} {entity}".replace("  ", " ")


def when(value: datetime | None) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d %H:%M}"


def size_words(magnitude: float, unit: str, shift_sd: float) -> str:
    """``"+20 ms (3.1 sd)"``."""
    return f"{magnitude:+.3g} {unit} ({shift_sd:+.2g} sd)"


# --------------------------------------------------------------------------- form


def form_section(root_names: list[str], scenarios: list[str]) -> None:
    """The choices and the Watch button; a press is kept in the session as a request."""
    root = folders.telemetry_folder()
    left, right = st.columns(2)
    with left:
        folder = st.selectbox(
            "Telemetry folder",
            root_names,
            key="watch-folder",
            help="A sub-folder of the telemetry root: production's telemetry to watch.",
        )
    with right:
        scenario = st.selectbox(
            "Twin",
            scenarios,
            key="watch-scenario",
            index=scenarios.index("baseline.yaml") if "baseline.yaml" in scenarios else 0,
            help="The scenario standing for production (a learned twin, usually): what "
            "the telemetry is held against.",
        )
    scenarios_root = folders.scenarios_folder()
    path = folders.scenario_path(scenarios_root, scenario)
    info = state.scenario_info(path, folders.folder_stamp(scenarios_root))
    ui.trust_badge(telemetry_state.saved_scorecard(path, info.name))  # its scorecard, if saved
    telemetry = folders.telemetry_path(root, folder)
    span = telemetry_state.telemetry_span(str(telemetry), folders.tree_stamp(telemetry))
    first = span[0].date() if span else date.today()
    last = span[1].date() if span else first + timedelta(days=REFERENCE_DAYS)
    one, two, three = st.columns(3)
    with one:  # keyed by folder: another folder starts from its own first two weeks
        start = st.date_input(
            "Reference window from",
            value=first,
            key=f"watch-ref-from-{folder}",
            help="A window in which production was as the twin says: the twin's misfit "
            "there sets how far each stream normally wanders.",
        )
    with two:
        end = st.date_input(
            "Reference window to (not included)",
            value=min(first + timedelta(days=REFERENCE_DAYS), last + timedelta(days=1)),
            key=f"watch-ref-to-{folder}",
            help="The window ends at the start of this day.",
        )
    with three:
        budget = st.number_input(
            "False alarms a week per behaviour",
            min_value=0.01,
            max_value=50.0,
            value=1.0,
            step=0.5,
            key="watch-budget",
            help="The most false alarms a week you accept for each behaviour (latency, "
            "demand…), split across its services, segments or teams: fewer means higher "
            "thresholds and later alarms.",
        )
    if span:
        ui.caption(f"{folder}: telemetry from {when(span[0])} to {when(span[1])} (UTC).")
    if st.button("Watch", type="primary", icon=":material/monitor_heart:", key="watch-run"):
        if not isinstance(start, date) or not isinstance(end, date) or end <= start:
            st.error("The reference window must end after it starts.", icon=":material/error:")
            return
        reference = (datetime.combine(start, datetime.min.time()),
                     datetime.combine(end, datetime.min.time()))  # fmt: skip
        st.session_state[REQUEST] = (folder, scenario, reference, float(budget))
        st.session_state.pop(RELEARN, None)


# --------------------------------------------------------------------------- results


def watch_section(request: tuple[str, str, tuple[datetime, datetime], float]) -> None:
    """Watch (cached) and show the summary, the alarms, a stream's charts and the re-learn."""
    folder, scenario, reference, budget = request
    root, scenarios = folders.telemetry_folder(), folders.scenarios_folder()
    telemetry = folders.telemetry_path(root, folder)
    key = (
        str(telemetry),
        folders.tree_stamp(telemetry),
        folders.scenario_path(scenarios, scenario),
        folders.folder_stamp(scenarios),
    )
    words = f"Watching {folder} against {scenario}: every stream and its threshold…"
    with st.spinner(words, show_time=True):
        found = telemetry_state.watched(*key, reference, budget)
    alarms, points = found.alarms, found.residuals
    streams = found.thresholds.select("behaviour", "entity").unique(maintain_order=True)
    st.subheader("Alarms")
    st.markdown(ui.plain(summary(alarms, streams.height, points, reference, budget)))
    files = ui.Downloads(ui.slug(folder, "watch", scenario.rsplit(".", 1)[0]), key="dl-watch")
    if alarms.height:
        table = alarms_table(alarms)
        st.dataframe(table, hide_index=True, width="stretch")
        files.table("alarms in words", table)
    files.table("alarms", alarms)
    files.table("thresholds", found.thresholds)
    if streams.height:
        stream_section(key, alarms, points, streams, files)
    files.render()


def summary(
    alarms: pl.DataFrame,
    streams: int,
    points: pl.DataFrame,
    reference: tuple[datetime, datetime],
    budget: float,
) -> str:
    """``"3 alarms on 12 streams since 2026-01-05 00:00 …"`` in one sentence."""
    n = alarms.height
    noun = "alarm" if n == 1 else "alarms"
    watched = "stream" if streams == 1 else "streams"
    start = points["time"].min() if points.height else None
    since = f" since {when(start)} (UTC)" if start is not None else ""  # type: ignore[arg-type]
    after = alarms.filter(pl.col("raised") >= reference[1]).height if n else 0
    allowed = "false alarm" if budget == 1 else "false alarms"
    return (
        f"{n} {noun} on {streams} {watched}{since}, {after} of them after the reference "
        f"window ({when(reference[0])} to {when(reference[1])}); the thresholds allow about "
        f"{budget:g} {allowed} a week per behaviour."
    )


def alarms_table(alarms: pl.DataFrame) -> pl.DataFrame:
    """The alarms in words: when raised, what drifted, since when, how big, downstream."""
    rows = [
        {
            "raised": when(a["raised"]),
            "what": f"{stream_words(a['behaviour'], a['entity'])}: "
            f"{DIRECTION_WORDS.get(a['direction'], a['direction'])}",
            "since": when(a["since"]),
            "how big": size_words(a["magnitude"], a["unit"], a["shift_sd"]),
            "downstream": a["reach"] or "—",
        }
        for a in alarms.iter_rows(named=True)
    ]
    return pl.DataFrame(rows, schema=dict.fromkeys(rows[0] if rows else (), pl.String))


def stream_section(
    key: tuple[Any, ...],
    alarms: pl.DataFrame,
    points: pl.DataFrame,
    streams: pl.DataFrame,
    files: ui.Downloads,
) -> None:
    """One stream (default: the first alarmed): its residuals and values over time with
    its alarms marked, and the re-learn of one of its alarms."""
    st.subheader("One stream over time")
    labels = {stream_words(b, e): (b, e) for b, e in streams.iter_rows()}
    first = alarms.row(0, named=True) if alarms.height else None
    default = stream_words(first["behaviour"], first["entity"]) if first else next(iter(labels))
    names = list(labels)
    label = st.selectbox(
        "Stream",
        names,
        index=names.index(default) if default in names else 0,
        key="watch-stream",
        help="A behaviour of one service, segment or team; first shown: the first alarmed.",
    )
    behaviour, entity = labels[label]
    mine = (pl.col("behaviour") == behaviour) & (pl.col("entity") == entity)
    stream = points.filter(mine).sort("time")
    marked = alarms.filter(mine)
    unit = str(stream["unit"][0]) if stream.height else ""
    n = marked.height
    with ui.guarded("the stream's charts"):
        chart = charts.residual_timeline(stream, marked)
        title = f"{label}: residuals against the twin"
        st.altair_chart(chart.properties(title=title), width="stretch")
        ui.caption(
            f"{stream.height:,} points; 0 is the twin exactly. "
            + (
                f"{n} {'alarm' if n == 1 else 'alarms'}: the dashed red lines are the change "
                "points, the red diamonds where each alarm was raised."
                if n
                else "No alarm on this stream."
            )
        )
        files.chart(f"residuals {behaviour} {entity}", chart)
        values = charts.observed_against_expected(stream, marked, y_title=unit)
        title = f"{label}: production against the twin ({unit})"
        st.altair_chart(values.properties(title=title), width="stretch")
        files.chart(f"values {behaviour} {entity}", values)
    relearn_section(key, marked, behaviour, entity, label)


def relearn_section(
    key: tuple[Any, ...], marked: pl.DataFrame, behaviour: str, entity: str, label: str
) -> None:
    """Re-learn the stream's behaviour from one alarm's change point; before and after."""
    if not marked.height and behaviour in telemetry_state.WATCH_LEARNERS:
        return
    st.subheader("Re-learn from the change point")
    if behaviour not in telemetry_state.WATCH_LEARNERS:
        title = BEHAVIOURS.get(behaviour, (behaviour, ""))[0]
        st.info(
            f"{title} cannot be re-learned on its own: "
            + NOT_RELEARNED.get(behaviour, "no learner estimates it from telemetry yet."),
            icon=":material/info:",
        )
        return
    choices = {
        f"raised {when(a['raised'])}, since {when(a['since'])}: "
        f"{size_words(a['magnitude'], a['unit'], a['shift_sd'])}": a["since"]
        for a in marked.iter_rows(named=True)
    }
    chosen = st.selectbox("Alarm", list(choices), key="watch-alarm")
    since = choices[chosen]
    wanted = (key, behaviour, entity, since)
    if st.button("Re-learn from the change point", key="watch-relearn", icon=":material/school:"):
        st.session_state[RELEARN] = wanted
    if st.session_state.get(RELEARN) != wanted:
        ui.caption(
            f"Learns the {label.lower()} again from the telemetry since {when(since)} only, "
            "and shows its values before and after. Nothing is saved."
        )
        return
    with (
        ui.guarded("re-learning"),
        st.spinner(f"Re-learning {label.lower()} since {when(since)}…", show_time=True),
    ):
        table, warnings = telemetry_state.relearned(*key, since, behaviour, entity)
        if not table.height:
            st.warning(
                f"Nothing was re-learned for {entity}: the telemetry since {when(since)} "
                "does not feed its learner." + "".join(f"\n- {ui.plain(w)}" for w in warnings)
            )
            return
        shown = before_after_table(table)
        st.dataframe(shown, hide_index=True, width="content")
        ui.caption(
            f"{label}: the twin's values, and those learned from the telemetry since "
            f"{when(since)} with their 95% intervals. Nothing is saved: re-learn and save a "
            "twin on the Learn page."
        )
        if warnings:
            st.caption("\n".join(f"- {ui.plain(w)}" for w in warnings))


def before_after_table(table: pl.DataFrame) -> pl.DataFrame:
    """The re-learned parameters for the page: before, after, interval, unit, source."""
    return pl.DataFrame(
        {
            "parameter": table["parameter"],
            "before (the twin)": [ui.significant(v) for v in table["before"]],
            "after (re-learned)": [ui.significant(v) for v in table["after"]],
            "95% interval": [ui.interval(lo, hi) for lo, hi in table.select("low", "high").rows()],
            "unit": [u or "—" for u in table["unit"]],
            "source": [SOURCE_WORDS.get(s, s) for s in table["source"]],
            "n": table["n"],
        },
        schema_overrides={"before (the twin)": pl.Float64, "after (re-learned)": pl.Float64},
    )


def page() -> None:
    st.title("Drift watch")
    choices = ui.telemetry_choices("to watch against")
    if choices is None:
        return
    _, names, _, scenarios = choices
    with ui.guarded("reading the telemetry"):
        form_section(names, scenarios)
    request = st.session_state.get(REQUEST)
    if request is not None:
        with ui.guarded("the watch"):
            watch_section(request)


page()
