"""Data standards on real data: code lists seeded from the standards and the store, columns
mapped to data elements, and conformance reports with exact counts per kind of violation.

Expected counts are worked out here from the rows as they were written (never by the code under
test): the generated table carries a known number of each kind of error.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from civicpulse.catalog import services, standards
from civicpulse.catalog.models import (
    CodeItem,
    CodeList,
    ColumnMapping,
    ConformanceReport,
    DataElement,
    DatasetColumn,
    ImmutableRecord,
)
from civicpulse.core.models import Area, AuditEntry
from civicpulse.identity import services as identity
from civicpulse.identity.identifiers import make_resident_id
from tests.support import REPO_ROOT, shared_data

pytestmark = pytest.mark.shared_data

ATLAS = "311/nyc_311_2019-12-31_atlas.csv"
HEADER = ["person_id", "gender", "division", "industry", "birth_date", "postcode", "note"]


def _load(dataset, source):
    return services.load_version(dataset, source, user=None, progress=False)


def _write(path: Path, header, rows) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def _bad_check_char(resident_id: str) -> str:
    """The same number with another check character: fails only its checksum."""
    other = "0" if resident_id[-1] != "0" else "1"
    return resident_id[:-1] + other


def _examples(values: list[str]) -> list[str]:
    """Distinct values, most frequent first then by text, at most five: the report's order."""
    counts = Counter(values)
    return sorted(counts, key=lambda v: (-counts[v], v))[:5]


@pytest.fixture
def seeded(db):
    return standards.seed()


@pytest.fixture
def city_area(db):
    """A district of a made-up city, with a 6-digit code the store did not have."""
    city, _ = Area.objects.get_or_create(
        code="239800", defaults={"level": "city", "name_zh": "测试市", "name_en": "Test City"}
    )
    return Area.objects.create(
        code="239877", level="district", parent=city, name_zh="测试区", name_en="Test District"
    )


def _generated(city_area):
    """Rows with known errors, and what a check must find in each column."""
    born = dt.date(1985, 6, 15)
    good_ids = [make_resident_id("110105", born, seq) for seq in range(1, 61)]
    bad_ids = [_bad_check_char(make_resident_id("330106", born, seq)) for seq in (1, 2, 3)]
    ids = (
        good_ids
        + [bad_ids[0]] * 3
        + bad_ids[1:]
        + ["", "", make_resident_id("110105", born, 99) + "7"]
    )
    genders = ["1"] * 30 + ["2"] * 25 + ["0", "9"] + ["M"] * 4 + ["3"] * 3 + ["", "", ""]
    genders += ["1"] * (len(ids) - len(genders))
    divisions = ["110000"] * 20 + [city_area.code] * 15 + ["999999"] * 4 + ["2398"] * 2
    divisions += [city_area.parent.code] * (len(ids) - len(divisions))
    industry = ["C"] * 10 + ["13"] * 10 + ["01"] * 5 + ["97", "T"] + ["Z"] * 2 + ["98"] * 3 + ["1"]
    industry += ["A"] * (len(ids) - len(industry))
    dates = ["1990-02-30", "1990-02-30", "not a date"] + ["1985-06-15"] * (len(ids) - 3)
    postcodes = ["1000", "1000", "10000a", "1000000"] + ["150000"] * (len(ids) - 4)
    rows = [
        [ids[i], genders[i], divisions[i], industry[i], dates[i], postcodes[i], f"row {i}"]
        for i in range(len(ids))
    ]
    return rows


def test_seed_writes_the_standard_lists_once(seeded):
    first = {
        cl.identifier: list(
            CodeItem.objects.filter(code_list=cl).values_list(
                "id", "code", "name_zh", "name_en", "parent_code", "position"
            )
        )
        for cl in CodeList.objects.filter(identifier__in=["gender", "division", "industry"])
    }
    first_elements = list(DataElement.objects.order_by("identifier").values())
    again = standards.seed()
    second = {
        identifier: list(
            CodeItem.objects.filter(code_list__identifier=identifier).values_list(
                "id", "code", "name_zh", "name_en", "parent_code", "position"
            )
        )
        for identifier in first
    }
    assert second == first and again == seeded
    assert list(DataElement.objects.order_by("identifier").values()) == first_elements

    gender = {c: n for _i, c, n, *_rest in first["gender"]}
    assert gender == {"0": "未知的性别", "1": "男性", "2": "女性", "9": "未说明的性别"}
    industry = {code: (name, parent) for _i, code, name, _en, parent, _p in first["industry"]}
    sections = [c for c in industry if c.isalpha()]
    divisions = [c for c in industry if c.isdigit()]
    assert sections == [chr(c) for c in range(ord("A"), ord("T") + 1)]
    assert sorted(divisions) == [f"{n:02d}" for n in range(1, 98)]
    assert industry["A"][0] == "农、林、牧、渔业" and industry["T"][0] == "国际组织"
    assert industry["01"] == ("农业", "A") and industry["36"] == ("汽车制造业", "C")
    assert industry["65"] == ("软件和信息技术服务业", "I") and industry["97"][1] == "T"
    assert all(industry[d][1] in sections for d in divisions)
    provinces = [c for _i, c, _n, _e, parent, _p in first["division"] if c.endswith("0000")]
    assert len(provinces) >= 34 and {"110000", "650000", "820000"} <= set(provinces)
    assert seeded["gender"] == 4 and seeded["industry"] == 117 and seeded["elements"] == 8
    assert DataElement.objects.get(identifier="resident_id").identifier_check == "resident_id"
    assert DataElement.objects.get(identifier="industry_code").code_list.identifier == "industry"


