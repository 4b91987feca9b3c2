"""The CKAN Action API: every read action through the Django test client, and the same actions
over the wire from the PyPI client ``ckanapi`` against a server the CLI runs (gunicorn).

The open data comes from a real 311 file loaded as a dataset version; its releases are written
here the way a publish leaves them (an ``OpenRelease`` row, status published, its own Parquet
with a subset of the columns under the lake), so these tests depend on nothing but the models.

Our answers are compared with recorded answers of real CKAN sites (``../shared/data/specs``):
every key those carry is in ours, except the site-specific extension keys listed in
``SITE_SPECIFIC`` below, with the reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import uuid
from pathlib import Path

import duckdb
import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from civicpulse.catalog import services
from civicpulse.catalog.models import DatasetGroup, OpenRelease
from civicpulse.core.models import Department
from civicpulse.lake.sql import quote_identifier
from tests.support import DemoSite, shared_data

pytestmark = pytest.mark.shared_data

NYC_100 = "311/nyc_311_qsv_100.csv"
# Columns a 311 release may publish: no address, no coordinates (they point at a home).
OPEN_COLUMNS = ["Unique Key", "Created Date", "Agency", "Complaint Type", "Descriptor", "Borough"]
HIDDEN = "Incident Address"

# Keys of the recorded CKAN answers we do not produce, and why.
SITE_SPECIFIC = {
    # EnviDat's ckanext-scheming schema (a research repository's own metadata fields)
    "package": {
        "date",
        "doi",
        "funding",
        "language",
        "publication",
        "publication_state",
        "related_datasets",
        "related_publications",
        "resource_type",
        "resource_type_general",
        "spatial",
        "spatial_info",
        "subtitle",
        "revision_id",  # Birmingham runs CKAN <= 2.8; 2.9 removed revisions
    },
    "resource": {"doi", "resource_size", "restricted", "revision_id"},  # EnviDat / CKAN 2.8
    "organization": {"datamanager", "longname", "revision_id"},  # EnviDat's extra fields
}

_numbers = itertools.count(1)


# --------------------------------------------------------------------------- building open data


def _user(prefix: str):
    return get_user_model().objects.create_user(
        username=f"{prefix}-{uuid.uuid4().hex[:8]}", password="not-used-here"
    )


def publish(
    version,
    *,
    title: str,
    columns: list[str],
    status=OpenRelease.Status.PUBLISHED,
    license: str = "cc-by",
    by=None,
    approver=None,
    unlisted: tuple[str, ...] = (),
) -> OpenRelease:
    """A release of ``version`` as the publish workflow leaves it: its Parquet (only
    ``columns``) under the lake, the row with its size, rows and checksum. ``unlisted`` columns
    are written into the file too but not into ``release.columns``, so that only the API's
    allow-list of the release's columns keeps them out."""
    dataset = version.dataset
    release = OpenRelease(
        dataset=dataset,
        version=version,
        title=title,
        columns=columns,
        license=license,
        created_by=by or _user("preparer"),
        approved_by=approver or _user("approver"),
        status=status,
    )
    release.lake_path = f"open/{dataset.slug}/{release.resource_id}"
    target = release.lake_dir()
    target.mkdir(parents=True)
    select = ", ".join(quote_identifier(c) for c in [*columns, *unlisted])
    part = target / "part-0.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT {select} FROM read_parquet('{version.data_glob()}')) "
        f"TO '{part.as_posix()}' (FORMAT parquet)"
    )
    release.row_count = con.execute(f"SELECT count(*) FROM '{part.as_posix()}'").fetchone()[0]
    con.close()
    release.size_bytes = part.stat().st_size
    release.checksum = hashlib.sha256(part.read_bytes()).hexdigest()
    if status in (OpenRelease.Status.PUBLISHED, OpenRelease.Status.WITHDRAWN):
        release.published_at = timezone.now()
    if status == OpenRelease.Status.WITHDRAWN:
        release.withdrawn_at = timezone.now()
    release.save()
    return release


