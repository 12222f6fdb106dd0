"""What the dashboard's AppTest tests share: the app, run once and switched to a page,
and the text of a kind of element."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
TIMEOUT = 300
"""Seconds one script run may take (the first run starts the worker pool)."""


EXPLORE = "orgtwin/dashboard/pages/explore.py"


def start(page: str | None = EXPLORE) -> AppTest:
    """The app, run once (on the landing page), then switched to ``page`` (Explore unless
    given; None stays on the landing page)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    if page is not None:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    """The values of ``elements`` (``at.error``, ``at.main.caption``…), a line each."""
    return "\n".join(str(e.value) for e in elements)
