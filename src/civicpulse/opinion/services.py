"""What other apps (the cockpit, the demo, the CLI) may ask of the opinion desk."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from civicpulse.core.models import Department
from civicpulse.opinion.models import (
    Concern,
    PlanStep,
    PlanTemplate,
    Rule,
    SensitiveTerm,
    Source,
    Warning,
    WarningPolicy,
)
from civicpulse.opinion.posts import store as store_posts  # noqa: F401
from civicpulse.opinion.records import RawPost, Refusal  # noqa: F401
from civicpulse.signals.warning import Thresholds
from civicpulse.text import rules

# Words that make an event graver wherever it happens; a city adds its own in the admin.
DEFAULT_SENSITIVE_TERMS = {
    "死亡": 3.0, "身亡": 3.0, "遇难": 3.0, "中毒": 2.5, "爆炸": 2.5, "坍塌": 2.5, "群体": 1.5,
    "聚集": 1.5, "上访": 1.5, "堵路": 1.5, "维权": 1.0, "冲突": 1.5, "儿童": 1.0, "学生": 1.0,
    "住院": 1.5, "送医": 1.5, "污染": 1.0, "隐瞒": 1.5, "瞒报": 2.0,
    "death": 3.0, "died": 3.0, "poisoning": 2.5, "explosion": 2.5, "collapse": 2.5,
    "protest": 1.5, "hospital": 1.5,
}


def ensure_source(name: str, kind: str = Source.Kind.FILE, url: str = "") -> Source:
    source, _ = Source.objects.get_or_create(name=name, defaults={"kind": kind, "url": url})
    return source


def add_concern(
    name: str,
    *,
    category: str = "",
    department: str | None = None,
    description: str = "",
    rules_: Sequence[tuple[str, str]] = (),
) -> Concern:
    """A concern with its rules; every query is parsed first, so none is saved broken."""
    for _name, query in rules_:
        rules.parse(query)
    dept = Department.objects.get(code=department) if department else None
    with transaction.atomic():
        concern, _ = Concern.objects.update_or_create(
            name=name,
            defaults={"category": category, "department": dept, "description": description},
        )
        for rule_name, query in rules_:
            Rule.objects.update_or_create(
                concern=concern, name=rule_name, defaults={"query": query, "is_active": True}
            )
    return concern


def seed_defaults() -> None:
    """The default indicator thresholds and sensitive terms, where none are set yet."""
    WarningPolicy.objects.get_or_create(
        category="", defaults={"thresholds": Thresholds.default().to_dict()}
    )
    for term, weight in DEFAULT_SENSITIVE_TERMS.items():
        SensitiveTerm.objects.get_or_create(term=term, defaults={"weight": weight})


def add_plan(
    name: str, *, level: int, category: str = "", steps: Iterable[tuple[str, str, int]] = (),
    emails: str = "", webhook_url: str = "",
) -> PlanTemplate:
    """A response plan template with its steps: (task, department code, due after hours)."""
    with transaction.atomic():
        template, _ = PlanTemplate.objects.update_or_create(
            name=name,
            defaults={
                "level": level, "category": category, "emails": emails,
                "webhook_url": webhook_url,
            },
        )
        template.steps.all().delete()
        for order, (title, department, hours) in enumerate(steps):
            PlanStep.objects.create(
                template=template, title=title, order=order, due_hours=hours,
                department=Department.objects.get(code=department),
            )
    return template


def active_warnings() -> list[Warning]:
    return list(
        Warning.objects.filter(status=Warning.Status.ACTIVE).select_related("area", "issue")
    )


def replay(start: datetime, end: datetime, step: timedelta = timedelta(hours=1)) -> int:
    """Run the rule watch as it would have run at each step from ``start`` to ``end``: how a
    city sees what its warnings would have done over a past stretch (and how the demo shows a
    warning's whole life)."""
    from civicpulse.opinion import watch

    n = 0
    moment = start
    while moment <= min(end, timezone.now()):
        watch.watch_rules(moment)
        moment += step
        n += 1
    return n
