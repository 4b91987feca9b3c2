"""The departments' page of response-plan tasks, driven through the real views with CSRF
checks on, and the periodic sweep that starts plans for templates added after a warning rose,
run by the real queue and worker."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from civicpulse.core import audit
from civicpulse.core import queue as q
from civicpulse.core.models import AuditEntry, Department
from civicpulse.opinion import plans
from civicpulse.opinion.models import PlanStep, PlanTask, PlanTemplate, ResponsePlan, Warning
from civicpulse.opinion.views.plans import NOTE_MAX
from tests.opinion import test_plans
from tests.opinion.test_plans import PASSWORD

pytestmark = pytest.mark.django_db
# the plans tests' city (two departments, their staff, a leader, a level III template and an
# active warning), used as it is rather than copied
city = test_plans.city
webhook = test_plans.webhook
TASKS = "/opinion/tasks/"


def _client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user.username, password=PASSWORD)
    return client


def _row(html: str, task: PlanTask) -> str:
    """The table row of one task on the page, or "" when the page does not list it."""
    found = re.search(rf'<tr id="task-{task.pk}"[^>]*>.*?</tr>', html, re.S)
    return found.group(0) if found else ""


def _done_form(html: str, task: PlanTask) -> tuple[str, dict]:
    """The action and fields of the "mark done" form in a task's row, as a browser sends them."""
    row = _row(html, task)
    action = re.search(r'<form method="post" action="([^"]+)"', row)
    assert action, f"no form to complete task {task.pk} in {row!r}"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', row))
    return action.group(1), fields


@pytest.fixture
def started(city):
    (plan,) = plans.start_due_plans(city["warning"])
    return {
        **city,
        "plan": plan,
        "urban_task": plan.tasks.get(department__code="urban"),
        "eco_task": plan.tasks.get(department__code="ecology"),
    }


def test_a_department_sees_its_open_tasks_and_not_another_departments(started):
    urban_task, eco_task = started["urban_task"], started["eco_task"]
    page = _client(started["urban"]).get(TASKS, {"department": "ecology"})  # filter ignored
    assert page.status_code == 200
    html = page.content.decode()
    row = _row(html, urban_task)
    assert urban_task.title in row and started["yellow"].name in row
    assert started["warning"].title in row and "level-badge level-3" in row
    assert _row(html, eco_task) == "" and eco_task.title not in html
    assert reverse("opinion:task-done", args=[urban_task.pk]) in row
    # the warning concerns the whole city: department staff do not read it, so no link
    assert reverse("opinion:warning", args=[started["warning"].pk]) not in row
    assert AuditEntry.objects.filter(action="opinion.tasks", actor="plan-urban").exists()

    leader = _client(started["leader"])
    everything = leader.get(TASKS).content.decode()
    assert _row(everything, urban_task) and _row(everything, eco_task)
    assert reverse("opinion:warning", args=[started["warning"].pk]) in _row(everything, eco_task)
    only_ecology = leader.get(TASKS, {"department": "ecology"}).content.decode()
    assert _row(only_ecology, eco_task) and not _row(only_ecology, urban_task)
    assert leader.get(TASKS, {"department": "no-such"}).status_code == 404

    operator = _client(started["operator"])  # the hotline does not work on plans
    assert operator.get(TASKS).status_code == 403


def test_a_task_is_completed_through_the_form_with_its_note_and_audited(started):
    task = started["urban_task"]
    client = _client(started["urban_nomail"])
    page = client.get(TASKS, {"warning": started["warning"].pk}).content.decode()
    action, fields = _done_form(page, task)
    assert "csrfmiddlewaretoken" in fields
    alone = client.get(action)  # the task's own page has the same form
    assert alone.status_code == 200 and 'id="task-done-form"' in alone.content.decode()

    refused = client.post(action, {"note": "没有令牌"})  # the token is checked
    assert refused.status_code == 403
    task.refresh_from_db()
    assert task.status == PlanTask.Status.OPEN and task.note == ""

    before = AuditEntry.objects.filter(action="plan.task_done").count()
    answer = client.post(action, {**fields, "note": "已查明排污口，已封堵"})
    assert answer.status_code == 302
    assert answer["Location"] == f"{TASKS}?warning={started['warning'].pk}"
    task.refresh_from_db()
    assert task.status == PlanTask.Status.DONE and task.done_by == started["urban_nomail"]
    assert task.note == "已查明排污口，已封堵" and task.done_at is not None
    entries = AuditEntry.objects.filter(action="plan.task_done")
    assert entries.count() == before + 1  # audited once, by complete_task
    entry = entries.get(object_id=str(task.pk))
    assert entry.actor == "plan-urban2" and entry.detail["note"] == "已查明排污口，已封堵"
    assert audit.verify()[1] is None

    after = client.get(answer["Location"]).content.decode()
    row = _row(after, task)
    assert 'id="done-tasks"' in after and "已查明排污口，已封堵" in row and "plan-urban2" in row
    assert "<form" not in row
    again = client.post(action, {**fields, "note": "再来一次"})  # done already: nothing changes
    assert again.status_code == 302
    task.refresh_from_db()
    assert task.note == "已查明排污口，已封堵"


