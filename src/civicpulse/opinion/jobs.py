"""Periodic work of the opinion desk. Each job is safe to run twice: warnings are one per
event, plans one per template and warning, deliveries one per address."""

from __future__ import annotations

from civicpulse.core.queue import Run, job


@job("opinion.watch", every=60, lease=120)
def watch(run: Run) -> dict:
    """Assess every saved rule, and every district's posts, as events over the last window: the
    cycle within which a post that crosses a threshold raises its warning. The push API also
    queues it after each batch."""
    from civicpulse.opinion import watch as watching

    return {**watching.watch_rules(), **watching.watch_areas()}


@job("opinion.watch_services", every=3600, lease=600)
def watch_services(run: Run) -> dict:
    """Requests per service and district against their seasonal baseline (daily series, so
    hourly is plenty)."""
    from civicpulse.opinion import watch as watching

    return watching.watch_services()


@job("opinion.hot_issues", every=300, lease=600)
def hot_issues(run: Run) -> dict:
    """Regroup the window's posts and cases into issues and assess each as an event."""
    from civicpulse.opinion import issues

    return issues.refresh()


@job("opinion.poll_feeds", every=300, lease=300)
def poll_feeds(run: Run) -> dict:
    """Ask every active RSS/Atom source for new entries (conditional GET)."""
    from civicpulse.opinion import ingest

    batches = ingest.poll_feeds()
    return {"feeds": len(batches), "accepted": sum(b.accepted for b in batches)}


@job("opinion.plans", every=60, lease=120)
def plans(run: Run) -> dict:
    """Escalate overdue plan tasks once each, then send what is waiting to be sent."""
    from civicpulse.opinion import plans as response

    escalated = response.escalate_overdue()
    return {"escalated": escalated, **response.deliver_pending()}


@job("opinion.plans_sweep", every=300, lease=300)
def plans_sweep(run: Run) -> dict:
    """Start the plans that active warnings call for but lack: a template added or switched on
    after a warning reached its level still reaches it, at its level, within five minutes."""
    from civicpulse.opinion import plans as response

    return {"started": response.start_for_active_warnings()}
