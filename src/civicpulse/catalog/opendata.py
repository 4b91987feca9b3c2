"""Open data: de-identified releases of a dataset, checked, approved by a second person, published.

    release = draft(dataset, columns=[...], quasi_identifiers=[...], k=5, title=..., user=u)
    report = check(release, user=u)         refused (with reasons) or checked (rows written)
    approve(release, other_user)            a second person: not the one who prepared it
    publish(release, other_user)            the portal serves it from now on
    withdraw(release, user, reason)         the portal stops serving it; its files stay

Drafting. A release takes some columns of one version (the current one unless named), in the
version's column order. Its quasi-identifiers must be among those columns (only what is
published can be linked); ``k`` is at least 2 and 5 by default. The dataset's share type does not
block a draft (a release is a de-identified extract, not a share of the data), but a ``core``
(核心) grade dataset needs ``k`` of at least ``CORE_MIN_K``: its rows come from data about people
identified by a national number, so a re-identified row costs most. A release with no
quasi-identifiers is refused by the check unless the draft declares so explicitly
(``no_quasi_identifiers=True``, kept in the report as ``declared_no_quasi_identifiers``): an
empty list is far more often forgotten than meant.

The check (:func:`check`), on the version's Parquet files:

(a) No direct identifier among the published columns. A column is one if its stored
    ``DatasetColumn.personal_tags`` (set by classification or by a person) *or* a fresh scan
    by ``classify.scan_version`` at check time finds resident ID numbers, mobile numbers or
    names (``DIRECT_IDENTIFIERS``). Scanning every time instead of trusting stored tags alone
    means an unclassified version, or one classified before a rule improved, cannot slip
    through; the stored tags still count, so a person's manual tag is never overridden.
    Unified social credit codes are not direct identifiers of persons: they are public in the
    enterprise credit register (as ``classify`` grades them); addresses name places, and in
    city records mostly the place of an incident. Both are listed as notes in the report for
    the approver to weigh, and belong among the quasi-identifiers when they are published.
    The classify scan samples values and tags a column only when most of them match, which is
    right for grading a dataset but not for publishing it: a remarks column where 70 values
    of 100 are ID numbers, or free text with a phone number inside, would pass. So the check
    also reads EVERY published value (:func:`_identifier_values`): DuckDB extracts whatever
    looks like an ID number or a mainland mobile number anywhere in a value, each distinct
    candidate is verified once by ``identity.services`` (check character, birth date,
    prefix), and one valid number in any value makes its column a direct identifier. The
    report keeps, per column, the number of values holding one and one masked example,
    never a value itself.
(b) k-anonymity: DuckDB groups the rows by the quasi-identifiers (an empty value is a value of
    its own); every combination shared by fewer than ``k`` rows is offending. The report keeps
    the number of combinations, of offending ones and of rows in them, and the first
    ``SHOWN_COMBINATIONS`` offending ones (rarest first) with their counts, each as a list of
    values in the order of ``quasi_identifiers`` (a list, since PostgreSQL's jsonb does not keep
    the order of an object's keys). These values are
    quasi-identifiers, not direct identifiers, and only staff read the report.

A refused release stays refused for the record; prepare a new draft (coarser quasi-identifiers,
fewer columns) instead. A passing check writes the published columns' rows to the release's own
directory ``lake/catalog/<slug>/open/<resource_id>/part-0.parquet``: staged under a hidden name,
fsynced and renamed into place (as ``loading`` does), with its row count, size and checksum
(``loading.checksum``). The portal serves that file and nothing else: later versions or tags
never change what a release published.

Who. Data admins (数据局) and the owner department's staff prepare, check and withdraw releases
of a dataset. A second person approves: a data admin or a city leader who did not prepare it
(superusers count as data admins). Publishing needs that approval and is done by the approver or
another data admin or city leader. Withdrawing is allowed to anyone who may prepare or approve:
taking data off the portal is the safe direction. Every step is audited.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
from django.conf import settings
from django.db import transaction
from django.db.models import Max, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from civicpulse.catalog import classify, lineage, loading
from civicpulse.catalog.models import Dataset, DatasetVersion, OpenRelease
from civicpulse.core import audit, scoping
from civicpulse.core.models import Role
from civicpulse.identity import services as identity
from civicpulse.lake import parquet as lake_parquet
from civicpulse.lake.sql import quote_identifier, quote_literal

__all__ = [
    "DEFAULT_K",
    "DIRECT_IDENTIFIERS",
    "ReleaseError",
    "approve",
    "can_approve",
    "can_prepare",
    "check",
    "draft",
    "explain",
    "open_datasets",
    "publish",
    "published",
    "withdraw",
]

DEFAULT_K = 5
MIN_K = 2
CORE_MIN_K = 10
DIRECT_IDENTIFIERS = ("resident_id", "mobile", "name")
NOTED_TAGS = ("credit_code", "address")
SHOWN_COMBINATIONS = 20
OPEN_DIR = "open"
DATA_FILE = loading.DATA_FILE
APPROVER_ROLES = {Role.DATA_ADMIN, Role.CITY_LEADER}
READABLE_VERSIONS = {DatasetVersion.Status.CURRENT, DatasetVersion.Status.SUPERSEDED}
# What may be an identifier inside a value: runs of digits (an ID number may end in X, a mobile
# follow +86), and mobiles written in groups (138-1234-5678). Kept only in the shapes below.
_CANDIDATES = (r"\+?[0-9]+[Xx]?", r"1[3-9][0-9][ -][0-9]{4}[ -][0-9]{4}")
_CANDIDATE_SHAPE = (
    r"[0-9]{17}[0-9Xx]|(\+86|0086)?1[3-9][0-9]{9}|1[3-9][0-9][ -][0-9]{4}[ -][0-9]{4}"
)
_UNSCANNED_TYPES = ("bool", "blob", "bytea", "binary", "varbinary")
# Full-width digits, X, plus, hyphen and space (as typed with a Chinese input method) are read as
# their half-width forms, so "１３８１２３４５６７８" is found like "13812345678".
_FULL_WIDTH = "０１２３４５６７８９Ｘｘ＋－　"
_HALF_WIDTH = "0123456789Xx+- "


class ReleaseError(Exception):
    """A release step cannot be done as asked (wrong state, wrong person, bad draft)."""


# --------------------------------------------------------------------------- who


def _role(user) -> str | None:
    if getattr(user, "is_superuser", False):
        return Role.DATA_ADMIN
    profile = scoping.profile_of(user)
    return profile.role if profile else None


def can_prepare(user, dataset: Dataset) -> bool:
    """Data admins, and staff of the dataset's owner department."""
    role = _role(user)
    if role == Role.DATA_ADMIN:
        return True
    profile = scoping.profile_of(user)
    return (
        role == Role.DEPARTMENT_STAFF
        and profile is not None
        and profile.department_id == dataset.owner_id
    )


