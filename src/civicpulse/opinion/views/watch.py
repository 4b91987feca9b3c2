"""The opinion desk's staff pages: live issues, the sentiment trend, warnings on the area map and
one warning's evidence.

The pages read the store for the workflow objects (issues, warnings, plans) and the lake only for
counts, each one DuckDB aggregation over the day partitions it needs. Who sees what is decided here
once (:func:`visible_warnings`, :func:`visible_issues`, :func:`lake_scope`), so that the four pages
cannot disagree: the city-wide roles see the whole city, department staff what lies within their
areas, and the hotline and grid roles do not read the desk at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from civicpulse.core import audit, scoping
from civicpulse.core.models import Area, Role
from civicpulse.opinion import posts
from civicpulse.opinion import watch as watching
from civicpulse.opinion.models import (
    LEVEL_COLOURS,
    Issue,
    Level,
    PlanTask,
    Release,
    Source,
    Warning,
)

# Roles that read the whole desk, warnings about the city as a whole (no area) included.
SEE_ALL_ROLES = {Role.CITY_LEADER, Role.DATA_ADMIN, Role.PR_OFFICER, Role.ANALYST, Role.AUDITOR}
# Department staff read what lies within their areas; hotline operators and grid workers work on
# cases, and the desk is not theirs.
READER_ROLES = SEE_ALL_ROLES | {Role.DEPARTMENT_STAFF}

LIVE = timedelta(days=3)  # as long as issues.KEEP_ALIVE: a quieter issue is not matched again
HOT_ISSUES = 30
RECENT = timedelta(hours=24)
TREND_DAYS = (30, 90, 180, 365)
DEFAULT_DAYS = 90
CLOSED_SHOWN = 20
EVIDENCE_SHOWN = 20
NO_WARNING_COLOUR = "#e3e8ee"
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}

INDICATORS = {  # the indicator system's names, in the order a reader weighs them
    "volume": gettext_lazy("Posts and requests in the window"),
    "growth": gettext_lazy("Growth on the window before"),
    "negative_share": gettext_lazy("Share of negative posts"),
    "reach": gettext_lazy("Reach"),
    "spread_speed": gettext_lazy("Posts in the last hour"),
    "sensitive": gettext_lazy("Sensitive terms (weight)"),
    "breadth": gettext_lazy("Districts touched"),
    "open_cases": gettext_lazy("Open citizen requests"),
    "burst_score": gettext_lazy("Burst score"),
}
SUMMARY = ("volume", "growth", "negative_share", "reach")
_COUNTS = {"volume", "reach", "spread_speed", "breadth", "open_cases"}


# --- who sees what -----------------------------------------------------------------------------


def role_of(user) -> str | None:
    if getattr(user, "is_superuser", False):
        return "superuser"
    profile = scoping.profile_of(user)
    return profile.role if profile else None


def require_reader(user) -> str:
    """The reader's role, or PermissionDenied for roles the desk is not for."""
    role = role_of(user)
    if role != "superuser" and role not in READER_ROLES:
        raise PermissionDenied("the opinion desk is for leaders, analysts, PR and departments")
    return role


def _sees_city_wide(user) -> bool:
    return role_of(user) in SEE_ALL_ROLES | {"superuser"}


def _within_scope(queryset: QuerySet, user) -> QuerySet:
    """Rows whose area lies within the user's scope. A row without an area is about the whole
    city: only the city-wide roles see it, whatever areas they were given."""
    paths = scoping.area_paths(user)
    city_wide = _sees_city_wide(user)
    if paths is None:
        return queryset if city_wide else queryset.filter(area__isnull=False)
    condition = Q(area__isnull=True) if city_wide else Q(pk__in=[])
    for path in paths:
        condition |= Q(area__path__startswith=path)
    return queryset.filter(condition)


def visible_warnings(user) -> QuerySet[Warning]:
    return _within_scope(Warning.objects.all(), user)


def visible_issues(user) -> QuerySet[Issue]:
    return _within_scope(Issue.objects.all(), user)


