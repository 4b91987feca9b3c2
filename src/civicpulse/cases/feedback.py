"""The reporter's rating after resolution, and the rule that lets a low rating reopen a case."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from civicpulse.cases import workflow
from civicpulse.cases.models import Case, Feedback
from civicpulse.cases.workflow import CaseError

REOPEN_AT_OR_BELOW = 2  # a rating this low reopens the case...
REOPEN_WITHIN = timedelta(days=30)  # ...when given within this time of resolution


@transaction.atomic
def rate(case: Case, rating: int, comment: str = "") -> Feedback:
    """Record the one rating a case gets; a low one reopens it for another look."""
    try:
        rating = int(rating)
    except (TypeError, ValueError):
        raise CaseError("rating must be a whole number from 1 to 5", field="rating") from None
    if not 1 <= rating <= 5:
        raise CaseError("rating must be from 1 to 5", field="rating")
    if case.status not in ("resolved", "closed"):
        raise CaseError("a case can be rated once it is resolved", field="status", code=409)
    if Feedback.objects.filter(case=case).exists():
        raise CaseError("this case has already been rated", field="rating", code=409)
    now = timezone.now()
    try:
        with transaction.atomic():
            feedback = Feedback.objects.create(
                case=case, rating=rating, comment=comment[:2000], at=now
            )
    except IntegrityError:  # a second submit raced the first
        raise CaseError("this case has already been rated", field="rating", code=409) from None
    case.satisfaction = rating
    case.save(update_fields=["satisfaction"])
    recent = case.resolved_at is not None and now - case.resolved_at <= REOPEN_WITHIN
    if rating <= REOPEN_AT_OR_BELOW and recent:
        workflow.step(case, "reopen", "reporter", note=f"rated {rating}: {comment[:200]}")
        feedback.reopened = True
        feedback.save(update_fields=["reopened"])
    return feedback
