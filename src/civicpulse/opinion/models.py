"""What the opinion desk keeps in the operational store.

Posts themselves are high-volume facts and live in the lake (table ``posts``, partitioned by local
day); the store keeps the workflow around them: where posts come from, what each import refused,
the saved rules, the hot issues found, the warnings raised with their history and evidence, the
response plans they start and the official releases that answer them.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from civicpulse.core.models import Area, Department


class Level(models.IntegerChoices):
    """Warning levels as Chinese emergency plans number them: I is the most severe."""

    RED = 1, _("I (red)")
    ORANGE = 2, _("II (orange)")
    YELLOW = 3, _("III (yellow)")
    BLUE = 4, _("IV (blue)")


LEVEL_COLOURS = {1: "#d7263d", 2: "#f46036", 3: "#f5c518", 4: "#1b98e0"}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Source(models.Model):
    """A place posts come from: a file drop, an RSS/Atom feed or a client of the push API.

    A push source authenticates with a token shown once; only its SHA-256 is kept.
    """

    class Kind(models.TextChoices):
        FILE = "file", _("file (JSONL/CSV)")
        FEED = "feed", _("RSS/Atom feed")
        PUSH = "push", _("push API")

    name = models.CharField(_("name"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    url = models.URLField(_("feed address"), max_length=500, blank=True)
    token_hash = models.CharField(max_length=64, blank=True, editable=False, db_index=True)
    token_prefix = models.CharField(max_length=8, blank=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    # what a feed answered last time, to ask "anything new?" cheaply
    etag = models.CharField(max_length=200, blank=True, editable=False)
    modified = models.CharField(max_length=100, blank=True, editable=False)
    last_polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("post source")
        verbose_name_plural = _("post sources")

    def __str__(self) -> str:
        return self.name

    def issue_token(self) -> str:
        """A new push token; the caller shows it once. Any earlier token stops working."""
        token = "cpp_" + secrets.token_urlsafe(32)
        self.token_hash = hash_token(token)
        self.token_prefix = token[:8]
        self.save(update_fields=["token_hash", "token_prefix"])
        return token


class IngestBatch(models.Model):
    """One file, one feed poll or one push request: what came in and what became of it."""

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="batches")
    name = models.CharField(max_length=500)  # file name, feed address or "push"
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    rows_read = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)  # the same post seen before
    near_duplicates = models.PositiveIntegerField(default=0)  # stored, but marked as a copy
    quarantined = models.PositiveIntegerField(default=0)
    committed = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"batch {self.pk} from {self.source}"


class QuarantinedPost(models.Model):
    """A row, entry or pushed item an ingest refused, with where it was and why."""

    batch = models.ForeignKey(IngestBatch, on_delete=models.CASCADE, related_name="quarantine")
    line = models.PositiveIntegerField()
    field = models.CharField(max_length=100, blank=True)
    reason = models.CharField(max_length=300)
    raw = models.TextField(blank=True)  # cut to 2,000 characters

    class Meta:
        ordering = ["batch", "line"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class RejectedPush(models.Model):
    """A push refused before anything was read (bad token, too large, too many): the log of
    hostile or broken clients."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    client = models.CharField(max_length=64)  # remote address
    source = models.ForeignKey(Source, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.PositiveSmallIntegerField()
    reason = models.CharField(max_length=300)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.status} from {self.client}: {self.reason}"


