"""What other apps may ask of the one window: taking in and moving cases, deadlines, rates,
duplicates and feedback (re-exported from the modules that hold them), and the lake export."""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

import pyarrow as pa
from django.conf import settings
from django.db.models import Avg, Count, Q, QuerySet

from civicpulse.cases.duplicates import Suggestion, merge, suggest  # noqa: F401
from civicpulse.cases.feedback import rate  # noqa: F401
from civicpulse.cases.models import Case
from civicpulse.cases.sla import calendar, due_at, rates, seed_default_holidays  # noqa: F401
from civicpulse.cases.workflow import (  # noqa: F401
    CaseError,
    Intake,
    clean_attributes,
    locate,
    send_back,
    step,
    take_in,
    transfer,
)
from civicpulse.core import scoping
from civicpulse.core.models import Area, Role

LAKE_TABLE = "cases"
_LEVELS = ("city", "district", "street", "community", "grid")

CASE_SCHEMA = pa.schema(
    [
        ("tracking_no", pa.string()),
        ("channel", pa.string()),
        ("service_code", pa.string()),
        ("department_code", pa.string()),
        ("status", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("closed_at", pa.timestamp("us", tz="UTC")),
        ("satisfaction", pa.int16()),
        ("district_code", pa.string()),
        ("street_code", pa.string()),
        ("community_code", pa.string()),
        ("grid_code", pa.string()),
        ("month", pa.string()),
    ]
)


def cases_in(area: Area) -> QuerySet:
    return Case.objects.filter(area__path__startswith=area.path)


def live_figures(area: Area) -> dict:
    """Figures read straight from the store, so the cockpit's headline is never stale."""
    open_q = Q(status__in=Case.OPEN_STATUSES)
    figures = cases_in(area).aggregate(
        total=Count("id"),
        open=Count("id", filter=open_q),
        satisfaction=Avg("satisfaction"),
    )
    figures["satisfaction"] = round(figures["satisfaction"] or 0, 2)
    return figures


def _codes(path: str) -> list[str | None]:
    codes = path.strip("/").split("/")
    return (codes + [None] * len(_LEVELS))[: len(_LEVELS)]


def export_to_lake(progress: Callable[[float], None] | None = None, batch: int = 50_000) -> dict:
    """Copy every case's facts into the lake table ``cases``, partitioned by local month.

    The whole table is written as a new version and switched atomically, so the cockpit's
    analytics read either the previous export or this one, never half of each.
    """
    tz = ZoneInfo(settings.TIME_ZONE)
    total = Case.objects.count()
    columns = {name: [] for name in CASE_SCHEMA.names}
    rows = Case.objects.order_by("id").values_list(
        "tracking_no",
        "channel",
        "service__code",
        "department__code",
        "status",
        "created_at",
        "closed_at",
        "satisfaction",
        "area__path",
    )
    for done, row in enumerate(rows.iterator(chunk_size=batch), start=1):
        (tracking_no, channel, service, department, status, created, closed, rating, path) = row
        _city, district, street, community, grid = _codes(path)
        for name, value in zip(
            CASE_SCHEMA.names,
            (
                tracking_no,
                channel,
                service,
                department,
                status,
                created,
                closed,
                rating,
                district,
                street,
                community,
                grid,
                created.astimezone(tz).strftime("%Y-%m"),
            ),
            strict=True,
        ):
            columns[name].append(value)
        if progress and done % batch == 0:
            progress(done / max(total, 1))
    table = pa.table(columns, schema=CASE_SCHEMA)
    from civicpulse.core import analytics

    analytics.registry().write(
        LAKE_TABLE,
        table,
        description="Citizen requests, one row per case, by local month",
        partition_by=["month"],
    )
    return {"rows": table.num_rows}


def service_names() -> dict[str, str]:
    """Service code -> its name in the reader's language."""
    from civicpulse.cases.models import Service

    return {s.code: s.name for s in Service.objects.all()}


def recent_cases(since, until, *, open_only: bool = False, limit: int = 50_000) -> list[dict]:
    """Cases received in [since, until) as plain records, for the opinion desk to read beside
    posts (hot issues, links between an event and open requests). No reporter data leaves."""
    cases = Case.objects.filter(created_at__gte=since, created_at__lt=until)
    if open_only:
        cases = cases.filter(status__in=Case.OPEN_STATUSES)
    rows = cases.order_by("-created_at").values_list(
        "tracking_no", "title", "description", "service__code", "area__path", "status",
        "created_at",
    )[:limit]
    return [
        {
            "tracking_no": no,
            "text": f"{title} {description}",
            "service": service,
            "district_code": _codes(path)[1] or "",
            "open": status in Case.OPEN_STATUSES,
            "created_at": created,
        }
        for no, title, description, service, path, status, created in rows
    ]


def daily_counts(service_code: str, since, until) -> dict[tuple[str, str], int]:
    """Cases of one service per (district code, local day ISO date) in [since, until): the
    series burst detection reads."""
    tz = ZoneInfo(settings.TIME_ZONE)
    counts: dict[tuple[str, str], int] = {}
    rows = Case.objects.filter(
        service__code=service_code, created_at__gte=since, created_at__lt=until
    ).values_list("area__path", "created_at")
    for path, created in rows.iterator(chunk_size=20_000):
        key = (_codes(path)[1] or "", created.astimezone(tz).date().isoformat())
        counts[key] = counts.get(key, 0) + 1
    return counts


def visible_cases(user) -> QuerySet:
    """The cases a member of staff may see: their areas, and their department's if they work
    for one department."""
    cases = scoping.scope(Case.objects.all(), user)
    profile = scoping.profile_of(user)
    if profile and profile.role == Role.DEPARTMENT_STAFF and profile.department_id:
        cases = cases.filter(department_id=profile.department_id)
    return cases


def cases_for_reporters(reporter_ids, *, viewer=None) -> list[dict]:
    """The cases these reporters raised, newest first, as plain records for "my space" and the
    master index's 360° view: what a person may read about their own requests, no one else's
    contact details. Given a ``viewer`` (a member of staff), only the cases that viewer may
    see in the one window (``visible_cases``); without one, all of them, for their owner."""
    cases = Case.objects.all() if viewer is None else visible_cases(viewer)
    cases = (
        cases.filter(reporters__id__in=list(reporter_ids))
        .select_related("service", "department")
        .distinct()
        .order_by("-created_at")
    )
    return [
        {
            "tracking_no": c.tracking_no,
            "title": c.title,
            "service": c.service.name,
            "department": c.department.name,
            "department_code": c.department.code,
            "status": c.status,
            "status_label": c.get_status_display(),
            "open": c.is_open,
            "created_at": c.created_at,
            "closed_at": c.closed_at,
            "due_at": c.due_at,
            "token": c.token,
        }
        for c in cases
    ]


def notifications_for_reporters(reporter_ids) -> list[dict]:
    """The notices owed or sent to these reporters, newest first."""
    from civicpulse.cases.models import Notification

    notices = (
        Notification.objects.filter(reporter_id__in=list(reporter_ids))
        .select_related("case")
        .order_by("-created_at", "-id")
    )
    return [
        {
            "tracking_no": n.case.tracking_no,
            "kind": n.kind,
            "body": n.body,
            "created_at": n.created_at,
            "sent_at": n.sent_at,
        }
        for n in notices
    ]


def reporter_rows(batch: int = 5_000):
    """Everyone who reported a case, with their name, phone and the time of their first case:
    the hotline's callers as a roll the master index can link to residents. Reporters known
    only by a device or an e-mail, or with no case, are left out."""
    from django.db.models import Min

    from civicpulse.cases.models import Reporter

    reporters = (
        Reporter.objects.exclude(name="", phone="")
        .annotate(first_case_at=Min("cases__created_at"))
        .filter(first_case_at__isnull=False)
        .order_by("pk")
        .values_list("pk", "name", "phone", "first_case_at")
    )
    for pk, name, phone, first in reporters.iterator(chunk_size=batch):
        yield {"reporter_id": pk, "name": name, "phone": phone, "first_case_at": first}
