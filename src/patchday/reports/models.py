"""Tables of reports: one row per metric per day, so any metric can be shown for a past date and trended."""

from __future__ import annotations

from django.db import models


class MetricSnapshot(models.Model):
    """The value of metric `name` on `day` for `scope` ("" = the whole fleet), as reports.metrics.summary gave it.

    `detail` holds the rest of the Metric (label, unit, detail, excluded, excluded_reasons). A day's rows
    are rewritten together (take_snapshot is idempotent); `taken_at` says how late in the day they were.
    """

    day = models.DateField()
    name = models.CharField(max_length=64)
    scope = models.CharField(max_length=128, blank=True, default="")
    value = models.FloatField(null=True)
    detail = models.JSONField(default=dict)
    taken_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "name", "scope"], name="reports_snapshot_once_a_day")]
        indexes = [models.Index(fields=["name", "scope", "day"], name="reports_snapshot_series")]
        ordering = ["day", "name"]

    def __str__(self) -> str:
        return f"{self.name} {self.scope or 'fleet'} {self.day}: {self.value}"
