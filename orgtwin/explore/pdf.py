"""The report of an exploration as a PDF, for print and archive, beside the HTML page.

It says what :func:`orgtwin.explore.html_report` says (both read
:func:`~orgtwin.explore.report.report_content`): page 1 the title, the verdict, the KPI
cards as a table and the ripple chain in words; then the dated series charts (each run's
mean line over its 95% band); last the provenance that reproduces it.

matplotlib draws it, imported only when a PDF is made, on :class:`matplotlib.figure.Figure`
objects through its PDF back end: no pyplot, no style or ``rcParams`` changed, so nothing
global moves. Text is set in the bundled DejaVu Sans (it has →, × and −), and the file
carries no creation date: the same exploration and ``made`` give the same bytes.

Example:
    >>> from orgtwin import explore
    >>> found = explore.explore("scenarios/price_increase.yaml", days=21, seeds=2)
    >>> pdf = pdf_report(found, "scenarios/price_increase.yaml", verdict="…", seed=7)
    >>> pdf.startswith(b"%PDF")
    True
"""

from __future__ import annotations

import io
import itertools
import textwrap
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from orgtwin.errors import ExploreError
from orgtwin.explore.exploration import Exploration
from orgtwin.explore.figures import HEADLINE_KPIS
from orgtwin.explore.report import CARDS_NOTE, COLOURS, TONES, card_tone, report_content

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PAGE_IN = (8.27, 11.69)
"""A4 portrait, inches."""
MARGIN_IN = 0.7
"""Blank space around a page's content, inches."""
FONT = "DejaVu Sans"
"""The one font: bundled with matplotlib, so every machine sets the same glyphs."""
INK = "#222222"
EM_WIDTH = 0.58
"""A character's mean width in DejaVu Sans, in ems, to wrap lines before drawing them."""
CARD_COLUMNS = ((0.0, "KPI"), (1.9, "Base"), (3.05, "With the change"),
                (4.2, "Difference (95% CI)"))  # fmt: skip
"""The KPI table's columns: left edge (inches from the margin) and heading."""
CHART_IN = 2.6
"""Height of one series chart with its title and dates, inches."""


def pdf_report(
    found: Exploration,
    scenario_path: str | Path,
    *,
    verdict: str,
    seed: int,
    series: Mapping[str, tuple[pl.DataFrame, str]] | None = None,
    start: datetime | None = None,
    kpis: Sequence[str] = HEADLINE_KPIS,
    made: datetime | None = None,
) -> bytes:
    """The exploration as a PDF: the HTML report's content, laid out for A4 paper.

    Args:
        found: the exploration (:func:`orgtwin.explore.explore` or ``explore_from``).
        scenario_path: the scenario file it ran (hashed for the provenance).
        verdict: the paragraph answering the scenario's question.
        seed: the base seed the runs' seeds derive from.
        series: charts by title: a frame with ``day``, ``mean``, ``low``, ``high``,
            ``run`` (base and change stacked) and its unit.
        start: the date of day 0 (the scenario's ``start``), to date the charts.
        kpis: the KPI cards shown, in order.
        made: when the report was made (now, in local time, when None); the bytes
            depend on nothing else.

    Returns:
        The PDF file's bytes.

    Raises:
        ExploreError: matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_pdf import PdfPages
    except ImportError:
        raise ExploreError(
            "a PDF report needs matplotlib, which is not installed "
            "(install it with: pip install 'orgtwin[app]')"
        ) from None

    report = report_content(
        found, scenario_path, verdict=verdict, seed=seed, series=series, start=start,
        kpis=kpis, made=made,
    )  # fmt: skip
    pages = _Pages()
    pages.write(report.title, size=17, weight="bold")
    pages.heading("Verdict")
    pages.write(report.verdict)
    pages.heading("Headline KPIs")
    _cards(pages, report.cards)
    pages.write(CARDS_NOTE, size=8, colour=TONES["same"])
    pages.heading("How the change travelled")
    pages.write(report.chain)
    for note in report.notes:
        pages.write(f"Not in the chain: {note}", size=8, colour=TONES["same"])
    _charts(pages, report.series, report.start)
    pages.heading("Provenance")
    for label, value in report.provenance.items():
        cells = [(0.0, 1.3, label, "bold", INK), (1.3, pages.width_in - 1.3, value, "normal", INK)]
        pages.row(cells, size=9)
    pages.number(report.title)
    out = io.BytesIO()
    metadata = {"Title": f"orgtwin: {report.title}", "CreationDate": None}
    with PdfPages(out, metadata=metadata) as pdf:
        for figure in pages.figures:
            pdf.savefig(figure)
    return out.getvalue()


def _cards(pages: _Pages, cards: list[dict[str, Any]]) -> None:
    """The KPI cards as a table: label, base, with the change, difference with interval."""
    edges = [x for x, _ in CARD_COLUMNS] + [pages.width_in]
    widths = [right - left - 0.1 for left, right in itertools.pairwise(edges)]
    head = [(x, w, name, "bold", INK) for (x, name), w in zip(CARD_COLUMNS, widths, strict=True)]
    pages.row(head, size=8.5)
    for card in cards:
        texts = (card["label"], card["base_text"], card["change_text"], card["text"])
        colours = (INK, INK, INK, TONES[card_tone(card)])
        cells = zip(edges, widths, texts, colours, strict=False)
        pages.row([(x, w, text, "normal", colour) for x, w, text, colour in cells], size=8.5)


def _charts(
    pages: _Pages, series: Mapping[str, tuple[pl.DataFrame, str]], start: datetime | None
) -> None:
    """The series charts on a page of their own, two side by side."""
    charts = [(title, df, unit) for title, (df, unit) in series.items() if df.height]
    if not charts:
        return
    pages.new_page()
    pages.heading("Over time")
    for i in range(0, len(charts), 2):
        row = charts[i : i + 2]
        for axes, (title, df, unit) in zip(pages.charts(len(row), of=2), row, strict=True):
            _chart(axes, df, f"{title} ({unit})", start)


def _chart(axes: Axes, df: pl.DataFrame, title: str, start: datetime | None) -> None:
    """Each run's mean line over its 95% band, dated when ``start`` is known."""
    from matplotlib import dates, ticker

    for i, run in enumerate(df["run"].unique(maintain_order=True)):
        rows = df.filter(pl.col("run") == run).sort("day")
        days = rows["day"].to_list()
        x = [start + timedelta(days=float(d)) for d in days] if start else days
        colour = COLOURS[i % len(COLOURS)]
        low, high, mean = (rows[c].to_numpy() for c in ("low", "high", "mean"))
        axes.fill_between(x, low, high, color=colour, alpha=0.18, linewidth=0)
        axes.plot(x, mean, color=colour, linewidth=1.5, label=str(run))
    axes.set_title(title, loc="left", fontsize=9, fontweight="bold", family=FONT,
                   parse_math=False)  # fmt: skip
    axes.yaxis.set_major_formatter(ticker.FuncFormatter(_tick))
    if start:
        axes.xaxis.set_major_locator(dates.AutoDateLocator(minticks=3, maxticks=5))
        axes.xaxis.set_major_formatter(dates.DateFormatter("%Y-%m-%d"))
    else:
        axes.set_xlabel("day", fontsize=7, family=FONT)
    axes.tick_params(labelsize=7, labelfontfamily=FONT)
    axes.tick_params(axis="x", labelrotation=20)
    legend = axes.legend(prop={"family": FONT, "size": 7}, frameon=False, loc="best")
    for text in legend.get_texts():
        text.set_parse_math(False)
    axes.grid(alpha=0.25, linewidth=0.5)


