"""Pages of the one window: the staff queue, case detail, triage, the SLA board and the intake
desks; and the public report form and status page, which need no account."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from civicpulse.cases import duplicates, feedback, sla, workflow
from civicpulse.cases.forms import (
    IntakeForm,
    PublicReportForm,
    QueueFilter,
    RatingForm,
    ReasonForm,
    StepForm,
    TransferForm,
)
from civicpulse.cases.models import Case, Service
from civicpulse.cases.services import visible_cases
from civicpulse.cases.workflow import CaseError, Intake
from civicpulse.core import audit, ratelimit, scoping
from civicpulse.core.models import Area, Department, Role
from civicpulse.identity import services as identity

DESK_ROLES = {Role.HOTLINE_OPERATOR, Role.DATA_ADMIN, Role.CITY_LEADER}
# who may move, transfer, merge or re-route a case (leaders, analysts, auditors and the press
# office look but do not act)
ACTING_ROLES = {Role.HOTLINE_OPERATOR, Role.DEPARTMENT_STAFF, Role.DATA_ADMIN, "superuser"}
PUBLIC_REPORTS_PER_HOUR = 20


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "unknown")


def _role(request: HttpRequest) -> str | None:
    profile = scoping.profile_of(request.user)
    return "superuser" if request.user.is_superuser else (profile.role if profile else None)


def _staff_only(request: HttpRequest) -> None:
    if _role(request) is None:
        raise PermissionDenied("staff only")


def _may_act(request: HttpRequest) -> None:
    if _role(request) not in ACTING_ROLES:
        raise PermissionDenied("your role may look at cases but not change them")


def mask_phone(phone: str) -> str:
    return identity.mask("mobile", phone.strip())


def mask_name(name: str) -> str:
    return identity.mask("name", name) if name else ""


def _filtered(request: HttpRequest, cases):
    form = QueueFilter(request.GET or None)
    if form.is_valid():
        data = form.cleaned_data
        status = data.get("status")
        if status == "all":
            pass
        elif status:
            cases = cases.filter(status=status)
        else:
            cases = cases.filter(status__in=Case.OPEN_STATUSES)
        if data.get("service"):
            cases = cases.filter(service=data["service"])
        if data.get("area"):
            area = Area.objects.get(code=data["area"])
            cases = cases.filter(area__path__startswith=area.path)
        if data.get("channel"):
            cases = cases.filter(channel=data["channel"])
        if data.get("overdue"):
            cases = cases.filter(due_at__lt=timezone.now())
        if data.get("q"):
            q = data["q"].strip()
            cases = cases.filter(Q(tracking_no__startswith=q) | Q(title__icontains=q))
    else:
        cases = cases.filter(status__in=Case.OPEN_STATUSES)
    return form, cases


@login_required
@require_http_methods(["GET", "POST"])
def queue(request: HttpRequest) -> HttpResponse:
    """A department's work list, with filters and actions on many cases at once."""
    _staff_only(request)
    cases = visible_cases(request.user)
    if request.method == "POST":
        _may_act(request)
        action = request.POST.get("action", "")
        ids = request.POST.getlist("case")
        done, refused = 0, []
        for case in cases.filter(pk__in=[i for i in ids if i.isdigit()]):
            try:
                workflow.step(case, action, request.user)
                done += 1
            except CaseError as exc:
                refused.append(f"{case.tracking_no}: {exc}")
        messages.info(request, _("%(n)d cases updated.") % {"n": done})
        for line in refused[:10]:
            messages.warning(request, line)
        return redirect(request.get_full_path())
    form, cases = _filtered(request, cases)
    page = Paginator(
        cases.select_related("service", "department", "area").order_by("due_at", "id"), 50
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "cases/queue.html",
        {
            "form": form,
            "page": page,
            "now": timezone.now(),
            "steps": ["accept", "dispatch", "start", "resolve", "close"],
        },
    )


def _case_for(request: HttpRequest, tracking_no: str) -> Case:
    case = visible_cases(request.user).filter(tracking_no=tracking_no).first()
    if case is None:
        raise Http404("no such case in your scope")
    return case


