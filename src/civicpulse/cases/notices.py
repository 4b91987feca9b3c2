"""Messages owed to reporters. Rows are written here and sent by the worker's mail/SMS hook;
the unique (reporter, case, kind) constraint makes telling twice a no-op."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from civicpulse.cases.models import Case, Notification, Reporter

TEMPLATES = {
    "resolved": "您反映的问题（工单 {no}）已办结。请对办理结果评价：{link}",
    "reopened": "您反映的问题（工单 {no}）已重新办理。",
}


def feedback_link(case: Case) -> str:
    return f"/track/{case.token}/"


def tell_reporters(case: Case, kind: str) -> int:
    """Queue a notice to everyone who reported this case or a duplicate merged into it."""
    reporters = Reporter.objects.filter(cases__in=[case, *case.duplicates.all()]).distinct()
    body = TEMPLATES[kind].format(no=case.tracking_no, link=feedback_link(case))
    made = 0
    for reporter in reporters:
        try:
            with transaction.atomic():
                Notification.objects.create(
                    reporter=reporter, case=case, kind=kind, body=body, created_at=timezone.now()
                )
            made += 1
        except IntegrityError:
            pass
    return made
