"""Official releases: the workflow with the demo's staff, the four-eyes and level rules, the
correction as a new version, and the public pages and RSS feed that name no one."""

from __future__ import annotations

import feedparser
import pytest
from django.contrib.auth import get_user_model
from django.forms.models import model_to_dict
from django.utils import timezone, translation

from civicpulse.core import accounts, audit
from civicpulse.core.models import Area, AuditEntry, Role
from civicpulse.opinion import releases
from civicpulse.opinion.models import Release, Warning
from civicpulse.opinion.releases import ReleaseError

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """The workflow's refusals are checked by their English text; zh-Hans users read the same
    messages translated (the pages' tests see those)."""
    with translation.override("en"):
        yield
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PASSWORD = "pw-releases-123"
# distinctive names, so that a page leaking one is caught
NAMES = {
    "pr": "Wang Wuji",
    "analyst": "Zhou Zhiruo",
    "leader": "Zhao Min",
    "pr2": "Xie Xun",
}
HOSTILE_TITLE = '<script>alert("title")</script> & 通报'
HOSTILE_BODY = "第一段 <img src=x onerror=alert(1)>\n第二段 <b>粗</b>"


@pytest.fixture
def staff(demo_city, settings):
    settings.PASSWORD_HASHERS = FAST_HASHER  # accounts are made per test
    User = get_user_model()
    people = {
        name: User.objects.get(username=name)
        for name in ("pr", "analyst", "leader", "operator", "auditor", "admin", "district")
    }
    people["pr2"] = accounts.create_staff("release-pr2", PASSWORD, Role.PR_OFFICER)
    district = Area.objects.filter(level="district").order_by("code").first()
    people["pr_area"] = accounts.create_staff(
        "release-pr-area", PASSWORD, Role.PR_OFFICER, areas=[district]
    )
    people["leader2"] = accounts.create_staff("release-leader2", PASSWORD, Role.CITY_LEADER)
    for key, name in NAMES.items():
        people[key].first_name = name
        people[key].save(update_fields=["first_name"])
    return people


def _warning(level: int, peak: int | None = None) -> Warning:
    now = timezone.now()
    return Warning.objects.create(
        event_key=f"issue:release-test-{level}-{peak}",
        title=f"level {level} event",
        level=level,
        peak_level=peak or level,
        opened_at=now,
        updated_at=now,
    )


def _reviewed(staff, warning=None, author="pr", reviewer="analyst") -> Release:
    release = releases.draft(staff[author], "关于东河异味的情况通报", "经排查……", warning)
    releases.submit(release, staff[author])
    return releases.review(release, staff[reviewer], True, "")


def _published(staff, **kw) -> Release:
    release = _reviewed(staff, **kw)
    releases.approve(release, staff["leader"])
    return releases.publish(release, staff["pr"])


def _snapshot(release: Release) -> dict:
    return model_to_dict(Release.objects.get(pk=release.pk))


def _audit(release: Release) -> list[tuple[str, str]]:
    return list(
        AuditEntry.objects.filter(object_type="opinion.release", object_id=str(release.pk))
        .order_by("seq")
        .values_list("action", "actor")
    )


# --------------------------------------------------------------------------- workflow


def test_the_whole_workflow_records_actor_and_time_of_every_step(staff):
    release = releases.draft(staff["pr"], "  停水通知  ", "明日9时至17时\n东区停水")
    assert release.status == "draft" and release.version == 1 and release.title == "停水通知"
    release = releases.submit(release, staff["pr"])
    assert release.status == "in_review" and release.submitted_at is not None
    release = releases.review(release, staff["analyst"], True, "措辞可以")
    assert release.status == "in_review"
    assert release.reviewer == staff["analyst"] and release.reviewed_at is not None
    release = releases.approve(release, staff["pr2"])  # no warning: a city-wide PR officer
    assert release.status == "approved" and release.approver == staff["pr2"]
    assert release.approved_at is not None
    release = releases.publish(release, staff["pr"])
    assert release.status == "published" and release.published_at is not None
    assert release.publisher == staff["pr"]
    assert (
        release.created_at
        <= release.submitted_at
        <= release.reviewed_at
        <= release.approved_at
        <= release.published_at
    )
    assert _audit(release) == [
        ("release.drafted", "pr"),
        ("release.submitted", "pr"),
        ("release.reviewed", "analyst"),
        ("release.approved", "release-pr2"),
        ("release.published", "pr"),
    ]
    assert audit.verify()[1] is None


