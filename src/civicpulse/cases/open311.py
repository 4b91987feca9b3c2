"""Open311 GeoReport v2 at /open311/v2/: the service catalog, the public list of requests, and
intake for third-party apps (``POST requests``) with an API key.

Every resource comes as ``.json`` or ``.xml`` (the spec's element structure, built with
ElementTree so every value is escaped). Errors always take the spec's form, a list of
``{code, description}``, and never a bare 500: anything unexpected is logged and answered as the
spec's "general service error" (400).

Reads are public and carry nothing personal: no reporter, no photo, and phone numbers, e-mail
addresses and ID numbers found in free text are masked. A created request goes through
``workflow.take_in`` like every other channel, so it is routed, given its deadline and written to
the audit chain.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import wraps
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import OperationalError
from django.db.models import Exists, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone, translation
from django.views.decorators.csrf import csrf_exempt

from civicpulse.cases.models import ApiKey, Case, CaseEvent, Service, ServiceAttribute
from civicpulse.cases.workflow import CaseError, Intake, check_point, locate, take_in
from civicpulse.core import ratelimit
from civicpulse.core.models import Area, AuditEntry

logger = logging.getLogger(__name__)

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CONTENT_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
MAX_BODY = 64 * 1024  # bytes of a POST body
MAX_DESCRIPTION = 4000  # the spec's limit for a request's description
MAX_FIELDS = 200  # form fields in one POST
MAX_IDS = 1000  # service_request_id values in one GET
DEFAULT_WINDOW = timedelta(days=90)
MAX_PAGE_SIZE = 1000  # also the default: "the first 1000 requests"
MAX_PAGE = 1_000_000
RATE_LIMIT, RATE_PER = 60, 60  # POSTs per API key and client address, per seconds
CLOSED_STATUSES = ("resolved", "closed")

# The element that holds each item of a list, by the list's element (the Spark convention maps
# <services><service/>...</services> to a JSON array).
XML_ITEM = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}

# Characters XML 1.0 cannot carry at all (and lone surrogates, which UTF-8 cannot).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# Refused in anything a client sends: the above plus DEL (tab and line breaks are fine).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
# What looks personal in free text: e-mail addresses; runs of 7+ digits (phone and resident ID
# numbers, which may end in X) unless glued to Latin letters (tracking numbers, codes); mobile
# and landline numbers written in groups (138-1234-5678, 0451 12345678).
_PRIVATE = re.compile(
    r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
    r"|(?<![A-Za-z0-9])(?:\+?86[ \-]?)?"
    r"(?:[0-9]{7,}[Xx]?|1[0-9]{2}[ \-][0-9]{4}[ \-][0-9]{4}|0[0-9]{2,3}[ \-][0-9]{7,8})"
    r"(?![A-Za-z0-9])"
)
MASK = "***"
_ATTRIBUTE = re.compile(r"attribute\[([^\[\]]{1,64})\](\[\])?")
_PHONE = re.compile(r"\+?[0-9 ()\-]{3,32}")

# Sentences of this API in the reader's language (interface words come from the catalogs).
_TEXT = {
    "notice": {
        "zh": "由{dept}办理，承诺{days}个工作日内办结（{due}前）。",
        "en": "{dept} handles this within {days} working days (by {due}).",
    },
    "duplicate": {
        "zh": "重复诉求，已并入工单 {no}。",
        "en": "Duplicate request, merged into {no}.",
    },
    "contact": {
        "zh": "12345 市民服务热线；接口问题请联系市大数据局。",
        "en": "The 12345 citizen hotline; for the API, the city's data bureau.",
    },
    "key_service": {
        "zh": "API 密钥由市大数据局签发（后台：Open311 密钥）。",
        "en": "API keys are issued by the city's data bureau (back office: API keys).",
    },
}


class Open311Error(Exception):
    """An answer in the spec's error form: HTTP status, the description, extra headers."""

    def __init__(self, status: int, description: str, *, headers: dict | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = headers or {}


def _lang() -> str:
    """The reader's language, as the key of ``_TEXT``."""
    return "en" if (translation.get_language() or "").startswith("en") else "zh"


def _say(key: str, **values) -> str:
    return _TEXT[key][_lang()].format(**values)


# --------------------------------------------------------------------------- rendering


def _element(tag: str, value) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, dict):
        for key, item in value.items():
            element.append(_element(key, item))
    elif isinstance(value, list):
        for item in value:
            element.append(_element(XML_ITEM[tag], item))
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
    return element


