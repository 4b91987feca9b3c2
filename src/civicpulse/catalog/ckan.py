"""The CKAN Action API's read actions over the open-data releases: plain functions from a
dict of parameters to the ``result`` CKAN would return (the HTTP envelope is in
``views/ckan.py``).

Why CKAN: it is what open-data portals speak, so the clients cities already use (``ckanapi``,
harvesters, the CKAN plugins of BI tools) read our releases without new code. We answer like
CKAN 2.10's Action API (``api_version`` 3) for the read actions below, not more.

How the catalog maps onto CKAN's words:

* **package** = a :class:`Dataset` with at least one :class:`OpenRelease` in status
  ``published``. ``name`` = slug, ``title``, ``notes`` = description, ``tags`` = the dataset's
  tags, ``groups`` = its :class:`DatasetGroup` themes, ``organization`` = the owner department,
  ``metadata_created`` = registration, ``metadata_modified`` = the later of the dataset's last
  edit and its latest publication, ``license_id`` = the latest published release's licence.
  ``id`` is a UUID derived from the row (stable, so clients may keep it), and either ``id`` or
  ``name`` finds a package.
* **resource** = one published release: ``id`` = ``resource_id``, ``name`` = the release's
  title, ``format`` ``CSV``, ``url`` = the portal's download (``/data/<slug>/<resource_id>.csv``),
  ``datastore_active`` true (``datastore_search`` reads its Parquet), size and checksum.
* **organization** = a department owning at least one package (``name`` = its code, lower
  case; ``title`` = its name); **group** = a :class:`DatasetGroup`; **tag** = a dataset tag.

Nothing else is reachable: drafts, refused, checked and withdrawn releases, versions, columns
left out of a release and the people who prepared or approved it never appear. The package
fields that name a person in CKAN (``author``, ``maintainer``) carry the department instead,
their e-mails are null, and ``users`` of an organization is empty.

Search runs over the published packages in Python: an open-data catalog holds hundreds of
packages, not millions, and this keeps Chinese matching (jieba tokens, see
:mod:`civicpulse.text.tokenize`) identical on SQLite and PostgreSQL. ``datastore_search`` runs
in DuckDB over the release's own Parquet, column names quoted and every value bound.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import re
import shlex
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import duckdb
from django.conf import settings
from django.db.models import OuterRef, Prefetch, Subquery
from django.urls import reverse
from django.utils import timezone

from civicpulse.catalog.models import Dataset, DatasetGroup, OpenRelease
from civicpulse.core.models import Department
from civicpulse.lake.sql import quote_identifier, quote_literal
from civicpulse.text.tokenize import NUM, URL, normalize, tokens

CKAN_VERSION = "2.10.0"  # the Action API (version 3) our read actions are compatible with
API_VERSION = 3
SITE_TITLE = "CivicPulse open data"

ROWS_DEFAULT, ROWS_MAX = 10, 1000
DATASTORE_LIMIT_DEFAULT, DATASTORE_LIMIT_MAX = 100, 32000
LIST_LIMIT_MAX = 1000

# Fixed namespace of the UUIDs derived for packages, organizations, groups and tags.
NAMESPACE = uuid.UUID("6f3c5a1e-2b7d-5c7e-9a53-0c1f5d2e8b41")

LICENSES = {  # id -> (title, url, open by the Open Definition)
    "cc-by": (
        "Creative Commons Attribution 4.0",
        "https://creativecommons.org/licenses/by/4.0/",
        True,
    ),
    "cc-zero": (
        "Creative Commons CCZero",
        "https://creativecommons.org/publicdomain/zero/1.0/",
        True,
    ),
    "odc-by": (
        "Open Data Commons Attribution License",
        "https://opendatacommons.org/licenses/by/1-0/",
        True,
    ),
}


class ActionError(Exception):
    """An action cannot answer; ``kind`` is CKAN's ``__type`` and ``status`` the HTTP code."""

    kind = "Error"
    status = 400

    def __init__(self, message: str, **fields: list[str]):
        super().__init__(message)
        self.message = message
        self.fields = fields

    def as_dict(self) -> dict:
        return {"__type": self.kind, "message": self.message, **self.fields}


class NotFound(ActionError):
    kind, status = "Not Found Error", 404


class ValidationError(ActionError):
    kind, status = "Validation Error", 409


class SearchQueryError(ActionError):
    kind, status = "Search Query Error", 409


class NotAuthorized(ActionError):
    kind, status = "Authorization Error", 403


class BadRequest(ActionError):
    kind, status = "Bad Request", 400


# --------------------------------------------------------------------------- reading helpers


def _uuid(kind: str, key: object) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{key}"))


def _iso(moment: dt.datetime | None) -> str | None:
    """CKAN's timestamps: naive UTC ISO 8601 with microseconds."""
    if moment is None:
        return None
    if timezone.is_aware(moment):
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def _site_url() -> str:
    return settings.CONFIG.site_url.rstrip("/")


