"""What other apps, the CLI and (later) the pages ask of the catalog.

Other domain apps use the catalog only through these functions: register a dataset, load a new
version of it, list its versions, find the Parquet files of its current version to read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from civicpulse.catalog import classify as classifying
from civicpulse.catalog import loading, quality, versions
from civicpulse.catalog.models import RESERVED_SLUGS, SLUG_PATTERN, Dataset, DatasetVersion
from civicpulse.core import audit
from civicpulse.core.models import Department
from civicpulse.lake import LakeVersion

__all__ = [
    "CatalogError",
    "assess_quality",
    "compare_versions",
    "current_table",
    "find",
    "load_version",
    "register_dataset",
    "version",
    "versions_of",
]

LoadFailed = loading.LoadFailed
Unchanged = loading.Unchanged


logger = logging.getLogger(__name__)


class CatalogError(Exception):
    """A catalog request cannot be done as asked; the message is one line saying why."""


def register_dataset(
    slug: str,
    *,
    title: str,
    owner: Department | str,
    title_en: str = "",
    description: str = "",
    frequency: str = Dataset.Frequency.IRREGULAR,
    tags: Iterable[str] = (),
    grade: str = Dataset.Grade.GENERAL,
    share_type: str = Dataset.ShareType.CONDITIONAL,
    user=None,
) -> Dataset:
    """Add a dataset to the catalog (no data yet: load versions into it)."""
    if not isinstance(owner, Department):
        department = Department.objects.filter(code=owner).first()
        if department is None:
            known = ", ".join(Department.objects.values_list("code", flat=True)[:20]) or "none"
            raise CatalogError(f"no department with code {owner!r} (known: {known})")
        owner = department
    if not re.fullmatch(SLUG_PATTERN, slug or ""):
        raise CatalogError(
            f"dataset identifier {slug!r} must be 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    if slug in RESERVED_SLUGS:
        raise CatalogError(
            f"dataset identifier {slug!r} is the name of a catalog page: choose another"
        )
    if not (title or "").strip():
        raise CatalogError("a dataset needs a title")
    clean_tags = _tags(tags)
    dataset = Dataset(
        slug=slug,
        title=title.strip(),
        title_en=title_en.strip(),
        description=description,
        owner=owner,
        update_frequency=frequency,
        tags=clean_tags,
        grade=grade,
        share_type=share_type,
        created_by=user if getattr(user, "pk", None) else None,
    )
    try:
        dataset.full_clean()
    except ValidationError as exc:
        if "slug" in exc.message_dict and Dataset.objects.filter(slug=slug).exists():
            raise CatalogError(f"dataset {slug!r} is already registered") from None
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        raise CatalogError(f"dataset {slug!r} cannot be registered ({problems})") from None
    try:
        with transaction.atomic():
            dataset.save()
            audit.record(
                user,
                "catalog.dataset_registered",
                dataset,
                detail={"slug": slug, "owner": owner.code, "frequency": frequency},
            )
    except IntegrityError:
        raise CatalogError(f"dataset {slug!r} is already registered") from None
    return dataset


def _tags(tags: Iterable[str]) -> list[str]:
    if isinstance(tags, str):
        tags = tags.split(",")
    seen: list[str] = []
    for tag in tags:
        tag = tag.strip()
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def find(slug: str) -> Dataset:
    dataset = Dataset.objects.select_related("owner", "current_version").filter(slug=slug).first()
    if dataset is None:
        raise CatalogError(f"no dataset {slug!r} in the catalog: register it first")
    return dataset


def load_version(dataset: Dataset | str, source: str | Path, **options) -> DatasetVersion:
    """Load ``source`` as the next version (see :func:`catalog.loading.load` for the options).

    Raises :class:`LoadFailed` (nothing changed) or :class:`Unchanged` (same data as now)."""
    if isinstance(dataset, str):
        dataset = find(dataset)
    loaded = loading.load(dataset, source, **options)
    # before anything reads it: what earlier versions knew to be personal stays masked
    classifying.carry_forward(loaded)
    _record_load_lineage(loaded)
    if dataset.quality_rules.filter(active=True).exists():  # each load is measured
        try:
            quality.assess(loaded, user=options.get("user"))
        except Exception:  # the load is done and current: a failed measurement must not undo that
            logger.exception(
                "quality of %s version %s could not be measured; run `civicpulse catalog "
                "quality %s` again",
                dataset.slug,
                loaded.number,
                dataset.slug,
            )
    return loaded


def _record_load_lineage(loaded: DatasetVersion) -> None:
    """The source a load read → the version it made (the label never holds a password)."""
    from civicpulse.catalog import lineage

    name = loaded.source_name
    label = name if loaded.source_kind == DatasetVersion.Kind.SQL else Path(name).name
    try:
        lineage.record(
            ("source", name, label),
            lineage.node_for_version(loaded),
            "catalog.load",
            {"rows": loaded.row_count, "version": loaded.number, "kind": loaded.source_kind},
        )
    except Exception:  # the version is loaded and current: a lost edge must not undo that
        logger.exception(
            "lineage of %s version %s not recorded", loaded.dataset.slug, loaded.number
        )


def versions_of(dataset: Dataset | str) -> QuerySet[DatasetVersion]:
    if isinstance(dataset, str):
        dataset = find(dataset)
    return dataset.versions.order_by("number")


def version(dataset: Dataset | str, number: int) -> DatasetVersion:
    found = versions_of(dataset).filter(number=number).first()
    if found is None:
        slug = dataset if isinstance(dataset, str) else dataset.slug
        raise CatalogError(f"dataset {slug!r} has no version {number}")
    return found


def current_table(dataset: Dataset | str) -> LakeVersion:
    """The current version's files in the lake, for readers.

    ``.file_glob`` is what DuckDB's ``read_parquet`` takes, ``.path`` the version directory,
    ``.read()`` the rows as Arrow. The version never changes under a reader: a new load makes a
    new directory."""
    if isinstance(dataset, str):
        dataset = find(dataset)
    current = dataset.current_version
    if current is None:
        raise CatalogError(f"dataset {dataset.slug!r} has no data yet: load a version")
    return LakeVersion.open(current.lake_dir())


def compare_versions(
    dataset: Dataset | str, old: int, new: int, key: Sequence[str] | None = None
) -> versions.Comparison:
    try:
        return versions.compare(version(dataset, old), version(dataset, new), key=key)
    except versions.CompareFailed as exc:
        raise CatalogError(str(exc)) from None


def assess_quality(
    dataset: Dataset | str, number: int | None = None, *, user=None
) -> quality.QualityRun:
    """Measure a version (the current one by default) against the dataset's active quality
    rules; see :mod:`catalog.quality` for what each dimension measures."""
    if isinstance(dataset, str):
        dataset = find(dataset)
    if number is None:
        target = dataset.current_version
        if target is None:
            raise CatalogError(f"dataset {dataset.slug!r} has no data yet: load a version")
    else:
        target = version(dataset, number)
    if not dataset.quality_rules.filter(active=True).exists():
        raise CatalogError(f"dataset {dataset.slug!r} has no active quality rule to measure")
    try:
        return quality.assess(target, user=user)
    except quality.QualityError as exc:
        raise CatalogError(str(exc)) from None


def classify(dataset: Dataset | str, number: int | None = None, *, user=None):
    """Find the personal-data columns of a version (the current one by default), tag them and
    propose the dataset's grade; the grade itself is set by a person (see :mod:`.classify`)."""
    if isinstance(dataset, str):
        dataset = find(dataset)
    chosen = version(dataset, number) if number is not None else dataset.current_version
    if chosen is None:
        raise CatalogError(f"dataset {dataset.slug!r} has no version yet")
    return classifying.apply(chosen, user=user)