class _Pages:
    """A4 figures filled top to bottom, a new page when the next line or chart does not fit.

    Positions are inches: ``x`` from the left margin, the cursor ``y`` from the page's foot.
    """

    def __init__(self) -> None:
        self.figures: list[Figure] = []
        self.width_in = PAGE_IN[0] - 2 * MARGIN_IN
        self.new_page()

    def new_page(self) -> None:
        from matplotlib.figure import Figure

        self.figures.append(Figure(figsize=PAGE_IN))
        self.y = PAGE_IN[1] - MARGIN_IN

    def heading(self, text: str) -> None:
        self.room(0.7)
        self.y -= 0.15
        self.write(text, size=12.5, weight="bold")
        self.y -= 0.04

    def write(
        self, text: str, *, size: float = 10, weight: str = "normal", colour: str = INK
    ) -> None:
        """A paragraph, wrapped to the page's width."""
        self.row([(0.0, self.width_in, text, weight, colour)], size=size)
        self.y -= size / 72 * 0.5

    def row(self, cells: list[tuple[float, float, str, str, str]], *, size: float) -> None:
        """Cells side by side (``x``, width, text, weight, colour), each wrapped in its
        width; the row is as tall as its longest cell, and moves to the next page whole."""
        lead = size / 72 * 1.4
        wrapped = [_wrap(text, width, size) for _, width, text, _, _ in cells]
        self.room(lead * max(len(lines) for lines in wrapped))
        figure = self.figures[-1]
        for (x, _, _, weight, colour), lines in zip(cells, wrapped, strict=True):
            for n, line in enumerate(lines):
                at = (MARGIN_IN + x, self.y - n * lead)
                figure.text(*at, line, transform=figure.dpi_scale_trans, va="top", fontsize=size,
                            fontweight=weight, color=colour, family=FONT,
                            parse_math=False)  # fmt: skip
        self.y -= lead * max(len(lines) for lines in wrapped)

    def charts(self, n: int, *, of: int) -> list[Axes]:
        """``n`` axes side by side, each ``1/of`` of the width and one chart high."""
        self.room(CHART_IN)
        figure = self.figures[-1]
        width, gap = (self.width_in - 0.5 * (of - 1)) / of, 0.5
        boxes = [
            (MARGIN_IN + 0.45 + i * (width + gap), self.y - CHART_IN + 0.55, width - 0.45,
             CHART_IN - 0.9)
            for i in range(n)
        ]  # fmt: skip
        self.y -= CHART_IN
        w, h = PAGE_IN
        return [figure.add_axes((x / w, y / h, bw / w, bh / h)) for x, y, bw, bh in boxes]

    def room(self, height_in: float) -> None:
        """A new page unless ``height_in`` fits above the bottom margin."""
        if self.y - height_in < MARGIN_IN:
            self.new_page()

    def number(self, title: str) -> None:
        """Each page's foot: the title and ``page i of n``."""
        for i, figure in enumerate(self.figures, start=1):
            foot = f"orgtwin: {title} · page {i} of {len(self.figures)}"
            figure.text(MARGIN_IN, MARGIN_IN / 2, foot, transform=figure.dpi_scale_trans,
                        fontsize=7, color=TONES["same"], family=FONT, parse_math=False)  # fmt: skip


def _tick(value: float, _: object) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.4g}"


def _wrap(text: str, width_in: float, size: float) -> list[str]:
    """Lines of ``text`` that fit ``width_in`` at ``size`` points; a word (a hash, a lever
    path) is never broken."""
    chars = max(8, int(width_in * 72 / (EM_WIDTH * size)))
    return textwrap.wrap(text, chars, break_long_words=False, break_on_hyphens=False) or [""]
