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


def test_staff_cannot_sign_in_to_my_space_and_learn_nothing_from_trying(client, world):
    """A staff name with its right password gets the same answer as a wrong password: the
    sign-in must not confirm a staff password to whoever tries it."""
    staff = world.users["police"].username
    right = client.post(
        reverse("myspace:login"), {"username": staff, "password": "identity-pages-secret-1"}
    )
    wrong = client.post(reverse("myspace:login"), {"username": staff, "password": "not-it-at-all"})
    assert right.status_code == wrong.status_code == 200
    assert "Please enter a correct username and password" in right.content.decode()
    assert _login_error(right) == _login_error(wrong)
    assert "Staff sign in on the staff page" not in right.content.decode()
    assert client.get("/my/").status_code == 302


def _login_error(response) -> str:
    import re

    found = re.search(r'id="login-error">(.*?)</p>', response.content.decode(), re.S)
    return found.group(1) if found else ""


def _firm_form(world, **changes) -> dict:
    form = {
        "kind": "enterprise",
        "credit_code": world.uscc,
        "name": "张伟",
        "id_number": world.id_zhang,
        "username": f"firm-{world.n}",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
    }
    return {**form, **changes}


def test_a_namesake_cannot_take_over_an_enterprise(client, world):
    """The market register holds only the legal representative's name, so anyone of that name
    could once register as the firm's representative. Enterprises no longer self-register."""
    from datetime import date

    from django.utils import timezone

    from civicpulse.identity.identifiers import make_resident_id
    from civicpulse.identity.models import Entity

    namesake_id = make_resident_id("330106", date(1995, 1, 2), 77)
    now = timezone.now()
    Entity.objects.create(
        code=f"R8{world.n:07d}99",
        kind="resident",
        attributes={"name": "张伟", "id_number": namesake_id, "phone": "13711112222"},
        provenance={},
        identifier=namesake_id,
        area=world.district_b,
        created_at=now,
        updated_at=now,
    )
    for form in (
        _firm_form(world, id_number=namesake_id, username=f"evil-{world.n}"),
        _firm_form(world),  # even the true representative's own details
    ):
        response = _register(client, form)
        assert response.status_code == 400
        assert world.uscc not in response.content.decode()
    assert not Account.objects.filter(entity=world.firm).exists()
    assert not get_user_model().objects.filter(username__in=[f"evil-{world.n}", f"firm-{world.n}"])
    page = client.get(reverse("myspace:register")).content.decode()
    assert "issued by the service hall" in page
    assert 'name="credit_code"' not in page and 'value="enterprise"' not in page


