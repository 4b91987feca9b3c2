"""Sharing between departments: ask for a dataset, decide, read it through the hub.

    share_request = request_access(dataset, user=u, columns=[...], purpose="...",
                                   starts_on=date(...), ends_on=date(...))
    grant = approve(share_request, user=owner_staff, columns=[...narrowed...])
    deny(share_request, user=owner_staff, note="...")
    revoke(grant, user=owner_staff, reason="...")
    page = read(dataset, user=u, columns=[...], filters={"col": "value"}, limit=100, offset=0)
    usage(dataset)                    reads per department per month

The rules, decided here once so that the pages, the API and the CLI cannot disagree:

Who
    * A request is made by a member of staff (department staff or a data admin) *for their own
      department*; a user with no department in their profile cannot ask.
    * A department never needs a grant for its own datasets: it reads them directly, unmasked
      (the data is its own), and a request for one is refused as pointless.
    * Only staff of the owner department, or a data admin (数据局, who runs the hub), decide a
      request or revoke a grant. Nobody approves a request they made or one made by their own
      department: a data admin may also ask for their department, and would otherwise grant
      themselves.
    * A data admin *decides* but does not *read* by office: reading needs a department that owns
      the dataset or holds a grant, like everyone else (least privilege; superusers included).
    * 不予共享 (``not_shared``) datasets cannot be requested at all: a clear refusal, audited.
      Marking a dataset not shared also ends sharing already under way: a pending request can
      no longer be approved, and earlier grants are not honoured for reading (they stay
      stored, so marking it shareable again restores them; revoke them to end them for good).
    * 无条件共享 (``unconditional``) requests are approved automatically when submitted: the
      request, the grant and the automatic decision are all stored and audited, and masking by
      grade still applies. The request still names its columns, purpose and period, so the
      owner sees who reads what and for how long, and can revoke.

What a request names
    * columns of the *current* version (unknown names are refused, listed);
    * a purpose, required, at most ``MAX_PURPOSE`` characters;
    * a period ``starts_on`` ≤ ``ends_on``, at most ``MAX_DAYS`` days long, not already over.
    * A department has at most one pending request per dataset (a second one is refused).

Deciding
    * Approval may narrow the columns (never widen them) and makes a :class:`ShareGrant` from
      the start of ``starts_on`` to the end of ``ends_on`` in the city's time zone; a request
      whose period is over by the time it is decided cannot be approved.
    * Deny and revoke need a note (the requester is owed a reason).
    * Masking per granted column: resident ID and mobile numbers (direct identifiers, tagged by
      classification in ``DatasetColumn.personal_tags``) are shown only through
      ``identity.services.mask`` whatever the grade; for a dataset graded core (核心) or
      important (重要) every other personal column is masked too (names, addresses, credit
      codes); for a general (一般) dataset those are shown as stored. The masking is stored on
      the grant when it is approved *and* worked out again at each read from the dataset's
      present grade and tags: the stricter of the two applies, so re-grading masks at once.
    * Filtering on a masked column is refused: an equality filter on a masked ID number would
      let a reader confirm whether a given person is in the data.

Reading (:func:`read`)
    * A grant counts only while it is active: not revoked, and ``starts_at`` ≤ now <
      ``expires_at``. Expiry is checked against the clock at every read and never relies on a
      job having run. A refusal says which state the department's latest grant is in (expired,
      revoked, not yet begun), so the reader knows whether to wait or ask again.
    * Only granted columns are read; asking for another column is refused with the column names
      and audited as a refused read; so is a read with no active grant.
    * DuckDB reads the current version's Parquet; columns are quoted identifiers, filter values
      and paging are bound parameters; at most ``MAX_LIMIT`` rows a page, and an offset of at
      most ``MAX_OFFSET`` (DuckDB's OFFSET is a signed 64-bit number: a larger one would fail
      inside the query instead of as a clear refusal).
    * Rows are read by department staff (and data admins) of a department that owns the dataset
      or holds a grant; other roles are refused (audited) whatever their department.
    * Every read that returns rows writes a :class:`DatasetRead` (rows, columns, channel) and an
      audit entry; the owner's own reads are counted too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import duckdb
from django.db import transaction
from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from civicpulse.catalog.models import (
    Dataset,
    DatasetRead,
    DatasetVersion,
    ShareGrant,
    ShareRequest,
)
from civicpulse.core import audit, scoping
from civicpulse.core.models import Department, Role
from civicpulse.identity import services as identity
from civicpulse.lake.sql import quote_identifier

__all__ = [
    "MAX_DAYS",
    "MAX_LIMIT",
    "MAX_NOTE",
    "MAX_PURPOSE",
    "AccessRefused",
    "Page",
    "SharingError",
    "active_grant",
    "approve",
    "can_decide",
    "deny",
    "department_of",
    "masking_for",
    "read",
    "request_access",
    "revoke",
    "usage",
]

MAX_PURPOSE = 2000
MAX_NOTE = 2000
MAX_DAYS = 366
MAX_LIMIT = 1000
MAX_OFFSET = 2**62
MASKED_GRADES = {Dataset.Grade.CORE, Dataset.Grade.IMPORTANT}
ALWAYS_MASKED = ("resident_id", "mobile")  # direct identifiers: masked for every grade
REQUESTER_ROLES = {Role.DEPARTMENT_STAFF, Role.DATA_ADMIN}


class SharingError(Exception):
    """A sharing step cannot be done as asked (bad input, wrong state); the message says why."""


class AccessRefused(SharingError):
    """The user may not do this (no grant, a column beyond the grant, not the owner)."""


# --- who ---------------------------------------------------------------------------------------


def department_of(user) -> Department | None:
    profile = scoping.profile_of(user)
    return profile.department if profile else None


def is_data_admin(user) -> bool:
    if getattr(user, "is_superuser", False):
        return True
    profile = scoping.profile_of(user)
    return bool(profile and profile.role == Role.DATA_ADMIN)


def can_decide(user, dataset: Dataset) -> bool:
    """Staff of the owner department, or a data admin."""
    if is_data_admin(user):
        return True
    profile = scoping.profile_of(user)
    return bool(
        profile and profile.role in REQUESTER_ROLES and profile.department_id == dataset.owner_id
    )


def _requesting_department(user) -> Department:
    profile = scoping.profile_of(user)
    if profile is None or profile.role not in REQUESTER_ROLES:
        raise AccessRefused("only department staff can request a dataset for their department")
    if profile.department is None:
        raise AccessRefused("your profile names no department to request the dataset for")
    return profile.department


def _require_decider(user, dataset: Dataset) -> None:
    if not can_decide(user, dataset):
        raise AccessRefused(
            f"only staff of {dataset.owner.code} (the owner) or a data admin decide on "
            f"{dataset.slug!r}"
        )


# --- requesting and deciding ---------------------------------------------------------------------


def _current_columns(dataset: Dataset) -> list[str]:
    if dataset.current_version_id is None:
        raise SharingError(f"dataset {dataset.slug!r} has no data yet: nothing to share")
    return list(dataset.current_version.columns.order_by("position").values_list("name", flat=True))


def _clean_columns(wanted: Iterable[str], known: Sequence[str], what: str) -> list[str]:
    """``wanted`` in the dataset's order, duplicates dropped; unknown names refused."""
    wanted = [c for c in dict.fromkeys(wanted or []) if c]
    if not wanted:
        raise SharingError(f"name at least one column {what}")
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise SharingError(
            f"no column {', '.join(repr(c) for c in unknown)} in the current version "
            f"(it has: {', '.join(known)})"
        )
    return [c for c in known if c in wanted]


