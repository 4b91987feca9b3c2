"""Market subjects registered in the city."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from civicpulse.core.models import Area


class Enterprise(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        REVOKED = "revoked", _("licence revoked")
        CANCELLED = "cancelled", _("deregistered")

    uscc = models.CharField(_("unified social credit code"), max_length=18, unique=True)
    name = models.CharField(_("name"), max_length=200)
    industry_code = models.CharField(_("industry (GB/T 4754)"), max_length=5, db_index=True)
    area = models.ForeignKey(Area, on_delete=models.PROTECT, related_name="enterprises")
    founded = models.DateField(_("founded"))
    registered_capital = models.FloatField(_("registered capital (10k yuan)"))
    legal_representative = models.CharField(_("legal representative"), max_length=64)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)

    class Meta:
        verbose_name = _("enterprise")
        verbose_name_plural = _("enterprises")

    def __str__(self) -> str:
        return self.name
