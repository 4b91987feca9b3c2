"""The catalog's staff pages: the searchable list of datasets and one dataset's page.

Who reads them: the roles that govern or use the city's data (data admins, leaders, department
staff, analysts, auditors). Residents have no staff profile and are refused; hotline operators,
grid workers and PR officers work on cases and posts, not on the data hub.

What they see: every reader sees every dataset's description, profile counts, versions and
quality (the catalog exists so departments can find each other's data and ask for it). Profile
*values* (samples, smallest and largest value) are data, so they show only to the data bureau,
the leaders and the owning department's staff, and a column tagged as personal data shows them
masked (``identity.services.mask``) even to those. Each view of a dataset page is audited.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from civicpulse.catalog import quality, search, services
from civicpulse.catalog.models import Dataset, DatasetColumn, QualityRule
from civicpulse.core import audit, scoping
from civicpulse.core.models import Department, Role
from civicpulse.identity import services as identity

READER_ROLES = {
    Role.CITY_LEADER,
    Role.DATA_ADMIN,
    Role.DEPARTMENT_STAFF,
    Role.ANALYST,
    Role.AUDITOR,
}
# Roles that see profile values of any dataset; department staff see their own department's.
VALUE_ROLES = {Role.CITY_LEADER, Role.DATA_ADMIN}
PAGE_SIZE = 20
SAMPLES_SHOWN = 5


def require_reader(user) -> str:
    """The reader's role ("superuser" for one), or PermissionDenied."""
    if getattr(user, "is_superuser", False):
        return "superuser"
    profile = scoping.profile_of(user)
    if profile is None or profile.role not in READER_ROLES:
        raise PermissionDenied("the data catalog is for the data bureau, leaders and departments")
    return profile.role


def sees_values(user, dataset: Dataset) -> bool:
    """May ``user`` read ``dataset``'s profile values (still masked where personal)?"""
    if getattr(user, "is_superuser", False):
        return True
    profile = scoping.profile_of(user)
    if profile is None:
        return False
    if profile.role in VALUE_ROLES:
        return True
    return profile.role == Role.DEPARTMENT_STAFF and profile.department_id == dataset.owner_id


# --- the list -------------------------------------------------------------------------------


def _blank(choices) -> list[tuple[str, str]]:
    return [("", _("all")), *choices]


class SearchForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Search"), required=False, max_length=200)
    department = forms.ChoiceField(label=gettext_lazy("Owner"), required=False)
    grade = forms.ChoiceField(label=gettext_lazy("Grade"), required=False)
    tag = forms.ChoiceField(label=gettext_lazy("Tag"), required=False)
    frequency = forms.ChoiceField(label=gettext_lazy("Update frequency"), required=False)
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        owners = Department.objects.filter(datasets__isnull=False).distinct().order_by("code")
        self.fields["department"].choices = _blank((d.code, d.name) for d in owners)
        self.fields["grade"].choices = _blank(Dataset.Grade.choices)
        self.fields["tag"].choices = _blank((t, t) for t in search.known_tags())
        self.fields["frequency"].choices = _blank(Dataset.Frequency.choices)


def _page_link(request: HttpRequest, page: int) -> str:
    query = request.GET.copy()
    query["page"] = str(page)
    return "?" + query.urlencode()


