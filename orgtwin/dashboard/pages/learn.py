"""Learn: a twin learned from a telemetry folder, its fit report, and saving it as a scenario.

Pick a telemetry folder from the telemetry root, an optional mapping file (also in the
root), a base scenario and a name, and whether to drop bad rows (counted in the report);
Learn runs :func:`orgtwin.learn.api.learn` (cached in :mod:`orgtwin.dashboard.state`). The
fit report shows the data read, the warnings and, per behaviour, each parameter with its
95% interval and source and the held-out score, with the learned behaviour drawn against
the data: the latency curve against the hours, the restore-time distribution against a
team's incidents, the hour-of-week demand profile against the arrivals. Save
writes the twin into the scenarios folder (never over an existing file), with its report
beside it, so it opens on the Explore page like any scenario.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from orgtwin.dashboard import charts, folders, telemetry_state, ui
from orgtwin.errors import TelemetryError
from orgtwin.learn import Fit, HoldoutScore, LearnReport

REQUEST = "learn-request"
SAVED = "learn-saved"
NO_MAPPING = "(none: tables named as the twin's)"
SOURCE_WORDS = {"learned": "learned", "shrunk": "shrunk toward prior", "prior": "prior (kept)"}
BEHAVIOURS = {
    "structure": "Calls between services",
    "demand": "Demand profile",
    "latency": "Latency against utilisation",
    "change_failure": "Change failure",
    "incident_timing": "Time to detect and restore",
    "churn": "Churn hazard",
    "vendor_outages": "Vendor outages",
}
"""Each behaviour's title on the page (the report's order is kept)."""


# --------------------------------------------------------------------------- form


def form_section(root_names: list[str], mappings: list[str], scenarios: list[str]) -> None:
    """The choices and the Learn button; a press is kept in the session as a request."""
    with st.form("learn-form"):
        folder = st.selectbox(
            "Telemetry folder",
            root_names,
            key="learn-folder",
            help="A sub-folder of the telemetry root, holding one file (or folder) per table.",
        )
        mapping = st.selectbox(
            "Mapping file",
            [NO_MAPPING, *mappings],
            key="learn-mapping",
            help="Where the folder's files are not in the twin's shapes: a .yaml mapping "
            "file in the telemetry root.",
        )
        base = st.selectbox(
            "Base scenario",
            scenarios,
            key="learn-base",
            index=scenarios.index("baseline.yaml") if "baseline.yaml" in scenarios else 0,
            help="The twin starts from it: its structure, and its values wherever the "
            "telemetry says nothing.",
        )
        name = st.text_input(
            "Name of the twin",
            key="learn-name",
            max_chars=80,
            help="Letters, digits, '_', '.' and '-' (others become '_'); "
            "default: the telemetry folder's name with '-twin'.",
        )
        drop = st.checkbox(
            "Drop bad rows (counted in the report)",
            key="learn-drop",
            help="Rows that fail the checks (a wrong type, a negative count, an end before "
            "its start…) are left out and counted per reason under Data read, instead of "
            "refusing the folder.",
        )
        pressed = st.form_submit_button("Learn", type="primary", icon=":material/school:")
    if pressed:
        chosen = None if mapping == NO_MAPPING else mapping
        twin = folders.safe_name(name or f"{folder}-twin")
        st.session_state[REQUEST] = (folder, chosen, base, twin, bool(drop))
        st.session_state.pop(SAVED, None)


# --------------------------------------------------------------------------- report


def learn_section(request: tuple[str, str | None, str, str, bool]) -> None:
    """Learn (cached) and show the fit report and the Save button.

    Args:
        request: the form's choices: telemetry folder, mapping file (None: none), base
            scenario, the twin's name and whether to drop bad rows.
    """
    folder, mapping, base, name, *rest = request
    drop = bool(rest and rest[0])
    root, scenarios = folders.telemetry_folder(), folders.scenarios_folder()
    telemetry = folders.telemetry_path(root, folder)
    mapped = folders.mapping_path(root, mapping) if mapping else None
    base_path = folders.scenario_path(scenarios, base)
    dropping = " (dropping bad rows)" if drop else ""
    words = f"Learning from {folder}{dropping}: reading the tables and fitting each behaviour…"
    with st.spinner(words, show_time=True):
        try:
            key = (
                str(telemetry),
                folders.tree_stamp(telemetry),
                None if mapped is None else str(mapped),
                folders.tree_stamp(mapped) if mapped else 0,
                base_path,
                folders.folder_stamp(scenarios),
                name,
                drop,
            )
            twin, report = telemetry_state.learned(*key)
        except TelemetryError as exc:
            show_telemetry_error(exc)
            return
    via = f" through {mapping}" if mapping else ""
    dropped = sum(n for reasons in report.dropped.values() for n in reasons.values())
    bad = f" · {dropped:,} bad {'row' if dropped == 1 else 'rows'} dropped" if drop else ""
    ui.caption(f"{name}: learned from {folder}{via} over {base} · {len(report.fits)} fits{bad}")
    save_section(twin, report, folder=folder, base=base)
    show_report(report, key)


def show_telemetry_error(exc: TelemetryError) -> None:
    """The telemetry's problems as a list, each naming file, table, column and row."""
    lines = [f"- {ui.plain(line.strip())}" for line in exc.problems]
    body = "\n\n" + "\n".join(lines) if lines else ""
    st.error(
        f"The telemetry cannot be learned from: {ui.plain(str(exc.args[0]))}{body}",
        icon=":material/error:",
    )