def test_wrong_roles_are_refused_and_change_nothing(staff):
    before = Release.objects.count()
    for who in ("operator", "analyst", "auditor", "admin", "district"):
        with pytest.raises(ReleaseError, match="draft"):
            releases.draft(staff[who], "t", "b")
    assert Release.objects.count() == before

    release = releases.draft(staff["pr"], "标题", "正文")
    state = _snapshot(release)
    for who in ("pr2", "leader", "analyst"):
        with pytest.raises(ReleaseError, match="author"):
            releases.submit(release, staff[who])
        with pytest.raises(ReleaseError, match="author"):
            releases.edit(release, staff[who], "改", "改")
    with pytest.raises(ReleaseError, match="not waiting for review"):
        releases.review(release, staff["analyst"], True)
    assert _snapshot(release) == state

    releases.submit(release, staff["pr"])
    state = _snapshot(release)
    for who in ("operator", "auditor", "admin", "district"):
        with pytest.raises(ReleaseError, match="review"):
            releases.review(release, staff[who], True)
    with pytest.raises(ReleaseError, match="reviewed"):
        releases.approve(release, staff["leader"])  # not reviewed yet
    with pytest.raises(ReleaseError, match="approved"):
        releases.publish(release, staff["pr"])
    assert _snapshot(release) == state

    releases.review(release, staff["analyst"], True)
    state = _snapshot(release)
    for who in ("operator", "auditor", "admin", "analyst", "pr_area"):
        with pytest.raises(ReleaseError):
            releases.approve(release, staff[who])
    assert _snapshot(release) == state

    releases.approve(release, staff["leader"])
    state = _snapshot(release)
    for who in ("analyst", "auditor", "operator", "admin"):
        with pytest.raises(ReleaseError, match="approver or a PR officer"):
            releases.publish(release, staff[who])
    assert _snapshot(release) == state
    assert releases.publish(release, staff["leader"]).publisher == staff["leader"]  # approver
    with pytest.raises(ReleaseError, match="approved"):
        releases.publish(release, staff["pr"])  # and only once


def test_four_eyes_author_reviewer_and_approver_are_three_people(staff):
    release = releases.draft(staff["leader"], "市长讲话稿", "……")
    releases.submit(release, staff["leader"])
    with pytest.raises(ReleaseError, match="own release"):
        releases.review(release, staff["leader"], True)
    releases.review(release, staff["leader2"], True)
    for who in ("leader", "leader2"):  # the author, then the reviewer
        with pytest.raises(ReleaseError, match="neither the author nor the reviewer"):
            releases.approve(release, staff[who])
    assert Release.objects.get(pk=release.pk).status == "in_review"
    assert releases.approve(release, staff["pr2"]).approver == staff["pr2"]

    own = releases.draft(staff["pr"], "稿", "……")
    releases.submit(own, staff["pr"])
    with pytest.raises(ReleaseError, match="own release"):
        releases.review(own, staff["pr"], False, "自己退回")
    releases.review(own, staff["pr2"], True)
    with pytest.raises(ReleaseError, match="neither"):
        releases.approve(own, staff["pr"])


@pytest.mark.parametrize(
    ("level", "peak", "pr_may_approve"),
    [(1, None, False), (2, None, False), (3, None, True), (4, None, True), (4, 2, False)],
)
def test_level_decides_who_approves(staff, level, peak, pr_may_approve):
    release = _reviewed(staff, warning=_warning(level, peak))
    with pytest.raises(ReleaseError):
        releases.approve(release, staff["pr_area"])  # a PR officer of one district never
    if pr_may_approve:
        assert releases.approve(release, staff["pr2"]).status == "approved"
    else:
        with pytest.raises(ReleaseError, match="city leader"):
            releases.approve(release, staff["pr2"])
        assert Release.objects.get(pk=release.pk).status == "in_review"
        assert releases.approve(release, staff["leader"]).status == "approved"


