"""Response plans: started once per warning and template when the level calls for them, tasks
completed by the right people, overdue tasks escalated once, and every message really sent —
to an SMTP server and a webhook receiver running here, in this process."""

from __future__ import annotations

import email
import email.policy
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone, translation

from civicpulse.core import accounts, audit
from civicpulse.core.models import AuditEntry, Department, Role
from civicpulse.opinion import plans
from civicpulse.opinion.models import (
    Delivery,
    PlanStep,
    PlanTask,
    PlanTemplate,
    ResponsePlan,
    Warning,
)
from civicpulse.opinion.plans import PlanError
from tests.support import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """The workflow's refusals are checked by their English text; zh-Hans users read the same
    messages translated (the pages' tests see those)."""
    with translation.override("en"):
        yield
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PASSWORD = "pw-plans-123"


# --------------------------------------------------------------------------- real servers


class Inbox:
    """What an aiosmtpd server on 127.0.0.1 received, as parsed messages."""

    def __init__(self):
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for rcpts, m in self.messages if address in rcpts]


@pytest.fixture
def smtp(settings):
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield inbox
    controller.stop()


class Receiver:
    """A webhook endpoint: records each POST; answers 500 while ``failures`` lasts."""

    def __init__(self):
        self.requests: list[dict] = []
        self.failures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "type": self.headers["Content-Type"],
                        "json": json.loads(body),
                    }
                )
                failing = receiver.failures > 0
                receiver.failures -= failing
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/plans?token=s3cret"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    with Receiver() as receiver:
        yield receiver


# --------------------------------------------------------------------------- the city


@pytest.fixture
def city(demo_city, settings, webhook):
    """Two departments with staff (one without an e-mail), a leader with an e-mail and four
    templates: the one a level III environment warning calls for, a level I one for any
    category, another category's, and a switched-off one."""
    settings.PASSWORD_HASHERS = FAST_HASHER  # accounts are made per test
    urban = Department.objects.get(code="urban")
    ecology = Department.objects.get(code="ecology")
    staff = {
        "urban": accounts.create_staff(
            "plan-urban", PASSWORD, Role.DEPARTMENT_STAFF, department=urban
        ),
        "urban_nomail": accounts.create_staff(
            "plan-urban2", PASSWORD, Role.DEPARTMENT_STAFF, department=urban
        ),
        "ecology": accounts.create_staff(
            "plan-ecology", PASSWORD, Role.DEPARTMENT_STAFF, department=ecology
        ),
        "operator": accounts.create_staff("plan-operator", PASSWORD, Role.HOTLINE_OPERATOR),
        "leader": accounts.create_staff("plan-leader", PASSWORD, Role.CITY_LEADER),
    }
    for key, address in (
        ("urban", "urban@city.example"),
        ("ecology", "eco@city.example"),
        ("leader", "mayor@city.example"),
    ):
        staff[key].email = address
        staff[key].save(update_fields=["email"])
    yellow = PlanTemplate.objects.create(
        name="河道异味处置预案",
        category="environment",
        level=3,
        emails="press@city.example; not-an-address, press@city.example",
        webhook_url=webhook.url,
    )
    PlanStep.objects.create(template=yellow, title="现场排查污染源", department=urban, due_hours=2)
    PlanStep.objects.create(
        template=yellow, title="水质采样并公布结果", department=ecology, due_hours=24, order=1
    )
    red = PlanTemplate.objects.create(name="重大舆情总体预案", category="", level=1)
    PlanStep.objects.create(template=red, title="成立专班", department=urban, due_hours=1)
    other = PlanTemplate.objects.create(name="交通拥堵预案", category="transport", level=4)
    PlanStep.objects.create(template=other, title="疏导", department=urban, due_hours=1)
    off = PlanTemplate.objects.create(
        name="停用预案", category="environment", level=4, is_active=False
    )
    PlanStep.objects.create(template=off, title="不应出现", department=urban, due_hours=1)
    now = timezone.now()
    warning = Warning.objects.create(
        event_key="issue:plans-test",
        title="东河异味\n投诉激增",  # a line break must not reach a mail header
        category="environment",
        level=3,
        peak_level=3,
        opened_at=now,
        updated_at=now,
    )
    return {"warning": warning, "yellow": yellow, "red": red, "staff": staff, **staff}


