"""Incremental links at any size: a new record is compared with the records the blocking rules
pair it with, found in the store by index, never with every record of its kind; and the records
of one batch are compared with each other.

The candidates are checked against a brute force: every blocking rule, as Splink runs it (the
SQL text of ``linking.SPECS``), joined by DuckDB over the whole frame of stored records.
"""

from __future__ import annotations

import duckdb
import pytest

from civicpulse.identity import linking, master, records
from civicpulse.identity.models import Entity, LinkRun, ReviewPair, SourceRecord
from tests.identity.test_master import copy_with_typo, departments_rolls, people


@pytest.fixture
def city(db):
    return departments_rolls()


def brute_force_partners(frame, kind: str) -> dict[str, set[str]]:
    """record -> every other record some blocking rule pairs it with, by joining the whole
    frame with itself on each rule's SQL."""
    spec = linking.SPECS[kind]
    con = duckdb.connect()
    try:
        con.register("records", frame.astype(object))
        partners: dict[str, set[str]] = {rid: set() for rid in frame["record_id"]}
        for rule in spec.blocking:
            for left, right in con.execute(
                f"select l.record_id, r.record_id from records as l join records as r on ({rule})"
            ).fetchall():
                partners[left].add(right)
    finally:
        con.close()
    return partners


def test_blocking_keys_are_read_from_the_rules_and_other_shapes_are_refused():
    assert linking.SPECS["resident"].blocking_keys[0] == ("id_number",)
    assert ("substr(id_number, 1, 14)", "name_sound") in linking.SPECS["resident"].blocking_keys
    assert len(linking.SPECS["enterprise"].blocking_keys) == len(
        linking.SPECS["enterprise"].blocking
    )
    spec = linking.Spec(
        kind="x",
        columns=("a",),
        comparisons=[],
        blocking=["levenshtein(l.a, r.a) <= 1"],
        deterministic=[],
        recall=0.5,
        training=[],
    )
    with pytest.raises(ValueError, match="no stored key can stand for it"):
        spec.key_values({"a": "x"})
    values = {"id_number": "33010619800517012X", "name_sound": "zalwei", "phone": None}
    keys = dict(linking.SPECS["resident"].key_values(values))
    assert keys[0] == "33010619800517012X" and keys[4] == "33010619800517\x1fzalwei"
    assert 1 not in keys  # no phone: the phone rule pairs this record with nothing


def test_a_records_candidates_are_exactly_the_records_a_blocking_rule_pairs_it_with(city):
    frame = records.frame("resident")
    partners = brute_force_partners(frame, "resident")
    stored = dict(SourceRecord.objects.filter(kind="resident").values_list("pk", "normalised"))
    paired = 0
    for rid, others in partners.items():
        found = records.candidates("resident", [stored[int(rid)]])
        assert found == {int(o) for o in others}, rid
        paired += len(others) > 1
    assert paired > 100  # most people are on more than one roll: the check is not empty
    # a batch's candidates are the union of its records' candidates
    some = list(partners)[:7]
    assert records.candidates("resident", [stored[int(r)] for r in some]) == {
        int(o) for r in some for o in partners[r]
    }


def test_link_new_scores_the_same_pairs_as_against_every_record_and_reads_only_candidates(city):
    master.run_full("resident")
    model = master.latest_model_run("resident").model
    everyone = records.frame("resident")
    rows = [
        copy_with_typo(person, city["rng"]) | {"key": f"late-{person['person']}"}
        for person in city["people"][20:40]
    ]
    late = records.ensure_source("m2-late", title="迟到", kind="resident", trust=30)
    report = records.ingest(late, [{k: v for k, v in r.items() if k != "person"} for r in rows])
    new = records.frame("resident", record_ids=report.new)
    found = records.candidates("resident", new.to_dict("records")) - set(report.new)
    against_all = linking.match_new(new, everyone, "resident", model)
    against_found = linking.match_new(
        new, everyone[everyone["record_id"].astype(int).isin(found)], "resident", model
    )
    columns = ["record_l", "record_r", "match_probability"]
    assert len(against_all) >= 18
    assert against_found[columns].equals(against_all[columns])

    placed = master.link_new(report.new, actor="tester")
    run = LinkRun.objects.get(mode="incremental")
    assert run.counts["candidates"] == len(found) < len(everyone) / 2
    police = {
        r.key: r.entity.code
        for r in SourceRecord.objects.filter(source__name="m2-police").select_related("entity")
    }
    joined = sum(
        p["entity"] == police[f"m2-police-{SourceRecord.objects.get(pk=p['record']).key[5:]}"]
        for p in placed
    )
    assert joined >= 18, joined


def test_two_copies_of_an_unknown_person_in_one_batch_become_one_entity(city):
    master.run_full("resident")
    stranger = {k: v for k, v in people(1, seed=4321)[0].items() if k != "person"}
    other = {k: v for k, v in people(1, seed=8765)[0].items() if k != "person"}
    roll = records.ensure_source("m2-newcomers", title="新来", kind="resident", trust=30)
    report = records.ingest(
        roll,
        [
            stranger | {"key": "a"},
            stranger | {"key": "b", "name": " ".join(stranger["name"]), "phone": None},
            other | {"key": "c"},
        ],
    )
    entities_before = Entity.objects.count()
    placed = master.link_new(report.new, actor="tester")
    assert [p["action"] for p in placed] == ["created", "linked", "created"]
    assert placed[0]["entity"] == placed[1]["entity"] != placed[2]["entity"]
    assert placed[1]["match_probability"] >= 0.95
    assert Entity.objects.count() == entities_before + 2
    second = SourceRecord.objects.get(pk=placed[1]["record"])
    assert master.explain(second)["with"] == placed[0]["record"]
    # nothing of the batch waits for review, and a full run keeps them as they are
    assert not ReviewPair.objects.filter(record_b__in=report.new).exists()
    master.run_full("resident")
    codes = dict(SourceRecord.objects.filter(pk__in=report.new).values_list("pk", "entity__code"))
    assert [codes[p["record"]] for p in placed] == [p["entity"] for p in placed]


def test_u_is_sampled_in_proportion_to_the_input_between_a_floor_and_a_ceiling():
    # never more pairs than the records make
    assert linking._u_pairs(1_000) == 1_000 * 999 // 2
    assert linking._u_pairs(2) == 1
    # a small city samples the floor, not the ceiling a million records need
    assert linking._u_pairs(15_000) == linking.U_MIN_PAIRS < linking.U_MAX_PAIRS
    assert linking._u_pairs(60_000) == 60_000 * linking.U_PAIRS_PER_RECORD
    assert linking._u_pairs(1_000_000) == linking.U_MAX_PAIRS
    sizes = [10, 1_000, 5_000, 20_000, 50_000, 200_000, 10**7]
    assert [linking._u_pairs(n) for n in sizes] == sorted(linking._u_pairs(n) for n in sizes)
