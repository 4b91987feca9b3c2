"""Periodic housekeeping of the core."""

from __future__ import annotations

from civicpulse.core.queue import Run, job


@job("core.forget_rate_windows", every=3600, lease=60)
def forget_rate_windows(run: Run) -> dict:
    """Drop rate-limit windows older than a day."""
    from civicpulse.core import ratelimit

    return {"dropped": ratelimit.forget_before()}
