"""Small results the analytics write back for the cockpit to read quickly."""

from __future__ import annotations

from django.db import models


class CaseFigure(models.Model):
    """Requests per area, month and service, computed from the lake by ``cockpit.refresh``."""

    level = models.CharField(max_length=10)
    area_code = models.CharField(max_length=15)
    month = models.CharField(max_length=7)  # YYYY-MM in the city's time zone
    service_code = models.CharField(max_length=32)
    count = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["area_code", "month"])]

    def __str__(self) -> str:
        return f"{self.area_code} {self.month} {self.service_code}: {self.count}"
