"""The cockpit's figures: computed over the lake with Ibis, read back from the store."""

from __future__ import annotations

from datetime import date

import ibis
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from civicpulse.cases import services as cases
from civicpulse.core import analytics
from civicpulse.core.models import Area
from civicpulse.web.models import CaseFigure

# Two years to date: this month and the 24 before it.
TREND_MONTHS = 25

_GROUPINGS = {  # level -> the lake column holding an area's code at that level
    "district": "district_code",
    "street": "street_code",
    "community": "community_code",
}


def figures_expression(table: ibis.Table, city_code: str) -> ibis.Table:
    """Counts per (level, area, month, service), as one Ibis expression for any engine."""
    parts = [
        table.group_by(["month", "service_code"])
        .agg(count=table.count())
        .mutate(level=ibis.literal("city"), area_code=ibis.literal(city_code))
    ]
    for level, column in _GROUPINGS.items():
        located = table.filter(table[column].notnull())
        grouped = located.group_by([column, "month", "service_code"]).agg(count=located.count())
        parts.append(grouped.rename(area_code=column).mutate(level=ibis.literal(level)))
    columns = ["level", "area_code", "month", "service_code", "count"]
    return ibis.union(*[p.select(columns) for p in parts])


def refresh_figures() -> dict:
    """Recompute every cockpit figure from the lake and swap them in one transaction."""
    city = Area.objects.get(level=Area.Level.CITY)
    table = analytics.registry().table(analytics.connection(), cases.LAKE_TABLE)
    frame = figures_expression(table, city.code).to_pandas()
    rows = [
        CaseFigure(
            level=r.level,
            area_code=r.area_code,
            month=r.month,
            service_code=r.service_code,
            count=int(r.count),
        )
        for r in frame.itertuples(index=False)
    ]
    with transaction.atomic():
        CaseFigure.objects.all().delete()
        CaseFigure.objects.bulk_create(rows, batch_size=5000)
    return {"figures": len(rows)}


def _months_back(end: date, n: int) -> list[str]:
    months, year, month = [], end.year, end.month
    for _i in range(n):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def cockpit(area: Area) -> dict:
    """Everything the cockpit draws for one area."""
    figures = CaseFigure.objects.filter(area_code=area.code)
    latest = figures.order_by("-month").values_list("month", flat=True).first()
    this_month = timezone.localdate().strftime("%Y-%m")
    shown_month = this_month if figures.filter(month=this_month).exists() else latest
    end = date.fromisoformat(f"{(latest or this_month)}-01")
    months = _months_back(end, TREND_MONTHS)
    by_month = dict(figures.filter(month__in=months).values_list("month").annotate(n=Sum("count")))
    children = list(area.children.order_by("code"))
    child_counts = dict(
        CaseFigure.objects.filter(area_code__in=[c.code for c in children], month__in=months)
        .values_list("area_code")
        .annotate(n=Sum("count"))
    )
    top = list(
        figures.filter(month=shown_month)
        .values("service_code")
        .annotate(n=Sum("count"))
        .order_by("-n", "service_code")[:8]
    )
    return {
        "months": months,
        "trend": [by_month.get(m, 0) for m in months],
        "children": [
            {
                "code": c.code,
                "name": c.name,
                "level": c.level,
                "count": child_counts.get(c.code, 0),
                "polygon": c.polygon,
            }
            for c in children
        ],
        "top_month": shown_month,
        "top": [(t["service_code"], t["n"]) for t in top],
        "live": cases.live_figures(area),
    }