def test_another_department_gets_403_and_the_task_stays_open(started):
    task = started["urban_task"]
    outsider = _client(started["ecology"])
    page = outsider.get(TASKS).content.decode()  # a real page, for a real CSRF token
    _action, fields = _done_form(page, started["eco_task"])
    action = reverse("opinion:task-done", args=[task.pk])
    assert outsider.get(action).status_code == 403
    answer = outsider.post(action, {**fields, "note": "不是我的"})
    assert answer.status_code == 403
    task.refresh_from_db()
    assert task.status == PlanTask.Status.OPEN and task.done_by is None and task.note == ""
    assert not AuditEntry.objects.filter(action="plan.task_done", object_id=str(task.pk)).exists()


def test_a_note_too_long_is_refused_and_nothing_is_stored(started):
    task = started["urban_task"]
    client = _client(started["urban"])
    action, fields = _done_form(client.get(TASKS).content.decode(), task)
    answer = client.post(action, {**fields, "note": "长" * (NOTE_MAX + 1)})
    assert answer.status_code == 400 and 'id="task-done-form"' in answer.content.decode()
    task.refresh_from_db()
    assert task.status == PlanTask.Status.OPEN and task.note == ""


def test_an_overdue_task_is_marked_overdue(city):
    (plan,) = plans.start_due_plans(city["warning"], now=timezone.now() - timedelta(hours=3))
    late = plan.tasks.get(department__code="urban")  # due 2 h after the start: 1 h ago
    in_time = plan.tasks.get(department__code="ecology")  # due in 21 h
    plans.escalate_overdue()
    html = _client(city["leader"]).get(TASKS).content.decode()
    late_row, in_time_row = _row(html, late), _row(html, in_time)
    assert 'class="overdue"' in late_row and "overdue-flag" in late_row
    assert 'class="escalated"' in late_row
    assert 'class="overdue"' not in in_time_row and "overdue-flag" not in in_time_row
    assert html.index(f'id="task-{late.pk}"') < html.index(f'id="task-{in_time.pk}"')


def test_the_sweep_job_starts_a_template_added_after_the_warning_rose(db, demo_city):
    now = timezone.now()
    warning = Warning.objects.create(
        event_key="issue:tasks-sweep-test",
        title="南湖蓝藻",
        category="tasks-sweep",
        level=3,
        peak_level=3,
        opened_at=now,
        updated_at=now,
    )
    assert plans.start_due_plans(warning) == []  # no template for it yet
    ecology = Department.objects.get(code="ecology")
    later = PlanTemplate.objects.create(name="蓝藻处置预案", category="tasks-sweep", level=3)
    PlanStep.objects.create(template=later, title="打捞蓝藻", department=ecology, due_hours=6)
    severe = PlanTemplate.objects.create(name="蓝藻红色预案", category="tasks-sweep", level=1)
    PlanStep.objects.create(template=severe, title="停止取水", department=ecology, due_hours=1)

    store = q.StoreQueue()
    worker = q.Worker(store, names=["opinion.plans_sweep"])
    first = store.enqueue("opinion.plans_sweep")
    assert worker.run_one() is True
    state = store.state(first)
    assert state["state"] == "done" and state["result"]["started"] >= 1
    (plan,) = ResponsePlan.objects.filter(warning=warning)  # the level III one, not level I
    assert plan.template == later and plan.level == 3
    assert list(plan.tasks.values_list("title", "department__code")) == [("打捞蓝藻", "ecology")]

    counts = (ResponsePlan.objects.count(), PlanTask.objects.count())
    second = store.enqueue("opinion.plans_sweep")
    assert worker.run_one() is True
    assert store.state(second)["result"] == {"started": 0}
    assert (ResponsePlan.objects.count(), PlanTask.objects.count()) == counts
    assert q.REGISTRY["opinion.plans_sweep"].every == 300


def test_the_warning_page_links_its_tasks(started):
    html = (
        _client(started["leader"])
        .get(reverse("opinion:warning", args=[started["warning"].pk]))
        .content.decode()
    )
    task = started["urban_task"]
    assert f"{TASKS}?warning={started['warning'].pk}#task-{task.pk}" in html
    assert f'href="{TASKS}"' in html  # the desk's navigation
