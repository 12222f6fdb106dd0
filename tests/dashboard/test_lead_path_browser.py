"""A lead's path, end to end in headless Chromium: the landing page, the question "If we
raise the Pro plan …?", move the price, Run, read the verdict, open the ripple (a click on
a node of its graph drills there), keep the link, download the report. Saves
``test-artifacts/lead-path.png``; fails on any browser console error.

The server, the browser and the checks on them come from ``test_app_browser.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import orgtwin
from tests.dashboard.test_app_browser import (  # noqa: F401 (dashboard is a fixture)
    ARTIFACTS,
    RUN_S,
    SERVER_START_S,
    Server,
    assert_screenshot,
    chromium,
    dashboard,
    open_landing,
    pytestmark,
    set_run,
    sync_api,
    watched_tab,
)

ROOT = Path(__file__).resolve().parents[2]
PRICE = "New price (Pro 12 → 15 USD, from day 14) (USD/month)"


def test_a_lead_answers_should_we_raise_the_pro_price(
    dashboard: Server,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
):
    question = " ".join(
        orgtwin.load_scenario(ROOT / "scenarios" / "price_increase.yaml").question.split()
    )
    problems: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "lead-path.png"
    shot.unlink(missing_ok=True)
    with chromium(tmp_path, height=3000) as browser:
        page = watched_tab(browser, problems)
        open_landing(page, dashboard.url)
        page.get_by_role("link", name=question).click()

        run = page.get_by_role("button", name="Run")
        run.wait_for(timeout=SERVER_START_S * 1000)
        assert "scenario=price_increase.yaml" in page.url
        # the new price 15.00 → 18.00 in steps of 0.50
        set_run(page, days=21, seeds=2, slider=PRICE, steps=6, to="18.00")
        run.click()

        verdict = page.get_by_text(re.compile(r"^Verdict\. "))
        sync_api.expect(verdict).to_be_visible(timeout=RUN_S * 1000)
        sync_api.expect(verdict).to_contain_text("Over 21 days (2 seeds, paired by seed)")
        sync_api.expect(
            page.get_by_test_id("stMetric").filter(has_text="Margin after people cost")
        ).to_be_visible()
        chain = page.get_by_text(re.compile(r"^How the change travelled: price \$12 → \$18 → "))
        sync_api.expect(chain).to_be_visible()  # the ripple, in words
        node = page.locator('g.mark-symbol path[aria-label*="kind: segment; name: pro_us;"]')
        node.click()  # a node of the ripple graph: the drill opens there
        drilled = page.get_by_text(re.compile(r"^Segment pro_us, by figure\."))
        sync_api.expect(drilled).to_be_visible(timeout=RUN_S * 1000)
        asked = parse_qs(urlparse(page.url).query)  # the link that reopens it
        assert asked["days"] == ["21"], page.url
        assert asked["interventions[0].price_usd_month"] == ["18.0"], page.url

        with page.expect_download() as download:
            page.get_by_role("button", name="Report (HTML)").click()
        saved = tmp_path / "report.html"
        download.value.save_as(saved)
        text = saved.read_text()
        assert "<b>Verdict.</b>" in text and "<svg" in text and "SHA-256" in text
        page.wait_for_timeout(1500)  # let the charts draw for the screenshot
        page.screenshot(path=str(shot), full_page=True)
    assert not problems, "\n".join(problems)
    assert_screenshot(shot)
