"""The departments' page of response-plan tasks: what each department has to do about the
city's warnings, by when, and what it has done.

A member of a department sees the tasks of their department, whatever area the warning is
about, because the plan gave the task to the department. The city-wide roles of the desk see
every department's tasks and may narrow them to one. Who may mark a task done is decided by
:func:`civicpulse.opinion.plans.may_complete` alone, and completing goes through
:func:`~civicpulse.opinion.plans.complete_task`, which also writes it to the audit chain.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from civicpulse.core import audit, scoping
from civicpulse.core.models import Department, Role
from civicpulse.opinion import plans
from civicpulse.opinion.models import PlanTask
from civicpulse.opinion.views.watch import SEE_ALL_ROLES, _page, visible_warnings

DONE_PER_PAGE = 50
NOTE_MAX = 2000  # what complete_task keeps


class TaskDoneForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Note"),
        required=False,
        max_length=NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("What was done, for the record (optional)."),
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)


# --- who sees what -----------------------------------------------------------------------------


def visible_tasks(user) -> QuerySet[PlanTask]:
    """The tasks a user's page lists: every department's for the desk's city-wide roles, their
    own department's for department staff; PermissionDenied for anyone else."""
    tasks = PlanTask.objects.select_related(
        "plan__warning", "plan__template", "department", "done_by"
    )
    if getattr(user, "is_superuser", False):
        return tasks
    profile = scoping.profile_of(user)
    if profile is None:
        raise PermissionDenied("response-plan tasks are for departments and city-wide roles")
    if profile.role in SEE_ALL_ROLES:
        return tasks
    if profile.role == Role.DEPARTMENT_STAFF:
        if profile.department_id is None:
            raise PermissionDenied("you belong to no department yet")
        return tasks.filter(department_id=profile.department_id)
    raise PermissionDenied("response-plan tasks are for departments and city-wide roles")


def _sees_all_departments(user) -> bool:
    if getattr(user, "is_superuser", False):
        return True
    profile = scoping.profile_of(user)
    return profile is not None and profile.role in SEE_ALL_ROLES


def _chosen_department(request: HttpRequest, everyone: bool) -> Department | None:
    code = request.GET.get("department", "").strip()
    if not code or not everyone:
        return None  # department staff see their own department whatever the address says
    department = Department.objects.filter(code=code).first()
    if department is None:
        raise Http404(f"no department has the code {code}")
    return department


def _chosen_warning(request: HttpRequest) -> int | None:
    value = request.GET.get("warning", "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise Http404("a warning is named by its number")
    return int(value)


def _annotate(tasks: list[PlanTask], user, now) -> None:
    """Add what the template shows of each task: overdue, may it be completed here, and the
    warning's page when the user may open it (department staff do not read warnings outside
    their areas, though the task is theirs)."""
    warning_ids = {t.plan.warning_id for t in tasks}
    readable = set(visible_warnings(user).filter(pk__in=warning_ids).values_list("pk", flat=True))
    for task in tasks:
        task.overdue = task.status == PlanTask.Status.OPEN and task.due_at < now
        task.late = task.done_at is not None and task.done_at > task.due_at
        task.completable = task.status == PlanTask.Status.OPEN and plans.may_complete(task, user)
        task.warning_url = (
            reverse("opinion:warning", args=[task.plan.warning_id])
            if task.plan.warning_id in readable
            else ""
        )


def _back_to(request: HttpRequest, target: str) -> str:
    """The task list the user came from (with its filters), never another site."""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("opinion:tasks")


# --- the pages ---------------------------------------------------------------------------------


@login_required
@require_GET
def my_tasks(request: HttpRequest) -> HttpResponse:
    """Open tasks first, soonest due first, overdue ones marked; then the tasks done, latest
    first, with who did them, when and their note."""
    tasks = visible_tasks(request.user)
    everyone = _sees_all_departments(request.user)
    department = _chosen_department(request, everyone)
    warning_id = _chosen_warning(request)
    if department is not None:
        tasks = tasks.filter(department=department)
    if warning_id is not None:
        tasks = tasks.filter(plan__warning_id=warning_id)
    now = timezone.now()
    open_tasks = list(tasks.filter(status=PlanTask.Status.OPEN).order_by("due_at", "pk"))
    done = Paginator(
        tasks.filter(status=PlanTask.Status.DONE).order_by("-done_at", "-pk"), DONE_PER_PAGE
    ).get_page(request.GET.get("page"))
    _annotate([*open_tasks, *done], request.user, now)
    profile = scoping.profile_of(request.user)
    audit.record(
        request.user,
        "opinion.tasks",
        department or (None if everyone else getattr(profile, "department", None)),
        detail={"warning": warning_id, "open": len(open_tasks), "done": done.paginator.count},
    )
    query = request.GET.copy()
    query.pop("page", None)
    return _page(
        request,
        "opinion/tasks.html",
        {
            "open_tasks": open_tasks,
            "overdue": sum(t.overdue for t in open_tasks),
            "done": done,
            "everyone": everyone,
            "departments": Department.objects.order_by("code") if everyone else [],
            "department": department,
            "own_department": None if everyone else getattr(profile, "department", None),
            "warning_id": warning_id,
            "query": query.urlencode(),
            "back": request.get_full_path(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def complete(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one task done, with a note. Only where ``plans.may_complete`` allows (403 for
    anyone else, before anything is read from the form); ``complete_task`` audits it."""
    task = get_object_or_404(
        PlanTask.objects.select_related("plan__warning", "plan__template", "department"), pk=pk
    )
    if not plans.may_complete(task, request.user):
        raise PermissionDenied(
            _("Only staff of %(department)s or a city leader may complete this task.")
            % {"department": task.department}
        )
    form = TaskDoneForm(request.POST or None, initial={"next": request.GET.get("next", "")})
    if request.method == "POST" and form.is_valid():
        back = _back_to(request, form.cleaned_data["next"])
        try:
            plans.complete_task(task, request.user, form.cleaned_data["note"])
        except plans.PlanError as exc:  # someone else completed it a moment ago
            messages.warning(request, str(exc))
        else:
            messages.success(request, _("Task done: %(task)s") % {"task": task.title})
        return redirect(back)
    _annotate([task], request.user, timezone.now())
    status = 400 if form.errors else 200
    return _page(request, "opinion/task_form.html", {"task": task, "form": form}, status)
