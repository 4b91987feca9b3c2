"""The push API: a partner system (a monitoring vendor, a district's own collector) sends posts.

    POST /api/v1/opinion/posts
    Authorization: Bearer <the push source's token>
    {"posts": [{"id": "...", "text": "...", "created_at": "2026-11-24T08:00:00+08:00", ...}]}

A hostile or broken request is turned away before anything is read into the lake, and each is
logged as a :class:`RejectedPush` (client address, source when known, status, reason), in this
order of checks:

    401  no ``Authorization: Bearer`` token, or not the token of a push source, or the source
         is not active (the token is compared as its SHA-256 with ``hmac.compare_digest``)
    429  more than PUSHES_PER_MINUTE requests from the source in the current minute
         (``core.ratelimit``, counted in the store, so every server process counts together)
    413  a body larger than MAX_BODY (by its Content-Length and by what is actually read),
         or more than MAX_POSTS posts
    400  a body that is not UTF-8 JSON, or not an object with a non-empty list ``posts``

Then each item is checked on its own: an item that is not an object, lacks a field or carries a
wrong value is quarantined with its index and reason, and the others go on to ``posts.store``
(which also quarantines what it refuses and skips posts it already has). The answer is 202 with
what became of each: accepted, duplicates, near copies, quarantined, and the problems by index.
A stored batch is followed by the ``opinion.watch`` job, so warnings are assessed within one
worker cycle rather than at the next periodic run.

Why django-ninja and not a plain view: the project's API lives in one NinjaAPI with one OpenAPI
document; the endpoint still reads the raw body itself (no body parameter) so that it can refuse
by size before reading and quarantine bad items instead of failing the whole request with 422.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError
from ninja.security import HttpBearer
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from civicpulse.core import ratelimit
from civicpulse.core.queue import enqueue
from civicpulse.opinion.models import IngestBatch, RejectedPush, Source, hash_token
from civicpulse.opinion.records import MAX_TEXT, RawPost, Refusal

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # bytes
MAX_POSTS = 500  # per request
PUSHES_PER_MINUTE = 60  # per source
WATCH_JOB = "opinion.watch"
RAW_LIMIT = 2000
ISO_HINT = "must be ISO 8601 text with its offset, e.g. 2026-11-24T08:00:00+08:00"

router = Router(tags=["opinion"])


class PushRefused(HttpError):
    """A push turned away; ``headers`` go on the answer (WWW-Authenticate, Retry-After)."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(status, message)
        self.headers = headers or {}


def _client(request: HttpRequest) -> str:
    return (request.META.get("REMOTE_ADDR") or "")[:64]


def refuse(
    request: HttpRequest,
    status: int,
    reason: str,
    *,
    source: Source | None = None,
    headers: dict[str, str] | None = None,
) -> PushRefused:
    """Log a turned-away push and make the exception that answers it."""
    RejectedPush.objects.create(
        client=_client(request), source=source, status=status, reason=reason[:300]
    )
    return PushRefused(status, reason, headers=headers)


# --------------------------------------------------------------------------- who is pushing


def source_for(token: str) -> Source | None:
    """The push source whose token this is (active or not), or None.

    Candidates are found by the token's first characters (kept in clear); the SHA-256 of the
    token is then compared with ``hmac.compare_digest``, so a wrong guess takes as long whatever
    it shares with the right one."""
    if not 8 <= len(token) <= 200:
        return None
    digest = hash_token(token)
    for source in Source.objects.filter(kind=Source.Kind.PUSH, token_prefix=token[:8]):
        if source.token_hash and hmac.compare_digest(source.token_hash, digest):
            return source
    return None


