"""Resident records as the city holds them. Personal fields are masked wherever they are shown."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from civicpulse.core.models import Area


class Resident(models.Model):
    class Gender(models.TextChoices):
        MALE = "M", _("male")
        FEMALE = "F", _("female")

    class Disability(models.TextChoices):
        VISUAL = "visual", _("visual")
        HEARING = "hearing", _("hearing")
        SPEECH = "speech", _("speech")
        PHYSICAL = "physical", _("physical")
        INTELLECTUAL = "intellectual", _("intellectual")
        MENTAL = "mental", _("mental")
        MULTIPLE = "multiple", _("multiple")

    id_number = models.CharField(_("resident ID number"), max_length=18, unique=True)
    name = models.CharField(_("name"), max_length=64)
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices)
    birth_date = models.DateField(_("date of birth"), db_index=True)
    disability = models.CharField(
        _("disability"), max_length=16, choices=Disability.choices, blank=True
    )
    disability_grade = models.PositiveSmallIntegerField(
        _("disability grade"), null=True, blank=True
    )
    phone = models.CharField(_("mobile"), max_length=20, blank=True)
    area = models.ForeignKey(Area, on_delete=models.PROTECT, related_name="residents")
    address = models.CharField(_("address"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("resident")
        verbose_name_plural = _("residents")

    def __str__(self) -> str:
        return f"{self.name[:1]}** ({self.id_number[:6]}********{self.id_number[-4:]})"


# --------------------------------------------------------------------------------------------
# The master index: who each record across the departments is.
#
# A department's dataset that names people or enterprises is a ``Source``; each of its rows is a
# ``SourceRecord``, kept as given (with what its checks found wrong) and in a normalised form the
# linker compares. Records the linker (or a person) judges to be one person or enterprise share
# an ``Entity``, whose code never changes once given, whose golden attributes are chosen per
# attribute by survivorship, and whose ``EntityEvent`` history holds enough to undo a merge.
# Pairs the linker is unsure of wait in ``ReviewPair`` for a person; a decided pair is a
# constraint every later run obeys.
# --------------------------------------------------------------------------------------------


class Kind(models.TextChoices):
    RESIDENT = "resident", _("resident")
    ENTERPRISE = "enterprise", _("enterprise")


class Source(models.Model):
    """A department's register or roll whose rows name residents or enterprises.

    ``trust`` orders sources for survivorship (higher wins); ``mapping`` says which of the
    source's columns holds each attribute the master index knows. A source that is a service roll
    (an allowance, a care programme) tells a resident which services they receive.
    """

    name = models.SlugField(_("name"), max_length=64, unique=True)
    title = models.CharField(_("title"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    department = models.ForeignKey(
        "core.Department",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="identity_sources",
    )
    dataset_slug = models.CharField(_("catalog dataset"), max_length=100, blank=True)
    trust = models.PositiveSmallIntegerField(_("trust"), default=50)
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    service_title = models.CharField(
        _("service given"),
        max_length=200,
        blank=True,
        help_text=_("Set when each row means the resident receives this service."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("record source")
        verbose_name_plural = _("record sources")

    def __str__(self) -> str:
        return self.name


class Entity(models.Model):
    """One resident or enterprise as the city knows it: the golden record.

    ``code`` is the stable ID other systems keep; it is given once and never reused, and survives
    re-runs of the linker. A merged entity is kept, pointing at the one it went into, so a link
    to its code still leads somewhere and the merge can be undone.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        MERGED = "merged", _("merged into another")

    code = models.CharField(_("master ID"), max_length=16, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, db_index=True)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.ACTIVE, db_index=True
    )
    attributes = models.JSONField(_("golden attributes"), default=dict, blank=True)
    # attribute -> {"record": pk, "source": name, "rule": "...", "at": iso time}
    provenance = models.JSONField(_("where each attribute came from"), default=dict, blank=True)
    # the key the page search and "my space" look people up by (resident ID / credit code)
    identifier = models.CharField(_("identifier"), max_length=18, blank=True, db_index=True)
    area = models.ForeignKey(
        Area, null=True, blank=True, on_delete=models.PROTECT, related_name="entities"
    )
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="absorbed"
    )
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))

    class Meta:
        ordering = ["code"]
        verbose_name = _("master entity")
        verbose_name_plural = _("master entities")

    def __str__(self) -> str:
        return self.code


