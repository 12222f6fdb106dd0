"""Page furniture shared by every page: the error guard, bounded inputs, captions, downloads,
and the trust badge (:func:`trust_badge`: how far a scenario in use can be trusted, from
the scorecard saved beside it).

No computation lives here. :func:`guarded` is the one place that turns an exception into
words on the page: a scenario error lists each field path and what was wrong with it,
any other orgtwin error shows its message, and anything unexpected shows a short apology
with the message (the traceback goes to the server log, never to the browser).
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, time
from pathlib import Path
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from orgtwin.dashboard import folders
from orgtwin.errors import LeverError, OrgTwinError, ScenarioError
from orgtwin.fidelity import TRUST_WORDS, Scorecard

log = logging.getLogger("orgtwin.dashboard")
MAX_LISTED_ERRORS = ScenarioError.MAX_LISTED
"""Most problems of one scenario listed on the page."""


@contextmanager
def guarded(what: str) -> Iterator[None]:
    """Run a page section; show what went wrong in words instead of raising.

    Args:
        what: the section, for the apology (``"the run"``).
    """
    try:
        yield
    except ScenarioError as exc:
        show_scenario_error(exc)
    except OrgTwinError as exc:
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:
        log.exception("dashboard: %s failed", what)
        st.error(
            f"Sorry, {what} did not work: {type(exc).__name__}: {exc}. "
            "The details are in the server log.",
            icon=":material/error:",
        )


def show_scenario_error(exc: ScenarioError) -> None:
    """List every problem of an invalid scenario: file, field path, what was expected."""
    problems = exc.errors[:MAX_LISTED_ERRORS]
    lines = [f"- {_problem(error)}" for error in problems]
    if len(exc.errors) > len(problems):
        lines.append(f"- … and {len(exc.errors) - len(problems)} more")
    noun = "problem" if len(exc.errors) == 1 else "problems"
    if isinstance(exc, LeverError):
        title = "A lever does not fit the scenario"
    else:
        name = Path(exc.source).name if exc.source else "the scenario"
        title = f"**{name}** cannot be run ({len(exc.errors)} {noun})"
    st.error(f"{title}:\n\n" + "\n".join(lines), icon=":material/error:")


def _problem(error: ScenarioError) -> str:
    where = f"`{error.path}` " if error.path else ""
    hint = f" ({error.hint})" if error.hint else ""
    return f"{where}{error.problem}{hint}"


def plain(text: str) -> str:
    """``text`` with Markdown's emphasis marks escaped (lever paths hold ``*``)."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("_", "\\_")


def significant(value: float | None) -> float | None:
    """``value`` rounded to 4 significant figures, for a table (None stays None)."""
    return None if value is None else float(f"{value:.4g}")


def interval(low: float, high: float) -> str:
    """A 95% interval for a table: ``"1.2 – 3.4"``, or ``"—"`` where either end is NaN."""
    if math.isnan(low) or math.isnan(high):
        return "—"
    return f"{low:.4g} – {high:.4g}"


def telemetry_choices(purpose: str) -> tuple[Path, list[str], list[str], list[str]] | None:
    """The telemetry root, its folders and mapping files, and the scenario files; None
    (with a message saying how to fix it) where there is no folder or no scenario.

    Args:
        purpose: what the scenarios are for, ending the message where there is none
            (``"to start from"``).
    """
    root = folders.telemetry_folder()
    names, mappings = folders.list_telemetry(root)
    scenarios = folders.list_scenarios(folders.scenarios_folder())
    if not names:
        st.info(
            f"No telemetry folders in {root} yet: write one with "
            f"`orgtwin synth SCENARIO --days 30 --out {root}/<name>`, or copy yours there "
            f"(or set `{folders.TELEMETRY_ENV}`)."
        )
        return None
    if not scenarios:
        st.warning(f"No scenario files in {folders.scenarios_folder()} {purpose}.")
        return None
    return root, names, mappings, scenarios


TRUST_COLOURS = {"high": "green", "medium": "orange", "low": "red"}
"""The colour of each trust level's badge."""
NOT_VALIDATED = (
    "Not validated against production telemetry yet: validate it on the Validate page "
    "(or `orgtwin validate`) to see how far its what-ifs can be trusted."
)


def window_words(window: tuple[datetime, datetime]) -> str:
    """``"2026-01-19 to 2026-01-26"`` (hours shown where the window does not start or end
    at midnight; the end is not included)."""
    shown = [f"{t:%Y-%m-%d}" if t.time() == time() else f"{t:%Y-%m-%d %H:%M}" for t in window]
    return f"{shown[0]} to {shown[1]}"


