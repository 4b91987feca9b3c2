"""Retention on five real versions loaded months apart: the newest kept, the old archived and
the oldest deleted (files gone, records kept), a version behind a published release or an
active grant held, everything audited; the daily job through the real queue; the CLI."""

from __future__ import annotations

import csv
import itertools
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from civicpulse.catalog import services
from civicpulse.catalog.models import (
    DatasetColumn,
    DatasetVersion,
    OpenRelease,
    RetentionPolicy,
    ShareGrant,
    ShareRequest,
)
from civicpulse.core import accounts
from civicpulse.core import queue as q
from civicpulse.core.models import AuditEntry, Department, Role
from tests.support import REPO_ROOT, shared_data

pytestmark = [pytest.mark.shared_data, pytest.mark.django_db]

NYC_100 = "311/nyc_311_qsv_100.csv"
PASSWORD = "retention-secret-1"
# days before now each version was loaded: v5 is current; v4 was superseded 1 day ago, v3 40,
# v2 100 and v1 200 days ago (a version ages from its successor's load)
LOADED_DAYS_AGO = [300, 200, 100, 40, 1]
_numbers = itertools.count(1)


@pytest.fixture
def five_versions(new_dataset, tmp_path):
    """A dataset with five versions of the real NYC 311 sample (20, 21, ... 24 rows), loaded
    and then dated months apart in the store."""
    with open(shared_data(NYC_100), encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    dataset = new_dataset("ret")
    versions = []
    for i in range(len(LOADED_DAYS_AGO)):
        part = tmp_path / f"part-{i}.csv"
        with open(part, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows(rows[: 21 + i])
        versions.append(services.load_version(dataset, part, progress=False))
    now = timezone.now()
    with connection.cursor() as cursor:  # versions are immutable: date them as a migration would
        for version, days in zip(versions, LOADED_DAYS_AGO, strict=True):
            cursor.execute(
                f"UPDATE {DatasetVersion._meta.db_table} SET created_at = %s WHERE id = %s",
                [now - timedelta(days=days), version.pk],
            )
    return services.find(dataset.slug), versions


def _statuses(dataset) -> list[str]:
    return list(dataset.versions.order_by("number").values_list("status", flat=True))


def _audited(action: str, obj) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(
            action=action, object_type=obj._meta.label_lower, object_id=str(obj.pk)
        )
    )


def test_old_versions_are_archived_then_deleted_and_the_newest_kept(five_versions):
    dataset, versions = five_versions
    services.set_retention(dataset, keep_versions=2, archive_after_days=30, delete_after_days=90)
    sizes = {v.number: v.size_bytes for v in versions}

    summary = services.apply_retention(dataset=dataset.slug)

    assert _statuses(dataset) == ["deleted", "deleted", "archived", "superseded", "current"]
    assert summary["datasets"] == 1 and summary["held"] == []
    assert summary["deleted"] == [
        {"dataset": dataset.slug, "version": 1},
        {"dataset": dataset.slug, "version": 2},
    ]
    assert summary["archived"] == [{"dataset": dataset.slug, "version": 3}]
    assert summary["freed_bytes"] >= sizes[1] + sizes[2]
    for v in versions[:2]:
        assert not v.lake_dir().exists()
        # the record stays: its row, its columns, its audit trail
        assert DatasetColumn.objects.filter(version=v).count() == len(v.schema)
        (entry,) = _audited("catalog.version_deleted", v)
        assert entry.detail["number"] == v.number and entry.detail["files_removed"] is True
    for v in versions[2:]:
        assert (v.lake_dir() / "part-0.parquet").is_file()
    (entry,) = _audited("catalog.version_archived", versions[2])
    assert entry.detail["superseded_days"] == 40
    assert not list(v.lake_dir().parent.glob(".staging-*"))
    # an archived version still reads for comparisons; a deleted one says it is gone
    assert services.compare_versions(dataset, 3, 5).rows_added == 2
    with pytest.raises(services.CatalogError, match="deleted"):
        services.compare_versions(dataset, 1, 5)
    assert _audited("catalog.retention_applied", dataset)[0].detail["deleted"] == [1, 2]
    assert _audited("catalog.retention_set", dataset)[0].detail["policy"] == {
        "keep_versions": 2,
        "archive_after_days": 30,
        "delete_after_days": 90,
    }

    # applying again changes nothing and audits nothing new
    entries = AuditEntry.objects.count()
    again = services.apply_retention(dataset=dataset)
    assert again["archived"] == again["deleted"] == again["held"] == []
    assert AuditEntry.objects.count() == entries
    assert _statuses(dataset) == ["deleted", "deleted", "archived", "superseded", "current"]


def test_the_current_version_and_the_kept_ones_outlive_any_policy(five_versions):
    dataset, versions = five_versions
    services.set_retention(dataset, keep_versions=0, archive_after_days=0, delete_after_days=0)
    services.apply_retention(timezone.now() + timedelta(days=3650), dataset=dataset)
    assert _statuses(dataset) == ["deleted"] * 4 + ["current"]
    assert (versions[-1].lake_dir() / "part-0.parquet").is_file()
    assert services.current_table(dataset.slug).read().num_rows == 24


def test_a_version_behind_a_published_release_or_an_active_grant_is_held(five_versions):
    dataset, versions = five_versions
    n = next(_numbers)
    preparer = accounts.create_staff(f"ret-prep-{n}", PASSWORD, Role.DATA_ADMIN)
    approver = accounts.create_staff(f"ret-appr-{n}", PASSWORD, Role.DATA_ADMIN)
    release = services.draft_release(
        dataset,
        version=versions[0],
        columns=["Complaint Type", "Borough"],
        quasi_identifiers=[],
        no_quasi_identifiers=True,
        title="Complaints of version 1",
        user=preparer,
    )
    release = services.approve_and_publish_release(release, approver)
    assert release.status == OpenRelease.Status.PUBLISHED
    # a grant active now, begun 150 days ago: version 2 (current until 100 days ago) was readable
    reader = Department.objects.create(code=f"RET-READ-{n}", name_zh="读者")
    now = timezone.now()
    request = ShareRequest.objects.create(
        dataset=dataset, department=reader, requested_by=preparer, purpose="统计",
        columns=["Borough"], starts_on=(now - timedelta(days=150)).date(),
        ends_on=(now + timedelta(days=30)).date(), status=ShareRequest.Status.APPROVED,
    )  # fmt: skip
    grant = ShareGrant.objects.create(
        request=request, dataset=dataset, department=reader, columns=["Borough"],
        starts_at=now - timedelta(days=150), expires_at=now + timedelta(days=30),
    )  # fmt: skip
    services.set_retention(dataset, keep_versions=2, archive_after_days=30, delete_after_days=90)

    summary = services.apply_retention(dataset=dataset)

    # held, but still archived: they are old enough for that
    assert _statuses(dataset) == ["archived", "archived", "archived", "superseded", "current"]
    assert summary["deleted"] == []
    assert summary["held"] == [
        {
            "dataset": dataset.slug,
            "version": 1,  # superseded before the grant began: only its release holds it
            "reasons": [{"code": "published_release", "releases": [release.pk]}],
        },
        {
            "dataset": dataset.slug,
            "version": 2,
            "reasons": [{"code": "active_grant", "grants": [grant.pk]}],
        },
    ]
    assert all((v.lake_dir() / "part-0.parquet").is_file() for v in versions)
    held = _audited("catalog.retention_applied", dataset)[0].detail["held"]
    assert [h["version"] for h in held] == [1, 2]

    # the grant revoked: version 2 goes; version 1 stays while its release is published
    ShareGrant.objects.filter(pk=grant.pk).update(revoked_at=timezone.now())
    summary = services.apply_retention(dataset=dataset)
    assert [d["version"] for d in summary["deleted"]] == [2]
    assert [h["version"] for h in summary["held"]] == [1]
    assert _statuses(dataset) == ["archived", "deleted", "archived", "superseded", "current"]


def test_a_policy_that_deletes_before_it_archives_is_refused(new_dataset):
    dataset = new_dataset("ret-bad")
    with pytest.raises(services.CatalogError, match="must not come before archive"):
        services.set_retention(
            dataset, keep_versions=1, archive_after_days=90, delete_after_days=30
        )
    with pytest.raises(services.CatalogError, match="at least 0"):
        services.set_retention(dataset, keep_versions=-1)
    assert not RetentionPolicy.objects.filter(dataset=dataset).exists()


def test_the_daily_job_applies_the_policies_through_the_queue(five_versions):
    dataset, versions = five_versions
    services.set_retention(dataset, keep_versions=3, archive_after_days=50, delete_after_days=150)
    assert q.REGISTRY["catalog.retention"].every == 86400
    store = q.StoreQueue()
    job_id = store.enqueue("catalog.retention")
    assert q.Worker(store, names=["catalog.retention"]).run_one() is True
    state = store.state(job_id)
    assert state["state"] == "done", state["error"]
    mine = {
        key: [i["version"] for i in state["result"][key] if i["dataset"] == dataset.slug]
        for key in ("archived", "deleted", "held")
    }
    assert mine == {"archived": [2], "deleted": [1], "held": []}
    assert _statuses(dataset) == ["deleted", "archived", "superseded", "superseded", "current"]
    assert next(iter(_audited("catalog.version_deleted", versions[0]))).actor == "system"


def test_the_command_line_sets_shows_and_applies_a_policy(tmp_path):
    env = {**os.environ, "CIVICPULSE_DATA_DIR": str(tmp_path / "var")}
    env.pop("CIVICPULSE_DATABASE_URL", None)

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "civicpulse.cli", *args],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    made = cli("migrate")
    assert made.returncode == 0, made.stderr
    made = cli(
        "manage", "shell", "-c",
        "from civicpulse.core.models import Department; "
        "Department.objects.create(code='RET', name_zh='数据局')",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (
        cli("catalog", "register", "ret-cli", "--title", "t", "--department", "RET").returncode == 0
    )
    with open(shared_data(NYC_100), encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    for i in range(3):
        part = tmp_path / f"v{i}.csv"
        with open(part, "w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows(rows[: 11 + i])
        assert cli("catalog", "load", "ret-cli", str(part)).returncode == 0

    shown = cli("catalog", "retention", "ret-cli")
    assert shown.returncode == 0 and "no retention policy" in shown.stdout
    bad = cli("catalog", "retention", "ret-cli", "--keep", "1", "--archive-after", "9",
              "--delete-after", "3")  # fmt: skip
    assert bad.returncode == 2 and "must not come before archive" in bad.stderr
    done = cli("catalog", "retention", "ret-cli", "--keep", "1", "--delete-after", "0")
    assert done.returncode == 0, done.stderr
    assert "keep 1 newest, archive superseded never, delete after 0 days" in done.stdout
    applied = cli("catalog", "retention", "apply")
    assert applied.returncode == 0, applied.stderr
    assert "deleted ret-cli v1" in applied.stdout and "deleted ret-cli v2" in applied.stdout
    assert "1 dataset(s): 0 archived, 2 deleted" in applied.stdout
    listed = cli("catalog", "versions", "ret-cli")
    assert [line.split()[1] for line in listed.stdout.splitlines()] == [
        "deleted",
        "deleted",
        "current",
    ]
