"""`civicpulse import cases`: the six built-in formats on their real files, a mapping written for
a custom layout, bad rows and the quarantine, all-or-nothing batches and re-runs, files that
cannot be read at all, and the command line.

Source datetimes are local to their city: a naive stamp is read in the mapping's ``timezone``
(America/New_York for NYC, America/Los_Angeles for LA, Asia/Shanghai for the message board) and
stored as that instant.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from civicpulse.cases import importer, sla
from civicpulse.cases.models import Case, ImportBatch, QuarantinedRow, Service
from civicpulse.core.models import Area, AuditEntry, Department
from tests.support import REPO_ROOT, shared_data

pytestmark = [pytest.mark.django_db, pytest.mark.shared_data]

NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def city(demo_city) -> Area:
    return Area.objects.get(level="city")


def _import(relative: str, **kw) -> ImportBatch:
    return importer.import_file(shared_data(relative), **kw)


def _quarantine(batch: ImportBatch) -> list[tuple[int, str, str]]:
    return list(batch.quarantine.order_by("line").values_list("line", "field", "reason"))


# --------------------------------------------------------------------------- real files


@pytest.mark.parametrize(
    "name, read",
    [
        ("nyc_311_qsv_100.csv", 100),
        ("nyc_311_2011_tuplex_subset.csv", 2000),
        ("nyc_311_mixed_data237.csv", 5895),
        ("nyc_311_animals_2025q1_plotly.csv", 4969),
        ("nyc_311_2019-12-31_atlas.csv", 1000),
    ],
)
def test_every_real_nyc_file_is_guessed_and_imported_whole(city, name, read):
    batch = _import(f"311/{name}")
    assert batch.mapping == "nyc" and batch.source == "nyc311" and batch.committed
    assert (batch.rows_read, batch.rows_imported, batch.rows_quarantined) == (read, read, 0)
    cases = Case.objects.filter(source="nyc311")
    assert cases.count() == read
    assert set(cases.values_list("channel", flat=True)) == {"import"}
    assert set(cases.values_list("area", flat=True)) == {city.pk}  # New York is not our city
    assert not cases.filter(external_id="").exists()


def test_nyc_rows_keep_their_new_york_times_status_service_and_place(city):
    _import("311/nyc_311_qsv_100.csv", fmt="nyc")
    case = Case.objects.get(source="nyc311", external_id="42254749")
    # 04/18/2019 09:55:45 PM in New York (EDT, UTC-4)
    assert case.created_at == datetime(2019, 4, 18, 21, 55, 45, tzinfo=NEW_YORK)
    assert case.created_at.astimezone(ZoneInfo("UTC")).hour == 1
    assert case.closed_at == datetime(2019, 4, 19, 3, 45, 24, tzinfo=NEW_YORK)
    assert case.resolved_at == case.closed_at
    assert case.due_at == datetime(2019, 4, 19, 5, 55, 45, tzinfo=NEW_YORK)  # its Due Date
    assert case.status == "closed"
    assert case.title == "Noise - Residential: Banging/Pounding"
    assert case.address.startswith("3855 SHORE PARKWAY")
    assert (case.lat, case.lon) == (40.5863974, -73.9325913)
    assert case.department.code == "nyc-nypd"
    assert case.department.name_en == "New York City Police Department"
    assert case.service.group == "imported:nyc311"
    assert case.service.name_en == "Noise - Residential"
    assert len(case.service.code) <= 32 and case.service.code.startswith("noise-residential-")
    assert case.service.department.code == "nyc-nypd"
    assert case.tracking_no.startswith("IM") and case.token


def test_nyc_placeholder_closing_date_means_not_closed(city):
    _import("311/nyc_311_2011_tuplex_subset.csv")
    case = Case.objects.get(source="nyc311", external_id="19944912")  # Closed Date 01/01/1900
    assert case.closed_at is None and case.resolved_at is None
    assert case.created_at == datetime(2011, 3, 2, 10, 40, 12, tzinfo=NEW_YORK)


def test_nyc_api_export_iso_stamps_and_snake_case_columns(city):
    batch = _import("311/nyc_311_2019-12-31_atlas.csv")
    assert batch.mapping == "nyc"
    case = Case.objects.get(source="nyc311", external_id="45278137")
    assert case.created_at == datetime(2019, 12, 31, 23, 59, 11, tzinfo=NEW_YORK)
    assert case.title == "Noise - Commercial: Banging/Pounding"


def test_nyc_spreadsheet_stamps_on_a_24_hour_clock(city):
    _import("311/nyc_311_animals_2025q1_plotly.csv")
    case = Case.objects.get(source="nyc311", external_id="64345465")  # 3/14/2025 1:20
    assert case.created_at == datetime(2025, 3, 14, 1, 20, tzinfo=NEW_YORK)
    assert case.status == "in_progress" and case.closed_at is None


def test_la_2017_quarantines_the_rows_closed_before_they_were_created(city):
    batch = _import("311/la_myla311_2017_subset.csv.gz")
    assert batch.mapping == "la2017"
    assert (batch.rows_read, batch.rows_imported, batch.rows_quarantined) == (9999, 9987, 12)
    first = _quarantine(batch)[0]
    assert first == (
        1015,
        "ClosedDate",
        "closed '12/30/2017 12:00:00 AM' is before created '12/30/2017 05:16:06 PM'",
    )
    assert {field for _line, field, _reason in _quarantine(batch)} == {"ClosedDate"}
    case = Case.objects.get(source="la311", external_id="1-870704831")
    assert case.created_at == datetime(2017, 12, 31, 23, 59, 58, tzinfo=LOS_ANGELES)
    assert case.department.code == "la-bos"
    assert case.department.name_en == "Bureau of Sanitation"
    assert case.service.name_en == "Homeless Encampment"
    cancelled = Case.objects.filter(source="la311", external_id__in=_ids_with_status("Cancelled"))
    assert cancelled.exists() and set(cancelled.values_list("status", flat=True)) == {"closed"}


def _ids_with_status(status: str) -> list[str]:
    import csv

    with gzip.open(shared_data("311/la_myla311_2017_subset.csv.gz"), "rt", newline="") as fh:
        return [r["SRNumber"] for r in csv.DictReader(fh) if r["Status"] == status][:20]


def test_la_2020_two_digit_years_and_deadlines_from_the_working_calendar(city):
    batch = _import("311/la_myla311_2020_seed.csv.gz")
    assert batch.mapping == "la2020"
    assert (batch.rows_read, batch.rows_imported, batch.rows_quarantined) == (10000, 10000, 0)
    case = Case.objects.get(source="la311", external_id="1-1523590121")
    assert case.created_at == datetime(2020, 1, 1, 0, 5, tzinfo=LOS_ANGELES)
    assert case.closed_at == datetime(2020, 1, 2, 8, 43, tzinfo=LOS_ANGELES)
    # no due date in the file: the service's working days on the city's calendar
    assert case.due_at == sla.calendar().add_working_days(case.created_at, 5)
    assert Case.objects.filter(source="la311", status="new").count() == 16
    assert Case.objects.filter(source="la311", status="accepted").count() == 15


def test_chicago_whole_file_end_to_end_with_its_repeated_ids_quarantined(city):
    batch = _import("311/chicago_311_sanitation_code_complaints.csv.gz", on_error="keep")
    assert batch.mapping == "chicago" and batch.committed
    assert (batch.rows_read, batch.rows_imported, batch.rows_quarantined) == (74401, 74026, 375)
    assert _quarantine(batch)[0] == (
        27852,
        "Service_Request_Number",
        "duplicate id '12-01209013': already on line 27851",
    )
    assert Case.objects.filter(source="chicago311").count() == 74026
    case = Case.objects.get(source="chicago311", external_id="00-00002158")
    # dates without a time: midnight in Chicago
    assert case.created_at == datetime(2000, 1, 3, tzinfo=ZoneInfo("America/Chicago"))
    assert case.status == "closed" and case.area_id == city.pk
    assert case.department.code == "chicago-streets-san"
    assert Case.objects.filter(source="chicago311", lat__isnull=True).count() == 24


def test_boston_targets_become_deadlines(city):
    batch = _import("311/boston_311_qsv_100.csv")
    assert batch.mapping == "boston"
    assert (batch.rows_read, batch.rows_imported, batch.rows_quarantined) == (100, 100, 0)
    case = Case.objects.get(source="boston311", external_id="101004143000")
    assert case.status == "new" and case.closed_at is None
    assert case.due_at == datetime(2022, 2, 4, 13, 47, 30, tzinfo=NEW_YORK)
    assert Case.objects.filter(source="boston311", status="closed").count() == 85


def test_message_board_goes_to_the_city_under_a_catch_all_service(city):
    batch = _import("zh/tipdm2020_gov_messages_labeled_part_a.csv")
    assert batch.mapping == "tipdm"
    assert (batch.rows_read, batch.rows_imported, batch.rows_quarantined) == (247, 247, 0)
    cases = Case.objects.filter(source="tipdm")
    assert set(cases.values_list("service__code", flat=True)) == {"message_board"}
    assert set(cases.values_list("area", flat=True)) == {city.pk}
    case = cases.get(external_id="83")
    assert case.title == "投诉A市A1区苑物业违规收停车费"
    assert case.description.startswith("尊敬的领导")
    assert case.created_at == datetime(2019, 12, 30, 17, 6, 14, tzinfo=SHANGHAI)
    assert case.status == "new"


def test_message_board_replies_close_the_messages(city):
    batch = _import("zh/tipdm2020_gov_messages_with_replies_2816.csv.gz")
    assert (batch.rows_read, batch.rows_imported, batch.rows_quarantined) == (2816, 2816, 0)
    case = Case.objects.get(source="tipdm", external_id="2549")
    assert case.status == "closed"
    assert case.closed_at == datetime(2019, 5, 10, 14, 56, 53, tzinfo=SHANGHAI)


def test_message_board_overlong_message_is_quarantined_with_its_length(city):
    batch = _import("zh/tipdm2020_gov_messages_hot_topics_4326.csv.gz")
    assert (batch.rows_read, batch.rows_imported, batch.rows_quarantined) == (4326, 4325, 1)
    assert _quarantine(batch) == [
        (1364, "留言详情", "is 6,999 characters long; a description has at most 5,000")
    ]


def test_message_board_classes_become_services_and_gb18030_files_are_read(city, tmp_path):
    import csv

    source = shared_data("zh/tipdm2020_gov_messages_labeled_part_a.csv")
    with open(source, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    classes = ["城乡建设", "环境保护", "交通运输"]
    path = tmp_path / "labelled_gbk.csv"
    with open(path, "w", encoding="gb18030", newline="") as fh:
        out = csv.writer(fh)
        out.writerow([*rows[0], "一级分类"])
        for i, row in enumerate(rows[1:31]):
            out.writerow([*row, classes[i % 3] if i != 5 else ""])
    batch = importer.import_file(path)
    assert batch.mapping == "tipdm"
    assert (batch.rows_read, batch.rows_imported, batch.rows_quarantined) == (30, 30, 0)
    services = Service.objects.filter(group="imported:tipdm")
    assert set(services.values_list("name_zh", flat=True)) >= set(classes)
    by_class = dict(
        Case.objects.filter(source="tipdm").values_list("external_id", "service__name_zh")
    )
    assert by_class[rows[1][0]] == "城乡建设"
    assert by_class[rows[6][0]] == "网络问政留言"  # no class: the catch-all
    assert Case.objects.get(source="tipdm", external_id="83").title.startswith("投诉A市")


# --------------------------------------------------------------------------- a custom mapping

CUSTOM_MAPPING = """
name = "Hotline export"
source = "hotline-2024"
encoding = "gb18030"
delimiter = ";"
timezone = "Asia/Shanghai"
area = "locate"