def trust_words(card: Scorecard) -> str:
    """The trust level in a lead's words: ``"Trust: high — the twin mirrors production…"``."""
    return f"Trust: {card.trust} — {TRUST_WORDS[card.trust]}."


def trust_badge(card: Scorecard | None, *, name: str | None = None) -> None:
    """The trust level of a scenario in use, from the scorecard saved beside it: a
    coloured badge, the window it was validated on and the scorecard in a sentence; where
    none is saved, that it is not validated yet.

    Args:
        card: the saved scorecard (:func:`orgtwin.dashboard.telemetry_state.saved_scorecard`).
        name: the scenario, named at the start (where several are shown).
    """
    who = f"**{plain(name)}**: " if name else ""
    if card is None:
        st.caption(f":gray-badge[:material/help: not validated] {who}{NOT_VALIDATED}")
        return
    colour = TRUST_COLOURS.get(card.trust, "gray")
    seeds = "seed" if card.seeds == 1 else "seeds"
    st.caption(
        f":{colour}-badge[:material/verified: trust {card.trust}] {who}Validated against "
        f"production {window_words(card.window)} ({card.seeds} {seeds}): "
        f"{plain(card.summary())}."
    )


def comparison_in_words(comparison: pl.DataFrame) -> pl.DataFrame:
    """A comparison (:func:`orgtwin.compare`) for people: each KPI by its label, the base,
    the change, the difference and its 95% interval formatted for the KPI's unit, whether
    it is beyond noise and whether that is better or worse (the raw columns stay in the
    downloads)."""
    from orgtwin import KPIS

    rows = []
    for r in comparison.iter_rows(named=True):
        judged = {True: "better", False: "worse"}.get(r["better"], "")
        rows.append({
            "KPI": KPIS[r["kpi"]].label if r["kpi"] in KPIS else r["kpi"],
            **_move_in_words(r, r["base_mean"], r["change_mean"], r["unit"]),
            "Better or worse": judged if r["significant"] else "",
        })  # fmt: skip
    return pl.DataFrame(rows, schema=dict.fromkeys(
        ("KPI", *_MOVE_COLUMNS, "Better or worse"), pl.String))  # fmt: skip


def drill_in_words(rows: pl.DataFrame) -> pl.DataFrame:
    """A drill's rows (:attr:`orgtwin.explore.Drill.rows`) for people: who, the figure in
    words, the base, the change, the difference and its 95% interval formatted for the
    figure's unit, whether it is beyond noise, and its share of the total change."""
    out = []
    for r in rows.iter_rows(named=True):
        unit = r["unit"]
        out.append({
            "Who": r["entity"],
            "Figure": f"{r['figure']} ({unit})" if unit not in ("", "USD", "%") else r["figure"],
            **_move_in_words(r, r["base"], r["change"], unit),
            "Share of the change": "" if r["share"] is None else f"{r['share']:.0%}",
        })  # fmt: skip
    return pl.DataFrame(out, schema=dict.fromkeys(
        ("Who", "Figure", *_MOVE_COLUMNS, "Share of the change"), pl.String))  # fmt: skip


_MOVE_COLUMNS = ("Base", "With the change", "Difference", "95% interval", "Beyond noise")
"""The columns of a paired move in words (:func:`_move_in_words`)."""


def _move_in_words(row: dict[str, Any], base: float, change: float, unit: str) -> dict[str, str]:
    """A paired move (a row with ``delta``, ``ci_low``, ``ci_high`` and ``significant``)
    in :data:`_MOVE_COLUMNS`, formatted for ``unit``."""
    from orgtwin.units import format_delta, format_value

    low, high = row["ci_low"], row["ci_high"]
    return {
        "Base": format_value(base, unit),
        "With the change": format_value(change, unit),
        "Difference": format_delta(row["delta"], unit),
        "95% interval": "–" if low is None or high is None
        else f"{format_delta(low, unit)} to {format_delta(high, unit)}",
        "Beyond noise": "yes" if row["significant"] else "no",
    }  # fmt: skip


def caption(text: str) -> None:
    """The provenance line under a result: scenario, seeds and days that produced it."""
    st.caption(text)


def provenance(scenario: str, *, seeds: int, days: int, seed: int, base: str | None = None) -> str:
    """``"price_increase vs baseline · 8 seeds × 90 days · base seed 7"``."""
    versus = f" vs {base}" if base else ""
    runs = "seed" if seeds == 1 else "seeds"
    return f"{scenario}{versus} · {seeds} {runs} × {days} days · base seed {seed}"