def _int(params: dict, name: str, default: int, *, maximum: int | None = None) -> int:
    value = params.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}: Invalid integer", **{name: ["Invalid integer"]}) from None
    if number < 0:
        raise ValidationError(
            f"{name}: Must be a natural number", **{name: ["Must be a natural number"]}
        )
    return min(number, maximum) if maximum is not None else number


def _bool(params: dict, name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def _json_param(params: dict, name: str):
    """A parameter that is JSON in a query string and already decoded in a JSON body."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            if name in ("fields", "facet.field"):
                return [v.strip() for v in value.split(",") if v.strip()]
            if name == "q":
                return value
            raise ValidationError(
                f"{name}: Cannot parse JSON", **{name: ["Cannot parse JSON"]}
            ) from None
    return value


def _required_id(params: dict) -> str:
    value = params.get("id")
    if value in (None, ""):
        raise ValidationError("id: Missing value", id=["Missing value"])
    return str(value).strip()


# --------------------------------------------------------------------------- packages


def _published_releases() -> Prefetch:
    return Prefetch(
        "open_releases",
        queryset=OpenRelease.objects.filter(status=OpenRelease.Status.PUBLISHED)
        .select_related("version")
        .order_by("published_at", "id"),
        to_attr="published",
    )


# when a department registered its first dataset: its organization's ``created``
_first_registration = (
    Dataset.objects.filter(owner=OuterRef("owner")).order_by("created_at").values("created_at")[:1]
)


def _packages():
    """Datasets with at least one published release, with what a package dict needs."""
    return (
        Dataset.objects.filter(open_releases__status=OpenRelease.Status.PUBLISHED)
        .distinct()
        .select_related("owner")
        .annotate(owner_since=Subquery(_first_registration))
        .prefetch_related(_published_releases(), "groups")
        .order_by("slug")
    )


def _find_package(key: str) -> Dataset:
    found = _packages().filter(slug=key).first()
    if found is None:
        for dataset in _packages():
            if _uuid("package", dataset.pk) == key:
                return dataset
        raise NotFound("Dataset not found")
    return found


def _modified(dataset: Dataset) -> dt.datetime:
    moments = [dataset.updated_at] + [r.published_at or r.updated_at for r in dataset.published]
    return max(m for m in moments if m is not None)


def organization_dict(
    department: Department, created: dt.datetime | None, *, package_count: int | None = None
) -> dict:
    name = department.code.lower()
    description = department.name_en if department.name_en != department.name_zh else ""
    found = {
        "id": _uuid("organization", department.pk),
        "name": name,
        "title": department.name_zh or department.name_en,
        "display_name": department.name_zh or department.name_en,
        "type": "organization",
        "description": description,
        "image_url": "",
        "image_display_url": "",
        "created": _iso(created),
        "is_organization": True,
        "approval_status": "approved",
        "state": "active",
    }
    if package_count is not None:
        found["package_count"] = package_count
        found["num_followers"] = 0
    return found


def group_dict(group: DatasetGroup, *, package_count: int | None = None) -> dict:
    found = {
        "id": _uuid("group", group.pk),
        "name": group.name,
        "title": group.title,
        "display_name": group.title,
        "description": group.description,
        "image_url": "",
        "image_display_url": "",
        "type": "group",
        "is_organization": False,
        "approval_status": "approved",
        "state": "active",
        "created": None,
    }
    if package_count is not None:
        found["package_count"] = package_count
        found["num_followers"] = 0
    return found


def tag_dict(name: str) -> dict:
    return {
        "id": _uuid("tag", name),
        "name": name,
        "display_name": name,
        "state": "active",
        "vocabulary_id": None,
    }


def download_url(release: OpenRelease) -> str:
    """The portal's CSV of a release (``/data/<slug>/<resource_id>.csv``, served by the portal
    app, which answers only while the release is published)."""
    path = reverse(
        "portal:download",
        kwargs={"slug": release.dataset.slug, "resource_id": release.resource_id, "fmt": "csv"},
    )
    return f"{_site_url()}{path}"


def resource_dict(release: OpenRelease, position: int = 0) -> dict:
    dataset = release.dataset
    return {
        "id": str(release.resource_id),
        "package_id": _uuid("package", dataset.pk),
        "name": release.title,
        "description": release.notes,
        "format": "CSV",
        "mimetype": "text/csv",
        "mimetype_inner": None,
        "url": download_url(release),
        "url_type": None,
        "resource_type": None,
        "size": release.size_bytes or None,
        "hash": release.checksum,
        "created": _iso(release.published_at or release.created_at),
        "last_modified": _iso(release.published_at),
        "metadata_modified": _iso(release.updated_at),
        "cache_url": None,
        "cache_last_updated": None,
        "datastore_active": True,
        "position": position,
        "state": "active",
        # extensions of ours: what the resource holds
        "num_rows": release.row_count,
        "columns": list(release.columns),
    }


def package_dict(dataset: Dataset) -> dict:
    releases = list(dataset.published)
    latest = releases[-1]
    license_id = latest.license
    title, url, is_open = LICENSES.get(license_id, (latest.get_license_display(), "", False))
    for release in releases:
        release.dataset = dataset  # no query per resource for the slug
    owner = dataset.owner
    groups = sorted(dataset.groups.all(), key=lambda g: g.name)
    return {
        "id": _uuid("package", dataset.pk),
        "name": dataset.slug,
        "title": dataset.title,
        "notes": dataset.description,
        "url": None,
        "version": str(latest.version.number) if latest.version_id else "",
        "type": "dataset",
        "state": "active",
        "private": False,
        "isopen": is_open,
        "license_id": license_id,
        "license_title": str(title),
        "license_url": url,
        "author": owner.name_zh,
        "author_email": None,
        "maintainer": owner.name_zh,
        "maintainer_email": None,
        "creator_user_id": None,
        "owner_org": _uuid("organization", owner.pk),
        "organization": organization_dict(owner, dataset.owner_since),
        "metadata_created": _iso(dataset.created_at),
        "metadata_modified": _iso(_modified(dataset)),
        "num_resources": len(releases),
        "resources": [resource_dict(r, i) for i, r in enumerate(releases)],
        "num_tags": len(dataset.tags),
        "tags": [tag_dict(t) for t in dataset.tags],
        "groups": [
            {k: v for k, v in group_dict(g).items() if k in _PACKAGE_GROUP_KEYS} for g in groups
        ],
        "extras": [
            {"key": "title_en", "value": dataset.title_en},
            {"key": "update_frequency", "value": dataset.update_frequency},
        ],
        "relationships_as_subject": [],
        "relationships_as_object": [],
    }


_PACKAGE_GROUP_KEYS = ("id", "name", "title", "display_name", "description", "image_display_url")


def package_list(params: dict) -> list[str]:
    """The names of the published packages, by name; ``limit`` and ``offset`` page them."""
    names = list(_packages().values_list("slug", flat=True))
    offset = _int(params, "offset", 0)
    limit = _int(params, "limit", len(names))
    return names[offset : offset + limit]


def package_show(params: dict) -> dict:
    """One package by ``id`` (its UUID) or name, with its published resources."""
    return package_dict(_find_package(_required_id(params)))


def current_package_list_with_resources(params: dict) -> list[dict]:
    """Packages with resources, the latest modified first (``limit``, ``offset``)."""
    packages = sorted(
        (package_dict(d) for d in _packages()), key=lambda p: p["metadata_modified"], reverse=True
    )
    offset = _int(params, "offset", 0)
    limit = _int(params, "limit", len(packages), maximum=LIST_LIMIT_MAX)
    return packages[offset : offset + limit]


# --------------------------------------------------------------------------- package_search


@dataclass
class _Document:
    """What search matches a package by, taken once per package."""

    package: dict
    fields: dict[str, set[str]] = field(default_factory=dict)  # fq field -> lower-cased values
    texts: dict[str, tuple[str, set[str]]] = field(default_factory=dict)  # part -> (text, words)


_TEXT_WEIGHTS = {"title": 3.0, "tags": 2.0, "notes": 1.0}

FQ_FIELDS = {
    "tags": lambda p: [t["name"] for t in p["tags"]],
    "organization": lambda p: [p["organization"]["name"]],
    "groups": lambda p: [g["name"] for g in p["groups"]],
    "res_format": lambda p: [r["format"] for r in p["resources"]],
    "license_id": lambda p: [p["license_id"]],
    "name": lambda p: [p["name"]],
    "id": lambda p: [p["id"]],
    "res_id": lambda p: [r["id"] for r in p["resources"]],
}
FACET_FIELDS = ("tags", "organization", "groups", "res_format", "license_id")

SORT_FIELDS: dict[str, Callable[[dict, float], object]] = {
    "score": lambda p, s: s,
    "metadata_modified": lambda p, s: p["metadata_modified"] or "",
    "metadata_created": lambda p, s: p["metadata_created"] or "",
    "title_string": lambda p, s: (p["title"] or "").lower(),
    "title": lambda p, s: (p["title"] or "").lower(),
    "name": lambda p, s: p["name"],
    "num_resources": lambda p, s: p["num_resources"],
    "num_tags": lambda p, s: p["num_tags"],
}
DEFAULT_SORT = "score desc, metadata_modified desc"


def _document(package: dict, title_en: str) -> _Document:
    doc = _Document(package)
    for name, values in FQ_FIELDS.items():
        doc.fields[name] = {str(v).lower() for v in values(package)}
    parts = {
        "title": f"{package['title']} {title_en}",
        "tags": " ".join(t["name"] for t in package["tags"]),
        "notes": package["notes"] or "",
    }
    for part, text in parts.items():
        doc.texts[part] = (normalize(text), set(tokens(text)))
    return doc


def _search_words(written: list[str]) -> list[str]:
    """The words a query asks for: jieba's (Chinese) or plain words, numbers as written (the
    tokenizer folds them into one token), and a word that is all stop words kept as written."""
    words: list[str] = []
    for word in written:
        found = [t for t in tokens(word) if t not in (NUM, URL)]
        found += re.findall(r"\d+(?:[.,:/]\d+)*", normalize(word))
        words.extend(found or [normalize(word)])
    return words


def _score(doc: _Document, words: list[str]) -> float | None:
    """The weight of the parts each query word is found in; None when a word is nowhere (every
    word must match, as CKAN's default ``q.op`` AND asks)."""
    total = 0.0
    for word in words:
        found = [
            _TEXT_WEIGHTS[part]
            for part, (text, words_in) in doc.texts.items()
            if word in words_in or word in text
        ]
        if not found:
            return None
        total += sum(found)
    return total


_CLAUSE = re.compile(r"^([+-]?)([A-Za-z_.]+):(.+)$")


def _clauses(query: str, *, allow_words: bool) -> tuple[list[tuple[bool, str, str]], list[str]]:
    """Split a Solr-like query into ``field:value`` clauses (negated with ``-``) and free words.

    Clauses combine with AND (written or implied by a space); OR is refused rather than
    silently read as AND."""
    try:
        parts = shlex.split(query, posix=True)
    except ValueError as exc:
        raise SearchQueryError(f"Search Query is invalid: {exc}") from None
    clauses: list[tuple[bool, str, str]] = []
    words: list[str] = []
    for part in parts:
        if part in ("AND", "&&"):
            continue
        if part in ("OR", "||", "NOT"):
            raise SearchQueryError(
                f"Search Query is invalid: {part} is not supported here; clauses combine with AND"
            )
        matched = _CLAUSE.match(part)
        if matched:
            sign, name, value = matched.groups()
            if name not in FQ_FIELDS:
                known = ", ".join(sorted(FQ_FIELDS))
                raise SearchQueryError(
                    f'Search Query is invalid: unknown field "{name}" (known: {known})'
                )
            clauses.append((sign == "-", name, value.strip('"').lower()))
        elif part in ("*:*", "*"):
            continue
        elif allow_words:
            words.append(part)
        else:
            raise SearchQueryError(f'Search Query is invalid: "{part}" is not a field:value filter')
    return clauses, words


def _sort_key(sort: str) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    for item in sort.split(","):
        bits = item.split()
        if not bits:
            continue
        name = bits[0]
        direction = bits[1].lower() if len(bits) > 1 else "asc"
        if name not in SORT_FIELDS or direction not in ("asc", "desc") or len(bits) > 2:
            known = ", ".join(sorted(SORT_FIELDS))
            raise SearchQueryError(
                f'Search Query is invalid: cannot sort by "{item.strip()}" '
                f"(fields: {known}; asc or desc)"
            )
        order.append((name, direction == "desc"))
    return order


def _facets(docs: Iterable[_Document], names: list[str], limit: int, mincount: int):
    facets: dict[str, dict[str, int]] = {}
    search_facets: dict[str, dict] = {}
    docs = list(docs)
    for name in names:
        if name not in FACET_FIELDS:
            raise SearchQueryError(
                f'Search Query is invalid: cannot facet on "{name}" '
                f"(fields: {', '.join(FACET_FIELDS)})"
            )
        counts: dict[str, int] = {}
        for doc in docs:
            for value in set(FQ_FIELDS[name](doc.package)):
                counts[value] = counts.get(value, 0) + 1
        ranked = sorted(
            ((v, c) for v, c in counts.items() if c >= mincount), key=lambda vc: (-vc[1], vc[0])
        )
        if limit >= 0:
            ranked = ranked[:limit]
        facets[name] = dict(ranked)
        search_facets[name] = {
            "title": name,
            "items": [{"name": v, "display_name": v, "count": c} for v, c in ranked],
        }
    return facets, search_facets


def package_search(params: dict) -> dict:
    """Search the published packages.

    ``q``: words, each found in the title (zh or en), tags or notes (Chinese by jieba's words
    or as a substring), or ``field:value`` clauses; ``fq``: ``field:value`` clauses on tags,
    organization, groups, res_format, license_id, name, id, res_id (``-`` negates, AND or a
    space combines); ``rows`` (default 10, at most 1000) and ``start`` page; ``sort``: a list
    of ``field asc|desc`` (score, metadata_modified, metadata_created, title_string, name,
    num_resources, num_tags); ``facet.field`` (a JSON list), ``facet.limit``,
    ``facet.mincount``."""
    q = str(params.get("q") or "").strip()
    fq = str(params.get("fq") or "").strip()
    rows = _int(params, "rows", ROWS_DEFAULT, maximum=ROWS_MAX)
    start = _int(params, "start", 0)
    sort = str(params.get("sort") or DEFAULT_SORT).strip()
    order = _sort_key(sort)
    q_clauses, q_words = _clauses(q, allow_words=True)
    fq_clauses, _ = _clauses(fq, allow_words=False)
    words = _search_words(q_words)
    facet_names = _json_param(params, "facet.field") or []
    if not isinstance(facet_names, list):
        raise ValidationError("facet.field: must be a list", **{"facet.field": ["Not a list"]})

    matched: list[tuple[_Document, float]] = []
    for dataset in _packages():
        doc = _document(package_dict(dataset), dataset.title_en)
        if not all(
            (value in doc.fields[name]) != negated
            for negated, name, value in q_clauses + fq_clauses
        ):
            continue
        score = _score(doc, words) if words else 1.0
        if score is None:
            continue
        matched.append((doc, score))
    for name, descending in reversed(order):
        matched.sort(key=lambda ds: SORT_FIELDS[name](ds[0].package, ds[1]), reverse=descending)
    facets, search_facets = _facets(
        (d for d, _ in matched),
        [str(n) for n in facet_names],
        _int(params, "facet.limit", 50) if params.get("facet.limit") not in ("-1", -1) else -1,
        _int(params, "facet.mincount", 1),
    )
    return {
        "count": len(matched),
        "sort": sort,
        "results": [d.package for d, _ in matched[start : start + rows]],
        "facets": facets,
        "search_facets": search_facets,
    }


# ------------------------------------------------------------- organizations, groups, tags


def _owners() -> dict[Department, list[Dataset]]:
    """Departments owning published packages, with those packages."""
    owned: dict[Department, list[Dataset]] = {}
    for dataset in _packages():
        owned.setdefault(dataset.owner, []).append(dataset)
    return owned


def _listing(dicts: list[dict], params: dict) -> list:
    order = str(params.get("sort") or "name asc").split()
    key = order[0] if order and order[0] in ("name", "title", "package_count") else "name"
    dicts.sort(key=lambda d: d[key], reverse=len(order) > 1 and order[1].lower() == "desc")
    offset = _int(params, "offset", 0)
    limit = _int(params, "limit", LIST_LIMIT_MAX, maximum=LIST_LIMIT_MAX)
    dicts = dicts[offset : offset + limit]
    if _bool(params, "all_fields"):
        return dicts
    return [d["name"] for d in dicts]


def organization_list(params: dict) -> list:
    """Departments owning published packages: names, or dicts with ``all_fields``."""
    return _listing(
        [
            organization_dict(o, ds[0].owner_since, package_count=len(ds))
            for o, ds in _owners().items()
        ],
        params,
    )


def _members_result(found: dict, datasets: list[Dataset], params: dict) -> dict:
    found["package_count"] = len(datasets)
    found["num_followers"] = 0
    found["users"] = []  # who works where is not open data
    found["extras"] = []
    found["groups"] = []
    tags = sorted({t for d in datasets for t in d.tags})
    found["tags"] = [tag_dict(t) for t in tags]
    if _bool(params, "include_datasets"):  # off unless asked, as in CKAN
        found["packages"] = [package_dict(d) for d in datasets[:LIST_LIMIT_MAX]]
    return found


def organization_show(params: dict) -> dict:
    """One department by ``id`` (its UUID) or name (its code, any case); its packages too
    with ``include_datasets``."""
    key = _required_id(params)
    for department, datasets in _owners().items():
        if key.lower() == department.code.lower() or key == _uuid("organization", department.pk):
            found = organization_dict(department, datasets[0].owner_since)
            return _members_result(found, datasets, params)
    raise NotFound("Organization not found")


def _groups() -> dict[DatasetGroup, list[Dataset]]:
    published = list(_packages())
    members: dict[DatasetGroup, list[Dataset]] = {g: [] for g in DatasetGroup.objects.all()}
    for dataset in published:
        for group in dataset.groups.all():
            members.setdefault(group, []).append(dataset)
    return members


def group_list(params: dict) -> list:
    """The portal's themes: names, or dicts with ``all_fields`` (counts published packages)."""
    return _listing([group_dict(g, package_count=len(ds)) for g, ds in _groups().items()], params)


def group_show(params: dict) -> dict:
    """One theme by ``id`` (its UUID) or name; its published packages with
    ``include_datasets``."""
    key = _required_id(params)
    for group, datasets in _groups().items():
        if key in (group.name, _uuid("group", group.pk)):
            return _members_result(group_dict(group), datasets, params)
    raise NotFound("Group not found")


def tag_list(params: dict) -> list:
    """Tags of published packages (``query`` keeps those containing it, any case)."""
    query = str(params.get("query") or params.get("q") or "").strip().lower()
    names = sorted({t for d in _packages() for t in d.tags})
    if query:
        names = [n for n in names if query in n.lower()]
    if _bool(params, "all_fields"):
        return [tag_dict(n) for n in names]
    return names


def tag_show(params: dict) -> dict:
    key = _required_id(params)
    for name in {t for d in _packages() for t in d.tags}:
        if key in (name, _uuid("tag", name)):
            return tag_dict(name)
    raise NotFound("Tag not found")


# --------------------------------------------------------------------------- resources


def _find_release(key: object, what: str = "Resource") -> OpenRelease:
    try:
        resource_id = uuid.UUID(str(key).strip())
    except ValueError:
        raise NotFound(f"{what} was not found.") from None
    release = (
        OpenRelease.objects.filter(resource_id=resource_id, status=OpenRelease.Status.PUBLISHED)
        .select_related("dataset", "version")
        .first()
    )
    if release is None:
        raise NotFound(f"{what} was not found.")
    return release


def resource_show(params: dict) -> dict:
    """One published release as a resource, by ``id`` (its ``resource_id``)."""
    release = _find_release(_required_id(params))
    position = list(
        OpenRelease.objects.filter(
            dataset_id=release.dataset_id, status=OpenRelease.Status.PUBLISHED
        )
        .order_by("published_at", "id")
        .values_list("pk", flat=True)
    ).index(release.pk)
    return resource_dict(release, position)


# --------------------------------------------------------------------------- datastore_search

_CKAN_TYPES = (  # DuckDB type prefix -> the PostgreSQL name CKAN's DataStore reports
    (
        (
            "TINYINT",
            "SMALLINT",
            "INTEGER",
            "BIGINT",
            "HUGEINT",
            "UTINYINT",
            "USMALLINT",
            "UINTEGER",
            "UBIGINT",
        ),
        "int",
    ),
    (("DOUBLE", "FLOAT", "REAL", "DECIMAL"), "numeric"),
    (("BOOLEAN",), "bool"),
    (("TIMESTAMP",), "timestamp"),
    (("DATE",), "date"),
    (("TIME",), "time"),
)


def _ckan_type(duck_type: str) -> str:
    for prefixes, name in _CKAN_TYPES:
        if duck_type.upper().startswith(prefixes):
            return name
    return "text"


def _json_value(value):
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


@dataclass(frozen=True)
class _Layout:
    """What a release's files hold, found once: a published release's files are written once
    and never rewritten, so this is kept (per process) for as long as they stay the same files
    (same names, sizes and modification times), instead of asking DuckDB on every request."""

    described: tuple[tuple[str, str], ...]  # every column of the files and its DuckDB type
    source: str  # the rows with their _id, as SQL binding ``params``
    params: tuple
    id_expr: str  # the SQL for _id in a WHERE clause
    id_order: str  # and in an ORDER BY (ordering by the row number itself is ~4x faster)


_LAYOUTS: dict[tuple, _Layout] = {}
_LAYOUTS_KEPT = 64
_duckdb_lock = threading.Lock()
_duckdb_shared: dict[int, duckdb.DuckDBPyConnection] = {}  # by process id (gunicorn forks)


def _cursor() -> duckdb.DuckDBPyConnection:
    """A cursor on this process's in-memory DuckDB: opening a database costs ~14 ms, a cursor
    on an open one nothing; each request (each thread) has its own cursor."""
    with _duckdb_lock:
        con = _duckdb_shared.get(os.getpid())
        if con is None:
            con = _duckdb_shared[os.getpid()] = duckdb.connect()
        return con.cursor()


def _files_key(release: OpenRelease) -> tuple:
    directory = release.lake_dir()
    try:
        found = sorted(p for p in directory.iterdir() if re.fullmatch(r"part-.*\.parquet", p.name))
        return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in found)
    except OSError:
        return ()


