"""Personal-data detection: a realistic register of residents beside real 311 columns, loaded
through the catalog, tagged column by column, graded; and real ER data from Chicago."""

from __future__ import annotations

import csv
import json
import random
from datetime import date, timedelta

import pytest
from django.utils.translation import gettext

from civicpulse.catalog import classify, services
from civicpulse.catalog.classify import ColumnFinding, KindStat, propose_grade
from civicpulse.catalog.models import DatasetColumn
from civicpulse.core.models import AuditEntry
from tests.identity.test_checks import CHARSET31, ref_id, ref_id_check, ref_uscc
from tests.support import shared_data

pytestmark = pytest.mark.shared_data

ROWS = 100
BAD_IDS = 10
LANDLINES = 5
NYC_COLUMNS = [
    "Unique Key",
    "Agency Name",
    "Complaint Type",
    "Descriptor",
    "Incident Address",
    "City",
    "Resolution Description",
]
SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "欧阳", "司马"]
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"
DISTRICTS = ["深圳市南山区", "广州市天河区", "北京市朝阳区", "上海市浦东新区", "杭州市西湖区"]
ROADS = ["科技园路", "中山大道", "建国路", "张杨路", "文三路"]


def _residents(rng: random.Random) -> dict[str, list[str]]:
    """A department's register: names, ID numbers (the last BAD_IDS with a wrong check
    character), mobiles (LANDLINES of them landlines), addresses, employers' credit codes, and a
    column of random 18-digit numbers whose check characters are all wrong."""
    names, ids, phones, addresses, employers, serials = [], [], [], [], [], []
    for i in range(ROWS):
        surname = rng.choice(SURNAMES)
        given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        names.append(surname + given)
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(30_000))
        number = ref_id(rng.choice(["440305", "110105", "330106"]), f"{born:%Y%m%d}", f"{i:03d}")
        if i >= ROWS - BAD_IDS:
            number = number[:17] + next(c for c in "0123456789X" if c != number[17])
        ids.append(number)
        mobile = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        if i < LANDLINES:
            phones.append(f"0755-{rng.randrange(10**7, 10**8)}")
        elif i % 3 == 0:
            phones.append(f"+86 {mobile[:3]} {mobile[3:7]} {mobile[7:]}")
        else:
            phones.append(mobile)
        addresses.append(
            f"{rng.choice(DISTRICTS)}{rng.choice(ROADS)}{rng.randrange(1, 999)}号"
            f"{rng.randrange(1, 30)}栋{rng.randrange(101, 2999)}室"
        )
        body8 = "".join(rng.choice(CHARSET31) for _ in range(8))
        employers.append(ref_uscc("91", "440305", body8))
        first17 = str(rng.randrange(10**16, 10**17))
        serials.append(first17 + next(c for c in "0123456789" if c != ref_id_check(first17)))
    return {
        "姓名": names,
        "身份证号": ids,
        "联系电话": phones,
        "住址": addresses,
        "工作单位统一社会信用代码": employers,
        "档案编号": serials,
    }


def _read_csv(relative: str, columns: list[str]) -> dict[str, list[str]]:
    with shared_data(relative).open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))[:ROWS]
    assert len(rows) == ROWS
    return {c: [r[c] for r in rows] for c in columns}


@pytest.fixture
def register_version(new_dataset, tmp_path):
    """Residents beside the first 100 real NYC and Boston 311 rows, loaded as a CSV version."""
    table = _residents(random.Random(20261126))
    table |= _read_csv("311/nyc_311_qsv_100.csv", NYC_COLUMNS)
    table |= _read_csv("311/boston_311_qsv_100.csv", ["location", "case_title"])
    path = tmp_path / "register.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(table)
        writer.writerows(zip(*table.values(), strict=True))
    dataset = new_dataset("pii")
    version = services.load_version(dataset, path, user=None, progress=False)
    return version, table


EXPECTED_TAGS = {
    "姓名": ["name"],
    "身份证号": ["resident_id"],
    "联系电话": ["mobile"],
    "住址": ["address"],
    "工作单位统一社会信用代码": ["credit_code"],
    "档案编号": [],
    "Unique Key": [],
    "Agency Name": [],
    "Complaint Type": [],
    "Descriptor": [],
    "Incident Address": ["address"],  # a street address is where someone lives or was
    "City": [],
    "Resolution Description": [],
    "location": ["address"],
    "case_title": [],
}


