"""Survivorship: which record's value each attribute of a golden record takes.

Departments disagree: the police register spells a name one way, a hotline caller another; a
phone number changes and the newest roll has it. Each attribute therefore has its own rule, an
ordered list of criteria, and the first criterion that separates the candidates decides:

* ``valid`` - a value whose identifier check passed beats one that failed (an invalid ID number
  is never chosen while a valid one exists, and is never "fixed" either);
* ``trusted`` - the value from the source with the higher ``Source.trust``;
* ``recent`` - the value observed last (``SourceRecord.observed_at``).

A full tie goes to the record taken in first (lowest id), so a golden value does not flip when
an equally good record arrives. The rules are data: a city changes them with the
``CIVICPULSE_SURVIVORSHIP`` setting (``{kind: {attribute: [criteria]}}``, merged over
:data:`RULES`). Provenance keeps, per attribute, the record, its source, the rule, the criterion
that decided and the time of the value, so every golden value can be traced and explained.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from civicpulse.core.models import Area
from civicpulse.identity.models import Entity, EntityEvent, LinkRun, SourceRecord

__all__ = [
    "CRITERIA",
    "IDENTIFIER",
    "RULES",
    "Candidate",
    "candidates",
    "FIELDS",
    "Golden",
    "golden",
    "refresh",
    "refresh_many",
    "rules_for",
    "survive",
]

CRITERIA = ("valid", "trusted", "recent")

RULES: dict[str, dict[str, tuple[str, ...]]] = {
    "resident": {
        "name": ("trusted", "recent"),
        "id_number": ("valid", "trusted", "recent"),
        "gender": ("trusted", "recent"),
        "birth_date": ("trusted", "recent"),
        "phone": ("valid", "recent", "trusted"),
        "address": ("recent", "trusted"),
    },
    "enterprise": {
        "name": ("trusted", "recent"),
        "uscc": ("valid", "trusted", "recent"),
        "legal_representative": ("recent", "trusted"),
        "phone": ("valid", "recent", "trusted"),
        "address": ("recent", "trusted"),
        "industry_code": ("trusted", "recent"),
    },
}

# the attribute whose golden value becomes Entity.identifier (and its normalised column)
IDENTIFIER = {"resident": "id_number", "enterprise": "uscc"}


@dataclass(frozen=True)
class Candidate:
    """What survivorship needs to know of one record (a SourceRecord, or anything like it)."""

    record: int
    source: str
    trust: int
    observed_at: dt.datetime
    attributes: Mapping[str, object]
    normalised: Mapping[str, object] = field(default_factory=dict)
    invalid: frozenset[str] = frozenset()  # fields whose check failed


def candidates(records: Iterable[SourceRecord]) -> list[Candidate]:
    """SourceRecords as candidates (select_related("source") saves a query per record)."""
    return [
        Candidate(
            record=r.pk,
            source=r.source.name,
            trust=r.source.trust,
            observed_at=r.observed_at,
            attributes=r.attributes or {},
            normalised=r.normalised or {},
            invalid=frozenset(p.get("field") for p in (r.problems or [])),
        )
        for r in records
    ]


def rules_for(kind: str) -> dict[str, tuple[str, ...]]:
    """The rules in force for ``kind``: :data:`RULES` with the city's setting laid over."""
    if kind not in RULES:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(RULES)}")
    rules = dict(RULES[kind])
    for attribute, criteria in (
        getattr(settings, "CIVICPULSE_SURVIVORSHIP", {}).get(kind, {}).items()
    ):
        unknown = [c for c in criteria if c not in CRITERIA]
        if unknown:
            raise ValueError(
                f"survivorship rule for {kind} {attribute} names unknown criteria {unknown}; "
                f"known: {', '.join(CRITERIA)}"
            )
        rules[attribute] = tuple(criteria)
    return rules


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _score(candidate: Candidate, attribute: str, criterion: str):
    if criterion == "valid":
        return attribute not in candidate.invalid
    if criterion == "trusted":
        return candidate.trust
    return candidate.observed_at


def _winner(attribute: str, rule: Sequence[str], offered: list[Candidate]) -> tuple[Candidate, str]:
    """The best candidate and the criterion that picked it out."""
    remaining = sorted(offered, key=lambda c: c.record)
    for criterion in rule:
        if len(remaining) == 1:
            break
        best = max(_score(c, attribute, criterion) for c in remaining)
        kept = [c for c in remaining if _score(c, attribute, criterion) == best]
        if len(kept) < len(remaining) and len(kept) == 1:
            return kept[0], criterion
        remaining = kept
    if len(offered) == 1:
        return remaining[0], "only"
    return remaining[0], "first taken in"


