"""Retention: old versions of a dataset archived, then deleted, as its policy says; all audited.

    set_policy(dataset, keep_versions=3, archive_after_days=30, delete_after_days=365, user=u)
    apply()          every dataset with a policy (the daily job ``catalog.retention``)

Which versions. Only superseded ones: the current version is never touched, nor any of the
newest ``keep_versions`` versions (counted over all versions, the current one included: keep 2
keeps the current version and the one before it). A version's age is counted from when it was
superseded, i.e. when its successor was loaded: a version current for a year and replaced
yesterday is one day old here, since until yesterday it was what everyone read.

Archiving marks the version ``archived`` and leaves its files where they are. An archived
version stays readable for comparisons and audits by the path its row records (a move would
break that path and every reader holding it for no gain in space); it is no longer offered for
new open-data releases, and the next step of its life is deletion.

Deleting removes the version's directory from the lake and marks it ``deleted``; its row, its
column profile, its quality results and its lineage stay, as the record of what was loaded. The
directory is first renamed to a hidden name (atomic: readers see it whole or not at all), the
status changed and audited in one transaction, and only then the files removed; if the store
refuses the change the directory is renamed back. A version is *held* (not deleted, and reported
with the reason) while a published open-data release was made from it, or while a share grant
of its dataset is active whose period began before the version was superseded: the grantee may
have read it, and may yet have to show what it read.

The dataset's lake directory is locked as a load locks it, so a load and a retention run of the
same dataset never interleave.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from civicpulse.catalog import loading
from civicpulse.catalog.models import (
    Dataset,
    DatasetVersion,
    OpenRelease,
    RetentionPolicy,
    ShareGrant,
)
from civicpulse.core import audit
from civicpulse.lake import parquet as lake_parquet

__all__ = ["RetentionError", "apply", "set_policy"]

TRASH_PREFIX = f"{lake_parquet.STAGING_PREFIX}deleted-"
Status = DatasetVersion.Status


class RetentionError(Exception):
    """A policy cannot be set as asked; the message says why."""


def set_policy(
    dataset: Dataset,
    *,
    keep_versions: int,
    archive_after_days: int | None = None,
    delete_after_days: int | None = None,
    user=None,
) -> RetentionPolicy:
    """Set (or replace) the dataset's retention policy; audited with the previous one."""
    for name, value in (
        ("versions kept", keep_versions),
        ("archive after", archive_after_days),
        ("delete after", delete_after_days),
    ):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise RetentionError(f"{name} must be a whole number of at least 0, not {value!r}")
    if keep_versions is None:
        raise RetentionError("say how many versions are always kept")
    if (
        archive_after_days is not None
        and delete_after_days is not None
        and delete_after_days < archive_after_days
    ):
        raise RetentionError(
            f"delete after ({delete_after_days} days) must not come before archive after "
            f"({archive_after_days} days)"
        )
    with transaction.atomic():
        before = RetentionPolicy.objects.filter(dataset=dataset).first()
        policy, _created = RetentionPolicy.objects.update_or_create(
            dataset=dataset,
            defaults={
                "keep_versions": keep_versions,
                "archive_after_days": archive_after_days,
                "delete_after_days": delete_after_days,
                "updated_by": user if getattr(user, "pk", None) else None,
            },
        )
        audit.record(
            user,
            "catalog.retention_set",
            dataset,
            detail={
                "dataset": dataset.slug,
                "policy": _terms(policy),
                "previous": _terms(before) if before else None,
            },
        )
    return policy


def _terms(policy: RetentionPolicy) -> dict[str, int | None]:
    return {
        "keep_versions": policy.keep_versions,
        "archive_after_days": policy.archive_after_days,
        "delete_after_days": policy.delete_after_days,
    }


# --------------------------------------------------------------------------- applying


def apply(now: datetime | None = None, *, dataset: Dataset | None = None, user=None) -> dict:
    """Apply every policy (or ``dataset``'s); what was archived, deleted and held, in a summary
    that fits a job's result."""
    now = now or timezone.now()
    policies = RetentionPolicy.objects.select_related("dataset").order_by("dataset__slug")
    if dataset is not None:
        policies = policies.filter(dataset=dataset)
    summary: dict[str, Any] = {
        "datasets": 0,
        "archived": [],
        "deleted": [],
        "held": [],
        "freed_bytes": 0,
    }
    for policy in policies:
        summary["datasets"] += 1
        _apply_one(policy, now, user, summary)
    return summary


