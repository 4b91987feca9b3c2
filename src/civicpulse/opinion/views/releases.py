"""Pages of official releases: the press office's desk (list, draft, edit, the workflow steps,
corrections) behind a login, and the public list and pages, which show no one's name."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from civicpulse.core import scoping
from civicpulse.core.models import AuditEntry, Role
from civicpulse.opinion import releases
from civicpulse.opinion.models import Release, Warning
from civicpulse.opinion.releases import ReleaseError

# who may read the desk: those who write, review or sign off statements, and those who check
# the city's work; drafts are internal, so hotline, grid and department staff do not
VIEW_ROLES = {Role.CITY_LEADER, Role.PR_OFFICER, Role.ANALYST, Role.AUDITOR, Role.DATA_ADMIN}
STATUS_ORDER = [
    Release.Status.DRAFT,
    Release.Status.REJECTED,
    Release.Status.IN_REVIEW,
    Release.Status.APPROVED,
    Release.Status.PUBLISHED,
    Release.Status.SUPERSEDED,
]

# the audit chain's names of the steps, as a person reads them in the history
STEP_LABELS = {
    "release.drafted": gettext_lazy("drafted"),
    "release.correction_drafted": gettext_lazy("correction drafted"),
    "release.edited": gettext_lazy("edited"),
    "release.submitted": gettext_lazy("submitted for review"),
    "release.reviewed": gettext_lazy("reviewed and passed"),
    "release.sent_back": gettext_lazy("sent back"),
    "release.approved": gettext_lazy("approved"),
    "release.published": gettext_lazy("published"),
    "release.superseded": gettext_lazy("superseded"),
}


class ReleaseForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=releases.TITLE_MAX)
    body = forms.CharField(
        label=gettext_lazy("Statement"),
        max_length=releases.BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 14}),
        strip=False,
    )
    warning = forms.ModelChoiceField(
        label=gettext_lazy("About the warning"),
        queryset=Warning.objects.none(),
        required=False,
    )

    def __init__(self, *args, user=None, with_warning: bool = True, current=None, **kwargs):
        super().__init__(*args, **kwargs)
        if with_warning:
            # active warnings the author may see, and the one a draft is already about (it
            # may have closed since; editing must not drop it)
            active = Warning.objects.filter(status=Warning.Status.ACTIVE)
            choices = scoping.scope(active, user) | active.filter(area__isnull=True)
            if current is not None:
                choices = choices | Warning.objects.filter(pk=current.pk)
            self.fields["warning"].queryset = choices.distinct()
        else:
            del self.fields["warning"]


class CorrectionForm(ReleaseForm):
    note = forms.CharField(
        label=gettext_lazy("What was corrected"),
        max_length=releases.NOTE_MAX,
        help_text=gettext_lazy("Shown to the public next to the new version."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, with_warning=False, **kwargs)


def _may_view(request: HttpRequest) -> None:
    if not (request.user.is_superuser or releases.role_of(request.user) in VIEW_ROLES):
        raise PermissionDenied("only the press office, leaders, analysts and auditors")


def _refused(exc: ReleaseError) -> PermissionDenied:
    return PermissionDenied(str(exc))


@login_required
def release_list(request: HttpRequest) -> HttpResponse:
    """Every release by its status, the newest first; ``?status=`` narrows to one."""
    _may_view(request)
    status = request.GET.get("status", "")
    rows = Release.objects.select_related("warning").order_by("-created_at", "-pk")
    if status:
        if status not in Release.Status.values:
            raise Http404("unknown status")
        rows = rows.filter(status=status)
    counts = dict(Release.objects.values_list("status").annotate(n=Count("id")))
    tabs = [(s, Release.Status(s).label, counts.get(s, 0)) for s in STATUS_ORDER]
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    try:
        releases.check_draft(request.user)
        may_draft = True
    except ReleaseError:
        may_draft = False
    return render(
        request,
        "opinion/release_list.html",
        {"page": page, "tabs": tabs, "status": status, "may_draft": may_draft},
    )


@login_required
@require_http_methods(["GET", "POST"])
def release_new(request: HttpRequest) -> HttpResponse:
    _may_view(request)
    try:
        releases.check_draft(request.user)
    except ReleaseError as exc:
        raise _refused(exc) from None
    form = ReleaseForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            release = releases.draft(request.user, data["title"], data["body"], data["warning"])
        except ReleaseError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, _("Draft saved."))
            return redirect("releases:detail", pk=release.pk)
    return render(request, "opinion/release_form.html", {"form": form, "mode": "new"})


@login_required
@require_http_methods(["GET", "POST"])
def release_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _may_view(request)
    release = get_object_or_404(Release, pk=pk)
    try:
        releases.check_edit(release, request.user)
    except ReleaseError as exc:
        raise _refused(exc) from None
    initial = {"title": release.title, "body": release.body, "warning": release.warning}
    form = ReleaseForm(
        request.POST or None,
        initial=initial,
        user=request.user,
        with_warning=release.version == 1,
        current=release.warning,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            releases.edit(
                release,
                request.user,
                data["title"],
                data["body"],
                data.get("warning", releases.KEEP),
            )
        except ReleaseError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, _("Draft saved."))
            return redirect("releases:detail", pk=release.pk)
    return render(
        request, "opinion/release_form.html", {"form": form, "mode": "edit", "release": release}
    )


@login_required
@require_http_methods(["GET", "POST"])
def release_correct(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a correction: a new version of a published release, as a draft."""
    _may_view(request)
    release = get_object_or_404(Release, pk=pk)
    try:
        releases.check_correct(release, request.user)
    except ReleaseError as exc:
        raise _refused(exc) from None
    form = CorrectionForm(
        request.POST or None, initial={"title": release.title, "body": release.body}
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            correction = releases.correct(
                release, request.user, data["title"], data["body"], data["note"]
            )
        except ReleaseError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(
                request, _("Correction drafted as version %(v)d.") % {"v": correction.version}
            )
            return redirect("releases:detail", pk=correction.pk)
    return render(
        request,
        "opinion/release_form.html",
        {"form": form, "mode": "correct", "release": release},
    )


def _step(request: HttpRequest, release: Release) -> HttpResponse:
    action = request.POST.get("action", "")
    note = request.POST.get("note", "")
    user = request.user
    steps = {
        "submit": lambda: releases.submit(release, user),
        "pass": lambda: releases.review(release, user, True, note),
        "send_back": lambda: releases.review(release, user, False, note),
        "approve": lambda: releases.approve(release, user),
        "publish": lambda: releases.publish(release, user),
    }
    if action not in steps:
        messages.error(request, _("Unknown step."))
    else:
        try:
            steps[action]()
        except ReleaseError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Saved."))
    return redirect("releases:detail", pk=release.pk)


@login_required
@require_http_methods(["GET", "POST"])
def release_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One version: its text, the steps the viewer may take, and the history of its series."""
    _may_view(request)
    release = get_object_or_404(
        Release.objects.select_related("warning", "author", "reviewer", "approver", "publisher"),
        pk=pk,
    )
    if request.method == "POST":
        return _step(request, release)
    series = list(
        Release.objects.filter(series=release.series)
        .select_related("author", "reviewer", "approver")
        .order_by("-version")
    )
    history = AuditEntry.objects.filter(
        object_type=Release._meta.label_lower,
        object_id__in=[str(r.pk) for r in series],
        action__startswith="release.",
    ).order_by("seq")
    version_of = {str(r.pk): r.version for r in series}
    return render(
        request,
        "opinion/release_detail.html",
        {
            "release": release,
            "allowed": releases.allowed_actions(release, request.user),
            "series": series,
            "history": [
                (e, version_of.get(e.object_id), STEP_LABELS.get(e.action, e.action))
                for e in history
            ],
            "level": releases.warning_level(release),
            "leader_only": releases.warning_level(release) in releases.LEADER_ONLY_LEVELS,
        },
    )


# --------------------------------------------------------------------------- public


def public_list(request: HttpRequest) -> HttpResponse:
    """Published statements, newest first; no login, no names."""
    page = Paginator(releases.public_releases(), 20).get_page(request.GET.get("page"))
    return render(
        request,
        "opinion/public_list.html",
        {"page": page, "speaker": releases.PUBLIC_SPEAKER},
    )


def public_detail(request: HttpRequest, series) -> HttpResponse:
    """A statement as published now, with its earlier versions and what each correction
    changed; drafts and corrections under way are never shown."""
    versions = releases.public_versions(series)
    if not versions:
        raise Http404("no published release in this series")
    current = next((v for v in versions if v.status == Release.Status.PUBLISHED), versions[0])
    return render(
        request,
        "opinion/public_detail.html",
        {
            "current": current,
            "earlier": [v for v in versions if v.pk != current.pk],
            "speaker": releases.PUBLIC_SPEAKER,
        },
    )
