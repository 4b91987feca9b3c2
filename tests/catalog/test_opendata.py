"""Open-data releases: the de-identification check on real 311 data (k-anonymity over natural
quasi-identifiers, direct identifiers by tag and by scan), the second person's approval,
withdrawal, and the CLI action."""

from __future__ import annotations

import csv
import itertools
import os
import subprocess
import sys
from datetime import date

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.conf import settings

from civicpulse.catalog import loading, opendata, services
from civicpulse.catalog.models import OpenRelease
from civicpulse.catalog.opendata import ReleaseError
from civicpulse.core import accounts
from civicpulse.core.models import AuditEntry, Department, Role
from civicpulse.identity.identifiers import make_resident_id
from tests.support import REPO_ROOT, shared_data

pytestmark = [pytest.mark.shared_data, pytest.mark.django_db]

ANIMALS = "311/nyc_311_animals_2025q1_plotly.csv"
FINE_QI = ["Incident Zip", "Complaint Type", "Borough"]
COARSE_QI = ["Complaint Type"]
PUBLISHED = ["Complaint Type", "Descriptor", "Incident Zip", "Borough", "Status"]
PASSWORD = "opendata-secret-1"
_numbers = itertools.count(1)


@pytest.fixture
def people(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    n = next(_numbers)
    owner = Department.objects.create(
        code=f"OD-OWNER-{n}", name_zh=f"城管局{n}", name_en=f"City management {n}"
    )
    other = Department.objects.create(code=f"OD-OTHER-{n}", name_zh="水务局", name_en="Water")
    return {
        "owner_dept": owner,
        "admin": accounts.create_staff(f"od-admin-{n}", PASSWORD, Role.DATA_ADMIN),
        "admin2": accounts.create_staff(f"od-admin2-{n}", PASSWORD, Role.DATA_ADMIN),
        "leader": accounts.create_staff(f"od-leader-{n}", PASSWORD, Role.CITY_LEADER),
        "staff": accounts.create_staff(
            f"od-staff-{n}", PASSWORD, Role.DEPARTMENT_STAFF, department=owner
        ),
        "outsider": accounts.create_staff(
            f"od-outsider-{n}", PASSWORD, Role.DEPARTMENT_STAFF, department=other
        ),
        "analyst": accounts.create_staff(f"od-analyst-{n}", PASSWORD, Role.ANALYST),
    }


@pytest.fixture
def animals(people):
    """The real NYC 311 animal complaints of 2025 Q1, loaded as a department's dataset."""
    path = shared_data(ANIMALS)
    dataset = services.register_dataset(
        f"animals-{next(_numbers)}",
        title="动物投诉",
        title_en="Animal complaints",
        owner=people["owner_dept"],
        tags=["311", "animals"],
    )
    services.load_version(dataset, path, user=None, progress=False)
    dataset = services.find(dataset.slug)
    dataset.source_path = path
    return dataset


def _frame(path) -> pd.DataFrame:
    # every value as text, an empty cell as missing: as DuckDB reads the CSV into the lake
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def _groups(path, qis) -> pd.Series:
    return _frame(path).groupby(qis, dropna=False).size()


def _key(values) -> tuple:
    return tuple(None if pd.isna(v) else v for v in values)


def _draft(dataset, user, **overrides):
    options = {
        "columns": PUBLISHED,
        "quasi_identifiers": FINE_QI,
        "title": "动物投诉（按邮编）",
        "user": user,
    }
    return opendata.draft(dataset, **{**options, **overrides})


def _open_dir(dataset):
    return settings.CONFIG.lake_dir / "catalog" / dataset.slug / "open"


# --------------------------------------------------------------------------- the check


def test_fine_quasi_identifiers_are_refused_with_their_rare_combinations(animals, people):
    release = _draft(animals, people["staff"])
    qis = release.quasi_identifiers  # in the version's column order
    assert sorted(qis) == sorted(FINE_QI)
    groups = _groups(animals.source_path, qis)
    rare = groups[groups < 5]
    assert len(rare) > 0  # the premise: zip x type x borough singles out complaints

    report = opendata.check(release, user=people["staff"])

    release.refresh_from_db()
    assert release.status == OpenRelease.Status.REFUSED
    assert [r["code"] for r in report["reasons"]] == ["k_anonymity"]
    assert release.check_report == report
    ka = report["k_anonymity"]
    assert ka["groups"] == len(groups)
    assert ka["offending_groups"] == len(rare)
    assert ka["offending_rows"] == int(rare.sum())
    assert ka["smallest_group"] == int(groups.min())
    assert len(ka["combinations"]) == min(len(rare), opendata.SHOWN_COMBINATIONS)
    expected = {_key(k): int(v) for k, v in rare.items()}
    for combo in ka["combinations"]:
        assert expected[_key(combo["values"])] == combo["rows"]
    counts = [c["rows"] for c in ka["combinations"]]
    assert counts == sorted(counts)  # rarest first
    assert report["rows"] == len(_frame(animals.source_path))
    # nothing was written, and the reason reads as a sentence naming the counts
    assert not release.lake_path and not _open_dir(animals).exists()
    (sentence,) = opendata.explain(report)
    assert f"{len(rare)} combinations" in sentence and f"fewer than {release.k}" in sentence
    entry = AuditEntry.objects.filter(
        action="catalog.open_release_checked", object_id=str(release.pk)
    ).get()
    assert entry.detail["status"] == "refused"
    assert entry.detail["offending_groups"] == len(rare)


def test_a_coarse_quasi_identifier_passes_and_writes_exactly_the_published_columns(animals, people):
    columns = ["Complaint Type", "Descriptor", "Status"]
    groups = _groups(animals.source_path, COARSE_QI)
    assert groups.min() >= 5  # computed independently of the check

    release = _draft(animals, people["admin"], columns=columns, quasi_identifiers=COARSE_QI)
    report = opendata.check(release, user=people["admin"])

    assert release.status == OpenRelease.Status.CHECKED and report["passed"]
    assert report["k_anonymity"]["offending_groups"] == 0
    assert report["k_anonymity"]["groups"] == len(groups)
    expected_dir = _open_dir(animals) / str(release.resource_id)
    assert release.lake_dir() == expected_dir
    data = expected_dir / "part-0.parquet"
    table = pq.read_table(data)
    assert table.column_names == columns
    frame = _frame(animals.source_path)
    assert table.num_rows == release.row_count == len(frame)
    assert table.column("Descriptor").to_pylist() == [
        None if pd.isna(v) else v for v in frame["Descriptor"]
    ]
    assert release.size_bytes == data.stat().st_size
    assert release.checksum == loading.checksum(data)
    assert [p.name for p in _open_dir(animals).iterdir()] == [str(release.resource_id)]
    assert release.approved_by is None and release.published_at is None


def test_a_column_tagged_as_resident_ids_is_refused_by_its_tag(animals, people):
    version = animals.current_version
    column = version.columns.get(name="Descriptor")
    column.personal_tags = ["resident_id"]
    column.save(update_fields=["personal_tags"])

    release = _draft(animals, people["admin"], columns=["Complaint Type", "Descriptor"],
                     quasi_identifiers=COARSE_QI)  # fmt: skip
    report = opendata.check(release)

    assert release.status == OpenRelease.Status.REFUSED
    assert report["direct_identifiers"] == [
        {"column": "Descriptor", "tags": ["resident_id"], "found_by": "tags"}
    ]
    assert [r["code"] for r in report["reasons"]] == ["direct_identifiers"]
    assert "Descriptor" in opendata.explain(report)[0]


def test_resident_ids_are_found_by_the_scan_even_when_nothing_was_tagged(people, tmp_path):
    path = tmp_path / "register.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["证件号码", "街道", "事项"])
        for n in range(60):
            born = date(1950 + n % 40, 1 + n % 12, 1 + n % 28)
            writer.writerow([make_resident_id("330106", born, n), "西溪街道", "路灯维修"])
    dataset = services.register_dataset(
        f"register-{next(_numbers)}", title="登记表", owner=people["owner_dept"]
    )
    services.load_version(dataset, path, user=None, progress=False)
    dataset = services.find(dataset.slug)
    assert all(not c.personal_tags for c in dataset.current_version.columns.all())

    release = opendata.draft(
        dataset, columns=["证件号码", "街道"], quasi_identifiers=["街道"], title="登记",
        user=people["staff"],
    )  # fmt: skip
    report = opendata.check(release)

    assert release.status == OpenRelease.Status.REFUSED
    assert report["direct_identifiers"] == [
        {"column": "证件号码", "tags": ["resident_id"], "found_by": "scan"}
    ]
    # the same data without the ID column passes: one street, 60 rows
    again = opendata.draft(
        dataset, columns=["街道"], quasi_identifiers=["街道"], title="登记",
        user=people["staff"],
    )  # fmt: skip
    report = opendata.check(again)
    assert report["passed"] and report["noted"] == [{"column": "街道", "tags": ["address"]}]
    assert OpenRelease.objects.get(pk=release.pk).status == OpenRelease.Status.REFUSED


def _register(people, tmp_path, header, rows):
    path = tmp_path / "records.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    dataset = services.register_dataset(
        f"records-{next(_numbers)}", title="记录", owner=people["owner_dept"]
    )
    services.load_version(dataset, path, user=None, progress=False)
    return services.find(dataset.slug)


