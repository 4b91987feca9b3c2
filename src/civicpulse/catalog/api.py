"""The data hub's read API, for staff signed in to the platform (their browser session):

    GET /api/v1/catalog/datasets/{slug}/rows?limit=100&offset=0&columns=a,b&<column>=<value>

answers ``{"columns": [...], "rows": [[...], ...], "total": n, "next": url-or-null}`` with the
rows the caller's department may see: only granted columns, masked as the grant says, filtered by
equality on the other query parameters (each names a column). The rules are those of
:mod:`catalog.sharing`, the same as the rows page; every answer is counted and audited there.

    401  not signed in
    403  no active grant, or a column (asked for or filtered on) beyond it: ``detail`` says which
    400  a bad limit (1..1000) or offset, or a dataset with no data
    404  no such dataset

The parameters are read from the query string as they come, not declared to django-ninja,
because any column of a dataset may be a filter; a bad number is then our clear 400, not a 422.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router
from ninja.errors import HttpError
from ninja.security import django_auth

from civicpulse.catalog import sharing
from civicpulse.catalog.models import Dataset, DatasetRead

router = Router(tags=["catalog"])

PAGING = ("limit", "offset", "columns")
DEFAULT_LIMIT = 100


def _whole(request: HttpRequest, name: str, default: int) -> int:
    text = request.GET.get(name, "")
    if text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise HttpError(400, f"{name} must be a whole number, not {text!r}") from None


@router.get("/datasets/{slug}/rows", auth=django_auth, summary="Rows of a dataset you may read")
def rows(request: HttpRequest, slug: str) -> dict:
    dataset = Dataset.objects.select_related("owner", "current_version").filter(slug=slug).first()
    if dataset is None:
        raise HttpError(404, f"no dataset {slug!r} in the catalog")
    limit = _whole(request, "limit", DEFAULT_LIMIT)
    offset = _whole(request, "offset", 0)
    columns = [c.strip() for c in request.GET.get("columns", "").split(",") if c.strip()]
    filters = {k: request.GET[k] for k in request.GET if k not in PAGING}
    try:
        page = sharing.read(
            dataset,
            user=request.user,
            columns=columns or None,
            filters=filters,
            limit=limit,
            offset=offset,
            channel=DatasetRead.Channel.API,
        )
    except sharing.AccessRefused as exc:
        raise HttpError(403, str(exc)) from None
    except sharing.SharingError as exc:
        raise HttpError(400, str(exc)) from None
    following = None
    if page.next_offset is not None:
        query = request.GET.copy()
        query["offset"] = str(page.next_offset)
        query["limit"] = str(limit)
        following = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return {
        "columns": page.columns,
        "rows": page.rows,
        "total": page.total,
        "next": following,
        "masked": page.masked,
    }
