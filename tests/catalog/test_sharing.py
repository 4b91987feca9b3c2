"""Sharing between departments, driven through the real pages and API with CSRF checks on:
department B asks for department A's data (real NYC 311 rows, and a register of generated
resident ID numbers beside them), A decides, B reads masked rows, A revokes; expiry by the clock
alone; refusals that are audited; usage per department."""

from __future__ import annotations

import csv
import re
from datetime import date, timedelta

import duckdb
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from civicpulse.catalog import services, sharing
from civicpulse.catalog.models import Dataset, DatasetRead, ShareGrant, ShareRequest
from civicpulse.core import accounts, audit
from civicpulse.core.models import AuditEntry, Department, Role
from civicpulse.identity import services as identity
from civicpulse.identity.identifiers import make_resident_id
from civicpulse.lake.sql import quote_identifier
from tests.support import shared_data

pytestmark = [pytest.mark.django_db, pytest.mark.shared_data]

PASSWORD = "pw-sharing-123"
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]
NYC = "311/nyc_311_qsv_100.csv"
ROWS = 100
ID_COLUMN = "身份证号"
MASKED_ID = re.compile(r"^\d{6}\*{8}[0-9X]{4}$")


# --------------------------------------------------------------------------- the city


@pytest.fixture
def city(db, settings):
    settings.PASSWORD_HASHERS = FAST_HASHER
    a, _ = Department.objects.get_or_create(
        code="SHARE-A", defaults={"name_zh": "城管局", "name_en": "Urban management"}
    )
    b, _ = Department.objects.get_or_create(
        code="SHARE-B", defaults={"name_zh": "民政局", "name_en": "Civil affairs"}
    )
    return {
        "a_dept": a,
        "b_dept": b,
        "a": accounts.create_staff("share-a", PASSWORD, Role.DEPARTMENT_STAFF, department=a),
        "b": accounts.create_staff("share-b", PASSWORD, Role.DEPARTMENT_STAFF, department=b),
        "admin": accounts.create_staff("share-admin", PASSWORD, Role.DATA_ADMIN),
    }


_slugs = iter(range(1, 10_000))


def _dataset(owner: Department, path, **kwargs) -> Dataset:
    dataset = services.register_dataset(
        f"share-{next(_slugs)}-{timezone.now():%H%M%S%f}", title="共享测试", owner=owner, **kwargs
    )
    services.load_version(dataset, path, progress=False)
    dataset.refresh_from_db()
    return dataset


@pytest.fixture
def nyc(city):
    """A's dataset: the real 100 NYC 311 rows, graded general."""
    return _dataset(city["a_dept"], shared_data(NYC))


@pytest.fixture
def register(city, tmp_path):
    """A's register: real 311 keys and complaint types beside generated resident ID numbers,
    classified, then graded core by a person, as the catalog asks."""
    with shared_data(NYC).open(encoding="utf-8-sig", newline="") as handle:
        real = list(csv.DictReader(handle))[:ROWS]
    ids = [
        make_resident_id("110105", date(1950, 1, 1) + timedelta(days=131 * i), i)
        for i in range(ROWS)
    ]
    path = tmp_path / "register.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Unique Key", "Complaint Type", ID_COLUMN])
        for row, number in zip(real, ids, strict=True):
            writer.writerow([row["Unique Key"], row["Complaint Type"], number])
    dataset = _dataset(city["a_dept"], path)
    services.classify(dataset)
    dataset.grade = Dataset.Grade.CORE
    dataset.save()
    tags = dict(dataset.current_version.columns.values_list("name", "personal_tags"))
    assert tags[ID_COLUMN] == ["resident_id"]
    return dataset, ids, real


def _client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    # pages in English, as the checked texts are; the middleware would otherwise leave the
    # site's default language active in this thread for the calls that follow
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def _token(client: Client, url: str) -> str:
    html = client.get(url).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def _ask(client, dataset, columns, *, purpose="核对低保申请人", days=30, start=None):
    url = reverse("catalog:sharing-request", args=[dataset.slug])
    start = start or timezone.localdate()
    return client.post(
        url,
        {
            "csrfmiddlewaretoken": _token(client, url),
            "columns": columns,
            "purpose": purpose,
            "starts_on": start.isoformat(),
            "ends_on": (start + timedelta(days=days)).isoformat(),
        },
    )


