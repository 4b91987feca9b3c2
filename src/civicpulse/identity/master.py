"""The master index: who each record is, kept stable across runs and people's rulings.

A full run (:func:`run_full`) links every record of a kind, clusters the scored pairs under the
rulings people have made, and then *reconciles* the clusters with the entities that already
exist, so that master IDs survive: a cluster takes the code of the entity holding most of its
records; a cluster that gathers several entities merges them (the others are kept, marked
merged, and the merge can be undone); only records that match no entity get a new code, and a
code is never given twice. An incremental link (:func:`link_new`) places new records with the
model the last full run trained, touching no other entity.

People rule on uncertain pairs (:func:`decide`), or merge and split by hand (:func:`merge`,
:func:`split`); each ruling is stored as a "same" or "different" :class:`ReviewPair` that every
later run obeys, and each change is an :class:`EntityEvent` that :func:`undo` can reverse without
losing either side's history. Every change a person makes is written to the audit chain.
"""

from __future__ import annotations

import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd
from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicpulse.core import audit
from civicpulse.identity import clustering, survivorship
from civicpulse.identity import records as record_store
from civicpulse.identity.models import (
    Entity,
    EntityEvent,
    Kind,
    LinkRun,
    ReviewPair,
    SourceRecord,
)

__all__ = [
    "CODE_DIGITS",
    "FIELD_LABELS",
    "PREFIX",
    "MasterError",
    "apply_links",
    "decide",
    "explain",
    "insert_rows",
    "latest_model_run",
    "link_new",
    "merge",
    "run_full",
    "save_fields",
    "split",
    "undo",
]

PREFIX = {Kind.RESIDENT: "R", Kind.ENTERPRISE: "E"}
CODE_DIGITS = 10
BATCH = 1_000

Action = EntityEvent.Action
LinkedBy = SourceRecord.LinkedBy

# What each compared field is called on a page explaining a match.
FIELD_LABELS = {
    "name": _("name"),
    "id_number": _("resident ID number"),
    "birth_date": _("date of birth"),
    "gender": _("gender"),
    "phone": _("phone"),
    "address": _("address"),
    "uscc": _("unified social credit code"),
    "legal_rep": _("legal representative"),
    "industry_code": _("industry"),
}


class MasterError(ValueError):
    """A master-index operation cannot be done as asked; the message says why. Nothing of the
    operation has been applied."""


# ============================================================================================
# Small helpers
# ============================================================================================


def _kind(kind: str) -> str:
    if kind not in Kind.values:
        raise MasterError(f"unknown kind {kind!r}; expected one of {', '.join(Kind.values)}")
    return kind


def _thresholds(thresholds: dict | None) -> dict:
    from civicpulse.identity.linking import DEFAULT_THRESHOLDS

    chosen = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    unknown = set(chosen) - set(DEFAULT_THRESHOLDS)
    if unknown:
        raise MasterError(f"unknown thresholds {sorted(unknown)}; expected 'link' and 'review'")
    link, review = float(chosen["link"]), float(chosen["review"])
    if not 0 < review <= link <= 1:
        raise MasterError(f"thresholds must satisfy 0 < review ({review}) <= link ({link}) <= 1")
    return {"link": link, "review": review}