def build_open_data(prefix: str, source: str) -> dict:
    """Two open datasets of a fresh department (one English, one Chinese, a theme each), one
    dataset with only a draft, and a withdrawn release: the names and ids, for the tests."""
    n = f"{prefix}{next(_numbers)}{uuid.uuid4().hex[:6]}"
    department = Department.objects.create(
        code=f"CKAN-{n}".upper(), name_zh="城市管理局", name_en="City management bureau"
    )
    tag = f"t{n}"
    noise = services.register_dataset(
        f"noise-{n}",
        title="Noise complaints 311",
        owner=department,
        tags=["311", "noise", tag],
        description="Service requests about noise, by complaint type and borough.",
    )
    air = services.register_dataset(
        f"air-{n}",
        title="城市空气质量投诉",
        title_en="Air quality complaints",
        owner=department,
        tags=["环境", tag],
        description="市民关于空气质量和噪声（noise）的投诉记录。",
    )
    draft_only = services.register_dataset(
        f"draft-{n}", title="Draft only", owner=department, tags=[tag]
    )
    versions = {
        d.slug: services.load_version(d, source, user=None, progress=False)
        for d in (noise, air, draft_only)
    }
    theme = DatasetGroup.objects.create(name=f"environment-{n}", title="环境 Environment")
    theme.datasets.add(air, draft_only)
    noise_release = publish(versions[noise.slug], title="Noise 2019", columns=OPEN_COLUMNS)
    withdrawn = publish(
        versions[noise.slug],
        title="Noise, withdrawn",
        columns=OPEN_COLUMNS,
        status=OpenRelease.Status.WITHDRAWN,
    )
    air_release = publish(
        versions[air.slug], title="投诉 2019", columns=OPEN_COLUMNS[:4], license="cc-zero"
    )
    draft = publish(
        versions[draft_only.slug],
        title="Not yet",
        columns=OPEN_COLUMNS,
        status=OpenRelease.Status.CHECKED,
    )
    return {
        "tag": tag,
        "organization": department.code.lower(),
        "group": theme.name,
        "noise": noise.slug,
        "air": air.slug,
        "draft_only": draft_only.slug,
        "noise_resource": str(noise_release.resource_id),
        "air_resource": str(air_release.resource_id),
        "withdrawn_resource": str(withdrawn.resource_id),
        "draft_resource": str(draft.resource_id),
        "people": [noise_release.created_by.username, noise_release.approved_by.username],
    }


def _csv_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def recorded(name: str) -> dict:
    return json.loads(shared_data(f"specs/{name}").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- client helpers


@pytest.fixture
def open_data(db):
    return build_open_data("c", str(shared_data(NYC_100)))


def call(client, name: str, status: int = 200, /, *, prefix: str = "/api/3/action/", **params):
    """GET an action; check the envelope and the status; the answer's body."""
    query = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in params.items()}
    response = client.get(f"{prefix}{name}", query)
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["help"].endswith(f"/api/3/action/help_show?name={name}")
    assert body["success"] is (status == 200)
    return body


def result(client, name: str, /, **params):
    return call(client, name, **params)["result"]


def error(client, name: str, status: int, kind: str, /, **params) -> dict:
    body = call(client, name, status, **params)
    assert "result" not in body and body["error"]["__type"] == kind
    return body["error"]


def missing_keys(recorded_item: dict, ours: dict, kind: str) -> set[str]:
    return set(recorded_item) - set(ours) - SITE_SPECIFIC.get(kind, set())


# --------------------------------------------------------------------------- packages


def test_package_list_holds_the_datasets_with_published_releases_at_both_paths(client, open_data):
    names = result(client, "package_list")
    assert open_data["noise"] in names and open_data["air"] in names
    assert open_data["draft_only"] not in names  # a checked release is not published
    assert names == sorted(names)
    assert result(client, "package_list", prefix="/api/action/") == names
    paged = result(client, "package_list", limit=1, offset=1)
    assert paged == names[1:2]
    recent = result(client, "current_package_list_with_resources", limit=1000)
    assert {open_data["noise"], open_data["air"]} <= {p["name"] for p in recent}
    assert open_data["draft_only"] not in {p["name"] for p in recent}