class Concern(models.Model):
    """A subject the city watches (a plant, a policy, a school), with its saved rules."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="concerns"
    )
    category = models.CharField(_("category"), max_length=32, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("concern")
        verbose_name_plural = _("concerns")

    def __str__(self) -> str:
        return self.name


class Rule(models.Model):
    """A saved keyword query (``text.rules`` syntax). It is parsed before it is saved."""

    concern = models.ForeignKey(Concern, on_delete=models.CASCADE, related_name="rules")
    name = models.CharField(_("name"), max_length=100)
    query = models.TextField(_("query"))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)  # scorers reload their rules when it moves

    class Meta:
        ordering = ["concern", "name"]
        verbose_name = _("rule")
        verbose_name_plural = _("rules")

    def __str__(self) -> str:
        return f"{self.concern}: {self.name}"


class SensitiveTerm(models.Model):
    """A word whose appearance makes an event more serious (deaths, protests, poisoning)."""

    term = models.CharField(_("term"), max_length=50, unique=True)
    weight = models.FloatField(_("weight"), default=1.0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["term"]
        verbose_name = _("sensitive term")
        verbose_name_plural = _("sensitive terms")

    def __str__(self) -> str:
        return self.term


class Issue(models.Model):
    """A hot issue: posts (and cases) of a window that talk about the same thing.

    ``signature`` is the sorted top terms; a later window's cluster whose terms overlap enough is
    the same issue, so an issue keeps its number while it lives.
    """

    signature = models.CharField(max_length=300, db_index=True)
    label = models.CharField(_("label"), max_length=200)
    terms = models.JSONField(default=list)  # [[term, weight], ...]
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    posts = models.PositiveIntegerField(default=0)  # in the current window
    cases = models.PositiveIntegerField(default=0)
    previous_posts = models.PositiveIntegerField(default=0)  # in the window before
    growth = models.FloatField(default=0.0)
    reach = models.BigIntegerField(default=0)
    negative_share = models.FloatField(default=0.0)
    areas = models.JSONField(default=list)  # district codes it touches
    area = models.ForeignKey(Area, null=True, blank=True, on_delete=models.SET_NULL)
    heat = models.FloatField(default=0.0, db_index=True)
    # z score of today's posts against the issue's own recent days (0: no burst)
    burst_score = models.FloatField(_("burst score"), default=0.0)
    samples = models.JSONField(default=list)  # a few post keys, for the evidence
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-heat"]
        verbose_name = _("hot issue")
        verbose_name_plural = _("hot issues")

    def __str__(self) -> str:
        return self.label


class WarningPolicy(models.Model):
    """Thresholds of the indicator system (``signals.warning.Thresholds`` as JSON), per category;
    the one with an empty category applies where no other does."""

    category = models.CharField(_("category"), max_length=32, blank=True, unique=True)
    thresholds = models.JSONField(_("thresholds"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("warning policy")
        verbose_name_plural = _("warning policies")

    def __str__(self) -> str:
        return self.category or "default"


class Warning(models.Model):
    """One event, one warning: raised at the level its indicators reach, moved up and down as
    the event evolves, closed when it has calmed down. ``event_key`` names the event
    (``issue:12``, ``rule:3:239901``, ``service:heating:239901``)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        CLOSED = "closed", _("closed")

    event_key = models.CharField(max_length=120, db_index=True)
    title = models.CharField(_("title"), max_length=200)
    category = models.CharField(_("category"), max_length=32, blank=True)
    issue = models.ForeignKey(
        Issue, null=True, blank=True, on_delete=models.SET_NULL, related_name="warnings"
    )
    area = models.ForeignKey(Area, null=True, blank=True, on_delete=models.SET_NULL)
    level = models.PositiveSmallIntegerField(_("level"), choices=Level.choices)
    peak_level = models.PositiveSmallIntegerField(choices=Level.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    indicators = models.JSONField(default=dict)  # latest values
    reasons = models.JSONField(default=list)  # why it has its level
    opened_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["level", "-updated_at"]
        verbose_name = _("warning")
        verbose_name_plural = _("warnings")
        constraints = [
            models.UniqueConstraint(
                fields=["event_key"],
                condition=models.Q(status="active"),
                name="one_active_warning_per_event",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_level_display()} {self.title}"

    @property
    def colour(self) -> str:
        return LEVEL_COLOURS[self.level]


class WarningChange(models.Model):
    """Each assessment that changed a warning: the indicator history behind its levels."""

    warning = models.ForeignKey(Warning, on_delete=models.CASCADE, related_name="changes")
    at = models.DateTimeField()
    from_level = models.PositiveSmallIntegerField(null=True, blank=True, choices=Level.choices)
    to_level = models.PositiveSmallIntegerField(null=True, blank=True, choices=Level.choices)
    indicators = models.JSONField(default=dict)
    reasons = models.JSONField(default=list)

    class Meta:
        ordering = ["warning", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.warning_id}: {self.from_level} -> {self.to_level} at {self.at}"


class Evidence(models.Model):
    """A sample post (or case) behind a warning, copied from the lake so the record stays whole
    when the lake's window moves on. The author is kept only as the stored hash."""

    warning = models.ForeignKey(Warning, on_delete=models.CASCADE, related_name="evidence")
    post_key = models.CharField(max_length=200)
    source = models.CharField(max_length=64)
    text = models.TextField()
    url = models.URLField(max_length=500, blank=True)
    author_hash = models.CharField(max_length=64, blank=True)
    reach = models.BigIntegerField(default=0)
    sentiment = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["warning", "-reach"]
        constraints = [
            models.UniqueConstraint(fields=["warning", "post_key"], name="one_evidence_per_post")
        ]

    def __str__(self) -> str:
        return self.post_key


class PlanTemplate(models.Model):
    """A response plan for a category of event, started when a warning reaches ``level``
    (or a more severe one)."""

    name = models.CharField(_("name"), max_length=120)
    category = models.CharField(_("category"), max_length=32, blank=True)  # blank: any
    level = models.PositiveSmallIntegerField(_("starts at level"), choices=Level.choices)
    emails = models.CharField(_("also tell (e-mail addresses)"), max_length=500, blank=True)
    webhook_url = models.URLField(_("webhook"), max_length=500, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["category", "level"]
        verbose_name = _("response plan template")
        verbose_name_plural = _("response plan templates")

    def __str__(self) -> str:
        return self.name


class PlanStep(models.Model):
    """A task a plan template sets: what, for which department, due how many hours after the
    plan starts."""

    template = models.ForeignKey(PlanTemplate, on_delete=models.CASCADE, related_name="steps")
    title = models.CharField(_("task"), max_length=200)
    department = models.ForeignKey(Department, on_delete=models.PROTECT)
    due_hours = models.PositiveIntegerField(_("due after (hours)"))
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["template", "order", "pk"]

    def __str__(self) -> str:
        return self.title


class ResponsePlan(models.Model):
    """A plan started for a warning; one per template and warning."""

    warning = models.ForeignKey(Warning, on_delete=models.CASCADE, related_name="plans")
    template = models.ForeignKey(PlanTemplate, on_delete=models.PROTECT)
    started_at = models.DateTimeField()
    level = models.PositiveSmallIntegerField(choices=Level.choices)  # the warning's, at start

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["warning", "template"], name="one_plan_per_template")
        ]

    def __str__(self) -> str:
        return f"{self.template} for warning {self.warning_id}"


class PlanTask(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("open")
        DONE = "done", _("done")

    plan = models.ForeignKey(ResponsePlan, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    department = models.ForeignKey(Department, on_delete=models.PROTECT)
    due_at = models.DateTimeField(db_index=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    note = models.TextField(blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "pk"]

    def __str__(self) -> str:
        return self.title


class Delivery(models.Model):
    """One message about a plan or task to one address (e-mail or webhook), kept so that a
    failed delivery is retried and every sent one can be shown."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("e-mail")
        WEBHOOK = "webhook", _("webhook")

    plan = models.ForeignKey(ResponsePlan, on_delete=models.CASCADE, related_name="deliveries")
    task = models.ForeignKey(PlanTask, null=True, blank=True, on_delete=models.CASCADE)
    kind = models.CharField(max_length=16)  # started | overdue
    channel = models.CharField(max_length=8, choices=Channel.choices)
    target = models.CharField(max_length=500)
    attempts = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "task", "kind", "channel", "target"], name="one_delivery"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.channel} to {self.target}"


class Release(models.Model):
    """An official statement. It goes draft → in review → approved → published; a correction
    is a new version in the same ``series`` that supersedes the published one."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        IN_REVIEW = "in_review", _("in review")
        APPROVED = "approved", _("approved")
        PUBLISHED = "published", _("published")
        SUPERSEDED = "superseded", _("superseded")
        REJECTED = "rejected", _("sent back")

    series = models.UUIDField(db_index=True)
    version = models.PositiveSmallIntegerField(default=1)
    warning = models.ForeignKey(
        Warning, null=True, blank=True, on_delete=models.PROTECT, related_name="releases"
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("statement"))
    correction_note = models.CharField(_("what was corrected"), max_length=300, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    publisher = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True, db_index=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-published_at", "-created_at"]
        verbose_name = _("official release")
        verbose_name_plural = _("official releases")
        constraints = [
            models.UniqueConstraint(fields=["series", "version"], name="one_release_version")
        ]

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"