def _layout(con: duckdb.DuckDBPyConnection, release: OpenRelease) -> _Layout:
    files = _files_key(release)
    if not files:
        raise NotFound("Resource data is not available.")
    key = (str(release.resource_id), release.checksum, release.lake_path, files)
    layout = _LAYOUTS.get(key)
    if layout is None:
        try:
            described = con.execute(
                "DESCRIBE SELECT * FROM read_parquet(?)", [release.data_glob()]
            ).fetchall()
            layout = _source(con, release, tuple((row[0], row[1]) for row in described), files)
        except duckdb.Error:
            raise NotFound("Resource data is not available.") from None
        if len(_LAYOUTS) >= _LAYOUTS_KEPT:
            _LAYOUTS.clear()
        _LAYOUTS[key] = layout
    return layout


def _columns(layout: _Layout, release: OpenRelease) -> dict[str, str]:
    """The release's published columns and their DuckDB types, in file order."""
    allowed = set(release.columns or [])
    return {name: typ for name, typ in layout.described if not allowed or name in allowed}


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _sort_clause(sort, columns: dict[str, str], id_order: str) -> tuple[str, list[str]]:
    if isinstance(sort, list):
        items = [str(s) for s in sort]
    else:
        items = [s for s in str(sort).split(",")]
    parts: list[str] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        direction = "ASC"
        lowered = item.lower()
        for suffix in (" asc", " desc"):
            if lowered.endswith(suffix):
                direction = suffix.strip().upper()
                item = item[: -len(suffix)].strip()
                break
        if len(item) > 1 and item[0] == item[-1] == '"':
            item = item[1:-1]
        if item != "_id" and item not in columns:
            raise ValidationError(
                f'sort: field "{item}" not in the resource',
                sort=[f'field "{item}" not in the resource'],
            )
        column = id_order if item == "_id" else quote_identifier(item)
        parts.append(f"{column} {direction}")
    return ", ".join(parts), items


