"""A case's life through the one window: intake, steps, transfer and return, merge, feedback."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from civicpulse.cases import duplicates, feedback, workflow
from civicpulse.cases.models import Case, Notification, ServiceAttribute
from civicpulse.cases.services import Intake
from civicpulse.cases.workflow import CaseError
from civicpulse.core.models import Area, AuditEntry, Department

pytestmark = pytest.mark.django_db


@pytest.fixture
def grid(demo_city):
    return Area.objects.filter(level="grid").order_by("code").first()


@pytest.fixture
def heating(demo_city):
    from civicpulse.cases.models import Service

    return Service.objects.get(code="heating")


def _centre(area: Area) -> tuple[float, float]:
    ring = area.polygon["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2


def _new(service, area, text="3号楼暖气不热，室内只有14度", **kw) -> Case:
    lon, lat = _centre(area)
    intake = Intake(
        channel=kw.pop("channel", "hotline"),
        description=text,
        service=service,
        lon=lon,
        lat=lat,
        **kw,
    )
    return workflow.take_in(intake, "operator")


def test_intake_locates_routes_and_sets_a_working_day_deadline(heating, grid):
    case = _new(heating, grid, reporter={"name": "张三", "phone": "13800000000"})
    assert case.area == grid  # found from the point by walking down the area tree
    assert case.department == heating.department
    assert case.status == "new" and case.channel == "hotline"
    assert case.due_at > case.created_at
    assert case.tracking_no.startswith("SH")
    assert case.reporters.count() == 1
    assert case.events.get().action == "created"
    assert AuditEntry.objects.filter(action="case.created", object_id=str(case.pk)).exists()


def test_full_path_with_every_step_recorded(heating, grid):
    case = _new(heating, grid)
    for action in ("accept", "dispatch", "start", "resolve", "close"):
        case = workflow.step(case, action, "staff")
    assert case.status == "closed" and case.accepted_at and case.resolved_at and case.closed_at
    actions = list(case.events.values_list("action", "from_status", "to_status"))
    assert actions == [
        ("created", "", "new"),
        ("accept", "new", "accepted"),
        ("dispatch", "accepted", "dispatched"),
        ("start", "dispatched", "in_progress"),
        ("resolve", "in_progress", "resolved"),
        ("close", "resolved", "closed"),
    ]
    case = workflow.step(case, "reopen", "supervisor", note="居民反映仍不热")
    assert case.status == "in_progress" and case.resolved_at is None


def test_steps_the_status_does_not_allow_are_refused(heating, grid):
    case = _new(heating, grid)
    with pytest.raises(CaseError) as err:
        workflow.step(case, "close", "staff")
    assert err.value.code == 409
    with pytest.raises(CaseError):
        workflow.step(case, "teleport", "staff")
    assert Case.objects.get(pk=case.pk).status == "new"


def test_transfer_and_return_need_reasons(heating, grid):
    case = _new(heating, grid)
    other = Department.objects.exclude(pk=case.department_id).first()
    with pytest.raises(CaseError):
        workflow.transfer(case, other, "staff", reason=" ")
    case = workflow.transfer(case, other, "staff", reason="属于该部门职责")
    assert case.department == other and case.status == "dispatched"
    case = workflow.send_back(case, "other-staff", reason="非本部门职责，退回")
    assert case.status == "new" and case.needs_triage
    assert [e.action for e in case.events.all()][-2:] == ["transferred", "returned"]


def test_attributes_are_checked(heating, grid):
    ServiceAttribute.objects.create(
        service=heating, code="temp", datatype="number", required=True, description="室温"
    )
    ServiceAttribute.objects.create(
        service=heating,
        code="kind",
        datatype="singlevaluelist",
        description="类型",
        values=[{"key": "cold", "name": "不热"}, {"key": "leak", "name": "漏水"}],
    )
    with pytest.raises(CaseError, match="temp is required"):
        _new(heating, grid)
    with pytest.raises(CaseError, match="must be a number"):
        _new(heating, grid, attributes={"temp": "warm"})
    with pytest.raises(CaseError, match="must be one of"):
        _new(heating, grid, attributes={"temp": "14", "kind": "fire"})
    with pytest.raises(CaseError, match="unknown attribute"):
        _new(heating, grid, attributes={"temp": "14", "colour": "red"})
    case = _new(heating, grid, attributes={"temp": "14", "kind": "cold"})
    assert case.attributes == {"temp": 14.0, "kind": "cold"}


def test_bad_points_and_text_are_refused(heating, grid):
    for lon, lat in (("x", "1"), (float("nan"), 45.7), (200, 45.7), (126.5, 95)):
        with pytest.raises(CaseError):
            workflow.take_in(
                Intake(channel="web", description="路灯不亮", service=heating, lon=lon, lat=lat)
            )
    with pytest.raises(CaseError):
        workflow.take_in(Intake(channel="web", description="   ", service=heating))
    with pytest.raises(CaseError):
        workflow.take_in(Intake(channel="web", description="x" * 5001, service=heating))


def test_duplicate_across_channels_is_suggested_and_merge_links_reporters(heating, grid):
    # a week the demo's own requests don't reach, so only these three compete
    at = timezone.now() + timedelta(days=120)
    first = _new(
        heating,
        grid,
        text="幸福小区3号楼暖气不热，家里只有14度",
        reporter={"phone": "13900000001"},
        created_at=at,
    )
    second = _new(
        heating,
        grid,
        text="幸福小区3号楼的暖气一直不热，室温14度",
        channel="app",
        reporter={"phone": "13900000002"},
        created_at=at + timedelta(hours=3),
    )
    unrelated = _new(heating, grid, text="单位门口道路积水严重无法通行", created_at=at)
    found = duplicates.suggest(second)
    assert found and found[0].case == first
    assert unrelated not in [s.case for s in found]
    duplicates.merge(second, first, "operator")
    second.refresh_from_db()
    assert second.duplicate_of == first and second.status == "closed"
    assert first.reporters.count() == 2
    for action in ("accept", "resolve"):
        first = workflow.step(first, action, "staff")
    told = Notification.objects.filter(case=first, kind="resolved")
    assert told.count() == 2  # both reporters hear of the resolution
    workflow.step(first, "reopen", "staff", note="again")
    workflow.step(Case.objects.get(pk=first.pk), "resolve", "staff")
    assert Notification.objects.filter(case=first, kind="resolved").count() == 2  # once each


def test_low_rating_reopens_and_a_case_is_rated_once(heating, grid):
    case = _new(heating, grid)
    with pytest.raises(CaseError):
        feedback.rate(case, 5)  # not resolved yet
    case = workflow.step(workflow.step(case, "accept", "s"), "resolve", "s")
    with pytest.raises(CaseError):
        feedback.rate(case, 9)
    result = feedback.rate(case, 1, "根本没人来修")
    case.refresh_from_db()
    assert result.reopened and case.status == "in_progress" and case.satisfaction == 1
    with pytest.raises(CaseError):
        feedback.rate(case, 5)


def test_a_good_rating_or_an_old_one_does_not_reopen(heating, grid):
    case = workflow.step(workflow.step(_new(heating, grid), "accept", "s"), "resolve", "s")
    assert not feedback.rate(case, 4).reopened
    old = workflow.step(workflow.step(_new(heating, grid), "accept", "s"), "resolve", "s")
    Case.objects.filter(pk=old.pk).update(resolved_at=timezone.now() - timedelta(days=60))
    old.refresh_from_db()
    assert not feedback.rate(old, 1).reopened


def test_notices_go_by_mail_or_wait_for_a_channel(heating, grid, settings, tmp_path):
    from civicpulse.cases import notices

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    from django.core import mail

    case = _new(heating, grid, reporter={"email": "resident@example.org"})
    case.reporters.add(*_new(heating, grid, reporter={"phone": "13700000009"}).reporters.all())
    workflow.step(workflow.step(case, "accept", "s"), "resolve", "s")
    result = notices.send_pending()
    assert result == {"sent": 1, "waiting": 1, "failed": 0}
    assert len(mail.outbox) == 1 and case.tracking_no in mail.outbox[0].subject
    assert f"/track/{case.token}/" in mail.outbox[0].body
    assert notices.send_pending()["sent"] == 0  # nothing is sent twice


def test_merge_only_into_an_open_case(heating, grid):
    open_case, done = _new(heating, grid), _new(heating, grid)
    workflow.step(workflow.step(done, "accept", "s"), "resolve", "s")
    with pytest.raises(CaseError, match="open case"):
        duplicates.merge(open_case, done, "operator")
    assert Case.objects.get(pk=open_case.pk).duplicate_of is None


def test_reopening_sets_a_new_deadline(heating, grid):
    case = workflow.step(workflow.step(_new(heating, grid), "accept", "s"), "resolve", "s")
    Case.objects.filter(pk=case.pk).update(
        due_at=timezone.now() - timedelta(days=3), escalated_at=timezone.now()
    )
    case = workflow.step(Case.objects.get(pk=case.pk), "reopen", "s", note="not fixed")
    assert case.due_at > timezone.now() and case.escalated_at is None


def test_merged_reporters_get_their_own_link(heating, grid):
    at = timezone.now() + timedelta(days=200)
    first = _new(heating, grid, reporter={"email": "a@example.org"}, created_at=at)
    second = _new(heating, grid, reporter={"email": "b@example.org"}, created_at=at)
    duplicates.merge(second, first, "operator")
    workflow.step(workflow.step(first, "accept", "s"), "resolve", "s")
    bodies = {n.reporter.email: n.body for n in Notification.objects.filter(case=first)}
    assert f"/track/{first.token}/" in bodies["a@example.org"]
    assert f"/track/{second.token}/" in bodies["b@example.org"]
    assert bodies["a@example.org"].split("：")[-1].startswith("http")
