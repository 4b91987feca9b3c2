"""Records in: sources, ingest (as given, checked, normalised, upserted), the linker's frame and
sync from where each source's rows live."""

from __future__ import annotations

import csv
import itertools
from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from civicpulse.identity import normalise, records
from civicpulse.identity.identifiers import make_resident_id
from civicpulse.identity.models import BlockingKey, Entity, Kind, Source, SourceRecord
from tests.support import shared_data

_numbers = itertools.count(1)

GOOD_ID = make_resident_id("110101", date(1980, 5, 17), 123)
OTHER_ID = make_resident_id("110102", date(1992, 1, 3), 456)
BAD_ID = GOOD_ID[:-1] + ("0" if GOOD_ID[-1] != "0" else "1")  # wrong check character

ROLL_MAPPING = {"key": "编号", "name": "姓名", "id_number": "公民身份号码", "phone": "手机号码"}


@pytest.fixture
def areas(db):
    from civicpulse.core.areas import AreaRecord, save_tree

    save_tree(
        [
            AreaRecord("110000", "city", "测试市", "Test City", None),
            AreaRecord("110101", "district", "东城区", "Dongcheng", "110000"),
            AreaRecord("110101001", "street", "东华门街道", "Donghuamen", "110101"),
        ]
    )


@pytest.fixture
def roll(areas):
    return records.ensure_source(
        f"roll-{next(_numbers)}",
        title="低保名单",
        kind=Kind.RESIDENT,
        trust=60,
        mapping=ROLL_MAPPING,
        service_title="最低生活保障",
    )


def _row(key, name, id_number, phone="13812345678"):
    return {"编号": key, "姓名": name, "公民身份号码": id_number, "手机号码": phone, "备注": "x"}


def test_ensure_source_is_idempotent_and_keeps_its_kind_once_it_holds_records(roll):
    again = records.ensure_source(
        roll.name, title="低保名单", kind=Kind.RESIDENT, trust=70, mapping=ROLL_MAPPING
    )
    assert again.pk == roll.pk and again.trust == 70
    assert Source.objects.filter(name=roll.name).count() == 1

    records.ingest(roll, [_row("1", "张伟", GOOD_ID)])
    with pytest.raises(records.RecordsError, match="holds resident records"):
        records.ensure_source(roll.name, title="x", kind=Kind.ENTERPRISE)
    with pytest.raises(records.RecordsError, match="no department"):
        records.ensure_source("nowhere", title="x", kind=Kind.RESIDENT, department="nope")
    with pytest.raises(records.RecordsError, match="kind must be"):
        records.ensure_source("odd", title="x", kind="robot")
    assert not Source.objects.filter(name__in=["nowhere", "odd"]).exists()


def test_ingest_keeps_values_as_given_with_their_problems_and_the_normalised_form(roll):
    report = records.ingest(
        roll,
        [
            _row("1", "张　伟", GOOD_ID),
            _row("2", "李娜", BAD_ID.lower(), phone="+86 139 0000 1111"),
        ],
        actor="tester",
    )
    assert report.counts()["new"] == 2 and report.rejected == []
    assert report.with_problems == 1
    good, bad = SourceRecord.objects.filter(source=roll).order_by("key")
    # as given: nothing fixed, unmapped columns left out
    assert good.attributes == {"name": "张　伟", "id_number": GOOD_ID, "phone": "13812345678"}
    assert bad.attributes["id_number"] == BAD_ID.lower()
    assert good.problems == []
    assert [p["field"] for p in bad.problems] == ["id_number"]
    assert bad.problems[0]["reason"]
    # normalised by the index's own functions, every column present
    assert good.normalised == normalise.resident(good.attributes, normalise.Gazetteer.from_store())
    assert set(normalise.COLUMNS["resident"]) <= set(good.normalised)
    assert good.normalised["id_valid"] == "1" and bad.normalised["id_valid"] == "0"
    assert bad.normalised["phone"] == "13900001111"
    assert good.linked_by == "" and good.entity is None
    assert sorted(report.new) == sorted([good.pk, bad.pk])

    from civicpulse.core.models import AuditEntry

    entry = AuditEntry.objects.filter(action="identity.ingest", object_id=str(roll.pk)).last()
    assert entry.actor == "tester" and entry.detail["new"] == 2