def _release_of(dataset, people, column):
    release = opendata.draft(
        dataset, columns=[column, "街道"], quasi_identifiers=["街道"], title="记录",
        user=people["staff"],
    )  # fmt: skip
    return release, opendata.check(release)


def test_a_column_where_most_values_are_not_ids_is_still_refused(people, tmp_path):
    # 70 valid ID numbers among 100 values: below classify's share for a tag, yet 70 people
    ids = [make_resident_id("330106", date(1960 + n % 40, 1 + n % 12, 1 + n % 28), n)
           for n in range(70)]  # fmt: skip
    rows = [[value, "西溪街道"] for value in ids] + [["无", "西溪街道"]] * 30
    dataset = _register(people, tmp_path, ["备注", "街道"], rows)
    # the premise: the sampling scan, with its share of matching values, tags nothing
    findings = opendata.classify.scan_version(dataset.current_version)
    assert not any("resident_id" in f.tags for f in findings)

    release, report = _release_of(dataset, people, "备注")

    assert release.status == OpenRelease.Status.REFUSED
    assert report["direct_identifiers"] == [
        {"column": "备注", "tags": ["resident_id"], "found_by": "values"}
    ]
    [held] = report["identifier_values"]
    assert held["column"] == "备注" and held["tag"] == "resident_id" and held["values"] == 70
    assert held["example"] in {f"{v[:6]}********{v[-4:]}" for v in ids}
    text = str(report) + " ".join(opendata.explain(report))
    assert "70" in opendata.explain(report)[1] and not any(v in text for v in ids)