def show_report(report: LearnReport, key: tuple[Any, ...]) -> None:
    """The data read, the warnings and, per behaviour, its parameters, scores and charts.

    Args:
        report: the fit report.
        key: the arguments of :func:`orgtwin.dashboard.telemetry_state.learned` that made it.
    """
    st.subheader("Data read")
    st.dataframe(data_table(report), hide_index=True, width="content")
    if report.warnings:
        st.subheader("Warnings")
        st.warning("\n".join(f"- {ui.plain(w)}" for w in report.warnings))
    st.subheader("Behaviours")
    files = ui.Downloads(ui.slug(report.scenario), key="dl-learn")
    files.table("data read", data_table(report))
    for behaviour, fits in by_behaviour(report.fits).items():
        title = BEHAVIOURS.get(behaviour, behaviour.replace("_", " ").capitalize())
        table = parameter_table(fits)
        learned = table.filter(pl.col("source") != SOURCE_WORDS["prior"]).height
        label = f"{title} — {len(fits)} {'entity' if len(fits) == 1 else 'entities'}, "
        with st.expander(label + f"{learned} of {table.height} parameters from the data"):
            st.dataframe(table, hide_index=True, width="stretch")
            sentences = [holdout_sentence(fit) for fit in fits]
            st.markdown("\n".join(f"- {ui.plain(s)}" for s in sentences))
            notes = sorted({w for fit in fits for w in fit.warnings})
            if notes:
                st.caption("\n".join(f"- {ui.plain(w)}" for w in notes))
            if behaviour == "latency":
                latency_chart(key, fits, files)
            elif behaviour == "incident_timing":
                restore_chart(key, fits, files)
            elif behaviour == "demand":
                demand_chart(key, fits, files)
        files.table(f"{behaviour} parameters", table)
    files.render()


def latency_chart(key: tuple[Any, ...], fits: list[Fit], files: ui.Downloads) -> None:
    """One service's learned latency curve against the hours it was learned from."""
    services = [fit.entity.split(" ", 1)[-1] for fit in fits]
    service = st.selectbox("Service", services, key="learn-latency-service")
    with ui.guarded("the latency chart"):
        points, curve = telemetry_state.latency_fit(*key, service)
        chart = charts.curve_against_points(
            points,
            curve,
            "utilisation",
            "latency_p50_ms",
            x_title="utilisation (CPU share, or load over capacity)",
            y_title="own median latency (ms)",
        )
        title = f"Latency of {service}: learned curve and hours"
        st.altair_chart(chart.properties(title=title), width="stretch")
        ui.caption(f"{points.height:,} hours of {service}; the line is the learned curve.")
        files.chart(f"latency {service}", chart)


def restore_chart(key: tuple[Any, ...], fits: list[Fit], files: ui.Downloads) -> None:
    """One team's restore times (an empirical CDF) against the learned distribution."""
    teams = [fit.entity.split(" ", 1)[-1] for fit in fits if fit.entity.startswith("team ")]
    if not teams:
        return
    team = st.selectbox("Team", teams, key="learn-restore-team")
    with ui.guarded("the restore-time chart"):
        observed, curve, still_open = telemetry_state.restore_fit(*key, team)
        if not curve.height:
            return
        chart = charts.distribution_against_data(
            observed,
            curve,
            x_title="time to restore (hours)",
            y_title="share of incidents restored",
        )
        title = f"Time to restore of team {team}: learned distribution and incidents"
        st.altair_chart(chart.properties(title=title), width="stretch")
        n = observed.height
        words = f"{n:,} {'incident' if n == 1 else 'incidents'} of team {team} caused by deploys"
        if still_open:
            words += (
                f" (and {still_open:,} still open at the end, counted as lasting at least "
                "until then)"
            )
        words += "; the steps are the data, the line is the learned distribution"
        kept = [
            e.source == "prior"
            for fit in fits
            if fit.entity == f"team {team}"
            for e in fit.estimates
            if e.name in ("restore_median_hours", "restore_sigma")
        ]
        if kept and all(kept):
            words += " (the base scenario's: the restores were too few to learn it from)"
        ui.caption(words + ".")
        files.chart(f"restore times {team}", chart)


