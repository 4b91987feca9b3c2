"""The master index's read API, for staff signed in to the platform (their browser session):

    GET /api/v1/identity/entities/{code}

answers the entity's golden record, masked, and how many records each department holds about
it; a merged entity's code answers for the entity it went into (``code`` is then the
survivor's, ``asked_for`` the one given). The rules are those of the 360° page
(:mod:`identity.access`), and each answer is audited the same way.

    401  not signed in
    403  a role the master index is not for
    404  no such entity, or one outside the caller's scope (its existence is not revealed)

The answer carries ``Cache-Control: private, no-store`` (it holds personal data, if masked).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from ninja import Router
from ninja.errors import HttpError
from ninja.security import django_auth

from civicpulse.core import audit
from civicpulse.identity import access
from civicpulse.identity.models import Entity

router = Router(tags=["identity"])


@router.get("/entities/{code}", auth=django_auth, summary="A resident's or enterprise's record")
def entity(request: HttpRequest, response: HttpResponse, code: str) -> dict:
    add_never_cache_headers(response)  # a person's record: no shared or browser cache keeps it
    try:
        access.require_staff(request.user)
    except PermissionDenied as exc:
        raise HttpError(403, str(exc)) from None
    found = Entity.objects.select_related("area").filter(code=code).first()
    if found is None or not access.can_see_entity(request.user, found):
        raise HttpError(404, f"no entity {code!r} within your scope")
    survivor = access.surviving(found)
    if not access.can_see_entity(request.user, survivor):
        raise HttpError(404, f"no entity {code!r} within your scope")
    held = (
        survivor.records.values("source__department__code")
        .annotate(records=Count("id"))
        .order_by("source__department__code")
    )
    audit.record(
        request.user,
        "identity.view",
        survivor,
        detail={"code": survivor.code, "revealed": False, "channel": "api"},
    )
    return {
        "code": survivor.code,
        "asked_for": code,
        "kind": survivor.kind,
        "status": survivor.status,
        "area": survivor.area.code if survivor.area_id else None,
        "attributes": {
            row["name"]: row["value"]
            for row in access.shown(survivor.kind, survivor.attributes or {})
        },
        "records_by_department": [
            {"department": row["source__department__code"], "records": row["records"]}
            for row in held
        ],
        "updated_at": survivor.updated_at.isoformat(),
    }