def render(fmt: str, root: str, data, *, status: int = 200, headers: dict | None = None):
    """``data`` as JSON (``root`` dropped, as the spec's JSON does) or as XML under ``root``.

    Whatever the text holds, the document is well-formed: JSON escapes control characters
    itself, lone surrogates (which UTF-8 cannot carry) become U+FFFD, and in XML so does every
    character XML 1.0 cannot carry (ElementTree escapes markup but passes those through)."""
    if fmt == "json":
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        # the same JSON value, but no raw markup for a careless client to render
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        text = _SURROGATE.sub("\ufffd", text)
    else:
        text = '<?xml version="1.0" encoding="utf-8"?>\n' + _NOT_XML.sub(
            "\ufffd", ET.tostring(_element(root, data), encoding="unicode")
        )
    response = HttpResponse(text.encode("utf-8"), status=status, content_type=CONTENT_TYPES[fmt])
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def errors(fmt: str, status: int, descriptions: Iterable[str], *, headers: dict | None = None):
    return render(
        fmt,
        "errors",
        [{"code": status, "description": d} for d in descriptions],
        status=status,
        headers=headers,
    )


# --------------------------------------------------------------------------- the frame


def _language(request: HttpRequest) -> str:
    """``locale`` wins over Accept-Language (already applied by the locale middleware)."""
    wanted = (request.GET.get("locale") or "").strip().replace("_", "-").lower()
    if wanted:
        try:
            return translation.get_supported_language_variant(wanted)
        except LookupError:
            pass
    return translation.get_language() or "zh-hans"


def _city() -> Area:
    city = Area.objects.filter(level=Area.Level.CITY).order_by("code").first()
    if city is None:
        raise Open311Error(400, "the city's area tree is not set up yet")
    return city


def _check_jurisdiction(value: str | None) -> None:
    value = (value or "").strip()
    if value and value != _city().code:
        raise Open311Error(404, f"jurisdiction_id {value} was not found")


def endpoint(*methods: str) -> Callable:
    """Wrap a view: allowed methods, language, jurisdiction, and the spec's error form for
    every failure, expected or not."""
    allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())

    def wrap(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, fmt: str = "xml", **kwargs) -> HttpResponse:
            try:
                if request.method not in allowed:
                    raise Open311Error(
                        405,
                        f"{request.method} is not allowed here",
                        headers={"Allow": ", ".join(sorted(allowed))},
                    )
                with translation.override(_language(request)):
                    if request.method != "POST":
                        _check_jurisdiction(request.GET.get("jurisdiction_id"))
                    response = view(request, fmt, **kwargs)
                    response["Content-Language"] = translation.get_language()
                    return response
            except Open311Error as exc:
                return errors(fmt, exc.status, [exc.description], headers=exc.headers)
            except Exception:
                logger.exception("Open311 %s %s failed", request.method, request.path)
                return errors(
                    fmt,
                    400,
                    [
                        "the request could not be processed (general service error); "
                        "it has been logged for the city's technicians"
                    ],
                )

        # no view here acts on a session: the one that changes anything, POST requests,
        # is authorised by its api_key, so the CSRF check (meant for cookies) does not apply
        return csrf_exempt(wrapped)

    return wrap


# --------------------------------------------------------------------------- discovery


