"""Deadlines in working days, reminders and escalation, and the "three rates".

A working day is a weekday that is not a public holiday, or a weekend day the State Council
declared worked (调休). The calendar is the ``Holiday`` table, seeded with China's public
holidays; a city edits it in the admin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from civicpulse.cases.models import Case, Holiday

DEFAULT_CALENDAR = Path(__file__).with_name("holidays_cn.json")
REMIND_BEFORE = timedelta(hours=24)
RESPONSE_WITHIN = timedelta(hours=24)  # a case must be accepted within this to count as answered


@dataclass(frozen=True)
class Calendar:
    days_off: frozenset[date]
    workdays: frozenset[date]

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.days_off

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The moment ``days`` working days after ``start``: the same local time of day on the
        days-th working day after the start day. A request received on a day off starts
        counting at the beginning of the next working day, so it gets whole working days."""
        local = timezone.localtime(start)
        if not self.is_working_day(local.date()):
            day = local.date()
            while not self.is_working_day(day):
                day += timedelta(days=1)
            local = local.replace(
                year=day.year,
                month=day.month,
                day=day.day,
                hour=0,
                minute=0,
                second=0,
                microsecond=0,
            )
        day, left = local.date(), days
        while left > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return local.replace(year=day.year, month=day.month, day=day.day)

    def working_days_between(self, start: date, end: date) -> int:
        return sum(
            1
            for i in range(1, (end - start).days + 1)
            if self.is_working_day(start + timedelta(days=i))
        )


def seed_default_holidays() -> int:
    """Load China's public holidays into the calendar (idempotent)."""
    data = json.loads(DEFAULT_CALENDAR.read_text(encoding="utf-8"))
    rows = [Holiday(date=date.fromisoformat(d), name=n) for d, n in data["days_off"].items()]
    rows += [
        Holiday(date=date.fromisoformat(d), name=n, is_workday=True)
        for d, n in data["weekend_workdays"].items()
    ]
    existing = set(Holiday.objects.values_list("date", flat=True))
    new = [h for h in rows if h.date not in existing]
    Holiday.objects.bulk_create(new)
    return len(new)


def calendar() -> Calendar:
    rows = list(Holiday.objects.values_list("date", "is_workday"))
    return Calendar(
        days_off=frozenset(d for d, worked in rows if not worked),
        workdays=frozenset(d for d, worked in rows if worked),
    )


def due_at(created: datetime, working_days: int, cal: Calendar | None = None) -> datetime:
    return (cal or calendar()).add_working_days(created, working_days)


def rates(cases: QuerySet) -> dict:
    """The three rates of a set of cases, each with the count it is a share of:

    - response: accepted within ``RESPONSE_WITHIN`` of arrival, of all cases;
    - resolution: resolved by the deadline, of the cases whose deadline has come or which are
      resolved;
    - satisfaction: rated 4 or 5, of the rated cases.
    """
    now = timezone.now()
    figures = cases.aggregate(
        total=Count("id"),
        responded=Count("id", filter=Q(accepted_at__lte=F("created_at") + RESPONSE_WITHIN)),
        due=Count("id", filter=Q(due_at__lte=now) | Q(resolved_at__isnull=False)),
        resolved_in_time=Count("id", filter=Q(resolved_at__lte=F("due_at"))),
        rated=Count("id", filter=Q(satisfaction__isnull=False)),
        satisfied=Count("id", filter=Q(satisfaction__gte=4)),
    )

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    return {
        "total": figures["total"],
        "response_rate": share(figures["responded"], figures["total"]),
        "resolution_rate": share(figures["resolved_in_time"], figures["due"]),
        "satisfaction_rate": share(figures["satisfied"], figures["rated"]),
        "rated": figures["rated"],
    }


def sweep(now: datetime | None = None) -> dict:
    """Remind the departments of cases about to fall due, escalate the overdue ones.

    Each case is reminded once and escalated once (the timestamps make a re-run a no-op); the
    steps go into the case history and one audit entry records the sweep.
    """
    from civicpulse.cases.models import CaseEvent
    from civicpulse.core import audit

    now = now or timezone.now()
    open_cases = Case.objects.filter(status__in=Case.OPEN_STATUSES, due_at__isnull=False)
    remind = list(
        open_cases.filter(
            reminded_at__isnull=True, due_at__gt=now, due_at__lte=now + REMIND_BEFORE
        ).values_list("id", "status")
    )
    escalate = list(
        open_cases.filter(escalated_at__isnull=True, due_at__lte=now).values_list("id", "status")
    )
    events = [
        CaseEvent(
            case_id=pk,
            at=now,
            actor="sla",
            action="reminded",
            from_status=status,
            to_status=status,
            note="due within 24 hours",
        )
        for pk, status in remind
    ] + [
        CaseEvent(
            case_id=pk,
            at=now,
            actor="sla",
            action="escalated",
            from_status=status,
            to_status=status,
            note="past its deadline",
        )
        for pk, status in escalate
    ]
    with transaction.atomic():
        CaseEvent.objects.bulk_create(events, batch_size=2000)
        Case.objects.filter(pk__in=[pk for pk, _ in remind], reminded_at__isnull=True).update(
            reminded_at=now
        )
        Case.objects.filter(pk__in=[pk for pk, _ in escalate], escalated_at__isnull=True).update(
            escalated_at=now
        )
    result = {"reminded": len(remind), "escalated": len(escalate)}
    if remind or escalate:
        audit.record(
            "sla", "cases.sla_sweep", object_type="cases.case", object_id="*", detail=result
        )
    return result
