"""The opinion desk's history search: a saved rule or a rule typed now, run over the posts of a
period (:mod:`civicpulse.opinion.search`), scoped to the reader's areas like the other desk
pages and written to the audit chain with the query text."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from civicpulse.core import audit, scoping
from civicpulse.core.models import Area
from civicpulse.opinion import search as history
from civicpulse.opinion.models import Rule, Source
from civicpulse.opinion.views.watch import lake_scope, releases_home, require_reader, safe_link
from civicpulse.text.rules import MAX_QUERY_LENGTH, RuleSyntaxError

PAGE_SIZE = 50
DEFAULT_DAYS = 30


class SearchForm(forms.Form):
    q = forms.CharField(
        label=gettext_lazy("Query"),
        required=False,
        strip=False,  # an error's position counts from the first character typed
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
    )
    rule = forms.ModelChoiceField(
        label=gettext_lazy("Saved rule"),
        required=False,
        queryset=Rule.objects.none(),
        empty_label=gettext_lazy("(type a query)"),
    )
    since = forms.DateField(
        label=gettext_lazy("From"),
        required=False,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
    )
    until = forms.DateField(
        label=gettext_lazy("Up to"),
        required=False,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
    )
    source = forms.ChoiceField(label=gettext_lazy("Source"), required=False)
    hide_copies = forms.BooleanField(label=gettext_lazy("Hide copies"), required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=10_000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rule"].queryset = Rule.objects.filter(is_active=True).select_related("concern")
        names = list(Source.objects.values_list("name", flat=True))
        self.fields["source"].choices = [("", _("all sources"))] + [(n, n) for n in names]

    def clean(self):
        data = super().clean()
        text, rule = data.get("q") or "", data.get("rule")
        if len(text) > MAX_QUERY_LENGTH * 2:  # the parser names the limit; refuse floods here
            raise forms.ValidationError(_("The query is far too long."))
        if not text.strip() and rule is not None:
            data["q"] = rule.query
        until = data.get("until") or timezone.localdate()
        data["until"] = until
        data["since"] = data.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
        return data


def _page_link(request: HttpRequest, page: int) -> str:
    query = request.GET.copy()
    query["page"] = str(page)
    return "?" + urlencode(sorted(query.items()))


@login_required
@require_GET
def search_posts(request: HttpRequest) -> HttpResponse:
    """A saved or typed rule over the posts of a period, newest first, with posts per day."""
    require_reader(request.user)
    form = SearchForm(request.GET or None)
    context = {
        "form": form,
        "result": None,
        "syntax_error": None,
        "max_days": history.MAX_DAYS,
        "releases_url": releases_home(request.user),
    }
    if not request.GET:
        return render(request, "opinion/search.html", context)
    if not form.is_valid():
        return render(request, "opinion/search.html", context, status=400)
    data = form.cleaned_data
    text, rule = data["q"], data["rule"]
    if not text.strip():
        form.add_error("q", _("Type a query or choose a saved rule."))
        return render(request, "opinion/search.html", context, status=400)
    page = data["page"] or 1
    scope = lake_scope(request.user)
    try:
        result = history.search(
            text,
            since=data["since"],
            until=data["until"],
            area_codes=scope,
            source=data["source"],
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
            copies=not data["hide_copies"],
        )
    except RuleSyntaxError as exc:
        context["syntax_error"] = {
            "message": exc.message,
            "position": exc.position,
            "pointer": str(exc)[len(exc.message) + 1 :],  # the query with a caret under it
        }
        return render(request, "opinion/search.html", context, status=400)
    except history.SearchError as exc:
        form.add_error(None, str(exc))
        return render(request, "opinion/search.html", context, status=400)
    audit.record(
        request.user,
        "opinion.search",
        scoping.home_area(request.user),
        detail={
            "query": text,
            "rule": rule.pk if rule is not None and rule.query == text else None,
            "since": data["since"].isoformat(),
            "until": data["until"].isoformat(),
            "source": data["source"],
            "areas": scope,
            "matched": result.matched,
        },
    )
    pages = max(1, -(-result.total // PAGE_SIZE))
    codes = {h.district_code for h in result.hits}
    names = {a.code: a.name for a in Area.objects.filter(code__in=codes)}
    hits = [
        {"hit": h, "link": safe_link(h.url), "district": names.get(h.district_code, "")}
        for h in result.hits
    ]
    chart = {
        "days": result.days,
        "posts": result.per_day,
        "voices": result.voices_per_day,
        "negative_share": [
            round(100 * n / p, 1) if p else None
            for n, p in zip(result.negative_per_day, result.per_day, strict=True)
        ],
        "labels": {
            "posts": _("Matching posts"),
            "voices": _("Voices (originals)"),
            "negative_share": _("Negative share (%)"),
        },
    }
    context.update(
        result=result,
        hits=hits,
        chart=chart,
        page=page,
        pages=pages,
        previous_link=_page_link(request, page - 1) if page > 1 else "",
        next_link=_page_link(request, page + 1) if page < pages else "",
    )
    return render(request, "opinion/search.html", context)