def can_approve(user, release: OpenRelease | None = None) -> bool:
    """A data admin or city leader; for a given release, not the one who prepared it."""
    if _role(user) not in APPROVER_ROLES:
        return False
    return release is None or release.created_by_id != user.pk


def can_read(user, dataset: Dataset) -> bool:
    """Who reads a dataset's releases and their check reports on the staff pages."""
    return can_prepare(user, dataset) or _role(user) in APPROVER_ROLES


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise ReleaseError(message)


# --------------------------------------------------------------------------- draft


def draft(
    dataset: Dataset,
    *,
    version: DatasetVersion | None = None,
    columns: Sequence[str],
    quasi_identifiers: Sequence[str],
    k: int = DEFAULT_K,
    title: str,
    title_en: str = "",
    notes: str = "",
    license: str = OpenRelease.License.CC_BY,
    no_quasi_identifiers: bool = False,
    user,
) -> OpenRelease:
    """Prepare a release of ``columns`` of ``version`` (the current one by default); see the
    module docstring for the rules. Nothing is checked against the data yet: run :func:`check`."""
    _require(
        can_prepare(user, dataset),
        _("Only data admins and staff of %(dept)s prepare releases of this dataset.")
        % {"dept": dataset.owner},
    )
    version = version or dataset.current_version
    if version is None or version.dataset_id != dataset.pk:
        raise ReleaseError(
            _("Dataset %(slug)s has no such version to release.") % {"slug": dataset.slug}
        )
    if version.status not in READABLE_VERSIONS:
        raise ReleaseError(
            _("Version %(n)s is %(status)s: its data is no longer in the lake.")
            % {"n": version.number, "status": version.get_status_display()}
        )
    known = list(version.columns.order_by("position").values_list("name", flat=True))
    chosen = _names(columns)
    if not chosen:
        raise ReleaseError(_("Choose at least one column to publish."))
    missing = [c for c in chosen if c not in known]
    if missing:
        raise ReleaseError(
            _("Version %(n)s has no column %(cols)s.")
            % {"n": version.number, "cols": ", ".join(missing)}
        )
    qis = _names(quasi_identifiers)
    outside = [c for c in qis if c not in chosen]
    if outside:
        raise ReleaseError(
            _("Quasi-identifiers must be published columns; %(cols)s is not.")
            % {"cols": ", ".join(outside)}
        )
    if qis and no_quasi_identifiers:
        raise ReleaseError(_("Name quasi-identifiers or declare there are none, not both."))
    try:
        k = int(k)
    except (TypeError, ValueError):
        raise ReleaseError(_("k must be a whole number.")) from None
    floor = CORE_MIN_K if dataset.grade == Dataset.Grade.CORE else MIN_K
    if k < floor:
        raise ReleaseError(
            _("k must be at least %(floor)s for a dataset graded %(grade)s.")
            % {"floor": floor, "grade": dataset.get_grade_display()}
        )
    if k > 32767:
        raise ReleaseError(_("k is too large."))
    if not (title or "").strip():
        raise ReleaseError(_("A release needs a title."))
    if license not in OpenRelease.License.values:
        raise ReleaseError(_("Unknown licence %(licence)s.") % {"licence": license})
    release = OpenRelease(
        dataset=dataset,
        version=version,
        title=title.strip()[:200],
        title_en=(title_en or "").strip()[:200],
        notes=notes or "",
        license=license,
        columns=[c for c in known if c in chosen],
        quasi_identifiers=[c for c in known if c in qis],
        k=k,
        check_report={"declared_no_quasi_identifiers": True} if no_quasi_identifiers else {},
        created_by=user,
    )
    with transaction.atomic():
        release.save()
        audit.record(
            user,
            "catalog.open_release_drafted",
            release,
            detail={
                "dataset": dataset.slug,
                "version": version.number,
                "columns": release.columns,
                "quasi_identifiers": release.quasi_identifiers,
                "k": k,
                "declared_no_quasi_identifiers": no_quasi_identifiers,
            },
        )
    return release


