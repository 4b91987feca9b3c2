"""The leaders' cockpit: the city's requests at a glance, from city down to each street."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from civicpulse.cases import services as cases
from civicpulse.core import audit, scoping
from civicpulse.core.models import Area
from civicpulse.web import services


def _area(request: HttpRequest) -> Area:
    code = request.GET.get("area", "").strip()
    if not code:
        area = scoping.home_area(request.user)
        if area is None:
            raise Http404("no city has been set up yet: run `civicpulse demo` or import areas")
        return area
    if not code.isdigit() or len(code) > 15:
        raise Http404("an area code is 6 to 15 digits")
    try:
        return Area.objects.get(code=code)
    except Area.DoesNotExist:
        raise Http404(f"no area has the code {code}") from None


@login_required
@require_GET
def cockpit(request: HttpRequest) -> HttpResponse:
    area = _area(request)
    scoping.require_area(request.user, area)
    data = services.cockpit(area)
    names = cases.service_names()
    data["top"] = [
        {"code": code, "name": names.get(code, code), "count": n} for code, n in data["top"]
    ]
    chart = {k: data[k] for k in ("months", "trend", "children", "top", "top_month")}
    chart["area"] = {"code": area.code, "name": area.name, "level": area.level}
    audit.record(request.user, "cockpit.view", area)
    return render(
        request,
        "web/cockpit.html",
        {
            "area": area,
            "crumbs": area.ancestors(),
            "data": data,
            "chart": chart,
        },
    )


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