def _apply_one(policy: RetentionPolicy, now: datetime, user, summary: dict) -> None:
    dataset = policy.dataset
    dataset_dir = settings.CONFIG.lake_dir / loading.CATALOG_DIR / dataset.slug
    dataset_dir.mkdir(parents=True, exist_ok=True)
    done = {"archived": [], "deleted": [], "held": []}
    with lake_parquet.file_lock(dataset_dir / lake_parquet.LOCK):
        for leftover in dataset_dir.glob(f"{TRASH_PREFIX}*"):  # a run stopped before removing
            shutil.rmtree(leftover, ignore_errors=True)
        dataset.refresh_from_db(fields=["current_version"])
        versions = list(dataset.versions.order_by("number"))
        kept = {v.pk for v in versions[::-1][: policy.keep_versions]}
        kept.add(dataset.current_version_id)
        for version, successor in zip(versions, versions[1:], strict=False):
            if version.pk in kept or version.status not in (Status.SUPERSEDED, Status.ARCHIVED):
                continue
            age = now - successor.created_at
            if _due(age, policy.delete_after_days):
                reasons = _holds(version, successor, now)
                if not reasons:
                    summary["freed_bytes"] += _delete(version, age, policy, user)
                    done["deleted"].append(version.number)
                    continue
                done["held"].append({"version": version.number, "reasons": reasons})
            if version.status == Status.SUPERSEDED and _due(age, policy.archive_after_days):
                _archive(version, age, policy, user)
                done["archived"].append(version.number)
    for key, items in done.items():
        summary[key].extend(
            {"dataset": dataset.slug, **(i if isinstance(i, dict) else {"version": i})}
            for i in items
        )
    if any(done.values()):
        audit.record(
            user,
            "catalog.retention_applied",
            dataset,
            detail={"dataset": dataset.slug, "policy": _terms(policy), **done},
        )


def _due(age: timedelta, days: int | None) -> bool:
    return days is not None and age > timedelta(days=days)


def _holds(version: DatasetVersion, successor: DatasetVersion, now: datetime) -> list[dict]:
    """Why the version may not be deleted yet (empty: it may)."""
    reasons = []
    releases = list(
        OpenRelease.objects.filter(version=version, status=OpenRelease.Status.PUBLISHED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if releases:
        reasons.append({"code": "published_release", "releases": releases})
    grants = list(
        ShareGrant.objects.filter(
            dataset_id=version.dataset_id,
            revoked_at__isnull=True,
            starts_at__lte=now,
            expires_at__gt=now,
            starts_at__lt=successor.created_at,  # the grant's period saw this version current
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if grants:
        reasons.append({"code": "active_grant", "grants": grants})
    return reasons


def _archive(version: DatasetVersion, age: timedelta, policy: RetentionPolicy, user) -> None:
    with transaction.atomic():
        changed = DatasetVersion.objects.filter(pk=version.pk, status=Status.SUPERSEDED).update(
            status=Status.ARCHIVED
        )
        if changed:
            audit.record(
                user,
                "catalog.version_archived",
                version,
                detail={
                    "dataset": version.dataset.slug,
                    "number": version.number,
                    "superseded_days": age.days,
                    "archive_after_days": policy.archive_after_days,
                },
            )
    version.status = Status.ARCHIVED


def _delete(version: DatasetVersion, age: timedelta, policy: RetentionPolicy, user) -> int:
    """Remove the version's files and mark it deleted; the bytes freed."""
    directory = version.lake_dir()
    trash = directory.parent / f"{TRASH_PREFIX}{uuid.uuid4().hex}"
    moved = directory.is_dir()
    size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) if moved else 0
    if moved:
        directory.rename(trash)
        lake_parquet.fsync_dir(directory.parent)
    try:
        with transaction.atomic():
            DatasetVersion.objects.filter(pk=version.pk, status=version.status).update(
                status=Status.DELETED
            )
            audit.record(
                user,
                "catalog.version_deleted",
                version,
                detail={
                    "dataset": version.dataset.slug,
                    "number": version.number,
                    "was": version.status,
                    "superseded_days": age.days,
                    "delete_after_days": policy.delete_after_days,
                    "files_removed": moved,
                    "bytes": size,
                },
            )
    except BaseException:
        if moved:
            trash.rename(directory)
        raise
    if moved:
        shutil.rmtree(trash, ignore_errors=True)
        lake_parquet.fsync_dir(directory.parent)
    version.status = Status.DELETED
    return size