def _names(values: Sequence[str] | str) -> list[str]:
    if isinstance(values, str):
        values = values.split(",")
    seen: list[str] = []
    for value in values:
        value = (value or "").strip()
        if value and value not in seen:
            seen.append(value)
    return seen


# --------------------------------------------------------------------------- check


def check(release: OpenRelease, *, user=None) -> dict[str, Any]:
    """Run the de-identification check on a draft; store the report; write the rows if it
    passes. Returns the report (also in ``release.check_report``)."""
    if user is not None:
        _require(
            can_prepare(user, release.dataset),
            _("Only data admins and staff of the owner department check releases."),
        )
    with transaction.atomic():
        locked = OpenRelease.objects.select_for_update().get(pk=release.pk)
        if locked.status != OpenRelease.Status.DRAFT:
            raise ReleaseError(
                _("Only a draft is checked; this release is %(status)s.")
                % {"status": locked.get_status_display()}
            )
        version = locked.version
        if version.status not in READABLE_VERSIONS or not any(version.lake_dir().glob("part-*")):
            raise ReleaseError(
                _("The data of version %(n)s is no longer in the lake.") % {"n": version.number}
            )
        report = _inspect(locked)
        report["checked_at"] = timezone.now().isoformat()
        report["checked_by"] = audit.actor_name(user)
        final = None
        try:
            if report["passed"]:
                final = _write(locked)
                locked.lake_path = final.relative_to(settings.CONFIG.lake_dir).as_posix()
                data = final / DATA_FILE
                locked.row_count = report["rows"]
                locked.size_bytes = data.stat().st_size
                locked.checksum = loading.checksum(data)
                locked.status = OpenRelease.Status.CHECKED
            else:
                locked.status = OpenRelease.Status.REFUSED
            locked.check_report = report
            locked.save()
            audit.record(
                user,
                "catalog.open_release_checked",
                locked,
                detail={
                    "status": locked.status,
                    "reasons": [r["code"] for r in report["reasons"]],
                    "direct_identifiers": [d["column"] for d in report["direct_identifiers"]],
                    "offending_groups": report.get("k_anonymity", {}).get("offending_groups"),
                    "checksum": locked.checksum,
                },
            )
            if locked.status == OpenRelease.Status.CHECKED:  # its rows are written: lineage
                lineage.record(
                    lineage.node_for_version(version),
                    ("open_release", str(locked.resource_id), locked.title),
                    "catalog.open_release",
                    {"rows": locked.row_count, "version": version.number, "release": locked.pk},
                )
        except BaseException:
            if final is not None:
                shutil.rmtree(final, ignore_errors=True)
            raise
    _refresh(release, locked)
    return report


