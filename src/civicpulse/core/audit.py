"""The audit chain: who did what to which object, each entry sealed by the hash of the one before.

An entry's hash covers its own fields and the previous entry's hash, so editing an entry breaks
its own hash, deleting one leaves a gap in ``seq`` or a dangling tip, and swapping two breaks the
``prev_hash`` links. ``verify`` walks the chain once and names the first entry that does not fit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from civicpulse.core.models import AuditEntry, AuditHead

GENESIS = "0" * 64


def _digest(
    seq: int,
    at: str,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict,
    prev_hash: str,
) -> str:
    body = json.dumps(
        [seq, at, actor, action, object_type, object_id, detail, prev_hash],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _entry_digest(entry: AuditEntry) -> str:
    return _digest(
        entry.seq,
        entry.at.isoformat(),
        entry.actor,
        entry.action,
        entry.object_type,
        entry.object_id,
        entry.detail,
        entry.prev_hash,
    )


def actor_name(actor) -> str:
    """How an actor is written: a user's name, a given string, or "system"."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return getattr(actor, "username", None) or str(actor)


def record(
    actor,
    action: str,
    obj=None,
    *,
    object_type: str = "",
    object_id: str = "",
    detail: dict | None = None,
) -> AuditEntry:
    """Append one entry. ``obj`` may be a model instance; otherwise name the type and id."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    detail = json.loads(json.dumps(detail or {}, ensure_ascii=False, default=str))
    with transaction.atomic():
        head, _created = AuditHead.objects.select_for_update().get_or_create(
            id=1, defaults={"seq": 0, "hash": GENESIS}
        )
        entry = AuditEntry(
            seq=head.seq + 1,
            at=timezone.now(),
            actor=actor_name(actor),
            action=action,
            object_type=object_type,
            object_id=str(object_id)[:64],
            detail=detail,
            prev_hash=head.hash,
        )
        entry.hash = _entry_digest(entry)
        entry.save()
        head.seq, head.hash = entry.seq, entry.hash
        head.save(update_fields=["seq", "hash"])
    return entry


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"audit chain broken at entry {self.seq}: {self.reason}"


def _entries(batch: int = 5000) -> Iterator[AuditEntry]:
    last = 0
    while True:
        rows = list(AuditEntry.objects.filter(seq__gt=last).order_by("seq")[:batch])
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify() -> tuple[int, Break | None]:
    """Walk the chain; return how many entries hold and the first break, if any."""
    expected_seq, prev_hash, count = 1, GENESIS, 0
    for entry in _entries():
        if entry.seq != expected_seq:
            return count, Break(
                expected_seq, f"entry {expected_seq} is missing (next present is {entry.seq})"
            )
        if entry.prev_hash != prev_hash:
            return count, Break(
                entry.seq, "it does not follow the entry before it (entries removed or reordered)"
            )
        if _entry_digest(entry) != entry.hash:
            return count, Break(entry.seq, "its content was changed after it was written")
        prev_hash, expected_seq, count = entry.hash, expected_seq + 1, count + 1
    head = AuditHead.objects.filter(id=1).first()
    if head is not None and (head.seq != count or head.hash != prev_hash):
        return count, Break(
            count + 1 if head.seq > count else head.seq,
            f"the chain ends at entry {count} but its tip says {head.seq} "
            "(entries removed from the end)",
        )
    return count, None
