"""The catalog's staff pages: who may open them, masked profile values of personal columns, the
quality chart's figures, the version comparison and the audit entry of each dataset view."""

from __future__ import annotations

import csv
import itertools
import json
import re
from datetime import date

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from civicpulse.catalog import quality, services
from civicpulse.core import accounts
from civicpulse.core.models import AuditEntry, Department, Role
from civicpulse.identity import services as identity
from civicpulse.identity.identifiers import make_resident_id

pytestmark = pytest.mark.django_db

PASSWORD = "catalog-pages-secret-1"
HEADER = ["编号", "身份证号", "事项", "区"]
ITEMS = ["路灯维修", "道路保洁", "供水报修", "噪音投诉"]
_numbers = itertools.count(1)


@pytest.fixture
def owner(db) -> Department:
    n = next(_numbers)
    return Department.objects.create(
        code=f"CAT-PAGES-{n}", name_zh=f"城管局{n}", name_en=f"City management {n}"
    )


@pytest.fixture
def users(owner):
    other = Department.objects.create(code=f"CAT-OTHER-{next(_numbers)}", name_zh="水务局")
    n = next(_numbers)
    made = {
        "admin": accounts.create_staff(f"cat-admin-{n}", PASSWORD, Role.DATA_ADMIN),
        "owner": accounts.create_staff(
            f"cat-owner-{n}", PASSWORD, Role.DEPARTMENT_STAFF, department=owner
        ),
        "other": accounts.create_staff(
            f"cat-other-{n}", PASSWORD, Role.DEPARTMENT_STAFF, department=other
        ),
        "hotline": accounts.create_staff(f"cat-hotline-{n}", PASSWORD, Role.HOTLINE_OPERATOR),
    }
    resident = get_user_model().objects.create_user(f"cat-resident-{n}", password=PASSWORD)
    made["resident"] = resident  # a citizen's account: no staff profile
    return made


def _login(client, user) -> None:
    """A real sign-in, reading the pages in English (the texts checked are the English ones)."""
    assert client.login(username=user.username, password=PASSWORD)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


def _rows(numbers, changed=(), empty=()) -> list[list[str]]:
    rows = []
    for n in numbers:
        resident_id = make_resident_id("330106", date(1960 + n, 1 + n % 12, 1 + n), n)
        item = "" if n in empty else ITEMS[n % len(ITEMS)] + ("（已改）" if n in changed else "")
        rows.append([str(n), resident_id, item, "西湖区"])
    return rows


def _write(path, rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)


@pytest.fixture
def dataset(owner, tmp_path):
    """Two versions of a department's request log with residents' ID numbers: version 2 drops
    row 1, adds rows 13 and 14 (14 without its item), and changes row 5's item."""
    ds = services.register_dataset(
        f"requests-{next(_numbers)}",
        title="市民诉求台账",
        title_en="Citizen request log",
        description="各区受理的市民诉求，含身份证号。",
        owner=owner,
        tags=["诉求", "台账"],
        grade="important",
        frequency="weekly",
    )
    quality.define_rule(ds, "completeness", ["事项"], name="事项完整")
    quality.define_rule(ds, "uniqueness", ["编号"], name="编号唯一")
    first, second = tmp_path / "v1.csv", tmp_path / "v2.csv"
    v1_rows = _rows(range(1, 13))
    v2_rows = _rows(range(2, 15), changed={5}, empty={14})
    _write(first, v1_rows)
    _write(second, v2_rows)
    services.load_version(ds, first, user=None, progress=False)
    services.load_version(ds, second, user=None, progress=False)
    services.classify(ds)
    ds = services.find(ds.slug)
    ds.ids = sorted({r[1] for r in v1_rows + v2_rows})  # every resident ID number in the data
    return ds