def test_package_show_by_name_or_id_is_shaped_like_ckan_and_holds_no_person(client, open_data):
    package = result(client, "package_show", id=open_data["noise"])
    assert result(client, "package_show", id=package["id"]) == package
    uuid.UUID(package["id"])
    assert (package["name"], package["title"], package["type"]) == (
        open_data["noise"],
        "Noise complaints 311",
        "dataset",
    )
    assert package["notes"].startswith("Service requests about noise")
    assert [t["name"] for t in package["tags"]] == ["311", "noise", open_data["tag"]]
    assert package["num_tags"] == 3 and package["groups"] == []
    assert package["organization"]["name"] == open_data["organization"]
    assert package["organization"]["title"] == "城市管理局"
    assert package["owner_org"] == package["organization"]["id"]
    assert (package["license_id"], package["isopen"]) == ("cc-by", True)
    # only the published release is a resource; the withdrawn one is gone
    assert package["num_resources"] == 1
    (resource,) = package["resources"]
    assert resource["id"] == open_data["noise_resource"]
    assert resource["name"] == "Noise 2019" and resource["format"] == "CSV"
    assert resource["datastore_active"] is True and resource["package_id"] == package["id"]
    assert resource["url"].endswith(f"/data/{open_data['noise']}/{resource['id']}.csv")
    release = OpenRelease.objects.get(resource_id=resource["id"])
    assert resource["size"] == release.size_bytes > 0 and resource["hash"] == release.checksum
    assert resource["num_rows"] == 100 and resource["columns"] == OPEN_COLUMNS
    # every key of real CKAN answers is here, but the site-specific ones
    envidat = recorded("ckan_envidat_package_show.json")["result"]
    birmingham = recorded("ckan_birmingham_package_search.json")["result"]["results"][0]
    for sample in (envidat, birmingham):
        assert not missing_keys(sample, package, "package")
        assert not missing_keys(sample["resources"][0], resource, "resource")
        assert not missing_keys(sample["organization"], package["organization"], "organization")
    assert not missing_keys(envidat["tags"][0], package["tags"][0], "tag")
    text = json.dumps(package, ensure_ascii=False)
    for person in open_data["people"]:
        assert person not in text
    assert package["author_email"] is None and package["maintainer_email"] is None


def test_package_show_refuses_unknown_missing_and_unpublished(client, open_data):
    err = error(client, "package_show", 404, "Not Found Error", id="no-such-dataset")
    assert err["message"] == "Dataset not found"
    error(client, "package_show", 404, "Not Found Error", id=open_data["draft_only"])
    err = error(client, "package_show", 409, "Validation Error")
    assert err["id"] == ["Missing value"]


def _search(client, **params) -> dict:
    return result(client, "package_search", **params)


def test_package_search_by_words_in_english_and_chinese(client, open_data):
    mine = f"tags:{open_data['tag']}"
    found = _search(client, q="noise", fq=mine)
    assert [p["name"] for p in found["results"]] == [open_data["noise"], open_data["air"]]
    # title words outrank notes words: "noise" is in the first one's title, the other's notes
    assert found["count"] == 2 and found["sort"] == "score desc, metadata_modified desc"
    assert set(found) >= {"count", "results", "sort", "facets", "search_facets"}
    assert [p["name"] for p in _search(client, q="空气质量", fq=mine)["results"]] == [
        open_data["air"]
    ]
    assert [p["name"] for p in _search(client, q="空气", fq=mine)["results"]] == [open_data["air"]]
    assert [p["name"] for p in _search(client, q="Air quality", fq=mine)["results"]] == [
        open_data["air"]
    ]
    assert [p["name"] for p in _search(client, q="311 borough", fq=mine)["results"]] == [
        open_data["noise"]
    ]
    assert _search(client, q="noise nowhere-word", fq=mine)["count"] == 0
    assert _search(client, q="Not yet", fq=mine)["count"] == 0  # the draft is not searchable