def test_division_list_follows_the_stores_areas(seeded, city_area):
    six_digit = {
        a.code: a.name_zh for a in Area.objects.all() if len(a.code) == 6 and a.code.isdigit()
    }
    assert city_area.code not in {i.code for i in standards.code_items("division")}
    counts = standards.seed()
    listed = {i.code: i for i in standards.code_items("division")}
    assert counts["division"] == len(listed)
    for code, name in six_digit.items():
        assert code in listed
        if not code.endswith("0000"):  # a province keeps its official name
            assert listed[code].name_zh == name
    assert listed[city_area.code].parent_code == city_area.parent.code
    assert listed[city_area.parent.code].parent_code == "230000"  # its province
    assert not any(len(code) != 6 for code in listed)  # streets and below are not divisions

    city_area.name_zh = "测试新区"
    city_area.save()
    standards.seed()
    assert standards.code_items("division").get(code=city_area.code).name_zh == "测试新区"
    city_area.delete()
    standards.seed()
    assert not standards.code_items("division").filter(code=city_area.code).exists()


def test_map_column_refuses_an_unknown_element_and_warns_of_a_missing_column(
    seeded, new_dataset, tmp_path
):
    dataset = new_dataset("std")
    with pytest.raises(standards.StandardsError, match="no data element 'shoe_size'"):
        standards.map_column(dataset, "size", "shoe_size")
    assert not ColumnMapping.objects.filter(dataset=dataset).exists()

    early = standards.map_column(dataset, "gender", "gender")
    assert early.created and "has no version yet" in early.warnings[0]
    _load(dataset, _write(tmp_path / "a.csv", ["gender", "x"], [["1", "a"], ["2", "b"]]))
    dataset.refresh_from_db()
    later = standards.map_column(dataset, "licence", "credit_code", required=True)
    assert "column licence is not in" in later.warnings[0] and later.mapping.required
    remapped = standards.map_column(dataset, "gender", "division_code")
    assert not remapped.created and remapped.warnings == []
    assert ColumnMapping.objects.get(dataset=dataset, column="gender").element.identifier == (
        "division_code"
    )
    with pytest.raises(services.CatalogError, match="no data element"):
        services.map_column(dataset.slug, "x", "nope")


