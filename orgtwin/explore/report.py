"""A one-click report of an exploration: one self-contained HTML file to mail or archive.

It holds the verdict (:func:`orgtwin.explore.verdict`), the headline KPI cards with their
95% intervals (:func:`orgtwin.explore.kpi_cards`), the ripple chain in words, the daily
series as inline SVG (no script, no network: it opens anywhere, and prints), and the
provenance that reproduces it: the scenario file's SHA-256, the levers moved, days, the
seeds and base seed, and the orgtwin version.

Example:
    >>> import orgtwin
    >>> from orgtwin import explore
    >>> found = explore.explore("scenarios/price_increase.yaml", days=21, seeds=2)
    >>> page = html_report(found, "scenarios/price_increase.yaml", verdict="…", seed=7)
    >>> page.startswith("<!DOCTYPE html>") and "SHA-256" in page
    True
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import polars as pl

from orgtwin.explore.chain import chain_sentence
from orgtwin.explore.exploration import Exploration
from orgtwin.explore.figures import HEADLINE_KPIS, kpi_cards

WIDTH, HEIGHT, PAD = 460, 180, 36
"""Size of one series chart and its margin for the axis labels, px."""
COLOURS = ("#8c8c8c", "#1f77b4", "#ff7f0e", "#2ca02c")
"""The base in grey, then the change (as on the page)."""
TONES = {"better": "#1a7f37", "worse": "#c62828", "same": "#666666"}
"""The colour of a KPI card's change by :func:`card_tone`."""
STYLE = (
    "".join(f".{tone}{{color:{colour}}}" for tone, colour in TONES.items())
    + """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
.verdict{background:#eef5fc;border-left:4px solid #1f77b4;padding:.8em 1em}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:.6em}
.card{border:1px solid #ddd;border-radius:6px;padding:.5em .7em}
.card .v{font-size:1.3em}
.charts{display:grid;grid-template-columns:repeat(2,1fr);gap:1em}
table{border-collapse:collapse}td{padding:.15em .8em .15em 0;vertical-align:top}
small{color:#666}
"""
)
CARDS_NOTE = "Change against the base; ± the 95% interval of the change over seeds."
"""The line under the KPI cards."""


@dataclass(frozen=True)
class ReportContent:
    """What a report of an exploration says, worked out once for every format.

    Attributes:
        title: ``"<change> against <base>"``.
        verdict: the paragraph answering the scenario's question.
        cards: the KPI cards (:func:`orgtwin.explore.kpi_cards`), in order.
        chain: the ripple chain in words.
        notes: what moved outside the chain, a sentence each.
        series: charts by title: a bands frame (``day``, ``mean``, ``low``, ``high``,
            ``run``) and its unit.
        start: the date of day 0, to date the charts; None to count days.
        provenance: what reproduces the report, by row label (``"Scenario file"``, …).
    """

    title: str
    verdict: str
    cards: list[dict[str, Any]]
    chain: str
    notes: tuple[str, ...]
    series: dict[str, tuple[pl.DataFrame, str]]
    start: datetime | None
    provenance: dict[str, str]


def report_content(
    found: Exploration,
    scenario_path: str | Path,
    *,
    verdict: str,
    seed: int,
    series: Mapping[str, tuple[pl.DataFrame, str]] | None = None,
    start: datetime | None = None,
    kpis: Sequence[str] = HEADLINE_KPIS,
    made: datetime | None = None,
) -> ReportContent:
    """What the reports of an exploration say (:func:`html_report`, ``pdf_report``).

    Args:
        found: the exploration (:func:`orgtwin.explore.explore` or ``explore_from``).
        scenario_path: the scenario file it ran (hashed for the provenance).
        verdict: the paragraph answering the scenario's question.
        seed: the base seed the runs' seeds derive from.
        series: charts by title: a frame with ``day``, ``mean``, ``low``, ``high``,
            ``run`` (base and change stacked) and its unit.
        start: the date of day 0 (the scenario's ``start``), to date the charts.
        kpis: the KPI cards shown, in order.
        made: when the report was made (now, in local time, when None).

    Returns:
        The report's content, formatted for people.
    """
    ripple = found.ripple
    return ReportContent(
        title=f"{found.scenario_name} against {found.base_name}",
        verdict=verdict,
        cards=kpi_cards(found.comparison, kpis),
        chain=chain_sentence(ripple.chain) if ripple.chain else ripple.sentence,
        notes=tuple(ripple.notes),
        series=dict(series or {}),
        start=start,
        provenance=_provenance(found, Path(scenario_path), seed, made),
    )