def test_package_search_filters_sorts_and_pages(client, open_data):
    mine = f"tags:{open_data['tag']}"
    org = f"organization:{open_data['organization']}"
    assert _search(client, fq=mine)["count"] == 2
    assert _search(client, fq=org)["count"] == 2  # the department's own: all are from this run
    assert [p["name"] for p in _search(client, fq=f"{mine} AND tags:环境")["results"]] == [
        open_data["air"]
    ]
    assert [p["name"] for p in _search(client, fq=f"groups:{open_data['group']}")["results"]] == [
        open_data["air"]
    ]
    assert [p["name"] for p in _search(client, fq=f"{mine} -tags:noise")["results"]] == [
        open_data["air"]
    ]
    assert _search(client, fq=f"{mine} res_format:CSV")["count"] == 2
    assert _search(client, fq=f"{mine} res_format:XLS")["count"] == 0
    assert _search(client, fq=f"{mine} license_id:cc-zero")["count"] == 1
    ascending = _search(client, fq=mine, sort="title_string asc")
    assert [p["title"] for p in ascending["results"]] == [
        "Noise complaints 311",
        "城市空气质量投诉",
    ]
    assert ascending["sort"] == "title_string asc"
    descending = _search(client, fq=mine, sort="title_string desc", rows=1, start=0)
    second = _search(client, fq=mine, sort="title_string desc", rows=1, start=1)
    assert descending["count"] == second["count"] == 2
    assert [descending["results"][0]["title"], second["results"][0]["title"]] == [
        "城市空气质量投诉",
        "Noise complaints 311",
    ]
    assert _search(client, fq=mine, start=5)["results"] == []
    by_modified = _search(client, fq=mine, sort="metadata_modified desc")["results"]
    stamps = [p["metadata_modified"] for p in by_modified]
    assert stamps == sorted(stamps, reverse=True)
    faceted = _search(client, fq=mine, **{"facet.field": ["tags", "organization"]})
    assert faceted["facets"]["tags"][open_data["tag"]] == 2
    assert faceted["facets"]["tags"]["noise"] == 1
    assert faceted["facets"]["organization"] == {open_data["organization"]: 2}
    items = faceted["search_facets"]["tags"]["items"]
    assert {"name": "环境", "display_name": "环境", "count": 1} in items
    # the recorded searches' keys
    for name in ("ckan_envidat_package_search.json", "ckan_birmingham_package_search.json"):
        assert set(recorded(name)["result"]) <= set(faceted)


def test_package_search_refuses_what_it_cannot_read(client, open_data):
    err = error(client, "package_search", 409, "Search Query Error", sort="popularity desc")
    assert "cannot sort by" in err["message"]
    error(client, "package_search", 409, "Search Query Error", sort="title_string sideways")
    err = error(client, "package_search", 409, "Search Query Error", fq="author:someone")
    assert 'unknown field "author"' in err["message"]
    error(client, "package_search", 409, "Search Query Error", fq="tags:a OR tags:b")
    error(client, "package_search", 409, "Search Query Error", fq="loose words")
    err = error(client, "package_search", 409, "Validation Error", rows="-1")
    assert err["rows"] == ["Must be a natural number"]
    error(client, "package_search", 409, "Validation Error", start="x")
    capped = _search(client, rows=5000)
    assert len(capped["results"]) <= 1000


# ------------------------------------------------------------- organizations, groups, tags


def test_organizations_groups_and_tags(client, open_data):
    names = result(client, "organization_list")
    assert open_data["organization"] in names
    everything = result(client, "organization_list", all_fields="true")
    ours = next(o for o in everything if o["name"] == open_data["organization"])
    assert ours["package_count"] == 2 and ours["is_organization"] is True
    recorded_list = recorded("ckan_envidat_organization_list.json")["result"]
    assert not missing_keys(recorded_list[0], ours, "organization")

    shown = result(
        client, "organization_show", id=open_data["organization"].upper(), include_datasets="true"
    )
    assert shown["id"] == ours["id"] and shown["package_count"] == 2
    assert sorted(p["name"] for p in shown["packages"]) == sorted(
        [open_data["noise"], open_data["air"]]
    )
    assert shown["users"] == []  # who works where is not open data
    assert "环境" in [t["name"] for t in shown["tags"]]
    assert not missing_keys(
        recorded("ckan_envidat_organization_show.json")["result"], shown, "organization"
    )
    assert result(client, "organization_show", id=shown["id"])["name"] == shown["name"]
    without = result(client, "organization_show", id=shown["name"])  # CKAN's default
    assert "packages" not in without
    error(client, "organization_show", 404, "Not Found Error", id="no-such-department")

    assert open_data["group"] in result(client, "group_list")
    group = next(
        g
        for g in result(client, "group_list", all_fields="true")
        if g["name"] == open_data["group"]
    )
    assert group["package_count"] == 1  # the draft-only member is not counted
    shown_group = result(client, "group_show", id=open_data["group"], include_datasets="True")
    assert [p["name"] for p in shown_group["packages"]] == [open_data["air"]]
    error(client, "group_show", 404, "Not Found Error", id="no-such-group")

    tags = result(client, "tag_list")
    assert {open_data["tag"], "noise", "环境"} <= set(tags)
    assert result(client, "tag_list", query=open_data["tag"].upper()) == [open_data["tag"]]
    assert all(isinstance(t, str) for t in recorded("ckan_envidat_tag_list.json")["result"])
    full = result(client, "tag_list", query=open_data["tag"], all_fields="true")
    assert [t["name"] for t in full] == [open_data["tag"]] and full[0]["vocabulary_id"] is None
    assert result(client, "tag_show", id=full[0]["id"]) == full[0]
    error(client, "tag_show", 404, "Not Found Error", id="no-such-tag")


