"""Validate: how far can a lead trust the twin? Its scorecard against production, on a page.

Pick a telemetry folder from the telemetry root, the twin (a scenario from the scenarios
folder), a window the twin did not learn from (default: the telemetry's last week),
seeds and a base seed; Validate replays the twin over the window fed what production
was fed there and scores it (:func:`orgtwin.fidelity.replay` and
:func:`orgtwin.fidelity.score`, cached in :mod:`orgtwin.dashboard.state`): the same
scorecard ``orgtwin validate`` writes. The page says the trust level in words, counts
the lines per verdict, lists the lines that do not mirror production in sentences, then
every line in a table (numbers in their units), and draws one service KPI over the
window: production, the twin (the seeds' range as a band) and persistence. *Save beside
the twin* writes the scorecard (Parquet, JSON, Markdown) into the twin's folder, where
the Explore, Compare and Watch pages (and ``orgtwin run``) read its trust level.

A page of its own, not a part of Watch: validating asks "how far can I trust this twin's
what-ifs" over one window and saves an answer; watching asks "has production moved since"
as the telemetry grows. Watch shows the saved trust level of the twin it watches against.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import streamlit as st

from orgtwin.dashboard import charts, folders, state, telemetry_state, ui
from orgtwin.fidelity import MAX_REPLAY_DAYS, Scorecard
from orgtwin.units import format_value

REQUEST = "validate-request"
SAVED = "validate-saved"
"""The last save's message, shown after the rerun that updates the trust badge."""
WINDOW_DAYS = 7
"""The default window: the telemetry's last week."""
DEFAULT_SEEDS, MAX_SEEDS = 5, 16
VERDICT_ORDER = {"off": 0, "biased": 1, "mirrors": 2}
"""Lines listed worst first."""
VERDICT_WORDS = {
    "mirrors": "Mirrors production",
    "biased": "Biased (a consistent offset)",
    "off": "Off",
}
KPI_WORDS = {
    "requests": "requests",
    "errors": "failed requests",
    "latency_p50_ms": "latency p50",
    "latency_p95_ms": "latency p95",
    "incidents_per_week": "incidents a week",
    "restore_hours": "time to restore (median)",
    "churn_per_1000_user_days": "churn",
    "change_failure_rate": "change failure rate",
    "mttr_hours": "mean time to restore",
}
"""Each scorecard KPI in words."""
BEHAVIOUR_WORDS = {
    "service": "service",
    "incidents": "team",
    "restore": "team",
    "churn": "segment",
    "dora": "",
}
"""What kind of entity each behaviour's lines are for."""
SHARE_UNITS = {"share of deploys"}
"""Units whose values are shares, shown as percentages."""
TABLE = {
    "verdict": pl.String,
    "what": pl.String,
    "production": pl.String,
    "the twin": pl.String,
    "persistence": pl.String,
    "unit": pl.String,
    "score (lower is better)": pl.String,
    "bias": pl.String,
    "points": pl.Int64,
}
"""The columns of the page's table of lines."""


# --------------------------------------------------------------------------- numbers


def number(value: float | None, unit: str) -> str:
    """A line's value for the table: a share as a percentage, else as the dashboard shows
    numbers (``"1,234"``, ``"6.2"``); ``"—"`` where there is none."""
    if value is None or not math.isfinite(value):
        return "—"
    if unit in SHARE_UNITS:
        return f"{value:.1%}"
    return format_value(value, unit)


def score_words(row: dict[str, Any]) -> str:
    """The twin's score and persistence's: ``"MAPE 4.2% (persistence 8.1%)"``."""
    twin, persistence = row["twin_score"], row["persistence_score"]
    if row["score"] == "mape":
        text = f"MAPE {twin:.1%}"
        other = None if persistence is None else f"{persistence:.1%}"
    elif row["score"] == "z":
        text = f"{twin:.1f} sd"
        other = None if persistence is None else f"{persistence:.1f} sd"
    else:
        text, other = f"KS {twin:.2f}", None
    return text if other is None else f"{text} (persistence {other})"