def lake_scope(user) -> list[str] | None:
    """The area codes a user's counts over posts are limited to; ``None`` is the whole city."""
    paths = scoping.area_paths(user)
    if paths is None:
        return None
    return [p.strip("/").split("/")[-1] for p in paths]


# --- counts over the lake ----------------------------------------------------------------------


def _negative_threshold() -> float:
    # read when counting, not at import: the sentiment module is the one place it is set
    from civicpulse.text.sentiment import NEGATIVE

    return float(NEGATIVE)


@dataclass(frozen=True)
class Trend:
    """Daily figures of posts, oldest day first."""

    days: list[str]
    posts: list[int]
    voices: list[int]  # originals: the posts that are not a near copy of another
    negative: list[int]

    @property
    def negative_share(self) -> list[float | None]:
        return [
            round(n / p, 4) if p else None for n, p in zip(self.negative, self.posts, strict=True)
        ]

    @property
    def total(self) -> int:
        return sum(self.posts)

    @property
    def total_negative_share(self) -> float | None:
        return sum(self.negative) / self.total if self.total else None


def trend(
    days: int = DEFAULT_DAYS,
    *,
    end: date | None = None,
    source: str = "",
    area_codes: Sequence[str] | None = None,
) -> Trend:
    """Posts, voices and negative posts per local day for the ``days`` days up to ``end``
    (today by default), from one aggregation over those days' partitions; a day without posts
    counts 0. ``area_codes`` limits the count to posts placed within those areas."""
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    end = end or timezone.localdate()
    wanted = [(end - timedelta(days=k)).isoformat() for k in range(days - 1, -1, -1)]
    where, params = posts.filters(source, area_codes)
    rows = posts.query(
        wanted,
        "SELECT day, count(*), count_if(duplicate_of = ''), count_if(sentiment < $negative) "
        f"FROM posts WHERE true{where} GROUP BY day",
        {"negative": _negative_threshold(), **params},
    )
    found = {d: (int(p), int(v), int(n)) for d, p, v, n in rows}
    zero = (0, 0, 0)
    return Trend(
        days=wanted,
        posts=[found.get(d, zero)[0] for d in wanted],
        voices=[found.get(d, zero)[1] for d in wanted],
        negative=[found.get(d, zero)[2] for d in wanted],
    )


def recent_posts(
    since: datetime, until: datetime, *, area_codes: Sequence[str] | None = None
) -> tuple[int, int]:
    """(posts, negative posts) created in [since, until)."""
    where, params = posts.filters("", area_codes)
    ((total, negative),) = posts.query(
        watching.days_between(since, until),
        "SELECT count(*), count_if(sentiment < $negative) FROM posts "
        f"WHERE created_at >= $since AND created_at < $until{where}",
        {"negative": _negative_threshold(), "since": since, "until": until, **params},
    )
    return int(total), int(negative)


# --- how figures are shown ---------------------------------------------------------------------


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def show(indicator: str, value) -> str:
    """An indicator's value as a reader expects it: a share in per cent, growth as a factor."""
    number = _number(value)
    if number is None:
        return "—" if value is None or value == "" else str(value)
    if indicator == "negative_share":
        return f"{number:.0%}"
    if indicator == "growth":
        return f"×{number:.1f}"
    if indicator in _COUNTS:
        return f"{number:,.0f}"
    return f"{number:.2f}"


def level_name(level) -> str:
    return str(Level(level).label) if level in Level.values else "—"


def _summary(indicators) -> list[tuple[str, str]]:
    if not isinstance(indicators, dict):
        return []
    return [(str(INDICATORS[k]), show(k, indicators[k])) for k in SUMMARY if k in indicators]