def test_a_phone_number_inside_free_text_is_refused(people, tmp_path):
    rows = [["已处理", "西溪街道"]] * 40 + [
        ["联系人手机13812345678 已处理", "西溪街道"],
        ["回访电话：+86 139-0000-1111，满意", "西溪街道"],
    ]
    dataset = _register(people, tmp_path, ["处理情况", "街道"], rows)

    release, report = _release_of(dataset, people, "处理情况")

    assert release.status == OpenRelease.Status.REFUSED
    assert report["direct_identifiers"][0]["column"] == "处理情况"
    assert report["identifier_values"] == [
        {"column": "处理情况", "tag": "mobile", "values": 2, "example": "138****5678"}
    ]
    assert "13812345678" not in str(report)


def test_full_width_numbers_are_found_like_half_width_ones(people, tmp_path):
    # typed with a Chinese input method: full-width digits, a full-width hyphen and X
    resident = make_resident_id("330106", date(1971, 3, 9), 7)
    wide = resident.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
    rows = [["已处理", "西溪街道"]] * 40 + [
        ["联系人手机１３８１２３４５６７８", "西溪街道"],
        ["回访电话 １３９－００００－１１１１", "西溪街道"],
        [f"身份证{wide}", "西溪街道"],
    ]
    dataset = _register(people, tmp_path, ["处理情况", "街道"], rows)

    release, report = _release_of(dataset, people, "处理情况")

    assert release.status == OpenRelease.Status.REFUSED
    held = {(h["tag"], h["values"]) for h in report["identifier_values"]}
    assert held == {("mobile", 2), ("resident_id", 1)}


def test_eighteen_digit_order_numbers_failing_the_check_character_pass(people, tmp_path):
    # shaped like ID numbers (province, birth date, 18 characters) but the check character is
    # wrong: order numbers, not people
    orders = []
    for n in range(60):
        valid = make_resident_id("330106", date(1980, 1 + n % 12, 1 + n % 28), n)
        wrong = "0" if valid[-1] != "0" else "1"
        orders.append(valid[:17] + wrong)
    rows = [[value, "西溪街道"] for value in orders]
    dataset = _register(people, tmp_path, ["订单号", "街道"], rows)

    release, report = _release_of(dataset, people, "订单号")

    assert report["identifier_values"] == [] and report["direct_identifiers"] == []
    assert release.status == OpenRelease.Status.CHECKED


