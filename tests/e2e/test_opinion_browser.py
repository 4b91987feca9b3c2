"""The opinion desk in a real browser: a leader signs in, reads the live issues, sees the district
map and the sentiment trend drawn, opens a warning's evidence and switches language."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_END
from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e

# How many pixels of a chart's canvas are painted: a blank canvas has none.
PAINTED = """(selector) => {
  const canvas = document.querySelector(selector + " canvas");
  if (!canvas) return 0;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let alpha = 3; alpha < pixels.length; alpha += 4) if (pixels[alpha] !== 0) painted++;
  return painted;
}"""


def _sign_in(page, base: str) -> None:
    page.goto(base + "/opinion/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "leader")
    page.fill("#id_password", "civicpulse-demo")
    page.click("button[type=submit].primary")
    page.wait_for_url("**/opinion/")


def _charts_drawn(page) -> None:
    page.wait_for_function("document.body.dataset.chartsReady === '1'")
    page.wait_for_timeout(800)  # let ECharts finish its entry animation


def test_leader_reads_issues_map_trend_and_a_warnings_evidence(page, live_demo):
    ARTIFACTS.mkdir(exist_ok=True)
    _sign_in(page, live_demo)
    assert page.locator("#kpi-posts").is_visible()
    assert page.locator("table.issues").is_visible()
    page.screenshot(path=str(ARTIFACTS / "opinion-issues-zh.png"), full_page=True)

    page.click("a[href='/opinion/warnings/']")
    page.wait_for_url("**/opinion/warnings/")
    _charts_drawn(page)
    assert page.evaluate(PAINTED, "#chart-map") > 500, "the district map was not drawn"
    assert page.locator("#district-table tbody tr").count() >= 2
    page.screenshot(path=str(ARTIFACTS / "opinion-map-zh.png"), full_page=True)

    # the demo's water crisis raised a warning (active, or closed once it calmed down)
    warnings = page.locator("a[data-warning]")
    assert warnings.count() > 0, "the demo raised no warning to open"
    title = warnings.first.inner_text()
    warnings.first.click()
    page.wait_for_url("**/opinion/warnings/*/")
    _charts_drawn(page)
    assert title in page.locator("#warning-title").inner_text()
    assert page.evaluate(PAINTED, "#chart-levels") > 500, "the level history was not drawn"
    assert page.locator("#indicators tbody tr").count() > 0
    assert page.locator("#level-history tbody tr").count() > 0
    page.screenshot(path=str(ARTIFACTS / "opinion-warning-zh.png"), full_page=True)

    page.goto(f"{live_demo}/opinion/trend/?end={DEMO_END.isoformat()}")
    _charts_drawn(page)
    assert page.evaluate(PAINTED, "#chart-trend") > 500, "the trend was not drawn"
    assert int(page.locator("#kpi-total").inner_text()) > 0
    assert page.evaluate("document.documentElement.lang") == "zh-hans"
    assert "退出" in page.content()  # the interface speaks Chinese before the switch
    page.screenshot(path=str(ARTIFACTS / "opinion-trend-zh.png"), full_page=True)

    page.click("button[data-language=en]")
    page.wait_for_load_state("load")
    _charts_drawn(page)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert "Sign out" in page.content() and "Sentiment trend" in page.content()
    assert page.evaluate(PAINTED, "#chart-trend") > 500
    page.screenshot(path=str(ARTIFACTS / "opinion-trend-en.png"), full_page=True)


def test_a_hotline_operator_is_refused(page, live_demo):
    page.goto(live_demo + "/accounts/login/?next=/opinion/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "civicpulse-demo")
    page.click("button[type=submit].primary")
    page.wait_for_load_state("load")
    response = page.goto(live_demo + "/opinion/")
    assert response.status == 403
