"""Deadlines in working days over weekends, public holidays and make-up workdays; reminders,
escalation and the three rates."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from civicpulse.cases import sla, workflow
from civicpulse.cases.models import Case, Holiday, Service
from civicpulse.cases.services import Intake
from civicpulse.core.models import Area

pytestmark = pytest.mark.django_db
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def cal(db):
    sla.seed_default_holidays()
    return sla.calendar()


def test_weekends_are_skipped(cal):
    friday = datetime(2026, 3, 13, 10, 0, tzinfo=SH)
    assert cal.add_working_days(friday, 1) == datetime(2026, 3, 16, 10, 0, tzinfo=SH)
    assert cal.add_working_days(friday, 5) == datetime(2026, 3, 20, 10, 0, tzinfo=SH)


def test_spring_festival_and_make_up_workdays(cal):
    # 2026: 15-23 Feb off; Sat 14 Feb and Sat 28 Feb are worked
    assert cal.is_working_day(date(2026, 2, 14))
    assert not cal.is_working_day(date(2026, 2, 16))
    assert cal.is_working_day(date(2026, 2, 28))
    before = datetime(2026, 2, 13, 9, 0, tzinfo=SH)  # Friday before the holiday
    assert cal.add_working_days(before, 1) == datetime(2026, 2, 14, 9, 0, tzinfo=SH)
    assert cal.add_working_days(before, 2) == datetime(2026, 2, 24, 9, 0, tzinfo=SH)
    # received on a holiday: counting starts at the beginning of the next working day (8 Oct),
    # so one working day later is the start of 9 Oct
    on_holiday = datetime(2026, 10, 3, 15, 0, tzinfo=SH)
    assert cal.add_working_days(on_holiday, 1) == datetime(2026, 10, 9, 0, 0, tzinfo=SH)
    on_sunday = datetime(2026, 3, 15, 22, 0, tzinfo=SH)
    assert cal.add_working_days(on_sunday, 2) == datetime(2026, 3, 18, 0, 0, tzinfo=SH)


def test_the_calendar_is_configurable(cal):
    day = date(2026, 3, 18)  # a Wednesday
    assert cal.is_working_day(day)
    Holiday.objects.create(date=day, name="城市纪念日")
    assert not sla.calendar().is_working_day(day)
    assert sla.seed_default_holidays() == 0  # seeding again adds nothing


def test_sweep_reminds_then_escalates_once(demo_city):
    service = Service.objects.get(code="noise")
    grid = Area.objects.filter(level="grid").first()
    case = workflow.take_in(
        Intake(channel="web", description="夜间施工噪音扰民", service=service, area=grid)
    )
    assert case.due_at
    almost = case.due_at - timedelta(hours=2)
    assert sla.sweep(now=almost)["reminded"] >= 1
    assert case.pk not in Case.objects.filter(reminded_at__isnull=True).values_list("pk", flat=True)
    sla.sweep(now=almost + timedelta(minutes=1))
    assert case.events.filter(action="reminded").count() == 1
    late = case.due_at + timedelta(hours=1)
    sla.sweep(now=late)
    case.refresh_from_db()
    assert case.reminded_at == almost and case.escalated_at == late
    assert [e.action for e in case.events.all()] == ["created", "reminded", "escalated"]
    sla.sweep(now=late + timedelta(hours=1))
    assert case.events.filter(action="escalated").count() == 1


def test_three_rates_per_department_and_area(demo_city):
    service = Service.objects.get(code="garbage")
    grid = Area.objects.filter(level="grid").last()
    now = timezone.now()
    cases = [
        workflow.take_in(
            Intake(
                channel="hotline",
                description=f"垃圾未清运{i}",
                service=service,
                area=grid,
                created_at=now - timedelta(days=30),
            )
        )
        for i in range(4)
    ]
    fast, late, never, _open = cases
    Case.objects.filter(pk=fast.pk).update(
        accepted_at=fast.created_at + timedelta(hours=1),
        resolved_at=fast.created_at + timedelta(days=1),
        status="resolved",
        satisfaction=5,
    )
    Case.objects.filter(pk=late.pk).update(
        accepted_at=late.created_at + timedelta(hours=30),
        resolved_at=late.due_at + timedelta(days=3),
        status="resolved",
        satisfaction=2,
    )
    Case.objects.filter(pk=never.pk).update(accepted_at=never.created_at + timedelta(hours=2))
    figures = sla.rates(Case.objects.filter(pk__in=[c.pk for c in cases]))
    assert figures["total"] == 4
    assert figures["response_rate"] == 0.5  # fast and never were accepted within 24 h
    assert figures["resolution_rate"] == 0.25  # 1 of 4 due, in time
    assert figures["satisfaction_rate"] == 0.5
    by_department = sla.rates(Case.objects.filter(department=service.department))
    assert by_department["total"] >= 4