def _raise(warning: Warning, level: int) -> Warning:
    warning.level = level
    warning.peak_level = min(level, warning.peak_level)
    warning.save(update_fields=["level", "peak_level"])
    return warning


# --------------------------------------------------------------------------- starting


def test_a_warning_starts_the_plans_its_level_and_category_call_for(city):
    warning, yellow = city["warning"], city["yellow"]
    start = timezone.now().replace(microsecond=0)
    started = plans.start_due_plans(warning, now=start)
    assert [p.template for p in started] == [yellow]
    plan = started[0]
    assert plan.level == 3 and plan.started_at == start
    tasks = list(plan.tasks.order_by("due_at"))
    assert [(t.title, t.department.code, t.due_at - start) for t in tasks] == [
        ("现场排查污染源", "urban", timedelta(hours=2)),
        ("水质采样并公布结果", "ecology", timedelta(hours=24)),
    ]
    assert all(t.status == PlanTask.Status.OPEN for t in tasks)
    queued = set(plan.deliveries.values_list("kind", "channel", "target", "task__title"))
    assert queued == {
        ("started", "email", "press@city.example", None),
        ("started", "email", "urban@city.example", "现场排查污染源"),
        ("started", "email", "eco@city.example", "水质采样并公布结果"),
        ("started", "webhook", yellow.webhook_url, None),
    }
    entry = AuditEntry.objects.get(action="plan.started", object_id=str(plan.pk))
    assert entry.detail["warning"] == warning.pk and entry.detail["level"] == 3
    assert entry.detail["refused_addresses"] == ["not-an-address"]


def test_starting_is_idempotent_and_an_upgrade_starts_the_more_severe_plans(city):
    warning = city["warning"]
    assert len(plans.start_due_plans(warning)) == 1
    counts = (ResponsePlan.objects.count(), PlanTask.objects.count(), Delivery.objects.count())
    assert plans.start_due_plans(warning) == []
    assert plans.start_for_active_warnings() == 0
    assert counts == (
        ResponsePlan.objects.count(),
        PlanTask.objects.count(),
        Delivery.objects.count(),
    )
    _raise(warning, 2)
    assert plans.start_due_plans(warning) == []  # nothing new is due at II
    _raise(warning, 1)
    started = plans.start_due_plans(warning)
    assert [p.template for p in started] == [city["red"]] and started[0].level == 1
    assert plans.start_due_plans(warning) == []
    assert set(warning.plans.values_list("template__name", flat=True)) == {
        "河道异味处置预案",
        "重大舆情总体预案",
    }


def test_a_mild_or_closed_warning_starts_nothing(city):
    warning = _raise(city["warning"], 4)
    assert plans.start_due_plans(warning) == []  # the environment template starts at III
    _raise(warning, 1)
    warning.status = Warning.Status.CLOSED
    warning.save(update_fields=["status"])
    assert plans.start_due_plans(warning) == []
    assert not warning.plans.exists()


def test_split_addresses_accepts_what_people_type_and_names_the_rest():
    valid, refused = plans.split_addresses("a@x.example, b@x.example；a@x.example\nfoo bar@")
    assert valid == ["a@x.example", "b@x.example"]
    assert refused == ["foo", "bar@"]


# --------------------------------------------------------------------------- sending


