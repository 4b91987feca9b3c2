"""The data hub in a real browser: a data admin searches the catalog in Chinese and English and
reads a dataset's versions, quality chart, masked columns and lineage; the housing department's
staff read the rows they were granted (masked) and are refused rows they were not; an anonymous
visitor finds the published open data, downloads a CSV and asks the CKAN API."""

from __future__ import annotations

import csv
import io
import re

import pytest

from tests.e2e.conftest import ARTIFACTS

pytestmark = pytest.mark.e2e

PASSWORD = "civicpulse-demo"
# The demo's datasets (src/civicpulse/demo/catalog.py): what each scenario opens.
HOTLINE = "hotline-requests-monthly"
AIR = "air-quality-daily"
ASSISTANCE = "disability-employment-assistance"
ENTERPRISES = "enterprise-register"
# A citizen identity number as a person would read it on a page, and as the hub masks it.
RAW_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
MASKED_ID = re.compile(r"\d{6}\*{8}\d{3}[\dXx]")

# How many pixels of a chart's canvas are painted: a blank canvas has none.
PAINTED = """(selector) => {
  const canvas = document.querySelector(selector + " canvas");
  if (!canvas) return 0;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let alpha = 3; alpha < pixels.length; alpha += 4) if (pixels[alpha] !== 0) painted++;
  return painted;
}"""


def _sign_in(page, base: str, username: str, start: str = "/catalog/") -> None:
    page.goto(base + start)
    assert "/accounts/login/" in page.url, "the catalog let an anonymous visitor in"
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**" + start)


def _search(page, words: str) -> list[str]:
    """Search the catalog as a person does; the slugs of the datasets listed, in order."""
    page.fill("#catalog-search input[name=q]", words)
    page.click("#catalog-search button[type=submit]")
    page.wait_for_load_state("load")
    errors = page.locator("#catalog-errors")
    assert errors.count() == 0, errors.inner_text()
    return page.locator("#catalog-results tbody tr[data-dataset]").evaluate_all(
        "rows => rows.map(r => r.dataset.dataset)"
    )


def _open(page, slug: str) -> None:
    page.click(f"#catalog-results tr[data-dataset='{slug}'] a")
    page.wait_for_url(f"**/catalog/{slug}/")


def _quality_chart_drawn(page) -> int:
    page.wait_for_selector("#chart-quality canvas")
    page.wait_for_timeout(800)  # let ECharts finish its entry animation
    return page.evaluate(PAINTED, "#chart-quality")


def _visible_text(page) -> str:
    return page.locator("body").inner_text()


def test_a_data_admin_searches_and_reads_a_datasets_page(page, live_demo):
    ARTIFACTS.mkdir(exist_ok=True)
    _sign_in(page, live_demo, "admin")
    everything = page.locator("#catalog-results tbody tr[data-dataset]").count()
    assert everything >= 6, "the demo's six datasets are not all listed"

    found = _search(page, "空气")
    assert AIR in found and len(found) < everything, found
    found = _search(page, "air")
    assert found and found[0] == AIR, found
    assert ASSISTANCE not in found and HOTLINE not in found

    found = _search(page, "热线")
    assert HOTLINE in found and ASSISTANCE not in found, found
    page.screenshot(path=str(ARTIFACTS / "catalog-list-zh.png"), full_page=True)

    # the hotline statistics were loaded twice (last month's, then this month's)
    _open(page, HOTLINE)
    versions = page.locator("#versions tbody tr[data-version]")
    assert versions.count() == 2
    assert versions.evaluate_all("rows => rows.map(r => r.dataset.version)") == ["1", "2"]
    assert _quality_chart_drawn(page) > 500, "the quality chart was not drawn"
    assert page.locator("#columns tbody tr[data-column='受理量']").is_visible()
    lineage = page.locator("#lineage-links tbody tr")
    assert lineage.count() > 0, "the lineage panel shows no link"
    assert page.locator("#lineage").is_visible() and page.locator("#retention").is_visible()
    page.screenshot(path=str(ARTIFACTS / "catalog-dataset-zh.png"), full_page=True)

    # the personal list: values shown to the data bureau, but only masked
    page.click("nav.catalog-nav a[href='/catalog/']")
    page.wait_for_url("**/catalog/")
    found = _search(page, "残疾人")
    assert ASSISTANCE in found, found
    _open(page, ASSISTANCE)
    id_column = page.locator("#columns tbody tr[data-column='公民身份号码']")
    assert id_column.locator(".personal-badge").count() > 0, "the ID column is not tagged personal"
    samples = id_column.locator("td.samples.masked").inner_text()
    assert MASKED_ID.search(samples), f"no masked ID among the samples: {samples!r}"
    text = _visible_text(page)
    assert not RAW_ID.search(text), "a raw identity number is on the page"
    assert not RAW_ID.search(page.content()), "a raw identity number is in the page's source"
    assert _quality_chart_drawn(page) > 500
    assert page.locator("#lineage-links tbody tr").count() > 0
    page.screenshot(path=str(ARTIFACTS / "catalog-dataset-personal-zh.png"), full_page=True)