def _refresh(target: OpenRelease, source: OpenRelease) -> None:
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))


def _inspect(release: OpenRelease) -> dict[str, Any]:
    version = release.version
    declared_none = bool(release.check_report.get("declared_no_quasi_identifiers"))
    report: dict[str, Any] = {
        "version": version.number,
        "columns": list(release.columns),
        "quasi_identifiers": list(release.quasi_identifiers),
        "k": release.k,
        "declared_no_quasi_identifiers": declared_none,
        "direct_identifiers": [],
        "noted": [],
        "reasons": [],
    }
    tags = _tags(version, release.columns)
    in_values = _identifier_values(version, release.columns)
    report["identifier_values"] = [
        {"column": column, "tag": tag, **counted}
        for column in release.columns
        for tag, counted in in_values.get(column, {}).items()
    ]
    for column in release.columns:
        stored, found = tags[column]
        held = in_values.get(column, {})
        direct = [t for t in DIRECT_IDENTIFIERS if t in stored or t in found or t in held]
        if direct:
            if any(t in stored for t in direct):
                found_by = "tags"
            elif any(t in found for t in direct):
                found_by = "scan"
            else:
                found_by = "values"
            report["direct_identifiers"].append(
                {"column": column, "tags": direct, "found_by": found_by}
            )
        noted = [t for t in NOTED_TAGS if t in stored or t in found]
        if noted:
            report["noted"].append({"column": column, "tags": noted})
    if report["direct_identifiers"]:
        report["reasons"].append(
            {
                "code": "direct_identifiers",
                "columns": [d["column"] for d in report["direct_identifiers"]],
            }
        )
    con = duckdb.connect()
    try:
        glob = version.data_glob()
        report["rows"] = con.execute("SELECT count(*) FROM read_parquet(?)", [glob]).fetchone()[0]
        if release.quasi_identifiers:
            report["k_anonymity"] = _k_anonymity(con, glob, release.quasi_identifiers, release.k)
            if report["k_anonymity"]["offending_groups"]:
                report["reasons"].append({"code": "k_anonymity", "k": release.k})
        elif not declared_none:
            report["reasons"].append({"code": "no_quasi_identifiers"})
    finally:
        con.close()
    report["passed"] = not report["reasons"]
    return report


