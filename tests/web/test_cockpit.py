"""The cockpit: real figures from the store, drill-down, scopes, languages."""

from __future__ import annotations

import json

import pytest
from django.db.models import Sum

from civicpulse.cases.models import Case
from civicpulse.core import accounts
from civicpulse.core.models import Area, AuditEntry, Role
from civicpulse.web.models import CaseFigure

pytestmark = pytest.mark.django_db


def _chart(response) -> dict:
    html = response.content.decode()
    start = html.index('id="cockpit-data"')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)


def test_login_is_required(client, demo_city):
    response = client.get("/cockpit/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_city_cockpit_shows_the_stores_figures(client, leader):
    client.force_login(leader)
    response = client.get("/cockpit/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    chart = _chart(response)
    city = Area.objects.get(level="city")
    assert chart["area"]["code"] == city.code
    districts = list(city.children.order_by("code"))
    assert [c["code"] for c in chart["children"]] == [d.code for d in districts]
    assert len(districts) >= 4 and all(c["polygon"]["type"] == "Polygon" for c in chart["children"])
    # the figures the analytics wrote back agree with the store, district by district
    for child, district in zip(chart["children"], districts, strict=True):
        in_store = Case.objects.filter(
            area__path__startswith=district.path, created_at__isnull=False
        ).count()
        assert child["count"] == in_store
    assert sum(chart["trend"]) == Case.objects.count()
    assert len(chart["months"]) == 25 and chart["months"][-1] == "2026-11"
    top = chart["top"]
    assert top and top == sorted(top, key=lambda t: -t["count"])
    assert response.context["data"]["live"]["total"] == Case.objects.count()


def test_drill_down_to_district_and_street(client, leader):
    client.force_login(leader)
    district = Area.objects.filter(level="district").order_by("code").last()
    chart = _chart(client.get(f"/cockpit/?area={district.code}"))
    assert chart["area"]["level"] == "district"
    streets = list(district.children.order_by("code"))
    assert [c["code"] for c in chart["children"]] == [s.code for s in streets]
    street = streets[0]
    chart = _chart(client.get(f"/cockpit/?area={street.code}"))
    assert chart["area"]["level"] == "street"
    assert (
        sum(chart["trend"])
        == CaseFigure.objects.filter(area_code=street.code).aggregate(n=Sum("count"))["n"]
    )


def test_staff_see_only_their_own_district(client, demo_city):
    mine, other = Area.objects.filter(level="district").order_by("code")[:2]
    user = accounts.create_staff("clerk", "pw-123456", Role.DEPARTMENT_STAFF, areas=[mine])
    client.force_login(user)
    assert _chart(client.get("/cockpit/"))["area"]["code"] == mine.code
    assert client.get(f"/cockpit/?area={other.code}").status_code == 403


def test_hostile_or_unknown_area_codes_are_refused(client, leader):
    client.force_login(leader)
    for code in ("999999", "1' OR '1'='1", "../../etc/passwd", "<script>", "1" * 40):
        assert client.get("/cockpit/", {"area": code}).status_code == 404


def test_each_view_is_audited(client, leader):
    client.force_login(leader)
    before = AuditEntry.objects.filter(action="cockpit.view").count()
    client.get("/cockpit/")
    assert AuditEntry.objects.filter(action="cockpit.view", actor="leader").count() == before + 1


def test_both_languages(client, leader):
    client.force_login(leader)
    district = Area.objects.filter(level="district").first()
    zh = client.get("/cockpit/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    en = client.get("/cockpit/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "月度趋势" in zh and district.name_zh in zh
    assert "Monthly trend" in en and district.name_en in en
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/cockpit/"})
    assert response.status_code == 302
    assert "Monthly trend" in client.get("/cockpit/").content.decode()


def test_sign_out_ends_the_session(client, leader):
    client.force_login(leader)
    assert client.get("/cockpit/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/cockpit/").status_code == 302
    assert AuditEntry.objects.filter(action="auth.logout", actor="leader").exists()