def _reason_rows(reasons) -> list[dict]:
    """Reasons as the indicator system wrote them; keys a version did not write show as "—"."""
    rows = []
    for reason in reasons if isinstance(reasons, list) else []:
        if not isinstance(reason, dict):
            continue
        indicator = str(reason.get("indicator") or "")
        level = reason.get("level")
        met = reason.get("met")
        rows.append(
            {
                "indicator": indicator,
                "value": show(indicator, reason.get("value")),
                "threshold": show(indicator, reason.get("threshold")),
                "level": level if level in Level.values else None,
                "level_name": level_name(level),
                "colour": LEVEL_COLOURS.get(level, ""),
                "met": met if isinstance(met, bool) else None,
                "text": str(reason.get("text") or ""),
            }
        )
    return rows


def indicator_rows(warning: Warning) -> list[dict]:
    """Each indicator with its current value and the reasons that name it; reasons naming no
    indicator come last, under no name."""
    values = warning.indicators if isinstance(warning.indicators, dict) else {}
    reasons = _reason_rows(warning.reasons)
    keys = [k for k in INDICATORS if k in values]
    keys += [k for k in values if k not in INDICATORS]
    keys += [r["indicator"] for r in reasons if r["indicator"] and r["indicator"] not in keys]
    keys = list(dict.fromkeys(keys))
    rows = [
        {
            "key": key,
            "label": str(INDICATORS.get(key, key)),
            "value": show(key, values.get(key)),
            "reasons": [r for r in reasons if r["indicator"] == key],
        }
        for key in keys
    ]
    loose = [r for r in reasons if not r["indicator"]]
    if loose:
        rows.append({"key": "", "label": "—", "value": "—", "reasons": loose})
    return rows


def safe_link(url: str) -> str:
    """A post's address if it is a web address; anything else (``javascript:``, ``data:``) is
    not made a link, since the address comes from the post's source."""
    url = (url or "").strip()
    return url if url.lower().startswith(("http://", "https://")) else ""


