"""Finding the open case a new request repeats, across channels, and merging the two.

A candidate must be the same service, open, near in time; it is then scored by place (distance
or the same grid) and by the likeness of the texts (character bigrams, which work for Chinese
without segmentation and for English alike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from civicpulse.cases.models import Case
from civicpulse.cases.workflow import CaseError, record_event

WINDOW = timedelta(days=7)
NEAR_METRES = 300
SUGGEST_AT = 0.5
MIN_TEXT = 0.2  # the same spot alone does not make a duplicate: the texts must agree too


@dataclass(frozen=True)
class Suggestion:
    case: Case
    score: float
    text: float
    place: float


def _bigrams(text: str) -> set[str]:
    text = "".join(ch.lower() for ch in text if not ch.isspace())
    return {text[i : i + 2] for i in range(len(text) - 1)} or {text}


def text_likeness(a: str, b: str) -> float:
    x, y = _bigrams(a), _bigrams(b)
    return len(x & y) / len(x | y) if x and y else 0.0


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    r = 6_371_000
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


def _place(a: Case, b: Case) -> float:
    if None not in (a.lon, a.lat, b.lon, b.lat):
        return max(0.0, 1 - metres(a.lon, a.lat, b.lon, b.lat) / NEAR_METRES)
    if a.area_id == b.area_id:
        return 0.8
    return 0.4 if a.area.parent_id == b.area.parent_id else 0.0


def _district_path(case: Case) -> str:
    """Duplicates are looked for within the case's district (or city, if no finer)."""
    codes = case.area.path.strip("/").split("/")
    return "/" + "/".join(codes[:2]) + "/"


def suggest(case: Case, limit: int = 5) -> list[Suggestion]:
    """Open cases this one may repeat, best first."""
    pool = (
        Case.objects.filter(
            service=case.service,
            status__in=Case.OPEN_STATUSES,
            duplicate_of__isnull=True,
            created_at__gte=case.created_at - WINDOW,
            created_at__lte=case.created_at + WINDOW,
            area__path__startswith=_district_path(case),
        )
        .exclude(pk=case.pk)
        .select_related("area")[:500]
    )
    found = []
    for other in pool:
        text = text_likeness(
            f"{case.title} {case.description}", f"{other.title} {other.description}"
        )
        place = _place(case, other)
        score = 0.55 * text + 0.45 * place
        if score >= SUGGEST_AT and place > 0 and text >= MIN_TEXT:
            found.append(Suggestion(other, round(score, 3), round(text, 3), round(place, 3)))
    return sorted(found, key=lambda s: -s.score)[:limit]


@transaction.atomic
def merge(duplicate: Case, into: Case, actor) -> Case:
    """Fold a duplicate into the case that carries on: its reporters join that case (and hear
    of its resolution), and the duplicate closes pointing at it."""
    if duplicate.pk == into.pk:
        raise CaseError("a case cannot be merged into itself", field="case")
    if into.duplicate_of_id:
        raise CaseError("merge into the case that carries on, not into a duplicate", field="case")
    duplicate, into = (Case.objects.select_for_update().get(pk=c.pk) for c in (duplicate, into))
    if not duplicate.is_open:
        raise CaseError("only an open case can be merged", field="status", code=409)
    if not into.is_open:
        raise CaseError(
            "merge into an open case, so its reporters hear of the outcome", field="case", code=409
        )
    into.reporters.add(*duplicate.reporters.all())
    before = duplicate.status
    duplicate.duplicate_of, duplicate.status = into, "closed"
    duplicate.closed_at = timezone.now()
    duplicate.save(update_fields=["duplicate_of", "status", "closed_at"])
    record_event(duplicate, actor, "merged", before=before, note=f"duplicate of {into.tracking_no}")
    record_event(
        into, actor, "absorbed", before=into.status, note=f"{duplicate.tracking_no} merged in"
    )
    return into