def bias_words(bias: float | None) -> str:
    """``"+4.2%"``; ``"—"`` where the observed was 0."""
    return "—" if bias is None or not math.isfinite(bias) else f"{bias:+.1%}"


def what(row: dict[str, Any]) -> str:
    """``"latency p95 of service api"``, ``"incidents a week of the organisation"``."""
    kpi = KPI_WORDS.get(row["kpi"], row["kpi"].replace("_", " "))
    kind, entity = BEHAVIOUR_WORDS.get(row["behaviour"], ""), row["entity"]
    if entity == "all":
        return f"{kpi} of the organisation"
    return f"{kpi} of {kind} {entity}".replace("  ", " ")


def lines_table(lines: pl.DataFrame) -> pl.DataFrame:
    """Every line for the page, worst first: what, observed, twin, persistence (in the
    line's unit), score, bias, verdict and points compared."""
    rows = sorted(lines.iter_rows(named=True), key=lambda r: VERDICT_ORDER.get(r["verdict"], 3))
    table = [
        {
            "verdict": r["verdict"],
            "what": what(r),
            "production": number(r["observed"], r["unit"]),
            "the twin": number(r["twin"], r["unit"]),
            "persistence": number(r["persistence"], r["unit"]),
            "unit": "%" if r["unit"] in SHARE_UNITS else r["unit"],
            "score (lower is better)": score_words(r),
            "bias": bias_words(r["bias"]),
            "points": r["n"],
        }
        for r in rows
    ]
    return pl.DataFrame(table, schema=TABLE)


# --------------------------------------------------------------------------- form


def form_section(names: list[str], scenarios: list[str]) -> None:
    """The choices and the Validate button; a press is kept in the session as a request."""
    root = folders.telemetry_folder()
    left, right = st.columns(2)
    with left:
        folder = st.selectbox(
            "Telemetry folder",
            names,
            key="validate-folder",
            help="A sub-folder of the telemetry root: production's telemetry, holding a "
            "window the twin did not learn from (and ideally the week before it).",
        )
    with right:
        scenario = st.selectbox(
            "Twin",
            scenarios,
            key="validate-scenario",
            index=scenarios.index("baseline.yaml") if "baseline.yaml" in scenarios else 0,
            help="The scenario standing for production (a learned twin, usually).",
        )
    scenarios_root = folders.scenarios_folder()
    path = folders.scenario_path(scenarios_root, scenario)
    info = state.scenario_info(path, folders.folder_stamp(scenarios_root))
    ui.trust_badge(telemetry_state.saved_scorecard(path, info.name))
    telemetry = folders.telemetry_path(root, folder)
    span = telemetry_state.telemetry_span(str(telemetry), folders.tree_stamp(telemetry))
    last = span[1].date() + timedelta(days=1) if span else date.today()
    first = max(span[0].date(), last - timedelta(days=WINDOW_DAYS)) if span else last
    one, two, three, four = st.columns(4)
    with one:  # keyed by folder: another folder starts from its own last week
        start = st.date_input(
            "Window from",
            value=first,
            key=f"validate-from-{folder}",
            help="A window the twin did not learn from: the twin is replayed over it, fed "
            "what production was fed there.",
        )
    with two:
        end = st.date_input(
            "Window to (not included)",
            value=last,
            key=f"validate-to-{folder}",
            help=f"The window ends at the start of this day; at most {MAX_REPLAY_DAYS} "
            "days are replayed at once.",
        )
    with three:
        seeds = st.number_input(
            "Seeds",
            min_value=1,
            max_value=MAX_SEEDS,
            value=DEFAULT_SEEDS,
            step=1,
            key="validate-seeds",
            help=f"Replays with different random seeds, 1 to {MAX_SEEDS}: how far the twin "
            "wanders by chance.",
        )
    with four:
        seed = ui.seed_input(
            key="validate-seed",
            default=0,
            help="The replays' seeds derive from it: the same inputs give the same scorecard.",
        )
    if span:
        ui.caption(f"{folder}: telemetry from {when(span[0])} to {when(span[1])} (UTC).")
    pressed = st.button("Validate", type="primary", icon=":material/verified:", key="validate-run")
    if pressed:
        st.session_state.pop(SAVED, None)
        st.session_state.pop(REQUEST, None)
        if not isinstance(start, date) or not isinstance(end, date) or end <= start:
            st.error("The window must end after it starts.", icon=":material/error:")
            return
        window = (datetime.combine(start, datetime.min.time()),
                  datetime.combine(end, datetime.min.time()))  # fmt: skip
        if span and (window[1] <= span[0] or window[0] > span[1]):
            st.error(
                f"The window {ui.window_words(window)} holds no telemetry of {folder}: it runs "
                f"from {when(span[0])} to {when(span[1])} (UTC). Pick a window inside it.",
                icon=":material/error:",
            )
            return
        st.session_state[REQUEST] = (folder, scenario, window, int(seeds), int(seed))


