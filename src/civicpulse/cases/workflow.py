"""A case's life: taken in from any channel, then new → accepted → dispatched → in progress →
resolved → closed, with reopen, transfer and return. Every step is a ``CaseEvent`` with its
actor and time, and goes into the audit chain."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models.functions import Length
from django.utils import timezone

from civicpulse.cases import sla
from civicpulse.cases.models import Case, CaseEvent, Reporter, Service, ServiceAttribute
from civicpulse.core import audit
from civicpulse.core.areas import holds
from civicpulse.core.models import Area, Department


class CaseError(ValueError):
    """A request that cannot be taken or a step that cannot be made; ``field`` names the input
    at fault (Open311 reports it as the error's description)."""

    def __init__(self, message: str, *, field: str = "", code: int = 400):
        super().__init__(message)
        self.field = field
        self.code = code


# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "accept": (("new",), "accepted"),
    "dispatch": (("new", "accepted"), "dispatched"),
    "start": (("dispatched", "accepted"), "in_progress"),
    "resolve": (("accepted", "dispatched", "in_progress"), "resolved"),
    "close": (("resolved",), "closed"),
    "reopen": (("resolved", "closed"), "in_progress"),
}


def record_event(
    case: Case,
    actor,
    action: str,
    *,
    before: str = "",
    note: str = "",
    department: Department | None = None,
    at: datetime | None = None,
) -> CaseEvent:
    """One step into the case's history and the audit chain."""
    event = CaseEvent.objects.create(
        case=case,
        at=at or timezone.now(),
        actor=audit.actor_name(actor),
        action=action,
        from_status=before,
        to_status=case.status,
        department=department,
        note=note,
    )
    audit.record(
        audit.actor_name(actor),
        f"case.{action}",
        case,
        detail={"from": before, "to": case.status, "note": note[:200]},
    )
    return event


# --------------------------------------------------------------------------- intake


