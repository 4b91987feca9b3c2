"""DCAT descriptions of the open-data portal, as JSON-LD (DCAT-AP style).

    catalog_document(datasets, url_for)     a dcat:Catalog with every open dataset
    dataset_document(dataset, url_for)      one dcat:Dataset with its distributions

Harvesters (national portals, data.europa.eu-style aggregators) read these to list our datasets
without scraping pages. Each published release is offered as two distributions, its CSV and its
Parquet download; ``dcat:byteSize`` is given for the Parquet file, whose size is known, and left
out for the CSV, which is produced while it streams. Titles carry language tags (``zh`` and, when
given, ``en``). Only published releases appear: the caller passes what the portal serves.

``url_for(name, **kwargs)`` turns a portal URL name into an absolute URL (the view builds it from
the request), so the documents hold the addresses a harvester can fetch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from civicpulse.catalog.models import Dataset, OpenRelease

__all__ = ["CONTEXT", "LICENSES", "MEDIA_TYPES", "catalog_document", "dataset_document"]

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dct:issued": {"@type": "xsd:dateTime"},
    "dct:modified": {"@type": "xsd:dateTime"},
    "dcat:byteSize": {"@type": "xsd:nonNegativeInteger"},
}
LICENSES = {
    OpenRelease.License.CC_BY: "https://creativecommons.org/licenses/by/4.0/",
    OpenRelease.License.CC_ZERO: "https://creativecommons.org/publicdomain/zero/1.0/",
    OpenRelease.License.ODC_BY: "https://opendatacommons.org/licenses/by/1-0/",
}
# IANA registered Parquet's type in 2024; CSV's has been text/csv since RFC 4180
MEDIA_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}

UrlFor = Callable[..., str]


def _texts(zh: str, en: str) -> list[dict[str, str]]:
    values = [{"@value": zh, "@language": "zh"}]
    if en:
        values.append({"@value": en, "@language": "en"})
    return values


def _license(release: OpenRelease, url_for: UrlFor) -> dict[str, str]:
    uri = LICENSES.get(release.license)
    if uri:
        return {"@id": uri}
    # the government licence has no canonical address: name it by its label
    return {"@type": "dct:LicenseDocument", "dct:title": str(release.get_license_display())}


def _distributions(release: OpenRelease, url_for: UrlFor) -> list[dict[str, Any]]:
    found = []
    for fmt in ("csv", "parquet"):
        url = url_for(
            "portal:download", slug=release.dataset.slug, resource_id=release.resource_id, fmt=fmt
        )
        item: dict[str, Any] = {
            "@id": url,
            "@type": "dcat:Distribution",
            "dct:identifier": f"{release.resource_id}.{fmt}",
            "dct:title": _texts(release.title, release.title_en),
            "dcat:downloadURL": {"@id": url},
            "dcat:accessURL": {"@id": url},
            "dcat:mediaType": MEDIA_TYPES[fmt],
            "dct:format": fmt.upper(),
            "dct:license": _license(release, url_for),
            "dct:issued": release.published_at.isoformat() if release.published_at else None,
        }
        if release.notes:
            item["dct:description"] = release.notes
        if fmt == "parquet":
            item["dcat:byteSize"] = release.size_bytes
            item["spdx:checksum"] = {
                "@type": "spdx:Checksum",
                "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
                "spdx:checksumValue": release.checksum,
            }
        found.append({k: v for k, v in item.items() if v is not None})
    return found


def _dataset(dataset: Dataset, releases: list[OpenRelease], url_for: UrlFor) -> dict[str, Any]:
    times = [r.published_at for r in releases if r.published_at]
    owner = dataset.owner
    node: dict[str, Any] = {
        "@id": url_for("portal:dataset", slug=dataset.slug),
        "@type": "dcat:Dataset",
        "dct:identifier": dataset.slug,
        "dct:title": _texts(dataset.title, dataset.title_en),
        "dct:description": dataset.description or dataset.title,
        "dct:publisher": {
            "@type": "foaf:Organization",
            "foaf:name": _texts(owner.name_zh, getattr(owner, "name_en", "") or ""),
        },
        "dcat:keyword": list(dataset.tags or []),
        "dcat:theme": [g.title_en or g.title for g in dataset.groups.all()],
        "dcat:landingPage": {"@id": url_for("portal:dataset", slug=dataset.slug)},
        "dct:accrualPeriodicity": dataset.update_frequency,
        "dct:issued": min(times).isoformat() if times else None,
        "dct:modified": max(times).isoformat() if times else None,
        "dcat:distribution": [d for r in releases for d in _distributions(r, url_for)],
    }
    return {k: v for k, v in node.items() if v is not None}


def _context() -> dict[str, Any]:
    return {**CONTEXT, "spdx": "http://spdx.org/rdf/terms#"}


def dataset_document(
    dataset: Dataset, releases: Iterable[OpenRelease], url_for: UrlFor
) -> dict[str, Any]:
    """One dataset and its published releases' distributions."""
    return {"@context": _context(), **_dataset(dataset, list(releases), url_for)}


def catalog_document(
    datasets: Iterable[tuple[Dataset, list[OpenRelease]]], url_for: UrlFor, *, title: str
) -> dict[str, Any]:
    """The portal as a dcat:Catalog of its datasets, each with its distributions."""
    nodes = [_dataset(d, releases, url_for) for d, releases in datasets]
    modified = [n["dct:modified"] for n in nodes if n.get("dct:modified")]
    document: dict[str, Any] = {
        "@context": _context(),
        "@id": url_for("portal:catalog_jsonld"),
        "@type": "dcat:Catalog",
        "dct:title": title,
        "foaf:homepage": {"@id": url_for("portal:index")},
        "dcat:dataset": nodes,
    }
    if modified:
        document["dct:modified"] = max(modified)
    return document