def survive(
    kind: str,
    offered: Iterable[Candidate],
    rules: Mapping[str, Sequence[str]] | None = None,
) -> tuple[dict, dict]:
    """The golden attributes of one entity and where each came from.

    Returns ``(attributes, provenance)``; provenance maps each attribute to ``{"record",
    "source", "rule", "by", "at"}``. An attribute no record gives is left out.
    """
    rules = rules_for(kind) if rules is None else rules
    offered = list(offered)
    attributes, provenance = {}, {}
    for attribute, rule in rules.items():
        having = [c for c in offered if _present(c.attributes.get(attribute))]
        if not having:
            continue
        chosen, by = _winner(attribute, rule, having)
        value = chosen.attributes[attribute]
        attributes[attribute] = value.strip() if isinstance(value, str) else value
        provenance[attribute] = {
            "record": chosen.record,
            "source": chosen.source,
            "rule": " > ".join(rule),
            "by": by,
            "at": chosen.observed_at.isoformat(),
        }
    return attributes, provenance


@dataclass(frozen=True)
class Golden:
    """One entity's golden record as survivorship chose it."""

    attributes: dict
    provenance: dict
    identifier: str  # the normalised golden ID number / credit code, "" when none is valid
    area_code: str | None  # the area the chosen address names, as the gazetteer knew it


def golden(
    kind: str, offered: Iterable[Candidate], rules: Mapping[str, Sequence[str]] | None = None
) -> Golden:
    """The golden record of one entity's candidates (no database)."""
    offered = list(offered)
    attributes, provenance = survive(kind, offered, rules)
    by_record = {c.record: c for c in offered}
    identifier = ""
    key = IDENTIFIER[kind]
    if key in provenance:
        chosen = by_record[provenance[key]["record"]]
        if key not in chosen.invalid:  # never the key people are looked up by if invalid
            identifier = str(chosen.normalised.get(key) or attributes[key])[:18]
    area_code = None
    if "address" in provenance:
        area_code = by_record[provenance["address"]["record"]].normalised.get("area_code")
    return Golden(attributes, provenance, identifier, area_code or None)


def _apply(entity: Entity, chosen: Golden, areas: Mapping[str, int]) -> list[str] | None:
    """Set ``chosen`` on ``entity`` (unsaved); the changed attribute names, None if nothing
    changed at all."""
    before = entity.attributes or {}
    area_id = areas.get(chosen.area_code) if chosen.area_code else None
    changed = [
        name
        for name in sorted(set(chosen.attributes) | set(before))
        if chosen.attributes.get(name) != before.get(name)
    ]
    if (
        not changed
        and chosen.provenance == entity.provenance
        and chosen.identifier == entity.identifier
        and area_id == entity.area_id
    ):
        return None
    entity.attributes, entity.provenance = chosen.attributes, chosen.provenance
    entity.identifier, entity.area_id = chosen.identifier, area_id
    return changed


FIELDS = ["attributes", "provenance", "identifier", "area", "updated_at"]


def refresh_many(
    entities: Iterable[Entity],
    *,
    run: LinkRun | None = None,
    actor: str = "system",
    note: bool = True,
    batch: int = 2_000,
) -> int:
    """Recompute the golden records of ``entities`` from the records they hold now, saving
    those that changed and noting each change as a "survived" event (unless ``note`` is
    false: a new entity's "created" event says enough). Returns how many changed.

    Works in batches with a few queries each, so a full run over a million records is not a
    million round trips."""
    from civicpulse.identity.master import insert_rows, save_fields  # master builds on this

    entities = list(entities)
    kinds = {e.kind for e in entities}
    rules = {kind: rules_for(kind) for kind in kinds}
    changed_count = 0
    for start in range(0, len(entities), batch):
        chunk = entities[start : start + batch]
        held: dict[int, list[SourceRecord]] = {e.pk: [] for e in chunk}
        for record in SourceRecord.objects.filter(entity__in=[e.pk for e in chunk]).select_related(
            "source"
        ):
            held[record.entity_id].append(record)
        chosen = {e.pk: golden(e.kind, candidates(held[e.pk]), rules[e.kind]) for e in chunk}
        codes = {g.area_code for g in chosen.values() if g.area_code}
        areas = dict(Area.objects.filter(code__in=codes).values_list("code", "pk"))
        now = timezone.now()
        saved, events = [], []
        for entity in chunk:
            changed = _apply(entity, chosen[entity.pk], areas)
            if changed is None:
                continue
            entity.updated_at = now
            saved.append(entity)
            if changed and note:
                events.append(
                    EntityEvent(
                        entity=entity,
                        action=EntityEvent.Action.SURVIVED,
                        at=now,
                        actor=actor,
                        run=run,
                        detail={
                            "changed": changed,
                            "records": sorted(r.pk for r in held[entity.pk]),
                        },
                    )
                )
        save_fields(Entity, saved, FIELDS)
        insert_rows(EntityEvent, events)
        changed_count += len(saved)
    return changed_count


def refresh(entity: Entity, *, run: LinkRun | None = None, actor: str = "system") -> bool:
    """Recompute one entity's golden record; whether it changed."""
    return refresh_many([entity], run=run, actor=actor) > 0