[id]
column = "工单号"

[dates]
created = "受理时间"
closed = "办结时间"
formats = ["%Y年%m月%d日 %H:%M", "iso"]

[status]
column = "状态"
values = { "待办" = "new", "办理中" = "in_progress", "已办结" = "closed" }

[text]
title = "{诉求类别}[：{诉求摘要}]"
description = "{诉求内容}"
address = "{地址}"

[location]
lat = "纬度"
lon = "经度"

[service]
column = "诉求类别"

[services]
"供暖" = "heating"
"噪音" = "noise"
"""


def _centre(area: Area) -> tuple[float, float]:
    ring = area.polygon["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2


def test_a_mapping_file_for_a_custom_layout(city, tmp_path, monkeypatch):
    grid = Area.objects.filter(level="grid").order_by("code").first()
    lon, lat = _centre(grid)
    (tmp_path / "hotline.toml").write_text(CUSTOM_MAPPING, encoding="utf-8")
    lines = [
        "工单号;受理时间;办结时间;状态;诉求类别;诉求摘要;诉求内容;地址;经度;纬度",
        "H-1;2024年1月5日 08:30;2024年1月6日 17:00;已办结;供暖;室温低;3号楼暖气不热;"
        f"幸福小区3号楼;{lon};{lat}",
        "H-2;2024-01-07 21:15;;待办;噪音;;楼下广场舞音响太吵;;;",
        "H-3;2024年1月8日 09:00;;办理中;噪音;;工地夜间施工;;116.39;39.91",
    ]
    path = tmp_path / "hotline.csv"
    path.write_bytes("\n".join(lines).encode("gb18030"))
    located = []
    real_locate = importer.workflow.locate
    monkeypatch.setattr(
        importer.workflow, "locate", lambda x, y: located.append((x, y)) or real_locate(x, y)
    )

    batch = importer.import_file(path, mapping=tmp_path / "hotline.toml", on_error="reject")
    assert batch.committed and batch.mapping == str(tmp_path / "hotline.toml")
    assert (batch.rows_read, batch.rows_imported, batch.rows_quarantined) == (3, 3, 0)
    first = Case.objects.get(source="hotline-2024", external_id="H-1")
    assert first.area == grid  # inside our city: the finest area holding the point
    assert first.service.code == "heating" and first.department == first.service.department
    assert first.title == "供暖：室温低" and first.description == "3号楼暖气不热"
    assert first.created_at == datetime(2024, 1, 5, 8, 30, tzinfo=SHANGHAI)
    assert first.status == "closed" and first.closed_at is not None
    second = Case.objects.get(source="hotline-2024", external_id="H-2")
    assert second.title == "噪音" and second.area == city and second.lat is None
    assert second.service.code == "noise" and second.status == "new"
    third = Case.objects.get(source="hotline-2024", external_id="H-3")
    assert third.area == city  # Beijing is outside our city's box ...
    assert located == [(lon, lat)]  # ... so only the first point was looked up


def test_a_mapping_file_with_a_mistake_is_refused_naming_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(CUSTOM_MAPPING.replace("[dates]", "[dates]\ncreatd = 'x'"), encoding="utf-8")
    with pytest.raises(importer.ImportFailed, match=r"\[dates\] creatd is not a known key"):
        importer.load_mapping(bad)
    bad.write_text(CUSTOM_MAPPING.replace('"待办" = "new"', '"待办" = "waiting"'))
    with pytest.raises(importer.ImportFailed, match=r"'待办'.*'waiting' is not one of new"):
        importer.load_mapping(bad)
    bad.write_text("source = [")
    with pytest.raises(importer.ImportFailed, match="is not valid TOML"):
        importer.load_mapping(bad)


def test_every_built_in_mapping_loads():
    assert set(importer.formats()) == {"nyc", "la2017", "la2020", "chicago", "boston", "tipdm"}
    for name in importer.formats():
        assert importer.builtin(name).source


# --------------------------------------------------------------------------- bad rows

NYC_HEADER = (
    "Unique Key,Created Date,Closed Date,Agency,Agency Name,Complaint Type,Descriptor,Status,"
    "Latitude,Longitude"
)
BAD_ROWS = [
    NYC_HEADER,  # line 1
    "1001,01/02/2024 10:00:00 AM,01/03/2024 09:00:00 AM,DSNY,Sanitation,Dirty Conditions,Trash,"
    "Closed,40.71,-73.99",  # 2: good
    "1002,yesterday,,DSNY,Sanitation,Dirty Conditions,Trash,Open,40.71,-73.99",  # 3: bad date
    "1003,01/02/2024 11:00:00 AM,,NYPD,Police,Noise,Loud Music,Open,north,-73.99",  # 4: bad lat
    ",01/02/2024 12:00:00 PM,,NYPD,Police,Noise,Loud Music,Open,40.72,-73.98",  # 5: no id
    "1001,01/02/2024 01:00:00 PM,,NYPD,Police,Noise,Loud Music,Open,40.72,-73.98",  # 6: dup
    "1006,01/04/2024 08:00:00 AM,,DOT,Transportation,Pothole,,Open,,",  # 7: good, no place
    "1007,01/04/2024 08:00:00 AM,01/03/2024 08:00:00 AM,DOT,Transportation,Pothole,,Closed,,",
    # 8: closed before created
    "1008,01/04/2024 08:00:00 AM,,DOT,Transportation,Pothole,,Open,0,0",  # 9: 0, 0
    "1009,01/04/2024 08:00:00 AM,,DOT,Transportation,Pothole,,Open,40.7",  # 10: a field short
    "1010,01/04/2024 08:00:00 AM,,DOT,Transportation,Pothole,,Open,12.5,-73.9",  # 11: range
    "1011,01/04/2024 08:00:00 AM,,DOT,Transportation,Pothole,,Lost,,",  # 12: unknown status?
]
EXPECTED_QUARANTINE = [
    (
        3,
        "Created Date",
        "'yesterday' is not a date in any of the formats "
        "%m/%d/%Y %I:%M:%S %p | iso | %m/%d/%Y %H:%M | %m/%d/%Y %H:%M:%S",
    ),
    (4, "Latitude", "'north' is not a number"),
    (5, "Unique Key", "is empty: every row needs its id at the source"),
    (6, "Unique Key", "duplicate id '1001': already on line 2"),
    (
        8,
        "Closed Date",
        "closed '01/03/2024 08:00:00 AM' is before created '01/04/2024 08:00:00 AM'",
    ),
    (9, "Latitude", "0, 0 is not a place (a missing location written as zeros)"),
    (10, "", "has 9 fields where the header has 10"),
    (11, "Latitude", "12.5 is outside the valid range 40.4..41"),
]
GOOD_IDS = {"1001", "1006", "1011"}  # NYC's mapping takes unknown statuses as new


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "nyc_bad.csv"
    path.write_text("\n".join(BAD_ROWS) + "\n", encoding="utf-8")
    return path


def test_bad_rows_are_quarantined_with_line_field_and_reason(city, bad_file):
    batch = importer.import_file(bad_file, fmt="nyc", on_error="keep")
    assert batch.committed
    assert (batch.rows_read, batch.rows_imported, batch.rows_quarantined) == (11, 3, 8)
    assert _quarantine(batch) == EXPECTED_QUARANTINE
    assert set(Case.objects.filter(source="nyc311").values_list("external_id", flat=True)) == (
        GOOD_IDS
    )
    assert Case.objects.get(source="nyc311", external_id="1011").status == "new"
    raw = batch.quarantine.get(line=4).raw
    assert raw["Latitude"] == "north" and raw["Unique Key"] == "1003"


def test_reject_imports_nothing_but_keeps_the_quarantine(city, bad_file):
    cases_before = Case.objects.count()
    departments_before = Department.objects.count()
    batch = importer.import_file(bad_file, fmt="nyc", on_error="reject")
    assert not batch.committed
    assert (batch.rows_read, batch.rows_imported, batch.rows_quarantined) == (11, 0, 8)
    assert Case.objects.count() == cases_before
    assert Department.objects.count() == departments_before  # nor its new departments
    stored = ImportBatch.objects.get(pk=batch.pk)
    assert not stored.committed
    assert (
        list(QuarantinedRow.objects.filter(batch=stored).values_list("line", "field", "reason"))
        == EXPECTED_QUARANTINE
    )
    assert "rejected: nothing imported" in importer.summary(batch)


def test_a_rerun_imports_nothing_twice(city, bad_file):
    first = importer.import_file(bad_file, fmt="nyc", on_error="keep")
    again = importer.import_file(bad_file, fmt="nyc", on_error="keep")
    assert (first.rows_imported, first.rows_skipped) == (3, 0)
    assert (again.rows_imported, again.rows_skipped, again.rows_quarantined) == (3 - 3, 3, 8)
    assert Case.objects.filter(source="nyc311").count() == 3
    real = _import("311/nyc_311_qsv_100.csv")
    real_again = _import("311/nyc_311_qsv_100.csv")
    assert (real.rows_imported, real_again.rows_imported, real_again.rows_skipped) == (100, 0, 100)


def test_each_batch_is_audited_once_with_its_counts(city, bad_file):
    batch = importer.import_file(bad_file, fmt="nyc", on_error="keep", actor="tester")
    entries = AuditEntry.objects.filter(action="cases.import", object_id=str(batch.pk))
    assert entries.count() == 1
    entry = entries.get()
    assert entry.actor == "tester" and entry.object_type == "cases.importbatch"
    assert entry.detail["read"] == 11 and entry.detail["imported"] == 3
    assert entry.detail["quarantined"] == 8 and entry.detail["committed"] is True


def test_summary_has_a_line_per_figure_and_the_first_reasons(city, bad_file):
    batch = importer.import_file(bad_file, fmt="nyc", on_error="keep")
    lines = importer.summary(batch).splitlines()
    assert lines[0].endswith("(format nyc, source nyc311): committed")
    assert [line.split()[0] for line in lines[1:5]] == [
        "read",
        "imported",
        "skipped",
        "quarantined",
    ]
    assert lines[1].split()[1] == "11" and lines[2].split()[1] == "3"
    assert lines[5] == "  line 3, Created Date: " + EXPECTED_QUARANTINE[0][2]
    assert lines[-1] == f"  ... and 3 more (quarantine of import {batch.pk})"


def test_text_over_the_limits_is_quarantined(city, tmp_path):
    long_id, long_type = "9" * 65, "Noise " * 40
    path = tmp_path / "long.csv"
    path.write_text(
        "\n".join(
            [
                NYC_HEADER,
                f"{long_id},01/02/2024 10:00:00 AM,,NYPD,Police,Noise,,Open,,",
                f"2001,01/02/2024 10:00:00 AM,,NYPD,Police,{long_type},,Open,,",
                "2002,01/02/2024 10:00:00 AM,,NYPD,Police,,,Open,,",
            ]
        ),
        encoding="utf-8",
    )
    batch = importer.import_file(path, fmt="nyc")
    assert _quarantine(batch) == [
        (2, "Unique Key", "is 65 characters long; an id has at most 64"),
        (3, "title", "is 239 characters long; a title has at most 200"),
        (4, "description", "the title and the description are both empty"),
    ]


def test_a_clash_with_a_concurrent_import_fails_and_stores_nothing(city, monkeypatch):
    _import("311/nyc_311_qsv_100.csv")
    before = _counts()
    # as if another import had stored the same ids after this one looked for them
    monkeypatch.setattr(importer, "_existing", lambda source, ids: set())
    with pytest.raises(importer.ImportFailed, match="the store refused the batch .* Run it again"):
        _import("311/nyc_311_qsv_100.csv", progress=True)
    assert _nothing_stored(before)


# --------------------------------------------------------------------------- unreadable files


def _nothing_stored(before: tuple[int, int]) -> bool:
    return (Case.objects.count(), ImportBatch.objects.count()) == before


def _counts() -> tuple[int, int]:
    return Case.objects.count(), ImportBatch.objects.count()


def test_a_file_that_is_not_csv_fails_in_one_line(city, tmp_path):
    before = _counts()
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(importer.ImportFailed) as failed:
        importer.import_file(path)
    assert str(failed.value) == f"{path}: is not CSV text (it holds NUL bytes: a binary file?)"
    assert _nothing_stored(before)


def test_a_file_in_the_wrong_encoding_fails_naming_the_line(city, tmp_path):
    before = _counts()
    path = tmp_path / "latin1.csv"
    rows = BAD_ROWS[:3] + [BAD_ROWS[1].replace("1001", "1099").replace("Trash", "Débris")]
    path.write_bytes("\n".join(rows).encode("latin-1"))
    with pytest.raises(importer.ImportFailed, match=r"latin1\.csv: line 4 is not utf-8 text"):
        importer.import_file(path, fmt="nyc")
    assert _nothing_stored(before)


def test_a_bad_byte_deep_in_the_file_undoes_the_rows_already_stored(city, tmp_path):
    before = _counts()
    good = [
        f"{5000 + i},01/02/2024 10:00:00 AM,,DSNY,Sanitation,Dirty Conditions,Trash,Open,40.7,-74"
        for i in range(5000)
    ]
    bad = good[0].replace("5000", "4999").replace("Trash", "Débris").encode("latin-1")
    path = tmp_path / "late.csv"
    path.write_bytes(("\n".join([NYC_HEADER, *good]) + "\n").encode() + bad + b"\n")
    with pytest.raises(importer.ImportFailed, match=r"late\.csv: line 5002 is not utf-8 text"):
        importer.import_file(path, fmt="nyc", batch_rows=1000)
    assert _nothing_stored(before)


def test_an_unknown_layout_fails_listing_the_formats(city, tmp_path):
    before = _counts()
    path = tmp_path / "other.csv"
    path.write_text("id,when,what\n1,2024-01-01,hello\n", encoding="utf-8")
    with pytest.raises(importer.ImportFailed) as failed:
        importer.import_file(path)
    message = str(failed.value)
    assert "\n" not in message
    assert "fits none of the built-in formats (boston, chicago, la2017, la2020, nyc, tipdm)" in (
        message
    )
    assert _nothing_stored(before)


def test_a_format_whose_columns_the_file_lacks_fails_naming_them(city, tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("Unique Key,Status\n1,Open\n", encoding="utf-8")
    with pytest.raises(importer.ImportFailed, match=r"line 1: the header lacks column\(s\) "):
        importer.import_file(path, fmt="nyc")


def test_a_damaged_gzip_file_fails_and_stores_nothing(city, tmp_path):
    before = _counts()
    data = gzip.compress(shared_data("311/nyc_311_qsv_100.csv").read_bytes())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(importer.ImportFailed, match=r"cut\.csv\.gz: the file is damaged"):
        importer.import_file(path, fmt="nyc")
    assert _nothing_stored(before)


def test_an_unknown_format_name_and_a_missing_file(city, tmp_path):
    with pytest.raises(importer.ImportFailed, match="unknown format 'paris'; the built-in"):
        importer.import_file(shared_data("311/nyc_311_qsv_100.csv"), fmt="paris")
    with pytest.raises(importer.ImportFailed, match="no such file"):
        importer.import_file(tmp_path / "nowhere.csv")


# --------------------------------------------------------------------------- the command line


def _cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CIVICPULSE_DATABASE_URL"}
    env["CIVICPULSE_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "civicpulse.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


AREAS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {
                "code": "239900",
                "level": "city",
                "name_zh": "测试市",
                "name_en": "Test",
            },
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[126, 45], [127, 45], [127, 46], [126, 46], [126, 45]]],
            },
        }
    ],
}


def test_the_command_line(tmp_path, bad_file):
    (tmp_path / "data").mkdir()
    nyc = str(shared_data("311/nyc_311_qsv_100.csv"))
    assert _cli(tmp_path, "migrate").returncode == 0

    no_city = _cli(tmp_path, "import", "cases", nyc, "--format", "nyc")
    assert no_city.returncode == 2
    assert no_city.stderr.strip().startswith("civicpulse: the store has no city area")
    assert len(no_city.stderr.strip().splitlines()) == 1

    areas = tmp_path / "areas.geojson"
    areas.write_text(json.dumps(AREAS), encoding="utf-8")
    assert _cli(tmp_path, "import", "areas", str(areas)).returncode == 0

    done = _cli(tmp_path, "import", "cases", nyc, "--format", "nyc")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("(format nyc, source nyc311): committed")
    assert lines[1].split() == ["read", "100"]
    assert lines[2].split() == ["imported", "100"]
    assert lines[4].split() == ["quarantined", "0"]

    again = _cli(tmp_path, "import", "cases", nyc, "--format", "nyc")
    assert again.returncode == 0
    assert again.stdout.splitlines()[2].split() == ["imported", "0"]
    assert again.stdout.splitlines()[3].split()[:2] == ["skipped", "100"]

    rejected = _cli(tmp_path, "import", "cases", str(bad_file), "--on-error", "reject")
    assert rejected.returncode == 1
    out = rejected.stdout.splitlines()
    assert out[0].endswith("rejected: nothing imported")
    assert out[4].split() == ["quarantined", "8"]
    assert "  line 3, Created Date: 'yesterday' is not a date" in rejected.stdout

    kept = _cli(tmp_path, "import", "cases", str(bad_file), "--on-error", "keep")
    assert kept.returncode == 0 and kept.stdout.splitlines()[2].split() == ["imported", "3"]

    unknown = tmp_path / "other.csv"
    unknown.write_text("id,when\n1,2024-01-01\n", encoding="utf-8")
    failed = _cli(tmp_path, "import", "cases", str(unknown))
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines() == [
        f"civicpulse: {unknown}: the header fits none of the built-in formats (boston, chicago, "
        "la2017, la2020, nyc, tipdm); give --format or --mapping (header starts: id, when)"
    ]
