"""The Validate page end to end in a real browser: ``streamlit run app.py`` driven by
Debian's headless Chromium through Playwright, with the server, browser and screenshot
helpers of ``test_app_browser.py``.

Telemetry of the bundled baseline with fewer users is validated against the baseline
itself (more users): the page says how far to trust the twin, lists the lines that do
not mirror production, draws the table and a service KPI, and a screenshot is saved to
``test-artifacts/app-validate.png``. Nothing is saved beside the bundled scenarios.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.dashboard.test_app_browser import (
    ARTIFACTS,
    ROOT,
    RUN_S,
    SERVER_START_S,
    Server,
    assert_screenshot,
    chromium,
    dashboard,  # noqa: F401 (the fixture)
    open_landing,
    pytestmark,  # noqa: F401 (slow; skipped without chromium)
    small_telemetry,
    sync_api,
    watched_tab,
)


def test_validate_a_twin_and_see_how_far_to_trust_it(dashboard: Server, tmp_path: Path):  # noqa: F811
    small_telemetry(dashboard.telemetry / "acme", days=14)  # some lines do not mirror
    problems: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "app-validate.png"
    shot.unlink(missing_ok=True)
    with chromium(tmp_path) as browser:
        page = watched_tab(browser, problems)
        open_landing(page, dashboard.url)  # then the sidebar, as a user would
        page.get_by_role("link", name="Validate").click()
        sync_api.expect(page.get_by_role("heading", name="Validate the twin")).to_be_visible(
            timeout=SERVER_START_S * 1000
        )
        validate = page.get_by_role("button", name=re.compile(r"\bValidate$"))  # after its icon
        validate.wait_for(timeout=SERVER_START_S * 1000)
        validate.click()
        trust = page.get_by_text(re.compile(r"^Trust: (high|medium|low) — "))
        sync_api.expect(trust).to_be_visible(timeout=RUN_S * 1000)
        sync_api.expect(page.get_by_role("heading", name="Every line")).to_be_visible()
        sync_api.expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
        sync_api.expect(page.get_by_test_id("stMetric")).to_have_count(3)
        chart = page.get_by_test_id("stVegaLiteChart")
        sync_api.expect(chart.first).to_be_visible(timeout=30_000)
        sync_api.expect(chart.first.locator("canvas, svg").first).to_be_visible()
        save = page.get_by_role("button", name=re.compile(r"Save beside baseline\.yaml$"))
        sync_api.expect(save).to_be_visible()  # not pressed: the bundled scenarios stay as they are
        page.wait_for_timeout(1500)  # let the table and chart draw for the screenshot
        page.screenshot(path=str(shot), full_page=True)
    assert not problems, "\n".join(problems)
    assert_screenshot(shot)
    assert not (ROOT / "scenarios" / "scorecard.json").exists()