@login_required
@require_http_methods(["GET", "POST"])
def detail(request: HttpRequest, tracking_no: str) -> HttpResponse:
    _staff_only(request)
    case = _case_for(request, tracking_no)
    if request.method == "POST":
        return _act(request, case)
    audit.record(request.user, "case.view", case)
    reporters = [
        {
            "name": mask_name(r.name),
            "phone": mask_phone(r.phone) if r.phone else "",
            "email": (r.email[:2] + "***@" + r.email.split("@")[-1]) if r.email else "",
        }
        for r in case.reporters.all()
    ]
    allowed = [a for a, (start, _to) in workflow.TRANSITIONS.items() if case.status in start]
    return render(
        request,
        "cases/detail.html",
        {
            "case": case,
            "events": case.events.select_related("department"),
            "reporters": reporters,
            "allowed": allowed,
            "suggestions": duplicates.suggest(case) if case.is_open else [],
            "transfer_form": TransferForm(),
            "reason_form": ReasonForm(),
            "map": {
                "polygon": case.area.polygon,
                "point": [case.lon, case.lat] if case.lon is not None else None,
                "name": case.area.name,
            },
        },
    )


def _act(request: HttpRequest, case: Case) -> HttpResponse:
    _may_act(request)
    kind = request.POST.get("kind")
    try:
        if kind == "step":
            form = StepForm(request.POST)
            if not form.is_valid():
                raise CaseError(_("unknown step"))
            workflow.step(
                case, form.cleaned_data["action"], request.user, note=form.cleaned_data["note"]
            )
        elif kind == "transfer":
            form = TransferForm(request.POST)
            if not form.is_valid():
                raise CaseError(_("choose a department and give a reason"))
            workflow.transfer(
                case,
                form.cleaned_data["department"],
                request.user,
                reason=form.cleaned_data["reason"],
            )
        elif kind == "return":
            form = ReasonForm(request.POST)
            if not form.is_valid():
                raise CaseError(_("give a reason"))
            workflow.send_back(case, request.user, reason=form.cleaned_data["reason"])
        elif kind == "merge":
            into = _case_for(request, request.POST.get("into", ""))
            duplicates.merge(case, into, request.user)
        else:
            raise CaseError(_("unknown action"))
    except CaseError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Saved."))
    return redirect("cases:detail", tracking_no=case.tracking_no)


@login_required
def triage(request: HttpRequest) -> HttpResponse:
    """Requests the router was not sure of, or a department sent back."""
    _staff_only(request)
    cases = visible_cases(request.user).filter(needs_triage=True, status__in=Case.OPEN_STATUSES)
    page = Paginator(
        cases.select_related("service", "department").order_by("created_at"), 50
    ).get_page(request.GET.get("page"))
    return render(request, "cases/triage.html", {"page": page, "services": Service.objects.all()})


@login_required
def sla_board(request: HttpRequest) -> HttpResponse:
    """Deadlines at a glance: per department, what is open, due soon and overdue, with the
    three rates over the last 90 days."""
    _staff_only(request)
    now = timezone.now()
    cases = visible_cases(request.user)
    open_ = cases.filter(status__in=Case.OPEN_STATUSES)
    rows = []
    counts = open_.values("department").annotate(
        open=Count("id"),
        overdue=Count("id", filter=Q(due_at__lt=now)),
        due_soon=Count("id", filter=Q(due_at__gte=now, due_at__lt=now + sla.REMIND_BEFORE)),
    )
    by_department = {row["department"]: row for row in counts}
    recent = cases.filter(created_at__gte=now - timedelta(days=90))
    for department in Department.objects.filter(pk__in=cases.values("department")).order_by("code"):
        row = by_department.get(department.pk, {"open": 0, "overdue": 0, "due_soon": 0})
        rows.append(
            {
                **sla.rates(recent.filter(department=department)),
                "open": row["open"],
                "overdue": row["overdue"],
                "due_soon": row["due_soon"],
                "department": department,
            }
        )
    districts = [
        {"area": d, **sla.rates(recent.filter(area__path__startswith=d.path))}
        for d in Area.objects.filter(level="district").order_by("code")
        if scoping.can_see_area(request.user, d)
    ]
    return render(request, "cases/sla.html", {"rows": rows, "districts": districts})