def test_conformance_of_a_generated_table_with_known_errors(
    seeded, city_area, new_dataset, tmp_path
):
    standards.seed()  # the division list now holds the test district
    rows = _generated(city_area)
    dataset = new_dataset("std")
    version = _load(dataset, _write(tmp_path / "people.csv", HEADER, rows))
    for column, element, required in [
        ("person_id", "resident_id", True),
        ("gender", "gender", False),
        ("division", "division_code", False),
        ("industry", "industry_code", False),
        ("birth_date", "birth_date", False),
        ("postcode", "postcode", False),
        ("licence", "credit_code", False),
    ]:
        standards.map_column(dataset, column, element, required)
    postcode = DatasetColumn.objects.get(version=version, name="postcode")
    postcode.personal_tags = ["address"]  # as the classification step would tag it
    postcode.save(update_fields=["personal_tags"])

    report = standards.check_version(version, user="tester")
    by_column = {c["column"]: c for c in report.columns}
    assert [c["column"] for c in report.columns] == sorted(by_column)

    col = {name: [r[i] for r in rows] for i, name in enumerate(HEADER)}

    ids = by_column["person_id"]
    present = [v for v in col["person_id"] if v]
    failing = [v for v in present if not identity.check_resident_id(v).valid]
    assert len(failing) == 6  # 3 + 2 altered check characters, and one 19 characters long
    assert ids["values"] == len(present) and ids["empty"] == 2
    assert ids["violations"][standards.REQUIRED_EMPTY] == {"count": 2, "examples": []}
    assert ids["violations"][standards.TOO_LONG]["count"] == 1
    checked = ids["violations"][standards.FAILS_CHECK]
    assert checked["count"] == len(failing)
    assert checked["examples"] == [identity.mask("resident_id", v) for v in _examples(failing)]
    assert not set(checked["examples"]) & set(failing)  # never shown in clear
    assert ids["masked"] and ids["failed"] == len(failing)

    gender = by_column["gender"]
    codes = {"0", "1", "2", "9"}
    wrong = [v for v in col["gender"] if v and v not in codes]
    assert gender["violations"] == {
        standards.NOT_IN_CODE_LIST: {"count": len(wrong), "examples": _examples(wrong)}
    }
    assert _examples(wrong) == ["M", "3"] and gender["empty"] == 3 and not gender["masked"]

    listed = {i.code for i in standards.code_items("division")}
    unknown = [v for v in col["division"] if v not in listed]
    assert by_column["division"]["violations"] == {
        standards.NOT_IN_CODE_LIST: {"count": len(unknown), "examples": _examples(unknown)}
    }
    assert len(unknown) == 6 and city_area.code not in unknown

    sections = {i.code for i in standards.code_items("industry")}
    bad_industry = [v for v in col["industry"] if v not in sections]
    assert sorted(set(bad_industry)) == ["1", "98", "Z"]
    assert by_column["industry"]["violations"][standards.NOT_IN_CODE_LIST] == {
        "count": len(bad_industry),
        "examples": _examples(bad_industry),
    }

    dates = by_column["birth_date"]
    bad_dates = [v for v in col["birth_date"] if not _is_date(v)]
    assert dates["violations"] == {
        standards.WRONG_TYPE: {"count": len(bad_dates), "examples": _examples(bad_dates)}
    }

    postcodes = by_column["postcode"]
    bad_codes = [v for v in col["postcode"] if not (len(v) == 6 and v.isdigit())]
    assert postcodes["violations"] == {
        standards.FORMAT_MISMATCH: {
            "count": len(bad_codes),
            "examples": [identity.mask("address", v) for v in _examples(bad_codes)],
        }
    }
    assert (
        postcodes["masked"]
        and "1000" not in postcodes["violations"][standards.FORMAT_MISMATCH]["examples"]
    )

    assert by_column["licence"]["violations"] == {
        standards.MISSING_COLUMN: {"count": 1, "examples": []}
    }
    assert (
        report.violations
        == 2
        + 1
        + len(failing)
        + len(wrong)
        + len(unknown)
        + len(bad_industry)
        + len(bad_dates)
        + len(bad_codes)
        + 1
    )

    entry = AuditEntry.objects.filter(action="catalog.conformance_checked").latest("id")
    assert entry.detail["violations"] == report.violations and entry.detail["version"] == 1
    report.violations = 0
    with pytest.raises(ImmutableRecord):
        report.save()
    with pytest.raises(ImmutableRecord):
        ConformanceReport.objects.filter(pk=report.pk).update(violations=0)
    text = standards.report_text(ConformanceReport.objects.get(pk=report.pk))
    assert f"- gender → gender: {gender['values']} values, {len(wrong)} failing" in text
    assert f"    not_in_code_list {len(wrong)}: e.g. 'M', '3'" in text


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def test_conformance_of_real_311_rows(seeded, new_dataset):
    source = shared_data(ATLAS)
    with open(source, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    dataset = new_dataset("std311")
    version = _load(dataset, source)
    case_number, _ = DataElement.objects.get_or_create(
        identifier="case_number",
        defaults={"name_zh": "工单编号", "name_en": "Case number", "data_type": "integer"},
    )
    standards.map_column(dataset, "unique_key", case_number, required=True)
    standards.map_column(dataset, "incident_zip", "postcode")
    standards.map_column(dataset, "borough", "division_code")
    standards.map_column(dataset, "created_date", "birth_date")
    report = services.check_conformance(dataset.slug, user="tester")
    by_column = {c["column"]: c for c in report.columns}

    assert by_column["unique_key"]["values"] == len(rows)
    assert by_column["unique_key"]["violations"] == {}
    zips = [r["incident_zip"] for r in rows if r["incident_zip"].strip()]
    assert by_column["incident_zip"]["empty"] == len(rows) - len(zips)
    assert by_column["incident_zip"]["violations"] == {  # New York's zips have five digits
        standards.FORMAT_MISMATCH: {"count": len(zips), "examples": _examples(zips)}
    }
    boroughs = [r["borough"] for r in rows if r["borough"].strip()]
    assert by_column["borough"]["violations"][standards.NOT_IN_CODE_LIST] == {
        "count": len(boroughs),
        "examples": _examples(boroughs),
    }
    assert by_column["created_date"]["values"] == len(rows)
    assert by_column["created_date"]["violations"] == {}
    assert report.violations == len(zips) + len(boroughs)
    assert report.version == version

    with pytest.raises(services.CatalogError, match="has no version 7"):
        services.check_conformance(dataset.slug, 7)
    empty = new_dataset("std311")
    _load(empty, source)
    with pytest.raises(services.CatalogError, match="no column mapped"):
        services.check_conformance(empty.slug)


def _cli(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "civicpulse.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_standards_from_the_command_line(tmp_path):
    source = shared_data(ATLAS)
    env = {**os.environ, "CIVICPULSE_DATA_DIR": str(tmp_path / "var")}
    env.pop("CIVICPULSE_DATABASE_URL", None)
    assert _cli(env, "migrate").returncode == 0
    made = _cli(
        env,
        "manage",
        "shell",
        "-c",
        "from civicpulse.core.models import Department; "
        "Department.objects.create(code='DSNY', name_zh='环卫局', name_en='Sanitation')",
    )
    assert made.returncode == 0, made.stderr
    assert _cli(env, "catalog", "register", "nyc311", "--title", "311",
                "--department", "DSNY").returncode == 0  # fmt: skip
    assert _cli(env, "catalog", "load", "nyc311", str(source)).returncode == 0

    seeded = _cli(env, "catalog", "standards", "seed")
    assert seeded.returncode == 0, seeded.stderr
    assert "gender: 4" in seeded.stdout and "industry: 117" in seeded.stdout
    assert _cli(env, "catalog", "standards", "seed").stdout == seeded.stdout
    listed = _cli(env, "catalog", "standards", "elements")
    assert listed.returncode == 0
    assert len(listed.stdout.splitlines()) == 8
    assert any(
        line.startswith("resident_id") and "check resident_id" in line
        for line in listed.stdout.splitlines()
    )

    unknown = _cli(env, "catalog", "standards", "map", "nyc311", "borough", "no_such")
    assert unknown.returncode == 2 and "no data element 'no_such'" in unknown.stderr
    mapped = _cli(env, "catalog", "standards", "map", "nyc311", "borough", "division_code")
    assert mapped.returncode == 0 and "nyc311.borough → division_code" in mapped.stdout
    ahead = _cli(env, "catalog", "standards", "map", "nyc311", "licence", "credit_code",
                 "--required")  # fmt: skip
    assert ahead.returncode == 0 and "(required)" in ahead.stdout
    assert "warning: column licence is not in nyc311 v1" in ahead.stderr

    with open(source, encoding="utf-8", newline="") as handle:
        boroughs = Counter(r["borough"] for r in csv.DictReader(handle) if r["borough"].strip())
    checked = _cli(env, "catalog", "standards", "check", "nyc311", "--version", "1")
    assert checked.returncode == 0, checked.stderr
    lines = checked.stdout.splitlines()
    total = sum(boroughs.values())
    assert lines[0].startswith(f"nyc311 version 1: {total + 1} violations in 2 mapped columns")
    assert lines[1] == f"- borough → division_code: {total} values, {total} failing, 0 empty"
    assert lines[2].startswith(f"    not_in_code_list {total}: e.g. 'QUEENS', 'BROOKLYN'")
    assert lines[3] == "- licence → credit_code, required: 0 values, 0 failing, 0 empty"
    assert lines[4] == "    missing_column 1"
    missing = _cli(env, "catalog", "standards", "check", "nyc311", "--version", "4")
    assert missing.returncode == 2 and "has no version 4" in missing.stderr


def test_a_broken_element_is_a_clear_error_and_stores_nothing(seeded, new_dataset, tmp_path):
    dataset = new_dataset("std")
    version = _load(dataset, _write(tmp_path / "a.csv", ["code", "x"], [["ab", "1"], ["cd", "2"]]))
    broken, _ = DataElement.objects.get_or_create(
        identifier="broken_format",
        defaults={"name_zh": "坏格式", "data_type": "string", "format": "([a-z"},
    )
    standards.map_column(dataset, "code", broken)
    before = ConformanceReport.objects.filter(version=version).count()
    with pytest.raises(standards.StandardsError, match="column code cannot be checked"):
        standards.check_version(version)
    assert ConformanceReport.objects.filter(version=version).count() == before == 0