def datastore_search(params: dict) -> dict:
    """Rows of a published release, read with DuckDB from its Parquet.

    ``resource_id``; ``filters``: a JSON object of column → value (or list of values, any of
    them); ``q``: words each found (case-insensitive substring) in some text column, or an
    object of column → words; ``fields``: columns to return; ``sort``: ``"col asc, col2 desc"``;
    ``limit`` (default 100, at most 32000) and ``offset``; ``include_total`` (default true).
    Records carry ``_id``, the row's position in the release (1-based), as CKAN's do."""
    resource_key = params.get("resource_id") or params.get("id")
    if resource_key in (None, ""):
        raise ValidationError("resource_id: Missing value", resource_id=["Missing value"])
    release = _find_release(resource_key, "Resource")
    limit = _int(params, "limit", DATASTORE_LIMIT_DEFAULT, maximum=DATASTORE_LIMIT_MAX)
    offset = _int(params, "offset", 0)
    records_format = params.get("records_format") or "objects"
    if records_format != "objects":
        raise ValidationError(
            "records_format: only 'objects' is supported",
            records_format=["only 'objects' is supported"],
        )

    con = _cursor()
    try:
        layout = _layout(con, release)
        columns = _columns(layout, release)
        where, values = _where(params, columns, layout.id_expr)
        fields = _json_param(params, "fields")
        chosen = list(columns)
        if fields:
            chosen = [str(f).strip() for f in _as_list(fields)]
            unknown = [f for f in chosen if f != "_id" and f not in columns]
            if unknown:
                raise ValidationError(
                    f"fields: {', '.join(unknown)} not in the resource",
                    fields=[f'field "{f}" not in the resource' for f in unknown],
                )
            chosen = [f for f in chosen if f != "_id"]
        order, sort_items = ("", [])
        if params.get("sort"):
            order, sort_items = _sort_clause(_json_param_sort(params), columns, layout.id_order)
        order = f"{order}, {layout.id_order} ASC" if order else f"{layout.id_order} ASC"

        source, glob = layout.source, list(layout.params)
        select = ", ".join([f"{layout.id_expr} AS _id", *(quote_identifier(c) for c in chosen)])
        sql = f"SELECT {select} FROM {source} AS t WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
        try:
            cursor = con.execute(sql, [*glob, *values, limit, offset])
            names = [d[0] for d in cursor.description]
            records = [
                {n: _json_value(v) for n, v in zip(names, row, strict=True)}
                for row in cursor.fetchall()
            ]
            total = None
            if _bool(params, "include_total", True):
                total = con.execute(
                    f"SELECT count(*) FROM {source} AS t WHERE {where}", [*glob, *values]
                ).fetchone()[0]
        except duckdb.ConversionException as exc:
            raise ValidationError(
                f"filters: a value does not fit its column ({str(exc).splitlines()[0]})",
                filters=["a value does not fit its column"],
            ) from None
        except duckdb.IOException:  # its files went away (withdrawn, retention) meanwhile
            raise NotFound("Resource data is not available.") from None
    finally:
        con.close()

    result = {
        "include_total": _bool(params, "include_total", True),
        "resource_id": str(release.resource_id),
        "fields": [{"id": "_id", "type": "int"}]
        + [{"id": c, "type": _ckan_type(columns[c])} for c in chosen],
        "records_format": "objects",
        "records": records,
        "limit": limit,
        "offset": offset,
        "_links": _links(params, str(release.resource_id), limit, offset),
    }
    if total is not None:
        result["total"] = total
    for name in ("filters", "q"):
        if params.get(name):
            result[name] = _json_param(params, name)
    if sort_items:
        result["sort"] = params.get("sort")
    return result


