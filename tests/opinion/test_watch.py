"""The watch over the demo city's water crisis: one event, one warning, with its history,
evidence and plans; and the hot issues of the crisis days."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from civicpulse.demo.generator import DemoCity
from civicpulse.opinion import issues
from civicpulse.opinion.models import Issue, ResponsePlan, Rule, Warning, WarningChange
from civicpulse.signals.warning import INDICATORS
from tests.conftest import DEMO_END, DEMO_SEED

pytestmark = pytest.mark.django_db


def _crisis() -> tuple[str, datetime, datetime]:
    district, start, end, _topic = DemoCity(seed=DEMO_SEED, size="small", end=DEMO_END).crisis
    tz = timezone.get_current_timezone()
    return (
        district,
        datetime.combine(start, datetime.min.time(), tz),
        datetime.combine(end + timedelta(days=1), datetime.min.time(), tz),
    )


def test_the_crisis_raised_one_warning_that_rose_and_calmed_down(demo_city):
    district, start, end = _crisis()
    rule = Rule.objects.get(concern__name="供水水质")
    warnings = Warning.objects.filter(event_key=f"rule:{rule.pk}")
    assert warnings.count() == 1  # one event, one warning, however many cycles saw it
    warning = warnings.get()
    assert start - timedelta(hours=2) <= warning.opened_at <= end
    assert warning.area.code == district
    assert warning.peak_level <= 3  # at least yellow
    assert warning.status == Warning.Status.CLOSED and warning.closed_at > warning.opened_at
    changes = list(WarningChange.objects.filter(warning=warning).order_by("at", "pk"))
    assert changes[0].from_level is None and changes[-1].to_level is None
    steps = [(c.from_level, c.to_level) for c in changes if c.from_level != c.to_level]
    for old, new in steps[1:]:  # downgrades go one level at a time
        if old is not None and new is not None and new > old:
            assert new - old == 1
    # every assessment explains every indicator
    named = {r["indicator"] for r in changes[0].reasons if r.get("indicator")}
    assert set(INDICATORS) <= named
    texts = list(warning.evidence.values_list("text", flat=True))
    assert texts and all(("水" in t) for t in texts)
    assert ResponsePlan.objects.filter(warning=warning).exists()


def test_hot_issues_of_the_crisis_day_name_the_water(demo_city):
    _district, start, end = _crisis()
    result = issues.refresh(now=start + timedelta(days=2))
    assert result["issues"] >= 1
    top = Issue.objects.filter(last_seen=start + timedelta(days=2)).order_by("-heat")[:3]
    assert any("水" in issue.label for issue in top)
    again = issues.refresh(now=start + timedelta(days=2, hours=1))
    assert again["issues"] >= 1
    # the same issues keep their numbers from one run to the next
    assert Issue.objects.filter(label__contains="水").count() <= 3
