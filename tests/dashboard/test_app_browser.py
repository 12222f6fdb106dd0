"""End to end in a real browser: ``streamlit run app.py``, driven by headless Chromium.

The test starts the dashboard on 127.0.0.1 at a free port, opens the Explore page in
Debian's ``/usr/bin/chromium`` through Playwright, sets a short run, raises the US Pro
price with the keyboard, presses Run and reads the KPI cards. It saves a screenshot to
``test-artifacts/`` and fails on any browser console error or uncaught page error.
The server is stopped by its pid afterwards.

Chromium comes from apt (``.ci/run`` and ``make browser`` install it); never from
``playwright install``, which downloads a browser.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import psutil
import pytest

from orgtwin.sweeps import keeper
from orgtwin.sweeps.api import SweepResult

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_S = 90
RUN_S = 180
LANDING = "What would happen if…?"
"""The landing page's heading."""
PRICE_LEVER = "Price (segment pro_us) (USD/month)"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium (make browser / .ci/run)",
    ),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is missing: pip install -e '.[dev]'"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    pytest.fail(
        f"streamlit did not answer /_stcore/health in {SERVER_START_S} s:\n{log.read_text()}"
    )


class Server(NamedTuple):
    url: str
    pid: int
    results: Path
    telemetry: Path


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Server]:
    """``streamlit run app.py`` on 127.0.0.1 at a free port. Stopped by pid."""
    port = free_port()
    log = tmp_path / "streamlit.log"
    env = os.environ | {
        "ORGTWIN_SCENARIOS": str(ROOT / "scenarios"),
        "ORGTWIN_RESULTS": str(tmp_path / "results"),
        "ORGTWIN_TELEMETRY": str(tmp_path / "telemetry"),  # empty unless a test writes one
    }
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
    ]
    with log.open("w") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server, log)
        yield Server(url, server.pid, tmp_path / "results", tmp_path / "telemetry")
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