def test_rejected_rows_are_reported_by_number_and_write_nothing(roll):
    rows = [
        _row("1", "张伟", GOOD_ID),
        ["not", "a", "row"],
        _row("", "无编号", OTHER_ID),
        _row("1", "张伟又一次", OTHER_ID),
        {**_row("5", "王芳", OTHER_ID), "observed_at": "last tuesday"},
        _row("6", "王芳", OTHER_ID),
    ]
    report = records.ingest(roll, rows)
    assert report.rows == 6
    assert [(r["row"], r["reason"]) for r in report.rejected] == [
        (2, "not a row of columns (list)"),
        (3, "no key: column '编号' is empty"),
        (4, "key already given at row 1"),
        (5, "observed_at 'last tuesday' is not an ISO date or time"),
    ]
    assert sorted(SourceRecord.objects.filter(source=roll).values_list("key", flat=True)) == [
        "1",
        "6",
    ]
    assert SourceRecord.objects.get(source=roll, key="1").attributes["name"] == "张伟"


def test_a_rerun_writes_nothing_and_a_changed_row_keeps_its_entity_but_waits_to_be_linked(roll):
    first = records.ingest(roll, [_row("1", "张伟", GOOD_ID), _row("2", "李娜", OTHER_ID)])
    again = records.ingest(roll, [_row("1", "张伟", GOOD_ID), _row("2", "李娜", OTHER_ID)])
    assert again.counts() == {
        "rows": 2, "new": 0, "changed": 0, "unchanged": 2, "with_problems": 0, "rejected": 0,
    }  # fmt: skip

    now = timezone.now()
    entity = Entity.objects.create(
        code=f"R{next(_numbers):09d}", kind=Kind.RESIDENT, created_at=now, updated_at=now
    )
    SourceRecord.objects.filter(pk__in=first.new).update(entity=entity, linked_by="model")
    later = now + timedelta(days=3)
    changed = records.ingest(
        roll, [_row("1", "张伟", GOOD_ID, phone="13999998888"), _row("2", "李娜", OTHER_ID)],
        observed_at=later,
    )  # fmt: skip
    assert changed.counts()["changed"] == 1 and changed.counts()["unchanged"] == 1
    record = SourceRecord.objects.get(pk=changed.changed[0])
    assert record.key == "1" and record.entity == entity and record.linked_by == ""
    assert record.normalised["phone"] == "13999998888" and record.observed_at == later
    assert records.pending(Kind.RESIDENT) == [record.pk]
    assert SourceRecord.objects.get(source=roll, key="2").linked_by == "model"


def test_ingest_streams_in_batches_with_progress(roll):
    rows = (_row(str(i), f"居民{i}", GOOD_ID if i % 2 else OTHER_ID) for i in range(7))
    seen = []
    report = records.ingest(roll, rows, progress=seen.append, batch_size=3)
    assert len(report.new) == 7 and len(set(report.new)) == 7
    assert seen[:3] == [3, 6, 7] and seen[-1] == 7
    assert SourceRecord.objects.filter(source=roll).count() == 7


def test_frame_gives_the_linker_every_record_or_the_ones_asked_for(roll):
    report = records.ingest(roll, [_row(str(i), f"居民{i}", GOOD_ID) for i in range(4)])
    whole = records.frame(Kind.RESIDENT)
    assert list(whole.columns) == ["record_id", "source", *normalise.COLUMNS["resident"]]
    assert set(whole.record_id) >= {str(pk) for pk in report.new}
    assert set(whole[whole.record_id.isin([str(p) for p in report.new])].source) == {roll.name}
    some = records.frame(Kind.RESIDENT, record_ids=report.new[:2])
    assert sorted(some.record_id) == sorted(str(pk) for pk in report.new[:2])
    record = SourceRecord.objects.get(pk=report.new[0])
    row = some.set_index("record_id").loc[str(record.pk)]
    assert row["name"] == record.normalised["name"] and row["id_number"] == GOOD_ID
    assert records.frame(Kind.ENTERPRISE, record_ids=report.new).empty


