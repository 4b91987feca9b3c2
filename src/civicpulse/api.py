"""The platform's own REST API, /api/v1/, described by one OpenAPI document.

    /api/v1/openapi.json    the OpenAPI document
    /api/v1/docs            its pages (Swagger UI, served from our own static files)

Every app's router is registered here, at import, before the URL configuration reads
``api.urls``: django-ninja freezes its routes then (STACK-NOTES). Errors always answer as JSON
``{"detail": "..."}``; an error that carries headers (WWW-Authenticate, Retry-After) gets them.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.urls import path
from ninja import NinjaAPI
from ninja.errors import HttpError

from civicpulse.opinion.api import router as opinion_router

log = logging.getLogger(__name__)

api = NinjaAPI(
    title="CivicPulse API",
    version="1",
    description="Channels into the platform for partner systems. Authentication is per "
    "endpoint: a push source's bearer token for /opinion/posts.",
    urls_namespace="api-v1",
)
api.add_router("/opinion/", opinion_router)
api.add_router("/catalog/", "civicpulse.catalog.api.router")
api.add_router("/identity/", "civicpulse.identity.api.router")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    response = api.create_response(request, {"detail": exc.message}, status=exc.status_code)
    for name, value in getattr(exc, "headers", {}).items():
        response[name] = value
    return response


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.error("API %s %s failed", request.method, request.path, exc_info=exc)
    return api.create_response(
        request, {"detail": "the request failed on our side; the error is logged"}, status=500
    )


urlpatterns = [path("", api.urls)]