class SourceRecord(models.Model):
    """One row of a source, as given, with what its checks found and where it was linked.

    ``attributes`` keeps the values exactly as the department gave them (an invalid ID number is
    never "fixed"); ``normalised`` holds what the linker compares; ``problems`` lists each failed
    check with its reason. ``explanation`` says which fields agreed and with what weight when the
    record was linked.
    """

    class LinkedBy(models.TextChoices):
        MODEL = "model", _("the linker")
        REVIEW = "review", _("a person's decision")
        ALONE = "alone", _("no match: its own entity")

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="records")
    key = models.CharField(_("key at the source"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, db_index=True)
    attributes = models.JSONField(_("as given"), default=dict)
    normalised = models.JSONField(_("normalised"), default=dict)
    problems = models.JSONField(_("problems found"), default=list, blank=True)
    observed_at = models.DateTimeField(_("as of"))
    entity = models.ForeignKey(
        Entity, null=True, blank=True, on_delete=models.PROTECT, related_name="records"
    )
    linked_by = models.CharField(max_length=8, choices=LinkedBy.choices, blank=True)
    match_probability = models.FloatField(null=True, blank=True)
    explanation = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["source", "key"]
        constraints = [
            models.UniqueConstraint(fields=["source", "key"], name="one_record_per_source_key")
        ]
        verbose_name = _("source record")
        verbose_name_plural = _("source records")

    def __str__(self) -> str:
        return f"{self.source_id}:{self.key}"


class LinkRun(models.Model):
    """One run of the linker (whole or incremental): its trained model, thresholds and counts."""

    class Mode(models.TextChoices):
        FULL = "full", _("full")
        INCREMENTAL = "incremental", _("incremental")

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    kind = models.CharField(max_length=10, choices=Kind.choices)
    mode = models.CharField(max_length=12, choices=Mode.choices)
    engine = models.CharField(max_length=8, default="duckdb")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    started_by = models.CharField(max_length=150, default="system")
    # {"link": 0.95, "review": 0.5}: at or above ``link`` records join; between, a person decides
    thresholds = models.JSONField(default=dict)
    # the trained Splink model (settings with m and u probabilities), reused by incremental links
    model = models.JSONField(default=dict, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.mode} run {self.pk}"


class ReviewPair(models.Model):
    """Two records the linker was unsure of, or a person's ruling on two records.

    Once decided, the ruling sticks: every later run keeps "same" pairs together and "different"
    pairs apart, whatever the model says.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for review")
        SAME = "same", _("same")
        DIFFERENT = "different", _("different")

    kind = models.CharField(max_length=10, choices=Kind.choices, db_index=True)
    record_a = models.ForeignKey(SourceRecord, on_delete=models.CASCADE, related_name="+")
    record_b = models.ForeignKey(SourceRecord, on_delete=models.CASCADE, related_name="+")
    match_probability = models.FloatField(null=True, blank=True)
    match_weight = models.FloatField(null=True, blank=True)
    explanation = models.JSONField(default=dict, blank=True)
    run = models.ForeignKey(LinkRun, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-match_probability"]
        constraints = [
            # a pair is stored once, with the lower record id first
            models.UniqueConstraint(fields=["record_a", "record_b"], name="one_review_per_pair"),
            models.CheckConstraint(
                condition=models.Q(record_a__lt=models.F("record_b")), name="review_pair_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.record_a_id}~{self.record_b_id} ({self.status})"


class EntityEvent(models.Model):
    """What happened to an entity, with enough detail to undo a merge or a split.

    ``detail`` names the records moved and the other entity; an undone event points at the event
    that undid it, so the history reads forward and nothing is deleted.
    """

    class Action(models.TextChoices):
        CREATED = "created", _("created")
        LINKED = "linked", _("record linked")
        MERGED = "merged", _("merged")
        SPLIT = "split", _("record split off")
        UNDONE = "undone", _("undone")
        SURVIVED = "survived", _("golden record changed")

    entity = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=10, choices=Action.choices)
    at = models.DateTimeField()
    actor = models.CharField(max_length=150, default="system")
    run = models.ForeignKey(LinkRun, null=True, blank=True, on_delete=models.SET_NULL)
    detail = models.JSONField(default=dict, blank=True)
    undone_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.entity_id} {self.action}"


class Account(models.Model):
    """A resident's (or an enterprise representative's) sign-in to "my space".

    It ties a user to the entity they proved to be at sign-up; they see only that entity's
    records. Staff accounts never have one.
    """

    class Relation(models.TextChoices):
        SELF = "self", _("the resident themself")
        REPRESENTATIVE = "representative", _("legal representative")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identity_account"
    )
    entity = models.ForeignKey(Entity, on_delete=models.PROTECT, related_name="accounts")
    relation = models.CharField(max_length=16, choices=Relation.choices)
    verified_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user_id} -> {self.entity_id}"


class BlockingKey(models.Model):
    """One key a blocking rule of the linker pairs a record by (``rule`` is the rule's index in
    ``linking.SPECS[kind].blocking``; ``value`` its parts joined), so an incremental link finds
    the few records a new one can be compared with by an index lookup instead of reading every
    record of the kind.

    A table of keys rather than expression indexes on ``normalised``: one B-tree on ``value``
    answers every rule on SQLite and PostgreSQL alike, where expression indexes need one index
    per rule over JSON extraction (written differently by each database) and an OR of them per
    lookup, which SQLite's planner does not split: on a store of 103,516 residents it scanned
    the kind, 320 ms a lookup, against 0.2 ms here for the same candidates. ``records.ingest``
    writes the keys with the record and rewrites them when its normalised values change;
    ``records.index_blocking_keys`` rebuilds them should the linker's rules change.
    """

    record = models.ForeignKey(SourceRecord, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    rule = models.PositiveSmallIntegerField()
    # the parts joined by \x1f; a longer key is stored as "sha1:" and its digest
    value = models.CharField(max_length=128)

    class Meta:
        indexes = [models.Index(fields=["value", "rule", "kind"], name="identity_blocking_key")]

    def __str__(self) -> str:
        return f"{self.record_id} rule {self.rule}"