def _tags(version: DatasetVersion, columns: Sequence[str]) -> dict[str, tuple[list, list]]:
    """Each published column's stored personal tags and the tags a fresh scan finds."""
    stored = dict(version.columns.filter(name__in=columns).values_list("name", "personal_tags"))
    found = {f.column: list(f.tags) for f in classify.scan_version(version)}
    return {c: (list(stored.get(c) or []), found.get(c, [])) for c in columns}


def _identifier_values(
    version: DatasetVersion, columns: Sequence[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """For each published column holding a valid resident ID or mobile number anywhere in any
    of its values: ``{tag: {"values": <values holding one>, "example": <masked>}}``.

    Every row is read (no sample, no share of matching values): one number is one person. The
    candidates are found by DuckDB; each distinct one is checked once here, by the identity
    app, so an 18-digit order number failing the check character is not an ID number."""
    types = dict(version.columns.filter(name__in=columns).values_list("name", "type"))
    scanned = [c for c in columns if not (types.get(c) or "").lower().startswith(_UNSCANNED_TYPES)]
    if not scanned:
        return {}
    source = f"read_parquet({quote_literal(version.data_glob())})"
    extracted = " || ".join(f"regexp_extract_all(v, {quote_literal(p)})" for p in _CANDIDATES)
    con = duckdb.connect()
    try:
        con.execute("CREATE TEMP TABLE candidates (col INTEGER, rid BIGINT, token VARCHAR)")
        for index, column in enumerate(scanned):
            con.execute(
                f"INSERT INTO candidates SELECT {index}, rid, token FROM ("
                f"SELECT rid, unnest({extracted}) AS token FROM ("
                f"SELECT row_number() OVER () AS rid, translate(CAST({quote_identifier(column)} "
                f"AS VARCHAR), {quote_literal(_FULL_WIDTH)}, {quote_literal(_HALF_WIDTH)})"
                f" AS v FROM {source}) WHERE v IS NOT NULL) "
                f"WHERE regexp_full_match(token, {quote_literal(_CANDIDATE_SHAPE)})"
            )
        valid: dict[str, tuple[str, str]] = {}
        for (token,) in con.execute("SELECT DISTINCT token FROM candidates").fetchall():
            if len(token) == 18 and token[:17].isdigit():
                tag, result = "resident_id", identity.check_resident_id(token)
            else:
                tag, result = "mobile", identity.check_mobile(token)
            if result.valid:
                valid[token] = (tag, result.value)
        if not valid:
            return {}
        con.execute("CREATE TEMP TABLE valid (token VARCHAR, tag VARCHAR)")
        con.executemany("INSERT INTO valid VALUES (?, ?)", [(t, v[0]) for t, v in valid.items()])
        counted = con.execute(
            "SELECT col, tag, count(DISTINCT rid), min(token) FROM candidates "
            "JOIN valid USING (token) GROUP BY col, tag ORDER BY col, tag"
        ).fetchall()
    finally:
        con.close()
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for index, tag, values, example in counted:
        found.setdefault(scanned[index], {})[tag] = {
            "values": int(values),
            "example": identity.mask(tag, valid[example][1]),
        }
    return found


def _k_anonymity(
    con: duckdb.DuckDBPyConnection, glob: str, quasi_identifiers: Sequence[str], k: int
) -> dict[str, Any]:
    """Group the rows by the quasi-identifiers; count the groups smaller than ``k``."""
    keys = ", ".join(quote_identifier(q) for q in quasi_identifiers)
    shown = ", ".join(f"CAST({quote_identifier(q)} AS VARCHAR)" for q in quasi_identifiers)
    con.execute(
        f"CREATE TEMP TABLE release_groups AS SELECT {keys}, count(*) AS __release_rows "
        f"FROM read_parquet(?) GROUP BY ALL",
        [glob],
    )
    groups, offending, rows, smallest = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE __release_rows < ?), "
        "coalesce(sum(__release_rows) FILTER (WHERE __release_rows < ?), 0), "
        "min(__release_rows) FROM release_groups",
        [k, k],
    ).fetchone()
    combinations = [
        {"values": list(row[:-1]), "rows": row[-1]}
        for row in con.execute(
            f"SELECT {shown}, __release_rows FROM release_groups WHERE __release_rows < ? "
            f"ORDER BY __release_rows, {keys} NULLS FIRST LIMIT ?",
            [k, SHOWN_COMBINATIONS],
        ).fetchall()
    ]
    return {
        "groups": int(groups),
        "offending_groups": int(offending),
        "offending_rows": int(rows),
        "smallest_group": int(smallest or 0),
        "combinations": combinations,
    }