def test_deliveries_reach_a_real_smtp_server_and_webhook(city, smtp, webhook):
    warning, yellow = city["warning"], city["yellow"]
    (plan,) = plans.start_due_plans(warning)
    result = plans.deliver_pending()
    assert result == {"sent": 4, "failed": 0, "waiting": 0, "given_up": 0}

    assert sorted(r for rcpts, _m in smtp.messages for r in rcpts) == [
        "eco@city.example",
        "press@city.example",
        "urban@city.example",
    ]
    (press,) = smtp.to("press@city.example")
    assert yellow.name in press["Subject"] and "东河异味 投诉激增" in press["Subject"]
    body = press.get_content()
    assert "现场排查污染源" in body and "水质采样并公布结果" in body
    urban_task = plan.tasks.get(department__code="urban")
    due = timezone.localtime(urban_task.due_at).strftime("%Y-%m-%d %H:%M")
    (urban,) = smtp.to("urban@city.example")
    assert "现场排查污染源" in urban.get_content() and due in urban.get_content()
    assert "水质采样并公布结果" not in urban.get_content()  # only their department's task

    (hook,) = webhook.requests
    assert hook["path"] == "/hooks/plans?token=s3cret"
    assert hook["type"].startswith("application/json")
    sent = hook["json"]
    assert sent["event"] == "plan.started"
    assert sent["warning"] == {
        "id": warning.pk,
        "level": 3,
        "level_roman": "III",
        "title": warning.title,
        "category": "environment",
        "status": "active",
    }
    assert sent["plan"]["id"] == plan.pk and sent["plan"]["name"] == yellow.name
    assert {(t["title"], t["department"], t["due_at"]) for t in sent["tasks"]} == {
        (t.title, t.department.code, t.due_at.isoformat()) for t in plan.tasks.all()
    }

    assert not Delivery.objects.filter(plan=plan, sent_at__isnull=True).exists()
    assert AuditEntry.objects.filter(action="plan.delivery_sent").count() >= 4
    hook_entry = AuditEntry.objects.filter(
        action="plan.delivery_sent", detail__channel="webhook"
    ).last()
    assert "s3cret" not in json.dumps(hook_entry.detail)  # a webhook's secret stays out

    # nothing is sent twice
    assert plans.deliver_pending()["sent"] == 0
    assert len(smtp.messages) == 3 and len(webhook.requests) == 1
    assert audit.verify()[1] is None


def test_a_failing_webhook_is_retried_later_and_its_error_kept(city, smtp, webhook):
    webhook.failures = 2
    (plan,) = plans.start_due_plans(city["warning"])
    hook = plan.deliveries.get(channel="webhook")
    queued = hook.created_at
    assert plans.deliver_pending(now=queued)["failed"] == 1
    hook.refresh_from_db()
    assert hook.sent_at is None and hook.attempts == 1 and "HTTP 500" in hook.error
    # the next try waits its turn
    assert plans.deliver_pending(now=queued + timedelta(seconds=30)) == {
        "sent": 0,
        "failed": 0,
        "waiting": 1,
        "given_up": 0,
    }
    assert len(webhook.requests) == 1
    later = queued + plans.RETRY_AFTER[1]
    assert plans.deliver_pending(now=later) == {
        "sent": 0,
        "failed": 1,
        "waiting": 1,
        "given_up": 0,
    }
    result = plans.deliver_pending(now=queued + plans.RETRY_AFTER[2])
    assert result["sent"] == 1 and result["waiting"] == 0
    hook.refresh_from_db()
    assert hook.sent_at is not None and hook.attempts == 3
    assert "HTTP 500" in hook.error  # the last failure stays on record
    assert len(webhook.requests) == 3
    assert webhook.requests[0]["json"] == webhook.requests[2]["json"]  # the same message
    failures = AuditEntry.objects.filter(action="plan.delivery_failed", object_id=str(hook.pk))
    assert [e.detail["attempt"] for e in failures] == [1, 2]


def test_a_delivery_is_given_up_after_its_attempts_and_never_marked_sent(city, smtp, webhook):
    webhook.failures = 10**6
    plans.start_due_plans(city["warning"])
    hook = Delivery.objects.get(channel="webhook")
    for wait in plans.RETRY_AFTER:
        plans.deliver_pending(now=hook.created_at + wait)
    result = plans.deliver_pending(now=hook.created_at + timedelta(days=30))
    assert result == {"sent": 0, "failed": 0, "waiting": 0, "given_up": 1}
    assert len(webhook.requests) == plans.MAX_ATTEMPTS
    hook.refresh_from_db()
    assert hook.sent_at is None and hook.attempts == plans.MAX_ATTEMPTS
    assert "HTTP 500" in hook.error