def _ordered(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def _older(a: Entity, b: Entity) -> tuple[Entity, Entity]:
    """(the older, the younger): the older entity's code is the one kept."""
    return (a, b) if (a.created_at, a.pk) <= (b.created_at, b.pk) else (b, a)


def _lock_codes(kind: str) -> None:
    """Serialise code-giving between concurrent runs. PostgreSQL needs an explicit lock;
    SQLite already lets one writer at a time into a transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(f"master:{kind}".encode())]
            )


def _new_codes(kind: str, count: int) -> list[str]:
    """``count`` codes never given before. Entities are never deleted, so the highest code
    given so far is still in the table; call inside the transaction that creates them."""
    prefix = PREFIX[kind]
    _lock_codes(kind)
    highest = Entity.objects.filter(code__startswith=prefix).aggregate(top=Max("code"))["top"]
    start = int(highest[len(prefix) :]) + 1 if highest else 1
    return [f"{prefix}{n:0{CODE_DIGITS}d}" for n in range(start, start + count)]


def save_fields(model, objects: list, fields: list[str], *, batch: int = 10_000) -> None:
    """Save ``fields`` of many model instances by primary key with plain prepared UPDATEs run
    by the driver's ``executemany``.

    Django's ``bulk_update`` builds a CASE per field whose cost grows with the batch squared.
    Foreign keys get a statement of their own: measured on SQLite 3.40 inside a long
    transaction, an UPDATE setting a foreign key together with other columns ran ~100 times
    slower than the two updates apart."""
    if not objects:
        return
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    groups = [[c] for c in columns if c.is_relation] + [[c for c in columns if not c.is_relation]]
    with connection.cursor() as cursor:
        for group in filter(None, groups):
            sql = (
                f"UPDATE {quote(model._meta.db_table)} SET "
                + ", ".join(f"{quote(c.column)} = %s" for c in group)
                + f" WHERE {quote(model._meta.pk.column)} = %s"
            )
            for start in range(0, len(objects), batch):
                cursor.executemany(
                    sql,
                    [
                        [c.get_db_prep_save(getattr(o, c.attname), connection) for c in group]
                        + [o.pk]
                        for o in objects[start : start + batch]
                    ],
                )


def insert_rows(model, objects: list, *, batch: int = 10_000) -> None:
    """Insert many new model instances with one prepared INSERT run by ``executemany``
    (``bulk_create`` spends more time on itself than SQLite spends storing the rows). Their
    ids are not read back."""
    if not objects:
        return
    quote = connection.ops.quote_name
    columns = [f for f in model._meta.concrete_fields if not f.primary_key]
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} "
        f"({', '.join(quote(c.column) for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(objects), batch):
            cursor.executemany(
                sql,
                [
                    [c.get_db_prep_save(c.pre_save(o, add=True), connection) for c in columns]
                    for o in objects[start : start + batch]
                ],
            )


def _create_entities(kind: str, count: int, now) -> list[Entity]:
    """``count`` new entities with fresh codes, ids filled in."""
    if count == 0:
        return []
    made = [
        Entity(code=code, kind=kind, created_at=now, updated_at=now)
        for code in _new_codes(kind, count)
    ]
    insert_rows(Entity, made)
    ids = dict(
        Entity.objects.filter(code__gte=made[0].code, code__lte=made[-1].code).values_list(
            "code", "pk"
        )
    )
    for entity in made:
        entity.pk = ids[entity.code]
    return made


def _decisions(kind: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The rulings people made, as (record id, record id) text pairs: (same, different)."""
    same, different = [], []
    for a, b, status in ReviewPair.objects.filter(
        kind=kind, status__in=[ReviewPair.Status.SAME, ReviewPair.Status.DIFFERENT]
    ).values_list("record_a_id", "record_b_id", "status"):
        (same if status == ReviewPair.Status.SAME else different).append((str(a), str(b)))
    return same, different


def _with(explanation: object, other: int) -> dict:
    """A pair's explanation as stored on one of its records: which record it was matched to."""
    return {**(explanation if isinstance(explanation, dict) else {}), "with": other}


def _best_pairs(pairs: pd.DataFrame, group_of: dict[str, object]) -> dict[int, tuple]:
    """For each record, its strongest pair to a record of the same group:
    record -> (other record, probability, explanation). Ties go to the lower other id."""
    if pairs.empty:
        return {}
    both = pd.concat(
        [
            pairs.rename(columns={"record_l": "record", "record_r": "other"}),
            pairs.rename(columns={"record_r": "record", "record_l": "other"}),
        ],
        ignore_index=True,
    )
    both = both[both["record"].map(group_of) == both["other"].map(group_of)]
    if both.empty:
        return {}
    both = both.assign(other_id=both["other"].astype(int))
    both = both.sort_values(["match_probability", "other_id"], ascending=[False, True])
    both = both.drop_duplicates("record")
    return {
        int(r): (o, float(p), e)
        for r, o, p, e in zip(
            both["record"],
            both["other_id"],
            both["match_probability"],
            both["explanation"],
            strict=True,
        )
    }


@dataclass
class _Move:
    """A record going to another entity in a run."""

    record: int
    source: int | None  # entity it leaves (None: a record never linked)


def _run_failed(run: LinkRun, error: BaseException) -> None:
    run.status = LinkRun.Status.FAILED
    run.error = f"{type(error).__name__}: {error}"[:5000]
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])


# ============================================================================================
# Full runs
# ============================================================================================


def run_full(
    kind: str,
    *,
    engine: str = "duckdb",
    thresholds: dict | None = None,
    actor="system",
) -> LinkRun:
    """Link every record of ``kind`` again and reconcile the result with the entities that
    exist (see the module docstring). Returns the finished run; if anything fails the run is
    marked failed with the error, the error is raised, and nothing else has changed."""
    from civicpulse.identity import linking

    kind = _kind(kind)
    chosen = _thresholds(thresholds)
    run = LinkRun.objects.create(
        kind=kind,
        mode=LinkRun.Mode.FULL,
        engine=engine,
        started_at=timezone.now(),
        started_by=audit.actor_name(actor),
        thresholds=chosen,
    )
    try:
        frame = record_store.frame(kind)
        if len(frame) >= 2:
            result = linking.link(
                frame,
                kind,
                engine=engine,
                link_threshold=chosen["link"],
                review_threshold=chosen["review"],
            )
            pairs, model, counts = result.pairs, result.model, dict(result.counts)
        else:  # nothing to compare, and nothing to train a model on
            pairs = pd.DataFrame(columns=linking.PAIR_COLUMNS)
            model, counts = {}, {"records": len(frame), "comparisons": 0, "pairs": 0}
        with transaction.atomic():
            counts.update(
                apply_links(run, list(frame["record_id"]), pairs, actor=audit.actor_name(actor))
            )
            run.model, run.counts = model, counts
            run.status, run.finished_at = LinkRun.Status.DONE, timezone.now()
            run.save(update_fields=["model", "counts", "status", "finished_at"])
    except Exception as error:
        _run_failed(run, error)
        raise
    return run