def when(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M}"


# --------------------------------------------------------------------------- results


def results_section(request: tuple[str, str, tuple[datetime, datetime], int, int]) -> None:
    """Validate (cached): the trust level, the counts, the lines, one KPI's chart, save."""
    folder, scenario, window, seeds, seed = request
    root, scenarios = folders.telemetry_folder(), folders.scenarios_folder()
    telemetry = folders.telemetry_path(root, folder)
    path = folders.scenario_path(scenarios, scenario)
    key = (str(telemetry), folders.tree_stamp(telemetry), path, folders.folder_stamp(scenarios),
           window, seeds, seed)  # fmt: skip
    runs = f"{seeds} {'seed' if seeds == 1 else 'seeds'}"
    words = f"Replaying {scenario} over {ui.window_words(window)} of {folder}, {runs}…"
    with st.spinner(words, show_time=True):
        card = telemetry_state.validation(*key)
    trust_section(card, folder)
    lines = card.lines
    files = ui.Downloads(ui.slug(folder, "scorecard", scenario.rsplit(".", 1)[0]), key="dl-val")
    table = lines_table(lines)
    st.subheader("Every line")
    st.dataframe(table, hide_index=True, width="stretch")
    ui.caption(
        "Production and the twin over the window (the twin: the mean over seeds); "
        "persistence: production one period earlier. Score: the twin's error (MAPE: mean "
        "error hour by hour; sd: standard deviations from the seeds' counts; KS: the "
        "largest gap between the distributions), lower is better. Bias: the twin's mean "
        "over production's, less 1."
    )
    files.table("scorecard", table)
    files.table("scorecard lines", lines)
    files.chart("service KPI", chart_section(key, lines))
    save_section(card, path, scenario)
    files.render()


def trust_section(card: Scorecard, folder: str) -> None:
    """The trust level in words, the lines per verdict, and those that do not mirror."""
    st.subheader("How far to trust the twin")
    counts = card.counts()
    total = sum(counts.values())
    if not total:
        st.info(
            "Nothing in the window could be scored, so there is no trust level: the "
            "telemetry there feeds no check (requests, incidents, user-days or deploys).",
            icon=":material/info:",
        )
        return
    box = {"high": st.success, "medium": st.warning, "low": st.error}[card.trust]
    box(f"**{ui.trust_words(card)}**", icon=":material/verified:")
    seeds = "seed" if card.seeds == 1 else "seeds"
    ui.caption(
        f"{card.scenario} replayed over {ui.window_words(card.window)} of {folder} "
        f"({card.seeds} {seeds}), fed what production was fed: "
        f"{ui.plain('; '.join(card.driven_by))}."
    )
    for column, (verdict, n) in zip(st.columns(len(counts)), counts.items(), strict=True):
        with column:
            st.metric(VERDICT_WORDS[verdict], f"{n:,}", help=f"{n / total:.0%} of {total} lines",
                      border=True)  # fmt: skip
    worse = card.lines.filter(pl.col("verdict") != "mirrors")
    worse = worse.sort(pl.col("verdict").replace_strict(VERDICT_ORDER, default=3))
    if worse.height:
        st.markdown("**Where the twin does not mirror production**")
        st.markdown(
            "\n".join(
                f"- **{r['verdict']}**: {ui.plain(r['words'])}" for r in worse.iter_rows(named=True)
            )
        )
    else:
        st.markdown("**Every line mirrors production.**")