# --------------------------------------------------------------------------- resources


def test_resource_show_serves_published_releases_only(client, open_data):
    resource = result(client, "resource_show", id=open_data["air_resource"])
    package = result(client, "package_show", id=open_data["air"])
    assert resource == package["resources"][0]
    assert resource["columns"] == OPEN_COLUMNS[:4]
    for hidden in ("withdrawn_resource", "draft_resource"):
        err = error(client, "resource_show", 404, "Not Found Error", id=open_data[hidden])
        assert err["message"] == "Resource was not found."
    error(client, "resource_show", 404, "Not Found Error", id="not-a-uuid")
    error(client, "resource_show", 404, "Not Found Error", id=str(uuid.uuid4()))


# --------------------------------------------------------------------------- datastore_search


def _store(client, **params) -> dict:
    return result(client, "datastore_search", **params)


def _with_unlisted_column(open_data) -> str:
    """A published release whose file also holds ``HIDDEN``, a column the release does not
    list: only the API's allow-list of the release's columns keeps it out."""
    version = services.find(open_data["noise"]).current_version
    release = publish(
        version, title="Noise, one column too many", columns=OPEN_COLUMNS, unlisted=(HIDDEN,)
    )
    with duckdb.connect() as con:
        described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [release.data_glob()])
        names = [r[0] for r in described.fetchall()]
    assert HIDDEN in names  # the premise: the file has it
    return str(release.resource_id)


def test_datastore_search_reads_the_release_rows(client, open_data):
    rows = _csv_rows(shared_data(NYC_100))
    rid = _with_unlisted_column(open_data)
    first = _store(client, resource_id=rid)
    assert first["total"] == len(rows) and first["limit"] == 100 and first["offset"] == 0
    assert first["fields"] == [{"id": "_id", "type": "int"}] + [
        {"id": c, "type": "int" if c == "Unique Key" else "text"} for c in OPEN_COLUMNS
    ]
    assert [r["_id"] for r in first["records"]] == list(range(1, len(rows) + 1))
    assert [r["Unique Key"] for r in first["records"]] == [int(r["Unique Key"]) for r in rows]
    assert all(HIDDEN not in r for r in first["records"])
    assert {"resource_id", "fields", "records", "total", "limit", "offset", "_links"} <= set(first)
    assert first["_links"]["start"].startswith("/api/3/action/datastore_search?")
    assert "offset=100" in first["_links"]["next"]

    brooklyn = [r for r in rows if r["Borough"] == "BROOKLYN"]
    found = _store(client, resource_id=rid, filters={"Borough": "BROOKLYN"})
    assert found["total"] == len(brooklyn) > 0 and found["filters"] == {"Borough": "BROOKLYN"}
    assert [r["Unique Key"] for r in found["records"]] == [int(r["Unique Key"]) for r in brooklyn]
    two = _store(client, resource_id=rid, filters={"Borough": ["BROOKLYN", "QUEENS"]})
    assert two["total"] == sum(r["Borough"] in ("BROOKLYN", "QUEENS") for r in rows)
    key = rows[7]["Unique Key"]
    one = _store(client, resource_id=rid, filters={"Unique Key": key})  # text for an int column
    assert [r["_id"] for r in one["records"]] == [8]

    noise = [r for r in rows if any("noise" in r[c].lower() for c in OPEN_COLUMNS[1:])]
    assert _store(client, resource_id=rid, q="noise")["total"] == len(noise) > 0
    by_column = _store(client, resource_id=rid, q={"Complaint Type": "noise"})
    assert by_column["total"] == sum("noise" in r["Complaint Type"].lower() for r in rows)

    ordered = _store(client, resource_id=rid, sort="Unique Key desc", limit=10, offset=5)
    keys = sorted((int(r["Unique Key"]) for r in rows), reverse=True)
    assert [r["Unique Key"] for r in ordered["records"]] == keys[5:15]
    assert ordered["limit"] == 10 and ordered["offset"] == 5 and ordered["total"] == len(rows)
    two_keys = _store(client, resource_id=rid, sort="Borough asc, Unique Key desc", limit=1000)
    expected = sorted(rows, key=lambda r: (r["Borough"], -int(r["Unique Key"])))
    assert [r["Unique Key"] for r in two_keys["records"]] == [
        int(r["Unique Key"]) for r in expected
    ]
    narrow = _store(client, resource_id=rid, fields="Agency,Borough", limit=3)
    assert [f["id"] for f in narrow["fields"]] == ["_id", "Agency", "Borough"]
    assert set(narrow["records"][0]) == {"_id", "Agency", "Borough"}
    paged = [
        r["_id"]
        for offset in range(0, len(rows), 30)
        for r in _store(client, resource_id=rid, limit=30, offset=offset)["records"]
    ]
    assert paged == list(range(1, len(rows) + 1))
    assert _store(client, resource_id=rid, limit=99999)["limit"] == 32000