def _clean_text(text: str, what: str, limit: int) -> str:
    text = (text or "").strip()
    if not text:
        raise SharingError(f"{what} is required")
    if len(text) > limit:
        raise SharingError(f"{what} is {len(text)} characters long; at most {limit} are allowed")
    return text


def _start_of(day: dt.date) -> dt.datetime:
    """Midnight at the start of ``day`` in the city's time zone."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _city_today() -> dt.date:
    return timezone.localdate()


def request_access(
    dataset: Dataset,
    *,
    user,
    columns: Iterable[str],
    purpose: str,
    starts_on: dt.date,
    ends_on: dt.date,
) -> ShareRequest:
    """Ask, for the user's department, to read ``columns`` of ``dataset`` for a period.

    Refusals raise :class:`SharingError` (bad input) or :class:`AccessRefused` (not allowed),
    and nothing is stored except the audit entry of a refused request for a not-shared dataset.
    """
    department = _requesting_department(user)
    if dataset.owner_id == department.pk:
        raise SharingError(
            f"{dataset.slug!r} belongs to your department: read it directly, no request needed"
        )
    if dataset.share_type == Dataset.ShareType.NOT_SHARED:
        audit.record(
            user,
            "catalog.share_request_refused",
            dataset,
            detail={"department": department.code, "reason": "not_shared"},
        )
        raise AccessRefused(
            f"{dataset.slug!r} is not shared (不予共享): its owner does not share it with "
            "other departments"
        )
    chosen = _clean_columns(columns, _current_columns(dataset), "to request")
    purpose = _clean_text(purpose, "a purpose", MAX_PURPOSE)
    if not isinstance(starts_on, dt.date) or not isinstance(ends_on, dt.date):
        raise SharingError("the period needs a start date and an end date")
    if starts_on > ends_on:
        raise SharingError(f"the period starts ({starts_on}) after it ends ({ends_on})")
    days = (ends_on - starts_on).days + 1
    if days > MAX_DAYS:
        raise SharingError(f"the period is {days} days long; at most {MAX_DAYS} are allowed")
    if ends_on < _city_today():
        raise SharingError(f"the period ended on {ends_on}: ask for a period still to come")
    with transaction.atomic():
        if ShareRequest.objects.filter(
            dataset=dataset, department=department, status=ShareRequest.Status.PENDING
        ).exists():
            raise SharingError(
                f"{department.code} already has a request for {dataset.slug!r} waiting for "
                "the owner"
            )
        share_request = ShareRequest.objects.create(
            dataset=dataset,
            department=department,
            requested_by=user,
            purpose=purpose,
            columns=chosen,
            starts_on=starts_on,
            ends_on=ends_on,
        )
        audit.record(
            user,
            "catalog.share_requested",
            share_request,
            detail={
                "dataset": dataset.slug,
                "department": department.code,
                "columns": chosen,
                "starts_on": starts_on,
                "ends_on": ends_on,
            },
        )
        if dataset.share_type == Dataset.ShareType.UNCONDITIONAL:
            _grant(share_request, decider=None, columns=chosen, note="shared unconditionally")
    return share_request


def masking_for(dataset: Dataset, columns: Iterable[str], version=None) -> dict[str, str]:
    """How each of ``columns`` is masked: ``{column: kind}``. Direct identifiers of a person
    (resident ID and mobile numbers) are masked whatever the grade, since a grade is a person's
    decision and may be wrong or not made yet (new datasets start as general); the other
    personal columns (names, addresses, credit codes) are masked for core/important datasets."""
    version = version or dataset.current_version
    if version is None:
        return {}
    wanted = set(columns)
    by_grade = dataset.grade in MASKED_GRADES
    masking = {}
    for name, tags in version.columns.values_list("name", "personal_tags"):
        if name not in wanted or not tags:
            continue
        direct = [t for t in tags if t in ALWAYS_MASKED]
        if direct:
            masking[name] = direct[0]
        elif by_grade:
            masking[name] = tags[0]
    return masking


def _grant(share_request: ShareRequest, *, decider, columns: list[str], note: str) -> ShareGrant:
    dataset = share_request.dataset
    now = timezone.now()
    grant = ShareGrant.objects.create(
        request=share_request,
        dataset=dataset,
        department=share_request.department,
        columns=columns,
        masking=masking_for(dataset, columns),
        starts_at=_start_of(share_request.starts_on),
        expires_at=_start_of(share_request.ends_on + dt.timedelta(days=1)),
    )
    share_request.status = ShareRequest.Status.APPROVED
    share_request.decided_by = decider
    share_request.decided_at = now
    share_request.decision_note = note
    share_request.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit.record(
        decider,
        "catalog.share_approved",
        grant,
        detail={
            "request": share_request.pk,
            "dataset": dataset.slug,
            "department": share_request.department.code,
            "columns": columns,
            "masked": grant.masking,
            "expires_at": grant.expires_at,
            "automatic": decider is None,
        },
    )
    return grant


def _pending(share_request: ShareRequest) -> None:
    if share_request.status != ShareRequest.Status.PENDING:
        raise SharingError(
            f"request {share_request.pk} is already {share_request.get_status_display()}"
        )


def approve(
    share_request: ShareRequest, *, user, columns: Iterable[str] | None = None, note: str = ""
) -> ShareGrant:
    """Grant the request, for ``columns`` (default: all requested; never more)."""
    _require_decider(user, share_request.dataset)
    with transaction.atomic():
        share_request = ShareRequest.objects.select_for_update().get(pk=share_request.pk)
        _pending(share_request)
        decider_department = department_of(user)
        if share_request.requested_by_id == getattr(user, "pk", None) or (
            decider_department is not None and decider_department.pk == share_request.department_id
        ):
            raise AccessRefused(
                f"request {share_request.pk} was made by you or your department: someone "
                "outside the requesting department approves it"
            )
        if share_request.dataset.share_type == Dataset.ShareType.NOT_SHARED:
            raise AccessRefused(
                f"{share_request.dataset.slug!r} is now not shared (不予共享): deny the request"
            )
        chosen = share_request.columns if columns is None else list(columns)
        chosen = _clean_columns(chosen, share_request.columns, "to grant from the request")
        if share_request.ends_on < _city_today():
            raise SharingError(
                f"the requested period ended on {share_request.ends_on}: deny it, the "
                "department can ask again"
            )
        note = (note or "").strip()[:MAX_NOTE]
        return _grant(share_request, decider=user, columns=chosen, note=note)


def deny(share_request: ShareRequest, *, user, note: str) -> ShareRequest:
    _require_decider(user, share_request.dataset)
    note = _clean_text(note, "a note saying why", MAX_NOTE)
    with transaction.atomic():
        share_request = ShareRequest.objects.select_for_update().get(pk=share_request.pk)
        _pending(share_request)
        share_request.status = ShareRequest.Status.DENIED
        share_request.decided_by = user
        share_request.decided_at = timezone.now()
        share_request.decision_note = note
        share_request.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
        audit.record(
            user,
            "catalog.share_denied",
            share_request,
            detail={
                "dataset": share_request.dataset.slug,
                "department": share_request.department.code,
                "note": note,
            },
        )
    return share_request


def revoke(grant: ShareGrant, *, user, reason: str) -> ShareGrant:
    _require_decider(user, grant.dataset)
    reason = _clean_text(reason, "a reason for revoking", MAX_NOTE)
    with transaction.atomic():
        grant = ShareGrant.objects.select_for_update().get(pk=grant.pk)
        if grant.revoked_at is not None:
            raise SharingError(f"grant {grant.pk} was already revoked on {grant.revoked_at}")
        grant.revoked_at = timezone.now()
        grant.revoked_by = user
        grant.revoke_reason = reason
        grant.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        audit.record(
            user,
            "catalog.share_revoked",
            grant,
            detail={
                "dataset": grant.dataset.slug,
                "department": grant.department.code,
                "reason": reason,
            },
        )
    return grant


# --- reading ---------------------------------------------------------------------------------


def active_grant(dataset: Dataset, department: Department | None, at=None) -> ShareGrant | None:
    """The department's grant for the dataset that holds at ``at`` (default now), if any; with
    several, the one lasting longest."""
    if department is None:
        return None
    at = at or timezone.now()
    return (
        ShareGrant.objects.filter(
            dataset=dataset,
            department=department,
            revoked_at__isnull=True,
            starts_at__lte=at,
            expires_at__gt=at,
        )
        .order_by("-expires_at")
        .first()
    )


@dataclass
class Page:
    """One page of rows as a reader is allowed to see them."""

    columns: list[str]
    rows: list[list]
    total: int
    offset: int
    limit: int
    masked: dict[str, str] = field(default_factory=dict)
    grant: ShareGrant | None = None

    @property
    def next_offset(self) -> int | None:
        following = self.offset + len(self.rows)
        return following if following < self.total else None


def _refuse(user, dataset: Dataset, department, reason: str, **detail) -> AccessRefused:
    audit.record(
        user,
        "catalog.share_read_refused",
        dataset,
        detail={"department": getattr(department, "code", None), "reason": reason, **detail},
    )
    return AccessRefused(reason)


def _no_grant(dataset: Dataset, department: Department | None) -> str:
    """Why the department cannot read: its latest grant's state, or that it has none."""
    held = f"your department holds no active grant to read {dataset.slug!r}"
    latest = (
        ShareGrant.objects.filter(dataset=dataset, department=department)
        .order_by("-expires_at")
        .first()
        if department is not None
        else None
    )
    if latest is None:
        return f"{held} (none was given): request it"
    if latest.revoked_at is not None:
        state = f"was revoked on {timezone.localtime(latest.revoked_at):%Y-%m-%d}"
    elif latest.expires_at <= timezone.now():
        state = f"expired on {timezone.localtime(latest.expires_at):%Y-%m-%d %H:%M}"
    else:
        state = f"has not begun: it starts on {timezone.localtime(latest.starts_at):%Y-%m-%d}"
    return f"{held}: its grant {state}; request it again if need be"