def _url(name: str, *args) -> str:
    """The address of a page of another part of the desk, or "" when it is not installed."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def releases_home(user) -> str:
    """The releases desk, for the roles it lets in (drafts are internal to the press office,
    leaders, analysts and auditors)."""
    return _url("releases:list") if _sees_city_wide(user) else ""


def releases_about(warning: Warning, user) -> list[Release]:
    """Statements about a warning, each with ``link``: the desk's page for those who read the
    desk, else only the published ones, linked to their public page."""
    rows = warning.releases.exclude(status=Release.Status.SUPERSEDED).order_by("-created_at")
    if _sees_city_wide(user):
        found = list(rows)
        for release in found:
            release.link = _url("releases:detail", release.pk)
    else:
        found = list(rows.filter(status=Release.Status.PUBLISHED))
        for release in found:
            release.link = _url("releases:public_detail", release.series)
    return found


def _page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    context = {**context, "releases_url": releases_home(request.user)}
    return render(request, template, context, status=status)


def _local(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%m-%d %H:%M")


# --- the pages ---------------------------------------------------------------------------------


@login_required
@require_GET
def issues(request: HttpRequest) -> HttpResponse:
    """Live issues: what the city talks about now, hottest first, with the warnings they raised."""
    require_reader(request.user)
    now = timezone.now()
    active = visible_warnings(request.user).filter(status=Warning.Status.ACTIVE)
    hot = list(
        visible_issues(request.user)
        .filter(last_seen__gte=now - LIVE)
        .select_related("area")
        .prefetch_related(
            Prefetch(
                "warnings",
                queryset=active.select_related("area").order_by("level", "-updated_at"),
                to_attr="active_warnings",
            )
        )
        .order_by("-heat", "pk")[:HOT_ISSUES]
    )
    codes = {c for issue in hot for c in (issue.areas or []) if isinstance(c, str)}
    names = {a.code: a.name for a in Area.objects.filter(code__in=codes)}
    for issue in hot:
        issue.district_names = [names.get(c, c) for c in issue.areas or [] if isinstance(c, str)]
    others = list(
        active.exclude(issue__in=[i.pk for i in hot])
        .select_related("area")
        .order_by("level", "-updated_at")[:20]
    )
    for warning in others:
        warning.summary = _summary(warning.indicators)
    by_level = dict(active.values_list("level").annotate(n=Count("pk")).order_by())
    total, negative = recent_posts(now - RECENT, now, area_codes=lake_scope(request.user))
    kpis = {
        "posts": total,
        "negative_share": negative / total if total else None,
        "levels": [
            {"level": v, "roman": ROMAN[v], "name": str(label), "colour": LEVEL_COLOURS[v],
             "count": by_level.get(v, 0)}
            for v, label in Level.choices
        ],
    }
    audit.record(request.user, "opinion.issues", scoping.home_area(request.user))
    return _page(
        request, "opinion/watch_issues.html", {"issues": hot, "others": others, "kpis": kpis}
    )


class TrendFilter(forms.Form):
    days = forms.TypedChoiceField(
        label=gettext_lazy("Days"), coerce=int, required=False,
        choices=[(d, d) for d in TREND_DAYS],
    )
    source = forms.ChoiceField(label=gettext_lazy("Source"), required=False)
    end = forms.DateField(
        label=gettext_lazy("Up to"), required=False,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = list(Source.objects.values_list("name", flat=True))
        self.fields["source"].choices = [("", _("all sources"))] + [(n, n) for n in names]

    def clean_end(self):
        end = self.cleaned_data.get("end")
        if end and end > timezone.localdate():
            raise forms.ValidationError(_("The last day cannot be in the future."))
        return end


@login_required
@require_GET
def sentiment_trend(request: HttpRequest) -> HttpResponse:
    """Posts per day and the share of them that are negative, over the last months."""
    require_reader(request.user)
    query = request.GET.copy()
    query.setdefault("days", str(DEFAULT_DAYS))
    form = TrendFilter(query)
    if not form.is_valid():
        return _page(request, "opinion/watch_trend.html", {"form": form, "figures": None}, 400)
    days = form.cleaned_data["days"] or DEFAULT_DAYS
    source = form.cleaned_data["source"]
    end = form.cleaned_data["end"] or timezone.localdate()
    figures = trend(days, end=end, source=source, area_codes=lake_scope(request.user))
    chart = {
        "days": figures.days,
        "posts": figures.posts,
        "voices": figures.voices,
        "negative_share": [
            round(100 * n / p, 1) if p else None
            for n, p in zip(figures.negative, figures.posts, strict=True)
        ],
        "labels": {
            "posts": _("Posts"),
            "voices": _("Voices (originals)"),
            "negative_share": _("Negative share (%)"),
        },
    }
    audit.record(
        request.user, "opinion.trend", scoping.home_area(request.user),
        detail={"days": days, "source": source, "end": end.isoformat()},
    )
    rows = list(
        zip(figures.days, figures.posts, figures.voices, figures.negative_share, strict=True)
    )
    return _page(
        request,
        "opinion/watch_trend.html",
        {"form": form, "figures": figures, "rows": rows[::-1], "chart": chart, "days": days,
         "source": source, "end": end},
    )


def _area_filter(request: HttpRequest) -> Area | None:
    code = request.GET.get("area", "").strip()
    if not code:
        return None
    if not code.isdigit() or len(code) > 15:
        raise Http404("an area code is 6 to 15 digits")
    area = Area.objects.filter(code=code).first()
    if area is None:
        raise Http404(f"no area has the code {code}")
    return area


@login_required
@require_GET
def warning_map(request: HttpRequest) -> HttpResponse:
    """The city's districts coloured by their most severe active warning, and the warnings."""
    require_reader(request.user)
    city = Area.objects.filter(level=Area.Level.CITY).order_by("code").first()
    if city is None:
        raise Http404("no city has been set up yet: run `civicpulse demo` or import areas")
    chosen = _area_filter(request)
    seen = visible_warnings(request.user).select_related("area", "issue")
    active = list(seen.filter(status=Warning.Status.ACTIVE).order_by("level", "-updated_at"))
    districts = []
    for district in city.children.filter(level=Area.Level.DISTRICT).order_by("code"):
        inside = [w for w in active if w.area_id and w.area.path.startswith(district.path)]
        worst = min((w.level for w in inside), default=None)
        districts.append(
            {
                "code": district.code,
                "name": district.name,
                "polygon": district.polygon,
                "level": worst,
                "level_name": level_name(worst) if worst else _("no active warning"),
                "colour": LEVEL_COLOURS[worst] if worst else NO_WARNING_COLOUR,
                "warnings": len(inside),
            }
        )
    closed = seen.filter(status=Warning.Status.CLOSED).order_by("-closed_at", "-pk")
    if chosen is not None:
        active = [w for w in active if w.area_id and w.area.path.startswith(chosen.path)]
        closed = closed.filter(area__path__startswith=chosen.path)
    closed = list(closed[:CLOSED_SHOWN])
    for warning in [*active, *closed]:
        warning.summary = _summary(warning.indicators)
        warning.peak_colour = LEVEL_COLOURS[warning.peak_level]
    chart = {
        "city": {"code": city.code, "name": city.name},
        "districts": districts,
        "legend": [
            {"level": v, "name": str(name), "colour": LEVEL_COLOURS[v]}
            for v, name in Level.choices
        ],
        "labels": {"warnings": _("Active warnings"), "level": _("Most severe")},
    }
    audit.record(request.user, "opinion.map", chosen or city)
    return _page(
        request,
        "opinion/watch_map.html",
        {"city": city, "chosen": chosen, "districts": districts, "active": active,
         "closed": closed, "chart": chart},
    )