def test_apply_tags_each_column_and_proposes_core(register_version):
    version, table = register_version
    proposal = classify.apply(version)

    stored = dict(version.columns.values_list("name", "personal_tags"))
    assert stored == EXPECTED_TAGS
    by_column = {f.column: f for f in proposal.findings}
    assert {c: list(f.tags) for c, f in by_column.items()} == EXPECTED_TAGS

    ids = by_column["身份证号"]
    assert ids.sampled == ROWS
    assert ids.stats["resident_id"].matched == ROWS - BAD_IDS
    assert ids.stats["resident_id"].share == (ROWS - BAD_IDS) / ROWS
    assert ids.stats["resident_id"].invalid == {"checksum": BAD_IDS}
    assert ids.examples["resident_id"].count("*") == 8

    phones = by_column["联系电话"].stats["mobile"]
    assert (phones.matched, phones.invalid) == (ROWS - LANDLINES, {})  # landlines aren't shaped
    assert by_column["工作单位统一社会信用代码"].stats["credit_code"].matched == ROWS

    # Random 18-digit numbers: not ID numbers, but every one reported as a broken one.
    serials = by_column["档案编号"]
    assert serials.tags == ()
    assert serials.stats["resident_id"].matched == 0
    assert serials.stats["resident_id"].invalid_count == ROWS
    assert "credit_code" not in serials.stats
    # English words that happen to be 18 letters long are not broken credit codes.
    assert all("credit_code" not in by_column[c].stats for c in [*NYC_COLUMNS, "case_title"])
    assert by_column["location"].examples["address"].startswith("*")  # no house number

    assert proposal.grade == "core"
    assert len(proposal.reasons) == 1
    reason = proposal.reasons[0]
    for column in ("身份证号", "姓名", "联系电话", "住址", "Incident Address", "location"):
        assert column in reason
    assert version.dataset.grade == "general"  # proposed, not stored


def test_findings_and_audit_hold_no_sampled_values(register_version):
    version, table = register_version
    before = AuditEntry.objects.filter(action="catalog.personal_data_scanned").count()
    proposal = classify.apply(version)
    entries = AuditEntry.objects.filter(action="catalog.personal_data_scanned")
    assert entries.count() == before + 1
    entry = entries.order_by("-pk").first()
    assert entry.detail["proposed_grade"] == "core"
    assert entry.detail["tags"]["身份证号"] == ["resident_id"]

    shown = repr(proposal) + json.dumps(entry.detail, ensure_ascii=False)
    for column in ("姓名", "身份证号", "联系电话", "住址", "档案编号"):
        for value in table[column]:
            assert value not in shown, column
    for value in table["联系电话"][LANDLINES:]:
        assert value.replace(" ", "")[-11:] not in shown


def test_apply_replaces_stale_tags_and_only_tags_change(register_version):
    version, _ = register_version
    column = version.columns.get(name="Descriptor")
    DatasetColumn.objects.filter(pk=column.pk).update(personal_tags=["name"])
    def profile() -> list[dict]:
        return list(
            DatasetColumn.objects.filter(version=version).values(
                "name", "samples", "min_value", "max_value", "null_count", "personal_tags"
            )
        )

    before = {row["name"]: row for row in profile()}
    classify.apply(version)
    column.refresh_from_db()
    assert column.personal_tags == []
    after = {row["name"]: row for row in profile()}
    masked = 0
    for name, row in after.items():
        if not row["personal_tags"]:  # untouched: an untagged column keeps its profile
            assert {**row, "personal_tags": []} == {**before[name], "personal_tags": []}
            continue
        # a tagged column's profile values were in clear since the load: now masked, and
        # nothing of the clear values is left
        assert row["null_count"] == before[name]["null_count"]
        shown = [*row["samples"], row["min_value"], row["max_value"]]
        clear = [*before[name]["samples"], before[name]["min_value"], before[name]["max_value"]]
        assert all("*" in str(v) for v in shown if v), (name, shown)
        assert not set(shown) & {v for v in clear if v}
        masked += 1
    assert masked >= 3
    again = profile()
    classify.apply(version)  # masking is once: a second run changes nothing
    assert profile() == again


