"""The opinion desk's staff pages: who may read them, what department staff see, the map's
colours, a warning's evidence (escaped: post text is hostile input), the audit trail, and the
trend's figures against a direct count over the lake."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pyarrow.dataset as ds
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from civicpulse.core import accounts
from civicpulse.core.models import Area, AuditEntry, Department, Role
from civicpulse.lake import parquet
from civicpulse.opinion.models import (
    LEVEL_COLOURS,
    Evidence,
    Issue,
    PlanStep,
    PlanTask,
    PlanTemplate,
    Release,
    ResponsePlan,
    Warning,
    WarningChange,
)
from civicpulse.opinion.views import watch
from tests.conftest import DEMO_END

pytestmark = pytest.mark.django_db

PAGES = ("/opinion/", "/opinion/trend/", "/opinion/warnings/")
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def _user(name: str):
    return get_user_model().objects.get(username=name)


@pytest.fixture
def districts(demo_city) -> list[Area]:
    found = list(Area.objects.filter(level=Area.Level.DISTRICT).order_by("code"))
    assert len(found) >= 2, "the demo city needs two districts for these tests"
    return found


@pytest.fixture
def quiet(demo_city):
    """No warning the demo left active: the tests set the state they check."""
    now = timezone.now()
    Warning.objects.filter(status=Warning.Status.ACTIVE).update(
        status=Warning.Status.CLOSED, closed_at=now
    )


def _warning(area: Area | None, level: int, title: str = "供水异常", **fields) -> Warning:
    now = timezone.now()
    values = dict(
        event_key=f"test:{uuid.uuid4().hex}",
        title=title,
        category="water",
        area=area,
        level=level,
        peak_level=level,
        indicators={"volume": 240.0, "growth": 3.5, "negative_share": 0.62, "reach": 125000.0},
        reasons=[],
        opened_at=now - timedelta(hours=6),
        updated_at=now,
    )
    values.update(fields)
    return Warning.objects.create(**values)


def _street_of(district: Area) -> Area:
    return Area.objects.filter(parent=district).order_by("code").first()


# --- access --------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["leader", "admin", "pr", "analyst", "auditor", "district"])
def test_every_page_opens_for_the_desk_roles(client, districts, username):
    warning = _warning(_street_of(districts[0]), 2)
    client.force_login(_user(username))
    for url in (*PAGES, f"/opinion/warnings/{warning.pk}/"):
        response = client.get(url)
        assert response.status_code == 200, (username, url)
        assert 'href="/opinion/trend/"' in response.content.decode()


@pytest.mark.parametrize("username", ["operator", "grid"])
def test_hotline_operators_and_grid_workers_are_refused(client, districts, username):
    warning = _warning(districts[0], 3)
    client.force_login(_user(username))
    for url in (*PAGES, f"/opinion/warnings/{warning.pk}/"):
        assert client.get(url).status_code == 403, url


def test_a_visitor_is_sent_to_sign_in(client, demo_city):
    response = client.get("/opinion/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_department_staff_see_only_warnings_within_their_areas(client, districts, quiet):
    mine = _warning(_street_of(districts[0]), 3, title="本区水质")
    other = _warning(districts[1], 1, title="邻区水质")
    city_wide = _warning(None, 2, title="全市供水")
    staff = _user("district")  # the demo's department staff, given the first district
    client.force_login(staff)
    page = client.get("/opinion/warnings/").content.decode()
    assert f'data-warning="{mine.pk}"' in page
    assert f'data-warning="{other.pk}"' not in page
    assert f'data-warning="{city_wide.pk}"' not in page
    assert client.get(f"/opinion/warnings/{mine.pk}/").status_code == 200
    assert client.get(f"/opinion/warnings/{other.pk}/").status_code == 404
    assert client.get(f"/opinion/warnings/{city_wide.pk}/").status_code == 404
    # the KPIs count what they may see: one yellow warning
    kpis = client.get("/opinion/").context["kpis"]
    assert {k["level"]: k["count"] for k in kpis["levels"]} == {1: 0, 2: 0, 3: 1, 4: 0}

    client.force_login(_user("leader"))
    page = client.get("/opinion/warnings/").content.decode()
    for warning in (mine, other, city_wide):
        assert f'data-warning="{warning.pk}"' in page
    assert client.get(f"/opinion/warnings/{city_wide.pk}/").status_code == 200


def test_department_staff_without_department_or_areas_see_no_warning(client, districts, quiet):
    warning = _warning(districts[0], 2)
    nobody = accounts.create_staff("no-scope", "pw-123456", Role.DEPARTMENT_STAFF)
    client.force_login(nobody)
    page = client.get("/opinion/warnings/").content.decode()
    assert f'data-warning="{warning.pk}"' not in page
    assert client.get(f"/opinion/warnings/{warning.pk}/").status_code == 404


def test_live_issues_are_scoped_like_warnings(client, districts):
    now = timezone.now()
    issues = {
        d.code: Issue.objects.create(
            signature=f"test-{d.code}",
            label=f"议题 {d.code}",
            first_seen=now,
            last_seen=now,
            posts=50,
            heat=1e9,
            areas=[d.code],
            area=d,
        )
        for d in districts[:2]
    }
    client.force_login(_user("district"))
    shown = {i.pk for i in client.get("/opinion/").context["issues"]}
    assert issues[districts[0].code].pk in shown
    assert issues[districts[1].code].pk not in shown
    client.force_login(_user("analyst"))
    shown = {i.pk for i in client.get("/opinion/").context["issues"]}
    assert {i.pk for i in issues.values()} <= shown


# --- the pages' content ----------------------------------------------------------------------


def test_map_colours_each_district_by_its_most_severe_active_warning(client, districts, quiet):
    first, second = districts[0], districts[1]
    _warning(first, 3)
    _warning(_street_of(first), 1)  # a red one further down the tree wins
    _warning(second, 4)
    _warning(second, 1, status=Warning.Status.CLOSED, closed_at=timezone.now())  # closed: ignored
    client.force_login(_user("leader"))
    chart = client.get("/opinion/warnings/").context["chart"]
    shown = {d["code"]: d for d in chart["districts"]}
    assert shown[first.code]["level"] == 1 and shown[first.code]["colour"] == LEVEL_COLOURS[1]
    assert shown[first.code]["warnings"] == 2
    assert shown[second.code]["level"] == 4 and shown[second.code]["colour"] == LEVEL_COLOURS[4]
    for other in districts[2:]:
        assert shown[other.code]["level"] is None
        assert shown[other.code]["colour"] == watch.NO_WARNING_COLOUR
    assert set(shown) == {d.code for d in districts}
    assert all(d["polygon"] for d in chart["districts"])  # the demo's districts have boundaries


def test_map_list_narrows_to_a_district(client, districts, quiet):
    inside = _warning(_street_of(districts[0]), 2)
    outside = _warning(districts[1], 2)
    client.force_login(_user("leader"))
    page = client.get("/opinion/warnings/", {"area": districts[0].code}).content.decode()
    assert f'data-warning="{inside.pk}"' in page and f'data-warning="{outside.pk}"' not in page
    assert client.get("/opinion/warnings/", {"area": "12ab"}).status_code == 404
    assert client.get("/opinion/warnings/", {"area": "999999"}).status_code == 404


def test_evidence_page_shows_reasons_history_posts_and_plans(client, districts):
    now = timezone.now()
    warning = _warning(
        districts[0],
        2,
        reasons=[
            {
                "indicator": "volume",
                "value": 240.0,
                "threshold": 200.0,
                "level": 2,
                "met": True,
                "text": "volume 240 reached the level II threshold 200",
            },
            {
                "indicator": "negative_share",
                "value": 0.62,
                "threshold": 0.7,
                "level": 1,
                "met": False,
                "text": "negative share below the level I threshold",
            },
            {"text": "a reason written by an older version, with no other key"},
        ],
    )
    WarningChange.objects.create(
        warning=warning,
        at=now - timedelta(hours=6),
        from_level=None,
        to_level=3,
        indicators={"volume": 80.0, "growth": 2.0},
    )
    WarningChange.objects.create(
        warning=warning,
        at=now - timedelta(hours=3),
        from_level=3,
        to_level=3,
        indicators={"volume": 150.0, "growth": 2.6},
    )
    WarningChange.objects.create(
        warning=warning,
        at=now - timedelta(hours=1),
        from_level=3,
        to_level=2,
        indicators={"volume": 240.0, "growth": 3.5},
    )
    author = "ab12cd34ef56" + "0" * 20
    Evidence.objects.create(
        warning=warning,
        post_key="weibo:1",
        source="weibo",
        text="自来水发黄有异味",
        url="https://example.org/p/1",
        author_hash=author,
        reach=5400,
        sentiment=-0.8,
        created_at=now - timedelta(hours=2),
    )
    water = Department.objects.order_by("code").first()
    template = PlanTemplate.objects.create(name="供水应急预案", category="water", level=3)
    PlanStep.objects.create(template=template, title="核查水质", department=water, due_hours=2)
    plan = ResponsePlan.objects.create(
        warning=warning, template=template, started_at=now - timedelta(hours=5), level=3
    )
    late = PlanTask.objects.create(
        plan=plan, title="核查水质并公布", department=water, due_at=now - timedelta(hours=1)
    )
    PlanTask.objects.create(
        plan=plan, title="排查管网", department=water, due_at=now + timedelta(hours=5)
    )

    client.force_login(_user("leader"))
    response = client.get(f"/opinion/warnings/{warning.pk}/")
    page = response.content.decode()
    rows = {r["key"]: r for r in response.context["indicators"]}
    assert rows["volume"]["value"] == "240" and rows["growth"]["value"] == "×3.5"
    assert rows["negative_share"]["value"] == "62%"
    assert [r["met"] for r in rows["volume"]["reasons"]] == [True]
    assert rows["negative_share"]["reasons"][0]["met"] is False
    assert rows[""]["reasons"][0]["text"].startswith("a reason written by an older version")
    assert "volume 240 reached the level II threshold 200" in page

    chart = response.context["chart"]
    assert chart["levels"] == [3, 3, 2]
    volume = next(s for s in chart["series"] if s["key"] == "volume")
    assert volume["values"] == [80.0, 150.0, 240.0]
    assert [s["to_level"] for s in response.context["steps"]] == [3, 2]  # changes of level only

    assert "#ab12cd" in page and author not in page  # "author #…" or "作者 #…"
    assert 'href="https://example.org/p/1"' in page
    assert "核查水质并公布" in page and "排查管网" in page
    overdue = [t.pk for p in response.context["plans"] for t in p.tasks.all() if t.overdue]
    assert overdue == [late.pk]


def test_hostile_post_text_and_titles_are_escaped(client, districts):
    warning = _warning(
        districts[0],
        1,
        title="水 " + HOSTILE,
        reasons=[
            {
                "indicator": "volume",
                "value": 1.0,
                "threshold": 1.0,
                "level": 1,
                "met": True,
                "text": HOSTILE,
            }
        ],
    )
    Evidence.objects.create(
        warning=warning,
        post_key="forum:x",
        source="forum",
        text=HOSTILE + "</script>",
        url="javascript:alert(1)",
        author_hash="",
        reach=1,
        sentiment=-1.0,
        created_at=timezone.now(),
    )
    WarningChange.objects.create(
        warning=warning, at=timezone.now(), to_level=1, indicators={HOSTILE: 1.0}
    )
    now = timezone.now()
    Issue.objects.create(
        signature="hostile",
        label=HOSTILE,
        first_seen=now,
        last_seen=now,
        heat=1e12,
        areas=[districts[0].code],
        area=districts[0],
    )
    client.force_login(_user("leader"))
    for url in ("/opinion/", "/opinion/warnings/", f"/opinion/warnings/{warning.pk}/"):
        page = client.get(url).content.decode()
        assert "<script>alert" not in page and "<img src=x" not in page, url
        assert "&lt;script&gt;alert" in page or "\\u003Cscript\\u003E" in page, url
    page = client.get(f"/opinion/warnings/{warning.pk}/").content.decode()
    assert "javascript:" not in page
    data = page.split('id="opinion-warning-data" type="application/json">')[1].split("</script>")[0]
    assert json.loads(data)["series"][-1]["name"] == HOSTILE  # intact once parsed, inert as HTML


def test_releases_about_a_warning_follow_the_releases_desk_rules(client, districts):
    warning = _warning(districts[0], 3)
    leader = _user("leader")
    published = Release.objects.create(
        series=uuid.uuid4(),
        warning=warning,
        title="关于供水情况的通报",
        body="……",
        status=Release.Status.PUBLISHED,
        author=leader,
        published_at=timezone.now(),
    )
    draft = Release.objects.create(
        series=uuid.uuid4(), warning=warning, title="草稿：水质说明", body="……", author=leader
    )
    client.force_login(leader)
    page = client.get(f"/opinion/warnings/{warning.pk}/").content.decode()
    assert f'href="/opinion/releases/{published.pk}/"' in page
    assert f'href="/opinion/releases/{draft.pk}/"' in page
    client.force_login(_user("district"))  # the releases desk is not theirs: the public page
    page = client.get(f"/opinion/warnings/{warning.pk}/").content.decode()
    assert f'href="/releases/{published.series}/"' in page
    assert draft.title not in page


def test_every_page_is_audited(client, districts):
    warning = _warning(districts[0], 2)
    client.force_login(_user("analyst"))
    for url in (*PAGES, f"/opinion/warnings/{warning.pk}/"):
        assert client.get(url).status_code == 200
    entries = AuditEntry.objects.filter(actor="analyst", action__startswith="opinion.")
    assert {e.action for e in entries} >= {
        "opinion.issues",
        "opinion.trend",
        "opinion.map",
        "opinion.warning",
    }
    viewed = entries.get(action="opinion.warning")
    assert viewed.object_type == "opinion.warning" and viewed.object_id == str(warning.pk)


# --- figures against the lake ------------------------------------------------------------------


def _lake_posts():
    """Every post in the lake, read with pyarrow (not the desk's DuckDB), in local days."""
    from civicpulse.text.sentiment import NEGATIVE

    root = parquet.current_path(settings.CONFIG.lake_dir, "posts")
    assert root is not None, "the demo stored no posts"
    frame = (
        ds.dataset(root, format="parquet", partitioning="hive")
        .to_table(columns=["created_at", "source", "sentiment", "duplicate_of", "areas"])
        .to_pandas()
    )
    local = frame["created_at"].dt.tz_convert(ZoneInfo(settings.TIME_ZONE))
    frame["local_day"] = local.dt.date.astype(str)
    frame["negative"] = frame["sentiment"] < NEGATIVE
    return frame


def _direct(frame, days: list[str]) -> tuple[list[int], list[int], list[int]]:
    grouped = frame[frame["local_day"].isin(days)].groupby("local_day")
    posts, negative = grouped.size(), grouped["negative"].sum()
    voices = grouped["duplicate_of"].apply(lambda s: int((s == "").sum()))
    return (
        [int(posts.get(d, 0)) for d in days],
        [int(voices.get(d, 0)) for d in days],
        [int(negative.get(d, 0)) for d in days],
    )


def test_trend_equals_a_direct_count_over_the_lake(client, demo_city):
    frame = _lake_posts()
    client.force_login(_user("leader"))
    response = client.get("/opinion/trend/", {"end": DEMO_END.isoformat(), "days": 90})
    assert response.status_code == 200
    figures = response.context["figures"]
    assert len(figures.days) == 90 and figures.days[-1] == DEMO_END.isoformat()
    posts, voices, negative = _direct(frame, figures.days)
    assert figures.posts == posts and figures.voices == voices and figures.negative == negative
    assert figures.total > 0 and sum(negative) > 0
    chart = response.context["chart"]
    assert chart["posts"] == posts
    shares = [
        None if p == 0 else round(100 * n / p, 1) for p, n in zip(posts, negative, strict=True)
    ]
    assert chart["negative_share"] == shares

    source = frame["source"].mode().iloc[0]
    response = client.get(
        "/opinion/trend/", {"end": DEMO_END.isoformat(), "days": 30, "source": source}
    )
    assert response.status_code == 200, response.content.decode()[-500:]
    figures = response.context["figures"]
    assert figures.posts == _direct(frame[frame["source"] == source], figures.days)[0]
    assert 0 < figures.total < sum(_direct(frame, figures.days)[0])


def test_department_staff_trend_counts_posts_within_their_areas(client, districts):
    frame = _lake_posts()
    district = districts[0]  # the demo's department staff serve the first district
    mine = frame[frame["areas"].str.contains(f"|{district.code}|", regex=False)]
    client.force_login(_user("district"))
    figures = client.get("/opinion/trend/", {"end": DEMO_END.isoformat()}).context["figures"]
    assert figures.posts == _direct(mine, figures.days)[0]
    assert 0 < figures.total < sum(_direct(frame, figures.days)[0])


def test_live_issues_count_the_posts_of_the_last_24_hours(client, demo_city):
    frame = _lake_posts()
    client.force_login(_user("leader"))
    before = timezone.now()
    kpis = client.get("/opinion/").context["kpis"]
    after = timezone.now()
    since = frame["created_at"] >= before - timedelta(hours=24)
    until = frame["created_at"] < after
    recent = frame[since & until]
    # no post of the demo lies within the moments between the two clocks
    assert kpis["posts"] == len(recent)
    if len(recent):
        assert kpis["negative_share"] == pytest.approx(recent["negative"].mean())
    # the same count over a window the demo surely filled: its last day
    tz = ZoneInfo(settings.TIME_ZONE)
    until = datetime.combine(DEMO_END, time(12), tz)
    since = until - timedelta(hours=24)
    expected = frame[(frame["created_at"] >= since) & (frame["created_at"] < until)]
    assert len(expected) > 0
    assert watch.recent_posts(since, until) == (len(expected), int(expected["negative"].sum()))


def test_the_trend_shows_the_last_90_days_by_default(client, demo_city):
    client.force_login(_user("leader"))
    response = client.get("/opinion/trend/")
    figures = response.context["figures"]
    assert len(figures.days) == 90 and figures.days[-1] == timezone.localdate().isoformat()
    assert '<option value="90" selected>' in response.content.decode()


@pytest.mark.parametrize(
    "query, field",
    [
        ({"days": "7"}, "days"),
        ({"source": "no-such-source"}, "source"),
        ({"end": "2999-01-01"}, "end"),
        ({"end": "yesterday"}, "end"),
    ],
)
def test_a_bad_trend_filter_names_the_field(client, demo_city, query, field):
    client.force_login(_user("leader"))
    response = client.get("/opinion/trend/", query)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert 'id="trend-errors"' in response.content.decode()
