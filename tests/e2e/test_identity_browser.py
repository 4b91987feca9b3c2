"""The master index in a real browser: a resident signs in to "my space" and reads their
requests and services; the data bureau decides a pair in the review queue and opens the 360°
view of the resident it concerns, masked, with the decision in its history."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e

PASSWORD = "civicpulse-demo"
RAW_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
MASKED_ID = re.compile(r"\d{6}\*{8}\d{3}[\dXx]")
TRACKING_NO = re.compile(r"[A-Z]{2}\d{10,16}")


def test_a_resident_reads_their_requests_and_services(page, live_demo):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(live_demo + "/my/")
    assert "/my/login/" in page.url, "my space let an anonymous visitor in"
    page.fill("#id_username", "resident")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/my/")

    requests = page.locator("#my-requests tbody tr[data-case]")
    assert requests.count() >= 1, "the demo resident who called 12345 has no request listed"
    first = requests.first
    tracking_no = first.get_attribute("data-case")
    assert TRACKING_NO.fullmatch(tracking_no), tracking_no
    assert first.locator("td.status").inner_text().strip(), "a request without its status"
    services = page.locator("#my-services tbody tr")
    assert services.count() >= 1, "the resident on the disability allowance has no service"
    assert "残疾" in page.locator("#my-services").inner_text()
    assert page.locator("#my-holdings article.department").count() >= 2
    text = page.locator("body").inner_text()
    assert MASKED_ID.search(text), "their ID number is not shown, even masked"
    assert not RAW_ID.search(page.content()), "a whole ID number is in the page's source"
    page.screenshot(path=str(ARTIFACTS / "identity-my-space-zh.png"), full_page=True)

    first.locator("a").click()
    page.wait_for_url(f"**/my/requests/{tracking_no}/")
    assert tracking_no in page.locator("#request-title").inner_text()
    # another number in the address: not theirs, not found
    response = page.goto(f"{live_demo}/my/requests/{tracking_no[:-1]}X/")
    assert response.status == 404


def test_the_data_bureau_decides_a_pair_and_reads_the_360_view(page, live_demo):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(live_demo + "/identity/review/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/identity/review/")

    pairs = page.locator("article.pair")
    waiting = pairs.count()
    assert waiting >= 1, "the demo's linker left no pair for a person to decide"
    pair = pairs.first
    pair_id = pair.get_attribute("data-pair")
    assert pair.locator("table.weights tbody tr").count() >= 1, "a pair without its explanation"
    assert not RAW_ID.search(page.content()), "a whole ID number is in the review queue"
    entity_code = pair.locator("a.entity-link").first.inner_text().strip()
    page.screenshot(path=str(ARTIFACTS / "identity-review-zh.png"), full_page=True)

    pair.locator("input[name=note]").fill("同一人：姓名同音，号码一致")
    pair.locator("button.same").click()
    page.wait_for_url("**/identity/review/")
    assert page.locator(f"article.pair[data-pair='{pair_id}']").count() == 0
    assert page.locator(".messages li.success").count() == 1

    page.goto(f"{live_demo}/identity/entities/{entity_code}/")
    assert page.locator("#entity-code").is_visible()
    assert page.locator("#records article.department").count() >= 1
    assert page.locator("#golden td.masked").count() >= 1
    assert not RAW_ID.search(page.content()), "a whole ID number is on the 360° page"
    history = page.locator("#history tbody tr[data-event]")
    actions = history.evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert {"merged", "linked"} & set(actions), actions
    assert page.locator("#history form.undo").count() >= 1, "the decision cannot be undone"
    page.screenshot(path=str(ARTIFACTS / "identity-entity-zh.png"), full_page=True)
