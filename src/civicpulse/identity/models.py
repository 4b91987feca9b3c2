"""Resident records as the city holds them. Personal fields are masked wherever they are shown."""

from __future__ import annotations

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