def _take(request: HttpRequest, form: IntakeForm, channel: str, actor) -> Case:
    data = form.cleaned_data
    router = None
    if data.get("service") is None:
        from civicpulse.cases import routing

        router = routing.current_router()
        if router is None:
            raise CaseError(
                _("Choose a service: the router has not been trained yet."), field="service"
            )
    return workflow.take_in(
        Intake(
            channel=channel,
            description=data["description"],
            service=data.get("service"),
            address=data.get("address") or "",
            lon=data.get("lon"),
            lat=data.get("lat"),
            reporter=form.reporter(),
        ),
        actor,
        router=router,
    )


@login_required
@require_http_methods(["GET", "POST"])
def desk(request: HttpRequest) -> HttpResponse:
    """The hotline operator's intake form."""
    if _role(request) not in {*DESK_ROLES, "superuser"}:
        raise PermissionDenied("hotline operators only")
    form = IntakeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            case = _take(request, form, "hotline", request.user)
        except CaseError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, _("Case %(no)s recorded.") % {"no": case.tracking_no})
            return redirect("cases:detail", tracking_no=case.tracking_no)
    return render(request, "cases/desk.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def grid_report(request: HttpRequest) -> HttpResponse:
    """A grid worker's report from the street, on a phone: the location comes from the phone."""
    if _role(request) not in {Role.GRID_WORKER, "superuser"}:
        raise PermissionDenied("grid workers only")
    form = IntakeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            case = _take(request, form, "grid", request.user)
        except CaseError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            return render(request, "cases/reported.html", {"case": case, "staff": True})
    return render(request, "cases/grid_report.html", {"form": form})


@require_http_methods(["GET", "POST"])
def public_report(request: HttpRequest) -> HttpResponse:
    """The residents' web form: no account, an optional photo, a limit per address."""
    form = PublicReportForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if not ratelimit.hit(
            f"report:{_client_ip(request)}", limit=PUBLIC_REPORTS_PER_HOUR, per=3600
        ):
            return render(
                request, "cases/public_report.html", {"form": form, "limited": True}, status=429
            )
        if form.is_valid():
            try:
                case = _take(request, form, "web", "resident")
            except CaseError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc))
            else:
                if form.cleaned_data.get("photo"):
                    case.photo = form.cleaned_data["photo"]
                    case.save(update_fields=["photo"])
                return render(request, "cases/reported.html", {"case": case})
    return render(request, "cases/public_report.html", {"form": form})


@require_http_methods(["GET", "POST"])
def track(request: HttpRequest, token: str) -> HttpResponse:
    """A resident's status page, reached by the secret link they were given; the rating form
    appears once the case is resolved."""
    case = get_object_or_404(Case.objects.select_related("service", "department"), token=token)
    form = RatingForm(request.POST or None)
    rated = hasattr(case, "feedback")
    if request.method == "POST" and not rated and form.is_valid():
        try:
            feedback.rate(case, form.cleaned_data["rating"], form.cleaned_data["comment"])
        except CaseError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("cases:track", token=token)
    public_steps = case.events.filter(
        action__in=[
            "created",
            "accept",
            "dispatch",
            "start",
            "resolve",
            "close",
            "reopen",
            "transferred",
            "merged",
        ]
    ).values("at", "action", "to_status")
    return render(
        request,
        "cases/track.html",
        {
            "case": case,
            "steps": public_steps,
            "form": form,
            "rated": rated,
            "can_rate": case.status in ("resolved", "closed") and not rated,
        },
    )


@login_required
@require_POST
def correct_service(request: HttpRequest, tracking_no: str) -> HttpResponse:
    """Triage: an operator sets the right service; the router learns from it."""
    _may_act(request)
    case = _case_for(request, tracking_no)
    service = get_object_or_404(Service, code=request.POST.get("service", ""))
    from civicpulse.cases import routing

    routing.correct(case, service, request.user)
    messages.success(request, _("Routing corrected."))
    return redirect("cases:triage")


@login_required
def photo(request: HttpRequest, tracking_no: str) -> HttpResponse:
    """A case's photo, for staff who may see the case (uploads have no public URL)."""
    _staff_only(request)
    case = _case_for(request, tracking_no)
    if not case.photo:
        raise Http404("this case has no photo")
    audit.record(request.user, "case.photo_view", case)
    from django.http import FileResponse

    return FileResponse(case.photo.open("rb"), content_type=_photo_type(case.photo.name))


def _photo_type(name: str) -> str:
    return {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}.get(
        name.rsplit(".", 1)[-1], "application/octet-stream"
    )