@contextmanager
def chromium(tmp_path: Path, *, height: int = 2000) -> Iterator[Any]:
    """Debian's Chromium, headless, with a fresh profile (``--user-data-dir``); closed
    afterwards."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": height},
        )
        try:
            yield browser
        finally:
            browser.close()


def watched_tab(browser: Any, problems: list[str]) -> Any:
    """A new tab whose console errors and uncaught page errors go into ``problems``."""
    page = browser.new_page()

    def console(message: Any) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text} ({message.location})")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return page


def open_landing(page: Any, url: str) -> None:
    """Open the app and wait for its landing page (the server may still be starting)."""
    page.goto(url)
    sync_api.expect(page.get_by_role("heading", name=LANDING)).to_be_visible(
        timeout=SERVER_START_S * 1000
    )


def set_run(page: Any, *, days: int, seeds: int, slider: str, steps: int, to: str) -> None:
    """Type Days and Seeds, and move the slider named ``slider`` ``steps`` steps right
    with the keyboard, as a lead would; wait until it shows ``to``."""
    page.get_by_role("spinbutton", name="Days").fill(str(days))
    page.get_by_role("spinbutton", name="Seeds").fill(str(seeds))
    moved = page.get_by_role("slider", name=slider)
    moved.focus()
    for _ in range(steps):
        moved.press("ArrowRight")
    sync_api.expect(moved).to_have_attribute("aria-valuetext", to)


def small_telemetry(folder: Path, *, days: int) -> Path:
    """Telemetry of the bundled baseline with 200 users in each of its small segments
    (watched or validated against ``baseline.yaml`` itself, with more: lines move)."""
    from orgtwin.runs.synth import synth
    from orgtwin.scenario import load_scenario

    small = load_scenario(
        ROOT / "scenarios" / "baseline.yaml",
        overrides={"segments": {s: {"n_users": 200} for s in ("free", "pro_us", "pro_eu")}},
    )
    return synth(small, days=days, seed=1, out=folder)


def assert_screenshot(shot: Path) -> None:
    """``shot`` is a PNG with something drawn in it."""
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000


def test_explore_change_a_lever_and_run(dashboard: Server, tmp_path: Path):
    problems: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium(tmp_path, height=3200) as browser:
        page = watched_tab(browser, problems)
        open_landing(page, dashboard.url)  # then Explore from the sidebar
        page.get_by_role("link", name="Explore", exact=True).click()
        run = page.get_by_role("button", name="Run")
        run.wait_for(timeout=SERVER_START_S * 1000)
        sync_api.expect(page.get_by_role("heading", name="Explore a scenario")).to_be_visible()

        # the price 12.00 → 15.00 in steps of 0.50
        set_run(page, days=14, seeds=2, slider=PRICE_LEVER, steps=6, to="15.00")
        run.click()

        cards = page.get_by_test_id("stMetric")
        revenue = cards.filter(has_text="Revenue")
        revenue.wait_for(timeout=RUN_S * 1000)
        sync_api.expect(page.get_by_text("Ripple graph: 32 nodes")).to_be_visible(
            timeout=RUN_S * 1000
        )
        text = revenue.inner_text()
        assert "+$" in text, text  # a higher price: more revenue
        assert cards.count() == 13  # margin after people cost among them
        caption = page.get_by_text("baseline as set vs baseline · 2 seeds × 14 days").first
        sync_api.expect(caption).to_contain_text("Price (segment pro_us): 15 USD/month")
        page.wait_for_timeout(1500)  # let the charts draw for the screenshot
        page.screenshot(path=str(ARTIFACTS / "app-explore.png"))
    assert not problems, "\n".join(problems)


def test_two_sessions_launch_sweeps_at_once_and_both_finish(dashboard: Server, tmp_path: Path):
    """Both sweeps finish, each on the runner ``auto`` chose for it (serially here: 24
    short runs are less work than starting Ray), and the server outlives them. The runs
    are of 30 days: ``auto`` picks Ray once a pilot run takes over 2.3 s, and two pilots
    of 60 days at once on a slow, busy 2-core machine once did."""
    problems: list[str] = []
    with chromium(tmp_path) as browser:
        pages = [browser.new_page() for _ in range(2)]  # two tabs: two sessions
        for page in pages:
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(f"{dashboard.url}/sweeps")
            page.get_by_role("tab", name="Launch a sweep").click(timeout=SERVER_START_S * 1000)
            page.get_by_role("spinbutton", name="Days").fill("30")
        for page in pages:  # both at once
            page.get_by_role("button", name="Launch sweep").click()
        done = []
        for page in pages:
            saved = page.get_by_text("Sweep saved in")
            saved.wait_for(timeout=2 * RUN_S * 1000)
            done.append(saved.inner_text())
    assert not problems, "\n".join(problems)
    assert all("24 runs" in text and "(serial, " in text for text in done), done
    assert len({text.split(":")[0] for text in done}) == 2  # two folders
    assert psutil.pid_exists(dashboard.pid)
    sweeps = sorted(p for p in dashboard.results.iterdir() if (p / "manifest.json").is_file())
    assert len(sweeps) == 2
    for folder in sweeps:
        runs = SweepResult.load(folder).runs
        assert runs.height == 24 and runs["error"].null_count() == 24
    deadline = time.monotonic() + 60  # the runtime stops once the last sweep is done
    while keeper.started_by(dashboard.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not [p for p in keeper.started_by(dashboard.pid) if p.status() != psutil.STATUS_ZOMBIE]


def test_learn_a_twin_from_telemetry_and_see_its_fit_report(dashboard: Server, tmp_path: Path):
    small_telemetry(dashboard.telemetry / "acme", days=10)
    problems: list[str] = []
    shot = tmp_path / "app-learn.png"
    with chromium(tmp_path) as browser:
        page = watched_tab(browser, problems)
        open_landing(page, dashboard.url)  # then the sidebar: a deep link probes /learn/_stcore
        page.get_by_role("link", name="Learn").click()
        learn = page.get_by_role("button", name=re.compile(r"\bLearn$"))  # after its icon
        learn.wait_for(timeout=SERVER_START_S * 1000)
        learn.click()
        sync_api.expect(page.get_by_role("heading", name="Data read")).to_be_visible(
            timeout=RUN_S * 1000
        )
        latency = page.get_by_text("Latency against utilisation")
        sync_api.expect(latency.first).to_be_visible()
        latency.first.click()  # open the expander
        save = page.get_by_role("button", name="Save to scenarios as acme-twin.yaml")
        sync_api.expect(save).to_be_visible()
        restore = page.get_by_test_id("stExpander").filter(has_text="Time to detect and restore")
        restore.get_by_text("Time to detect and restore").first.click()  # open it
        chart = restore.get_by_test_id("stVegaLiteChart")
        sync_api.expect(chart.first).to_be_visible(timeout=30_000)  # drawn with the report
        sync_api.expect(chart.first.locator("canvas, svg").first).to_be_visible()
        sync_api.expect(restore.get_by_text("the line is the learned distribution")).to_be_visible()
        page.wait_for_timeout(1500)  # let the tables draw for the screenshot
        page.screenshot(path=str(shot), full_page=True)
    assert not problems, "\n".join(problems)
    assert_screenshot(shot)


def test_watch_telemetry_for_drift_and_see_the_alarms(dashboard: Server, tmp_path: Path):
    small_telemetry(dashboard.telemetry / "acme", days=21)  # the watch raises alarms
    problems: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "app-watch.png"
    shot.unlink(missing_ok=True)
    with chromium(tmp_path) as browser:
        page = watched_tab(browser, problems)
        open_landing(page, dashboard.url)  # then the sidebar, as a user would
        page.get_by_role("link", name="Watch").click()
        sync_api.expect(page.get_by_role("heading", name="Drift watch")).to_be_visible(
            timeout=SERVER_START_S * 1000
        )
        watch = page.get_by_role("button", name=re.compile(r"\bWatch$"))  # after its icon
        watch.wait_for(timeout=SERVER_START_S * 1000)
        watch.click()
        summary = page.get_by_text(re.compile(r"\d+ alarms? on \d+ streams since"))
        sync_api.expect(summary).to_be_visible(timeout=RUN_S * 1000)
        table = page.get_by_test_id("stDataFrame").first
        sync_api.expect(table).to_be_visible()
        stream = page.get_by_role("heading", name="One stream over time")
        sync_api.expect(stream).to_be_visible()
        chart = page.get_by_test_id("stVegaLiteChart")
        sync_api.expect(chart.first).to_be_visible(timeout=30_000)
        sync_api.expect(chart.first.locator("canvas, svg").first).to_be_visible()
        page.wait_for_timeout(1500)  # let the table and charts draw for the screenshot
        page.screenshot(path=str(shot), full_page=True)
    assert not problems, "\n".join(problems)
    assert_screenshot(shot)