def test_sent_back_with_a_note_then_edited_and_submitted_again(staff):
    warning = _warning(3)
    release = releases.draft(staff["pr"], "初稿", "数字有误", warning)
    releases.submit(release, staff["pr"])
    with pytest.raises(ReleaseError) as refused:
        releases.review(release, staff["analyst"], False, "  ")
    assert refused.value.field == "note"
    release = releases.review(release, staff["analyst"], False, "伤亡数字请与卫健委核对")
    assert release.status == "rejected" and release.review_note == "伤亡数字请与卫健委核对"
    assert release.reviewer == staff["analyst"]
    with pytest.raises(ReleaseError):
        releases.approve(release, staff["leader"])
    release = releases.edit(release, staff["pr"], "修订稿", "数字已核对")
    assert release.warning == warning  # kept unless the author changes it
    release = releases.submit(release, staff["pr"])
    assert release.status == "in_review" and release.reviewer is None
    assert release.reviewed_at is None and release.body == "数字已核对"
    assert [a for a, _who in _audit(release)] == [
        "release.drafted",
        "release.submitted",
        "release.sent_back",
        "release.edited",
        "release.submitted",
    ]


def test_bad_input_names_the_field(staff):
    with pytest.raises(ReleaseError) as empty:
        releases.draft(staff["pr"], "   ", "正文")
    assert empty.value.field == "title"
    with pytest.raises(ReleaseError) as long:
        releases.draft(staff["pr"], "x" * 201, "正文")
    assert long.value.field == "title" and "201" in str(long.value)
    with pytest.raises(ReleaseError) as two_lines:
        releases.draft(staff["pr"], "一\n二", "正文")
    assert two_lines.value.field == "title"
    with pytest.raises(ReleaseError) as no_body:
        releases.draft(staff["pr"], "标题", "")
    assert no_body.value.field == "body"


# --------------------------------------------------------------------------- corrections


def test_a_correction_is_a_new_version_that_supersedes_the_old_on_publishing(staff):
    first = _published(staff)
    with pytest.raises(ReleaseError, match="correct"):
        releases.correct(first, staff["analyst"], "t", "b", "n")
    with pytest.raises(ReleaseError) as no_note:
        releases.correct(first, staff["pr"], "t", "b", "")
    assert no_note.value.field == "note"
    second = releases.correct(first, staff["pr2"], "更正：东河异味通报", "更正后……", "采样时间有误")
    assert (second.series, second.version, second.status) == (first.series, 2, "draft")
    assert second.correction_note == "采样时间有误" and second.author == staff["pr2"]
    assert Release.objects.get(pk=first.pk).status == "published"  # until v2 is out
    with pytest.raises(ReleaseError, match="already under way"):
        releases.correct(first, staff["pr"], "t", "b", "n")

    releases.submit(second, staff["pr2"])
    releases.review(second, staff["analyst"], True)
    releases.approve(second, staff["leader"])
    releases.publish(second, staff["pr2"])
    first.refresh_from_db()
    assert first.status == "superseded" and first.published_at is not None
    with pytest.raises(ReleaseError, match="current published"):
        releases.correct(first, staff["pr"], "t", "b", "n")
    assert ("release.superseded", "release-pr2") in _audit(first)
    assert [a for a, _who in _audit(second)] == [
        "release.correction_drafted",
        "release.submitted",
        "release.reviewed",
        "release.approved",
        "release.published",
    ]
    third = releases.correct(second, staff["pr"], "再更正", "……", "措辞")
    assert third.version == 3


# --------------------------------------------------------------------------- staff pages