# ------------------------------------------------------------------------------ sharing
# Sharing between departments; the rules are written once in :mod:`catalog.sharing`. Refusals
# raise ``sharing.SharingError`` (bad input) or its ``sharing.AccessRefused`` (not allowed).


def request_dataset(dataset: Dataset | str, *, user, columns, purpose: str, starts_on, ends_on):
    """Ask, for the user's department, to read columns of another department's dataset."""
    from civicpulse.catalog import sharing

    if isinstance(dataset, str):
        dataset = find(dataset)
    return sharing.request_access(
        dataset, user=user, columns=columns, purpose=purpose, starts_on=starts_on, ends_on=ends_on
    )


def read_rows(dataset: Dataset | str, *, user, columns=None, filters=None, limit=100, offset=0):
    """A page of a dataset's current rows as the user's department may see them (audited)."""
    from civicpulse.catalog import sharing

    if isinstance(dataset, str):
        dataset = find(dataset)
    return sharing.read(
        dataset, user=user, columns=columns, filters=filters, limit=limit, offset=offset
    )


def dataset_usage(dataset: Dataset | str) -> list[dict]:
    """Reads of a dataset per department per month: reads, rows, last read."""
    from civicpulse.catalog import sharing

    if isinstance(dataset, str):
        dataset = find(dataset)
    return sharing.usage(dataset)