def apply_links(run: LinkRun, record_ids: list[str], pairs: pd.DataFrame, *, actor: str) -> dict:
    """Reconcile the linker's ``pairs`` over ``record_ids`` with the stored entities (call
    inside a transaction). This is the part of :func:`run_full` after Splink, so it can be fed
    pairs from anywhere; returns counts of what it did."""
    kind, link, review = run.kind, run.thresholds["link"], run.thresholds["review"]
    same, different = _decisions(kind)
    known = set(record_ids)
    same = [p for p in same if p[0] in known and p[1] in known]
    different = [p for p in different if p[0] in known and p[1] in known]
    clustered = clustering.cluster_records(
        record_ids, pairs, threshold=link, same=same, different=different
    )
    cluster_of = dict(zip(clustered["record_id"], clustered["cluster_id"], strict=True))
    members: dict[str, list[int]] = defaultdict(list)
    for rid, cid in cluster_of.items():
        members[cid].append(int(rid))

    # read the whole kind and pick: a million ids would not fit in one "IN (...)"
    wanted = {int(r) for r in record_ids}
    stored = {
        pk: (entity, by, p, e)
        for pk, entity, by, p, e in SourceRecord.objects.filter(kind=kind)
        .values_list("pk", "entity_id", "linked_by", "match_probability", "explanation")
        .iterator(chunk_size=10_000)
        if pk in wanted
    }
    if len(stored) != len(wanted):
        raise MasterError("some records to link are not records of this kind")
    entities = {e.pk: e for e in Entity.objects.filter(kind=kind).iterator(chunk_size=10_000)}
    now = timezone.now()

    # 1. each cluster keeps the code of the entity holding most of its records (ties: oldest)
    votes = Counter(
        (cid, stored[pk][0]) for cid, pks in members.items() for pk in pks if stored[pk][0]
    )
    ranked = sorted(
        votes.items(),
        key=lambda item: (
            -item[1],
            entities[item[0][1]].created_at,
            item[0][1],
            item[0][0],
        ),
    )
    target: dict[str, int] = {}
    taken: set[int] = set()
    for (cid, entity_id), _count in ranked:
        if cid not in target and entity_id not in taken:
            target[cid] = entity_id
            taken.add(entity_id)
    fresh_clusters = sorted(cid for cid in members if cid not in target)
    for cid, entity in zip(
        fresh_clusters, _create_entities(kind, len(fresh_clusters), now), strict=True
    ):
        target[cid] = entity.pk
        entities[entity.pk] = entity
    new_entities = {target[cid] for cid in fresh_clusters}

    # 2. what moves where
    moves: dict[int, list[_Move]] = defaultdict(list)  # target entity -> records arriving
    for cid, pks in members.items():
        for pk in sorted(pks):
            if stored[pk][0] != target[cid]:
                moves[target[cid]].append(_Move(pk, stored[pk][0]))
    # an entity that kept no cluster is merged into the entity that took most of its records
    gone = {e for e in (v[0] for v in stored.values()) if e and e not in taken}
    received: dict[int, Counter] = defaultdict(Counter)  # gone entity -> {target: records}
    for entity_id, arriving in moves.items():
        for m in arriving:
            if m.source in gone:
                received[m.source][entity_id] += 1
    absorbed_by: dict[int, int] = {}
    for old in sorted(gone):
        got = received[old]
        absorbed_by[old] = min(got, key=lambda t: (-got[t], entities[t].created_at, t))

    events: list[EntityEvent] = []
    for entity_id, arriving in sorted(moves.items()):
        if entity_id in new_entities:
            events.append(
                EntityEvent(
                    entity_id=entity_id,
                    action=Action.CREATED,
                    at=now,
                    actor=actor,
                    run=run,
                    detail={
                        "records": [m.record for m in arriving],
                        "from": {
                            str(m.record): entities[m.source].code for m in arriving if m.source
                        },
                    },
                )
            )
            continue
        by_source: dict[int | None, list[int]] = defaultdict(list)
        for m in arriving:
            by_source[m.source].append(m.record)
        for source, pks in sorted(by_source.items(), key=lambda i: (i[0] is not None, i[0] or 0)):
            if source is not None and absorbed_by.get(source) == entity_id:
                events.append(
                    EntityEvent(
                        entity_id=entity_id,
                        action=Action.MERGED,
                        at=now,
                        actor=actor,
                        run=run,
                        detail={
                            "absorbed": source,
                            "absorbed_code": entities[source].code,
                            "records": pks,
                        },
                    )
                )
    # 3. the records themselves: entity, how linked, and the pair that explains it
    best = _best_pairs(pairs, cluster_of)
    ruled_same = defaultdict(set)
    for a, b in same:
        if cluster_of[a] == cluster_of[b]:
            ruled_same[int(a)].add(int(b))
            ruled_same[int(b)].add(int(a))
    changed: list[SourceRecord] = []
    touched: set[int] = set()
    linked_events: list[EntityEvent] = []
    for cid, pks in members.items():
        for pk in pks:
            entity_id, old_by, old_p, old_e = stored[pk]
            if pk in ruled_same:
                by, p, e = LinkedBy.REVIEW, None, {"with": min(ruled_same[pk]), "ruling": "same"}
                if pk in best and best[pk][0] in ruled_same[pk]:
                    p, e = best[pk][1], _with(best[pk][2], best[pk][0])
            elif pk in best:
                by, p, e = LinkedBy.MODEL, best[pk][1], _with(best[pk][2], best[pk][0])
            elif len(pks) > 1:  # joined only through a ruling elsewhere in the cluster
                by, p, e = LinkedBy.REVIEW, None, {}
            else:
                by, p, e = LinkedBy.ALONE, None, {}
            new_entity = target[cid]
            if entity_id != new_entity and target[cid] not in new_entities:
                if entity_id is None or absorbed_by.get(entity_id) != new_entity:
                    linked_events.append(
                        EntityEvent(
                            entity_id=new_entity,
                            action=Action.LINKED,
                            at=now,
                            actor=actor,
                            run=run,
                            detail={
                                "record": pk,
                                "from": entities[entity_id].code if entity_id else None,
                                "match_probability": p,
                                "explanation": e,
                            },
                        )
                    )
            if (entity_id, old_by, old_p, old_e) != (new_entity, by, p, e):
                changed.append(
                    SourceRecord(
                        pk=pk,
                        entity_id=new_entity,
                        linked_by=by,
                        match_probability=p,
                        explanation=e,
                        updated_at=now,
                    )
                )
                touched.add(new_entity)
                if entity_id:
                    touched.add(entity_id)
            elif not old_by:
                touched.add(new_entity)
    save_fields(
        SourceRecord,
        changed,
        ["entity", "linked_by", "match_probability", "explanation", "updated_at"],
    )
    for old, into in absorbed_by.items():
        entity = entities[old]
        entity.status, entity.merged_into_id, entity.updated_at = Entity.Status.MERGED, into, now
    save_fields(
        Entity, [entities[old] for old in absorbed_by], ["status", "merged_into", "updated_at"]
    )
    insert_rows(EntityEvent, events + linked_events)

    # 4. golden records of everything touched, and the queue of uncertain pairs
    survivorship.refresh_many(
        [entities[e] for e in sorted(touched & new_entities)], run=run, actor=actor, note=False
    )
    survivorship.refresh_many(
        [entities[e] for e in sorted(touched - new_entities - set(absorbed_by))],
        run=run,
        actor=actor,
    )
    entity_of = {int(rid): target[cid] for rid, cid in cluster_of.items()}
    queued = _queue_uncertain(run, pairs, entity_of, link=link, review=review)
    return {
        "entities_created": len(new_entities),
        "entities_merged": len(absorbed_by),
        "records_moved": sum(len(m) for m in moves.values()),
        "records_updated": len(changed),
        "review_pairs": queued,
        "rulings_obeyed": len(same) + len(different),
    }