def test_staff_pages_are_role_checked_and_show_the_viewers_steps(client, staff):
    release = releases.draft(staff["pr"], "页面测试", "正文")
    detail = f"/opinion/releases/{release.pk}/"
    assert client.get("/opinion/releases/").status_code == 302  # login first
    for who in ("operator", "district"):
        client.force_login(staff[who])
        assert client.get("/opinion/releases/").status_code == 403
        assert client.get(detail).status_code == 403
        assert client.post(detail, {"action": "submit"}).status_code == 403
    client.force_login(staff["analyst"])
    assert client.get("/opinion/releases/new/").status_code == 403
    page = client.get(detail).content.decode()
    assert 'data-action="submit"' not in page and 'data-action="edit"' not in page

    client.force_login(staff["pr"])
    listing = client.get("/opinion/releases/", {"status": "draft"}).content.decode()
    assert f'href="{detail}"' in listing
    page = client.get(detail).content.decode()
    assert 'data-action="submit"' in page and 'data-action="edit"' in page
    assert 'data-action="approve"' not in page and 'data-action="pass"' not in page
    assert client.post(detail, {"action": "submit"}).status_code == 302
    assert Release.objects.get(pk=release.pk).status == "in_review"

    client.force_login(staff["analyst"])
    page = client.get(detail).content.decode()
    assert 'data-action="pass"' in page and 'data-action="send_back"' in page
    client.post(detail, {"action": "send_back", "note": ""})  # refused: a note is needed
    assert Release.objects.get(pk=release.pk).status == "in_review"
    client.post(detail, {"action": "pass", "note": "可以"})
    assert Release.objects.get(pk=release.pk).reviewer == staff["analyst"]
    client.post(detail, {"action": "approve"})  # an analyst has no authority
    assert Release.objects.get(pk=release.pk).status == "in_review"

    client.force_login(staff["leader"])
    assert 'data-action="approve"' in client.get(detail).content.decode()
    client.post(detail, {"action": "approve"})
    client.post(detail, {"action": "publish"})
    published = Release.objects.get(pk=release.pk)
    assert published.status == "published" and published.approver == staff["leader"]
    history = client.get(detail).content.decode()
    for action in ("release.drafted", "release.submitted", "release.published"):
        assert f'data-step="{action}"' in history


def test_drafting_editing_and_correcting_through_the_forms(client, staff):
    warning = _warning(3)
    client.force_login(staff["pr"])
    response = client.post(
        "/opinion/releases/new/", {"title": "表单稿", "body": "一\r\n二", "warning": warning.pk}
    )
    release = Release.objects.get(title="表单稿")
    assert response.status_code == 302 and response["Location"].endswith(f"/{release.pk}/")
    assert release.author == staff["pr"] and release.warning == warning and release.body == "一\n二"
    edit = f"/opinion/releases/{release.pk}/edit/"
    client.post(edit, {"title": "表单稿（改）", "body": "三", "warning": ""})
    release.refresh_from_db()
    assert release.title == "表单稿（改）" and release.warning is None
    client.force_login(staff["pr2"])
    assert client.get(edit).status_code == 403  # not the author

    published = _published(staff)
    client.force_login(staff["pr2"])
    response = client.post(
        f"/opinion/releases/{published.pk}/correct/",
        {"title": published.title, "body": "更正后的正文", "note": "日期有误"},
    )
    correction = Release.objects.get(series=published.series, version=2)
    assert response["Location"].endswith(f"/{correction.pk}/")
    assert correction.correction_note == "日期有误" and correction.status == "draft"
    client.force_login(staff["analyst"])
    assert client.get(f"/opinion/releases/{published.pk}/correct/").status_code == 403


# --------------------------------------------------------------------------- public


