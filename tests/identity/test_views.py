"""The master index's staff pages: who may open them, scope by area and department, masking and
revealing, the audit entry of every look, the review queue and undoing a merge."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from civicpulse.core.models import AuditEntry
from civicpulse.identity import master
from civicpulse.identity.checks import mask
from civicpulse.identity.models import Entity, EntityEvent, ReviewPair

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def _entity_url(entity) -> str:
    return reverse("identity:entity", args=[entity.code])


def _audits(action: str, object_id: str | None = None) -> int:
    entries = AuditEntry.objects.filter(action=action)
    if object_id is not None:
        entries = entries.filter(object_id=object_id)
    return entries.count()


# --- who may come in ------------------------------------------------------------------------


def test_a_visitor_is_sent_to_sign_in(client, world):
    for url in ("/identity/", _entity_url(world.zhang), "/identity/review/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.parametrize("who", ["resident", "analyst"])
def test_residents_and_analysts_are_refused(world, login, who):
    client = login(world.users[who])
    assert client.get("/identity/").status_code == 403
    assert client.get(_entity_url(world.zhang)).status_code == 403
    assert client.get("/identity/review/").status_code == 403


def test_a_grid_worker_sees_their_area_only(world, login):
    inside = login(world.users["grid_in"])
    assert inside.get(_entity_url(world.zhang)).status_code == 200
    outside = Client()
    outside.login(username=world.users["grid_out"].username, password="identity-pages-secret-1")
    before = _audits("identity.view", str(world.zhang.pk))
    assert outside.get(_entity_url(world.zhang)).status_code == 403
    assert outside.get(_entity_url(world.li)).status_code == 200
    assert _audits("identity.view", str(world.zhang.pk)) == before, "a refused look was audited"


def test_a_city_level_entity_is_for_city_wide_roles_only(world, login):
    assert login(world.users["grid_in"]).get(_entity_url(world.nowhere)).status_code == 403
    assert login(world.users["police_b"]).get(_entity_url(world.nowhere)).status_code == 403
    assert login(world.users["admin"]).get(_entity_url(world.nowhere)).status_code == 200


def test_an_unknown_code_is_404(world, login):
    assert login(world.users["admin"]).get("/identity/entities/NOPE0000/").status_code == 404


# --- the 360° view --------------------------------------------------------------------------


def test_the_data_bureau_sees_every_record_masked_with_problems_and_explanations(world, login):
    client = login(world.users["admin"])
    before = _audits("identity.view", str(world.zhang.pk))
    response = client.get(_entity_url(world.zhang))
    assert response.status_code == 200
    html = response.content.decode()
    assert world.id_zhang not in html and world.id_zhang_bad not in html
    assert mask("resident_id", world.id_zhang) in html
    assert world.phone_zhang not in html and mask("mobile", world.phone_zhang) in html
    assert "幸福路12号3单元501室" not in html
    # each department's records, with the allowance record's problem and explanation
    for record in (world.zhang_police, world.zhang_allowance, world.zhang_hotline):
        assert f'id="record-{record.pk}"' in html
    assert "check character should be X" in html
    assert 'data-field="name_sound"' in html and "6.2" in html and "-1.3" in html
    # services, requests and the history with its undo button
    assert "高龄津贴" in html
    assert world.case.tracking_no in html and world.other_case.tracking_no not in html
    assert f'action="{reverse("identity:undo", args=[world.merge_event.pk])}"' in html
    assert world.merged.code in html  # listed as merged into this entity
    assert _audits("identity.view", str(world.zhang.pk)) == before + 1


def test_department_staff_see_their_own_departments_values_only(world, login):
    client = login(world.users["police"])
    html = client.get(_entity_url(world.zhang)).content.decode()
    assert f'id="record-{world.zhang_police.pk}"' in html
    # the civil-affairs allowance and the hotline record: listed, held by them, without values
    assert f'id="record-{world.zhang_allowance.pk}"' not in html
    assert f'class="held-by" data-record="{world.zhang_allowance.pk}"' in html
    assert "held by Civil affairs" in html and "held by Urban management" in html
    assert "check character should be X" not in html
    assert "幸福路十二号" not in html
    assert "高龄津贴</td>" not in html, "another department's service is listed"
    assert world.case.tracking_no not in html, "requests come from the hotline's records"
    # no undo and no reveal for department staff
    assert reverse("identity:undo", args=[world.merge_event.pk]) not in html
    assert 'id="reveal-form"' not in html


def test_every_view_of_the_page_is_audited(world, login):
    client = login(world.users["leader"])
    before = _audits("identity.view", str(world.zhang.pk))
    for _ in range(3):
        assert client.get(_entity_url(world.zhang)).status_code == 200
    assert _audits("identity.view", str(world.zhang.pk)) == before + 3
    last = AuditEntry.objects.filter(action="identity.view").order_by("-seq").first()
    assert last.actor == world.users["leader"].username
    assert last.detail["revealed"] is False
    assert world.zhang_police.pk in last.detail["records_shown"]


def test_a_merged_code_leads_to_the_surviving_entity(world, login):
    response = login(world.users["admin"]).get(_entity_url(world.merged))
    assert response.status_code == 302
    assert response["Location"] == _entity_url(world.zhang)


# --- revealing ------------------------------------------------------------------------------


def test_a_data_admin_reveals_with_a_reason_for_that_response_only(world, login):
    client = login(world.users["admin"])
    before = _audits("identity.reveal", str(world.zhang.pk))
    response = client.post(_entity_url(world.zhang), {"reason": "resident asked at the counter"})
    assert response.status_code == 200
    html = response.content.decode()
    assert world.id_zhang in html and world.phone_zhang in html
    assert "no-store" in response["Cache-Control"]
    entry = AuditEntry.objects.filter(action="identity.reveal").order_by("-seq").first()
    assert _audits("identity.reveal", str(world.zhang.pk)) == before + 1
    assert entry.detail["reason"] == "resident asked at the counter"
    # the next look is masked again
    assert world.id_zhang not in client.get(_entity_url(world.zhang)).content.decode()


def test_a_reveal_needs_a_reason(world, login):
    client = login(world.users["admin"])
    response = client.post(_entity_url(world.zhang), {"reason": "x"})
    assert response.status_code == 400
    assert world.id_zhang not in response.content.decode()


def test_department_staff_may_not_reveal(world, login):
    client = login(world.users["police"])
    response = client.post(_entity_url(world.zhang), {"reason": "I would like to see it"})
    assert response.status_code == 403
    assert world.id_zhang.encode() not in response.content


def test_a_reveal_without_the_csrf_token_is_refused(world):
    client = Client(enforce_csrf_checks=True)
    client.login(username=world.users["admin"].username, password="identity-pages-secret-1")
    response = client.post(_entity_url(world.zhang), {"reason": "no token with this one"})
    assert response.status_code == 403
    assert world.id_zhang.encode() not in response.content


# --- search ---------------------------------------------------------------------------------


def _found(response) -> list[str]:
    import re

    return re.findall(r'<tr data-entity="([^"]+)"', response.content.decode())


def test_search_by_code_identifier_and_name(world, login):
    client = login(world.users["admin"])
    assert _found(client.get("/identity/", {"q": world.li.code})) == [world.li.code]
    spaced = " ".join([world.id_li[:6], world.id_li[6:14], world.id_li[14:]])
    assert _found(client.get("/identity/", {"q": spaced})) == [world.li.code]
    assert _found(client.get("/identity/", {"q": world.uscc.lower()})) == [world.firm.code]
    by_name = client.get("/identity/", {"q": "张伟"})
    assert world.zhang.code in _found(by_name) and world.li.code not in _found(by_name)
    html = by_name.content.decode()
    assert world.id_zhang not in html and mask("resident_id", world.id_zhang) in html


def test_search_refuses_fragments_of_numbers(world, login):
    client = login(world.users["admin"])
    response = client.get("/identity/", {"q": world.id_zhang[:10]})
    assert response.status_code == 200 and _found(response) == []
    assert "parts of numbers are not searched" in response.content.decode()


def test_search_is_scoped_and_audited(world, login):
    client = login(world.users["grid_out"])
    before = _audits("identity.search")
    assert _found(client.get("/identity/", {"q": "张伟"})) == []
    assert _found(client.get("/identity/", {"q": world.id_zhang})) == []
    assert _found(client.get("/identity/", {"q": "李娜"})) == [world.li.code]
    assert _audits("identity.search") == before + 3
    last = AuditEntry.objects.filter(action="identity.search").order_by("-seq").first()
    assert last.detail == {"by": "name", "found": [world.li.code]}
    # a code outside the scope, or a code-shaped one nobody has: simply nobody
    for code in (world.zhang.code, "R9999999999", "r9999999999"):
        response = client.get("/identity/", {"q": code})
        assert _found(response) == [] and 'id="identity-none"' in response.content.decode()


def test_hostile_search_input(world, login):
    client = login(world.users["admin"])
    assert client.get("/identity/", {"q": "张" * 10_000}).status_code == 400
    response = client.get("/identity/", {"q": "<script>alert(1)</script>"})
    assert response.status_code == 200
    assert b"<script>alert(1)</script>" not in response.content


def test_html_in_names_is_escaped(world, login):
    world.li.attributes["name"] = "<script>alert('x')</script>"
    world.li.save()
    world.li_police.attributes["address"] = "<img src=x onerror=alert(1)>"
    world.li_police.save()
    client = login(world.users["admin"])
    html = client.post(_entity_url(world.li), {"reason": "checking escaping here"}).content
    assert b"<script>alert" not in html and b"<img src=x" not in html
    assert b"&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html


# --- the review queue -----------------------------------------------------------------------


def test_the_review_queue_shows_pairs_masked_with_their_explanation(world, login):
    client = login(world.users["admin"])
    response = client.get("/identity/review/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-pair="{world.pair.pk}"' in html
    assert world.id_li not in html and mask("resident_id", world.id_li) in html
    assert 'data-field="name"' in html
    assert _audits("identity.review.view") >= 1


def test_department_staff_review_only_pairs_of_their_department(world, login):
    # the pair holds a civil-affairs record and a police record
    assert (
        f'data-pair="{world.pair.pk}"'
        in login(world.users["civil"]).get("/identity/review/").content.decode()
    )
    client = login(world.users["police_b"])  # police, but only district B: Zhang is in A
    assert f'data-pair="{world.pair.pk}"'.encode() not in client.get("/identity/review/").content
    response = client.post(reverse("identity:decide", args=[world.pair.pk]), {"decision": "same"})
    assert response.status_code == 404
    assert ReviewPair.objects.get(pk=world.pair.pk).status == "pending"
    assert login(world.users["grid_in"]).get("/identity/review/").status_code == 403


def test_deciding_a_pair_sticks_and_drops_it_from_the_queue(world, login):
    client = login(world.users["admin"])
    response = client.post(
        reverse("identity:decide", args=[world.pair.pk]),
        {"decision": "different", "note": "different birth years"},
    )
    assert response.status_code == 302
    pair = ReviewPair.objects.get(pk=world.pair.pk)
    assert pair.status == "different" and pair.decided_by == world.users["admin"]
    assert f'data-pair="{world.pair.pk}"' not in client.get("/identity/review/").content.decode()
    assert _audits("identity.decide", str(world.pair.pk)) == 1
    again = client.post(reverse("identity:decide", args=[world.pair.pk]), {"decision": "same"})
    assert again.status_code == 404
    assert ReviewPair.objects.get(pk=world.pair.pk).status == "different"


def test_a_bad_decision_changes_nothing(world, login):
    client = login(world.users["admin"])
    url = reverse("identity:decide", args=[world.pair.pk])
    assert client.post(url, {"decision": "maybe"}).status_code == 302
    assert client.get(url).status_code == 405
    assert ReviewPair.objects.get(pk=world.pair.pk).status == "pending"


# --- undo -----------------------------------------------------------------------------------


def test_only_the_data_bureau_may_undo(world, login):
    url = reverse("identity:undo", args=[world.merge_event.pk])
    assert login(world.users["leader"]).post(url).status_code == 403
    assert login(world.users["police"]).post(url).status_code == 403
    assert EntityEvent.objects.get(pk=world.merge_event.pk).undone_by_id is None
    assert Entity.objects.get(pk=world.merged.pk).status == "merged"


def test_a_data_admin_undoes_a_merge_and_both_keep_their_history(world, login):
    event = master.merge(world.zhang, world.li, user=world.users["admin"], note="same person?")
    client = login(world.users["admin"])
    assert client.get(_entity_url(world.li))["Location"] == _entity_url(world.zhang)
    html = client.get(_entity_url(world.zhang)).content.decode()
    assert f'id="record-{world.li_police.pk}"' in html, "the merged records are not shown"
    undo_url = reverse("identity:undo", args=[event.pk])
    assert f'action="{undo_url}"' in html
    response = client.post(undo_url)
    assert response.status_code == 302 and response["Location"] == _entity_url(world.zhang)
    li = Entity.objects.get(pk=world.li.pk)
    assert li.status == "active" and li.code == world.li.code
    assert set(li.records.values_list("pk", flat=True)) == {world.li_police.pk, world.li_hotline.pk}
    assert EntityEvent.objects.get(pk=event.pk).undone_by is not None
    html = client.get(_entity_url(world.zhang)).content.decode()
    assert f'action="{undo_url}"' not in html, "an undone merge offers undo again"
    assert 'data-action="undone"' in html and 'data-action="merged"' in html
    assert _audits("identity.undo", str(world.zhang.pk)) >= 1
    # undoing twice changes nothing
    client.post(undo_url)
    assert Entity.objects.get(pk=world.li.pk).status == "active"


# --- what the 360° view lists of a person's requests ----------------------------------------


def _police_case_in_district_b(world):
    """A request Zhang Wei made to the police about district B: urban staff of grid A may not
    see it in the cases app, so not on his page either."""
    from django.utils import timezone

    from civicpulse.cases.models import Case, Service

    service = Service.objects.create(
        code=f"id-pol-{world.n}",
        group="治安",
        department=world.police,
        name_zh="治安",
        name_en="Security",
    )
    case = Case.objects.create(
        tracking_no=f"TST{world.n:04d}0099",
        channel="hotline",
        service=service,
        department=world.police,
        area=world.district_b,
        title="举报邻居家暴",
        description="x",
        created_at=timezone.now(),
    )
    case.reporters.add(world.reporter)
    return case


def test_the_360_view_lists_only_requests_the_viewer_may_see_in_the_cases_app(world, client):
    from civicpulse.cases import services as cases
    from civicpulse.core import accounts
    from civicpulse.core.models import Role

    secret = _police_case_in_district_b(world)
    urban = accounts.create_staff(
        f"id-urban-{world.n}",
        "identity-pages-secret-1",
        Role.DEPARTMENT_STAFF,
        department=world.urban,
        areas=[world.grid_a],
    )
    assert not cases.visible_cases(urban).filter(pk=secret.pk).exists()
    assert client.login(username=urban.username, password="identity-pages-secret-1")
    response = client.get(_entity_url(world.zhang))
    html = response.content.decode()
    assert response.status_code == 200
    assert world.case.tracking_no in html, "his request to urban management in grid A"
    assert secret.tracking_no not in html and "举报邻居家暴" not in html
    entry = AuditEntry.objects.filter(action="identity.view").order_by("-seq").first()
    assert entry.detail["requests_shown"] == 1
    # the data bureau sees the whole city's cases, so both
    html = Client()
    html.login(username=world.users["admin"].username, password="identity-pages-secret-1")
    page = html.get(_entity_url(world.zhang)).content.decode()
    assert secret.tracking_no in page and world.case.tracking_no in page


def test_a_merged_code_outside_scope_names_no_survivor(world, login):
    from django.utils import timezone

    now = timezone.now()
    survivor = Entity.objects.create(
        code=f"R7{world.n:07d}55",
        kind="resident",
        attributes={"name": "赵六"},
        provenance={},
        identifier="",
        area=world.district_b,
        created_at=now,
        updated_at=now,
    )
    merged = Entity.objects.create(
        code=f"R7{world.n:07d}56",
        kind="resident",
        attributes={"name": "赵六"},
        provenance={},
        identifier="",
        area=world.grid_a,
        created_at=now,
        updated_at=now,
        status=Entity.Status.MERGED,
        merged_into=survivor,
    )
    client = login(world.users["grid_in"])  # sees grid A (the merged one), not district B
    response = client.get(_entity_url(merged))
    assert response.status_code == 403
    assert survivor.code not in response.content.decode()
    # nothing waits in the messages for the next page either
    assert survivor.code not in client.get("/identity/").content.decode()
    assert survivor.code not in str(client.cookies)


def test_staff_pages_with_personal_data_are_never_cached(world, login):
    client = login(world.users["admin"])
    for url in (
        "/identity/?q=%E5%BC%A0%E4%BC%9F",
        "/identity/",
        "/identity/review/",
        _entity_url(world.zhang),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url
        assert "private" in response["Cache-Control"], url