def _number(value, code: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CaseError(f"attribute {code} must be a number", field=code) from None
    if not math.isfinite(number):
        raise CaseError(f"attribute {code} must be a finite number", field=code)
    return number


def clean_attributes(service: Service, answers: Mapping[str, object]) -> dict:
    """Check the answers to a service's extra questions; raise CaseError naming the first bad
    one. Unknown answers are refused rather than silently dropped."""
    questions = {a.code: a for a in service.attributes.all()}
    unknown = sorted(set(answers) - set(questions))
    if unknown:
        raise CaseError(
            f"unknown attribute {unknown[0]} for service {service.code}", field=unknown[0]
        )
    cleaned: dict[str, object] = {}
    for code, question in questions.items():
        value = answers.get(code)
        empty = value is None or value == "" or value == []
        if empty:
            if question.required:
                raise CaseError(f"attribute {code} is required", field=code)
            continue
        keys = {str(v["key"]) for v in question.values}
        kind = question.datatype
        if kind == ServiceAttribute.Datatype.NUMBER:
            cleaned[code] = _number(value, code)
        elif kind == ServiceAttribute.Datatype.DATETIME:
            try:
                cleaned[code] = datetime.fromisoformat(str(value)).isoformat()
            except ValueError:
                raise CaseError(
                    f"attribute {code} must be an ISO 8601 date and time", field=code
                ) from None
        elif kind == ServiceAttribute.Datatype.SINGLE:
            if isinstance(value, list | tuple):
                raise CaseError(f"attribute {code} takes one value", field=code)
            if str(value) not in keys:
                raise CaseError(f"attribute {code} must be one of {sorted(keys)}", field=code)
            cleaned[code] = str(value)
        elif kind == ServiceAttribute.Datatype.MULTI:
            values = [str(v) for v in (value if isinstance(value, list | tuple) else [value])]
            bad = [v for v in values if v not in keys]
            if bad:
                raise CaseError(f"attribute {code}: {bad[0]!r} is not an allowed value", field=code)
            cleaned[code] = values
        else:
            text = str(value)
            limit = 200 if kind == ServiceAttribute.Datatype.STRING else 5000
            if len(text) > limit:
                raise CaseError(f"attribute {code} is longer than {limit} characters", field=code)
            cleaned[code] = text
    return cleaned


def locate(lon: float, lat: float) -> Area | None:
    """The finest area whose boundary holds the point, found by walking down the tree."""
    found = None
    candidates = list(Area.objects.filter(level=Area.Level.DISTRICT))
    while candidates:
        inside = next((a for a in candidates if holds(a.polygon, lon, lat)), None)
        if inside is None:
            break
        found, candidates = inside, list(inside.children.all())
    return found


def check_point(lon, lat) -> tuple[float, float]:
    try:
        lon, lat = float(lon), float(lat)
    except (TypeError, ValueError):
        raise CaseError("long and lat must be numbers", field="lat") from None
    if not (math.isfinite(lon) and math.isfinite(lat)) or not (
        -180 <= lon <= 180 and -90 <= lat <= 90
    ):
        raise CaseError("lat must be within ±90 and long within ±180", field="lat")
    return lon, lat


@dataclass
class Intake:
    """What a channel knows about a new request."""

    channel: str
    description: str
    service: Service | None = None
    title: str = ""
    area: Area | None = None
    lon: float | None = None
    lat: float | None = None
    address: str = ""
    attributes: Mapping[str, object] | None = None
    reporter: Mapping[str, str] | None = None
    media_url: str = ""
    created_at: datetime | None = None
    source: str = ""
    external_id: str = ""


def _tracking_no(at: datetime) -> str:
    """SH + local date + a 6-digit sequence of the day."""
    prefix = f"SH{timezone.localtime(at):%Y%m%d}"
    last = (
        Case.objects.filter(tracking_no__startswith=prefix)
        .annotate(length=Length("tracking_no"))
        .filter(length=len(prefix) + 6)
        .order_by("-tracking_no")
        .values_list("tracking_no", flat=True)
        .first()
    )
    return f"{prefix}{int(last[len(prefix) :]) + 1 if last else 1:06d}"


def _create(fields: dict) -> Case:
    """Insert a case under the next free tracking number, retrying when another process took
    the same number first."""
    for _attempt in range(10):
        try:
            with transaction.atomic():
                number = _tracking_no(fields["created_at"])
                return Case.objects.create(tracking_no=number, **fields)
        except IntegrityError as exc:
            if "tracking_no" not in str(exc):
                raise
    raise CaseError("could not allocate a tracking number; try again", code=503)


@transaction.atomic
def take_in(intake: Intake, actor=None, *, router=None) -> Case:
    """Record a new request from any channel: locate it, route it (or queue it for triage),
    set its deadline, keep its reporter, and log the step."""
    text = intake.description.strip()
    if not text:
        raise CaseError("description is required", field="description")
    if len(text) > 5000:
        raise CaseError("description is longer than 5,000 characters", field="description")
    if intake.channel not in Case.Channel.values:
        raise CaseError(f"unknown channel {intake.channel!r}", field="channel")
    lon = lat = None
    if intake.lon is not None or intake.lat is not None:
        lon, lat = check_point(intake.lon, intake.lat)
    area = intake.area or (locate(lon, lat) if lon is not None else None)
    if area is None:
        area = Area.objects.filter(level=Area.Level.CITY).first()
        if area is None:
            raise CaseError("no area tree is set up", field="lat", code=500)
    service, confidence, needs_triage = intake.service, None, False
    if service is None:
        if router is None:
            raise CaseError("service_code is required", field="service_code")
        code, confidence = router(text)
        needs_triage = confidence < router.threshold
        service = Service.objects.filter(code=code, is_active=True).first()
        if service is None:  # the model knows a service the city has since retired
            codes = [c for c, _department, _p in router.suggest(text, k=5)]
            active = {s.code: s for s in Service.objects.filter(code__in=codes, is_active=True)}
            service = next((active[c] for c in codes if c in active), None)
            needs_triage = True
        if service is None:
            raise CaseError("choose a service: none suggested is in use", field="service_code")
    answers = clean_attributes(service, intake.attributes or {})
    created = intake.created_at or timezone.now()
    fields = dict(
        channel=intake.channel,
        service=service,
        department=service.department,
        area=area,
        title=(intake.title or text.splitlines()[0])[:200],
        description=text,
        address=intake.address[:300],
        lon=lon,
        lat=lat,
        attributes=answers,
        media_url=intake.media_url[:500],
        created_at=created,
        due_at=sla.due_at(created, service.sla_working_days),
        needs_triage=needs_triage,
        routing_confidence=confidence,
        source=intake.source,
        external_id=intake.external_id,
    )
    case = _create(fields)
    if intake.reporter and any(intake.reporter.values()):
        fields = {
            k: str(v)[:100]
            for k, v in intake.reporter.items()
            if k in ("name", "phone", "email", "device_id") and v
        }
        case.reporters.add(Reporter.objects.create(**fields))
    record_event(case, actor, "created", note=f"via {intake.channel}", at=created)
    return case


# --------------------------------------------------------------------------- steps


@transaction.atomic
def step(case: Case, action: str, actor, *, note: str = "") -> Case:
    """Move a case along its workflow; refuse a step its status does not allow."""
    if action not in TRANSITIONS:
        raise CaseError(f"unknown step {action!r}", field="action")
    case = Case.objects.select_for_update().get(pk=case.pk)
    allowed, target = TRANSITIONS[action]
    if case.status not in allowed:
        raise CaseError(
            f"a {case.get_status_display()} case cannot be {action}ed", field="status", code=409
        )
    if action == "reopen" and not note:
        raise CaseError("reopening needs a reason", field="note")
    before, now = case.status, timezone.now()
    case.status = target
    if action == "accept" or (action == "dispatch" and case.accepted_at is None):
        case.accepted_at = now
    if action == "resolve":
        case.resolved_at = now
    if action == "close":
        case.closed_at = now
    if action == "reopen":  # a new round: a new deadline, new reminders
        case.resolved_at = case.closed_at = case.reminded_at = case.escalated_at = None
        case.due_at = sla.due_at(now, case.service.sla_working_days)
    case.needs_triage = False if action != "reopen" else case.needs_triage
    case.save()
    record_event(case, actor, action, before=before, note=note)
    if action == "resolve":
        from civicpulse.cases import notices

        notices.tell_reporters(case, "resolved")
    return case


@transaction.atomic
def transfer(case: Case, to: Department, actor, *, reason: str) -> Case:
    """Hand a case to another department, with the reason; the deadline keeps running."""
    if not reason.strip():
        raise CaseError("a transfer needs a reason", field="reason")
    case = Case.objects.select_for_update().get(pk=case.pk)
    if not case.is_open:
        raise CaseError("only an open case can be transferred", field="status", code=409)
    if to.pk == case.department_id:
        raise CaseError("the case is already with that department", field="department")
    before = case.status
    if case.accepted_at is None:
        case.accepted_at = timezone.now()
    case.department, case.status = to, "dispatched"
    case.save(update_fields=["department", "status", "accepted_at"])
    record_event(case, actor, "transferred", before=before, note=reason, department=to)
    return case


@transaction.atomic
def send_back(case: Case, actor, *, reason: str) -> Case:
    """A department returns a wrongly sent case: it goes back to the triage queue."""
    if not reason.strip():
        raise CaseError("returning a case needs a reason", field="reason")
    case = Case.objects.select_for_update().get(pk=case.pk)
    if not case.is_open:
        raise CaseError("only an open case can be returned", field="status", code=409)
    before = case.status
    case.status, case.needs_triage = "new", True
    case.save(update_fields=["status", "needs_triage"])
    record_event(case, actor, "returned", before=before, note=reason, department=case.department)
    return case