def test_mail_that_cannot_be_handed_over_stays_unsent(city, settings, webhook):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 2
    plans.start_due_plans(city["warning"])
    result = plans.deliver_pending()
    assert result["sent"] == 1 and result["failed"] == 3  # the webhook went, the mail did not
    for delivery in Delivery.objects.filter(channel="email"):
        assert delivery.sent_at is None and delivery.attempts == 1
        assert "Connection" in delivery.error or "refused" in delivery.error.lower()


# --------------------------------------------------------------------------- tasks


def test_only_the_department_or_a_leader_completes_a_task(city):
    (plan,) = plans.start_due_plans(city["warning"])
    urban_task = plan.tasks.get(department__code="urban")
    eco_task = plan.tasks.get(department__code="ecology")
    for outsider in (city["ecology"], city["operator"]):
        with pytest.raises(PlanError):
            plans.complete_task(urban_task, outsider, "不是我的")
    urban_task.refresh_from_db()
    assert urban_task.status == "open" and urban_task.done_by is None and urban_task.note == ""

    plans.complete_task(urban_task, city["urban_nomail"], "已查明排污口")
    urban_task.refresh_from_db()
    assert urban_task.status == "done" and urban_task.done_by == city["urban_nomail"]
    assert urban_task.done_at is not None and urban_task.note == "已查明排污口"
    with pytest.raises(PlanError, match="already done"):
        plans.complete_task(urban_task, city["urban"])
    plans.complete_task(eco_task, city["leader"])
    entries = AuditEntry.objects.filter(action="plan.task_done").order_by("seq")
    assert [(e.actor, e.object_id) for e in entries] == [
        ("plan-urban2", str(urban_task.pk)),
        ("plan-leader", str(eco_task.pk)),
    ]


def test_overdue_tasks_are_escalated_once_to_department_leaders_and_webhook(city, smtp, webhook):
    start = timezone.now()
    plans.escalate_overdue(now=start)  # tasks the demo's replayed warnings left overdue
    (plan,) = plans.start_due_plans(city["warning"], now=start)
    plans.deliver_pending()
    smtp.messages.clear()
    webhook.requests.clear()
    assert plans.escalate_overdue(now=start + timedelta(minutes=90)) == 0
    assert plans.escalate_overdue(now=start + timedelta(hours=3)) == 1
    assert plans.escalate_overdue(now=start + timedelta(hours=4)) == 0  # once only
    late = plan.tasks.get(department__code="urban")
    assert late.escalated_at == start + timedelta(hours=3)
    assert plan.tasks.get(department__code="ecology").escalated_at is None
    leaders = {
        u.email
        for u in get_user_model().objects.filter(staff_profile__role=Role.CITY_LEADER)
        if u.email
    }
    assert "mayor@city.example" in leaders
    assert set(
        Delivery.objects.filter(kind="overdue", plan=plan).values_list("channel", "target", "task")
    ) == {
        ("email", "urban@city.example", late.pk),
        *{("email", address, late.pk) for address in leaders},
        ("webhook", city["yellow"].webhook_url, late.pk),
    }
    assert AuditEntry.objects.filter(action="plan.task_overdue", object_id=str(late.pk)).exists()

    assert plans.deliver_pending()["sent"] == 2 + len(leaders)
    (to_mayor,) = smtp.to("mayor@city.example")
    assert late.title in to_mayor["Subject"] and city["yellow"].name in to_mayor["Subject"]
    (hook,) = webhook.requests
    assert hook["json"]["event"] == "plan.overdue"
    assert [t["id"] for t in hook["json"]["tasks"]] == [late.pk]

    # a task done in time is never escalated
    eco = plan.tasks.get(department__code="ecology")
    plans.complete_task(eco, city["ecology"])
    assert plans.escalate_overdue(now=start + timedelta(days=2)) == 0
