"""Staff pages of open-data releases (/catalog/releases/<slug>/): a dataset's releases, the draft
form, a release's check report and its workflow buttons.

Who reads them is :func:`opendata.can_read` (data admins, city leaders, the owner department's
staff); each step is allowed or refused by :mod:`catalog.opendata` itself, so the pages and the
CLI cannot disagree. The check report shows offending combinations of quasi-identifier values
(never a direct identifier), so reading it is audited like a read of the dataset's data.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from civicpulse.catalog import opendata
from civicpulse.catalog.models import Dataset, DatasetColumn, OpenRelease
from civicpulse.core import audit

STEPS = ("approve", "publish", "withdraw")


def _dataset_for(request: HttpRequest, slug: str) -> Dataset:
    dataset = get_object_or_404(
        Dataset.objects.select_related("owner", "current_version"), slug=slug
    )
    if not opendata.can_read(request.user, dataset):
        raise PermissionDenied("open-data releases are for data admins, leaders and the owner")
    return dataset


class DraftForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    title_en = forms.CharField(
        label=gettext_lazy("Title (English)"), max_length=200, required=False
    )
    notes = forms.CharField(
        label=gettext_lazy("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    license = forms.ChoiceField(label=gettext_lazy("Licence"), choices=OpenRelease.License.choices)
    columns = forms.MultipleChoiceField(
        label=gettext_lazy("Columns to publish"), widget=forms.CheckboxSelectMultiple
    )
    quasi_identifiers = forms.MultipleChoiceField(
        label=gettext_lazy("Quasi-identifiers"),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=gettext_lazy(
            "Columns that, combined, could single out a person (area, age, date, category...)."
        ),
    )
    no_quasi_identifiers = forms.BooleanField(
        label=gettext_lazy("I declare the published columns hold no quasi-identifiers"),
        required=False,
    )
    k = forms.IntegerField(
        label=gettext_lazy("k (smallest group of rows allowed)"),
        min_value=opendata.MIN_K,
        max_value=1000,
        initial=opendata.DEFAULT_K,
    )

    def __init__(self, *args, columns: list[DatasetColumn], **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(c.name, c.name) for c in columns]
        self.fields["columns"].choices = choices
        self.fields["quasi_identifiers"].choices = choices


@login_required
def release_list(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _dataset_for(request, slug)
    releases = dataset.open_releases.select_related("version", "created_by", "approved_by")
    return render(
        request,
        "catalog/release_list.html",
        {
            "dataset": dataset,
            "releases": releases.order_by("-created_at", "-pk"),
            "can_prepare": opendata.can_prepare(request.user, dataset),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def release_new(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = _dataset_for(request, slug)
    if not opendata.can_prepare(request.user, dataset):
        raise PermissionDenied("only data admins and the owner department prepare releases")
    version = dataset.current_version
    if version is None:
        raise Http404("the dataset has no data yet")
    columns = list(version.columns.order_by("position"))
    form = DraftForm(request.POST or None, columns=columns)
    error = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            release = opendata.draft(
                dataset,
                version=version,
                columns=data["columns"],
                quasi_identifiers=data["quasi_identifiers"],
                no_quasi_identifiers=data["no_quasi_identifiers"],
                k=data["k"],
                title=data["title"],
                title_en=data["title_en"],
                notes=data["notes"],
                license=data["license"],
                user=request.user,
            )
            opendata.check(release, user=request.user)
        except opendata.ReleaseError as exc:
            error = str(exc)
        else:
            if release.status == OpenRelease.Status.REFUSED:
                messages.error(request, _("The release was refused by the check."))
            else:
                messages.success(request, _("The release passed the check; it needs approval."))
            return redirect("catalog:release", slug=slug, pk=release.pk)
    return render(
        request,
        "catalog/release_form.html",
        {"dataset": dataset, "version": version, "form": form, "columns": columns, "error": error},
    )


@login_required
def release_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    dataset = _dataset_for(request, slug)
    release = get_object_or_404(
        OpenRelease.objects.select_related("version", "created_by", "approved_by"),
        pk=pk,
        dataset=dataset,
    )
    audit.record(request.user, "catalog.open_release_viewed", release)
    report = release.check_report or {}
    user = request.user
    return render(
        request,
        "catalog/release_detail.html",
        {
            "dataset": dataset,
            "release": release,
            "report": report,
            "reasons": opendata.explain(report),
            "k_anonymity": report.get("k_anonymity"),
            "may_approve": release.status == OpenRelease.Status.CHECKED
            and release.approved_by_id is None
            and opendata.can_approve(user, release),
            "may_publish": release.status == OpenRelease.Status.CHECKED
            and release.approved_by_id is not None
            and (opendata.can_approve(user) or user.pk == release.approved_by_id),
            "may_withdraw": release.status == OpenRelease.Status.PUBLISHED
            and (opendata.can_prepare(user, dataset) or opendata.can_approve(user)),
        },
    )


@login_required
@require_POST
def release_step(request: HttpRequest, slug: str, pk: int, step: str) -> HttpResponse:
    if step not in STEPS:
        raise Http404("no such step")
    dataset = _dataset_for(request, slug)
    release = get_object_or_404(OpenRelease, pk=pk, dataset=dataset)
    try:
        if step == "approve":
            opendata.approve(release, request.user)
            messages.success(request, _("Release approved."))
        elif step == "publish":
            opendata.publish(release, request.user)
            messages.success(request, _("Release published on the portal."))
        else:
            opendata.withdraw(release, request.user, request.POST.get("reason", ""))
            messages.success(request, _("Release withdrawn from the portal."))
    except opendata.ReleaseError as exc:
        messages.error(request, str(exc))
        return redirect("catalog:release", slug=slug, pk=pk)
    return redirect("catalog:release", slug=slug, pk=pk)
