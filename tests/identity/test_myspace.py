""" "My space": registering by proving who you are, signing in, and seeing your own requests,
notices, services and what the city holds — and never anyone else's."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from civicpulse.core.models import AuditEntry
from civicpulse.identity.checks import mask
from civicpulse.identity.models import Account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]

NEW_PASSWORD = "a-long-resident-passphrase-42"
NO_MATCH = "These details do not match our records"


def _resident(world, **changes) -> dict:
    form = {
        "kind": "resident",
        "id_number": world.id_zhang,
        "name": "张伟",
        "mobile": world.phone_zhang,
        "username": f"zhangwei-{world.n}",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    return {**form, **changes}


def _register(client, form):
    return client.post(reverse("myspace:register"), form)


def test_anonymous_and_staff_are_sent_to_the_my_space_sign_in(client, world, login):
    response = client.get("/my/")
    assert response.status_code == 302 and response["Location"].startswith("/my/login/")
    staff = login(world.users["admin"])
    response = staff.get("/my/")
    assert response.status_code == 302 and response["Location"].startswith("/my/login/")


def test_a_resident_registers_and_sees_their_own_space(client, world):
    before = AuditEntry.objects.filter(action="identity.register").count()
    response = _register(client, _resident(world, mobile="+86 " + world.phone_zhang))
    assert response.status_code == 302 and response["Location"] == "/my/"
    account = Account.objects.get(user__username=f"zhangwei-{world.n}")
    assert account.entity == world.zhang and account.relation == "self"
    assert AuditEntry.objects.filter(action="identity.register").count() == before + 1

    response = client.get("/my/")
    assert response.status_code == 200
    html = response.content.decode()
    # requests with status and tracking number, notices, services, who holds records
    assert world.case.tracking_no in html and "in progress" in html
    assert world.other_case.tracking_no not in html
    assert "您的诉求已受理" in html
    assert "高龄津贴" in html
    for department in ("Police", "Civil affairs", "Urban management"):
        assert f'data-department="{department}"' in html
    # their own data unmasked to them, except the ID number
    assert world.phone_zhang in html and "幸福路12号3单元501室" in html
    assert world.id_zhang not in html and mask("resident_id", world.id_zhang) in html
    assert AuditEntry.objects.filter(action="identity.myspace.view").exists()


def test_one_account_never_sees_another_residents_request(client, world):
    _register(client, _resident(world))
    mine = client.get(reverse("myspace:request", args=[world.case.tracking_no]))
    assert mine.status_code == 200 and "路灯不亮" in mine.content.decode()
    theirs = client.get(reverse("myspace:request", args=[world.other_case.tracking_no]))
    assert theirs.status_code == 404
    assert client.get(reverse("myspace:request", args=["NO-SUCH-CASE"])).status_code == 404
    assert "噪音扰民" not in client.get("/my/").content.decode()


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "张卫"},  # another name
        {"mobile": "13912345678"},  # another mobile
        {"id_number": "IDSWAP"},  # a valid ID number of someone else (Li Na)
    ],
)
def test_details_that_do_not_match_say_only_that(client, world, changes):
    if changes.get("id_number") == "IDSWAP":
        changes = {"id_number": world.id_li}
    response = _register(client, _resident(world, **changes))
    assert response.status_code == 400
    html = response.content.decode()
    assert NO_MATCH in html
    assert 'class="error field-error"' not in html, "the refusal names a field"
    assert not Account.objects.filter(entity=world.zhang).exists()
    assert not get_user_model().objects.filter(username=f"zhangwei-{world.n}").exists()
    entry = AuditEntry.objects.filter(action="identity.register.refused").order_by("-seq").first()
    assert entry.detail["why"] == "no match"


def test_an_invalid_id_number_gets_its_reason(client, world):
    response = _register(client, _resident(world, id_number=world.id_zhang_bad))
    assert response.status_code == 400
    html = response.content.decode()
    assert "This ID number is not valid: check character should be" in html
    assert NO_MATCH not in html
    response = _register(client, _resident(world, id_number="12345"))
    assert "an ID number has 18 characters, this one has 5" in response.content.decode()


def test_an_entity_gets_one_self_account(client, world):
    assert _register(client, _resident(world)).status_code == 302
    second = Client()
    response = _register(second, _resident(world, username=f"someone-else-{world.n}"))
    assert response.status_code == 400 and NO_MATCH in response.content.decode()
    assert Account.objects.filter(entity=world.zhang).count() == 1


def test_registration_attempts_are_rate_limited(client, world):
    for attempt in range(10):
        response = _register(client, _resident(world, name=f"错名{attempt}"))
        assert response.status_code == 400
    response = _register(client, _resident(world))  # even the right details, now
    assert response.status_code == 429
    assert response["Retry-After"] == "3600"
    assert not Account.objects.filter(entity=world.zhang).exists()


def test_hostile_registration_input(client, world):
    response = _register(
        client,
        _resident(world, name="<script>alert(1)</script>" * 500, mobile="1" * 5000),
    )
    assert response.status_code == 400
    assert b"<script>alert(1)</script>" not in response.content
    response = _register(client, _resident(world, username="<b>me</b>"))
    assert response.status_code == 400 and b"<b>me</b>" not in response.content
    assert not Account.objects.filter(entity=world.zhang).exists()


def test_weak_or_differing_passwords_are_refused(client, world):
    assert _register(client, _resident(world, password1="123", password2="123")).status_code == 400
    response = _register(client, _resident(world, password2="something-else-entirely"))
    assert response.status_code == 400 and "The two passwords differ." in response.content.decode()
    assert not Account.objects.filter(entity=world.zhang).exists()


def test_sign_in_and_out(client, world):
    _register(client, _resident(world))
    client.post(reverse("myspace:logout"))
    assert client.get("/my/").status_code == 302
    response = client.post(
        reverse("myspace:login"), {"username": f"zhangwei-{world.n}", "password": NEW_PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/my/"
    assert client.get("/my/").status_code == 200


def test_staff_cannot_sign_in_to_my_space(client, world):
    response = client.post(
        reverse("myspace:login"),
        {"username": world.users["police"].username, "password": "identity-pages-secret-1"},
    )
    assert response.status_code == 200
    assert "This sign-in is for residents" in response.content.decode()
    assert client.get("/my/").status_code == 302


def test_an_enterprise_representative_registers_and_sees_the_enterprise(client, world):
    form = {
        "kind": "enterprise",
        "credit_code": world.uscc,
        "name": "张伟",
        "id_number": world.id_zhang,
        "username": f"firm-{world.n}",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    wrong = _register(client, {**form, "name": "李娜", "id_number": world.id_li})
    assert wrong.status_code == 400 and NO_MATCH in wrong.content.decode()
    response = _register(client, form)
    assert response.status_code == 302
    account = Account.objects.get(user__username=f"firm-{world.n}")
    assert account.entity == world.firm and account.relation == "representative"
    html = client.get("/my/").content.decode()
    assert "杭州测试科技有限公司" in html and world.uscc in html
    assert 'data-department="Civil affairs"' in html
    assert world.case.tracking_no not in html, (
        "the representative's own requests are not the firm's"
    )
    assert world.id_zhang not in html


def test_a_merged_account_follows_its_entity(client, world):
    from civicpulse.identity import master

    _register(client, _resident(world))
    master.merge(world.li, world.zhang, user=world.users["admin"])  # Zhang goes into Li
    response = client.get("/my/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"master ID {world.li.code}" in html
    assert world.case.tracking_no in html and world.other_case.tracking_no in html


def test_sign_in_attempts_are_rate_limited(client, world):
    _register(client, _resident(world))
    client.post(reverse("myspace:logout"))
    wrong = {"username": f"zhangwei-{world.n}", "password": "not-the-password"}
    for _ in range(20):
        assert client.post(reverse("myspace:login"), wrong).status_code == 200
    right = {"username": f"zhangwei-{world.n}", "password": NEW_PASSWORD}
    response = client.post(reverse("myspace:login"), right)
    assert response.status_code == 429 and response["Retry-After"] == "600"
    assert client.get("/my/").status_code == 302


def test_my_space_is_never_cached(client, world):
    _register(client, _resident(world))
    assert "no-store" in client.get("/my/")["Cache-Control"]