def chart_section(key: tuple[Any, ...], lines: pl.DataFrame) -> Any:
    """One service KPI over the window (default: the first that does not mirror)."""
    service = lines.filter(pl.col("behaviour") == "service")
    if not service.height:
        return None
    st.subheader("One service KPI over the window")
    labels = {f"{what(r)} ({r['unit']})": r for r in service.iter_rows(named=True)}
    names = list(labels)
    worse = [n for n, r in labels.items() if r["verdict"] != "mirrors"]
    label = st.selectbox(
        "Service KPI",
        names,
        index=names.index(worse[0]) if worse else 0,
        key="validate-kpi",
        help="A service's hourly KPI; first shown: the first that does not mirror production.",
    )
    row = labels[label]
    with ui.guarded("the chart"):
        frame = telemetry_state.replay_series(*key, row["entity"], row["kpi"])
        title = f"{label[0].upper()}{label[1:]}: production, the twin and persistence"
        chart = charts.band_chart(frame, title, row["unit"])
        st.altair_chart(chart, width="stretch")
        ui.caption(
            f"Hour by hour; day 0 is {when(key[4][0])} (UTC), the window's start. The "
            "twin's line is the mean over seeds, its band the seeds' range; persistence is "
            f"production one period earlier. {ui.plain(row['words'])}"
        )
        return chart


def save_section(card: Scorecard, path: str, scenario: str) -> None:
    """Save the scorecard beside the twin (then rerun, so the trust badge above shows it);
    the Markdown to download."""
    st.subheader("Save")
    left, right = st.columns(2)
    with left:
        pressed = st.button(
            f"Save beside {scenario}",
            key="validate-save",
            icon=":material/save:",
            width="stretch",
            disabled=not card.lines.height,
            help="Writes scorecard.parquet, scorecard.json and scorecard.md into the twin's "
            "folder (each whole or not at all), where Explore, Compare, Watch and "
            "`orgtwin run` show its trust level. A folder holds one scorecard: saving "
            "replaces the one there.",
        )
    with right:
        st.download_button(
            "Scorecard (Markdown)",
            data=card.to_markdown,
            file_name=f"{ui.slug(card.scenario, 'scorecard')}.md",
            mime="text/markdown",
            key="validate-markdown",
            on_click="ignore",
            icon=":material/download:",
            width="stretch",
        )
    if pressed:
        with ui.guarded("saving the scorecard"):
            paths, replaced = telemetry_state.save_scorecard(card, path)
            names = ", ".join(sorted(p.name for p in paths.values()))
            also = f" It replaced the scorecard of {replaced} saved there." if replaced else ""
            st.session_state[SAVED] = (
                f"Saved beside {scenario}: {names}.{also} Explore, Compare and Watch now "
                f"show its trust level ({card.trust})."
            )
            st.rerun()
    if st.session_state.get(SAVED):
        st.success(st.session_state[SAVED], icon=":material/check_circle:")


def page() -> None:
    st.title("Validate the twin")
    choices = ui.telemetry_choices("to validate")
    if choices is None:
        return
    _, names, _, scenarios = choices
    with ui.guarded("reading the telemetry"):
        form_section(names, scenarios)
    request = st.session_state.get(REQUEST)
    if request is not None:
        with ui.guarded("the validation"):
            results_section(request)


page()