def test_datastore_search_numbers_rows_across_part_files(client, open_data):
    """A release written as several part files reads as one table, ``_id`` running on."""
    release = OpenRelease.objects.get(resource_id=open_data["air_resource"])
    whole = release.lake_dir() / "part-0.parquet"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM '{whole}' LIMIT 40) TO '{whole}.a' (FORMAT parquet)")
    con.execute(f"COPY (SELECT * FROM '{whole}' OFFSET 40) TO '{whole}.b' (FORMAT parquet)")
    con.close()
    whole.unlink()
    (release.lake_dir() / "part-0.parquet.a").rename(release.lake_dir() / "part-0.parquet")
    (release.lake_dir() / "part-0.parquet.b").rename(release.lake_dir() / "part-1.parquet")
    rows = _csv_rows(shared_data(NYC_100))
    rid = open_data["air_resource"]
    everything = _store(client, resource_id=rid, limit=1000)
    assert [r["_id"] for r in everything["records"]] == list(range(1, len(rows) + 1))
    assert [r["Unique Key"] for r in everything["records"]] == [int(r["Unique Key"]) for r in rows]
    nypd = _store(client, resource_id=rid, filters={"Agency": "NYPD"}, sort="_id desc")
    expected = [i + 1 for i, r in enumerate(rows) if r["Agency"] == "NYPD"][::-1]
    assert [r["_id"] for r in nypd["records"]] == expected and nypd["total"] == len(expected)


def test_datastore_search_refuses_bad_input_and_unpublished_resources(client, open_data):
    rid = open_data["noise_resource"]
    err = error(
        client, "datastore_search", 409, "Validation Error", resource_id=rid, sort="Nope desc"
    )
    assert err["sort"] == ['field "Nope" not in the resource']
    # a column the release left out is not there to sort, filter, search or return
    hidden = _with_unlisted_column(open_data)
    for params in (
        {"sort": HIDDEN},
        {"filters": {HIDDEN: "x"}},
        {"fields": HIDDEN},
        {"q": {HIDDEN: "x"}},
    ):
        error(client, "datastore_search", 409, "Validation Error", resource_id=hidden, **params)
    error(
        client,
        "datastore_search",
        409,
        "Validation Error",
        resource_id=rid,
        sort="Borough; DROP TABLE x",
    )
    error(
        client,
        "datastore_search",
        409,
        "Validation Error",
        resource_id=rid,
        filters={"Unique Key": "not a number"},
    )
    error(client, "datastore_search", 409, "Validation Error", resource_id=rid, filters="[1]")
    error(client, "datastore_search", 409, "Validation Error", resource_id=rid, limit="-5")
    error(client, "datastore_search", 409, "Validation Error")
    for hidden in ("withdrawn_resource", "draft_resource"):
        error(client, "datastore_search", 404, "Not Found Error", resource_id=open_data[hidden])
    error(client, "datastore_search", 404, "Not Found Error", resource_id=str(uuid.uuid4()))
    # a quote in a value is a value
    assert _store(client, resource_id=rid, filters={"Borough": "x' OR '1'='1"})["total"] == 0
    assert _store(client, resource_id=rid, q="%")["total"] == 0


