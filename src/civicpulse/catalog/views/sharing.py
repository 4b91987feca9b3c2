"""The sharing pages: ask for a dataset, decide requests, hold and revoke grants, read rows.

    sharing/request/<slug>/            a department asks for a dataset (columns, purpose, period)
    sharing/inbox/                     requests waiting for the owner: approve (narrow) or deny
    sharing/grants/                    my department's requests and grants; grants we gave
    sharing/datasets/<slug>/rows/      rows of a dataset we may read, paginated, masked
    sharing/datasets/<slug>/usage/     who read a dataset, per month (owner and data admins)

Every rule lives in :mod:`catalog.sharing`; these views only gather the form, call it and show
its refusal. A refusal is shown on the page as it was said, with status 400 (bad input) or 403
(not allowed); nothing is stored by a refused step.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from civicpulse.catalog import sharing
from civicpulse.catalog.models import Dataset, DatasetRead, ShareGrant, ShareRequest
from civicpulse.core import audit

PAGE_ROWS = 50


def _dataset(slug: str) -> Dataset:
    return get_object_or_404(Dataset.objects.select_related("owner", "current_version"), slug=slug)


def _status(exc: sharing.SharingError) -> int:
    return 403 if isinstance(exc, sharing.AccessRefused) else 400


def _date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat((text or "").strip())
    except ValueError:
        return None


def _decidable(user):
    """Requests the user may decide: every dataset for a data admin, else their department's."""
    requests = ShareRequest.objects.select_related("dataset", "department", "requested_by")
    if sharing.is_data_admin(user):
        return requests
    department = sharing.department_of(user)
    if department is None:
        return requests.none()
    return requests.filter(dataset__owner=department)


@login_required
@require_http_methods(["GET", "POST"])
def request_dataset(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _dataset(slug)
    columns = []
    if dataset.current_version_id:
        columns = list(dataset.current_version.columns.order_by("position"))
    form = {
        "columns": request.POST.getlist("columns"),
        "purpose": request.POST.get("purpose", ""),
        "starts_on": request.POST.get("starts_on", ""),
        "ends_on": request.POST.get("ends_on", ""),
    }
    error, status = "", 200
    if request.method == "POST":
        starts_on, ends_on = _date(form["starts_on"]), _date(form["ends_on"])
        try:
            if starts_on is None or ends_on is None:
                raise sharing.SharingError(_("Give the period as two dates (YYYY-MM-DD)."))
            made = sharing.request_access(
                dataset,
                user=request.user,
                columns=form["columns"],
                purpose=form["purpose"],
                starts_on=starts_on,
                ends_on=ends_on,
            )
        except sharing.SharingError as exc:
            error, status = str(exc), _status(exc)
        else:
            if made.status == ShareRequest.Status.APPROVED:
                messages.success(
                    request, _("The dataset is shared unconditionally: your grant is active.")
                )
            else:
                messages.success(request, _("Your request was sent to the owner department."))
            return redirect("catalog:sharing-grants")
    return render(
        request,
        "catalog/sharing_request.html",
        {
            "dataset": dataset,
            "columns": columns,
            "form": form,
            "error": error,
            "not_shared": dataset.share_type == Dataset.ShareType.NOT_SHARED,
            "max_days": sharing.MAX_DAYS,
            "max_purpose": sharing.MAX_PURPOSE,
        },
        status=status,
    )


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    pending = _decidable(request.user).filter(status=ShareRequest.Status.PENDING)
    decided = _decidable(request.user).exclude(status=ShareRequest.Status.PENDING)[:50]
    return render(
        request,
        "catalog/sharing_inbox.html",
        {"pending": pending.order_by("created_at"), "decided": decided},
    )


def _decide(request: HttpRequest, pk: int, step) -> HttpResponse:
    share_request = get_object_or_404(
        ShareRequest.objects.select_related("dataset__owner", "department"), pk=pk
    )
    try:
        step(share_request)
    except sharing.SharingError as exc:
        if isinstance(exc, sharing.AccessRefused):
            raise PermissionDenied(str(exc)) from None
        messages.error(request, str(exc))
    return redirect("catalog:sharing-inbox")


@login_required
@require_POST
def approve(request: HttpRequest, pk: int) -> HttpResponse:
    def step(share_request):
        sharing.approve(
            share_request,
            user=request.user,
            columns=request.POST.getlist("columns"),
            note=request.POST.get("note", ""),
        )
        messages.success(request, _("Approved: the department can read the granted columns."))

    return _decide(request, pk, step)


@login_required
@require_POST
def deny(request: HttpRequest, pk: int) -> HttpResponse:
    def step(share_request):
        sharing.deny(share_request, user=request.user, note=request.POST.get("note", ""))
        messages.success(request, _("Denied; the department sees your note."))

    return _decide(request, pk, step)


@login_required
@require_GET
def grants(request: HttpRequest) -> HttpResponse:
    department = sharing.department_of(request.user)
    held = ShareGrant.objects.none()
    mine = ShareRequest.objects.none()
    if department is not None:
        held = ShareGrant.objects.filter(department=department).select_related("dataset")
        mine = ShareRequest.objects.filter(department=department).select_related("dataset")[:50]
    if sharing.is_data_admin(request.user):
        given = ShareGrant.objects.all()
    elif department is not None:
        given = ShareGrant.objects.filter(dataset__owner=department)
    else:
        given = ShareGrant.objects.none()
    given = given.select_related("dataset", "department", "request")[:200]
    return render(
        request,
        "catalog/sharing_grants.html",
        {"held": held, "mine": mine, "given": given},
    )


@login_required
@require_POST
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    grant = get_object_or_404(ShareGrant.objects.select_related("dataset__owner"), pk=pk)
    try:
        sharing.revoke(grant, user=request.user, reason=request.POST.get("reason", ""))
    except sharing.AccessRefused as exc:
        raise PermissionDenied(str(exc)) from None
    except sharing.SharingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Revoked: the department can no longer read the dataset."))
    return redirect("catalog:sharing-grants")


@login_required
@require_GET
def rows(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _dataset(slug)
    try:
        number = max(int(request.GET.get("page", "1")), 1)
    except ValueError:
        number = 1
    columns = request.GET.getlist("columns") or None
    page, error, status = None, "", 200
    try:
        page = sharing.read(
            dataset,
            user=request.user,
            columns=columns,
            limit=PAGE_ROWS,
            offset=(number - 1) * PAGE_ROWS,
            channel=DatasetRead.Channel.PAGE,
        )
    except sharing.SharingError as exc:
        error, status = str(exc), _status(exc)
    pages = None
    if page is not None:
        pages = {
            "number": number,
            "count": max((page.total + PAGE_ROWS - 1) // PAGE_ROWS, 1),
            "previous": number - 1 if number > 1 else None,
            "next": number + 1 if page.next_offset is not None else None,
            "first_row": page.offset + 1 if page.rows else 0,
            "last_row": page.offset + len(page.rows),
        }
    return render(
        request,
        "catalog/sharing_rows.html",
        {"dataset": dataset, "page": page, "pages": pages, "error": error},
        status=status,
    )


@login_required
@require_GET
def usage(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _dataset(slug)
    if not sharing.can_decide(request.user, dataset):
        raise PermissionDenied(
            _("Usage of a dataset is shown to its owner department and to data admins.")
        )
    table = sharing.usage(dataset)
    audit.record(request.user, "catalog.share_usage_viewed", dataset)
    return render(request, "catalog/sharing_usage.html", {"dataset": dataset, "usage": table})