def _queue_uncertain(
    run: LinkRun,
    pairs: pd.DataFrame,
    entity_of: dict[int, int],
    *,
    link: float,
    review: float,
    upper: float | None = None,
) -> int:
    """Put pairs scored in [review, upper) whose records sit in different entities in the
    review queue (pending), unless a person has ruled on them; refresh pairs already waiting.
    Pending pairs whose records now share an entity leave the queue. Returns the queue size
    this run contributed."""
    upper = link if upper is None else upper
    now = timezone.now()
    uncertain = pairs[(pairs["match_probability"] >= review) & (pairs["match_probability"] < upper)]
    wanted: dict[tuple[int, int], tuple] = {}
    for left, right, p, w, e in zip(
        uncertain["record_l"],
        uncertain["record_r"],
        uncertain["match_probability"],
        uncertain["match_weight"],
        uncertain["explanation"],
        strict=True,
    ):
        a, b = _ordered(int(left), int(right))
        if entity_of.get(a) is not None and entity_of.get(a) != entity_of.get(b):
            wanted[(a, b)] = (float(p), float(w), e)
    existing = {}
    if wanted:
        ids = sorted({i for pair in wanted for i in pair})
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            for pair in ReviewPair.objects.filter(record_a__in=chunk):
                if (pair.record_a_id, pair.record_b_id) in wanted:
                    existing[(pair.record_a_id, pair.record_b_id)] = pair
    create, update = [], []
    for (a, b), (p, w, e) in wanted.items():
        pair = existing.get((a, b))
        if pair is None:
            create.append(
                ReviewPair(
                    kind=run.kind,
                    record_a_id=a,
                    record_b_id=b,
                    match_probability=p,
                    match_weight=w,
                    explanation=e,
                    run=run,
                    created_at=now,
                )
            )
        elif pair.status == ReviewPair.Status.PENDING:
            pair.match_probability, pair.match_weight, pair.explanation, pair.run = p, w, e, run
            update.append(pair)
    insert_rows(ReviewPair, create)
    save_fields(ReviewPair, update, ["match_probability", "match_weight", "explanation", "run"])
    if run.mode == LinkRun.Mode.FULL:
        stale = [
            pk
            for pk, a, b in ReviewPair.objects.filter(
                kind=run.kind, status=ReviewPair.Status.PENDING
            ).values_list("pk", "record_a_id", "record_b_id")
            if entity_of.get(a) is not None and entity_of.get(a) == entity_of.get(b)
        ]
        for start in range(0, len(stale), BATCH):
            ReviewPair.objects.filter(pk__in=stale[start : start + BATCH]).delete()
    return len(create) + len(update)


# ============================================================================================
# Incremental links
# ============================================================================================


def _records(items: Iterable) -> list[SourceRecord]:
    pks = sorted({item.pk if isinstance(item, SourceRecord) else int(item) for item in items})
    found = list(SourceRecord.objects.filter(pk__in=pks).select_related("source", "entity"))
    missing = set(pks) - {r.pk for r in found}
    if missing:
        raise MasterError(f"no source records with ids {sorted(missing)[:10]}")
    return found


def latest_model_run(kind: str) -> LinkRun:
    """The last finished full run of ``kind`` with a trained model (what incremental links
    score with)."""
    run = (
        LinkRun.objects.filter(kind=kind, mode=LinkRun.Mode.FULL, status=LinkRun.Status.DONE)
        .exclude(model={})
        .order_by("-started_at", "-pk")
        .first()
    )
    if run is None:
        raise MasterError(
            f"no finished full link run with a trained model for {kind} records yet: "
            f"run a full link (run_full) first"
        )
    return run