def _json_param_sort(params: dict):
    sort = params.get("sort")
    if isinstance(sort, str) and sort.strip().startswith("["):
        return _json_param(params, "sort")
    return sort


def _source(
    con: duckdb.DuckDBPyConnection,
    release: OpenRelease,
    described: tuple[tuple[str, str], ...],
    files: tuple,
) -> _Layout:
    """The release's rows and ``_id``, their 1-based position: in a single part file (how
    releases are written) its row number, used as it is (the filter, the order and the row
    number in one SELECT let DuckDB stop early; a subquery computing ``_id`` first cost ~4x);
    across several files, each file's rows after the earlier files'."""
    glob = release.data_glob()
    if len(files) <= 1:
        return _Layout(
            described,
            "read_parquet(?, file_row_number = true)",
            (glob,),
            "(file_row_number + 1)",
            "file_row_number",
        )
    counts = con.execute(
        "SELECT file_name, num_rows FROM parquet_file_metadata(?) ORDER BY file_name", [glob]
    ).fetchall()
    base, offsets = 0, []
    for name, rows in counts:
        offsets.append(f"({quote_literal(name)}, {int(base)})")
        base += rows
    return _Layout(
        described,
        "(SELECT p.* EXCLUDE (filename, file_row_number), "
        "p.file_row_number + o.base + 1 AS _id "
        f"FROM read_parquet({quote_literal(glob)}, filename = true, "
        "file_row_number = true) AS p "
        f"JOIN (VALUES {', '.join(offsets)}) AS o(f, base) ON p.filename = o.f)",
        (),
        "_id",
        "_id",
    )