def test_no_quasi_identifiers_is_refused_unless_declared(animals, people):
    forgot = _draft(animals, people["admin"], columns=["Status"], quasi_identifiers=[])
    report = opendata.check(forgot)
    assert forgot.status == OpenRelease.Status.REFUSED
    assert [r["code"] for r in report["reasons"]] == ["no_quasi_identifiers"]
    assert "declare" in opendata.explain(report)[0]

    declared = _draft(
        animals, people["admin"], columns=["Status"], quasi_identifiers=[],
        no_quasi_identifiers=True,
    )  # fmt: skip
    report = opendata.check(declared)
    assert declared.status == OpenRelease.Status.CHECKED
    assert report["declared_no_quasi_identifiers"] is True and "k_anonymity" not in report
    with pytest.raises(ReleaseError, match="not both"):
        _draft(animals, people["admin"], quasi_identifiers=COARSE_QI, no_quasi_identifiers=True)


def test_bad_drafts_are_refused_before_anything_is_stored(animals, people):
    before = OpenRelease.objects.count()
    with pytest.raises(ReleaseError, match="no column Nope"):
        _draft(animals, people["admin"], columns=["Status", "Nope"])
    with pytest.raises(ReleaseError, match="must be published columns; Borough"):
        _draft(animals, people["admin"], columns=["Status"], quasi_identifiers=["Borough"])
    with pytest.raises(ReleaseError, match="at least 2"):
        _draft(animals, people["admin"], k=1)
    with pytest.raises(ReleaseError, match="title"):
        _draft(animals, people["admin"], title="  ")
    with pytest.raises(ReleaseError, match="Only data admins and staff of"):
        _draft(animals, people["outsider"])
    with pytest.raises(ReleaseError, match="Only data admins and staff of"):
        _draft(animals, people["analyst"])
    animals.grade = "core"
    animals.save(update_fields=["grade"])
    with pytest.raises(ReleaseError, match="at least 10"):
        _draft(animals, people["admin"], k=5)
    assert OpenRelease.objects.count() == before
    assert _draft(animals, people["admin"], k=10).k == 10


# --------------------------------------------------------------------------- approval


def _checked(dataset, user):
    release = _draft(
        dataset, user, columns=["Complaint Type", "Status"], quasi_identifiers=COARSE_QI
    )
    opendata.check(release)
    assert release.status == OpenRelease.Status.CHECKED
    return release


def test_a_release_needs_a_second_persons_approval(animals, people):
    release = _checked(animals, people["admin"])
    with pytest.raises(ReleaseError, match="checked and approved"):
        opendata.publish(release, people["admin"])
    with pytest.raises(ReleaseError, match="second person"):
        opendata.approve(release, people["admin"])  # the one who prepared it
    with pytest.raises(ReleaseError, match="Only data admins and city leaders"):
        opendata.approve(release, people["staff"])
    with pytest.raises(ReleaseError, match="Only data admins and city leaders"):
        opendata.approve(release, people["analyst"])
    release.refresh_from_db()
    assert release.approved_by is None and release.status == OpenRelease.Status.CHECKED

    opendata.approve(release, people["admin2"])
    assert release.approved_by == people["admin2"]
    with pytest.raises(ReleaseError, match="already approved"):
        opendata.approve(release, people["leader"])
    with pytest.raises(ReleaseError, match="Only the approver"):
        opendata.publish(release, people["staff"])
    opendata.publish(release, people["admin2"])
    release.refresh_from_db()
    assert release.status == OpenRelease.Status.PUBLISHED and release.published_at is not None
    actions = list(
        AuditEntry.objects.filter(object_type="catalog.openrelease", object_id=str(release.pk))
        .order_by("seq")
        .values_list("action", "actor")
    )
    assert actions == [
        ("catalog.open_release_drafted", people["admin"].username),
        ("catalog.open_release_checked", "system"),
        ("catalog.open_release_approved", people["admin2"].username),
        ("catalog.open_release_published", people["admin2"].username),
    ]