def _changeset() -> str:
    """When the catalog last changed: the newest admin edit of a service or its questions, or
    else when the store was set up (its first audit entry)."""
    kinds = ContentType.objects.get_for_models(Service, ServiceAttribute).values()
    edited = (
        LogEntry.objects.filter(content_type__in=list(kinds))
        .order_by("-action_time")
        .values_list("action_time", flat=True)
        .first()
    )
    started = AuditEntry.objects.order_by("seq").values_list("at", flat=True).first()
    moment = max((m for m in (edited, started) if m is not None), default=None)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else "2026-01-01 00:00"


@endpoint("GET")
def discovery(request: HttpRequest, fmt: str) -> HttpResponse:
    base = request.build_absolute_uri(request.path).rsplit("/", 1)[0]
    changeset = _changeset()
    return render(
        fmt,
        "discovery",
        {
            "changeset": changeset,
            "contact": _say("contact"),
            "key_service": _say("key_service"),
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": base,
                    "changeset": changeset,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        },
    )


# --------------------------------------------------------------------------- services


@endpoint("GET")
def service_list(request: HttpRequest, fmt: str) -> HttpResponse:
    services = (
        Service.objects.filter(is_active=True)
        .annotate(metadata=Exists(ServiceAttribute.objects.filter(service=OuterRef("pk"))))
        .order_by("code")
    )
    return render(
        fmt,
        "services",
        [
            {
                "service_code": s.code,
                "service_name": s.name,
                "description": s.description,
                "metadata": bool(s.metadata),
                "type": s.type,
                "keywords": s.keywords,
                "group": s.group,
            }
            for s in services
        ],
    )


@endpoint("GET")
def service_definition(request: HttpRequest, fmt: str, code: str) -> HttpResponse:
    service = Service.objects.filter(code=code, is_active=True).first()
    if service is None:
        raise Open311Error(404, f"service_code {code} was not found")
    questions = sorted(service.attributes.all(), key=lambda a: (a.order, a.code))
    return render(
        fmt,
        "service_definition",
        {
            "service_code": service.code,
            "attributes": [
                {
                    "variable": a.variable,
                    "code": a.code,
                    "datatype": a.datatype,
                    "required": a.required,
                    "datatype_description": a.datatype_description or None,
                    # the spec wants distinct positive numbers, 1 first
                    "order": position,
                    "description": a.description,
                    "values": [
                        {"key": str(v.get("key", "")), "name": str(v.get("name", ""))}
                        for v in (a.values or [])
                        if isinstance(v, dict)
                    ],
                }
                for position, a in enumerate(questions, start=1)
            ],
        },
    )


# --------------------------------------------------------------------------- reading requests

_ROW = (
    "id",
    "tracking_no",
    "status",
    "description",
    "address",
    "lat",
    "lon",
    "media_url",
    "created_at",
    "accepted_at",
    "resolved_at",
    "closed_at",
    "due_at",
    "service__code",
    "service__name_zh",
    "service__name_en",
    "service__sla_working_days",
    "department__name_zh",
    "department__name_en",
    "area__code",
    "area__path",
    "channel",
    "duplicate_of__tracking_no",
    "last_event",
)


def _public_rows(filters) -> Iterable[dict]:
    last_event = CaseEvent.objects.filter(case=OuterRef("pk")).order_by("-at").values("at")[:1]
    return filters(Case.objects.annotate(last_event=Subquery(last_event))).values(*_ROW)


def _finite(number: float | None) -> float | None:
    return number if number is not None and math.isfinite(number) else None


def _mask(text: str, known: Iterable[str]) -> str:
    """Free text fit for the public: the reporters' own details and anything shaped like a
    phone number, ID number or e-mail address replaced by ***."""
    for value in sorted(known, key=len, reverse=True):
        if len(value) >= 2:
            text = re.sub(re.escape(value), MASK, text, flags=re.IGNORECASE)
    return _PRIVATE.sub(MASK, text)


