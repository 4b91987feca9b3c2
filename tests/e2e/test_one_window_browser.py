"""The one window in a real browser: a resident reports, the hotline desk handles it, the
resident follows the private link and rates the result."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e


def test_resident_reports_staff_resolve_resident_rates(browser, live_demo):
    resident = browser.new_context(locale="zh-CN").new_page()
    resident.goto(live_demo + "/report/")
    resident.select_option("#id_service", index=3)
    resident.fill("#id_description", "公园东门的路灯坏了，晚上很黑，老人容易摔倒")
    resident.fill("#id_phone", "13611112222")
    resident.click("button[type=submit].primary")
    tracking_no = resident.locator("#tracking-no").inner_text()
    assert re.fullmatch(r"SH\d{14}", tracking_no)
    track_url = resident.locator("#track-link").get_attribute("href")
    resident.goto(live_demo + track_url)
    assert tracking_no in resident.content()

    staff = browser.new_context(locale="en-US").new_page()
    staff.goto(live_demo + "/accounts/login/")
    staff.fill("#id_username", "operator")
    staff.fill("#id_password", "civicpulse-demo")
    staff.click("button[type=submit].primary")
    staff.goto(f"{live_demo}/cases/?q={tracking_no}")
    staff.click(f"a[href='/cases/{tracking_no}/']")
    assert "136****2222" in staff.content() and "13611112222" not in staff.content()
    for step in ("accept", "resolve"):
        staff.click(f"button[data-step={step}]")
        staff.wait_for_load_state("load")
    assert staff.locator("#case-status").inner_text() in ("resolved", "已办结")
    ARTIFACTS.mkdir(exist_ok=True)
    staff.screenshot(path=str(ARTIFACTS / "case-detail-en.png"), full_page=True)

    resident.reload()
    resident.select_option("#id_rating", "5")
    resident.click("main form button.primary")
    resident.wait_for_selector("#rated")
    assert "5/5" in resident.locator("#rated").inner_text()
