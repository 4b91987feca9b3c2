"""Periodic work of the one window."""

from __future__ import annotations

from civicpulse.core.queue import Run, job


@job("cases.train_router", every=86_400, lease=600)
def train_router(run: Run) -> dict:
    """Retrain the router from the store once a day. Idempotent: when nothing it reads has
    changed since the saved model was trained, it leaves the model alone; training itself is
    deterministic and replaces the file atomically, so a rerun after a crash is harmless."""
    from civicpulse.cases import routing  # sklearn and jieba load only when the job runs

    if not run.payload.get("force") and not routing.needs_training():
        return {"trained": False, "reason": "the store has not changed since the last training"}
    run.save({}, progress=0.1)
    report = routing.train_from_store()
    return {"trained": report.startswith("Router trained"), "report": report}


@job("cases.sla_sweep", every=300, lease=120)
def sla_sweep(run: Run) -> dict:
    """Remind before deadlines and escalate overdue cases; each case is touched once."""
    from civicpulse.cases import sla

    return sla.sweep()


@job("cases.send_notices", every=60, lease=120)
def send_notices(run: Run) -> dict:
    """Tell reporters of resolutions; a notice without a channel waits for one."""
    from civicpulse.cases import notices

    return notices.send_pending()