def _where(params: dict, columns: dict[str, str], id_expr: str = "_id") -> tuple[str, list]:
    conditions: list[str] = []
    values: list = []
    filters = _json_param(params, "filters") or {}
    if not isinstance(filters, dict):
        raise ValidationError("filters: must be a JSON object", filters=["Not a JSON object"])
    for name, wanted in filters.items():
        if name not in columns and name != "_id":
            raise ValidationError(
                f'filters: field "{name}" not in the resource',
                filters=[f'field "{name}" not in the resource'],
            )
        column_type = "BIGINT" if name == "_id" else columns[name]
        options = _as_list(wanted)
        if not options:
            conditions.append("false")
            continue
        marks = ", ".join(f"CAST(? AS {column_type})" for _ in options)
        column = id_expr if name == "_id" else quote_identifier(name)
        conditions.append(f"{column} IN ({marks})")
        values.extend(
            None if v is None else str(v) if not isinstance(v, bool) else v for v in options
        )
    q = _json_param(params, "q")
    text_columns = [c for c, t in columns.items() if _ckan_type(t) == "text"]
    if isinstance(q, dict):
        for name, words in q.items():
            if name not in columns:
                raise ValidationError(
                    f'q: field "{name}" not in the resource',
                    q=[f'field "{name}" not in the resource'],
                )
            for word in _query_words(str(words)):
                conditions.append(f"CAST({quote_identifier(name)} AS VARCHAR) ILIKE ? ESCAPE '\\'")
                values.append(f"%{_like_escape(word)}%")
    elif q not in (None, ""):
        for word in _query_words(str(q)):
            if not text_columns:
                conditions.append("false")
                break
            ors = " OR ".join(f"{quote_identifier(c)} ILIKE ? ESCAPE '\\'" for c in text_columns)
            conditions.append(f"({ors})")
            values.extend([f"%{_like_escape(word)}%"] * len(text_columns))
    return (" AND ".join(conditions) or "true"), values


