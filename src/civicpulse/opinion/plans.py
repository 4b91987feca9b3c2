"""Response plans: what the city does, by whom and by when, once a warning is serious enough.

A :class:`~civicpulse.opinion.models.PlanTemplate` says "at level N or worse, for this category
of event, these departments do these tasks within these hours". When a warning reaches the level,
:func:`start_due_plans` starts the plan: its tasks get due times and the people concerned are told.

Telling is two steps on purpose. Starting a plan or escalating a task only *queues*
:class:`~civicpulse.opinion.models.Delivery` rows, inside the same transaction as the plan, so a
mail server that is down can never lose a plan nor leave one half started; :func:`deliver_pending`
then sends them from the worker, retries the failures and keeps the last error for the operator.
A message's text is built when it is sent, from the plan as it stands, so nothing is stored twice.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from civicpulse.core import audit, scoping
from civicpulse.core.models import Department, Role
from civicpulse.opinion.models import (
    Delivery,
    Level,
    PlanTask,
    PlanTemplate,
    ResponsePlan,
    Warning,
)

# when attempt n+1 of a delivery may be made, counted from when it was queued: a receiver that
# is down for a while still gets the message, without being hammered every minute
RETRY_AFTER = (
    timedelta(0),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
MAX_ATTEMPTS = len(RETRY_AFTER)  # then the delivery is left for a person to look at
WEBHOOK_TIMEOUT = 10  # seconds; a slow receiver must not hold the worker
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}
# who may mark any task done, whatever department it belongs to
OVERSEEING_ROLES = {Role.CITY_LEADER, Role.DATA_ADMIN}


class PlanError(ValueError):
    """A step on a plan that the actor may not take, or that its state does not allow."""


# --------------------------------------------------------------------------- addresses


def split_addresses(text: str) -> tuple[list[str], list[str]]:
    """A template's "also tell" field as (valid addresses, refused entries).

    Separators people type (commas, semicolons, spaces, new lines) are all accepted, so a list
    pasted from a mail client works as it is.
    """
    valid, refused = [], []
    for entry in re.split(r"[\s,;，；]+", text or ""):
        if not entry:
            continue
        try:
            validate_email(entry)
        except ValidationError:
            refused.append(entry)
        else:
            if entry not in valid:
                valid.append(entry)
    return valid, refused


def _department_addresses(department: Department) -> list[str]:
    users = (
        get_user_model()
        .objects.filter(is_active=True, staff_profile__department=department)
        .exclude(email="")
    )
    return sorted(set(users.values_list("email", flat=True)))


def _leader_addresses() -> list[str]:
    users = (
        get_user_model()
        .objects.filter(is_active=True, staff_profile__role=Role.CITY_LEADER)
        .exclude(email="")
    )
    return sorted(set(users.values_list("email", flat=True)))


def _queue(plan: ResponsePlan, kind: str, channel: str, target: str, task=None) -> bool:
    """One delivery row, unless the same message to the same place is already queued.

    The database's unique constraint does not cover rows without a task (NULLs differ), so the
    check is made here as well.
    """
    exists = Delivery.objects.filter(
        plan=plan, task=task, kind=kind, channel=channel, target=target
    ).exists()
    if exists:
        return False
    try:
        with transaction.atomic():
            Delivery.objects.create(plan=plan, task=task, kind=kind, channel=channel, target=target)
    except IntegrityError:
        return False
    return True


# --------------------------------------------------------------------------- starting


def due_templates(warning: Warning):
    """Active templates that a warning's level calls for and that have not started for it.

    Level I is the most severe, so a template "at level III" is due at III, II and I.
    """
    return (
        PlanTemplate.objects.filter(is_active=True, level__gte=warning.level)
        .filter(Q(category="") | Q(category=warning.category))
        .exclude(pk__in=ResponsePlan.objects.filter(warning=warning).values("template"))
        .prefetch_related("steps__department")
        .order_by("level", "pk")
    )


def start_due_plans(warning: Warning, *, now: datetime | None = None) -> list[ResponsePlan]:
    """Start every plan the warning's current level calls for; return those started now.

    Safe to call after every assessment: a plan starts once per warning and template, and a
    warning moving up to a more severe level starts only the plans of the new level. A closed
    warning starts nothing.
    """
    if warning.status != Warning.Status.ACTIVE:
        return []
    now = now or timezone.now()
    started = []
    for template in due_templates(warning):
        try:
            with transaction.atomic():
                plan = _start(warning, template, now)
        except IntegrityError:  # another worker started it a moment ago
            continue
        started.append(plan)
    return started


def _start(warning: Warning, template: PlanTemplate, now: datetime) -> ResponsePlan:
    plan = ResponsePlan.objects.create(
        warning=warning, template=template, started_at=now, level=warning.level
    )
    tasks = [
        PlanTask.objects.create(
            plan=plan,
            title=step.title,
            department=step.department,
            due_at=now + timedelta(hours=step.due_hours),
        )
        for step in template.steps.all()
    ]
    addresses, refused = split_addresses(template.emails)
    for address in addresses:
        _queue(plan, "started", Delivery.Channel.EMAIL, address)
    for task in tasks:
        for address in _department_addresses(task.department):
            _queue(plan, "started", Delivery.Channel.EMAIL, address, task)
    if template.webhook_url:
        _queue(plan, "started", Delivery.Channel.WEBHOOK, template.webhook_url)
    audit.record(
        "system",
        "plan.started",
        plan,
        detail={
            "warning": warning.pk,
            "level": warning.level,
            "template": template.pk,
            "tasks": [[t.title, t.department.code, t.due_at.isoformat()] for t in tasks],
            "refused_addresses": refused,
        },
    )
    return plan


def start_for_active_warnings(*, now: datetime | None = None) -> int:
    """Sweep every active warning: catches templates added or switched on after the warning
    reached its level. Returns how many plans started."""
    count = 0
    for warning in Warning.objects.filter(status=Warning.Status.ACTIVE):
        count += len(start_due_plans(warning, now=now))
    return count


# --------------------------------------------------------------------------- tasks


def may_complete(task: PlanTask, user) -> bool:
    """Staff of the task's department, or those who oversee every department."""
    if getattr(user, "is_superuser", False):
        return True
    profile = scoping.profile_of(user)
    if profile is None:
        return False
    return profile.role in OVERSEEING_ROLES or profile.department_id == task.department_id