def _post(client, url, data, *, token_from):
    return client.post(url, {"csrfmiddlewaretoken": _token(client, token_from), **data})


def _approved(city, dataset, columns, granted=None) -> ShareGrant:
    share_request = sharing.request_access(
        dataset,
        user=city["b"],
        columns=columns,
        purpose="核对",
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate() + timedelta(days=10),
    )
    return sharing.approve(share_request, user=city["a"], columns=granted)


def _audited(action: str, since: int):
    return list(AuditEntry.objects.filter(action=action, seq__gt=since).order_by("seq"))


def _last_seq() -> int:
    last = AuditEntry.objects.order_by("-seq").first()
    return last.seq if last else 0


def _column(version, name: str) -> list:
    with duckdb.connect() as con:
        return [
            r[0]
            for r in con.execute(
                f"SELECT {quote_identifier(name)} FROM read_parquet(?)", [version.data_glob()]
            ).fetchall()
        ]


# --------------------------------------------------------------------------- the whole flow


def test_request_approve_read_masked_refuse_beyond_revoke(city, register):
    dataset, ids, real = register
    since = _last_seq()
    b, a = _client(city["b"]), _client(city["a"])

    asked = _ask(b, dataset, ["Unique Key", "Complaint Type", ID_COLUMN])
    assert asked.status_code == 302 and asked["Location"] == reverse("catalog:sharing-grants")
    share_request = ShareRequest.objects.get(dataset=dataset)
    assert share_request.department == city["b_dept"]
    assert share_request.status == ShareRequest.Status.PENDING
    assert share_request.columns == ["Unique Key", "Complaint Type", ID_COLUMN]
    assert not ShareGrant.objects.filter(dataset=dataset).exists()

    inbox = reverse("catalog:sharing-inbox")
    html = a.get(inbox).content.decode()
    assert f'id="request-{share_request.pk}"' in html and "核对低保申请人" in html
    # B's staff see nothing to decide: the dataset is not theirs
    assert f'id="request-{share_request.pk}"' not in b.get(inbox).content.decode()

    approve = reverse("catalog:sharing-approve", args=[share_request.pk])
    refused = _post(b, approve, {"columns": ["Unique Key"]}, token_from=inbox)
    assert refused.status_code == 403  # the requester cannot approve its own request
    done = _post(a, approve, {"columns": ["Unique Key", ID_COLUMN]}, token_from=inbox)
    assert done.status_code == 302
    grant = ShareGrant.objects.get(dataset=dataset)
    assert grant.columns == ["Unique Key", ID_COLUMN]  # narrowed by the owner
    assert grant.masking == {ID_COLUMN: "resident_id"}
    tomorrow_end = timezone.localdate() + timedelta(days=31)
    assert timezone.localtime(grant.expires_at).date() == tomorrow_end
    assert timezone.localtime(grant.expires_at).time().hour == 0

    rows_url = reverse("catalog:sharing-rows", args=[dataset.slug])
    page = b.get(rows_url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Complaint Type" not in html
    shown_ids = re.findall(r"<td>(\d{6}\*{8}[0-9X]{4})</td>", html)
    assert len(shown_ids) == 50
    assert [identity.mask("resident_id", n) for n in ids[:50]] == shown_ids
    assert not any(n in html for n in ids)  # no number in the clear
    assert real[0]["Unique Key"] in html
    assert "Rows 1–50 of 100" in html and "Page 1 of 2" in html
    read = DatasetRead.objects.get(dataset=dataset, department=city["b_dept"])
    assert (read.rows, read.columns, read.channel, read.grant) == (
        50,
        ["Unique Key", ID_COLUMN],
        "page",
        grant,
    )
    following = b.get(rows_url, {"page": 2}).content.decode()
    assert [identity.mask("resident_id", n) for n in ids[50:]] == re.findall(
        r"<td>(\d{6}\*{8}[0-9X]{4})</td>", following
    )

    # a column beyond the grant: refused with its name, and the refusal audited
    with pytest.raises(sharing.AccessRefused, match="'Complaint Type'"):
        sharing.read(dataset, user=city["b"], columns=["Unique Key", "Complaint Type"], limit=5)
    (refusal,) = _audited("catalog.share_read_refused", since)
    assert refusal.actor == "share-b" and refusal.detail["columns"] == ["Complaint Type"]
    assert DatasetRead.objects.filter(dataset=dataset).count() == 2  # the two pages only

    grants_url = reverse("catalog:sharing-grants")
    revoke = reverse("catalog:sharing-revoke", args=[grant.pk])
    assert _post(a, revoke, {"reason": ""}, token_from=grants_url).status_code == 302
    grant.refresh_from_db()
    assert grant.revoked_at is None  # a reason is required
    assert _post(b, revoke, {"reason": "x"}, token_from=grants_url).status_code == 403
    _post(a, revoke, {"reason": "项目结束"}, token_from=grants_url)
    grant.refresh_from_db()
    assert grant.revoked_at is not None and grant.revoked_by == city["a"]
    after = b.get(rows_url)
    assert after.status_code == 403
    assert "no active grant" in after.content.decode()

    actions = [e.action for e in AuditEntry.objects.filter(seq__gt=since).order_by("seq")]
    for action in (
        "catalog.share_requested",
        "catalog.share_approved",
        "catalog.share_read",
        "catalog.share_read_refused",
        "catalog.share_revoked",
    ):
        assert action in actions
    assert actions.count("catalog.share_read_refused") == 2  # the column, then the revoked read
    count, broken = audit.verify()
    assert broken is None and count >= len(actions)


def test_owner_reads_its_own_data_unmasked_without_grant(city, register):
    dataset, ids, _real = register
    page = sharing.read(dataset, user=city["a"], limit=ROWS)
    assert page.grant is None and page.masked == {}
    assert page.columns == ["Unique Key", "Complaint Type", ID_COLUMN]
    assert [row[2] for row in page.rows] == ids
    with pytest.raises(sharing.SharingError, match="belongs to your department"):
        sharing.request_access(
            dataset,
            user=city["a"],
            columns=[ID_COLUMN],
            purpose="x",
            starts_on=timezone.localdate(),
            ends_on=timezone.localdate(),
        )
    # a data admin decides but does not read by office
    with pytest.raises(sharing.AccessRefused, match="no active grant"):
        sharing.read(dataset, user=city["admin"], limit=1)
    # a hotline operator of the owner department does not read the hub's rows
    operator = accounts.create_staff(
        "share-a-op", PASSWORD, Role.HOTLINE_OPERATOR, department=city["a_dept"]
    )
    with pytest.raises(sharing.AccessRefused, match="department staff only"):
        sharing.read(dataset, user=operator, limit=1)


def test_id_numbers_are_masked_whatever_the_grade_and_names_by_grade(city, register):
    """A grade is a person's decision and new datasets start as general: direct identifiers
    (ID and mobile numbers) are masked for every grade; other personal columns by grade."""
    dataset, ids, _real = register
    dataset.grade = Dataset.Grade.GENERAL
    dataset.save()
    grant = _approved(city, dataset, ["Unique Key", "Complaint Type", ID_COLUMN])
    assert grant.masking == {ID_COLUMN: "resident_id"}
    page = sharing.read(dataset, user=city["b"], limit=3)
    assert [row[2] for row in page.rows] == [identity.mask("resident_id", n) for n in ids[:3]]
    # a column a person tagged as names: shown for a general dataset, masked once re-graded
    # (the stricter rule applies at once, whatever the grant stored)
    column = dataset.current_version.columns.get(name="Complaint Type")
    column.personal_tags = ["name"]
    column.save(update_fields=["personal_tags"])
    page = sharing.read(dataset, user=city["b"], limit=3)
    shown = [row[1] for row in page.rows]
    assert all("*" not in v for v in shown)
    dataset.grade = Dataset.Grade.IMPORTANT
    dataset.save()
    page = sharing.read(dataset, user=city["b"], limit=3)
    assert [row[1] for row in page.rows] == [identity.mask("name", v) for v in shown]
    assert [row[2] for row in page.rows] == [identity.mask("resident_id", n) for n in ids[:3]]


# --------------------------------------------------------------------------- expiry and refusals


def test_an_expired_grant_refuses_reads_with_no_job_run(city, nyc):
    grant = _approved(city, nyc, ["Unique Key", "Borough"])
    assert sharing.read(nyc, user=city["b"], limit=1).rows
    ShareGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    since = _last_seq()
    with pytest.raises(sharing.AccessRefused, match="its grant expired on "):
        sharing.read(nyc, user=city["b"], limit=1)
    assert len(_audited("catalog.share_read_refused", since)) == 1
    assert DatasetRead.objects.filter(dataset=nyc).count() == 1
    page = _client(city["b"]).get(reverse("catalog:sharing-grants")).content.decode()
    assert re.search(rf'id="held-{grant.pk}".*?not active', page, re.S)


def test_a_grant_not_yet_begun_refuses_reads(city, nyc):
    share_request = sharing.request_access(
        nyc,
        user=city["b"],
        columns=["Borough"],
        purpose="下月起核对",
        starts_on=timezone.localdate() + timedelta(days=3),
        ends_on=timezone.localdate() + timedelta(days=5),
    )
    sharing.approve(share_request, user=city["admin"])  # a data admin may decide
    with pytest.raises(sharing.AccessRefused, match="its grant has not begun"):
        sharing.read(nyc, user=city["b"], limit=1)


def test_a_not_shared_dataset_cannot_be_requested(city, tmp_path):
    dataset = _dataset(city["a_dept"], shared_data(NYC), share_type=Dataset.ShareType.NOT_SHARED)
    since = _last_seq()
    b = _client(city["b"])
    form = b.get(reverse("catalog:sharing-request", args=[dataset.slug])).content.decode()
    assert 'id="not-shared"' in form and 'id="request-form"' not in form
    answer = _ask(b, dataset, ["Unique Key"])
    assert answer.status_code == 403
    assert "is not shared" in answer.content.decode()
    assert not ShareRequest.objects.filter(dataset=dataset).exists()
    (entry,) = _audited("catalog.share_request_refused", since)
    assert entry.detail == {"department": "SHARE-B", "reason": "not_shared"}


def test_an_unconditional_dataset_is_granted_at_once(city, register):
    dataset, ids, _real = register
    dataset.share_type = Dataset.ShareType.UNCONDITIONAL
    dataset.save()
    since = _last_seq()
    assert _ask(_client(city["b"]), dataset, [ID_COLUMN]).status_code == 302
    share_request = ShareRequest.objects.get(dataset=dataset)
    assert share_request.status == ShareRequest.Status.APPROVED
    assert share_request.decided_by is None
    (entry,) = _audited("catalog.share_approved", since)
    assert entry.detail["automatic"] is True and entry.actor == "system"
    page = sharing.read(dataset, user=city["b"], limit=2)
    assert page.rows == [[identity.mask("resident_id", n)] for n in ids[:2]]  # still masked


def test_deny_needs_a_note_and_the_requester_sees_it(city, nyc):
    b, a = _client(city["b"]), _client(city["a"])
    _ask(b, nyc, ["Borough"])
    share_request = ShareRequest.objects.get(dataset=nyc)
    inbox = reverse("catalog:sharing-inbox")
    deny = reverse("catalog:sharing-deny", args=[share_request.pk])
    _post(a, deny, {"note": "  "}, token_from=inbox)
    share_request.refresh_from_db()
    assert share_request.status == ShareRequest.Status.PENDING
    assert "a note saying why is required" in a.get(inbox).content.decode()
    _post(a, deny, {"note": "用途与职能无关"}, token_from=inbox)
    share_request.refresh_from_db()
    assert share_request.status == ShareRequest.Status.DENIED
    assert share_request.decided_by == city["a"]
    mine = b.get(reverse("catalog:sharing-grants")).content.decode()
    assert re.search(rf'id="mine-{share_request.pk}".*?用途与职能无关', mine, re.S)
    with pytest.raises(sharing.SharingError, match="already denied"):
        sharing.approve(share_request, user=city["a"])
    assert not ShareGrant.objects.filter(dataset=nyc).exists()


def test_bad_requests_are_refused_with_the_reason_and_store_nothing(city, nyc):
    today = timezone.localdate()
    base = dict(user=city["b"], purpose="核对", starts_on=today, ends_on=today)

    def refused(match, **changes):
        with pytest.raises(sharing.SharingError, match=match):
            sharing.request_access(nyc, **{"columns": ["Borough"], **base, **changes})

    refused(r"no column 'Nope', 'Neither'", columns=["Borough", "Nope", "Neither"])
    refused("name at least one column", columns=[])
    refused("a purpose is required", purpose="   ")
    refused("at most 2000", purpose="x" * 2001)
    refused("starts .* after it ends", starts_on=today + timedelta(days=2))
    refused("367 days long", ends_on=today + timedelta(days=366))
    refused("ended on", starts_on=today - timedelta(days=9), ends_on=today - timedelta(days=2))
    with pytest.raises(sharing.AccessRefused, match="only department staff"):
        sharing.request_access(
            nyc,
            **{**base, "user": accounts.create_staff("share-op", PASSWORD, Role.ANALYST)},
            columns=["Borough"],
        )
    assert not ShareRequest.objects.filter(dataset=nyc).exists()

    page = _ask(_client(city["b"]), nyc, ["Borough", "Nope"])
    assert page.status_code == 400
    assert "no column &#x27;Nope&#x27;" in page.content.decode()
    assert not ShareRequest.objects.filter(dataset=nyc).exists()

    sharing.request_access(nyc, columns=["Borough"], **base)
    refused("already has a request")
    share_request = ShareRequest.objects.get(dataset=nyc)
    with pytest.raises(sharing.SharingError, match="'Agency'"):  # approval never widens
        sharing.approve(share_request, user=city["a"], columns=["Borough", "Agency"])


# --------------------------------------------------------------------------- API and usage


def test_api_rows_json_paging_filters_and_403(city, register):
    dataset, ids, real = register
    _approved(city, dataset, ["Unique Key", ID_COLUMN])
    url = f"/api/v1/catalog/datasets/{dataset.slug}/rows"
    assert Client().get(url).status_code == 401
    b = _client(city["b"])

    first = b.get(url, {"limit": 30, "columns": f"{ID_COLUMN},Unique Key"})
    assert first.status_code == 200
    body = first.json()
    assert body["columns"] == [ID_COLUMN, "Unique Key"]
    assert body["total"] == ROWS and len(body["rows"]) == 30
    assert body["masked"] == {ID_COLUMN: "resident_id"}
    assert [r[0] for r in body["rows"]] == [identity.mask("resident_id", n) for n in ids[:30]]
    keys = _column(dataset.current_version, "Unique Key")
    assert [r[1] for r in body["rows"]] == keys[:30]
    assert "offset=30" in body["next"]

    last = b.get(url, {"limit": 30, "offset": 90}).json()
    assert len(last["rows"]) == 10 and last["next"] is None

    key = keys[7]
    one = b.get(url, {"Unique Key": str(key)}).json()
    assert one["total"] == 1 and one["rows"][0][0] == key
    assert b.get(url, {"Unique Key": "1' OR '1'='1"}).json()["total"] == 0  # bound, not spliced

    beyond = b.get(url, {"Complaint Type": real[0]["Complaint Type"]})
    assert beyond.status_code == 403 and "'Complaint Type'" in beyond.json()["detail"]
    masked_filter = b.get(url, {ID_COLUMN: ids[0]})
    assert masked_filter.status_code == 403 and "masked" in masked_filter.json()["detail"]
    too_many = b.get(url, {"limit": 5000})
    assert too_many.status_code == 400 and "1 to 1000" in too_many.json()["detail"]
    assert b.get(url, {"offset": "abc"}).status_code == 400
    assert b.get("/api/v1/catalog/datasets/no-such-set/rows").status_code == 404

    reads = DatasetRead.objects.filter(dataset=dataset, channel="api")
    assert reads.count() == 4  # the two pages and the two filtered reads
    assert sorted(reads.values_list("rows", flat=True)) == [0, 1, 10, 30]


def test_usage_per_department_per_month(city, nyc):
    _approved(city, nyc, ["Unique Key", "Borough"])
    sharing.read(nyc, user=city["b"], limit=10)
    sharing.read(nyc, user=city["b"], limit=5, offset=98)
    _client(city["b"]).get(f"/api/v1/catalog/datasets/{nyc.slug}/rows", {"limit": 7})
    sharing.read(nyc, user=city["a"], limit=20)
    table = {u["department__code"]: u for u in sharing.usage(nyc)}
    assert set(table) == {"SHARE-A", "SHARE-B"}
    assert (table["SHARE-B"]["reads"], table["SHARE-B"]["rows"]) == (3, 10 + 2 + 7)
    assert (table["SHARE-A"]["reads"], table["SHARE-A"]["rows"]) == (1, 20)
    assert table["SHARE-B"]["month"].month == timezone.localdate().month
    assert (
        table["SHARE-B"]["last_read"]
        == DatasetRead.objects.filter(dataset=nyc, department=city["b_dept"]).latest("at").at
    )

    usage_url = reverse("catalog:sharing-usage", args=[nyc.slug])
    assert _client(city["b"]).get(usage_url).status_code == 403
    html = _client(city["a"]).get(usage_url).content.decode()
    assert re.search(r'data-department="SHARE-B">.*?<td class="num">3</td>', html, re.S)


def test_posts_need_the_csrf_token(city, nyc):
    b = _client(city["b"])
    url = reverse("catalog:sharing-request", args=[nyc.slug])
    today = timezone.localdate().isoformat()
    answer = b.post(
        url, {"columns": ["Borough"], "purpose": "x", "starts_on": today, "ends_on": today}
    )
    assert answer.status_code == 403
    assert not ShareRequest.objects.filter(dataset=nyc).exists()
    grant = _approved(city, nyc, ["Borough"])
    revoked = _client(city["a"]).post(
        reverse("catalog:sharing-revoke", args=[grant.pk]), {"reason": "x"}
    )
    assert revoked.status_code == 403
    grant.refresh_from_db()
    assert grant.revoked_at is None


# --------------------------------------------------------------------------- review findings


def _ask_for(dataset, user, columns=("Unique Key",)) -> ShareRequest:
    return sharing.request_access(
        dataset,
        user=user,
        columns=list(columns),
        purpose="核对",
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate() + timedelta(days=10),
    )


def test_nobody_approves_their_own_or_their_departments_request(city, nyc):
    # a data admin may also ask for their own department: they must not grant themselves
    b_admin = accounts.create_staff(
        "share-b-admin", PASSWORD, Role.DATA_ADMIN, department=city["b_dept"]
    )
    own = _ask_for(nyc, b_admin)
    with pytest.raises(sharing.AccessRefused, match="by you or your department"):
        sharing.approve(own, user=b_admin)
    own.refresh_from_db()
    assert own.status == ShareRequest.Status.PENDING
    sharing.deny(own, user=city["admin"], note="一次一个")

    colleague = _ask_for(nyc, city["b"])  # made by a colleague of the same department
    with pytest.raises(sharing.AccessRefused, match="by you or your department"):
        sharing.approve(colleague, user=b_admin)
    assert not ShareGrant.objects.filter(dataset=nyc).exists()
    # a data admin outside the requesting department decides it
    assert sharing.approve(colleague, user=city["admin"]).is_active()


def test_offsets_beyond_the_bound_are_refused_not_crashed(city, nyc):
    _approved(city, nyc, ["Unique Key", "Borough"])
    for offset in (2**63, 2**62 + 1, 10**30):
        with pytest.raises(sharing.SharingError, match="offset must be"):
            sharing.read(nyc, user=city["b"], limit=1, offset=offset)
    assert sharing.read(nyc, user=city["b"], limit=1, offset=2**62).rows == []

    b = _client(city["b"])
    api = b.get(f"/api/v1/catalog/datasets/{nyc.slug}/rows", {"offset": str(2**63)})
    assert api.status_code == 400 and "offset must be" in api.json()["detail"]
    rows_url = reverse("catalog:sharing-rows", args=[nyc.slug])
    page = b.get(rows_url, {"page": str(10**30)})
    assert page.status_code == 400 and "offset must be" in page.content.decode()
    assert b.get(rows_url, {"page": "2"}).status_code == 200


def test_marking_a_dataset_not_shared_stops_pending_and_granted_sharing(city, nyc, register):
    dataset, _ids, _real = register
    _approved(city, nyc, ["Unique Key", "Borough"])
    pending = _ask_for(dataset, city["b"])
    assert sharing.read(nyc, user=city["b"], limit=1).rows
    for marked in (nyc, dataset):
        marked.share_type = Dataset.ShareType.NOT_SHARED
        marked.save()

    with pytest.raises(sharing.AccessRefused, match="not shared"):
        sharing.approve(pending, user=city["a"])
    pending.refresh_from_db()
    assert pending.status == ShareRequest.Status.PENDING
    assert not ShareGrant.objects.filter(dataset=dataset).exists()

    since = _last_seq()
    with pytest.raises(sharing.AccessRefused, match="not shared"):
        sharing.read(nyc, user=city["b"], limit=1)
    assert len(_audited("catalog.share_read_refused", since)) == 1
    page = _client(city["b"]).get(f"/api/v1/catalog/datasets/{nyc.slug}/rows")
    assert page.status_code == 403
    assert sharing.read(nyc, user=city["a"], limit=1).rows  # the owner still reads its own