def html_report(
    found: Exploration,
    scenario_path: str | Path,
    *,
    verdict: str,
    seed: int,
    series: Mapping[str, tuple[pl.DataFrame, str]] | None = None,
    start: datetime | None = None,
    kpis: Sequence[str] = HEADLINE_KPIS,
    made: datetime | None = None,
) -> str:
    """The exploration as one HTML page.

    Args:
        found: the exploration (:func:`orgtwin.explore.explore` or ``explore_from``).
        scenario_path: the scenario file it ran (hashed for the provenance).
        verdict: the paragraph answering the scenario's question.
        seed: the base seed the runs' seeds derive from.
        series: charts by title: a frame with ``day``, ``mean``, ``low``, ``high``,
            ``run`` (base and change stacked) and its unit.
        start: the date of day 0 (the scenario's ``start``), to date the charts.
        kpis: the KPI cards shown, in order.
        made: when the report was made (now, in local time, when None).

    Returns:
        The page, UTF-8 text, with nothing fetched when it opens.
    """
    report = report_content(
        found, scenario_path, verdict=verdict, seed=seed, series=series, start=start,
        kpis=kpis, made=made,
    )  # fmt: skip
    cards = "".join(_card(c) for c in report.cards)
    charts = "".join(_svg(df, name, unit, start) for name, (df, unit) in report.series.items())
    provenance = "".join(
        f"<tr><td><b>{_e(k)}</b></td><td>{_e(v)}</td></tr>" for k, v in report.provenance.items()
    )
    body = (
        f"<h1>{_e(report.title)}</h1>"
        f'<p class="verdict"><b>Verdict.</b> {_e(verdict)}</p>'
        f'<h2>Headline KPIs</h2><div class="cards">{cards}</div>'
        f"<p><small>{_e(CARDS_NOTE)}</small></p>"
        f"<h2>How the change travelled</h2><p>{_e(report.chain)}</p>"
        + "".join(f"<p><small>Not in the chain: {_e(n)}</small></p>" for n in report.notes)
        + (f'<h2>Over time</h2><div class="charts">{charts}</div>' if charts else "")
        + f"<h2>Provenance</h2><table>{provenance}</table>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>orgtwin: {_e(report.title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def card_tone(card: Mapping[str, Any]) -> Literal["better", "worse", "same"]:
    """Whether a KPI card's change is better, worse, or neither (no good direction, or
    within the noise), as the reports colour it."""
    better = card["better"]
    if better is None or not card["significant"]:
        return "same"
    return "better" if better else "worse"


def _e(text: object) -> str:
    return html.escape(str(text))


def _card(card: dict[str, Any]) -> str:
    return (
        f'<div class="card"><div>{_e(card["label"])}</div>'
        f'<div class="v">{_e(card["change_text"])}</div>'
        f'<div class="{card_tone(card)}">{_e(card["text"])}</div>'
        f"<small>base {_e(card['base_text'])}</small></div>"
    )


def _provenance(found: Exploration, path: Path, seed: int, made: datetime | None) -> dict[str, str]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    moved = ", ".join(f"{p} = {v}" for p, v in found.values.items()) or "none (as in the file)"
    return {
        "Scenario file": f"{path.name} (SHA-256 {digest})",
        "Levers moved": moved,
        "Runs": f"{found.seeds} seeds × {found.days} days, base seed {seed}; "
        f"seeds {', '.join(map(str, found.change.seeds))}",
        "orgtwin": _version(),
        "Made": f"{made or datetime.now().astimezone():%Y-%m-%d %H:%M %Z}".rstrip(),
    }


def _version() -> str:
    try:
        return metadata.version("orgtwin")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _svg(df: pl.DataFrame, title: str, unit: str, start: datetime | None) -> str:
    """A band chart as inline SVG: each run's mean line over its 95% band."""
    if df.height == 0:
        return ""
    x0, x1 = df["day"].min(), df["day"].max()
    y0, y1 = min(df["low"].min(), df["mean"].min()), max(df["high"].max(), df["mean"].max())
    span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0

    def at(day: float, value: float) -> str:
        x = PAD + (day - x0) / span_x * (WIDTH - PAD - 8)
        y = HEIGHT - PAD + 12 - (value - y0) / span_y * (HEIGHT - PAD - 4)
        return f"{x:.1f},{y:.1f}"

    parts, legend = [], []
    for i, run in enumerate(df["run"].unique(maintain_order=True)):
        rows = df.filter(pl.col("run") == run).sort("day")
        colour = COLOURS[i % len(COLOURS)]
        upper = [at(d, h) for d, h in zip(rows["day"], rows["high"], strict=True)]
        lower = [at(d, lo) for d, lo in zip(rows["day"], rows["low"], strict=True)][::-1]
        parts.append(f'<polygon points="{" ".join(upper + lower)}" fill="{colour}" '
                     'fill-opacity="0.18"/>')  # fmt: skip
        line = " ".join(at(d, m) for d, m in zip(rows["day"], rows["mean"], strict=True))
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        legend.append(f'<tspan fill="{colour}">■ {_e(run)}</tspan>')
    first, last = (_when(x0, start), _when(x1, start))
    axes = (
        f'<text x="{PAD}" y="{HEIGHT - 4}" font-size="10">{first}</text>'
        f'<text x="{WIDTH - 8}" y="{HEIGHT - 4}" font-size="10" text-anchor="end">{last}</text>'
        f'<text x="2" y="22" font-size="10">{y1:,.4g}</text>'
        f'<text x="2" y="{HEIGHT - PAD + 12}" font-size="10">{y0:,.4g}</text>'
    )
    return (
        f"<figure><figcaption><b>{_e(title)}</b> <small>({_e(unit)})</small></figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT + 16}" '
        f'role="img" aria-label="{_e(title)}">{"".join(parts)}{axes}'
        f'<text x="{PAD}" y="{HEIGHT + 12}" font-size="10">{" ".join(legend)}</text></svg>'
        "</figure>"
    )


def _when(day: float, start: datetime | None) -> str:
    return f"{start + timedelta(days=day):%Y-%m-%d}" if start else f"day {day:g}"