def _write(release: OpenRelease) -> Path:
    """The published columns' rows, staged and renamed into the release's own directory."""
    open_dir = settings.CONFIG.lake_dir / loading.CATALOG_DIR / release.dataset.slug / OPEN_DIR
    open_dir.mkdir(parents=True, exist_ok=True)
    final = open_dir / str(release.resource_id)
    if final.exists():
        raise ReleaseError(_("Release files already exist at %(path)s.") % {"path": final})
    staging = open_dir / f"{lake_parquet.STAGING_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        target = staging / DATA_FILE
        select = ", ".join(quote_identifier(c) for c in release.columns)
        con = duckdb.connect()
        try:
            con.execute(
                f"COPY (SELECT {select} FROM read_parquet(?)) TO "
                f"'{target.as_posix().replace(chr(39), chr(39) * 2)}' "
                "(FORMAT parquet, COMPRESSION zstd)",
                [release.version.data_glob()],
            )
        finally:
            con.close()
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        lake_parquet.fsync_dir(staging)
        staging.rename(final)
        lake_parquet.fsync_dir(open_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def explain(report: dict[str, Any]) -> list[str]:
    """The report's reasons for refusing, as sentences in the active language."""
    sentences = []
    for reason in report.get("reasons", []):
        code = reason.get("code")
        if code == "direct_identifiers":
            sentences.append(
                _("Direct identifiers among the published columns: %(cols)s. Leave them out.")
                % {"cols": ", ".join(reason.get("columns", []))}
            )
            for held in report.get("identifier_values", []):
                sentences.append(
                    _("%(count)s values of %(col)s hold %(kind)s (e.g. %(example)s).")
                    % {
                        "count": held["values"],
                        "col": held["column"],
                        "kind": _("resident ID numbers")
                        if held["tag"] == "resident_id"
                        else _("mobile numbers"),
                        "example": held["example"],
                    }
                )
        elif code == "k_anonymity":
            ka = report.get("k_anonymity", {})
            sentences.append(
                _(
                    "%(groups)s combinations of the quasi-identifiers are shared by fewer than "
                    "%(k)s rows (%(rows)s rows in all). Coarsen or drop quasi-identifiers."
                )
                % {
                    "groups": ka.get("offending_groups"),
                    "k": reason.get("k"),
                    "rows": ka.get("offending_rows"),
                }
            )
        elif code == "no_quasi_identifiers":
            sentences.append(
                _(
                    "No quasi-identifiers were named. Name the columns that could single out a "
                    "person in combination, or declare explicitly that there are none."
                )
            )
    return sentences


# --------------------------------------------------------------------------- approve, publish


def approve(release: OpenRelease, user) -> OpenRelease:
    """A second person approves a checked release (see the module docstring for who)."""
    with transaction.atomic():
        locked = OpenRelease.objects.select_for_update().get(pk=release.pk)
        if locked.status != OpenRelease.Status.CHECKED:
            raise ReleaseError(
                _("Only a checked release is approved; this one is %(status)s.")
                % {"status": locked.get_status_display()}
            )
        if locked.created_by_id == getattr(user, "pk", None):
            raise ReleaseError(
                _("A release is approved by a second person, not by the one who prepared it.")
            )
        _require(can_approve(user), _("Only data admins and city leaders approve releases."))
        if locked.approved_by_id is not None:
            raise ReleaseError(_("This release is already approved."))
        locked.approved_by = user
        locked.save(update_fields=["approved_by", "updated_at"])
        audit.record(user, "catalog.open_release_approved", locked)
    _refresh(release, locked)
    return release


def publish(release: OpenRelease, user) -> OpenRelease:
    """Put an approved release on the portal, after making sure its file is what was checked."""
    with transaction.atomic():
        locked = OpenRelease.objects.select_for_update().get(pk=release.pk)
        if locked.status != OpenRelease.Status.CHECKED or locked.approved_by_id is None:
            raise ReleaseError(_("Only a checked and approved release is published."))
        _require(
            can_approve(user) or user.pk == locked.approved_by_id,
            _("Only the approver, a data admin or a city leader publishes a release."),
        )
        data = locked.lake_dir() / DATA_FILE
        if not data.is_file() or loading.checksum(data) != locked.checksum:
            raise ReleaseError(_("The release's file is missing or changed since its check."))
        locked.status = OpenRelease.Status.PUBLISHED
        locked.published_at = timezone.now()
        locked.save(update_fields=["status", "published_at", "updated_at"])
        audit.record(
            user,
            "catalog.open_release_published",
            locked,
            detail={"resource_id": str(locked.resource_id), "rows": locked.row_count},
        )
    _refresh(release, locked)
    return release


def withdraw(release: OpenRelease, user, reason: str) -> OpenRelease:
    """Take a published release off the portal; the files stay for the record."""
    reason = (reason or "").strip()
    if not reason:
        raise ReleaseError(_("Say why the release is withdrawn."))
    _require(
        can_prepare(user, release.dataset) or can_approve(user),
        _("Only data admins, city leaders and the owner department withdraw releases."),
    )
    with transaction.atomic():
        locked = OpenRelease.objects.select_for_update().get(pk=release.pk)
        if locked.status != OpenRelease.Status.PUBLISHED:
            raise ReleaseError(_("Only a published release is withdrawn."))
        locked.status = OpenRelease.Status.WITHDRAWN
        locked.withdrawn_at = timezone.now()
        locked.withdraw_reason = reason
        locked.save(update_fields=["status", "withdrawn_at", "withdraw_reason", "updated_at"])
        audit.record(user, "catalog.open_release_withdrawn", locked, detail={"reason": reason})
    _refresh(release, locked)
    return release


# --------------------------------------------------------------------------- the portal's view


def published(dataset: Dataset | None = None) -> QuerySet[OpenRelease]:
    """Published releases (of one dataset), newest first."""
    found = OpenRelease.objects.filter(status=OpenRelease.Status.PUBLISHED)
    if dataset is not None:
        found = found.filter(dataset=dataset)
    return found.select_related("dataset", "version").order_by("-published_at", "-pk")


def open_datasets() -> QuerySet[Dataset]:
    """Datasets with at least one published release, each with ``first_published`` and
    ``last_published``."""
    from django.db.models import Min, Q

    published_only = Q(open_releases__status=OpenRelease.Status.PUBLISHED)
    return (
        Dataset.objects.filter(published_only)
        .annotate(
            first_published=Min("open_releases__published_at", filter=published_only),
            last_published=Max("open_releases__published_at", filter=published_only),
        )
        .select_related("owner")
        .prefetch_related("groups")
        .order_by("-last_published", "slug")
    )