def complete_task(task: PlanTask, user, note: str = "") -> PlanTask:
    """Mark a task done, with who did it and an optional note."""
    if not may_complete(task, user):
        raise PlanError(
            _("Only staff of %(department)s or a city leader may complete this task.")
            % {"department": task.department}
        )
    with transaction.atomic():
        done = PlanTask.objects.filter(pk=task.pk, status=PlanTask.Status.OPEN).update(
            status=PlanTask.Status.DONE, done_at=timezone.now(), done_by=user, note=note[:2000]
        )
        if not done:
            raise PlanError(_("This task is already done."))
        task.refresh_from_db()
        audit.record(
            user,
            "plan.task_done",
            task,
            detail={"plan": task.plan_id, "late": task.done_at > task.due_at, "note": note[:200]},
        )
    return task


def escalate_overdue(now: datetime | None = None) -> int:
    """Tell the department, the city leaders and the webhook about open tasks past due, once
    per task; returns how many tasks were escalated."""
    now = now or timezone.now()
    leaders = _leader_addresses()
    count = 0
    overdue = PlanTask.objects.filter(
        status=PlanTask.Status.OPEN, due_at__lt=now, escalated_at__isnull=True
    ).select_related("plan__template", "department")
    for task in overdue:
        with transaction.atomic():
            # compare-and-set: a second worker finds the task already escalated
            if not PlanTask.objects.filter(pk=task.pk, escalated_at__isnull=True).update(
                escalated_at=now
            ):
                continue
            for address in sorted(set(_department_addresses(task.department)) | set(leaders)):
                _queue(task.plan, "overdue", Delivery.Channel.EMAIL, address, task)
            if task.plan.template.webhook_url:
                webhook = task.plan.template.webhook_url
                _queue(task.plan, "overdue", Delivery.Channel.WEBHOOK, webhook, task)
            audit.record(
                "system",
                "plan.task_overdue",
                task,
                detail={"plan": task.plan_id, "due_at": task.due_at.isoformat()},
            )
        count += 1
    return count


# --------------------------------------------------------------------------- messages


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _level_name(level: int) -> str:
    return str(Level(level).label)


def payload(delivery: Delivery) -> dict:
    """The JSON a webhook receives: enough for a receiver to act without calling back."""
    plan = delivery.plan
    warning = plan.warning
    tasks = [delivery.task] if delivery.task else list(plan.tasks.select_related("department"))
    return {
        "event": f"plan.{delivery.kind}",
        "warning": {
            "id": warning.pk,
            "level": warning.level,
            "level_roman": ROMAN[warning.level],
            "title": warning.title,
            "category": warning.category,
            "status": warning.status,
        },
        "plan": {
            "id": plan.pk,
            "name": plan.template.name,
            "level": plan.level,
            "started_at": plan.started_at.isoformat(),
        },
        "tasks": [
            {
                "id": task.pk,
                "title": task.title,
                "department": task.department.code,
                "due_at": task.due_at.isoformat(),
                "status": task.status,
            }
            for task in tasks
        ],
    }