def _public_requests(rows: list[dict]) -> list[dict]:
    """The spec's fields for each case, and nothing else."""
    if not rows:
        return []
    lang = _lang()  # looked up once: the per-field lookup is what a page of 1,000 would cost
    tz = timezone.get_current_timezone()

    def w3(moment: datetime | None) -> str | None:
        return None if moment is None else moment.astimezone(tz).replace(microsecond=0).isoformat()

    paths = {r["area__path"] for r in rows}
    codes = {code for path in paths for code in path.strip("/").split("/")}
    names = dict(Area.objects.filter(code__in=codes).values_list("code", f"name_{lang}"))
    joiner = ", " if lang == "en" else "，"
    # the area's names, most specific first, as the spec asks of an address
    addresses = {
        path: joiner.join(names[c] for c in reversed(path.strip("/").split("/")) if c in names)
        for path in paths
    }
    known: dict[int, list[str]] = {}
    for case_id, *details in Case.reporters.through.objects.filter(
        case_id__in=[r["id"] for r in rows]
    ).values_list(
        "case_id", "reporter__name", "reporter__phone", "reporter__email", "reporter__device_id"
    ):
        # a name is masked whole and by its parts (given and family name)
        known.setdefault(case_id, []).extend(p for d in details if d for p in {d, *d.split()})
    labels = {value: str(label) for value, label in Case.Status.choices}
    dept_key, service_key = f"department__name_{lang}", f"service__name_{lang}"
    out = []
    for r in rows:
        private = known.get(r["id"], ())
        merged_into = r["duplicate_of__tracking_no"]
        if merged_into:
            status, notes = "closed", _say("duplicate", no=merged_into)
        else:
            status = "closed" if r["status"] in CLOSED_STATUSES else "open"
            notes = labels[r["status"]]
        moments = (r["created_at"], r["accepted_at"], r["resolved_at"], r["closed_at"])
        # for a closed request the spec wants the closing time, which is the latest step too
        updated = max(m for m in (*moments, r["last_event"]) if m is not None)
        dept = r[dept_key]
        notice = None
        if r["due_at"] is not None and status == "open":
            notice = _TEXT["notice"][lang].format(
                dept=dept,
                days=r["service__sla_working_days"],
                due=r["due_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            )
        # Where a resident phoned or wrote from is often their home: outside the API's own
        # channel only the area is published, and the point is blurred to about 100 m.
        own = r["channel"] == "open311"
        address = (r["address"] if own else "") or addresses[r["area__path"]]
        lat, lon = _finite(r["lat"]), _finite(r["lon"])
        if not own and lat is not None and lon is not None:
            lat, lon = round(lat, 3), round(lon, 3)
        out.append(
            {
                "service_request_id": r["tracking_no"],
                "status": status,
                "status_notes": notes,
                "service_name": r[service_key],
                "service_code": r["service__code"],
                "description": _mask(r["description"], private) or None,
                "agency_responsible": dept,
                "service_notice": notice,
                "requested_datetime": w3(r["created_at"]),
                "updated_datetime": w3(updated),
                "expected_datetime": w3(r["due_at"]),
                "address": _mask(address, private) or None,
                "address_id": r["area__code"],
                "zipcode": None,
                "lat": lat,
                "long": lon,
                "media_url": r["media_url"] or None,
            }
        )
    return out


def _listed(request: HttpRequest, name: str) -> list[str]:
    """A parameter given comma delimited, declared once or several times."""
    values = [v.strip() for given in request.GET.getlist(name) for v in given.split(",")]
    return [v for v in values if v]


def _moment(request: HttpRequest, name: str) -> datetime | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    # a "+08:00" sent unencoded in a query string arrives as " 08:00"
    raw = re.sub(r" (\d{2}:?\d{2})$", r"+\1", raw)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.utcoffset() is None:
        raise Open311Error(
            400,
            f"{name} must be an ISO 8601 date and time with a time zone, "
            "eg 2010-01-01T00:00:00Z or 2010-01-01T08:00:00+08:00",
        )
    return value


def _whole(request: HttpRequest, name: str, default: int, maximum: int) -> int:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not 1 <= int(raw) <= maximum:
        raise Open311Error(400, f"{name} must be a whole number from 1 to {maximum:,}")
    return int(raw)


def _search(request: HttpRequest, fmt: str) -> HttpResponse:
    ids = _listed(request, "service_request_id")
    if len(ids) > MAX_IDS:
        raise Open311Error(400, f"at most {MAX_IDS:,} service_request_id values at once")
    statuses = {s.lower() for s in _listed(request, "status")}
    if statuses - {"open", "closed"}:
        raise Open311Error(400, "status must be open, closed, or both (comma delimited)")
    codes = _listed(request, "service_code")
    start, end = _moment(request, "start_date"), _moment(request, "end_date")
    if start and end and start > end:
        raise Open311Error(400, "start_date is after end_date")
    page = _whole(request, "page", 1, MAX_PAGE)
    size = _whole(request, "page_size", MAX_PAGE_SIZE, MAX_PAGE_SIZE)

    def filters(cases):
        if ids:  # the spec: this overrides all other arguments
            return cases.filter(tracking_no__in=ids)
        if codes:
            cases = cases.filter(service__code__in=codes)
        if statuses == {"open"}:
            cases = cases.filter(status__in=Case.OPEN_STATUSES, duplicate_of__isnull=True)
        elif statuses == {"closed"}:
            cases = cases.exclude(status__in=Case.OPEN_STATUSES, duplicate_of__isnull=True)
        lower = start
        if lower is None:  # the spec's default: the most recent 90 days
            lower = (end or timezone.now()) - DEFAULT_WINDOW
        cases = cases.filter(created_at__gte=lower)
        if end is not None:
            cases = cases.filter(created_at__lte=end)
        return cases

    rows = _public_rows(filters).order_by("-created_at", "-id")
    offset = (page - 1) * size
    return render(fmt, "service_requests", _public_requests(list(rows[offset : offset + size])))


@endpoint("GET")
def request_detail(request: HttpRequest, fmt: str, request_id: str) -> HttpResponse:
    rows = list(_public_rows(lambda cases: cases.filter(tracking_no=request_id)))
    if not rows:
        raise Open311Error(404, f"service_request_id {request_id} was not found")
    return render(fmt, "service_requests", _public_requests(rows))


@endpoint("GET")
def token_detail(request: HttpRequest, fmt: str, token: str) -> HttpResponse:
    found = Case.objects.filter(token=token).values_list("tracking_no", flat=True).first()
    if found is None:
        raise Open311Error(404, f"token {token} was not found")
    return render(fmt, "service_requests", [{"service_request_id": found, "token": token}])


@endpoint("GET", "HEAD", "POST")
def not_found(request: HttpRequest, fmt: str, rest: str = "") -> HttpResponse:
    raise Open311Error(
        404, f"no such resource: {rest or '/'} (resources end in .json or .xml; see discovery)"
    )


# --------------------------------------------------------------------------- creating requests


def _scalar(name: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise Open311Error(400, f"{name} must be a single value")


def _params(request: HttpRequest) -> tuple[dict[str, str], dict[str, object]]:
    """The POST's fields (query string, then the form-encoded or JSON body) and its answers to
    the service's questions (``attribute[code]``, ``attribute[code][]``)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0:
        raise Open311Error(400, "Content-Length is not a number")
    if length > MAX_BODY:
        raise Open311Error(413, f"the request body is larger than {MAX_BODY // 1024} KiB")
    body = request.body
    if len(body) > MAX_BODY:
        raise Open311Error(413, f"the request body is larger than {MAX_BODY // 1024} KiB")
    pairs: list[tuple[str, object]] = [(k, v) for k, vs in request.GET.lists() for v in vs]
    kind = request.content_type or ""
    if kind == "multipart/form-data":
        try:
            pairs += [(k, v) for k, vs in request.POST.lists() for v in vs]
        except MultiPartParserError as exc:
            raise Open311Error(400, f"the multipart body cannot be read: {exc}") from None
    elif body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Open311Error(400, "the request body is not valid UTF-8") from None
        if "json" in kind:
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise Open311Error(400, f"the request body is not valid JSON: {exc}") from None
            if not isinstance(data, dict):
                raise Open311Error(400, "the JSON body must be an object of fields")
            for key, value in data.items():
                if key == "attribute" and isinstance(value, dict):
                    for code, answer in value.items():
                        if isinstance(answer, list):
                            pairs += [(f"attribute[{code}][]", a) for a in answer]
                        else:
                            pairs.append((f"attribute[{code}]", answer))
                elif isinstance(value, list) and _ATTRIBUTE.fullmatch(key):
                    pairs += [(key, a) for a in value]
                else:
                    pairs.append((key, value))
        else:
            try:
                pairs += parse_qsl(
                    text,
                    keep_blank_values=True,
                    encoding="utf-8",
                    errors="strict",
                    max_num_fields=MAX_FIELDS,
                )
            except UnicodeDecodeError:
                raise Open311Error(400, "the form data is not valid UTF-8") from None
            except ValueError:
                raise Open311Error(400, f"more than {MAX_FIELDS} form fields") from None
    if len(pairs) > MAX_FIELDS:
        raise Open311Error(400, f"more than {MAX_FIELDS} fields")
    params: dict[str, str] = {}
    answers: dict[str, object] = {}
    for key, raw in pairs:
        value = _scalar(key, raw)
        if _CONTROL.search(value) or _CONTROL.search(key):
            raise Open311Error(400, f"{key[:64]} contains control characters")
        matched = _ATTRIBUTE.fullmatch(key)
        if key.startswith("attribute") and not matched:
            raise Open311Error(
                400, f"{key[:80]} is not of the form attribute[code] or attribute[code][]"
            )
        if matched:
            code, many = matched.groups()
            before = answers.get(code)
            if many or before is not None:
                listed = (
                    before if isinstance(before, list) else ([] if before is None else [before])
                )
                answers[code] = [*listed, value]
            else:
                answers[code] = value
        else:
            params[key] = value
    return params, answers


def _field(params: dict[str, str], name: str, limit: int) -> str:
    value = params.get(name, "").strip()
    if len(value) > limit:
        raise Open311Error(400, f"{name} is longer than {limit:,} characters")
    return value


def _api_key(params: dict[str, str]) -> ApiKey:
    key = params.get("api_key", "").strip()
    if not key:
        raise Open311Error(403, "api_key was not provided -- can't proceed with create_request.")
    found = ApiKey.objects.filter(key=key[:64], is_active=True).first()
    if found is None or found.key != key:
        raise Open311Error(403, "Invalid api_key received -- can't proceed with create_request.")
    return found


def _reporter(params: dict[str, str]) -> dict[str, str]:
    email = _field(params, "email", 100)
    if email:
        try:
            EmailValidator()(email)
        except ValidationError:
            raise Open311Error(400, "email is not a valid e-mail address") from None
    phone = _field(params, "phone", 32)
    if phone and not _PHONE.fullmatch(phone):
        raise Open311Error(400, "phone may hold only digits, spaces, +, -, ( and )")
    name = " ".join(
        n for n in (_field(params, "first_name", 50), _field(params, "last_name", 50)) if n
    )
    _field(params, "account_id", 100)  # accepted; there is no account to link it to
    return {
        "name": name,
        "phone": phone,
        "email": email,
        "device_id": _field(params, "device_id", 100),
    }


def _inside_box(city: Area, lon: float, lat: float) -> bool:
    """Whether a point lies within the city's bounding box (True when it has no boundary)."""
    poly = city.polygon or {}
    rings = poly.get("coordinates") or []
    if poly.get("type") == "Polygon":
        rings = [rings[0]] if rings else []
    elif poly.get("type") == "MultiPolygon":
        rings = [p[0] for p in rings if p]
    else:
        return True
    points = [pt for ring in rings for pt in ring]
    if not points:
        return True
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return min(lons) <= lon <= max(lons) and min(lats) <= lat <= max(lats)


def _place(params: dict[str, str], city: Area) -> tuple[Area, float | None, float | None, str]:
    lat, lon = params.get("lat", "").strip(), params.get("long", "").strip()
    address = _field(params, "address_string", 300)
    address_id = _field(params, "address_id", 15)
    area = None
    if address_id:
        area = Area.objects.filter(code=address_id).first()
        if area is None:
            raise Open311Error(400, f"address_id {address_id} is not a known area code")
    x = y = None
    if lat or lon:
        if not (lat and lon):
            raise Open311Error(400, "lat and long must be sent together")
        try:
            x, y = check_point(lon, lat)
        except CaseError as exc:
            raise Open311Error(400, f"lat/long: {exc}") from None
        found = locate(x, y)
        if found is None and not _inside_box(city, x, y):
            raise Open311Error(400, f"lat/long lies outside the city ({city.name})")
        area = found or area
    elif not (address or address_id):
        raise Open311Error(
            400, "a location is required: lat and long, address_string or address_id"
        )
    return area or city, x, y, address


def _media_url(params: dict[str, str]) -> str:
    url = _field(params, "media_url", 500)
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise Open311Error(400, "media_url must be an http or https URL") from None
    return url


def _take_in(intake: Intake, actor: str) -> Case:
    """take_in, tried again while SQLite is busy with another process's write (take_in is one
    transaction, so a locked attempt stored nothing; clashing tracking numbers it retries
    itself)."""
    for attempt in range(3):
        try:
            return take_in(intake, actor=actor)
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == 2:
                raise
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def _create(request: HttpRequest, fmt: str) -> HttpResponse:
    params, answers = _params(request)
    api_key = _api_key(params)
    client = request.META.get("REMOTE_ADDR", "")
    if not ratelimit.hit(f"open311:{api_key.key}:{client}", limit=RATE_LIMIT, per=RATE_PER):
        wait = max(1, math.ceil(RATE_PER - time.time() % RATE_PER))
        raise Open311Error(
            429,
            f"more than {RATE_LIMIT} requests in {RATE_PER} seconds from this key and address; "
            f"try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    _check_jurisdiction(params.get("jurisdiction_id"))
    code = params.get("service_code", "").strip()
    if not code:
        raise Open311Error(400, "service_code was not provided")
    service = Service.objects.filter(code=code, is_active=True).select_related("department").first()
    if service is None:
        raise Open311Error(404, f"service_code {code} was not found")
    city = _city()
    area, lon, lat, address = _place(params, city)
    description = _field(params, "description", MAX_DESCRIPTION)
    intake = Intake(
        channel=Case.Channel.OPEN311,
        # the spec makes the description optional; the one window needs words to route by
        description=description or address or service.name_zh,
        service=service,
        area=area,
        lon=lon,
        lat=lat,
        address=address,
        attributes=answers,
        reporter=_reporter(params),
        media_url=_media_url(params),
    )
    try:
        case = _take_in(intake, actor=f"open311:{api_key.name}")
    except CaseError as exc:
        message = str(exc)
        if exc.field and exc.field not in message:
            message = f"{exc.field}: {message}"
        raise Open311Error(404 if exc.code == 404 else 400, message) from None
    notice = _say(
        "notice",
        dept=service.department.name,
        days=service.sla_working_days,
        due=timezone.localtime(case.due_at).strftime("%Y-%m-%d %H:%M") if case.due_at else "-",
    )
    return render(
        fmt,
        "service_requests",
        [{"service_request_id": case.tracking_no, "service_notice": notice, "account_id": None}],
    )


@endpoint("GET", "POST")
def service_requests(request: HttpRequest, fmt: str) -> HttpResponse:
    if request.method == "POST":
        return _create(request, fmt)
    return _search(request, fmt)