def _history_chart(changes: list) -> dict:
    keys = [k for k in INDICATORS if any(k in (c.indicators or {}) for c in changes)]
    keys += list(
        dict.fromkeys(
            k for c in changes for k in (c.indicators or {}) if k not in INDICATORS
        )
    )
    return {
        "at": [_local(c.at) for c in changes],
        "series": [
            {
                "key": key,
                "name": str(INDICATORS.get(key, key)),
                "values": [_number((c.indicators or {}).get(key)) for c in changes],
            }
            for key in keys
        ],
        "levels": [c.to_level if c.to_level in Level.values else None for c in changes],
        "roman": ROMAN,
        "colours": LEVEL_COLOURS,
        "labels": {"closed": _("closed"), "level": _("Level")},
    }


@login_required
@require_GET
def warning_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One warning's evidence: why it has its level, how it got there, what is being done."""
    require_reader(request.user)
    warning = (
        visible_warnings(request.user).select_related("area", "issue").filter(pk=pk).first()
    )
    if warning is None:
        raise Http404("no such warning in your scope")
    now = timezone.now()
    changes = list(warning.changes.order_by("at", "pk"))
    steps = [
        {
            "at": c.at,
            "from": level_name(c.from_level) if c.from_level else _("(opened)"),
            "to": level_name(c.to_level) if c.to_level else _("(closed)"),
            "to_level": c.to_level,
            "colour": LEVEL_COLOURS.get(c.to_level, NO_WARNING_COLOUR),
            "summary": _summary(c.indicators),
        }
        for c in changes
        if c.from_level != c.to_level
    ]
    evidence = [
        {
            "text": e.text,
            "source": e.source,
            "reach": e.reach,
            "sentiment": e.sentiment,
            "created_at": e.created_at,
            "url": safe_link(e.url),
            "author": e.author_hash[:6],  # never the whole hash
        }
        for e in warning.evidence.order_by("-reach", "pk")[:EVIDENCE_SHOWN]
    ]
    plans = list(
        warning.plans.select_related("template").prefetch_related(
            Prefetch("tasks", queryset=PlanTask.objects.select_related("department"))
        )
    )
    for plan in plans:
        for task in plan.tasks.all():
            task.overdue = task.status == PlanTask.Status.OPEN and task.due_at < now
    releases = releases_about(warning, request.user)
    audit.record(request.user, "opinion.warning", warning)
    return _page(
        request,
        "opinion/watch_warning.html",
        {
            "warning": warning,
            "indicators": indicator_rows(warning),
            "steps": steps,
            "evidence": evidence,
            "plans": plans,
            "releases": releases,
            "chart": _history_chart(changes),
            "now": now,
        },
    )