# --------------------------------------------------------------------------- data standards


def seed_standards(*, user=None) -> dict[str, int]:
    """Write the standard code lists and data elements (idempotent; see :mod:`.standards`)."""
    from civicpulse.catalog import standards

    return standards.seed(user=user)


def data_elements():
    from civicpulse.catalog import standards

    return standards.elements()


def map_column(dataset: Dataset | str, column: str, element, required: bool = False, *, user=None):
    """Map a dataset's column onto a data element; ``.warnings`` says what to know (e.g. the
    current version has no such column yet)."""
    from civicpulse.catalog import standards

    if isinstance(dataset, str):
        dataset = find(dataset)
    try:
        return standards.map_column(dataset, column, element, required, user=user)
    except standards.StandardsError as exc:
        raise CatalogError(str(exc)) from None


def check_conformance(dataset: Dataset | str, number: int | None = None, *, user=None):
    """Check a version (the current one by default) against the dataset's column mappings and
    store the report (a ConformanceReport)."""
    from civicpulse.catalog import standards

    if isinstance(dataset, str):
        dataset = find(dataset)
    chosen = version(dataset, number) if number is not None else dataset.current_version
    if chosen is None:
        raise CatalogError(f"dataset {dataset.slug!r} has no data yet: load a version")
    try:
        return standards.check_version(chosen, user=user)
    except standards.StandardsError as exc:
        raise CatalogError(str(exc)) from None


# ------------------------------------------------------------------------------ open data


def draft_release(dataset: Dataset | str, *, check: bool = True, **options):
    """Prepare an open-data release (see :func:`catalog.opendata.draft` for the options) and,
    by default, run its de-identification check at once; returns the OpenRelease."""
    from civicpulse.catalog import opendata

    if isinstance(dataset, str):
        dataset = find(dataset)
    try:
        release = opendata.draft(dataset, **options)
        if check:
            opendata.check(release, user=options.get("user"))
    except opendata.ReleaseError as exc:
        raise CatalogError(str(exc)) from None
    return release


def approve_and_publish_release(release, user):
    """The second person's approval of a checked release, and its publication on the portal."""
    from civicpulse.catalog import opendata

    try:
        return opendata.publish(opendata.approve(release, user), user)
    except opendata.ReleaseError as exc:
        raise CatalogError(str(exc)) from None


def published_releases(dataset: Dataset | str | None = None):
    """The releases the portal serves (of one dataset), newest first: what the CKAN API lists."""
    from civicpulse.catalog import opendata

    if isinstance(dataset, str):
        dataset = find(dataset)
    return opendata.published(dataset)


def open_datasets():
    """Datasets with at least one published release (annotated ``last_published``)."""
    from civicpulse.catalog import opendata

    return opendata.open_datasets()


# ------------------------------------------------------------------------------ demo
# Steps the demo city's data hub takes (and a page or the CLI may take later) that had no
# service yet: defining a quality rule, a person grading a dataset, deciding a share request,
# and theme groups for the portal.


def define_quality_rule(
    dataset: Dataset | str,
    dimension: str,
    columns: Sequence[str] | str = (),
    parameters: dict | None = None,
    *,
    name: str = "",
    weight: float = 1.0,
    threshold: float = 0.95,
    user=None,
):
    """Add a quality rule to a dataset (see :func:`catalog.quality.define_rule`)."""
    if isinstance(dataset, str):
        dataset = find(dataset)
    try:
        return quality.define_rule(
            dataset, dimension, columns, parameters,
            name=name, weight=weight, threshold=threshold, user=user,
        )  # fmt: skip
    except quality.QualityError as exc:
        raise CatalogError(str(exc)) from None


