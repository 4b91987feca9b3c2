"""GET /api/v1/identity/entities/{code}: the masked golden record and records per department,
scoped and audited like the 360° page; out of scope looks exactly like not there."""

from __future__ import annotations

import pytest

from civicpulse.core.models import AuditEntry
from civicpulse.identity import master
from civicpulse.identity.checks import mask

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def _url(code: str) -> str:
    return f"/api/v1/identity/entities/{code}"


def test_a_visitor_gets_401(client, world):
    response = client.get(_url(world.zhang.code))
    assert response.status_code == 401
    assert world.id_zhang.encode() not in response.content


def test_the_golden_record_masked_with_records_per_department(world, login):
    client = login(world.users["admin"])
    before = AuditEntry.objects.filter(action="identity.view", object_id=str(world.zhang.pk))
    before = before.count()
    response = client.get(_url(world.zhang.code))
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == world.zhang.code and body["kind"] == "resident"
    assert body["area"] == world.grid_a.code
    assert body["attributes"]["id_number"] == mask("resident_id", world.id_zhang)
    assert body["attributes"]["phone"] == mask("mobile", world.phone_zhang)
    assert body["attributes"]["gender"] == "M"
    assert world.id_zhang not in response.content.decode()
    assert {d["department"]: d["records"] for d in body["records_by_department"]} == {
        world.police.code: 1,
        world.civil.code: 1,
        world.urban.code: 1,
    }
    after = AuditEntry.objects.filter(action="identity.view", object_id=str(world.zhang.pk))
    assert after.count() == before + 1
    assert after.order_by("-seq").first().detail["channel"] == "api"


def test_out_of_scope_is_404_like_a_missing_code(world, login):
    client = login(world.users["grid_out"])
    outside = client.get(_url(world.zhang.code))
    missing = client.get(_url("NO-SUCH-CODE"))
    assert outside.status_code == missing.status_code == 404
    # the same words either way: nothing tells that the first code exists
    assert outside.json()["detail"].replace(world.zhang.code, "X") == missing.json()[
        "detail"
    ].replace("NO-SUCH-CODE", "X")
    assert client.get(_url(world.li.code)).status_code == 200
    assert login(world.users["grid_in"]).get(_url(world.nowhere.code)).status_code == 404


def test_roles_the_index_is_not_for_get_403(world, login):
    assert login(world.users["analyst"]).get(_url(world.zhang.code)).status_code == 403
    assert login(world.users["resident"]).get(_url(world.zhang.code)).status_code == 403


def test_a_merged_code_answers_for_the_survivor(world, login):
    master.merge(world.zhang, world.li, user=world.users["admin"])
    body = login(world.users["admin"]).get(_url(world.li.code)).json()
    assert body["code"] == world.zhang.code and body["asked_for"] == world.li.code
    assert sum(d["records"] for d in body["records_by_department"]) == 5


def test_the_answer_is_never_cached(world, login):
    response = login(world.users["admin"]).get(_url(world.zhang.code))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