def link_new(records: Iterable, *, actor="system") -> list[dict]:
    """Place new (or changed) records with the last full run's model, without retraining and
    without touching any other entity: each joins the entity it matches best at or above the
    link threshold, or becomes its own entity; less certain matches wait for review.

    Only the records a blocking rule pairs with the new ones are read (found by the stored
    blocking keys, see ``records.candidates``), so its cost follows the new records and their
    candidates, not the size of the store. The records of one batch are compared with each
    other too, each placed after those before it: two copies of one new person become one.

    Returns one ``{"record", "entity", "action", "match_probability", "review_pairs"}`` per
    record (``action`` is "linked", "created" or "kept")."""
    from civicpulse.identity import linking

    given = _records(records)
    if not given:
        return []
    kinds = {r.kind for r in given}
    if len(kinds) > 1:
        raise MasterError(f"records of several kinds ({', '.join(sorted(kinds))}); link each apart")
    kind = kinds.pop()
    linked = [r for r in given if r.entity_id and r.linked_by]
    if linked:
        raise MasterError(
            f"record {linked[0]} is already linked to {linked[0].entity.code}; "
            "only new or changed records are linked incrementally"
        )
    model_run = latest_model_run(kind)
    link, review = model_run.thresholds["link"], model_run.thresholds["review"]
    run = LinkRun.objects.create(
        kind=kind,
        mode=LinkRun.Mode.INCREMENTAL,
        engine="duckdb",
        started_at=timezone.now(),
        started_by=audit.actor_name(actor),
        thresholds=model_run.thresholds,
        counts={"model_run": model_run.pk},
    )
    try:
        new_ids = {r.pk for r in given}
        new_frame = record_store.frame(kind, record_ids=new_ids)
        found = record_store.candidates(kind, new_frame.to_dict("records")) - new_ids
        ruled = _rulings_on(kind, new_ids)
        entity_of = _entities_of(kind, given, found, ruled, exclude=new_ids)
        existing_frame = record_store.frame(kind, record_ids=found & set(entity_of))
        # the batch is compared with itself too: two copies of one new person become one
        pairs = linking.match_new(
            new_frame,
            pd.concat([existing_frame, new_frame], ignore_index=True),
            kind,
            model_run.model,
            review_threshold=review,
        )
        with transaction.atomic():
            placed = _place(
                run, given, pairs, entity_of, ruled, link=link, actor=audit.actor_name(actor)
            )
            run.counts = {
                **run.counts,
                "records": len(given),
                "candidates": len(existing_frame),
                "pairs": len(pairs),
                **Counter(p["action"] for p in placed),
            }
            run.status, run.finished_at = LinkRun.Status.DONE, timezone.now()
            run.save(update_fields=["counts", "status", "finished_at"])
    except Exception as error:
        _run_failed(run, error)
        raise
    return placed


def _rulings_on(kind: str, record_ids: set[int]) -> dict[int, dict[int, str]]:
    """The rulings people made on pairs holding one of ``record_ids``: record -> {other
    record: "same" | "different"}, both ways."""
    ruled: dict[int, dict[int, str]] = defaultdict(dict)
    ids = sorted(record_ids)
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        for a, b, status in ReviewPair.objects.filter(
            Q(record_a__in=chunk) | Q(record_b__in=chunk),
            kind=kind,
            status__in=[ReviewPair.Status.SAME, ReviewPair.Status.DIFFERENT],
        ).values_list("record_a_id", "record_b_id", "status"):
            ruled[a][b] = status
            ruled[b][a] = status
    return ruled


def _entities_of(
    kind: str,
    given: list[SourceRecord],
    candidates: set[int],
    ruled: dict[int, dict[int, str]],
    *,
    exclude: set[int],
) -> dict[int, int]:
    """Record -> entity for every stored record an incremental link can need: the candidates,
    the records people ruled on with the new ones, and all records of the entities the new
    (changed) records sit in, so it can tell whether a record leaves an entity empty. Not the
    whole kind: at a million records reading it would be the whole cost of the link."""
    olds = sorted({r.entity_id for r in given if r.entity_id})
    wanted = sorted(candidates | {o for r in given for o in ruled.get(r.pk, {})})
    records = SourceRecord.objects.filter(kind=kind, entity__isnull=False).exclude(pk__in=exclude)
    entity_of: dict[int, int] = {}
    for start in range(0, len(wanted), BATCH):
        entity_of.update(
            records.filter(pk__in=wanted[start : start + BATCH]).values_list("pk", "entity_id")
        )
    entity_of.update(records.filter(entity__in=olds).values_list("pk", "entity_id"))
    return entity_of


def _place(
    run: LinkRun,
    given: list[SourceRecord],
    pairs: pd.DataFrame,
    entity_of: dict,
    ruled: dict[int, dict[int, str]],
    *,
    link,
    actor,
) -> list[dict]:
    """Place each record in turn (by id), each against the stored records and the records of
    the batch placed before it; a pair with a record not yet placed waits for that record."""
    now = timezone.now()
    members: dict[int, set[int]] = defaultdict(set)
    for pk, entity_id in entity_of.items():
        members[entity_id].add(pk)
    by_record = {pk: group for pk, group in pairs.groupby(pairs["record_l"].astype(int))}
    placed, touched, events = [], set(), []
    for record in sorted(given, key=lambda r: r.pk):
        rulings = ruled.get(record.pk, {})
        barred = {entity_of[o] for o, s in rulings.items() if s == "different" and o in entity_of}
        forced = sorted(entity_of[o] for o, s in rulings.items() if s == "same" and o in entity_of)
        scored = by_record.get(record.pk)
        candidates = []
        if scored is not None:
            for right, p, e in zip(
                scored["record_r"], scored["match_probability"], scored["explanation"], strict=True
            ):
                other = int(right)
                if entity_of.get(other) is not None and entity_of[other] not in barred:
                    candidates.append((-float(p), other, entity_of[other], e))
        candidates.sort()
        target, how, probability, explanation = None, LinkedBy.ALONE, None, {}
        if forced:
            target, how = forced[0], LinkedBy.REVIEW
            explanation = {"ruling": "same"}
        elif candidates and -candidates[0][0] >= link:
            _p, other, target, e = candidates[0]
            how, probability, explanation = LinkedBy.MODEL, -_p, _with(e, other)
        old = record.entity_id
        old_code = record.entity.code if old else None
        action = "linked"
        if target is None:
            if old is not None and members.get(old, set()) <= {record.pk}:
                target, action = old, "kept"
            else:
                target, action = _create_entities(run.kind, 1, now)[0].pk, "created"
        elif target == old:
            action = "kept"
        record.entity_id, record.linked_by = target, how
        record.match_probability, record.explanation, record.updated_at = (
            probability,
            explanation,
            now,
        )
        record.save(
            update_fields=["entity", "linked_by", "match_probability", "explanation", "updated_at"]
        )
        entity_of[record.pk] = target
        members[target].add(record.pk)
        if old is not None:
            members[old].discard(record.pk)
        events.append(
            EntityEvent(
                entity_id=target,
                action=Action.CREATED if action == "created" else Action.LINKED,
                at=now,
                actor=actor,
                run=run,
                detail={
                    "record": record.pk,
                    "records": [record.pk],
                    "from": old_code if old != target else None,
                    "match_probability": probability,
                    "explanation": explanation,
                },
            )
        )
        touched.add(target)
        if old is not None and old != target:
            touched.add(old)
            if not members[old]:  # a changed record left an entity it alone held
                Entity.objects.filter(pk=old).update(
                    status=Entity.Status.MERGED, merged_into=target, updated_at=now
                )
                events.append(
                    EntityEvent(
                        entity_id=target,
                        action=Action.MERGED,
                        at=now,
                        actor=actor,
                        run=run,
                        detail={
                            "absorbed": old,
                            "absorbed_code": old_code,
                            "records": [record.pk],
                        },
                    )
                )
        mine = (
            pairs[
                (pairs["record_l"].astype(int) == record.pk)
                & pairs["record_r"].astype(int).isin(entity_of.keys())
            ]
            if len(pairs)
            else pairs
        )
        queued = (
            _queue_uncertain(run, mine, entity_of, link=link, review=0.0, upper=2.0)
            if len(mine)
            else 0
        )
        placed.append(
            {
                "record": record.pk,
                "entity": None,
                "entity_id": target,
                "action": action,
                "match_probability": probability,
                "review_pairs": queued,
            }
        )
    EntityEvent.objects.bulk_create(events)
    live = Entity.objects.in_bulk({p["entity_id"] for p in placed} | touched)
    survivorship.refresh_many(
        [e for pk, e in sorted(live.items()) if e.status == Entity.Status.ACTIVE],
        run=run,
        actor=actor,
    )
    for item in placed:
        item["entity"] = live[item.pop("entity_id")].code
    return placed