def test_housing_staff_read_their_grant_masked_and_are_refused_beyond_it(page, live_demo):
    ARTIFACTS.mkdir(exist_ok=True)
    _sign_in(page, live_demo, "housing_staff")
    page.click("nav.catalog-nav a[href='/catalog/sharing/grants/']")
    page.wait_for_url("**/catalog/sharing/grants/")
    granted = page.locator(f"#held a[href='/catalog/sharing/datasets/{ASSISTANCE}/rows/']")
    assert granted.count() == 1, "the housing department's active grant is not listed"
    granted.click()
    page.wait_for_url(f"**/catalog/sharing/datasets/{ASSISTANCE}/rows/")

    headers = page.locator("#rows thead th").all_inner_texts()
    assert "公民身份号码" in headers
    assert "手机号码" not in headers and "残疾等级" not in headers, "columns beyond the grant"
    ids = page.locator(f"#rows tbody td:nth-child({headers.index('公民身份号码') + 1})")
    assert ids.count() > 0, "the granted page shows no rows"
    for shown in ids.all_inner_texts():
        assert MASKED_ID.fullmatch(shown), f"an ID shown unmasked: {shown!r}"
    assert not RAW_ID.search(page.content()), "a raw identity number is in the page's source"
    page.screenshot(path=str(ARTIFACTS / "catalog-granted-rows-zh.png"), full_page=True)

    # the enterprise register is shared on request only, and housing has not asked for it
    page.goto(f"{live_demo}/catalog/{ENTERPRISES}/")
    with page.expect_navigation() as refused:
        page.click(f"#dataset-actions a[href='/catalog/sharing/datasets/{ENTERPRISES}/rows/']")
    assert refused.value.status == 403
    assert page.locator("#sharing-error").is_visible()
    assert page.locator("#rows").count() == 0, "rows shown without a grant"


def test_an_anonymous_visitor_downloads_open_data_and_asks_the_ckan_api(page, live_demo, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(live_demo + "/data/")
    assert "/accounts/login/" not in page.url, "the open data portal asked for a login"
    listed = page.locator("#open-datasets tbody tr[data-dataset]").evaluate_all(
        "rows => rows.map(r => r.dataset.dataset)"
    )
    assert sorted(listed) == sorted([HOTLINE, "public-facilities"]), listed
    assert ENTERPRISES not in page.content(), "the refused draft's dataset is on the portal"
    page.screenshot(path=str(ARTIFACTS / "catalog-portal-zh.png"), full_page=True)

    page.click(f"#open-datasets tr[data-dataset='{HOTLINE}'] a")
    page.wait_for_url(f"**/data/{HOTLINE}/")
    release = page.locator("#open-releases tbody tr[data-resource]").first
    cells = release.locator("td")
    shown_rows = int(cells.nth(2).inner_text().replace(",", "").strip())
    shown_columns = [c.strip() for c in cells.nth(3).inner_text().split(",")]
    assert shown_rows > 0 and "月份" in shown_columns
    page.screenshot(path=str(ARTIFACTS / "catalog-portal-dataset-zh.png"), full_page=True)

    with page.expect_download() as downloading:
        release.locator("a", has_text="CSV").click()
    download = downloading.value
    assert download.suggested_filename.endswith(".csv")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    raw = saved.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "the CSV lacks the byte order mark Excel needs"
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == shown_columns
    assert len(table) - 1 == shown_rows
    assert "公民身份号码" not in table[0]

    answer = page.evaluate(
        """async () => {
          const response = await fetch("/api/3/action/package_list");
          return {status: response.status, type: response.headers.get("content-type"),
                  body: await response.json()};
        }"""
    )
    assert answer["status"] == 200 and answer["type"].startswith("application/json")
    assert answer["body"]["success"] is True
    assert sorted(answer["body"]["result"]) == sorted(listed)
