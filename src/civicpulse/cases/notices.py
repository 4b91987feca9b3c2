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


def _sms(webhook: str, phone: str, body: str) -> None:
    import json
    import urllib.request

    request = urllib.request.Request(
        webhook,
        data=json.dumps({"to": phone, "body": body}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (configured URL)
        if response.status >= 300:
            raise OSError(f"SMS gateway answered {response.status}")


def send_pending(limit: int = 500) -> dict:
    """Send waiting notices: by e-mail where the reporter gave one, else by SMS when a gateway
    is configured. A notice that cannot go out yet stays waiting; none is marked sent unsent."""
    from django.conf import settings
    from django.core.mail import send_mail

    sent = waiting = failed = 0
    webhook = settings.CONFIG.sms_webhook
    for notice in Notification.objects.filter(sent_at__isnull=True).select_related(
        "reporter", "case"
    )[:limit]:
        reporter = notice.reporter
        try:
            if reporter.email:
                send_mail(
                    f"工单 {notice.case.tracking_no}",
                    notice.body,
                    settings.DEFAULT_FROM_EMAIL,
                    [reporter.email],
                )
            elif reporter.phone and webhook:
                _sms(webhook, reporter.phone, notice.body)
            else:
                waiting += 1
                continue
        except OSError:
            failed += 1
            continue
        Notification.objects.filter(pk=notice.pk).update(sent_at=timezone.now())
        sent += 1
    return {"sent": sent, "waiting": waiting, "failed": failed}