# ============================================================================================
# People's rulings, merges, splits and their undoing
# ============================================================================================


def _rule(a: SourceRecord, b: SourceRecord, status: str, user, note: str, now) -> dict:
    """Store a person's ruling on two records; returns what undo needs to reverse it."""
    low, high = _ordered(a.pk, b.pk)
    pair = ReviewPair.objects.filter(record_a_id=low, record_b_id=high).first()
    if pair is None:
        pair = ReviewPair.objects.create(
            kind=a.kind,
            record_a_id=low,
            record_b_id=high,
            status=status,
            decided_by=user,
            decided_at=now,
            note=note[:500],
            created_at=now,
        )
        return {"id": pair.pk, "was": None}
    was = pair.status
    pair.status, pair.decided_by, pair.decided_at, pair.note = status, user, now, note[:500]
    pair.save(update_fields=["status", "decided_by", "decided_at", "note"])
    return {"id": pair.pk, "was": was}


def _revert(rulings: list[dict]) -> list[dict]:
    """Take back rulings an undone event made: a pair that was waiting waits again; a pair the
    event created goes (the event and the audit chain keep what was ruled)."""
    reverted = []
    for ruling in rulings:
        pair = ReviewPair.objects.filter(pk=ruling["id"]).first()
        if pair is None:
            continue
        reverted.append({"id": pair.pk, "status": pair.status, "now": ruling["was"] or "removed"})
        if ruling["was"] is None:
            pair.delete()
        else:
            pair.status, pair.decided_by, pair.decided_at, pair.note = ruling["was"], None, None, ""
            pair.save(update_fields=["status", "decided_by", "decided_at", "note"])
    return reverted


def _ruled_apart(first: Entity, second: Entity) -> ReviewPair | None:
    """A "different" ruling between a record of ``first`` and one of ``second``, if any."""
    a = list(first.records.values_list("pk", flat=True))
    b = list(second.records.values_list("pk", flat=True))
    return ReviewPair.objects.filter(
        Q(record_a__in=a, record_b__in=b) | Q(record_a__in=b, record_b__in=a),
        status=ReviewPair.Status.DIFFERENT,
    ).first()


def _bound(record: SourceRecord) -> set[int]:
    """``record`` and every record of its entity tied to it by "same" rulings."""
    inside = set(record.entity.records.values_list("pk", flat=True))
    rulings = ReviewPair.objects.filter(
        status=ReviewPair.Status.SAME, record_a__in=inside, record_b__in=inside
    ).values_list("record_a_id", "record_b_id")
    linked = defaultdict(set)
    for a, b in rulings:
        linked[a].add(b)
        linked[b].add(a)
    group, todo = {record.pk}, [record.pk]
    while todo:
        for other in linked[todo.pop()] - group:
            group.add(other)
            todo.append(other)
    return group


def _absorb(keep: Entity, other: Entity, *, actor: str, now, detail: dict) -> EntityEvent:
    """Move every record of ``other`` onto ``keep`` and mark ``other`` merged (kept, so its
    code still leads somewhere and the merge can be undone)."""
    moved = list(other.records.order_by("pk").values_list("pk", flat=True))
    SourceRecord.objects.filter(pk__in=moved).update(entity=keep, updated_at=now)
    other.status, other.merged_into, other.updated_at = Entity.Status.MERGED, keep, now
    other.save(update_fields=["status", "merged_into", "updated_at"])
    event = EntityEvent.objects.create(
        entity=keep,
        action=Action.MERGED,
        at=now,
        actor=actor,
        detail={"absorbed": other.pk, "absorbed_code": other.code, "records": moved, **detail},
    )
    survivorship.refresh(keep, actor=actor)
    return event


def _carve(entity: Entity, moving: set[int], *, actor: str, now, detail: dict) -> EntityEvent:
    """Move ``moving`` off ``entity`` into a new entity."""
    into = _create_entities(entity.kind, 1, now)[0]
    SourceRecord.objects.filter(pk__in=moving).update(entity=into, updated_at=now)
    event = EntityEvent.objects.create(
        entity=entity,
        action=Action.SPLIT,
        at=now,
        actor=actor,
        detail={"records": sorted(moving), "into": into.pk, "into_code": into.code, **detail},
    )
    EntityEvent.objects.create(
        entity=into,
        action=Action.CREATED,
        at=now,
        actor=actor,
        detail={"records": sorted(moving), "split_from": entity.code},
    )
    survivorship.refresh_many([entity, into], actor=actor)
    return event


