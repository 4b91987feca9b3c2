"""A fixed-window rate limit kept in the store, so every server process counts together."""

from __future__ import annotations

import time

from django.db import IntegrityError, transaction
from django.db.models import F

from civicpulse.core.models import RateWindow


def hit(key: str, *, limit: int, per: int, now: float | None = None) -> bool:
    """Count one request for ``key``; False once more than ``limit`` came in ``per`` seconds."""
    window = int((now or time.time()) // per) * per
    updated = RateWindow.objects.filter(key=key, window=window).update(count=F("count") + 1)
    if not updated:
        try:
            with transaction.atomic():
                RateWindow.objects.create(key=key, window=window, count=1)
        except IntegrityError:  # another process created it first
            RateWindow.objects.filter(key=key, window=window).update(count=F("count") + 1)
    count = RateWindow.objects.filter(key=key, window=window).values_list("count", flat=True)[0]
    return count <= limit


def forget_before(seconds_ago: int = 86400) -> int:
    """Drop old windows (run by a periodic job)."""
    return RateWindow.objects.filter(window__lt=time.time() - seconds_ago).delete()[0]
