"""A person's path through the cockpit in a real browser: sign in, see the charts drawn,
switch language, drill down to a district."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e

# Counts the canvas pixels that are not blank: a drawn chart has many.
PAINTED = """(selector) => {
  const canvas = document.querySelector(selector + " canvas");
  if (!canvas) return 0;
  const ctx = canvas.getContext("2d");
  const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
  return painted;
}"""


def _sign_in(page, base: str) -> None:
    page.goto(base + "/cockpit/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "leader")
    page.fill("#id_password", "civicpulse-demo")
    page.click("button[type=submit].primary")
    page.wait_for_url("**/cockpit/**")


def test_sign_in_see_charts_switch_language_and_drill_down(page, live_demo):
    _sign_in(page, live_demo)
    page.wait_for_function("document.body.dataset.chartsReady === '1'")
    page.wait_for_timeout(800)  # let ECharts finish its entry animation
    for chart in ("#chart-trend", "#chart-children", "#chart-map", "#chart-top"):
        assert page.evaluate(PAINTED, chart) > 500, f"{chart} was not drawn"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "cockpit-city-zh.png"), full_page=True)
    assert "月度趋势" in page.content()

    page.click("button[data-language=en]")
    page.wait_for_load_state("load")
    page.wait_for_function("document.body.dataset.chartsReady === '1'")
    assert "Monthly trend" in page.content()
    assert page.evaluate("document.documentElement.lang") == "en"

    first = page.locator("table.drill a[data-area]").first
    code, name = first.get_attribute("data-area"), first.inner_text()
    first.click()
    page.wait_for_url(f"**/cockpit/?area={code}")
    page.wait_for_function("document.body.dataset.chartsReady === '1'")
    assert page.locator("#area-name").inner_text() == name
    page.wait_for_timeout(800)
    assert page.evaluate(PAINTED, "#chart-trend") > 500
    page.screenshot(path=str(ARTIFACTS / "cockpit-district-en.png"), full_page=True)


def test_wrong_password_is_refused(page, live_demo):
    page.goto(live_demo + "/accounts/login/")
    page.fill("#id_username", "leader")
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit].primary")
    assert "/accounts/login/" in page.url
    assert page.locator(".error").count() == 1