def test_public_pages_show_published_versions_and_no_one_by_name(client, staff):
    first = _published(staff)
    second = releases.correct(first, staff["pr2"], "更正：东河异味通报", "更正后……", "采样时间有误")
    draft = releases.draft(staff["pr"], "尚未发布的稿件", "内部")

    listing = client.get("/releases/").content.decode()
    assert first.title in listing and draft.title not in listing
    page = client.get(f"/releases/{first.series}/").content.decode()
    assert first.body in page and second.body not in page  # the correction is not out yet
    assert client.get(f"/releases/{draft.series}/").status_code == 404

    releases.submit(second, staff["pr2"])
    releases.review(second, staff["analyst"], True)
    releases.approve(second, staff["leader"])
    releases.publish(second, staff["pr"])
    page = client.get(f"/releases/{first.series}/").content.decode()
    assert page.index(second.body) < page.index(first.body)  # current first, then the earlier
    assert "采样时间有误" in page
    assert 'id="v1"' in page and 'id="v2"' in page
    listing = client.get("/releases/").content.decode()
    assert listing.count(f"/releases/{first.series}/") == 1

    for text in (listing, page):
        assert "City Information Office" in text or "新闻办" in text
        for name in NAMES.values():
            assert name not in text
        for username in ("release-pr2", "analyst"):
            assert username not in text


def test_the_feed_has_published_items_only(client, staff):
    first = _published(staff)
    second = releases.correct(first, staff["pr"], "更正稿", "更正后的正文", "时间有误")
    draft = releases.draft(staff["pr"], "草稿不应出现", "内部")
    in_review = _reviewed(staff)

    feed = feedparser.parse(client.get("/releases/feed.xml").content)
    assert not feed.bozo
    ids = {e.id for e in feed.entries}
    assert f"urn:civicpulse:release:{first.series}:v1" in ids
    for hidden in (second, draft, in_review):
        assert f"urn:civicpulse:release:{hidden.series}:v{hidden.version}" not in ids
    assert draft.title not in [e.title for e in feed.entries]

    releases.submit(second, staff["pr"])
    releases.review(second, staff["analyst"], True)
    releases.approve(second, staff["leader"])
    releases.publish(second, staff["pr"])
    response = client.get("/releases/feed.xml")
    assert response["Content-Type"].startswith("application/rss+xml")
    feed = feedparser.parse(response.content)
    ids = {e.id for e in feed.entries}
    assert f"urn:civicpulse:release:{first.series}:v2" in ids
    assert f"urn:civicpulse:release:{first.series}:v1" not in ids  # superseded: off the feed
    published = set(Release.objects.filter(status="published").values_list("series", "version"))
    assert {(e.id.split(":")[3], int(e.id.split(":v")[-1])) for e in feed.entries} == {
        (str(s), v) for s, v in published
    }
    (entry,) = [e for e in feed.entries if e.id.endswith(f"{first.series}:v2")]
    assert (
        entry.title == "更正稿" and "更正后的正文" in entry.summary and "时间有误" in entry.summary
    )
    assert entry.link.startswith("http://testserver/releases/")
    assert entry.link.endswith(f"/releases/{first.series}/#v2")
    assert entry.author == "City Information Office" or "新闻办" in entry.author
    raw = response.content.decode()
    for name in NAMES.values():
        assert name not in raw


def test_hostile_title_and_body_are_shown_as_text(client, staff):
    release = releases.draft(staff["pr"], HOSTILE_TITLE, HOSTILE_BODY)
    releases.submit(release, staff["pr"])
    releases.review(release, staff["analyst"], True)
    releases.approve(release, staff["leader"])
    releases.publish(release, staff["pr"])

    client.force_login(staff["pr"])
    pages = [
        client.get(f"/opinion/releases/{release.pk}/").content.decode(),
        client.get("/opinion/releases/").content.decode(),
    ]
    client.logout()
    pages += [
        client.get("/releases/").content.decode(),
        client.get(f"/releases/{release.series}/").content.decode(),
    ]
    for page in pages:
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(" in page
    detail = pages[-1]
    assert "&lt;img src=x onerror=alert(1)&gt;<br>第二段 &lt;b&gt;粗&lt;/b&gt;" in detail

    feed = feedparser.parse(client.get("/releases/feed.xml").content)
    (entry,) = [e for e in feed.entries if e.id.endswith(f"{release.series}:v1")]
    assert entry.title == HOSTILE_TITLE  # plain text, kept as typed
    assert "<img" not in entry.summary and "&lt;img src=x" in entry.summary
    assert "&lt;b&gt;" in entry.summary
