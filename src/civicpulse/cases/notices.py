"""Messages owed to reporters. Rows are written here and sent by the worker's mail/SMS hook;
the unique (reporter, case, kind) constraint makes telling twice a no-op."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from civicpulse.cases.models import Case, Notification

TEMPLATES = {
    "resolved": "您反映的问题（工单 {no}）已办结。请对办理结果评价：{link}",
    "reopened": "您反映的问题（工单 {no}）已重新办理。",
}


def feedback_link(case: Case) -> str:
    """The private status page, as an absolute link a resident can open from a message."""
    from django.conf import settings

    return f"{settings.CONFIG.site_url.rstrip('/')}/track/{case.token}/"


def tell_reporters(case: Case, kind: str) -> int:
    """Queue a notice to everyone who reported this case, or a duplicate merged into it; each
    reporter gets the link of the case they reported (its rating is theirs to give)."""
    made = 0
    # duplicates first: a merged reporter also sits on the main case, and the first notice
    # made for a reporter is the one kept
    for reported in [*case.duplicates.all(), case]:
        body = TEMPLATES[kind].format(no=reported.tracking_no, link=feedback_link(reported))
        for reporter in reported.reporters.all():
            try:
                with transaction.atomic():
                    Notification.objects.create(
                        reporter=reporter,
                        case=case,
                        kind=kind,
                        body=body,
                        created_at=timezone.now(),
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

    sent = failed = 0
    webhook = settings.CONFIG.sms_webhook
    pending = Notification.objects.filter(sent_at__isnull=True).exclude(reporter__email="")
    if webhook:
        pending = Notification.objects.filter(sent_at__isnull=True).exclude(
            reporter__email="", reporter__phone=""
        )
    waiting = Notification.objects.filter(sent_at__isnull=True).count() - pending.count()
    for notice in pending.select_related("reporter", "case").order_by("created_at")[:limit]:
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
                continue
        except OSError:
            failed += 1
            continue
        Notification.objects.filter(pk=notice.pk).update(sent_at=timezone.now())
        sent += 1
    return {"sent": sent, "waiting": waiting, "failed": failed}