# --------------------------------------------------------------------------- HTTP layer


def test_posts_as_json_and_as_a_form_answer_like_gets(client, open_data):
    got = result(client, "package_show", id=open_data["air"])
    as_json = client.post(
        "/api/action/package_show",
        json.dumps({"id": open_data["air"]}),
        content_type="application/json",
    )
    assert as_json.status_code == 200 and as_json.json()["result"] == got
    as_form = client.post("/api/3/action/package_show", {"id": open_data["air"]})
    assert as_form.status_code == 200 and as_form.json()["result"] == got
    searched = client.post(
        "/api/action/datastore_search",
        json.dumps(
            {
                "resource_id": open_data["noise_resource"],
                "filters": {"Borough": "QUEENS"},
                "limit": 2,
            }
        ),
        content_type="application/json",
    ).json()["result"]
    assert len(searched["records"]) <= 2 and all(
        r["Borough"] == "QUEENS" for r in searched["records"]
    )
    broken = client.post("/api/action/package_show", "{not json", content_type="application/json")
    assert broken.status_code == 400 and broken.json()["success"] is False


def test_unknown_and_write_actions_are_refused(client, db):
    body = call(client, "no_such_action", 400)
    assert "Action name not known: no_such_action" in body["error"]["message"]
    written = client.post(
        "/api/action/package_create", json.dumps({"name": "x"}), content_type="application/json"
    )
    assert written.status_code == 403
    assert written.json()["error"]["__type"] == "Authorization Error"
    assert client.put("/api/action/package_list").status_code == 405


def test_status_show_and_help(client, db):
    status = result(client, "status_show")
    assert status["ckan_version"] == "2.10.0" and status["api_version"] == 3
    assert status["site_url"] == settings.CONFIG.site_url.rstrip("/")
    assert "datastore" in status["extensions"] and status["site_title"]
    assert "Search the published packages" in result(client, "help_show", name="package_search")
    error(client, "help_show", 404, "Not Found Error", name="nothing")


def test_an_address_asking_too_often_is_told_to_wait(client, db, settings):
    settings.CIVICPULSE_CKAN_RATE = (3, 60)
    answers = [client.get("/api/3/action/status_show") for _ in range(5)]
    statuses = [a.status_code for a in answers]
    # a window may turn over between two calls: at most one extra success
    assert statuses.count(429) >= 1 and statuses[0] == 200
    limited = next(a for a in answers if a.status_code == 429)
    assert int(limited["Retry-After"]) >= 1
    assert limited.json()["error"]["__type"] == "Rate Limit Error"
    other = client.get("/api/3/action/status_show", REMOTE_ADDR="10.0.0.9")
    assert other.status_code == 200


