"""Learn: a twin learned from a telemetry folder, its fit report, and saving it as a scenario.

Pick a telemetry folder from the telemetry root, an optional mapping file (also in the
root), a base scenario and a name; Learn runs :func:`orgtwin.learn.api.learn` (cached in
:mod:`orgtwin.dashboard.state`). The fit report shows the data read, the warnings and, per
behaviour, each parameter with its 95% interval and source and the held-out score. Save
writes the twin into the scenarios folder (never over an existing file), with its report
beside it, so it opens on the Explore page like any scenario.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl
import streamlit as st

from orgtwin.dashboard import charts, folders, state, ui
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
        pressed = st.form_submit_button("Learn", type="primary", icon=":material/school:")
    if pressed:
        chosen = None if mapping == NO_MAPPING else mapping
        twin = folders.safe_name(name or f"{folder}-twin")
        st.session_state[REQUEST] = (folder, chosen, base, twin)
        st.session_state.pop(SAVED, None)


# --------------------------------------------------------------------------- report


def learn_section(request: tuple[str, str | None, str, str]) -> None:
    """Learn (cached) and show the fit report and the Save button."""
    folder, mapping, base, name = request
    root, scenarios = folders.telemetry_folder(), folders.scenarios_folder()
    telemetry = folders.telemetry_path(root, folder)
    mapped = folders.mapping_path(root, mapping) if mapping else None
    base_path = folders.scenario_path(scenarios, base)
    with st.spinner(f"Learning from {folder}…"):
        try:
            key = (
                str(telemetry),
                folders.tree_stamp(telemetry),
                None if mapped is None else str(mapped),
                folders.tree_stamp(mapped) if mapped else 0,
                base_path,
                folders.folder_stamp(scenarios),
                name,
            )
            twin, report = state.learned(*key)
        except TelemetryError as exc:
            show_telemetry_error(exc)
            return
    via = f" through {mapping}" if mapping else ""
    ui.caption(f"{name}: learned from {folder}{via} over {base} · {len(report.fits)} fits")
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
        files.table(f"{behaviour} parameters", table)
    files.render()


def latency_chart(key: tuple[Any, ...], fits: list[Fit], files: ui.Downloads) -> None:
    """One service's learned latency curve against the hours it was learned from."""
    services = [fit.entity.split(" ", 1)[-1] for fit in fits]
    service = st.selectbox("Service", services, key="learn-latency-service")
    with ui.guarded("the latency chart"):
        points, curve = state.latency_fit(*key, service)
        chart = charts.curve_against_points(
            points,
            curve,
            "cpu",
            "latency_p50_ms",
            x_title="utilisation (CPU share)",
            y_title="own median latency (ms)",
        )
        title = f"Latency of {service}: learned curve and hours"
        st.altair_chart(chart.properties(title=title), width="stretch")
        ui.caption(f"{points.height:,} hours of {service}; the line is the learned curve.")
        files.chart(f"latency {service}", chart)


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
                    "value": float(f"{e.value:.4g}"),
                    "95% interval": interval(e.low, e.high),
                    "unit": e.unit or "—",
                    "source": SOURCE_WORDS.get(e.source, e.source),
                    "method": e.method or "—",
                    "n": e.n,
                }
            )
    return pl.DataFrame(rows, infer_schema_length=None)


def interval(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "—"
    return f"{low:.4g} – {high:.4g}"


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
            state.save_twin(path, twin, report, telemetry=folder, base=base)
            st.session_state[SAVED] = (
                f"Saved {file} in the scenarios folder, with {twin.name}.report.md and "
                f"{twin.name}.report.json beside it. Open it on the Explore page."
            )
            st.rerun()


def page() -> None:
    st.title("Learn a twin from telemetry")
    root = folders.telemetry_folder()
    names, mappings = folders.list_telemetry(root)
    scenarios = folders.list_scenarios(folders.scenarios_folder())
    if not names:
        st.info(
            f"No telemetry folders in {root} yet: write one with "
            f"`orgtwin synth SCENARIO --days 30 --out {root}/<name>`, or copy yours there "
            f"(or set `{folders.TELEMETRY_ENV}`)."
        )
        return
    if not scenarios:
        st.warning(f"No scenario files in {folders.scenarios_folder()} to start from.")
        return
    form_section(names, mappings, scenarios)
    request = st.session_state.get(REQUEST)
    if request is not None:
        with ui.guarded("learning the twin"):
            learn_section(request)


page()
