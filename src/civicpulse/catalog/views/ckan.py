"""The CKAN Action API over HTTP: ``/api/3/action/<name>`` and ``/api/action/<name>``.

Parameters come as a query string (GET), a JSON object (POST, what ``ckanapi`` sends) or a
form (POST). Every answer is CKAN's envelope, ``{"help", "success", "result"}``, or on error
``{"help", "success": false, "error": {"__type", "message", ...}}`` with CKAN's HTTP codes:
404 Not Found Error, 409 Validation Error and Search Query Error, 403 Authorization Error
(the write actions), 400 Bad Request, 429 when an address asks too often.

The API is public and read-only: no login, no session, so no CSRF token applies; what it
serves is open data only (see :mod:`civicpulse.catalog.ckan`), so reads are not audited.
"""

from __future__ import annotations

import json
import logging
import math
import time

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from civicpulse.catalog import ckan
from civicpulse.core import ratelimit

logger = logging.getLogger(__name__)

# Requests per client address per window (seconds); a setting overrides it.
RATE = (600, 60)


def _help(name: str) -> str:
    return f"{settings.CONFIG.site_url.rstrip('/')}/api/3/action/help_show?name={name}"


def _answer(name: str, body: dict, status: int = 200, headers: dict | None = None) -> JsonResponse:
    response = JsonResponse(
        {"help": _help(name), **body},
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )
    response["Access-Control-Allow-Origin"] = "*"  # open data: any page may read it
    for key, value in (headers or {}).items():
        response[key] = value
    return response


def _error(name: str, exc: ckan.ActionError, headers: dict | None = None) -> JsonResponse:
    return _answer(name, {"success": False, "error": exc.as_dict()}, exc.status, headers)


def _params(request: HttpRequest) -> dict:
    """The action's parameters: a JSON object body, a form, or the query string."""
    if request.method == "POST":
        content_type = request.content_type or ""
        if content_type == "application/json" or (
            not request.POST and request.body.strip().startswith(b"{")
        ):
            try:
                params = json.loads(request.body or b"{}")
            except (ValueError, UnicodeDecodeError) as exc:
                raise ckan.BadRequest(f"Bad request - JSON Error: {exc}") from None
            if not isinstance(params, dict):
                raise ckan.BadRequest("Bad request - JSON Error: not a JSON object")
            return params
        source = request.POST
    else:
        source = request.GET
    return {k: (v[0] if len(v) == 1 else v) for k, v in source.lists()}


@csrf_exempt
@require_http_methods(["GET", "POST"])
def action(request: HttpRequest, name: str) -> JsonResponse:
    limit, per = getattr(settings, "CIVICPULSE_CKAN_RATE", RATE)
    client = request.META.get("REMOTE_ADDR", "")
    if not ratelimit.hit(f"ckan:{client}", limit=limit, per=per):
        wait = max(1, math.ceil(per - time.time() % per))
        exc = ckan.ActionError(
            f"more than {limit} requests in {per} seconds from this address; try again in {wait} s"
        )
        exc.kind, exc.status = "Rate Limit Error", 429
        return _error(name, exc, {"Retry-After": str(wait)})
    try:
        result = ckan.call(name, _params(request))
    except ckan.ActionError as exc:
        return _error(name, exc)
    return _answer(name, {"success": True, "result": result})
