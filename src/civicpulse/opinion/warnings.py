"""The life of a warning: raised, moved up and down, closed — one warning per event.

The indicator system itself (thresholds, levels, reasons) is :mod:`civicpulse.signals.warning`;
this module keeps its verdicts in the store: it opens a warning the first time an event reaches a
level, records every change of level with the indicators behind it, starts the response plans a
level calls for, keeps sample posts as evidence and closes the warning when the event calms down.
Callers (the watch job, the hot-issue job) only describe the event and its indicators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from civicpulse.core import audit
from civicpulse.core.models import Area
from civicpulse.opinion import plans
from civicpulse.opinion.models import Evidence, Issue, Warning, WarningChange, WarningPolicy
from civicpulse.signals.warning import Indicators, Thresholds, assess

HISTORY_EVERY = timedelta(minutes=15)  # indicator history points between changes of level
EVIDENCE_KEPT = 20


def thresholds_for(category: str) -> Thresholds:
    """The policy of the category, else the default policy, else the built-in default."""
    policies = {
        p.category: p.thresholds for p in WarningPolicy.objects.filter(category__in=[category, ""])
    }
    data = policies.get(category) or policies.get("")
    return Thresholds.from_dict(data) if data else Thresholds.default()


def apply(
    event_key: str,
    *,
    title: str,
    indicators: Indicators,
    category: str = "",
    area_code: str = "",
    issue: Issue | None = None,
    evidence: Sequence[dict] = (),
    now: datetime | None = None,
) -> Warning | None:
    """Assess one event now and bring its warning up to date; the warning (or None)."""
    now = now or timezone.now()
    th = thresholds_for(category)
    with transaction.atomic():
        current = (
            Warning.objects.select_for_update()
            .filter(event_key=event_key, status=Warning.Status.ACTIVE)
            .first()
        )
        verdict = assess(indicators, th, current.level if current else None)
        values = indicators.as_dict()
        reasons = [_jsonable(asdict(r)) for r in verdict.reasons]
        if current is None:
            if verdict.level is None:
                return None
            warning = _open(event_key, title, category, area_code, issue, verdict.level, now)
            if warning is None:  # another worker opened it a moment ago
                return apply(
                    event_key, title=title, indicators=indicators, category=category,
                    area_code=area_code, issue=issue, evidence=evidence, now=now,
                )
            _change(warning, None, verdict.level, values, reasons, now)
            upgraded = True
        else:
            warning, upgraded = current, False
            old = warning.level
            if verdict.level is None:
                warning.status = Warning.Status.CLOSED
                warning.closed_at = now
                _change(warning, old, None, values, reasons, now)
                audit.record(None, "warning.close", warning, detail={"level": old})
            elif verdict.level != old:
                warning.level = verdict.level
                warning.peak_level = min(warning.peak_level, verdict.level)
                _change(warning, old, verdict.level, values, reasons, now)
                upgraded = verdict.level < old
                audit.record(
                    None, "warning.upgrade" if upgraded else "warning.downgrade", warning,
                    detail={"from": old, "to": verdict.level},
                )
            elif _history_due(warning, now):
                _change(warning, old, old, values, reasons, now)
        warning.indicators = values
        warning.reasons = reasons
        warning.updated_at = now
        warning.title = title[:200]
        if issue is not None:
            warning.issue = issue
        warning.save()
        _keep_evidence(warning, evidence)
    if upgraded and warning.status == Warning.Status.ACTIVE:
        plans.start_due_plans(warning, now=now)
    return warning


def _open(event_key, title, category, area_code, issue, level, now) -> Warning | None:
    area = Area.objects.filter(code=area_code).first() if area_code else None
    try:
        with transaction.atomic():
            warning = Warning.objects.create(
                event_key=event_key, title=title[:200], category=category, issue=issue,
                area=area, level=level, peak_level=level, opened_at=now, updated_at=now,
            )
    except IntegrityError:
        return None
    audit.record(None, "warning.open", warning, detail={"level": level, "event": event_key})
    return warning


def _change(warning, old, new, values, reasons, now) -> None:
    WarningChange.objects.create(
        warning=warning, at=now, from_level=old, to_level=new, indicators=values, reasons=reasons
    )


def _history_due(warning: Warning, now: datetime) -> bool:
    last = warning.changes.order_by("-at").values_list("at", flat=True).first()
    return last is None or now - last >= HISTORY_EVERY


def _keep_evidence(warning: Warning, evidence: Sequence[dict]) -> None:
    if not evidence:
        return
    have = set(warning.evidence.values_list("post_key", flat=True))
    room = EVIDENCE_KEPT - len(have)
    fresh = [e for e in evidence if e["post_key"] not in have][: max(room, 0)]
    Evidence.objects.bulk_create(
        [
            Evidence(
                warning=warning,
                post_key=e["post_key"][:200],
                source=e.get("source", "")[:64],
                text=e.get("text", "")[:2000],
                url=(e.get("url") or "")[:500],
                author_hash=e.get("author_hash", "") or "",
                reach=int(e.get("reach") or 0),
                sentiment=e.get("sentiment"),
                created_at=e["created_at"],
            )
            for e in fresh
        ],
        ignore_conflicts=True,
    )


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value
