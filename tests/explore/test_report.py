"""The reports of an exploration (orgtwin/explore/report.py, orgtwin/explore/pdf.py).

On the shared price increase exploration (fixture ``price_increase_exploration``): the
PDF reads back (pypdf) with the verdict, every KPI card, the chain, the dated charts and
the provenance in it; the same exploration and ``made`` give the same bytes; making it
changes none of matplotlib's global settings, and without matplotlib it says how to
install it; the HTML page says the same provenance.
"""

from __future__ import annotations

import hashlib
import io
import sys
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib
import polars as pl
import pytest
from pypdf import PdfReader

import orgtwin
from orgtwin.errors import ExploreError
from orgtwin.explore import chain_sentence, html_report, kpi_cards, pdf_report, series_bands

PATH = Path(__file__).resolve().parents[2] / "scenarios" / "price_increase.yaml"
MADE = datetime(2026, 12, 1, 9, 30)
VERDICT = "Raising the price pays: the margin grows beyond noise while churn barely moves."


@pytest.fixture(scope="module")
def report_args(price_increase_exploration: Any) -> dict[str, Any]:
    """What the dashboard hands both reports: two series charts, base and change stacked."""
    found = price_increase_exploration
    series = {}
    for title, kind, metric, unit in (("Active users", "segment", "active_users", "users"),
                                      ("On-call pages", "team", "pages", "pages/day")):  # fmt: skip
        frames = [
            series_bands(runs, entity_type=kind, metric=metric).with_columns(run=pl.lit(name))
            for name, runs in (("base", found.base), ("change", found.change))
        ]
        series[title] = (pl.concat(frames), unit)
    start = orgtwin.load_scenario(PATH).start
    return {"found": found, "scenario_path": PATH, "verdict": VERDICT, "seed": 7,
            "series": series, "start": start, "made": MADE}  # fmt: skip


@pytest.fixture(scope="module")
def pdf(report_args: dict[str, Any]) -> bytes:
    return pdf_report(**report_args)


def words(text: str) -> str:
    """Text with its line breaks and runs of spaces made single spaces."""
    return " ".join(text.split())


def rc_params() -> dict[str, Any]:
    """matplotlib's settings as stored: reading ``backend`` through ``rcParams`` would
    pick a backend, and load pyplot, if none was picked yet."""
    return dict(dict.items(matplotlib.rcParams))


def test_the_pdf_reads_back_with_the_whole_report(pdf: bytes, report_args: dict[str, Any]):
    found = report_args["found"]
    reader = PdfReader(io.BytesIO(pdf))
    assert pdf.startswith(b"%PDF") and len(reader.pages) >= 2
    first = words(reader.pages[0].extract_text())
    text = words(" ".join(page.extract_text() for page in reader.pages))
    assert first.startswith(f"{found.scenario_name} against {found.base_name}")
    assert "Raising the price pays: the margin grows" in first
    for card in kpi_cards(found.comparison):
        assert card["label"] in first and card["change_text"] in first, card["label"]
    assert words(chain_sentence(found.ripple.chain)) in first
    assert "→" in first and "price $12 → $15" in first  # DejaVu glyphs, "$" not maths
    assert "Active users (users)" in text and "On-call pages (pages/day)" in text
    assert f"{report_args['start']:%Y-%m}" in text  # the charts are dated
    digest = hashlib.sha256(PATH.read_bytes()).hexdigest()
    assert "SHA-256" in text and digest in text
    assert f"{found.seeds} seeds × {found.days} days, base seed 7" in text
    assert f"{MADE:%Y-%m-%d %H:%M}" in text and f"orgtwin {metadata.version('orgtwin')}" in text


def test_the_same_exploration_gives_the_same_bytes(pdf: bytes, report_args: dict[str, Any]):
    assert pdf_report(**report_args) == pdf
    later = pdf_report(**{**report_args, "made": datetime(2026, 12, 2)})
    assert later != pdf  # the time it was made is in it, nothing else that changes


def test_making_a_pdf_changes_no_global_setting(report_args: dict[str, Any]):
    pyplot = "matplotlib.pyplot" in sys.modules
    settings = rc_params()
    pdf_report(**report_args)
    assert rc_params() == settings
    assert ("matplotlib.pyplot" in sys.modules) == pyplot


def test_the_html_page_says_the_same_provenance(report_args: dict[str, Any]):
    page = html_report(**report_args)
    assert f"{MADE:%Y-%m-%d %H:%M}" in page
    assert hashlib.sha256(PATH.read_bytes()).hexdigest() in page
    assert '<div class="better">' in page and ".better{color:#1a7f37}" in page


def test_without_matplotlib_the_pdf_says_how_to_install_it(
    report_args: dict[str, Any], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_pdf", None)
    with pytest.raises(ExploreError, match=r"pip install 'orgtwin\[app\]'"):
        pdf_report(**report_args)