def _keys(record_ids) -> set[tuple[int, int, str]]:
    return set(
        BlockingKey.objects.filter(record__in=record_ids).values_list("record_id", "rule", "value")
    )


def test_ingest_writes_each_records_blocking_keys_and_rewrites_them_when_it_changes(roll):
    report = records.ingest(roll, [_row("1", "张伟", GOOD_ID), _row("2", "李娜", OTHER_ID, None)])
    first, second = (SourceRecord.objects.get(pk=pk) for pk in report.new)
    want = {
        (r.pk, rule, value)
        for r in (first, second)
        for rule, value in records.blocking_keys(Kind.RESIDENT, r.normalised)
    }
    assert _keys(report.new) == want
    # the ID, the phone and the ID's first fourteen characters with the name's sound
    assert {rule for pk, rule, _v in want if pk == first.pk} >= {0, 1, 4}
    assert 1 not in {rule for pk, rule, _v in want if pk == second.pk}  # no phone, no key
    # a changed phone changes that key only; the other record's keys stay as they were
    records.ingest(
        roll, [_row("1", "张伟", GOOD_ID, "13900001111"), _row("2", "李娜", OTHER_ID, None)]
    )
    after = _keys(report.new)
    assert (first.pk, 1, "13900001111") in after and (first.pk, 1, "13812345678") not in after
    assert {k for k in after if k[0] == second.pk} == {k for k in want if k[0] == second.pk}
    # rebuilt from the stored records (the demo city's too, when the session built it), the
    # keys are the same
    total = BlockingKey.objects.filter(kind=Kind.RESIDENT).count()
    assert records.index_blocking_keys(Kind.RESIDENT) == total
    assert _keys(report.new) == after


def test_a_key_too_long_for_its_column_is_kept_as_its_digest(roll):
    long_name = "Alexandrina " * 20  # name and birth date: far longer than the column
    twin = make_resident_id("110101", date(1980, 5, 17), 777)  # born the same day as GOOD_ID
    report = records.ingest(
        roll, [_row("1", long_name, GOOD_ID, None), _row("2", long_name, twin, None)]
    )
    a, b = report.new
    keys = _keys(report.new)
    assert all(len(v) <= 128 for _pk, _rule, v in keys)
    shared = {(rule, v) for pk, rule, v in keys if pk == a} & {
        (rule, v) for pk, rule, v in keys if pk == b
    }
    assert shared and all(v.startswith("sha1:") for _rule, v in shared)
    normalised = SourceRecord.objects.get(pk=a).normalised
    assert records.candidates(Kind.RESIDENT, [normalised]) == {a, b}


@pytest.mark.shared_data
def test_a_real_department_file_goes_in_as_given(areas):
    path = shared_data("er/dedupe_chicago_early_childhood_messy.csv")
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    source = records.ensure_source(
        "chicago-early-childhood",
        title="Early childhood sites",
        kind=Kind.ENTERPRISE,
        mapping={"key": "Id", "name": "Site name", "address": "Address", "phone": "Phone"},
    )
    report = records.ingest(source, rows)
    assert report.rows == len(rows) and not report.rejected
    assert len(report.new) == len({r["Id"] for r in rows})
    stored = SourceRecord.objects.get(source=source, key=rows[0]["Id"])
    assert stored.attributes["name"] == rows[0]["Site name"]  # leading space kept
    gazetteer = normalise.Gazetteer.from_store()
    assert stored.normalised == normalise.enterprise(stored.attributes, gazetteer)
    assert stored.normalised["name"] and stored.normalised["name"] != stored.attributes["name"]
    assert records.ingest(source, rows).counts()["unchanged"] == len(rows)


# ---- sync --------------------------------------------------------------------------------