def _plain(value):
    """A value as JSON and templates show it."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def read(
    dataset: Dataset,
    *,
    user,
    columns: Sequence[str] | None = None,
    filters: Mapping[str, str] | None = None,
    limit: int = 100,
    offset: int = 0,
    channel: str = DatasetRead.Channel.PAGE,
) -> Page:
    """A page of the current version's rows, as the user's department may see them.

    Raises :class:`AccessRefused` (audited) without a grant or beyond it, :class:`SharingError`
    for bad paging or a dataset with no data."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise SharingError(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise SharingError(f"offset must be a whole number from 0 to {MAX_OFFSET}, not {offset!r}")
    if channel not in DatasetRead.Channel.values:
        raise SharingError(f"unknown channel {channel!r}")
    version: DatasetVersion | None = dataset.current_version
    if version is None:
        raise SharingError(f"dataset {dataset.slug!r} has no data yet")
    present = list(version.columns.order_by("position").values_list("name", flat=True))
    profile = scoping.profile_of(user)
    department = profile.department if profile else None
    filters = dict(filters or {})
    if profile is None or profile.role not in REQUESTER_ROLES:
        raise _refuse(
            user, dataset, department, "rows are read through the hub by department staff only"
        )

    grant = None
    if department is not None and department.pk == dataset.owner_id:
        allowed, masking = present, {}
    else:
        if dataset.share_type == Dataset.ShareType.NOT_SHARED:
            raise _refuse(
                user,
                dataset,
                department,
                f"{dataset.slug!r} is not shared (不予共享): its owner no longer shares it, "
                "earlier grants included",
            )
        grant = active_grant(dataset, department)
        if grant is None:
            raise _refuse(user, dataset, department, _no_grant(dataset, department))
        allowed = [c for c in present if c in grant.columns]
        masking = {**grant.masking, **masking_for(dataset, allowed, version)}
        masking = {c: k for c, k in masking.items() if c in allowed}

    wanted = list(dict.fromkeys(columns)) if columns else list(allowed)
    beyond = [c for c in [*wanted, *filters] if c not in allowed]
    if beyond:
        beyond = list(dict.fromkeys(beyond))
        raise _refuse(
            user,
            dataset,
            department,
            f"beyond your grant: {', '.join(repr(c) for c in beyond)} "
            f"(granted: {', '.join(allowed) or 'nothing'})",
            columns=beyond,
        )
    masked_filters = [c for c in filters if c in masking]
    if masked_filters:
        raise _refuse(
            user,
            dataset,
            department,
            f"cannot filter on masked column(s) {', '.join(repr(c) for c in masked_filters)}",
            columns=masked_filters,
        )
    if not wanted:
        raise SharingError("no column to read")

    where, params = "", []
    if filters:
        where = " WHERE " + " AND ".join(
            f"CAST({quote_identifier(c)} AS VARCHAR) = ?" for c in filters
        )
        params = [str(v) for v in filters.values()]
    source = "read_parquet(?)"
    select = ", ".join(quote_identifier(c) for c in wanted)
    con = duckdb.connect()
    try:
        total = con.execute(
            f"SELECT count(*) FROM {source}{where}", [version.data_glob(), *params]
        ).fetchone()[0]
        fetched = con.execute(
            f"SELECT {select} FROM {source}{where} LIMIT ? OFFSET ?",
            [version.data_glob(), *params, limit, offset],
        ).fetchall()
    finally:
        con.close()

    kinds = [masking.get(c) for c in wanted]
    rows = [
        [
            _plain(v) if kind is None or v is None else identity.mask(kind, str(v))
            for v, kind in zip(row, kinds, strict=True)
        ]
        for row in fetched
    ]
    shown_masking = {c: masking[c] for c in wanted if c in masking}
    with transaction.atomic():
        read_row = DatasetRead.objects.create(
            dataset=dataset,
            version=version,
            grant=grant,
            user=user if getattr(user, "pk", None) else None,
            department=department,
            channel=channel,
            rows=len(rows),
            columns=wanted,
        )
        audit.record(
            user,
            "catalog.share_read",
            dataset,
            detail={
                "read": read_row.pk,
                "version": version.number,
                "department": getattr(department, "code", None),
                "grant": getattr(grant, "pk", None),
                "channel": channel,
                "columns": wanted,
                "filtered_on": sorted(filters),
                "masked": shown_masking,
                "rows": len(rows),
                "offset": offset,
            },
        )
    return Page(
        columns=wanted,
        rows=rows,
        total=total,
        offset=offset,
        limit=limit,
        masked=shown_masking,
        grant=grant,
    )


# --- usage -----------------------------------------------------------------------------------


def usage(dataset: Dataset) -> list[dict]:
    """Reads of ``dataset`` per department per month (newest month first): how many reads,
    how many rows they returned, and when the last one was."""
    return list(
        DatasetRead.objects.filter(dataset=dataset)
        .annotate(month=TruncMonth("at"))
        .values("department__code", "month")
        .annotate(reads=Count("id"), rows=Sum("rows"), last_read=Max("at"))
        .order_by("-month", "department__code")
    )
