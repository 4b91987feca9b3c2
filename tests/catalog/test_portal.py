"""The open-data portal and the staff release pages, over real HTTP requests through Django's
test client: anonymous portal pages that show published releases only, downloads of exactly
what was published, 410 for a withdrawn release, DCAT JSON-LD, and the staff workflow with
logins, roles and CSRF."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid

import pyarrow.parquet as pq
import pytest
from django.test import Client

from civicpulse.catalog import opendata, services
from civicpulse.catalog.models import DatasetRead, OpenRelease
from civicpulse.core.models import AuditEntry
from tests.catalog.test_opendata import (  # noqa: F401 (fixtures)
    COARSE_QI,
    FINE_QI,
    PASSWORD,
    PUBLISHED,
    _frame,
    _groups,
    animals,
    people,
)

pytestmark = [pytest.mark.shared_data, pytest.mark.django_db]

COLUMNS = ["Complaint Type", "Descriptor", "Status"]


@pytest.fixture
def releases(animals, people):  # noqa: F811
    """On the animals dataset: one published release, one checked but not approved, one
    refused; and a second dataset whose only release was refused."""
    made = {}
    made["published"] = opendata.draft(
        animals, columns=COLUMNS, quasi_identifiers=COARSE_QI, title="按类型统计的动物投诉",
        title_en="Animal complaints by type", notes="每行一条投诉", user=people["staff"],
    )  # fmt: skip
    opendata.check(made["published"])
    opendata.approve(made["published"], people["admin2"])
    opendata.publish(made["published"], people["admin2"])
    made["checked"] = opendata.draft(
        animals, columns=["Status"], quasi_identifiers=["Status"], title="仅状态",
        user=people["staff"],
    )  # fmt: skip
    opendata.check(made["checked"])
    made["refused"] = opendata.draft(
        animals, columns=PUBLISHED, quasi_identifiers=FINE_QI, title="按邮编", user=people["staff"]
    )
    opendata.check(made["refused"])
    assert [made[k].status for k in ("published", "checked", "refused")] == [
        "published",
        "checked",
        "refused",
    ]
    hidden = services.register_dataset(
        f"{animals.slug}-hidden", title="未公开", owner=people["owner_dept"]
    )
    services.load_version(hidden, animals.source_path, user=None, progress=False)
    hidden = services.find(hidden.slug)
    made["hidden"] = opendata.draft(
        hidden, columns=PUBLISHED, quasi_identifiers=FINE_QI, title="未公开", user=people["admin"]
    )
    opendata.check(made["hidden"])
    made["hidden_dataset"] = hidden
    return made


def _url(release: OpenRelease, fmt: str) -> str:
    return f"/data/{release.dataset.slug}/{release.resource_id}.{fmt}"


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# --------------------------------------------------------------------------- the portal


def test_the_portal_shows_published_releases_only_and_needs_no_login(client, animals, releases):  # noqa: F811
    index = client.get("/data/")
    assert index.status_code == 200
    page = index.content.decode()
    assert f'data-dataset="{animals.slug}"' in page
    assert releases["hidden_dataset"].slug not in page
    assert client.get(f"/data/{releases['hidden_dataset'].slug}/").status_code == 404

    detail = client.get(f"/data/{animals.slug}/")
    assert detail.status_code == 200
    page = detail.content.decode()
    assert str(releases["published"].resource_id) in page
    assert _url(releases["published"], "csv") in page
    for other in ("checked", "refused"):
        assert str(releases[other].resource_id) not in page
        assert releases[other].title not in page
    assert "未公开" not in client.get("/data/").content.decode()


def test_downloads_hold_exactly_the_published_columns_and_rows(client, animals, releases):  # noqa: F811
    release = releases["published"]
    frame = _frame(animals.source_path)
    reads_before = DatasetRead.objects.filter(dataset=animals).count()

    response = client.get(_url(release, "csv"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = _body(response)
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == COLUMNS
    assert len(rows) - 1 == release.row_count == len(frame)
    assert [r[1] for r in rows[1:]] == [("" if v != v else v) for v in frame["Descriptor"]]

    response = client.get(_url(release, "parquet"))
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(_body(response)))
    assert table.column_names == COLUMNS and table.num_rows == release.row_count
    assert DatasetRead.objects.filter(dataset=animals, channel="open").count() == reads_before + 2

    for other in ("checked", "refused", "hidden"):
        for fmt in ("csv", "parquet"):
            assert client.get(_url(releases[other], fmt)).status_code == 404
    assert client.get(f"/data/{animals.slug}/{uuid.uuid4()}.csv").status_code == 404
    assert client.get(f"/data/{animals.slug}/{release.resource_id}.xlsx").status_code == 404


def test_a_withdrawn_release_is_gone_from_the_portal(client, animals, releases, people):  # noqa: F811
    release = releases["published"]
    opendata.withdraw(release, people["admin"], "wrong licence")
    for fmt in ("csv", "parquet"):
        response = client.get(_url(release, fmt))
        assert response.status_code == 410
        assert b"withdrawn" in response.content and b"licence" not in response.content
    assert client.get(f"/data/{animals.slug}/").status_code == 404  # nothing else published
    assert animals.slug not in client.get("/data/").content.decode()
    assert str(release.resource_id) not in client.get("/data/catalog.jsonld").content.decode()


def test_dcat_json_ld_describes_the_dataset_and_the_catalog(client, animals, releases):  # noqa: F811
    release = releases["published"]
    response = client.get(f"/data/{animals.slug}/dcat.jsonld")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/ld+json")
    doc = json.loads(response.content)
    assert doc["@type"] == "dcat:Dataset" and doc["dct:identifier"] == animals.slug
    assert {"@value": "Animal complaints", "@language": "en"} in doc["dct:title"]
    assert doc["dcat:keyword"] == ["311", "animals"]
    assert doc["dct:publisher"]["foaf:name"][0]["@value"] == animals.owner.name_zh
    urls = {d["dcat:mediaType"]: d["dcat:downloadURL"]["@id"] for d in doc["dcat:distribution"]}
    assert urls == {
        "text/csv": "http://testserver" + _url(release, "csv"),
        "application/vnd.apache.parquet": "http://testserver" + _url(release, "parquet"),
    }
    parquet = next(d for d in doc["dcat:distribution"] if d["dct:format"] == "PARQUET")
    assert parquet["dcat:byteSize"] == release.size_bytes
    assert parquet["dct:license"] == {"@id": "https://creativecommons.org/licenses/by/4.0/"}
    assert doc["dct:issued"] == release.published_at.isoformat()

    catalog = client.get("/data/catalog.jsonld")
    text = catalog.content.decode()
    doc = json.loads(text)
    assert doc["@type"] == "dcat:Catalog"
    mine = [d for d in doc["dcat:dataset"] if d["dct:identifier"] == animals.slug]
    assert len(mine) == 1 and len(mine[0]["dcat:distribution"]) == 2
    assert "http://testserver" + _url(release, "csv") in text
    for other in ("checked", "refused", "hidden"):
        assert str(releases[other].resource_id) not in text
    assert releases["hidden_dataset"].slug not in text


# --------------------------------------------------------------------------- staff pages


def _login(client, user) -> Client:
    assert client.login(username=user.username, password=PASSWORD)
    return client


def _token(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def test_staff_pages_need_a_login_and_a_role(client, animals, people):  # noqa: F811
    url = f"/catalog/releases/{animals.slug}/"
    response = client.get(url)
    assert response.status_code == 302 and "login" in response["Location"]
    assert client.get(url + "new/").status_code == 302
    for who in ("outsider", "analyst"):
        assert _login(Client(), people[who]).get(url).status_code == 403
    assert _login(Client(), people["staff"]).get(url).status_code == 200
    assert _login(Client(), people["leader"]).get(url).status_code == 200
    assert _login(Client(), people["leader"]).get(url + "new/").status_code == 403


def test_the_release_workflow_through_the_pages(animals, people):  # noqa: F811
    tagged = animals.current_version.columns.get(name="Incident Address")
    tagged.personal_tags = ["address"]
    tagged.save(update_fields=["personal_tags"])
    staff = _login(Client(enforce_csrf_checks=True), people["staff"])
    form = staff.get(f"/catalog/releases/{animals.slug}/new/")
    assert form.status_code == 200
    page = form.content.decode()
    assert 'data-column="Incident Zip"' in page
    row = re.search(r'data-column="Incident Address">(.*?)</tr>', page, re.S).group(1)
    assert '<span class="tag personal">address</span>' in row
    fields = {
        "title": "动物投诉",
        "license": "cc-by",
        "columns": PUBLISHED,
        "quasi_identifiers": FINE_QI,
        "k": "5",
    }
    refused = staff.post(f"/catalog/releases/{animals.slug}/new/", fields)
    assert refused.status_code == 403  # no CSRF token
    fields["csrfmiddlewaretoken"] = _token(page)
    response = staff.post(f"/catalog/releases/{animals.slug}/new/", fields, follow=True)
    release = OpenRelease.objects.filter(dataset=animals).latest("pk")
    assert release.status == "refused" and release.created_by == people["staff"]
    page = response.content.decode()
    assert 'id="offending-combinations"' in page and 'id="approve-form"' not in page
    groups = _groups(animals.source_path, release.quasi_identifiers)
    assert f"{int((groups < 5).sum())} combinations of the quasi-identifiers" in page
    assert AuditEntry.objects.filter(
        action="catalog.open_release_viewed", object_id=str(release.pk)
    ).exists()

    fields.update(columns=COLUMNS, quasi_identifiers=COARSE_QI)
    response = staff.post(f"/catalog/releases/{animals.slug}/new/", fields, follow=True)
    release = OpenRelease.objects.filter(dataset=animals).latest("pk")
    assert release.status == "checked" and 'id="check-passed"' in response.content.decode()
    assert 'id="approve-form"' not in response.content.decode()  # not for the one who made it
    step = f"/catalog/releases/{animals.slug}/{release.pk}/"
    token = _token(response.content.decode())
    staff.post(step + "approve/", {"csrfmiddlewaretoken": token})
    release.refresh_from_db()
    assert release.approved_by is None

    admin = _login(Client(enforce_csrf_checks=True), people["admin2"])
    page = admin.get(step).content.decode()
    assert 'id="approve-form"' in page
    token = _token(page)
    assert admin.post(step + "approve/").status_code == 403  # CSRF again
    admin.post(step + "approve/", {"csrfmiddlewaretoken": token})
    admin.post(step + "publish/", {"csrfmiddlewaretoken": token})
    release.refresh_from_db()
    assert release.status == "published" and release.approved_by == people["admin2"]
    assert Client().get(_url(release, "csv")).status_code == 200

    admin.post(step + "withdraw/", {"csrfmiddlewaretoken": token, "reason": "再核对"})
    release.refresh_from_db()
    assert release.status == "withdrawn" and release.withdraw_reason == "再核对"
    assert Client().get(_url(release, "csv")).status_code == 410
    assert admin.post(step + "delete/", {"csrfmiddlewaretoken": token}).status_code == 404