def _query_words(text: str) -> list[str]:
    """Words of a datastore ``q``: split on spaces; a Chinese run stays whole (it is matched as
    a substring, which finds it whatever words the row's text splits into)."""
    return [w for w in text.split() if w]


def _like_escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _links(params: dict, resource_id: str, limit: int, offset: int) -> dict:
    path = f"/api/{API_VERSION}/action/datastore_search"
    kept = {k: v for k, v in params.items() if k not in ("offset", "resource_id", "id")}
    kept = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in kept.items()}
    start = {"resource_id": resource_id, **kept}
    following = {**start, "offset": offset + limit}
    return {
        "start": f"{path}?{urlencode(start)}",
        "next": f"{path}?{urlencode(following)}",
    }


# --------------------------------------------------------------------------- status


def status_show(params: dict) -> dict:
    """What this site is and which API it speaks."""
    return {
        "ckan_version": CKAN_VERSION,
        "site_title": SITE_TITLE,
        "site_description": "Open data of the city's departments, published by CivicPulse",
        "site_url": _site_url(),
        "locale_default": settings.LANGUAGE_CODE,
        "error_emails_to": None,
        "extensions": ["datastore"],
        "api_version": API_VERSION,
        "read_only": True,
    }


ACTIONS: dict[str, Callable[[dict], object]] = {
    "package_list": package_list,
    "current_package_list_with_resources": current_package_list_with_resources,
    "package_show": package_show,
    "package_search": package_search,
    "organization_list": organization_list,
    "organization_show": organization_show,
    "group_list": group_list,
    "group_show": group_show,
    "tag_list": tag_list,
    "tag_show": tag_show,
    "resource_show": resource_show,
    "datastore_search": datastore_search,
    "status_show": status_show,
}


def help_show(params: dict) -> str:
    """The documentation of an action (``name``)."""
    name = str(params.get("name") or "")
    action = ACTIONS.get(name) or (help_show if name == "help_show" else None)
    if action is None:
        raise NotFound(f"Action {name!r} not found")
    return (action.__doc__ or "").strip()


ACTIONS["help_show"] = help_show


def call(name: str, params: dict):
    """Run the read action ``name``; CKAN's write actions are refused (the API is read-only)."""
    action = ACTIONS.get(name)
    if action is None:
        if re.search(r"_(create|update|patch|delete|purge|upsert)$|^member_|^user_", name):
            raise NotAuthorized(f"Access denied: {name} is not open here (the API is read-only)")
        raise BadRequest(f"Bad request - Action name not known: {name}")
    return action(params)