def set_grade(dataset: Dataset | str, grade: str, *, user, reason: str = "") -> Dataset:
    """A person grades a dataset (classification only proposes): the owner department's staff
    or a data admin, audited with the old and new grade. Sharing masks by the new grade at the
    next read."""
    from civicpulse.catalog import sharing

    if isinstance(dataset, str):
        dataset = find(dataset)
    if grade not in Dataset.Grade.values:
        raise CatalogError(f"unknown grade {grade!r}: use one of {', '.join(Dataset.Grade.values)}")
    if not sharing.can_decide(user, dataset):
        raise CatalogError(
            f"only staff of {dataset.owner.code} (the owner) or a data admin grade {dataset.slug!r}"
        )
    with transaction.atomic():
        before = dataset.grade
        dataset.grade = grade
        dataset.save(update_fields=["grade", "updated_at"])
        audit.record(
            user,
            "catalog.dataset_graded",
            dataset,
            detail={"from": before, "to": grade, "reason": (reason or "")[:2000]},
        )
    return dataset


def approve_share_request(share_request, *, user, columns=None, note: str = ""):
    """The owner's (or a data admin's) approval of a pending request; returns the ShareGrant
    (see :func:`catalog.sharing.approve`)."""
    from civicpulse.catalog import sharing

    return sharing.approve(share_request, user=user, columns=columns, note=note)


def group_datasets(
    name: str, *, title: str, title_en: str = "", description: str = "", datasets=(), user=None
):
    """Make (or update) a theme group of the portal and add datasets to it; returns the
    DatasetGroup. Datasets already in the group stay."""
    from civicpulse.catalog.models import DatasetGroup

    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name or ""):
        raise CatalogError(f"group name {name!r} must be 1-64 lowercase letters, digits, - or _")
    if not (title or "").strip():
        raise CatalogError("a group needs a title")
    members = [find(d) if isinstance(d, str) else d for d in datasets]
    with transaction.atomic():
        group, _created = DatasetGroup.objects.update_or_create(
            name=name,
            defaults={"title": title.strip(), "title_en": title_en.strip(),
                      "description": description},
        )  # fmt: skip
        group.datasets.add(*members)
        audit.record(
            user, "catalog.group_saved", group, detail={"datasets": [d.slug for d in members]}
        )
    return group


# --------------------------------------------------------------------- lineage and life cycle
# Lineage is recorded by the jobs that move data (see :mod:`catalog.lineage`); retention
# archives and deletes old versions as each dataset's policy says (:mod:`catalog.retention`).


def record_lineage(source: tuple, target: tuple, process: str, detail: dict | None = None):
    """Record that data of ``source`` went into ``target`` by ``process`` (a job's name); each
    end is ``(kind, ref, label)`` of :class:`LineageNode`. Keep ``detail`` to counts and
    numbers: never personal data. Returns the LineageEdge."""
    from civicpulse.catalog import lineage

    return lineage.record(source, target, process, detail)


def lineage_of(dataset: Dataset | str):
    """The lineage around a dataset's versions: ``.nodes`` and ``.links`` (a Graph)."""
    from civicpulse.catalog import lineage

    if isinstance(dataset, str):
        dataset = find(dataset)
    return lineage.graph_for(dataset)


def set_retention(
    dataset: Dataset | str,
    *,
    keep_versions: int,
    archive_after_days: int | None = None,
    delete_after_days: int | None = None,
    user=None,
):
    """Set how long the dataset's superseded versions are kept (a RetentionPolicy)."""
    from civicpulse.catalog import retention

    if isinstance(dataset, str):
        dataset = find(dataset)
    try:
        return retention.set_policy(
            dataset,
            keep_versions=keep_versions,
            archive_after_days=archive_after_days,
            delete_after_days=delete_after_days,
            user=user,
        )
    except retention.RetentionError as exc:
        raise CatalogError(str(exc)) from None


def apply_retention(now=None, *, dataset: Dataset | str | None = None, user=None) -> dict:
    """Archive and delete old versions as the policies say; the summary of what was done."""
    from civicpulse.catalog import retention

    if isinstance(dataset, str):
        dataset = find(dataset)
    return retention.apply(now, dataset=dataset, user=user)