def test_sync_reads_the_population_register_and_the_hotline_callers(areas, empty_registers):
    from civicpulse.cases.models import Case, Reporter, Service
    from civicpulse.core.models import Area, Department
    from civicpulse.identity.models import Resident

    Department.objects.get_or_create(code="police", defaults={"name_zh": "公安局"})
    street = Area.objects.get(code="110101001")
    Resident.objects.create(
        id_number=GOOD_ID, name="张伟", gender="M", birth_date=date(1980, 5, 17),
        phone="13812345678", area=street, address="东城区东华门街道1号",
    )  # fmt: skip
    dept = Department.objects.get(code="police")
    service = Service.objects.create(
        code="noise-t", name_zh="噪音", name_en="Noise", group="order", department=dept
    )
    caller = Reporter.objects.create(name="张先生", phone="13812345678")
    Reporter.objects.create(name="", phone="", email="a@example.org")  # no name, no phone
    Reporter.objects.create(name="没有诉求", phone="13700000000")  # never reported a case
    first = timezone.make_aware(datetime(2026, 3, 1, 9, 30))
    for n, at in enumerate([first + timedelta(days=9), first]):
        case = Case.objects.create(
            tracking_no=f"T-REC-{n}", channel="hotline", service=service, department=dept,
            area=street, title="噪音", description="夜间施工", created_at=at,
        )  # fmt: skip
        case.reporters.add(caller)

    sources = {s.name: s for s in records.ensure_builtin_sources()}
    assert sources["population-register"].department == dept
    # the hotline's department when the city has one ("urban": the demo city, if the session
    # built it in this store), else none
    assert (
        sources["hotline-reporters"].department == Department.objects.filter(code="urban").first()
    )

    people = records.sync("population-register", actor="tester")
    assert people.counts()["new"] == 1
    record = SourceRecord.objects.get(pk=people.new[0])
    assert record.attributes["birth_date"] == "1980-05-17"
    assert record.attributes["id_number"] == GOOD_ID

    callers = records.sync("hotline-reporters")
    assert callers.counts()["new"] == 1
    called = SourceRecord.objects.get(pk=callers.new[0])
    assert called.key == str(caller.pk)
    assert called.attributes == {"name": "张先生", "phone": "13812345678"}
    assert called.observed_at == first
    assert records.sync("hotline-reporters").counts()["unchanged"] == 1

    with pytest.raises(records.RecordsError, match="no record source 'nope'"):
        records.sync("nope")


def test_sync_reads_a_catalog_datasets_current_version(areas, tmp_path):
    from civicpulse.catalog import services as catalog
    from civicpulse.core.models import Department

    dept, _ = Department.objects.get_or_create(code="hrss", defaults={"name_zh": "人社局"})
    slug = f"allowance-{next(_numbers)}"
    catalog.register_dataset(slug, title="补贴名单", owner=dept)
    path = tmp_path / "roll.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["编号", "姓名", "公民身份号码", "手机号码"])
        writer.writerow(["A1", "张伟", GOOD_ID, "13812345678"])
        writer.writerow(["A2", "李娜", BAD_ID, ""])
    catalog.load_version(slug, path, progress=False)
    source = records.ensure_source(
        slug, title="补贴名单", kind=Kind.RESIDENT, department="hrss", dataset_slug=slug,
        mapping=ROLL_MAPPING,
    )  # fmt: skip
    report = records.sync(source)
    assert report.counts()["new"] == 2 and report.with_problems == 1
    stored = dict(SourceRecord.objects.filter(source=source).values_list("key", "attributes"))
    assert stored["A1"]["name"] == "张伟" and stored["A2"]["id_number"] == BAD_ID

    # a new version: one row changed, one gone (kept: the index forgets nothing), one new
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["编号", "姓名", "公民身份号码", "手机号码"])
        writer.writerow(["A1", "张伟", GOOD_ID, "13999998888"])
        writer.writerow(["A3", "王芳", OTHER_ID, "13700001111"])
    catalog.load_version(slug, path, progress=False)
    report = records.sync(source)
    assert report.counts() == {
        "rows": 2, "new": 1, "changed": 1, "unchanged": 0, "with_problems": 0, "rejected": 0,
    }  # fmt: skip
    assert SourceRecord.objects.filter(source=source).count() == 3

    empty = records.ensure_source(
        "no-data-yet", title="x", kind=Kind.RESIDENT, dataset_slug="not-registered"
    )
    with pytest.raises(records.RecordsError):
        records.sync(empty)