# --------------------------------------------------------------------------- over the wire


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A store of its own with the open data built in it, served by ``civicpulse serve``."""
    source = str(shared_data(NYC_100))
    site = DemoSite(tmp_path_factory.mktemp("ckan-live"), seed=0, end="")
    site.env["CIVICPULSE_SITE_URL"] = site.url  # what a city sets: links point at itself
    migrated = site.cli("migrate", timeout=300)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    built = site.cli(
        "manage",
        "shell",
        "-c",
        "import json; from tests.catalog.test_ckan import build_open_data; "
        f"print('OPEN=' + json.dumps(build_open_data('live', {source!r})))",
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    line = next(x for x in built.stdout.splitlines() if x.startswith("OPEN="))
    site.open_data = json.loads(line[len("OPEN=") :])
    site.serve()
    yield site
    site.stop()


def test_ckanapi_reads_packages_organizations_groups_and_tags(live):
    from ckanapi import NotFound, RemoteCKAN

    data = live.open_data
    with RemoteCKAN(live.url) as ckan:
        assert ckan.action.package_list() == sorted([data["noise"], data["air"]])
        package = ckan.action.package_show(id=data["noise"])
        assert [r["id"] for r in package["resources"]] == [data["noise_resource"]]
        assert package["resources"][0]["url"] == (
            f"{package['resources'][0]['url'].split('/data/')[0]}/data/{data['noise']}/"
            f"{data['noise_resource']}.csv"
        )
        # the link works: the portal serves the release's rows there, its columns only
        download = requests.get(package["resources"][0]["url"], timeout=20)
        assert download.status_code == 200
        header = next(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert header == OPEN_COLUMNS
        recorded_package = recorded("ckan_envidat_package_show.json")["result"]
        assert not missing_keys(recorded_package, package, "package")
        with pytest.raises(NotFound):
            ckan.action.package_show(id=data["draft_only"])

        found = ckan.action.package_search(q="空气", fq=f"tags:{data['tag']}", rows=5)
        assert found["count"] == 1 and found["results"][0]["name"] == data["air"]
        everything = ckan.action.package_search(sort="title_string asc", rows=1, start=1)
        assert everything["count"] == 2 and everything["results"][0]["name"] == data["air"]
        recorded_search = recorded("ckan_envidat_package_search.json")["result"]
        assert set(recorded_search) <= set(everything)
        assert not missing_keys(recorded_search["results"][0], everything["results"][0], "package")

        assert ckan.action.organization_list() == [data["organization"]]
        listed = ckan.action.organization_list(all_fields=True)
        assert not missing_keys(
            recorded("ckan_envidat_organization_list.json")["result"][0], listed[0], "organization"
        )
        shown = ckan.action.organization_show(id=data["organization"], include_datasets=True)
        assert shown["package_count"] == 2 and len(shown["packages"]) == 2
        assert ckan.action.group_list() == [data["group"]]
        assert set(ckan.action.tag_list()) == {"311", "noise", "环境", data["tag"]}
        assert ckan.action.tag_list(query="噪") == []
        resource = ckan.action.resource_show(id=data["air_resource"])
        assert resource["name"] == "投诉 2019"
        with pytest.raises(NotFound):
            ckan.action.resource_show(id=data["withdrawn_resource"])
        status = ckan.action.status_show()
        assert status["ckan_version"] == "2.10.0" and status["site_url"] == live.url


def test_ckanapi_reads_rows_with_datastore_search(live):
    from ckanapi import NotFound, RemoteCKAN, ValidationError

    rows = _csv_rows(shared_data(NYC_100))
    rid = live.open_data["noise_resource"]
    with RemoteCKAN(live.url) as ckan:
        page = ckan.action.datastore_search(
            resource_id=rid,
            filters={"Borough": ["BROOKLYN", "BRONX"]},
            sort="Unique Key asc",
            limit=5,
            offset=2,
        )
        wanted = sorted(int(r["Unique Key"]) for r in rows if r["Borough"] in ("BROOKLYN", "BRONX"))
        assert page["total"] == len(wanted)
        assert [r["Unique Key"] for r in page["records"]] == wanted[2:7]
        assert (page["limit"], page["offset"]) == (5, 2)
        searched = ckan.action.datastore_search(resource_id=rid, q="noise", fields=["Descriptor"])
        assert searched["total"] > 0 and set(searched["records"][0]) == {"_id", "Descriptor"}
        # the same through GET only, as a browser would ask
        with RemoteCKAN(live.url, get_only=True) as reader:
            again = reader.action.datastore_search(
                resource_id=rid,
                limit=5,
                offset=2,
                sort="Unique Key asc",
                filters=json.dumps({"Borough": ["BROOKLYN", "BRONX"]}),
            )
            assert again["records"] == page["records"]
        with pytest.raises(ValidationError) as bad:
            ckan.action.datastore_search(resource_id=rid, sort=f"{HIDDEN} desc")
        assert "sort" in bad.value.error_dict
        with pytest.raises(NotFound):
            ckan.action.datastore_search(resource_id=live.open_data["draft_resource"])