def test_a_smaller_sample_reads_fewer_values(register_version):
    version, _ = register_version
    findings = classify.scan_version(version, sample=20)
    ids = next(f for f in findings if f.column == "身份证号")
    assert ids.sampled == 20
    assert ids.stats["resident_id"].matched + ids.stats["resident_id"].invalid_count == 20


def test_chicago_early_childhood_addresses_but_no_mobiles_or_chinese_names(new_dataset):
    path = shared_data("er/dedupe_chicago_early_childhood_messy.csv")
    version = services.load_version(new_dataset("er"), path, user=None, progress=False)
    proposal = classify.apply(version)
    tagged = {f.column: list(f.tags) for f in proposal.findings if f.tags}
    assert tagged == {"Address": ["address"]}
    address = next(f for f in proposal.findings if f.column == "Address").stats["address"]
    assert address.hinted and 0.3 <= address.share < 0.8
    assert proposal.grade == "general"
    assert proposal.reasons == ["addresses (Address) alone describe places, not persons"]


# ---------------------------------------------------------------- the grading rule


def _finding(column: str, *tags: str) -> ColumnFinding:
    stats = {t: KindStat(t, 10, 1.0, False) for t in tags}
    return ColumnFinding(column, 10, tags, stats, {})


@pytest.mark.parametrize(
    ("tags", "grade", "named"),
    [
        ([], "general", []),
        (["name"], "general", ["c0"]),
        (["address"], "general", ["c0"]),
        (["credit_code"], "general", ["c0"]),
        (["name", "address"], "important", ["c0", "c1"]),
        (["mobile"], "important", ["c0"]),
        (["resident_id"], "important", ["c0"]),
        (["credit_code", "name"], "important", ["c0", "c1"]),
        (["resident_id", "name"], "core", ["c0", "c1"]),
        (["resident_id", "address"], "core", ["c0", "c1"]),
        (["resident_id", "mobile", "credit_code"], "core", ["c0", "c1"]),
    ],
)
def test_grading_rule(tags, grade, named):
    findings = [_finding(f"c{i}", tag) for i, tag in enumerate(tags)]
    got, reasons = propose_grade(findings)
    assert got == grade
    assert reasons and all(reasons)
    said = " ".join(reasons)
    assert [c for c in ("c0", "c1", "c2") if c in said] == named
    if not tags:
        assert reasons == [gettext("no personal data columns found")]


def test_a_category_that_looks_like_names_is_not_tagged_but_a_register_of_names_is():
    categories = ["路灯维修", "路面破损", "高空抛物", "马路积水"] * 50  # surnames 路, 高, 马
    found = classify.classify_values("事项类型", categories)
    assert "name" not in found.tags
    people = [f"{s}{g}" for s in "张王李赵刘陈杨黄周吴" for g in ("伟", "芳", "娜", "敏", "静")]
    assert "name" in classify.classify_values("联系人", people).tags
    assert "name" in classify.classify_values("c1", people * 2).tags  # no hint: diverse enough


def test_a_new_version_keeps_the_personal_tags_of_the_one_before(register_version, tmp_path):
    """Until its own scan, a new load is masked as the version before it was: it is never
    served in clear for a moment."""
    version, table = register_version
    classify.apply(version)
    # the next month's file: the same columns, the rows in another order
    path = tmp_path / "register-2.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(table)
        writer.writerows(reversed(list(zip(*table.values(), strict=True))))
    second = services.load_version(version.dataset, path, user=None, progress=False)
    tags = {c.name: c.personal_tags for c in second.columns.all()}
    assert {k: v for k, v in tags.items() if v} == {
        k: v for k, v in EXPECTED_TAGS.items() if v
    }
    ids = second.columns.get(name="身份证号")
    shown = [*ids.samples, ids.min_value, ids.max_value]
    assert shown and all("********" in str(v) for v in shown if v)
    assert not set(shown) & set(table["身份证号"])
