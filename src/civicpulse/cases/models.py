"""The service catalog and the citizen request (a case) as the one window records it."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils.translation import gettext_lazy as _

from civicpulse.core.models import Area, Bilingual, Department


class Service(Bilingual):
    """A kind of request the city handles, owned by one department, with a deadline."""

    class Type(models.TextChoices):  # Open311's service types
        REALTIME = "realtime", _("realtime")
        BATCH = "batch", _("batch")
        BLACKBOX = "blackbox", _("blackbox")

    code = models.CharField(_("code"), max_length=32, unique=True)
    group = models.CharField(_("group"), max_length=64)
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="services")
    sla_working_days = models.PositiveSmallIntegerField(_("deadline (working days)"), default=5)
    description = models.TextField(_("description"), blank=True)
    keywords = models.CharField(_("keywords"), max_length=200, blank=True)
    type = models.CharField(_("type"), max_length=10, choices=Type.choices, default="realtime")
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("service")
        verbose_name_plural = _("services")


class ServiceAttribute(models.Model):
    """An extra question of a service (an Open311 attribute)."""

    class Datatype(models.TextChoices):
        STRING = "string", _("string")
        NUMBER = "number", _("number")
        DATETIME = "datetime", _("date and time")
        TEXT = "text", _("text")
        SINGLE = "singlevaluelist", _("one of a list")
        MULTI = "multivaluelist", _("several of a list")

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="attributes")
    code = models.CharField(_("code"), max_length=64)
    datatype = models.CharField(_("datatype"), max_length=16, choices=Datatype.choices)
    required = models.BooleanField(_("required"), default=False)
    variable = models.BooleanField(_("asked of the reporter"), default=True)
    order = models.PositiveSmallIntegerField(_("order"), default=0)
    description = models.CharField(_("question"), max_length=300)
    datatype_description = models.CharField(_("answer hint"), max_length=300, blank=True)
    values = models.JSONField(_("allowed values"), default=list, blank=True)  # [{"key","name"}]

    class Meta:
        ordering = ["service", "order", "code"]
        constraints = [
            models.UniqueConstraint(fields=["service", "code"], name="one_attribute_code")
        ]

    def __str__(self) -> str:
        return f"{self.service.code}.{self.code}"


class Reporter(models.Model):
    """Whoever told the city: contact details kept to answer them, shown masked to staff."""

    name = models.CharField(_("name"), max_length=100, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    device_id = models.CharField(_("device"), max_length=100, blank=True)

    def __str__(self) -> str:
        return f"reporter {self.pk}"


def _token() -> str:
    return secrets.token_urlsafe(16)


class Case(models.Model):
    class Channel(models.TextChoices):
        HOTLINE = "hotline", _("hotline")
        WEB = "web", _("web")
        APP = "app", _("app")
        GRID = "grid", _("grid worker")
        OPEN311 = "open311", _("Open311 API")
        IMPORT = "import", _("bulk import")

    class Status(models.TextChoices):
        NEW = "new", _("new")
        ACCEPTED = "accepted", _("accepted")
        DISPATCHED = "dispatched", _("dispatched")
        IN_PROGRESS = "in_progress", _("in progress")
        RESOLVED = "resolved", _("resolved")
        CLOSED = "closed", _("closed")

    OPEN_STATUSES = ("new", "accepted", "dispatched", "in_progress")

    tracking_no = models.CharField(_("tracking number"), max_length=32, unique=True)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="cases")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="cases")
    area = models.ForeignKey(Area, on_delete=models.PROTECT, related_name="cases")
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"))
    address = models.CharField(_("address"), max_length=300, blank=True)
    lon = models.FloatField(null=True, blank=True)
    lat = models.FloatField(null=True, blank=True)
    attributes = models.JSONField(_("answers"), default=dict, blank=True)
    media_url = models.URLField(_("media URL"), max_length=500, blank=True)
    photo = models.FileField(_("photo"), upload_to="case-photos/%Y/%m/", blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default="new")
    created_at = models.DateTimeField(_("received"), db_index=True)
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True, db_index=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    satisfaction = models.PositiveSmallIntegerField(_("satisfaction (1-5)"), null=True, blank=True)
    needs_triage = models.BooleanField(_("in the triage queue"), default=False, db_index=True)
    routing_confidence = models.FloatField(null=True, blank=True)
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="duplicates"
    )
    reporters = models.ManyToManyField(Reporter, blank=True, related_name="cases")
    token = models.CharField(max_length=32, unique=True, default=_token, editable=False)
    source = models.CharField(_("import source"), max_length=64, blank=True)
    external_id = models.CharField(_("id at the source"), max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["department", "status"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~models.Q(external_id=""),
                name="one_case_per_source_id",
            )
        ]
        verbose_name = _("case")
        verbose_name_plural = _("cases")

    def __str__(self) -> str:
        return f"{self.tracking_no} {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class CaseEvent(models.Model):
    """One step of a case's history: who did what, when, and why."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=32)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.case_id} {self.action} by {self.actor}"


class Feedback(models.Model):
    """A reporter's rating of how their request was handled."""

    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="feedback")
    rating = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    at = models.DateTimeField()
    reopened = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.case_id}: {self.rating}"


class Notification(models.Model):
    """A message owed to a reporter (resolution, feedback link); sent by the worker."""

    reporter = models.ForeignKey(Reporter, on_delete=models.CASCADE, related_name="notifications")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=32)
    body = models.TextField()
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reporter", "case", "kind"], name="one_notice_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.kind} to reporter {self.reporter_id}"


class Holiday(models.Model):
    """A day off that is not a weekend, or a weekend day that is worked (调休)."""

    date = models.DateField(unique=True)
    name = models.CharField(max_length=64)
    is_workday = models.BooleanField(default=False)

    class Meta:
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}{' (workday)' if self.is_workday else ''}"


class RoutingCorrection(models.Model):
    """An operator's correction of the router's suggestion: training data that sticks."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="corrections")
    suggested = models.CharField(max_length=32, blank=True)
    corrected = models.CharField(max_length=32)
    actor = models.CharField(max_length=150)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.case_id}: {self.suggested} -> {self.corrected}"


class ImportBatch(models.Model):
    """One run of `civicpulse import cases`: what came in, what was kept, what was refused."""

    source = models.CharField(max_length=64)
    file = models.CharField(max_length=500)
    mapping = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    rows_read = models.PositiveIntegerField(default=0)
    rows_imported = models.PositiveIntegerField(default=0)
    rows_skipped = models.PositiveIntegerField(default=0)  # already imported before
    rows_quarantined = models.PositiveIntegerField(default=0)
    committed = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"import {self.pk} of {self.file}"


class QuarantinedRow(models.Model):
    """A row an import refused, with where it was and why."""

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="quarantine")
    line = models.PositiveIntegerField()
    field = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=300)
    raw = models.JSONField(default=dict)

    class Meta:
        ordering = ["batch", "line"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def _api_key() -> str:
    return secrets.token_urlsafe(32)


class ApiKey(models.Model):
    """A key an Open311 client must send to create requests."""

    key = models.CharField(max_length=64, unique=True, default=_api_key)
    name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
