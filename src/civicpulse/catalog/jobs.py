"""Periodic work of the data catalog. Each job is safe to run twice: a version archived or
deleted is not archived or deleted again."""

from __future__ import annotations

from civicpulse.core.queue import Run, job


@job("catalog.retention", every=86400, lease=1800)
def retention(run: Run) -> dict:
    """Apply every dataset's retention policy (see :mod:`catalog.retention`): daily, since
    policies count in days."""
    from civicpulse.catalog import retention as policies

    return policies.apply()
