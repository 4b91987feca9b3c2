"""The service catalog and the citizen request (a case) as the one window records it."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from civicpulse.core.models import Area, Bilingual, Department


class Service(Bilingual):
    """A kind of request the city handles, owned by one department, with a deadline."""

    code = models.CharField(_("code"), max_length=32, unique=True)
    group = models.CharField(_("group"), max_length=64)
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="services")
    sla_working_days = models.PositiveSmallIntegerField(_("deadline (working days)"), default=5)

    class Meta:
        ordering = ["code"]
        verbose_name = _("service")
        verbose_name_plural = _("services")


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
    lon = models.FloatField(null=True, blank=True)
    lat = models.FloatField(null=True, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default="new")
    created_at = models.DateTimeField(_("received"), db_index=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    satisfaction = models.PositiveSmallIntegerField(_("satisfaction (1-5)"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]
        verbose_name = _("case")
        verbose_name_plural = _("cases")

    def __str__(self) -> str:
        return f"{self.tracking_no} {self.title}"