@login_required
@require_GET
def catalog_list(request: HttpRequest) -> HttpResponse:
    require_reader(request.user)
    form = SearchForm(request.GET or None)
    results, page, pages = None, 1, 1
    if not request.GET or form.is_valid():
        chosen = form.cleaned_data if request.GET else {}
        page = chosen.get("page") or 1
        filters = {k: chosen.get(k) or None for k in ("department", "grade", "tag", "frequency")}
        results = search.search(
            chosen.get("q", ""), **filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        pages = max(1, -(-results.total // PAGE_SIZE))
    return render(
        request,
        "catalog/catalog_list.html",
        {
            "form": form,
            "results": results,
            "page": page,
            "pages": pages,
            "previous": _page_link(request, page - 1) if page > 1 else "",
            "next": _page_link(request, page + 1) if page < pages else "",
            "fields": {
                "title": _("title"),
                "tags": _("tags"),
                "columns": _("columns"),
                "description": _("description"),
            },
        },
    )


# --- one dataset ----------------------------------------------------------------------------


def _shown(column: DatasetColumn, values: list[str], allowed: bool) -> list[str]:
    """Values as the page may show them: masked by the column's first personal tag."""
    if not allowed:
        return []
    values = [str(v) for v in values if v not in (None, "")]
    if column.personal_tags:
        kind = column.personal_tags[0]
        return [identity.mask(kind, v) for v in values]
    return values


def _columns(dataset: Dataset, allowed: bool) -> list[dict]:
    if dataset.current_version is None:
        return []
    rows = []
    for column in dataset.current_version.columns.order_by("position"):
        low_high = _shown(column, [column.min_value, column.max_value], allowed)
        rows.append(
            {
                "column": column,
                "samples": _shown(column, list(column.samples)[:SAMPLES_SHOWN], allowed),
                "range": " … ".join(low_high),
                "masked": bool(column.personal_tags),
            }
        )
    return rows


def _round(share: float | None) -> float | None:
    return None if share is None else round(share, 4)


def quality_chart(history: list[dict]) -> dict:
    """The history as the chart draws it: shares 0..1 per version, overall first."""
    dimensions = [
        d for d in QualityRule.Dimension.values if any(d in h["dimensions"] for h in history)
    ]
    labels = dict(QualityRule.Dimension.choices)
    series = [
        {"key": "overall", "name": _("overall"), "data": [_round(h["score"]) for h in history]}
    ]
    for dim in dimensions:
        series.append(
            {
                "key": dim,
                "name": str(labels[dim]),
                "data": [_round(h["dimensions"].get(dim)) for h in history],
            }
        )
    return {"versions": [f"v{h['version']}" for h in history], "series": series}


class CompareForm(forms.Form):
    old = forms.IntegerField(label=gettext_lazy("Old version"), min_value=1)
    new = forms.IntegerField(label=gettext_lazy("New version"), min_value=1)
    key = forms.CharField(
        label=gettext_lazy("Key columns (comma-separated, optional)"),
        required=False,
        max_length=500,
    )

    def key_columns(self) -> list[str]:
        return [k.strip() for k in self.cleaned_data.get("key", "").split(",") if k.strip()]


def _compare(dataset: Dataset, request: HttpRequest, versions: list) -> tuple[CompareForm, dict]:
    if "old" in request.GET or "new" in request.GET:
        form = CompareForm(request.GET)
    else:
        numbers = [v.number for v in versions]
        form = CompareForm(
            initial={
                "old": numbers[-2] if len(numbers) > 1 else None,
                "new": numbers[-1] if numbers else None,
            }
        )
    outcome: dict = {}
    if form.is_bound and form.is_valid():
        try:
            outcome["comparison"] = services.compare_versions(
                dataset, form.cleaned_data["old"], form.cleaned_data["new"], form.key_columns()
            )
        except services.CatalogError as exc:
            outcome["error"] = str(exc)
    return form, outcome


@login_required
@require_GET
def catalog_dataset(request: HttpRequest, slug: str) -> HttpResponse:
    require_reader(request.user)
    try:
        dataset = services.find(slug)
    except services.CatalogError:
        raise Http404(_("No such dataset in the catalog.")) from None
    allowed = sees_values(request.user, dataset)
    versions = list(services.versions_of(dataset).select_related("created_by"))
    history = quality.history(dataset)
    run = quality.latest_run(dataset.current_version) if dataset.current_version else None
    results = list(run.results.order_by("rule_id")) if run else []
    if not allowed:  # violation examples are the column's values: shown as samples are
        for result in results:
            result.examples = []
    compare_form, compared = _compare(dataset, request, versions)
    audit.record(
        request.user,
        "catalog.view",
        dataset,
        detail={
            "slug": dataset.slug,
            "values_shown": allowed,
            "compared": [compare_form.cleaned_data.get(k) for k in ("old", "new")]
            if compared
            else None,
        },
    )
    return render(
        request,
        "catalog/catalog_dataset.html",
        {
            "dataset": dataset,
            "versions": versions,
            "columns": _columns(dataset, allowed),
            "values_shown": allowed,
            "history": history,
            "chart": quality_chart(history),
            "run": run,
            "results": results,
            "compare_form": compare_form,
            "compared": compared,
            "lineage": services.lineage_of(dataset),
            "retention": getattr(dataset, "retention", None),
        },
    )