def slug(*parts: object) -> str:
    """A file-name-safe join of ``parts`` (``price_increase-8x90d``)."""
    text = "-".join(str(p) for p in parts if p not in (None, ""))
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "orgtwin"


def parquet_bytes(df: pl.DataFrame) -> bytes:
    """``df`` as a Parquet file, in memory."""
    buffer = io.BytesIO()
    df.write_parquet(buffer)
    return buffer.getvalue()


def download_table(df: pl.DataFrame, name: str, *, key: str, label: str = "table") -> None:
    """CSV and Parquet download buttons for a table (files are made on click)."""
    left, right = st.columns(2)
    with left:
        st.download_button(
            f"{label.capitalize()} (CSV)",
            data=lambda: df.write_csv(),
            file_name=f"{name}.csv",
            mime="text/csv",
            key=f"{key}-csv",
            on_click="ignore",
            icon=":material/download:",
            width="stretch",
        )
    with right:
        st.download_button(
            f"{label.capitalize()} (Parquet)",
            data=lambda: parquet_bytes(df),
            file_name=f"{name}.parquet",
            mime="application/vnd.apache.parquet",
            key=f"{key}-parquet",
            on_click="ignore",
            icon=":material/download:",
            width="stretch",
        )


def download_chart(chart: alt.TopLevelMixin, name: str, *, key: str, label: str = "chart") -> None:
    """A download button for a chart as a stand-alone interactive HTML page."""
    st.download_button(
        f"{label.capitalize()} (HTML)",
        data=lambda: chart.to_html(),
        file_name=f"{name}.html",
        mime="text/html",
        key=key,
        on_click="ignore",
        icon=":material/download:",
        width="stretch",
    )


class Downloads:
    """What a page shows, gathered as it is drawn, offered for download at the end.

    Tables come as CSV and Parquet, charts as stand-alone HTML; every file name starts
    with ``name`` (scenario, seeds and days), so a file says what produced it.
    """

    def __init__(self, name: str, *, key: str) -> None:
        self.name, self.key = name, key
        self.tables: list[tuple[str, pl.DataFrame]] = []
        self.charts: list[tuple[str, alt.TopLevelMixin]] = []

    def table(self, label: str, df: pl.DataFrame) -> None:
        self.tables.append((label, df))

    def chart(self, label: str, chart: alt.TopLevelMixin | None) -> None:
        if chart is not None:
            self.charts.append((label, chart))

    def render(self) -> None:
        """An expander with a CSV and a Parquet button per table, an HTML one per chart."""
        with st.expander("Downloads", icon=":material/download:"):
            for label, df in self.tables:
                file = f"{self.name}-{slug(label)}"
                download_table(df, file, key=f"{self.key}-{slug(label)}", label=label)
            if not self.charts:
                return
            for column, (label, chart) in zip(
                st.columns(len(self.charts)), self.charts, strict=True
            ):
                with column:
                    file = f"{self.name}-{slug(label)}"
                    download_chart(
                        chart, file, key=f"{self.key}-chart-{slug(label)}", label=f"{label} chart"
                    )


def days_input(*, key: str, low: int, high: int, default: int) -> int:
    """Days per run, bounded, the bounds stated in the help."""
    return int(
        st.number_input(
            "Days",
            min_value=low,
            max_value=high,
            value=min(max(default, low), high),
            step=1,
            key=key,
            help=f"Days simulated per run, {low} to {high} (one tick is one hour).",
        )
    )


def seeds_input(*, key: str, high: int, default: int) -> int:
    """Seeds (replicates) per scenario, bounded, the bounds stated in the help."""
    return int(
        st.number_input(
            "Seeds",
            min_value=1,
            max_value=high,
            value=min(max(default, 1), high),
            step=1,
            key=key,
            help=f"Runs with different random seeds, 1 to {high}: the 95% intervals "
            "come from the spread across them.",
        )
    )


MAX_SEED = 2**31 - 1
"""Largest base seed offered (seeds of the runs derive from it)."""


def seed_input(*, key: str, default: int, help: str) -> int:
    """The base seed, 0 to :data:`MAX_SEED`."""
    return int(
        st.number_input(
            "Base seed",
            min_value=0,
            max_value=MAX_SEED,
            value=min(max(int(default), 0), MAX_SEED),
            step=1,
            key=key,
            help=f"{help} 0 to {MAX_SEED:,}.",
        )
    )