class PushToken(HttpBearer):
    """``Authorization: Bearer <token>`` of an active push source; request.auth is the Source."""

    CHALLENGE = {"WWW-Authenticate": 'Bearer realm="civicpulse push"'}

    def __call__(self, request: HttpRequest) -> Source:
        header = request.headers.get(self.header, "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise refuse(
                request,
                401,
                "the request has no Authorization: Bearer token",
                headers=self.CHALLENGE,
            )
        if scheme.lower() != "bearer" or not token.strip():
            raise refuse(
                request, 401, "Authorization must be 'Bearer <token>'", headers=self.CHALLENGE
            )
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> Source:
        source = source_for(token)
        if source is None:
            raise refuse(
                request,
                401,
                "the token is not the token of a push source",
                headers=self.CHALLENGE,
            )
        if not source.is_active:
            raise refuse(
                request,
                401,
                f"source {source.name} is not active",
                source=source,
                headers=self.CHALLENGE,
            )
        return source


# --------------------------------------------------------------------------- what is pushed


class PushItem(BaseModel):
    """One post as a client sends it. Unknown keys are ignored; a null is the same as leaving
    the key out."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str = Field(min_length=1, max_length=200, description="the post's id at the source")
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    created_at: AwareDatetime = Field(description="ISO 8601 with its offset")
    author: str = Field("", max_length=200, description="kept only as a keyed hash")
    url: str = Field("", max_length=500)
    reach: int = Field(0, ge=0, description="followers or views")
    reposts: int = Field(0, ge=0)
    lon: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False)
    lat: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    place: str = Field("", max_length=200, description="a place name the source gave")

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if v is not None}
        if isinstance(data.get("id"), int) and not isinstance(data["id"], bool):
            data["id"] = str(data["id"])  # numeric ids, as many platforms have
        return data

    @field_validator("created_at", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        if not isinstance(value, str):  # a number could be seconds or milliseconds: refuse
            raise PydanticCustomError("iso_time", ISO_HINT)
        return value


BODY_SCHEMA = {
    "type": "object",
    "required": ["posts"],
    "properties": {
        "posts": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_POSTS,
            "items": PushItem.model_json_schema(),
        }
    },
}


class Problem(Schema):
    index: int = Field(description="the item's position in posts, from 0")
    field: str
    reason: str


class PushResult(Schema):
    batch: int
    received: int
    accepted: int
    duplicates: int = Field(description="posts stored before (same id), skipped")
    near_duplicates: int = Field(description="stored, but marked as a copy of an earlier post")
    quarantined: int
    problems: list[Problem]


class Detail(Schema):
    detail: str


def _body(request: HttpRequest, source: Source) -> bytes:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise refuse(request, 400, "Content-Length is not a number", source=source) from None
    too_large = f"the body is larger than {MAX_BODY:,} bytes"
    if declared > MAX_BODY:
        raise refuse(request, 413, f"{too_large} ({declared:,})", source=source)
    body = request.read(MAX_BODY + 1)  # what arrives, whatever the header said
    if len(body) > MAX_BODY:
        raise refuse(request, 413, too_large, source=source)
    if not body.strip():
        if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            reason = "a chunked body is not read: send the body with its Content-Length"
        else:
            reason = 'the body is empty; send {"posts": [...]}'
        raise refuse(request, 400, reason, source=source)
    return body


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _posts(request: HttpRequest, source: Source, body: bytes) -> list:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise refuse(
            request, 400, f"the body is not UTF-8 text (byte {exc.start + 1})", source=source
        ) from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise refuse(request, 400, f"the body is not valid JSON: {exc}", source=source) from None
    except RecursionError:
        raise refuse(
            request, 400, "the body is not valid JSON: nested too deep", source=source
        ) from None
    if not isinstance(data, dict) or "posts" not in data:
        raise refuse(request, 400, 'the body must be a JSON object {"posts": [...]}', source=source)
    posts = data["posts"]
    if not isinstance(posts, list):
        raise refuse(request, 400, "posts must be a list of post objects", source=source)
    if not posts:
        raise refuse(request, 400, "posts is empty", source=source)
    if len(posts) > MAX_POSTS:
        raise refuse(
            request, 413, f"{len(posts):,} posts; at most {MAX_POSTS} a request", source=source
        )
    return posts


def _raw(item) -> str:
    text = json.dumps(item, ensure_ascii=False, default=str)
    return text if len(text) <= RAW_LIMIT else text[: RAW_LIMIT - 1] + "…"


def read_items(source: Source, items: list) -> list[RawPost | Refusal]:
    """Each pushed item as a RawPost, or a Refusal naming its field; line = index + 1."""
    out: list[RawPost | Refusal] = []
    for index, item in enumerate(items):
        line = index + 1
        if not isinstance(item, dict):
            out.append(Refusal(line, "the item is not a JSON object", "", _raw(item)))
            continue
        try:
            p = PushItem.model_validate(item)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            field = ".".join(str(part) for part in errors[0]["loc"]) if errors else ""
            reason = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'item'}: {_message(e)}" for e in errors
            )
            out.append(Refusal(line, reason, field, _raw(item)))
            continue
        out.append(
            RawPost(
                source=source.name,
                external_id=p.id,
                text=p.text,
                created_at=p.created_at,
                author=p.author,
                url=p.url,
                reach=p.reach,
                reposts=p.reposts,
                lon=p.lon,
                lat=p.lat,
                place=p.place,
                line=line,
            )
        )
    return out


def _message(error: dict) -> str:
    if error["type"] == "timezone_aware":
        return "has no offset: " + ISO_HINT
    if error["type"] == "missing":
        return "is missing"
    return error["msg"]


def queue_watch(now: float | None = None) -> None:
    """Ask for the warnings to be assessed now. One job a minute at most: when this minute's
    job is already queued, run or running, the next minute's is queued to start then, so a
    post pushed after the job began is still assessed."""
    now = time.time() if now is None else now
    minute = int(now // 60)
    try:
        if enqueue(WATCH_JOB, key=f"{WATCH_JOB}:push:{minute}") is None:
            enqueue(WATCH_JOB, key=f"{WATCH_JOB}:push:{minute + 1}", delay=(minute + 1) * 60 - now)
    except KeyError:
        log.warning("no job is registered as %s: pushed posts wait for its periodic run", WATCH_JOB)


def result(batch: IngestBatch, received: int) -> dict:
    problems = [
        {"index": max(0, q.line - 1), "field": q.field, "reason": q.reason}
        for q in batch.quarantine.order_by("line", "id")
    ]
    return {
        "batch": batch.pk,
        "received": received,
        "accepted": batch.accepted,
        "duplicates": batch.duplicates,
        "near_duplicates": batch.near_duplicates,
        "quarantined": batch.quarantined,
        "problems": problems,
    }


@router.post(
    "/posts",
    auth=PushToken(),
    response={202: PushResult, 400: Detail, 401: Detail, 413: Detail, 429: Detail, 503: Detail},
    summary="Push posts from a partner system",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": BODY_SCHEMA}}}
    },
)
def push_posts(request: HttpRequest):
    """Up to MAX_POSTS posts a request, at most PUSHES_PER_MINUTE requests a minute per source.
    Items that cannot be stored are quarantined and listed under ``problems`` by index; the
    others are stored. Sending the same posts again is safe: they come back as duplicates."""
    from civicpulse.opinion import posts  # scoring loads its models on the first push

    source: Source = request.auth
    if not ratelimit.hit(f"opinion.push:{source.pk}", limit=PUSHES_PER_MINUTE, per=60):
        wait = max(1, math.ceil(60 - time.time() % 60))
        raise refuse(
            request,
            429,
            f"more than {PUSHES_PER_MINUTE} pushes a minute from source {source.name}; "
            f"try again in {wait} s",
            source=source,
            headers={"Retry-After": str(wait)},
        )
    items = _posts(request, source, _body(request, source))
    try:
        batch = posts.store(source, read_items(source, items), name="push")
    except Exception:
        log.exception("storing a push from source %s failed", source.name)
        raise PushRefused(
            503,
            "the posts could not be stored (the error is logged); send them again later: "
            "posts already stored come back as duplicates",
            headers={"Retry-After": "60"},
        ) from None
    if batch.accepted:
        queue_watch()
    return Status(202, result(batch, len(items)))