def _task_line(task: PlanTask) -> str:
    return _("- %(task)s (%(department)s): due %(due)s") % {
        "task": _one_line(task.title),
        "department": task.department,
        "due": timezone.localtime(task.due_at).strftime("%Y-%m-%d %H:%M"),
    }


def message(delivery: Delivery) -> tuple[str, str]:
    """(subject, plain-text body) of an e-mail delivery, in the site's language."""
    plan, task = delivery.plan, delivery.task
    warning = plan.warning
    with translation.override(settings.LANGUAGE_CODE):
        about = {
            "plan": _one_line(plan.template.name),
            "level": _level_name(warning.level),
            "warning": _one_line(warning.title),
        }
        if delivery.kind == "overdue":
            subject = _("Overdue task: %(task)s — %(plan)s") % {
                **about,
                "task": _one_line(task.title),
            }
            lines = [
                _("A task of the response plan “%(plan)s” is past due and not done.") % about,
                _("Warning: %(level)s %(warning)s") % about,
                "",
                _task_line(task),
            ]
        else:
            subject = _("Response plan started: %(plan)s — %(level)s %(warning)s") % about
            lines = [
                _(
                    "The response plan “%(plan)s” has started for the warning %(level)s "
                    "“%(warning)s”."
                )
                % about,
                "",
            ]
            if task is not None:
                lines.append(_("Your department's task:"))
                lines.append(_task_line(task))
            else:
                lines.append(_("Tasks:"))
                lines.extend(_task_line(t) for t in plan.tasks.select_related("department"))
        return subject, "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- sending


def _post_json(url: str, body: dict) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "CivicPulse"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:  # urllib raises for 4xx/5xx
        raise OSError(f"webhook answered HTTP {exc.code}") from None
    if not 200 <= status < 300:
        raise OSError(f"webhook answered HTTP {status}")


def _send(delivery: Delivery) -> None:
    if delivery.channel == Delivery.Channel.WEBHOOK:
        _post_json(delivery.target, payload(delivery))
        return
    from django.core.mail import EmailMessage

    subject, body = message(delivery)
    EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [delivery.target]).send()


def _shown_target(delivery: Delivery) -> str:
    """Where a delivery went, for the audit chain: a webhook's query string may hold its
    secret, so only its scheme, host and path are kept."""
    if delivery.channel == Delivery.Channel.WEBHOOK:
        from urllib.parse import urlsplit

        parts = urlsplit(delivery.target)
        return f"{parts.scheme}://{parts.hostname}{parts.path}"
    return delivery.target


def _due(now: datetime) -> Q:
    due = Q()
    for attempts, wait in enumerate(RETRY_AFTER):
        due |= Q(attempts=attempts, created_at__lte=now - wait)
    return due


def deliver_pending(limit: int = 200, *, now: datetime | None = None) -> dict:
    """Send queued deliveries and retry failed ones when their next try is due (``RETRY_AFTER``),
    oldest first.

    Each attempt is claimed by raising ``attempts`` with a compare-and-set before sending, so two
    workers never send the same row at once; a row is marked sent only after the mail server or
    the webhook accepted it. A failure keeps its error; after ``MAX_ATTEMPTS`` the row is left
    for an operator (counted as ``given_up``).
    """
    now = now or timezone.now()
    sent = failed = 0
    pending = (
        Delivery.objects.filter(_due(now), sent_at__isnull=True)
        .select_related("plan__warning", "plan__template", "task__department")
        .order_by("created_at", "pk")[:limit]
    )
    for delivery in pending:
        claimed = Delivery.objects.filter(
            pk=delivery.pk, sent_at__isnull=True, attempts=delivery.attempts
        ).update(attempts=delivery.attempts + 1)
        if not claimed:
            continue
        delivery.attempts += 1
        try:
            _send(delivery)
        except Exception as exc:  # any failure of one message is recorded, never fatal
            error = f"{type(exc).__name__}: {exc}"[:300]
            Delivery.objects.filter(pk=delivery.pk).update(error=error)
            audit.record(
                "system",
                "plan.delivery_failed",
                delivery,
                detail={"attempt": delivery.attempts, "error": error, "kind": delivery.kind},
            )
            failed += 1
            continue
        Delivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now())
        audit.record(
            "system",
            "plan.delivery_sent",
            delivery,
            detail={
                "attempt": delivery.attempts,
                "kind": delivery.kind,
                "channel": delivery.channel,
                "target": _shown_target(delivery),
            },
        )
        sent += 1
    unsent = Delivery.objects.filter(sent_at__isnull=True)
    return {
        "sent": sent,
        "failed": failed,
        "waiting": unsent.filter(attempts__lt=MAX_ATTEMPTS).count(),
        "given_up": unsent.filter(attempts__gte=MAX_ATTEMPTS).count(),
    }
