"""The ground every domain app stands on: the area tree, departments, staff roles, the audit chain
and the job queue."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Bilingual(models.Model):
    """A thing with a Chinese and an English name, shown in the reader's language."""

    name_zh = models.CharField(_("name (Chinese)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=160)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_en if (get_language() or "").startswith("en") else self.name_zh


class Area(Bilingual):
    """One node of city > district > street/town > community > grid.

    Codes follow GB/T 2260 and the statistical division codes built on it: 6 digits for city and
    district, 9 for a street, 12 for a community, 15 for a grid. ``path`` holds the codes from the
    city down (``/239900/239901/239901001/``) so that "everything under X", the question every
    scope and every drill-down asks, is one indexed prefix match.
    """

    class Level(models.TextChoices):
        CITY = "city", _("city")
        DISTRICT = "district", _("district")
        STREET = "street", _("street / town")
        COMMUNITY = "community", _("community")
        GRID = "grid", _("grid")

    code = models.CharField(_("division code"), max_length=15, unique=True)
    level = models.CharField(_("level"), max_length=10, choices=Level.choices, db_index=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    path = models.CharField(max_length=120, db_index=True, editable=False)
    polygon = models.JSONField(_("boundary (GeoJSON)"), null=True, blank=True)
    heated = models.BooleanField(_("on the central heating network"), default=False)

    class Meta:
        ordering = ["code"]
        verbose_name = _("area")
        verbose_name_plural = _("areas")

    LEVELS = [c for c, _label in Level.choices]

    def save(self, *args, **kwargs):
        self.path = (self.parent.path if self.parent else "/") + f"{self.code}/"
        super().save(*args, **kwargs)

    def ancestors(self) -> list[Area]:
        codes = [c for c in self.path.strip("/").split("/")]
        found = {a.code: a for a in Area.objects.filter(code__in=codes)}
        return [found[c] for c in codes if c in found]


class Department(Bilingual):
    code = models.CharField(_("code"), max_length=32, unique=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")


class Role(models.TextChoices):
    CITY_LEADER = "city_leader", _("city leader")
    DATA_ADMIN = "data_admin", _("data-bureau admin")
    DEPARTMENT_STAFF = "department_staff", _("department staff")
    HOTLINE_OPERATOR = "hotline_operator", _("hotline operator")
    GRID_WORKER = "grid_worker", _("grid worker")
    PR_OFFICER = "pr_officer", _("PR officer")
    ANALYST = "analyst", _("analyst")
    AUDITOR = "auditor", _("auditor")


class StaffProfile(models.Model):
    """What a member of staff may see: a role, a department and the areas they serve.

    An empty set of areas means the whole city; scoping code never reads these fields directly
    but goes through ``core.scoping``.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    role = models.CharField(_("role"), max_length=32, choices=Role.choices)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )
    areas = models.ManyToManyField(Area, blank=True, related_name="staff")

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"


class AuditEntry(models.Model):
    """One link of the append-only audit chain; see ``core.audit`` for how it is written and
    verified. Rows are never updated or deleted by the application."""

    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField()
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    detail = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")

    def __str__(self) -> str:
        return f"#{self.seq} {self.actor} {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit entries are append-only")


class AuditHead(models.Model):
    """The chain's tip: its last sequence number and hash.

    Holding the tip apart from the entries lets verification notice a deleted last entry, and
    its row lock serialises writers on PostgreSQL.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"audit tip #{self.seq}"


class Job(models.Model):
    """A unit of background work in the embedded queue.

    ``key`` makes enqueueing idempotent: a job with the same key that is waiting or running is
    not added twice. A worker holds a job by a lease; a killed worker's lease runs out and the
    job is taken again, continuing from ``checkpoint``.
    """

    class State(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    key = models.CharField(max_length=200, db_index=True)
    name = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    run_after = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=5)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    checkpoint = models.JSONField(default=dict, blank=True)
    progress = models.FloatField(default=0.0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "run_after"])]
        constraints = [
            models.UniqueConstraint(
                fields=["key"],
                condition=models.Q(state__in=["queued", "running"]),
                name="one_live_job_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.key}] {self.state}"


class RateWindow(models.Model):
    """Requests counted per key and fixed time window, shared by every server process."""

    key = models.CharField(max_length=200)
    window = models.BigIntegerField()  # window start, seconds since the epoch
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "window"], name="one_rate_window")]

    def __str__(self) -> str:
        return f"{self.key}@{self.window}: {self.count}"