def test_a_leader_may_approve_what_department_staff_prepared(animals, people):
    release = _checked(animals, people["staff"])
    opendata.approve(release, people["leader"])
    opendata.publish(release, people["leader"])
    assert release.status == OpenRelease.Status.PUBLISHED


def test_a_refused_release_cannot_be_approved_and_stays_refused(animals, people):
    release = _draft(animals, people["admin"])
    opendata.check(release)
    with pytest.raises(ReleaseError, match="Only a checked release"):
        opendata.approve(release, people["admin2"])
    with pytest.raises(ReleaseError, match="Only a draft"):
        opendata.check(release)
    assert OpenRelease.objects.get(pk=release.pk).status == OpenRelease.Status.REFUSED


def test_a_file_changed_after_the_check_is_not_published(animals, people):
    release = _checked(animals, people["admin"])
    opendata.approve(release, people["admin2"])
    data = release.lake_dir() / "part-0.parquet"
    table = pq.read_table(data)
    pq.write_table(table.slice(1), data)  # someone tampers with the checked file
    with pytest.raises(ReleaseError, match="changed since its check"):
        opendata.publish(release, people["admin2"])
    assert OpenRelease.objects.get(pk=release.pk).status == OpenRelease.Status.CHECKED


def test_withdrawing_needs_a_reason_and_keeps_the_files(animals, people):
    release = _checked(animals, people["admin"])
    with pytest.raises(ReleaseError, match="Only a published"):
        opendata.withdraw(release, people["admin"], "oops")
    opendata.approve(release, people["admin2"])
    opendata.publish(release, people["admin2"])
    with pytest.raises(ReleaseError, match="Say why"):
        opendata.withdraw(release, people["staff"], "  ")
    with pytest.raises(ReleaseError, match="Only data admins, city leaders"):
        opendata.withdraw(release, people["outsider"], "not theirs")
    opendata.withdraw(release, people["staff"], "rows from a retracted batch")
    release.refresh_from_db()
    assert release.status == OpenRelease.Status.WITHDRAWN and release.withdrawn_at
    assert release.withdraw_reason == "rows from a retracted batch"
    assert (release.lake_dir() / "part-0.parquet").is_file()
    assert not opendata.published(animals).exists()


# --------------------------------------------------------------------------- CLI


def _cli(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "civicpulse.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.django_db(transaction=False)
def test_release_and_publish_from_the_command_line(tmp_path):
    source = shared_data(ANIMALS)
    env = {**os.environ, "CIVICPULSE_DATA_DIR": str(tmp_path / "var")}
    env.pop("CIVICPULSE_DATABASE_URL", None)
    assert _cli(env, "migrate").returncode == 0
    setup = (
        "from civicpulse.core import accounts; from civicpulse.core.models import Department;"
        "d = Department.objects.create(code='DOHMH', name_zh='卫生局', name_en='Health');"
        "accounts.create_staff('prep', 'x-secret-1', 'department_staff', department=d);"
        "accounts.create_staff('boss', 'x-secret-1', 'data_admin')"
    )
    made = _cli(env, "manage", "shell", "-c", setup)
    assert made.returncode == 0, made.stderr
    assert _cli(env, "catalog", "register", "animals", "--title", "动物投诉",
                "--department", "DOHMH").returncode == 0  # fmt: skip
    assert _cli(env, "catalog", "load", "animals", str(source)).returncode == 0

    refused = _cli(
        env, "catalog", "release", "animals", "--columns", ",".join(PUBLISHED),
        "--qi", ",".join(FINE_QI), "--title", "按邮编", "--user", "prep",
    )  # fmt: skip
    assert refused.returncode != 0
    assert "refused by the check" in refused.stdout
    assert " rows: Complaint Type=" in refused.stdout and "Incident Zip=" in refused.stdout
    assert "refused by the de-identification check" in refused.stderr

    checked = _cli(
        env, "catalog", "release", "animals", "--columns", "Complaint Type,Status",
        "--qi", "Complaint Type", "--title", "按类型", "--user", "prep",
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "checked, waiting for approval" in checked.stdout
    number = checked.stdout.split()[1]
    same_person = _cli(env, "catalog", "publish", number, "--approver", "prep")
    assert same_person.returncode != 0 and "second person" in same_person.stderr
    published = _cli(env, "catalog", "publish", number, "--approver", "boss")
    assert published.returncode == 0, published.stderr
    assert "/data/animals/" in published.stdout
