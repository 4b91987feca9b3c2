"""Bursts per rule, per district and per hot issue on the demo city's posts: each daily series is
what a brute-force count of the lake says, the running day is judged by the share of a day's
posts that has come in, and the crisis district bursts while the quiet weeks before do not."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest
from django.utils import timezone

from civicpulse.core.models import Area
from civicpulse.opinion import issues, watch
from civicpulse.opinion.models import Issue, Rule, Warning
from civicpulse.signals import burst
from tests.opinion.test_watch import _crisis

pytestmark = pytest.mark.django_db


def _all_posts(now: datetime, days: int) -> pd.DataFrame:
    return watch.frame(now - timedelta(days=days), now)


def test_day_elapsed_is_the_share_of_a_usual_days_posts(demo_city):
    _district, start, _end = _crisis()
    now = start - timedelta(days=10) + timedelta(hours=13, minutes=30)
    midnight = now.replace(hour=0, minute=30) - timedelta(minutes=30)
    seen = _all_posts(midnight, watch.PROFILE_DAYS)
    local = seen["created_at"].dt.tz_convert(timezone.get_current_timezone())
    seconds = local.dt.hour * 3600 + local.dt.minute * 60 + local.dt.second
    expected = float((seconds < 13.5 * 3600).mean())
    assert len(seen) >= watch.PROFILE_MIN_POSTS
    assert watch.day_elapsed(now) == pytest.approx(expected)
    # posts come by day: at 13:30 more than the clock's 56 % of a day has not come in yet
    # or has; either way it is read off the posts, not the clock
    assert abs(expected - 13.5 / 24) > 0.01
    assert watch.day_elapsed(midnight) == watch.MIN_ELAPSED
    assert watch.day_elapsed(midnight + timedelta(hours=23, minutes=59)) <= 1.0


def test_rule_and_area_tables_count_what_the_lake_holds(demo_city):
    _district, start, _end = _crisis()
    now = start + timedelta(days=1, hours=20)
    rule = Rule.objects.get(concern__name="供水水质")
    first = timezone.localtime(now - timedelta(days=watch.HISTORY_DAYS))
    seen = watch.frame(first.replace(hour=0, minute=0, second=0, microsecond=0), now)
    day = seen["created_at"].dt.tz_convert(timezone.get_current_timezone()).dt.strftime("%Y-%m-%d")

    table = watch.rule_table(now)
    mine = seen["rules"].str.contains(f"|{rule.pk}|", regex=False)
    expected = day[mine].value_counts()
    got = table[rule.pk]
    assert got.sum() == mine.sum() > 0
    for d, n in expected.items():
        assert got[pd.Timestamp(d)] == n
    assert watch.rule_series(rule.pk, now).equals(got)
    assert (watch.rule_series(10**9, now) == 0).all()  # a rule without posts: zeros, no error

    areas = watch.area_table(now)
    placed = seen[seen["district_code"] != ""]
    by_area = placed.groupby([day[placed.index], placed["district_code"]]).size()
    assert areas.to_numpy().sum() == len(placed)
    for (d, code), n in by_area.items():
        assert areas.loc[pd.Timestamp(d), code] == n


def test_the_crisis_district_bursts_and_the_weeks_before_do_not(demo_city):
    district, start, _end = _crisis()
    # the crisis's second evening (on its first, 37 posts against some ten expected are not yet
    # z >= 5 once the day-to-day noise is counted; the rule's warning was up by then)
    peak = start + timedelta(days=1, hours=20)
    table = watch.area_table(peak)
    verdicts = burst.assess_group(table, key="area", elapsed=watch.day_elapsed(peak))
    found = verdicts[district]
    assert found is not None and found.score >= 5 and found.key == f"area:{district}"
    assert [k for k, v in verdicts.items() if v is not None] == [district]

    for weeks in (2, 3, 4):
        quiet = start - timedelta(weeks=weeks) + timedelta(hours=20)
        table = watch.area_table(quiet)
        verdicts = burst.assess_group(table, key="area", elapsed=watch.day_elapsed(quiet))
        assert all(v is None for v in verdicts.values()), (quiet, verdicts)


def test_an_area_burst_is_one_warning_unless_a_rule_already_covers_it(demo_city):
    district, start, _end = _crisis()
    peak = start + timedelta(days=1, hours=20)
    area = Area.objects.get(code=district)
    Warning.objects.filter(status=Warning.Status.ACTIVE, area=area).update(
        status=Warning.Status.CLOSED, closed_at=peak
    )
    covering = Warning.objects.create(
        event_key="rule:covering-test", title="covering", area=area, level=3, peak_level=3,
        opened_at=peak, updated_at=peak,
    )
    assert watch.watch_areas(peak) == {"areas": 0}
    assert not Warning.objects.filter(event_key=f"area:{district}").exists()

    covering.status, covering.closed_at = Warning.Status.CLOSED, peak
    covering.save()
    assert watch.watch_areas(peak) == {"areas": 1}
    warning = Warning.objects.get(event_key=f"area:{district}", status=Warning.Status.ACTIVE)
    assert warning.area == area and warning.category == "area"
    assert warning.indicators["burst_score"] >= 3
    assert warning.evidence.exists()
    # the next cycle assesses the same warning again: still one event, one warning
    watch.watch_areas(peak + timedelta(minutes=1))
    assert Warning.objects.filter(event_key=f"area:{district}").count() == 1


def test_a_hot_issue_gets_a_burst_score_from_its_own_days(demo_city):
    _district, start, _end = _crisis()
    for hours in (12, 36):
        issues.refresh(now=start + timedelta(hours=hours))
    now = start + timedelta(hours=36)
    table = issues.issue_table(now)
    # the crisis's issue: of the issues about water, the one with the most posts (an issue of
    # requests alone has no posts in the lake, hence no series: other tests may have made one)
    about_water = Issue.objects.filter(last_seen=now, label__contains="水")
    with_posts = [i for i in about_water if i.pk in table.columns]
    assert with_posts, [i.label for i in about_water]
    water = max(with_posts, key=lambda i: (i.posts, i.heat))
    assert table[water.pk].sum() > 0
    assert water.burst_score == pytest.approx(
        burst.assess_latest(
            table[water.pk], key="x", elapsed=watch.day_elapsed(now)
        ).score
    )
    assert water.burst_score >= 3
    warning = Warning.objects.filter(issue=water).order_by("-updated_at").first()
    if warning is not None:
        assert warning.indicators["burst_score"] == pytest.approx(water.burst_score)


def test_the_service_watch_warns_of_the_abnormal_heating_winter_only(demo_city):
    from civicpulse.demo.generator import DemoCity
    from tests.conftest import DEMO_END, DEMO_SEED

    district, start, _end = DemoCity(seed=DEMO_SEED, size="small", end=DEMO_END).abnormal_winter
    tz = timezone.get_current_timezone()

    def at(day) -> datetime:
        return datetime.combine(day, datetime.min.time(), tz) + timedelta(hours=9)

    heating = Warning.objects.filter(event_key__startswith="service:heating:")
    # the winter before: the usual rise everywhere, no warning
    for days in (7, 14, 21):
        watch.watch_services(at(start - timedelta(days=365 - days)), services=["heating"])
    assert not heating.exists()

    raised_on = None
    for days in range(0, 15):
        watch.watch_services(at(start + timedelta(days=days)), services=["heating"])
        if heating.exists():
            raised_on = days
            break
    assert raised_on is not None, "the abnormal winter was not warned of in its first two weeks"
    warning = heating.get()
    assert warning.event_key == f"service:heating:{district}"
    assert warning.area.code == district and warning.indicators["burst_score"] > 0


def test_an_issue_series_at_a_moment_ignores_assignments_made_after_it(demo_city):
    """A replay of the past must not see how later runs regrouped the posts."""
    _district, start, _end = _crisis()
    issues.refresh(now=start + timedelta(hours=30))
    at = start + timedelta(hours=30)
    before = issues.issue_table(at)
    issues.refresh(now=start + timedelta(hours=60))  # regroups the same posts later
    assert issues.issue_table(at).equals(before)
