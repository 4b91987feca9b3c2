"""The master index: stable codes across runs, merges and splits that can be undone, rulings
that stick, incremental links, and explanations.

The first half feeds :func:`master.apply_links` scored pairs written here, so each rule of
reconciliation is checked on a handful of records; the second half ingests departments' rows
with realistic typos through ``records.ingest`` and runs the real linker (Splink on DuckDB).
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone, translation

from civicpulse.core.models import AuditEntry
from civicpulse.identity import master, records
from civicpulse.identity.identifiers import make_resident_id
from civicpulse.identity.models import (
    Entity,
    EntityEvent,
    LinkRun,
    ReviewPair,
    Source,
    SourceRecord,
)

EXPLANATION = {
    "prior": -10.0,
    "fields": [
        {"field": "name", "level": "exact match", "weight": 8.5},
        {"field": "id_number", "level": "exact match", "weight": 12.0},
        {"field": "phone", "level": "different", "weight": -2.5},
    ],
}


# ============================================================================================
# Hand-scored pairs
# ============================================================================================


@pytest.fixture
def clerk(db):
    return get_user_model().objects.create_user("m2-clerk", password="m2-clerk-secret-9")


@pytest.fixture
def roll(empty_master_index):
    return Source.objects.create(name="m2-roll", title="roll", kind="resident", trust=50)


def add(source: Source, count: int, *, start: int = 0) -> list[SourceRecord]:
    now = timezone.now()
    return [
        SourceRecord.objects.create(
            source=source,
            key=f"k{i}",
            kind=source.kind,
            attributes={"name": f"人{i}", "phone": f"13800000{i:03d}"},
            normalised={"name": f"人{i}"},
            observed_at=now + timedelta(minutes=i),
            created_at=now,
            updated_at=now,
        )
        for i in range(start, start + count)
    ]


def scored(*rows: tuple[SourceRecord, SourceRecord, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [(str(a.pk), str(b.pk), p, 3.0 if p > 0.9 else 0.0, EXPLANATION) for a, b, p in rows],
        columns=["record_l", "record_r", "match_probability", "match_weight", "explanation"],
    )


def apply(pairs: pd.DataFrame, kind: str = "resident") -> LinkRun:
    run = LinkRun.objects.create(
        kind=kind,
        mode="full",
        started_at=timezone.now(),
        thresholds={"link": 0.95, "review": 0.5},
    )
    ids = [str(pk) for pk in SourceRecord.objects.filter(kind=kind).values_list("pk", flat=True)]
    with transaction.atomic():
        run.counts = master.apply_links(run, ids, pairs, actor="system")
    run.status = "done"
    run.save()
    return run


def codes(*recs: SourceRecord) -> list[str | None]:
    found = dict(
        SourceRecord.objects.filter(pk__in=[r.pk for r in recs]).values_list("pk", "entity__code")
    )
    return [found[r.pk] for r in recs]


def fresh(obj):
    obj.refresh_from_db()
    return obj


def test_first_run_gives_each_cluster_a_code_and_links_with_explanations(roll):
    a, b, c, d = add(roll, 4)
    run = apply(scored((a, b, 0.99), (b, c, 0.97), (c, d, 0.6)))
    ca, cb, cc, cd = codes(a, b, c, d)
    assert ca == cb == cc and cd not in (None, ca)
    assert ca.startswith("R") and len(ca) == 1 + master.CODE_DIGITS
    assert run.counts["entities_created"] == 2
    # each linked record says why: its strongest pair inside its entity
    b = fresh(b)
    assert (b.linked_by, b.match_probability) == ("model", 0.99)
    assert b.explanation["with"] == a.pk and b.explanation["fields"] == EXPLANATION["fields"]
    assert fresh(c).explanation["with"] == b.pk
    assert (fresh(d).linked_by, fresh(d).match_probability) == ("alone", None)
    # the uncertain pair across two entities waits for a person
    pair = ReviewPair.objects.get()
    assert (pair.record_a_id, pair.record_b_id, pair.status) == (c.pk, d.pk, "pending")
    assert pair.run == run and pair.match_probability == 0.6
    # history and golden records
    created = EntityEvent.objects.filter(action="created").order_by("entity__code")
    assert [e.detail["records"] for e in created] == [[a.pk, b.pk, c.pk], [d.pk]]
    entity = Entity.objects.get(code=ca)
    assert entity.attributes["name"] == "人2" and entity.provenance["name"]["by"] == "recent"


def test_a_rerun_with_the_same_records_gives_the_same_codes_and_writes_nothing(roll):
    recs = add(roll, 5)
    pairs = scored((recs[0], recs[1], 0.99), (recs[2], recs[3], 0.96), (recs[3], recs[4], 0.7))
    apply(pairs)
    before = codes(*recs)
    events = EntityEvent.objects.count()
    run = apply(pairs)
    assert codes(*recs) == before
    assert EntityEvent.objects.count() == events
    assert run.counts["entities_created"] == 0 and run.counts["records_updated"] == 0
    assert ReviewPair.objects.count() == 1


def test_new_records_join_existing_codes_and_loners_get_the_next_code(roll):
    a, b, c = add(roll, 3)
    apply(scored((a, b, 0.99)))
    before = codes(a, b, c)
    d, e = add(roll, 2, start=3)
    run = apply(scored((a, b, 0.99), (d, c, 0.98)))
    assert codes(a, b, c) == before
    assert codes(d)[0] == before[2]
    assert codes(e)[0] > max(before)  # a new code, never one given before
    linked = EntityEvent.objects.get(action="linked", run=run)
    assert linked.detail["record"] == d.pk and linked.detail["from"] is None
    assert linked.detail["explanation"]["with"] == c.pk


def test_a_cluster_gathering_two_entities_merges_into_the_older_and_undo_puts_it_back(roll, clerk):
    a, b, c, d = add(roll, 4)
    apply(scored((a, b, 0.99), (c, d, 0.99)))
    older, younger = codes(a, c)
    run = apply(scored((a, b, 0.99), (c, d, 0.99), (b, c, 0.96)))
    assert codes(a, b, c, d) == [older] * 4
    gone = Entity.objects.get(code=younger)
    assert gone.status == "merged" and gone.merged_into.code == older
    event = EntityEvent.objects.get(action="merged", run=run)
    assert event.detail["records"] == [c.pk, d.pk] and event.detail["absorbed_code"] == younger
    assert run.counts["entities_merged"] == 1

    undone = master.undo(event, user=clerk)
    assert codes(a, b, c, d) == [older, older, younger, younger]
    assert fresh(gone).status == "active" and gone.merged_into is None
    assert fresh(event).undone_by == undone and undone.action == "undone"
    assert EntityEvent.objects.filter(pk=event.pk).exists()  # history is kept
    assert fresh(gone).attributes["name"] == "人3"  # golden records recomputed
    # undoing the linker's merge is a ruling: the next run keeps them apart
    apply(scored((a, b, 0.99), (c, d, 0.99), (b, c, 0.96)))
    assert codes(a, b, c, d) == [older, older, younger, younger]
    assert AuditEntry.objects.filter(action="identity.undo", actor="m2-clerk").exists()
    with pytest.raises(ValueError, match="already undone"):
        master.undo(event, user=clerk)


def test_a_record_the_model_moves_takes_the_linked_event_with_where_it_came_from(roll):
    a, b, c, d = add(roll, 4)
    apply(scored((a, b, 0.99), (b, c, 0.99)))  # a, b, c one entity; d alone
    first, loner = codes(a, d)
    run = apply(scored((a, b, 0.99), (c, d, 0.99)))  # c now goes with d
    assert codes(a, b, c, d) == [first, first, loner, loner]
    moved = EntityEvent.objects.get(action="linked", run=run)
    assert moved.entity.code == loner and moved.detail == {
        **moved.detail,
        "record": c.pk,
        "from": first,
    }


def test_deciding_same_merges_and_the_ruling_sticks_through_reruns(roll, clerk):
    a, b = add(roll, 2)
    pairs = scored((a, b, 0.7))
    apply(pairs)
    pair = ReviewPair.objects.get()
    kept, other = codes(a, b)
    event = master.decide(pair, "same", user=clerk, note="same mother's name")
    assert event.action == "merged" and codes(a, b) == [kept, kept]
    assert fresh(pair).status == "same" and pair.decided_by == clerk
    assert fresh(b).linked_by == "review" and b.explanation["with"] == a.pk
    apply(pairs)
    assert codes(a, b) == [kept, kept]
    assert Entity.objects.get(code=other).status == "merged"
    with pytest.raises(ValueError, match="already ruled"):
        master.decide(pair, "different", user=clerk)
    entry = AuditEntry.objects.filter(action="identity.decide").latest("seq")
    assert entry.actor == "m2-clerk" and entry.detail["status"] == "same"
    # undo the ruling: the records part again and the pair waits to be ruled anew
    master.undo(event, user=clerk)
    assert fresh(pair).status == "pending" and pair.decided_by is None
    assert codes(a, b) == [kept, other]
    master.decide(pair, "different", user=clerk)
    assert fresh(pair).status == "different"


def test_deciding_different_splits_the_weaker_record_off_and_it_stays_off(roll, clerk):
    a, b, c = add(roll, 3)
    pairs = scored((a, b, 0.999), (b, c, 0.96))
    apply(pairs)
    code = codes(a)[0]
    pair = ReviewPair.objects.create(
        kind="resident", record_a=b, record_b=c, created_at=timezone.now()
    )
    event = master.decide(pair, "different", user=clerk)
    # c was linked at 0.96, b at 0.999: c goes
    assert event.action == "split" and event.detail["records"] == [c.pk]
    assert codes(a, b)[0] == code and codes(c)[0] == event.detail["into_code"] != code
    apply(pairs)
    assert codes(a, b, c) == [code, code, event.detail["into_code"]]
    # a ruling never contradicts an earlier one
    other = ReviewPair.objects.create(
        kind="resident", record_a=a, record_b=c, created_at=timezone.now()
    )
    with pytest.raises(ValueError, match="ruled different"):
        master.decide(other, "same", user=clerk)
    assert fresh(other).status == "pending"
    # undo the split: c comes back, the split-off entity is kept, pointing home
    master.undo(event, user=clerk)
    assert codes(c)[0] == code
    split_off = Entity.objects.get(code=event.detail["into_code"])
    assert split_off.status == "merged" and split_off.merged_into.code == code


def test_merge_and_split_by_hand_stick_and_can_be_undone(roll, clerk):
    a, b, c = add(roll, 3)
    pairs = scored((a, b, 0.99))
    apply(pairs)
    keep, other = (Entity.objects.get(code=code) for code in codes(a, c))
    merged = master.merge(keep, other, user=clerk)
    assert codes(c) == [keep.code]
    apply(pairs)
    assert codes(a, b, c) == [keep.code] * 3
    split = master.split(fresh(b), user=clerk)
    assert codes(a, c) == [keep.code] * 2 and codes(b)[0] == split.detail["into_code"]
    apply(pairs)  # the model says a and b match; the person said no
    assert codes(b)[0] == split.detail["into_code"]
    assert set(ReviewPair.objects.filter(status="different").values_list("note", flat=True)) == {
        "split"
    }
    master.undo(split, user=clerk)
    assert codes(b) == [keep.code]
    assert not ReviewPair.objects.filter(status="different").exists()
    # the merge was undone after the split was: both undos leave history behind
    master.undo(merged, user=clerk)
    assert codes(c) == [other.code]
    actions = list(keep.events.values_list("action", flat=True))
    assert actions.count("undone") == 2 and "merged" in actions and "split" in actions


def test_bad_input_is_refused_and_nothing_is_applied(roll, clerk):
    a, b = add(roll, 2)
    firms = Source.objects.create(name="m2-firms", title="firms", kind="enterprise")
    (f,) = add(firms, 1)
    apply(scored((a, b, 0.7)))
    pair = ReviewPair.objects.get()
    with pytest.raises(ValueError, match="'same' or 'different'"):
        master.decide(pair, "maybe", user=clerk)
    assert fresh(pair).status == "pending"
    apply(scored(), kind="enterprise")
    person, firm = Entity.objects.get(code=codes(a)[0]), Entity.objects.get(code=codes(f)[0])
    assert (person.code[0], firm.code[0]) == ("R", "E")
    with pytest.raises(ValueError, match="is a resident"):
        master.merge(person, firm, user=clerk)
    with pytest.raises(ValueError, match="itself"):
        master.merge(person, person, user=clerk)
    with pytest.raises(ValueError, match="nothing to split"):
        master.split(a, user=clerk)
    with pytest.raises(ValueError, match="several kinds"):
        master.link_new([a, f])
    with pytest.raises(ValueError, match="unknown kind"):
        master.run_full("vehicle")
    with pytest.raises(ValueError, match="thresholds"):
        master.run_full("resident", thresholds={"link": 0.4, "review": 0.6})
    assert codes(a, b) == [person.code, codes(b)[0]] and fresh(person).status == "active"
    assert not EntityEvent.objects.filter(action__in=["merged", "split"]).exists()
    new = add(roll, 1, start=9)
    with pytest.raises(ValueError, match="full link"):
        master.link_new(new)
    assert fresh(new[0]).entity is None


def test_a_failed_run_is_marked_failed_and_changes_nothing_else(roll):
    recs = add(roll, 3)
    with pytest.raises(ValueError):
        master.run_full("resident", engine="abacus")
    run = LinkRun.objects.get()
    assert run.status == "failed" and "abacus" in run.error and run.finished_at
    assert not Entity.objects.exists()
    assert codes(*recs) == [None, None, None]


def test_explain_names_the_fields_that_agreed_with_their_weights(roll):
    a, b = add(roll, 2)
    apply(scored((a, b, 0.99)))
    with translation.override("en"):
        told = master.explain(fresh(b))
    assert told["entity"] == codes(b)[0] and told["with"] == a.pk
    assert told["linked_by"] == "model" and told["match_probability"] == 0.99
    assert [f["field"] for f in told["fields"]] == ["id_number", "name", "phone"]
    assert told["agreed"] == ["resident ID number", "name"] and told["disagreed"] == ["phone"]
    assert told["match_weight"] == pytest.approx(-10 + 8.5 + 12 - 2.5)
    assert master.explain(fresh(add(roll, 1, start=5)[0]))["fields"] == []


def test_codes_are_never_reused_even_after_merges(roll, clerk):
    a, b = add(roll, 2)
    apply(scored())
    first, second = codes(a, b)
    master.merge(Entity.objects.get(code=first), Entity.objects.get(code=second), user=clerk)
    (c,) = add(roll, 1, start=2)
    apply(scored())
    assert codes(c)[0] > second
    assert Entity.objects.filter(code=second, status="merged").exists()


# ============================================================================================
# The real linker over departments' rows
# ============================================================================================

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚华玉兰萍红建国志海燕春梅晓东丹凤文博"
SOUNDS_ALIKE = {"伟": "玮", "芳": "方", "丽": "莉", "明": "铭", "华": "化", "军": "君", "涛": "韬"}
STREETS = ["文三路", "教工路", "古墩路", "莫干山路", "天目山路", "西溪路"]


def people(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    made = []
    for n in range(count):
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 60))
        sequence = rng.randrange(1000)
        made.append(
            {
                "person": n,
                "name": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(2)),
                "id_number": make_resident_id("330106", birth, sequence),
                "gender": "M" if sequence % 2 else "F",
                "birth_date": birth.isoformat(),
                "phone": f"13{rng.randrange(10**8, 10**9)}",
                "address": f"杭州市{rng.choice(STREETS)}{rng.randrange(1, 300)}号",
            }
        )
    return made


def copy_with_typo(person: dict, rng: random.Random) -> dict:
    row = dict(person)
    typo = rng.random()
    if typo < 0.25:
        row["name"] = row["name"][0] + "".join(SOUNDS_ALIKE.get(c, c) for c in row["name"][1:])
    elif typo < 0.4:
        row["phone"] = None
    elif typo < 0.55:
        row["id_number"] = "".join(f"{ch}" for ch in row["id_number"][:17]) + " "  # no check char
    elif typo < 0.7:
        row["name"] = " ".join(row["name"])  # typed with spaces
    return row


@pytest.fixture
def city(empty_master_index):
    return departments_rolls()


def departments_rolls() -> dict:
    """Three departments' rolls of the same 150 people (the police register has all; two
    service rolls hold some, with typos), ingested as the departments gave them."""
    rng = random.Random(11)
    everyone = people(150, seed=3)
    police = records.ensure_source("m2-police", title="人口", kind="resident", trust=90)
    civil = records.ensure_source("m2-civil", title="民政", kind="resident", trust=50)
    health = records.ensure_source("m2-health", title="卫健", kind="resident", trust=40)
    truth: dict[tuple[str, str], int] = {}
    for source, share in ((police, 1.0), (civil, 0.6), (health, 0.5)):
        rows = []
        for person in everyone:
            if rng.random() < share:
                row = person if source is police else copy_with_typo(person, rng)
                key = f"{source.name}-{person['person']}"
                rows.append({k: v for k, v in row.items() if k != "person"} | {"key": key})
                truth[(source.name, key)] = person["person"]
        records.ingest(source, rows)
    return {"truth": truth, "people": everyone, "rng": rng, "police": police, "civil": civil}


def truth_of(city) -> dict[int, int]:
    return {
        r.pk: city["truth"][(r.source.name, r.key)]
        for r in SourceRecord.objects.select_related("source")
    }


def entity_map() -> dict[int, str]:
    return dict(SourceRecord.objects.values_list("pk", "entity__code"))


def pair_scores(found: dict[int, str], truth: dict[int, int]) -> tuple[float, float]:
    def pairs(labels):
        groups: dict = {}
        for pk, label in labels.items():
            groups.setdefault(label, []).append(pk)
        return {(a, b) for g in groups.values() for a in g for b in g if a < b}

    got, want = pairs(found), pairs(truth)
    return len(got & want) / max(len(got), 1), len(got & want) / len(want)


def test_a_full_run_over_real_records_finds_the_people_and_a_rerun_keeps_every_code(city):
    run = master.run_full("resident", actor="tester")
    assert run.status == "done" and run.model and run.counts["records"] == len(city["truth"])
    found = entity_map()
    precision, recall = pair_scores(found, truth_of(city))
    print(f"master index on {len(found)} records: precision {precision:.3f} recall {recall:.3f}")
    assert precision >= 0.97, precision
    assert recall >= 0.9, recall
    # a golden record takes the police register's name and a valid ID for its identifier
    sample = Entity.objects.filter(status="active").exclude(identifier="")[:20]
    assert len(sample) == 20
    for entity in sample:
        assert entity.provenance["name"]["source"] == "m2-police"

    again = master.run_full("resident", actor="tester")
    assert entity_map() == found
    assert again.counts["entities_created"] == 0

    # a new roll arrives: its people keep their codes, strangers get new ones
    rng = city["rng"]
    rows = [copy_with_typo(p, rng) | {"key": f"tax-{p['person']}"} for p in city["people"][:30]]
    strangers = people(5, seed=99)
    rows += [p | {"key": f"tax-new-{p['person']}"} for p in strangers]
    tax = records.ensure_source("m2-tax", title="税务", kind="resident", trust=60)
    records.ingest(tax, [{k: v for k, v in r.items() if k != "person"} for r in rows])
    master.run_full("resident")
    after = entity_map()
    kept = sum(after[pk] == code for pk, code in found.items())
    assert kept / len(found) >= 0.99, kept / len(found)
    police_code = {
        r.key: r.entity.code for r in SourceRecord.objects.filter(source__name="m2-police")
    }
    joined = sum(
        after[r.pk] == police_code[f"m2-police-{r.key.split('-')[1]}"]
        for r in SourceRecord.objects.filter(source=tax, key__regex=r"^tax-\d+$")
    )
    assert joined >= 27, joined
    new_codes = {after[r.pk] for r in SourceRecord.objects.filter(key__startswith="tax-new-")}
    assert len(new_codes) == 5 and not new_codes & set(found.values())


def test_an_incremental_link_places_new_records_without_touching_others(city):
    master.run_full("resident")
    before = dict(Entity.objects.values_list("code", "updated_at"))
    person = city["people"][7]
    police_record = SourceRecord.objects.get(key="m2-police-7")
    rows = [
        copy_with_typo(person, city["rng"]) | {"key": "late-7", "name": person["name"]},
        people(1, seed=1234)[0] | {"key": "late-new"},
    ]
    late = records.ensure_source("m2-late", title="迟到", kind="resident", trust=30)
    report = records.ingest(late, [{k: v for k, v in r.items() if k != "person"} for r in rows])
    placed = master.link_new(report.new, actor="tester")
    assert [p["action"] for p in placed] == ["linked", "created"]
    assert placed[0]["entity"] == police_record.entity.code
    assert placed[0]["match_probability"] >= 0.95
    assert placed[1]["entity"] not in before
    run = LinkRun.objects.get(mode="incremental")
    assert run.status == "done" and run.counts["linked"] == 1 and run.counts["created"] == 1
    # only the entity the record joined changed
    after = dict(Entity.objects.values_list("code", "updated_at"))
    changed = {code for code in before if after[code] != before[code]}
    assert changed <= {placed[0]["entity"]}
    record = SourceRecord.objects.get(key="late-7")
    assert master.explain(record)["agreed"]
    # the next full run agrees with the incremental one
    master.run_full("resident")
    assert SourceRecord.objects.get(key="late-7").entity.code == placed[0]["entity"]
    with pytest.raises(ValueError, match="already linked"):
        master.link_new([record])


def test_rulings_on_real_records_stick_through_full_and_incremental_runs(city, clerk):
    master.run_full("resident")
    police = SourceRecord.objects.get(key="m2-police-3")
    kin = police.entity.records.exclude(pk=police.pk).first()
    assert kin is not None, "person 3 should have more than one record"
    low, high = sorted([police, kin], key=lambda r: r.pk)
    pair = ReviewPair.objects.create(
        kind="resident", record_a=low, record_b=high, created_at=timezone.now()
    )
    event = master.decide(pair, "different", user=clerk)
    assert fresh(police).entity_id != fresh(kin).entity_id
    stranger = SourceRecord.objects.get(key="m2-police-4")
    other = SourceRecord.objects.get(key="m2-police-5")
    low, high = sorted([stranger, other], key=lambda r: r.pk)
    joined = ReviewPair.objects.create(
        kind="resident", record_a=low, record_b=high, created_at=timezone.now()
    )
    master.decide(joined, "same", user=clerk)
    master.run_full("resident")
    assert fresh(police).entity_id != fresh(kin).entity_id
    assert fresh(stranger).entity_id == fresh(other).entity_id
    assert event.detail["records"]
    # the department sends the split-off record again, changed: the incremental link still
    # keeps it away from the record a person ruled different, however well they match
    kin = fresh(kin)
    changed = {**kin.attributes, "phone": "13912345678", "key": kin.key}
    report = records.ingest(kin.source, [changed])
    assert report.changed == [kin.pk]
    (placed,) = master.link_new([kin.pk])
    assert placed["entity"] != fresh(police).entity.code
    assert fresh(kin).entity_id != fresh(police).entity_id