def test_an_issued_enterprise_account_works_and_is_audited(client, world):
    from civicpulse.identity import services

    person = get_user_model().objects.create_user(f"firm-{world.n}", password=NEW_PASSWORD)
    before = AuditEntry.objects.filter(action="identity.account.issue").count()
    account = services.issue_account(
        world.firm, person, Account.Relation.REPRESENTATIVE, actor=world.users["admin"]
    )
    assert account.entity == world.firm and account.relation == "representative"
    entry = AuditEntry.objects.filter(action="identity.account.issue").order_by("-seq").first()
    assert AuditEntry.objects.filter(action="identity.account.issue").count() == before + 1
    assert entry.actor == world.users["admin"].username
    assert entry.detail["user"] == person.username

    response = client.post(
        reverse("myspace:login"), {"username": person.username, "password": NEW_PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/my/"
    html = client.get("/my/").content.decode()
    assert "杭州测试科技有限公司" in html and world.uscc in html
    assert 'data-department="Civil affairs"' in html
    assert world.case.tracking_no not in html, (
        "the representative's own requests are not the firm's"
    )
    assert world.id_zhang not in html


@pytest.mark.parametrize("actor", ["civil", "leader", "resident"])
def test_only_the_data_bureau_issues_accounts(world, actor):
    from django.core.exceptions import PermissionDenied

    from civicpulse.identity import access

    person = get_user_model().objects.create_user(f"firm-{world.n}", password=NEW_PASSWORD)
    with pytest.raises(PermissionDenied):
        access.issue_account(world.firm, person, "representative", actor=world.users[actor])
    assert not Account.objects.filter(user=person).exists()


def test_issuing_refuses_what_would_be_wrong(world):
    from civicpulse.identity import access

    admin = world.users["admin"]
    person = get_user_model().objects.create_user(f"firm-{world.n}", password=NEW_PASSWORD)
    wrong = [
        (world.firm, person, "self", "relation"),  # a firm has no "self"
        (world.zhang, person, "representative", "relation"),
        (world.merged, person, "self", "merged"),  # a merged entity: issue on the survivor
        (world.firm, world.users["police"], "representative", "staff"),
    ]
    for entity, user, relation, why in wrong:
        with pytest.raises(access.AccountError) as refused:
            access.issue_account(entity, user, relation, actor=admin)
        assert refused.value.code == why
    access.issue_account(world.firm, person, "representative", actor=admin)
    other = get_user_model().objects.create_user(f"firm2-{world.n}", password=NEW_PASSWORD)
    with pytest.raises(access.AccountError) as refused:  # one account per user
        access.issue_account(world.zhang, person, "self", actor=admin)
    assert refused.value.code == "has account"
    with pytest.raises(access.AccountError) as refused:  # one representative account per firm
        access.issue_account(world.firm, other, "representative", actor=admin)
    assert refused.value.code == "taken"
    assert Account.objects.filter(entity=world.firm).count() == 1


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


# --- accounts after merges ------------------------------------------------------------------


def _account_on(world, entity, username):
    from django.utils import timezone

    user = get_user_model().objects.create_user(username, password=NEW_PASSWORD)
    return Account.objects.create(
        user=user, entity=entity, relation="self", verified_at=timezone.now()
    )


def test_an_account_on_a_merged_entity_counts_for_the_survivor(client, world):
    """world.merged went into Zhang Wei: its account is his, so he gets no second one."""
    _account_on(world, world.merged, f"owner-{world.n}")
    response = _register(client, _resident(world, username=f"second-{world.n}"))
    assert response.status_code == 400 and NO_MATCH in response.content.decode()
    assert not get_user_model().objects.filter(username=f"second-{world.n}").exists()
    entry = AuditEntry.objects.filter(action="identity.register.refused").order_by("-seq").first()
    assert entry.detail["why"] == "taken"


def test_an_account_two_merges_back_counts_too(client, world):
    from django.utils import timezone

    from civicpulse.identity.models import Entity

    now = timezone.now()
    older = Entity.objects.create(
        code=f"R9{world.n:07d}05",
        kind="resident",
        attributes={"name": "张伟"},
        provenance={},
        identifier="",
        area=world.grid_a,
        created_at=now,
        updated_at=now,
        status=Entity.Status.MERGED,
        merged_into=world.merged,  # which itself went into Zhang Wei
    )
    _account_on(world, older, f"oldest-{world.n}")
    response = _register(client, _resident(world, username=f"second-{world.n}"))
    assert response.status_code == 400
    assert not Account.objects.filter(entity=world.zhang).exists()
    # with that account gone, he registers
    Account.objects.filter(entity=older).delete()
    assert _register(client, _resident(world, username=f"second-{world.n}")).status_code == 302


# --- what the register page says, and when ---------------------------------------------------


def test_a_taken_user_name_is_told_only_after_the_identity_is_verified(client, world):
    staff = world.users["admin"].username
    stranger = _register(client, _resident(world, name="王五", username=staff))
    html = stranger.content.decode()
    assert stranger.status_code == 400 and NO_MATCH in html
    assert "user name is taken" not in html
    verified = _register(Client(), _resident(world, username=staff.upper()))
    assert verified.status_code == 400
    assert "This user name is taken" in verified.content.decode()
    assert not Account.objects.filter(entity=world.zhang).exists()
    # and the same person, choosing another name, gets in
    assert _register(Client(), _resident(world)).status_code == 302


def test_a_refused_registration_does_not_show_the_id_number_again(client, world):
    for response in (
        _register(client, _resident(world, name="王五")),  # does not match
        _register(client, _resident(world, mobile="12")),  # a form error
    ):
        assert response.status_code == 400
        html = response.content.decode()
        assert world.id_zhang not in html
        assert "no-store" in response["Cache-Control"]
    assert "no-store" in client.get(reverse("myspace:register"))["Cache-Control"]


def test_a_flood_of_refusals_writes_only_a_couple_of_audit_entries(client, world):
    before = AuditEntry.objects.filter(action="identity.register.refused").count()
    codes = [_register(client, {"kind": "resident"}).status_code for _ in range(30)]
    assert codes[0] == 400 and codes[-1] == 429
    added = AuditEntry.objects.filter(action="identity.register.refused").count() - before
    assert 1 <= added <= 2
