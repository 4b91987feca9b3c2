"""The public open-data portal (/data/): no login, published releases only, nothing personal.

Pages list the datasets that have published releases and each one's releases; downloads stream
a release's own Parquet file, or its rows as CSV; DCAT JSON-LD describes a dataset and the whole
catalog for harvesters. Nothing here reads a version's data or a draft: only the files a release
wrote after passing its check and being approved, and only while it is published.

A withdrawn release's downloads answer 410 Gone, not 404: links to it were public, and "it was
here and was taken down" is the truthful answer to a user or a harvester following one (the
reason stays on the staff side). Anything never published is 404.

CSV is written in UTF-8 with a byte order mark: Excel, which most of our users open CSV with,
reads a CSV without a BOM in the system's ANSI code page (GBK on Chinese Windows), garbling
Chinese text; with the BOM it reads UTF-8. Other tools skip or tolerate the BOM.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from civicpulse.catalog import opendata
from civicpulse.catalog.dcat import MEDIA_TYPES, catalog_document, dataset_document
from civicpulse.catalog.models import Dataset, DatasetRead, OpenRelease

CSV_BATCH_ROWS = 65_536
JSONLD = "application/ld+json; charset=utf-8"


def _open_dataset(slug: str) -> Dataset:
    dataset = opendata.open_datasets().filter(slug=slug).first()
    if dataset is None:
        raise Http404("no open dataset here")
    return dataset


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "catalog/portal_index.html", {"datasets": opendata.open_datasets()})


@require_GET
def dataset_page(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _open_dataset(slug)
    return render(
        request,
        "catalog/portal_dataset.html",
        {"dataset": dataset, "releases": opendata.published(dataset)},
    )


@require_GET
def download(request: HttpRequest, slug: str, resource_id, fmt: str) -> HttpResponse:
    release = (
        OpenRelease.objects.select_related("dataset", "version")
        .filter(dataset__slug=slug, resource_id=resource_id)
        .first()
    )
    if release is None or release.status not in (
        OpenRelease.Status.PUBLISHED,
        OpenRelease.Status.WITHDRAWN,
    ):
        raise Http404("no such release")
    if release.status == OpenRelease.Status.WITHDRAWN:
        note = _("This release was withdrawn on %(date)s and is no longer published.") % {
            "date": f"{release.withdrawn_at:%Y-%m-%d}"
        }
        return HttpResponse(note, status=410, content_type="text/plain; charset=utf-8")
    data = release.lake_dir() / opendata.DATA_FILE
    if not data.is_file():
        raise Http404("release file missing")
    DatasetRead.objects.create(
        dataset=release.dataset,
        version=release.version,
        user=request.user if request.user.is_authenticated else None,
        channel=DatasetRead.Channel.OPEN,
        rows=release.row_count,
        columns=release.columns,
    )
    name = f"{slug}-{release.resource_id}.{fmt}"
    if fmt == "parquet":
        response = FileResponse(
            open(data, "rb"), as_attachment=True, filename=name, content_type=MEDIA_TYPES[fmt]
        )
        return response
    response = StreamingHttpResponse(_csv_chunks(data), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _csv_chunks(data) -> Iterator[bytes]:
    """The Parquet file's rows as CSV, a batch at a time, after a UTF-8 byte order mark."""
    yield "\ufeff".encode()
    parquet_file = pq.ParquetFile(data)
    first = True
    for batch in parquet_file.iter_batches(batch_size=CSV_BATCH_ROWS):
        buffer = io.BytesIO()
        pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=first))
        first = False
        yield buffer.getvalue()
    if first:  # no rows: still a header
        buffer = io.BytesIO()
        pacsv.write_csv(parquet_file.schema_arrow.empty_table(), buffer)
        yield buffer.getvalue()


def _url_for(request: HttpRequest):
    def url_for(name: str, **kwargs) -> str:
        if "resource_id" in kwargs:
            kwargs["resource_id"] = str(kwargs["resource_id"])
        return request.build_absolute_uri(reverse(name, kwargs=kwargs or None))

    return url_for


def _jsonld(document: dict) -> HttpResponse:
    return HttpResponse(json.dumps(document, ensure_ascii=False, indent=2), content_type=JSONLD)


@require_GET
def dataset_jsonld(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _open_dataset(slug)
    return _jsonld(dataset_document(dataset, opendata.published(dataset), _url_for(request)))


@require_GET
def catalog_jsonld(request: HttpRequest) -> HttpResponse:
    releases: dict[int, list[OpenRelease]] = {}
    for release in opendata.published():
        releases.setdefault(release.dataset_id, []).append(release)
    datasets = [(d, releases.get(d.pk, [])) for d in opendata.open_datasets()]
    return _jsonld(catalog_document(datasets, _url_for(request), title=_("City open data portal")))