def _active(entity: Entity) -> Entity:
    if entity.status != Entity.Status.ACTIVE:
        raise MasterError(
            f"entity {entity.code} was merged into "
            f"{entity.merged_into.code if entity.merged_into else 'another'}; act on that one"
        )
    return entity


def decide(pair: ReviewPair, status: str, *, user, note: str = "") -> EntityEvent:
    """A person's ruling on an uncertain pair. "same" merges the two records' entities (the
    older code is kept); "different" on two records of one entity splits the less strongly
    linked one off, with the records ruled the same as it. The ruling sticks: every later run
    obeys it. A decided pair is decided again only after :func:`undo` of its event."""
    if status not in (ReviewPair.Status.SAME, ReviewPair.Status.DIFFERENT):
        raise MasterError(f"a ruling is 'same' or 'different', not {status!r}")
    actor = audit.actor_name(user)
    with transaction.atomic():
        pair = ReviewPair.objects.select_for_update().get(pk=pair.pk)
        if pair.status != ReviewPair.Status.PENDING:
            raise MasterError(
                f"pair {pair} was already ruled {pair.status!r}; undo that ruling first"
            )
        a, b = (
            SourceRecord.objects.select_related("entity").get(pk=pk)
            for pk in (pair.record_a_id, pair.record_b_id)
        )
        if a.kind != b.kind or a.kind != pair.kind:
            raise MasterError(f"pair {pair} joins a {a.kind} and a {b.kind} record; it is invalid")
        for record in (a, b):
            if record.entity is None:
                raise MasterError(f"record {record.pk} is not linked to any entity yet")
            _active(record.entity)
        now = timezone.now()
        ea, eb = a.entity, b.entity
        base = {"pair": pair.pk, "decision": status, "note": note[:500]}
        if status == ReviewPair.Status.SAME:
            apart = ea != eb and _ruled_apart(ea, eb)
            if apart:
                raise MasterError(
                    f"{ea.code} and {eb.code} hold records ruled different (pair {apart}); "
                    "undo that ruling first"
                )
            ruling = _rule(a, b, status, user, note, now)
            detail = {**base, "pairs": [ruling]}
            for record in (a, b):
                other = b if record is a else a
                record.linked_by = LinkedBy.REVIEW
                record.match_probability = pair.match_probability
                record.explanation = _with(pair.explanation, other.pk)
                record.save(update_fields=["linked_by", "match_probability", "explanation"])
            if ea != eb:
                keep, other = _older(ea, eb)
                event = _absorb(keep, other, actor=actor, now=now, detail=detail)
            else:
                event = EntityEvent.objects.create(
                    entity=ea,
                    action=Action.LINKED,
                    at=now,
                    actor=actor,
                    detail={**detail, "records": [a.pk, b.pk]},
                )
        else:
            if ea == eb:
                weaker, stronger = sorted(
                    (a, b),
                    key=lambda r: (
                        r.match_probability if r.match_probability is not None else 2.0,
                        -r.pk,
                    ),
                )
                moving = _bound(weaker)
                if stronger.pk in moving:
                    raise MasterError(
                        f"records {a.pk} and {b.pk} were ruled the same (directly or through "
                        "others); undo those rulings first"
                    )
                ruling = _rule(a, b, status, user, note, now)
                event = _carve(ea, moving, actor=actor, now=now, detail={**base, "pairs": [ruling]})
            else:
                ruling = _rule(a, b, status, user, note, now)
                event = EntityEvent.objects.create(
                    entity=ea,
                    action=Action.SPLIT,
                    at=now,
                    actor=actor,
                    detail={**base, "records": [], "kept_apart": eb.code, "pairs": [ruling]},
                )
        audit.record(
            user,
            "identity.decide",
            pair,
            detail={"status": status, "event": event.pk, "entity": event.entity.code},
        )
    return event


def merge(keep: Entity, other: Entity, *, user, note: str = "") -> EntityEvent:
    """Merge ``other`` into ``keep`` by hand. It sticks: the two records that anchor each
    entity are ruled "same"."""
    actor = audit.actor_name(user)
    with transaction.atomic():
        keep, other = (Entity.objects.select_for_update().get(pk=e.pk) for e in (keep, other))
        if keep.kind != other.kind:
            raise MasterError(f"{keep.code} is a {keep.kind}, {other.code} a {other.kind}")
        if keep.pk == other.pk:
            raise MasterError(f"{keep.code} cannot be merged with itself")
        _active(keep)
        _active(other)
        anchors = [e.records.order_by("pk").first() for e in (keep, other)]
        if None in anchors:
            empty = keep if anchors[0] is None else other
            raise MasterError(f"{empty.code} holds no records; there is nothing to merge")
        apart = _ruled_apart(keep, other)
        if apart:
            raise MasterError(
                f"{keep.code} and {other.code} hold records ruled different (pair {apart}); "
                "undo that ruling first"
            )
        now = timezone.now()
        ruling = _rule(*anchors, ReviewPair.Status.SAME, user, note or "merge", now)
        event = _absorb(
            keep, other, actor=actor, now=now, detail={"by_hand": True, "pairs": [ruling]}
        )
        audit.record(
            user, "identity.merge", keep, detail={"absorbed": other.code, "event": event.pk}
        )
    return event


