"""Datasets a department registers, and the immutable versions its loads leave in the lake.

A :class:`Dataset` is the catalog entry (what, whose, how often, how sensitive); each load of its
data is a :class:`DatasetVersion`: one Parquet file in its own lake directory, never rewritten,
described by its row count, checksum and schema, with a profile per column
(:class:`DatasetColumn`). The dataset points at its current version; a failed load never moves
that pointer.

Versions are facts about what was loaded, so their data fields cannot change once saved; only
their life-cycle status (and, for columns, the tags later steps attach) may. ``save`` and the
query set's ``update`` enforce it; rows are never deleted (a deleted version keeps its row with
status ``deleted`` after its files are removed).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from civicpulse.core.models import Department

SLUG_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
# The fixed pages under /catalog/ whose first segment a dataset's slug would shadow (a test keeps
# this in step with catalog/urls.py).
RESERVED_SLUGS = frozenset({"sharing", "releases"})


class ImmutableRecord(PermissionError):
    """An attempt to change or delete what a version recorded."""


class Dataset(models.Model):
    """A department's dataset in the catalog."""

    class Frequency(models.TextChoices):
        DAILY = "daily", _("daily")
        WEEKLY = "weekly", _("weekly")
        MONTHLY = "monthly", _("monthly")
        QUARTERLY = "quarterly", _("quarterly")
        YEARLY = "yearly", _("yearly")
        IRREGULAR = "irregular", _("irregular")

    class Grade(models.TextChoices):  # classification and grading of government data
        CORE = "core", _("core (核心)")
        IMPORTANT = "important", _("important (重要)")
        GENERAL = "general", _("general (一般)")

    class ShareType(models.TextChoices):
        UNCONDITIONAL = "unconditional", _("shared unconditionally (无条件共享)")
        CONDITIONAL = "conditional", _("shared on conditions (有条件共享)")
        NOT_SHARED = "not_shared", _("not shared (不予共享)")

    slug = models.CharField(
        _("identifier"),
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(
                f"^{SLUG_PATTERN}$",
                _("Use lowercase letters, digits, '-' and '_', starting with a letter or digit."),
            )
        ],
    )
    title = models.CharField(_("title"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    owner = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="datasets",
        verbose_name=_("owner department"),
    )
    update_frequency = models.CharField(
        _("update frequency"),
        max_length=10,
        choices=Frequency.choices,
        default=Frequency.IRREGULAR,
    )
    tags = models.JSONField(_("tags"), default=list, blank=True)
    # Conditional sharing is the safe default: nothing leaves the owner without an approval
    # until someone grades the dataset.
    grade = models.CharField(_("grade"), max_length=10, choices=Grade.choices, default="general")
    share_type = models.CharField(
        _("share type"), max_length=16, choices=ShareType.choices, default="conditional"
    )
    current_version = models.ForeignKey(
        "DatasetVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("current version"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("registered by"),
    )
    created_at = models.DateTimeField(_("registered at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = _("dataset")
        verbose_name_plural = _("datasets")

    def __str__(self) -> str:
        return f"{self.slug}: {self.title}"


class _GuardedQuerySet(models.QuerySet):
    """Bulk ``update`` and ``delete`` would bypass ``save``: allow only the mutable fields."""

    def update(self, **kwargs):
        frozen = sorted(set(kwargs) - set(self.model.MUTABLE_FIELDS))
        if frozen:
            raise ImmutableRecord(
                f"{self.model._meta.verbose_name} fields {', '.join(frozen)} cannot change "
                "once saved"
            )
        return super().update(**kwargs)

    def delete(self):
        raise ImmutableRecord(f"{self.model._meta.verbose_name_plural} are never deleted")


def _frozen_names(obj: models.Model, update_fields=None) -> list[str]:
    """Attribute names of ``obj``'s fields that may not change (of ``update_fields``, if given)."""
    return [
        f.attname
        for f in obj._meta.concrete_fields
        if not f.primary_key
        and f.name not in obj.MUTABLE_FIELDS
        and (update_fields is None or f.name in update_fields or f.attname in update_fields)
    ]


class _Immutable(models.Model):
    """A row whose fields, except ``MUTABLE_FIELDS``, are fixed once it is saved."""

    MUTABLE_FIELDS: tuple[str, ...] = ()

    objects = _GuardedQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            update_fields = kwargs.get("update_fields")
            names = _frozen_names(self, update_fields)
            stored = type(self).objects.filter(pk=self.pk).values(*names).first()
            if stored is None:
                raise ImmutableRecord(f"{self._meta.verbose_name} {self.pk} is not stored")
            changed = [n for n in names if stored[n] != getattr(self, n)]
            if changed:
                raise ImmutableRecord(
                    f"{self._meta.verbose_name} {self.pk} is immutable: {', '.join(changed)} "
                    "cannot change once saved (load a new version instead)"
                )
            if update_fields is None:
                kwargs["update_fields"] = [
                    f for f in self.MUTABLE_FIELDS if not self._meta.get_field(f).primary_key
                ]
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableRecord(f"{self._meta.verbose_name} {self.pk} is never deleted")


class DatasetVersion(_Immutable):
    """One load of a dataset: an immutable Parquet file in the lake and what it holds.

    ``checksum`` is SHA-256 over the column names and the rows in their order, each value in its
    canonical text form (see ``catalog.loading.checksum``): the same rows give the same checksum
    whether they came from CSV, Excel, JSON, Parquet or a database.
    """

    class Kind(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "Excel (xlsx)"
        JSON = "json", "JSON"
        PARQUET = "parquet", "Parquet"
        SQL = "sql", "SQL"

    class Status(models.TextChoices):
        CURRENT = "current", _("current")
        SUPERSEDED = "superseded", _("superseded")
        ARCHIVED = "archived", _("archived")
        DELETED = "deleted", _("deleted")

    MUTABLE_FIELDS = ("status",)

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    created_at = models.DateTimeField(_("loaded at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("loaded by"),
    )
    source_kind = models.CharField(_("source kind"), max_length=8, choices=Kind.choices)
    source_name = models.CharField(_("source"), max_length=500)  # never holds a password
    source_options = models.JSONField(_("source options"), default=dict, blank=True)
    encoding = models.CharField(_("detected encoding"), max_length=32, blank=True)
    row_count = models.BigIntegerField(_("rows"))
    checksum = models.CharField(_("checksum (SHA-256)"), max_length=64, db_index=True)
    schema = models.JSONField(_("schema"), default=list)  # [{name, type, nullable}]
    lake_path = models.CharField(_("lake location"), max_length=300)  # relative to the lake
    size_bytes = models.BigIntegerField(_("size in the lake (bytes)"), default=0)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.CURRENT
    )

    class Meta:
        ordering = ["dataset", "number"]
        verbose_name = _("dataset version")
        verbose_name_plural = _("dataset versions")
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="one_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.dataset.slug} v{self.number}"

    def lake_dir(self):
        """The version's directory (``lake/catalog/<slug>/v-...``)."""
        return settings.CONFIG.lake_dir / self.lake_path

    def data_glob(self) -> str:
        """Its Parquet file(s), as DuckDB's ``read_parquet`` takes them."""
        return f"{self.lake_dir().as_posix()}/part-*.parquet"


class DatasetColumn(_Immutable):
    """One column of a version, with the profile taken when it was loaded.

    Later steps attach meaning without touching the profile: the standard data element a column
    maps to (standards step) and the personal-data tags detected in it (classification step).
    """

    # the tags, and the profile's values once the tags say they are personal (masked in place)
    MUTABLE_FIELDS = ("personal_tags", "samples", "min_value", "max_value")

    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="columns")
    position = models.PositiveIntegerField(_("position"))
    name = models.CharField(_("name"), max_length=255)
    type = models.CharField(_("type"), max_length=200)
    nullable = models.BooleanField(_("has empty values"), default=True)
    null_count = models.BigIntegerField(_("empty values"), default=0)
    distinct_count = models.BigIntegerField(_("distinct values (estimate)"), default=0)
    min_value = models.TextField(_("smallest value"), blank=True)
    max_value = models.TextField(_("largest value"), blank=True)
    samples = models.JSONField(_("sample values"), default=list, blank=True)
    personal_tags = models.JSONField(_("personal data tags"), default=list, blank=True)

    class Meta:
        ordering = ["version", "position"]
        verbose_name = _("dataset column")
        verbose_name_plural = _("dataset columns")
        constraints = [
            models.UniqueConstraint(fields=["version", "position"], name="one_column_position"),
            models.UniqueConstraint(fields=["version", "name"], name="one_column_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class QualityRule(models.Model):
    """One data-quality rule of a dataset, measured on each version (see ``catalog.quality``).

    Rules are edited and switched off (``active``), never deleted once they have results: each
    result keeps a copy of the rule as it was measured, so editing a rule does not rewrite the
    history of the versions measured before.
    """

    class Dimension(models.TextChoices):
        COMPLETENESS = "completeness", _("completeness")
        VALIDITY = "validity", _("validity")
        UNIQUENESS = "uniqueness", _("uniqueness")
        TIMELINESS = "timeliness", _("timeliness")
        CONSISTENCY = "consistency", _("consistency")

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="quality_rules")
    name = models.CharField(_("name"), max_length=200, blank=True)
    dimension = models.CharField(_("dimension"), max_length=12, choices=Dimension.choices)
    columns = models.JSONField(_("columns"), default=list, blank=True)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    weight = models.FloatField(_("weight"), default=1.0)
    threshold = models.FloatField(_("threshold"), default=0.95)
    active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("defined by"),
    )
    created_at = models.DateTimeField(_("defined at"), default=timezone.now)

    class Meta:
        ordering = ["dataset", "id"]
        verbose_name = _("quality rule")
        verbose_name_plural = _("quality rules")

    def __str__(self) -> str:
        return self.name or f"{self.dimension}({', '.join(self.columns)})"


class QualityRun(_Immutable):
    """One measurement of a version against its dataset's active rules, with the scores.

    Every run is kept (history by run time); the version's score is its latest run's. ``score``
    is the weighted mean of the rules' scores and ``dimension_scores`` the same per dimension;
    rules that could not be measured (an error result) are left out of both, and counted in
    ``errors``. ``score`` is null when no rule could be measured.
    """

    version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, related_name="quality_runs"
    )
    run_at = models.DateTimeField(_("measured at"), default=timezone.now)
    run_by = models.CharField(_("measured by"), max_length=150, blank=True)
    score = models.FloatField(_("score"), null=True, blank=True)
    dimension_scores = models.JSONField(_("scores by dimension"), default=dict, blank=True)
    rules = models.PositiveIntegerField(_("rules measured"), default=0)
    errors = models.PositiveIntegerField(_("rules in error"), default=0)

    class Meta:
        ordering = ["version", "run_at", "id"]
        verbose_name = _("quality run")
        verbose_name_plural = _("quality runs")

    def __str__(self) -> str:
        return f"{self.version} quality {self.run_at:%Y-%m-%d %H:%M}"


class QualityResult(_Immutable):
    """What one rule measured in one run: counts, score, and a few violating values.

    ``score`` is null and ``error`` says why when the rule could not be measured on the version
    (a column it names is missing, another dataset has no data...). ``examples`` hold at most a
    few distinct violating values, masked when the column is tagged as personal data.
    """

    run = models.ForeignKey(QualityRun, on_delete=models.PROTECT, related_name="results")
    rule = models.ForeignKey(QualityRule, on_delete=models.PROTECT, related_name="results")
    dimension = models.CharField(
        _("dimension"), max_length=12, choices=QualityRule.Dimension.choices
    )
    rule_snapshot = models.JSONField(_("rule as measured"), default=dict)
    passed = models.BigIntegerField(_("passed"), default=0)
    failed = models.BigIntegerField(_("failed"), default=0)
    score = models.FloatField(_("score"), null=True, blank=True)
    met_threshold = models.BooleanField(_("met its threshold"), default=False)
    error = models.TextField(_("error"), blank=True)
    examples = models.JSONField(_("examples of violations"), default=list, blank=True)
    measured_at = models.DateTimeField(_("measured at"), default=timezone.now)

    class Meta:
        ordering = ["run", "rule"]
        verbose_name = _("quality result")
        verbose_name_plural = _("quality results")
        constraints = [
            models.UniqueConstraint(fields=["run", "rule"], name="one_result_per_rule_and_run")
        ]

    def __str__(self) -> str:
        return f"{self.rule} on {self.run.version}: {self.score}"


# ------------------------------------------------------------------------------ data standards


class CodeList(models.Model):
    """A list of allowed codes and their meanings (gender, administrative divisions, industry
    classes), usually from a national standard; data elements refer to it."""

    identifier = models.SlugField(_("identifier"), max_length=64, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    standard = models.CharField(_("standard"), max_length=100, blank=True)  # "GB/T 2261.1-2003"
    description = models.TextField(_("description"), blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["identifier"]
        verbose_name = _("code list")
        verbose_name_plural = _("code lists")

    def __str__(self) -> str:
        return f"{self.identifier}: {self.name_zh}"


class CodeItem(models.Model):
    code_list = models.ForeignKey(CodeList, on_delete=models.CASCADE, related_name="items")
    code = models.CharField(_("code"), max_length=32)
    name_zh = models.CharField(_("name (Chinese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    parent_code = models.CharField(_("parent code"), max_length=32, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["code_list", "position", "code"]
        constraints = [
            models.UniqueConstraint(fields=["code_list", "code"], name="one_code_per_list")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name_zh}"


class DataElement(models.Model):
    """A data element of the city's standard: what a column means and which values it may hold
    (type, format, length, a code list or a named identifier check)."""

    class Type(models.TextChoices):
        STRING = "string", _("text")
        INTEGER = "integer", _("integer")
        DECIMAL = "decimal", _("decimal")
        DATE = "date", _("date")
        DATETIME = "datetime", _("date and time")
        BOOLEAN = "boolean", _("yes/no")

    identifier = models.SlugField(_("identifier"), max_length=64, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    data_type = models.CharField(_("type"), max_length=10, choices=Type.choices)
    format = models.CharField(_("format (regular expression)"), max_length=300, blank=True)
    max_length = models.PositiveIntegerField(_("maximum length"), null=True, blank=True)
    code_list = models.ForeignKey(
        CodeList,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="elements",
        verbose_name=_("code list"),
    )
    # a named check of identity.services: resident_id, credit_code, mobile
    identifier_check = models.CharField(_("identifier check"), max_length=32, blank=True)
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("defined at"), default=timezone.now)

    class Meta:
        ordering = ["identifier"]
        verbose_name = _("data element")
        verbose_name_plural = _("data elements")

    def __str__(self) -> str:
        return f"{self.identifier}: {self.name_zh}"


class ColumnMapping(models.Model):
    """The dataset's schema against the standard: its column ``column`` holds ``element``
    (for every version; a version without the column is reported, not failed silently)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="mappings")
    column = models.CharField(_("column"), max_length=255)
    element = models.ForeignKey(
        DataElement,
        on_delete=models.PROTECT,
        related_name="mappings",
        verbose_name=_("data element"),
    )
    required = models.BooleanField(_("required"), default=False)

    class Meta:
        ordering = ["dataset", "column"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "column"], name="one_mapping_per_column")
        ]

    def __str__(self) -> str:
        return f"{self.dataset.slug}.{self.column} → {self.element.identifier}"


class ConformanceReport(_Immutable):
    """A version checked against its dataset's mappings: per column, values checked, violations
    by kind and a few examples (masked for personal columns). Kept as a fact of the version."""

    version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, related_name="conformance_reports"
    )
    created_at = models.DateTimeField(_("checked at"), default=timezone.now)
    created_by = models.CharField(_("checked by"), max_length=150, blank=True)
    columns = models.JSONField(_("report by column"), default=list)
    violations = models.BigIntegerField(_("violations"), default=0)

    class Meta:
        ordering = ["version", "-created_at"]
        verbose_name = _("conformance report")
        verbose_name_plural = _("conformance reports")

    def __str__(self) -> str:
        return f"{self.version}: {self.violations} violations"


# ------------------------------------------------------------------------------ sharing


class ShareRequest(models.Model):
    """A department asks for another department's dataset: what for, which columns, for how
    long. The owner department decides; an approval makes a :class:`ShareGrant`."""

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for the owner")
        APPROVED = "approved", _("approved")
        DENIED = "denied", _("denied")
        WITHDRAWN = "withdrawn", _("withdrawn")

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="share_requests")
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="share_requests",
        verbose_name=_("requesting department"),
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    purpose = models.TextField(_("purpose"))
    columns = models.JSONField(_("columns"), default=list)
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("until"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)
    created_at = models.DateTimeField(_("requested at"), default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("share request")
        verbose_name_plural = _("share requests")

    def __str__(self) -> str:
        return f"{self.department.code} → {self.dataset.slug} ({self.status})"


class ShareGrant(models.Model):
    """Access a department holds to a dataset: these columns, from ``starts_at`` until
    ``expires_at`` (it lapses by itself) unless revoked earlier; ``masking`` says how each
    granted column is shown (by the dataset's grade and the columns' personal tags)."""

    request = models.OneToOneField(ShareRequest, on_delete=models.PROTECT, related_name="grant")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="grants")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="grants")
    columns = models.JSONField(_("columns"), default=list)
    masking = models.JSONField(_("masking by column"), default=dict, blank=True)
    starts_at = models.DateTimeField(_("from"))
    expires_at = models.DateTimeField(_("until"), db_index=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("revoked by"),
    )
    revoke_reason = models.TextField(_("reason for revoking"), blank=True)

    class Meta:
        ordering = ["-starts_at"]
        verbose_name = _("share grant")
        verbose_name_plural = _("share grants")

    def __str__(self) -> str:
        return f"{self.department.code} may read {self.dataset.slug} until {self.expires_at}"

    def is_active(self, at=None) -> bool:
        at = at or timezone.now()
        return self.revoked_at is None and self.starts_at <= at < self.expires_at


class DatasetRead(models.Model):
    """One read of a dataset through the hub (a page of rows, an export, an API call): the
    usage statistics, beside the audit chain's entry for the same read."""

    class Channel(models.TextChoices):
        PAGE = "page", _("page")
        API = "api", _("API")
        EXPORT = "export", _("export")
        OPEN = "open", _("open data")

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="reads")
    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="reads")
    grant = models.ForeignKey(
        ShareGrant, null=True, blank=True, on_delete=models.PROTECT, related_name="reads"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    rows = models.BigIntegerField(_("rows returned"), default=0)
    columns = models.JSONField(_("columns"), default=list)
    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("dataset read")
        verbose_name_plural = _("dataset reads")

    def __str__(self) -> str:
        return f"{self.dataset.slug} read by {self.department_id or self.user_id} at {self.at}"


# ------------------------------------------------------------------------------ open data


class DatasetGroup(models.Model):
    """A theme of the open-data portal (CKAN's groups): transport, environment, ..."""

    name = models.SlugField(_("name"), max_length=64, unique=True)
    title = models.CharField(_("title"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200, blank=True)
    description = models.TextField(_("description"), blank=True)
    datasets = models.ManyToManyField(Dataset, related_name="groups", blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("open-data group")
        verbose_name_plural = _("open-data groups")

    def __str__(self) -> str:
        return self.name


class OpenRelease(models.Model):
    """A de-identified extract of one version published to the open-data portal.

    Made as a draft (which columns, which quasi-identifiers, which k), it is checked — no direct
    identifier among the columns, every combination of quasi-identifier values shared by at
    least ``k`` rows — and refused with the reasons and the offending combinations, or written to
    its own Parquet in the lake. A second person approves it before it is published; a
    published release can be withdrawn (its files stay for the record, the portal stops
    serving them). In the CKAN API a dataset with published releases is a package, and each
    published release is a resource (``resource_id``)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        REFUSED = "refused", _("refused by the check")
        CHECKED = "checked", _("checked, waiting for approval")
        PUBLISHED = "published", _("published")
        WITHDRAWN = "withdrawn", _("withdrawn")

    class License(models.TextChoices):
        CC_BY = "cc-by", "CC BY 4.0"
        CC_ZERO = "cc-zero", "CC0 1.0"
        ODC_BY = "odc-by", "ODC-BY 1.0"
        GOV_OPEN = "gov-open", _("government open data licence")

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="open_releases")
    version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, related_name="open_releases"
    )
    resource_id = models.UUIDField(_("resource id"), default=uuid.uuid4, unique=True)
    title = models.CharField(_("title"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    license = models.CharField(
        _("licence"), max_length=10, choices=License.choices, default=License.CC_BY
    )
    columns = models.JSONField(_("published columns"), default=list)
    quasi_identifiers = models.JSONField(_("quasi-identifiers"), default=list, blank=True)
    k = models.PositiveSmallIntegerField(_("k (k-anonymity)"), default=5)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.DRAFT
    )
    check_report = models.JSONField(_("de-identification check"), default=dict, blank=True)
    lake_path = models.CharField(_("lake location"), max_length=300, blank=True)
    row_count = models.BigIntegerField(_("rows"), default=0)
    size_bytes = models.BigIntegerField(_("size (bytes)"), default=0)
    checksum = models.CharField(_("checksum (SHA-256)"), max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("prepared by"),
    )
    created_at = models.DateTimeField(_("prepared at"), default=timezone.now)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("approved by"),
    )
    published_at = models.DateTimeField(_("published at"), null=True, blank=True, db_index=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    withdraw_reason = models.TextField(_("reason for withdrawing"), blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["dataset", "-created_at"]
        verbose_name = _("open-data release")
        verbose_name_plural = _("open-data releases")

    def __str__(self) -> str:
        return f"{self.dataset.slug} v{self.version.number}: {self.title} ({self.status})"

    def lake_dir(self):
        return settings.CONFIG.lake_dir / self.lake_path

    def data_glob(self) -> str:
        return f"{self.lake_dir().as_posix()}/part-*.parquet"


# --------------------------------------------------------------------- lineage and life cycle


class LineageNode(models.Model):
    """Something data flows through: a dataset version, a lake table, a file or database a load
    read, an open release. ``kind`` + ``ref`` name it (``dataset_version`` + ``"12"``,
    ``lake_table`` + ``"cases"``, ``source`` + the file name or the URL without its password)."""

    class Kind(models.TextChoices):
        SOURCE = "source", _("source file or database")
        DATASET_VERSION = "dataset_version", _("dataset version")
        LAKE_TABLE = "lake_table", _("lake table")
        STORE_TABLE = "store_table", _("store table")
        OPEN_RELEASE = "open_release", _("open-data release")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    ref = models.CharField(_("reference"), max_length=500)
    label = models.CharField(_("label"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("first seen"), default=timezone.now)

    class Meta:
        ordering = ["kind", "ref"]
        verbose_name = _("lineage node")
        verbose_name_plural = _("lineage nodes")
        constraints = [models.UniqueConstraint(fields=["kind", "ref"], name="one_lineage_node")]

    def __str__(self) -> str:
        return self.label or f"{self.kind}:{self.ref}"


class LineageEdge(models.Model):
    """Data of ``source`` went into ``target`` by ``process`` (a job or a command of the
    platform), at ``at``. Recorded by the platform's own jobs as they run, never typed in."""

    source = models.ForeignKey(LineageNode, on_delete=models.PROTECT, related_name="outputs")
    target = models.ForeignKey(LineageNode, on_delete=models.PROTECT, related_name="inputs")
    process = models.CharField(_("process"), max_length=100)  # "catalog.load", "cockpit.refresh"
    at = models.DateTimeField(_("at"), default=timezone.now, db_index=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("lineage edge")
        verbose_name_plural = _("lineage edges")

    def __str__(self) -> str:
        return f"{self.source} → {self.target} ({self.process})"


class RetentionPolicy(models.Model):
    """How long a dataset's old versions are kept: superseded versions beyond the newest
    ``keep_versions`` are archived after ``archive_after_days`` and deleted (files removed, the
    record kept with status ``deleted``) after ``delete_after_days``. The current version is
    never touched. Applied by a periodic job; every change is audited."""

    dataset = models.OneToOneField(
        Dataset, on_delete=models.CASCADE, related_name="retention", verbose_name=_("dataset")
    )
    keep_versions = models.PositiveIntegerField(_("versions always kept"), default=3)
    archive_after_days = models.PositiveIntegerField(
        _("archive superseded versions after (days)"), null=True, blank=True
    )
    delete_after_days = models.PositiveIntegerField(
        _("delete superseded versions after (days)"), null=True, blank=True
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("retention policy")
        verbose_name_plural = _("retention policies")

    def __str__(self) -> str:
        return f"{self.dataset.slug}: keep {self.keep_versions}"