def test_a_visitor_is_sent_to_sign_in(client, dataset):
    for url in ("/catalog/", f"/catalog/{dataset.slug}/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.parametrize("who", ["resident", "hotline"])
def test_residents_and_case_workers_are_refused(client, users, dataset, who):
    _login(client, users[who])
    assert client.get("/catalog/").status_code == 403
    assert client.get(f"/catalog/{dataset.slug}/").status_code == 403


@pytest.mark.parametrize("who", ["admin", "owner", "other"])
def test_the_list_shows_each_dataset_with_its_facts(client, users, dataset, owner, who):
    _login(client, users[who])
    response = client.get("/catalog/", {"q": "诉求", "department": owner.code})
    assert response.status_code == 200
    page = response.content.decode()
    row = re.search(rf'<tr data-dataset="{dataset.slug}">(.*?)</tr>', page, re.S)
    assert row, page
    cells = row.group(1)
    assert dataset.title in cells and owner.name_en in cells
    assert f'grade-{dataset.grade}"' in cells
    assert f'<td class="num">{dataset.current_version.row_count}</td>' in cells
    # shown on the city's clock, which may already be the next day
    loaded = timezone.localtime(dataset.current_version.created_at)
    assert loaded.strftime("%Y-%m-%d %H:%M") in cells
    assert response.context["results"].total == 1

    narrowed = client.get("/catalog/", {"department": owner.code, "grade": "core"})
    assert narrowed.context["results"].total == 0
    assert client.get("/catalog/", {"grade": "secret"}).context["results"] is None


def test_pages_of_the_list_link_to_each_other(client, users, owner):
    for n in range(23):
        services.register_dataset(f"paged-{next(_numbers)}-{n}", title=f"分页数据{n}", owner=owner)
    _login(client, users["admin"])
    first = client.get("/catalog/", {"department": owner.code})
    assert first.context["results"].total == 23 and len(first.context["results"].hits) == 20
    assert first.context["next"] and not first.context["previous"]
    second = client.get("/catalog/" + first.context["next"])
    assert len(second.context["results"].hits) == 3 and second.context["previous"]
    shown = {h.dataset.pk for h in first.context["results"].hits}
    assert shown.isdisjoint(h.dataset.pk for h in second.context["results"].hits)


def test_the_dataset_page_masks_personal_columns_and_shows_the_others(client, users, dataset):
    id_column = dataset.current_version.columns.get(name="身份证号")
    assert id_column.personal_tags == ["resident_id"]
    item_column = dataset.current_version.columns.get(name="事项")
    assert not item_column.personal_tags and item_column.samples

    _login(client, users["admin"])
    page = client.get(f"/catalog/{dataset.slug}/").content.decode()
    for resident_id in dataset.ids:
        assert resident_id not in page
        assert resident_id[6:14] not in page  # not even the birth date part
    masked = [identity.mask("resident_id", str(v)) for v in id_column.samples]
    assert masked and all(m in page for m in masked)
    assert identity.mask("resident_id", str(id_column.min_value)) in page
    assert all(str(v) in page for v in item_column.samples[:5])
    assert '<span class="personal-badge">resident_id</span>' in page

    # another department's staff see the profile, not the values
    _login(client, users["other"])
    page = client.get(f"/catalog/{dataset.slug}/").content.decode()
    assert not any(identity.mask("resident_id", str(v)) in page for v in id_column.samples)
    assert not any(str(v) in page for v in item_column.samples)
    assert "身份证号" in page and "Values are shown to the owner department" in page

    _login(client, users["owner"])
    page = client.get(f"/catalog/{dataset.slug}/").content.decode()
    assert all(str(v) in page for v in item_column.samples[:5])
    assert not any(resident_id in page for resident_id in dataset.ids)


def test_the_dataset_page_lists_versions_and_charts_quality_history(client, users, dataset):
    _login(client, users["owner"])
    page = client.get(f"/catalog/{dataset.slug}/").content.decode()
    for v in services.versions_of(dataset):
        row = re.search(rf'<tr data-version="{v.number}">(.*?)</tr>', page, re.S).group(1)
        assert f">{v.row_count}<" in row and v.checksum[:12] in row
        assert str(v.get_status_display()) in row

    history = quality.history(dataset)
    assert [h["version"] for h in history] == [1, 2]
    script = re.search(
        r'<script id="catalog-quality-data" type="application/json">(.*?)</script>', page, re.S
    )
    chart = json.loads(script.group(1))
    assert chart["versions"] == ["v1", "v2"]
    series = {s["key"]: s["data"] for s in chart["series"]}
    assert series["overall"] == [round(h["score"], 4) for h in history]
    for dim in ("completeness", "uniqueness"):
        assert series[dim] == [round(h["dimensions"][dim], 4) for h in history]
    assert series["completeness"][0] == 1.0 and series["completeness"][1] < 1.0  # row 14
    assert "vendor/echarts.min.js" in page and "catalog/catalog.js" in page

    results = re.search(r'<table class="list" id="quality-results">(.*?)</table>', page, re.S)
    assert "事项完整" in results.group(1) and "编号唯一" in results.group(1)
    assert "below threshold" in results.group(1)  # 12 of 13 items present < 95%


def test_the_compare_form_shows_what_changed(client, users, dataset):
    _login(client, users["admin"])
    url = f"/catalog/{dataset.slug}/"
    page = client.get(url, {"old": 1, "new": 2, "key": "编号"}).content.decode()
    counts = dict(re.findall(r'<dd data-count="([a-z-]+)">(.*?)</dd>', page))
    # rows 2..12 are in both, row 5 changed; row 1 went; rows 13 and 14 came
    assert counts["added"] == "2" and counts["removed"] == "1"
    assert counts["changed"] == "1" and counts["unchanged"] == "10"

    whole = client.get(url, {"old": 1, "new": 2}).content.decode()
    counts = dict(re.findall(r'<dd data-count="([a-z-]+)">(.*?)</dd>', whole))
    assert (counts["added"], counts["removed"], counts["changed"]) == ("3", "2", "0")

    refused = client.get(url, {"old": 1, "new": 2, "key": "无此列"}).content.decode()
    assert 'id="compare-error"' in refused and "无此列" in refused
    assert client.get(url, {"old": 1, "new": 9}).status_code == 200


def test_each_dataset_view_is_audited(client, users, dataset):
    user = users["other"]
    _login(client, user)

    def views():
        return AuditEntry.objects.filter(
            action="catalog.view", object_id=str(dataset.pk), actor=user.username
        )

    before = views().count()
    client.get(f"/catalog/{dataset.slug}/")
    client.get(f"/catalog/{dataset.slug}/", {"old": 1, "new": 2})
    entries = list(views().order_by("seq"))
    assert len(entries) == before + 2
    assert entries[-2].detail["values_shown"] is False
    assert entries[-1].detail["compared"] == [1, 2]
    assert client.get("/catalog/no-such-dataset/").status_code == 404


def test_violation_examples_are_shown_only_to_those_who_see_values(client, users, dataset):
    # a validity rule whose violations are the column's own values: "道路保洁", "供水报修", ...
    rule = quality.define_rule(
        dataset, "validity", ["事项"], {"allowed": ["路灯维修"]}, name="事项为路灯"
    )
    services.assess_quality(dataset, user=None)
    result = dataset.current_version.quality_runs.latest("run_at").results.get(rule=rule)
    examples = [e for e in result.examples if e]
    assert examples and all(e.startswith(tuple(ITEMS)) for e in examples)  # the premise

    def quality_table(user) -> str:
        client.logout()
        _login(client, user)
        page = client.get(f"/catalog/{dataset.slug}/").content.decode()
        table = re.search(r'<table class="list" id="quality-results">(.*?)</table>', page, re.S)
        return table.group(1)

    shown = quality_table(users["owner"])
    assert "事项为路灯" in shown and all(e in shown for e in examples)
    withheld = quality_table(users["other"])
    assert "事项为路灯" in withheld and not any(e in withheld for e in examples)