def split(record: SourceRecord, *, user, note: str = "") -> EntityEvent:
    """Take ``record`` (with any records ruled the same as it) off its entity into a new one.
    It sticks: the record is ruled "different" from each record left behind."""
    actor = audit.actor_name(user)
    with transaction.atomic():
        record = SourceRecord.objects.select_related("entity").get(pk=record.pk)
        if record.entity is None:
            raise MasterError(f"record {record.pk} is not linked to any entity")
        entity = _active(Entity.objects.select_for_update().get(pk=record.entity_id))
        moving = _bound(record)
        staying = list(entity.records.exclude(pk__in=moving).order_by("pk"))
        if not staying:
            raise MasterError(
                f"record {record.pk} is all {entity.code} holds (with the records ruled the same "
                "as it); there is nothing to split it from"
            )
        now = timezone.now()
        rulings = [
            _rule(record, other, ReviewPair.Status.DIFFERENT, user, note or "split", now)
            for other in staying
        ]
        event = _carve(
            entity, moving, actor=actor, now=now, detail={"by_hand": True, "pairs": rulings}
        )
        audit.record(
            user, "identity.split", record, detail={"entity": entity.code, "event": event.pk}
        )
    return event


def undo(event: EntityEvent, *, user, note: str = "") -> EntityEvent:
    """Reverse a merge or a split (or a ruling that moved nothing): the records go back, the
    entity that had gone is active again, both golden records are recomputed and the rulings
    the event made are taken back. The event stays, marked undone by the new "undone" event.

    Undoing a merge the linker made rules the two entities' anchor records "different", so the
    next run does not merge them again."""
    actor = audit.actor_name(user)
    with transaction.atomic():
        event = EntityEvent.objects.select_for_update().select_related("entity").get(pk=event.pk)
        if event.undone_by_id:
            raise MasterError(f"event {event.pk} was already undone")
        undoable = event.action in (Action.MERGED, Action.SPLIT) or (
            event.action == Action.LINKED and "pairs" in event.detail
        )
        if not undoable:
            raise MasterError(
                f"a {event.action!r} event cannot be undone; only merges, splits and rulings"
            )
        entity = _active(event.entity)
        now = timezone.now()
        detail = event.detail
        moved: list[int] = []
        other: Entity | None = None
        rulings = list(detail.get("pairs", []))
        if event.action == Action.MERGED:
            other = Entity.objects.select_for_update().get(pk=detail["absorbed"])
            moved = list(
                entity.records.filter(pk__in=detail["records"]).values_list("pk", flat=True)
            )
            if not moved:
                raise MasterError(
                    f"none of the records merged into {entity.code} are still there; "
                    "undo the later changes first"
                )
            SourceRecord.objects.filter(pk__in=moved).update(entity=other, updated_at=now)
            other.status, other.merged_into, other.updated_at = Entity.Status.ACTIVE, None, now
            other.save(update_fields=["status", "merged_into", "updated_at"])
            if not rulings:  # the linker's merge: keep them apart from now on
                anchors = [
                    SourceRecord.objects.filter(pk__in=pks).order_by("pk").first()
                    for pks in (entity.records.values_list("pk", flat=True), moved)
                ]
                if anchors[0] is not None:
                    made = _rule(*anchors, ReviewPair.Status.DIFFERENT, user, note or "undo", now)
                    detail = {**detail, "ruled_apart": made["id"]}
        elif event.action == Action.SPLIT and detail.get("records"):
            other = Entity.objects.select_for_update().get(pk=detail["into"])
            moved = list(
                other.records.filter(pk__in=detail["records"]).values_list("pk", flat=True)
            )
            SourceRecord.objects.filter(pk__in=moved).update(entity=entity, updated_at=now)
            if not other.records.exists():
                other.status, other.merged_into, other.updated_at = (
                    Entity.Status.MERGED,
                    entity,
                    now,
                )
                other.save(update_fields=["status", "merged_into", "updated_at"])
        reverted = _revert(rulings)
        undone = EntityEvent.objects.create(
            entity=entity,
            action=Action.UNDONE,
            at=now,
            actor=actor,
            detail={
                "undid": event.pk,
                "action": event.action,
                "records": moved,
                "other": other.code if other else None,
                "rulings": reverted,
                "ruled_apart": detail.get("ruled_apart"),
                "note": note[:500],
            },
        )
        event.undone_by = undone
        event.save(update_fields=["undone_by"])
        survivorship.refresh_many([e for e in (entity, other) if e is not None], actor=actor)
        audit.record(
            user,
            "identity.undo",
            entity,
            detail={"event": event.pk, "action": event.action, "undone_by": undone.pk},
        )
    return undone


# ============================================================================================
# Explaining a match
# ============================================================================================


def explain(record: SourceRecord) -> dict:
    """Why ``record`` sits in its entity: how it was linked, to which record, and for a
    linker's match each compared field with its level and weight (positive: the field agreed
    and pushed towards a match)."""
    stored = record.explanation or {}
    fields = [
        {
            "field": f["field"],
            "label": str(FIELD_LABELS.get(f["field"], f["field"])),
            "level": f.get("level"),
            "weight": f.get("weight", 0.0),
            "agreed": f.get("weight", 0.0) > 0,
        }
        for f in stored.get("fields", [])
    ]
    fields.sort(key=lambda f: -f["weight"])
    prior = stored.get("prior")
    total = None if prior is None else round(prior + sum(f["weight"] for f in fields), 4)
    return {
        "record": record.pk,
        "entity": record.entity.code if record.entity_id else None,
        "linked_by": record.linked_by,
        "linked_by_label": str(LinkedBy(record.linked_by).label) if record.linked_by else "",
        "with": stored.get("with"),
        "ruling": stored.get("ruling"),
        "match_probability": record.match_probability,
        "prior": prior,
        "match_weight": total,
        "fields": fields,
        "agreed": [f["label"] for f in fields if f["agreed"]],
        "disagreed": [f["label"] for f in fields if f["weight"] < 0],
    }