def demand_chart(key: tuple[Any, ...], fits: list[Fit], files: ui.Downloads) -> None:
    """One segment's learned hour-of-week profile against its observed arrivals."""
    learned = [fit.entity.split(" ", 1)[-1] for fit in fits if fit.entity.startswith("segment ")]
    if not learned:
        return
    segment = st.selectbox("Segment", learned, key="learn-demand-segment")
    with ui.guarded("the demand chart"):
        observed, profile, own = telemetry_state.demand_fit(*key, segment)
        if not profile.height:
            return
        chart = charts.profile_against_observed(observed, profile, y_title="relative rate (mean 1)")
        title = f"Demand of {segment} over the week: learned profile and arrivals"
        st.altair_chart(chart.properties(title=title), width="stretch")
        whose = f"the arrivals of {segment}" if own else "all the arrivals"
        ui.caption(
            f"The grey line is {whose} averaged per hour of the week (in the segment's "
            "local time, scaled to mean 1); the blue line is the learned profile."
        )
        files.chart(f"demand profile {segment}", chart)


def data_table(report: LearnReport) -> pl.DataFrame:
    """Per table: rows read, rows dropped and why (dropped only with bad rows dropped)."""
    tables = sorted(set(report.rows) | set(report.dropped))
    dropped = [report.dropped.get(t, {}) for t in tables]
    return pl.DataFrame(
        {
            "table": tables,
            "rows read": [report.rows.get(t, 0) for t in tables],
            "rows dropped": [sum(d.values()) for d in dropped],
            "why dropped": [
                ", ".join(f"{why}: {n:,}" for why, n in sorted(d.items())) or "—" for d in dropped
            ],
        },
        schema_overrides={"rows read": pl.Int64, "rows dropped": pl.Int64},
    )


def by_behaviour(fits: list[Fit]) -> dict[str, list[Fit]]:
    out: dict[str, list[Fit]] = {}
    for fit in fits:
        out.setdefault(fit.behaviour, []).append(fit)
    return out


def parameter_table(fits: list[Fit]) -> pl.DataFrame:
    """One row per entity and parameter: value, 95% interval, unit, source, method, n."""
    rows: list[dict[str, Any]] = []
    for fit in fits:
        for e in fit.estimates:
            rows.append(
                {
                    "entity": fit.entity or "organisation",
                    "parameter": e.name,
                    "value": ui.significant(e.value),
                    "95% interval": ui.interval(e.low, e.high),
                    "unit": e.unit or "—",
                    "source": SOURCE_WORDS.get(e.source, e.source),
                    "method": e.method or "—",
                    "n": e.n,
                }
            )
    return pl.DataFrame(rows, infer_schema_length=None)


def holdout_sentence(fit: Fit) -> str:
    """The held-out score of a fit against its baseline, in a sentence."""
    who = fit.entity or "The organisation"
    h: HoldoutScore | None = fit.holdout
    if h is None:
        return f"{who}: too few rows to hold any out, so it was not scored on unseen data."
    verdict = "beats" if h.beats_baseline else "does not beat"
    better = "higher" if h.higher_is_better else "lower"
    return (
        f"{who}: on the later {h.n_test:,} rows (learned on the earlier {h.n_train:,}), "
        f"{h.metric} is {h.learned:.3g} against {h.baseline:.3g} for {h.baseline_name} "
        f"({better} is better): it {verdict} the baseline."
    )


# --------------------------------------------------------------------------- save


def save_section(twin: Any, report: LearnReport, *, folder: str, base: str) -> None:
    """Save the twin into the scenarios folder under its name, never overwriting."""
    scenarios = folders.scenarios_folder()
    file = f"{twin.name}.yaml"
    message = st.session_state.get(SAVED)
    if message:
        st.success(message, icon=":material/check_circle:")
    if st.button(f"Save to scenarios as {file}", key="learn-save", icon=":material/save:"):
        with ui.guarded("saving the twin"):
            path = folders.claim_file(scenarios, file)
            telemetry_state.save_twin(path, twin, report, telemetry=folder, base=base)
            st.session_state[SAVED] = (
                f"Saved {file} in the scenarios folder, with {twin.name}.report.md and "
                f"{twin.name}.report.json beside it. Open it on the Explore page."
            )
            st.rerun()


def page() -> None:
    st.title("Learn a twin from telemetry")
    choices = ui.telemetry_choices("to start from")
    if choices is None:
        return
    _, names, mappings, scenarios = choices
    form_section(names, mappings, scenarios)
    request = st.session_state.get(REQUEST)
    if request is not None:
        with ui.guarded("learning the twin"):
            learn_section(request)


page()
