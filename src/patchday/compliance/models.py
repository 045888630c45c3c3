"""Tables of compliance reporting: report schedules, each run logged."""

from __future__ import annotations

from django.db import models


class Frequency(models.TextChoices):
    DAILY = "daily"  # the previous day
    WEEKLY = "weekly"  # the seven days before the run
    MONTHLY = "monthly"  # the previous calendar month


class ReportFormat(models.TextChoices):
    PDF = "pdf"
    CSV = "csv"


class ReportSchedule(models.Model):
    """A report made every day, week or month and sent to e-mail addresses and/or a webhook channel.

    `scope` is a framework key (pci-dss, nist, ...) or "metrics" (the metrics summary); `group` and
    `environment` narrow the metrics ("" = every host). `next_run_at` is the next due moment (UTC),
    advanced after each run whether its delivery worked or not (the outcome is in `last_*` and the
    audit trail). A deleted schedule keeps its row (`deleted_at`) so the audit trail still names it.
    """

    name = models.CharField(max_length=100)
    frequency = models.CharField(max_length=8, choices=Frequency.choices)
    hour = models.PositiveSmallIntegerField(default=6)  # UTC hour of the day the report is made
    format = models.CharField(max_length=4, choices=ReportFormat.choices, default=ReportFormat.PDF)
    scope = models.CharField(max_length=16)
    group = models.CharField(max_length=100, blank=True)
    environment = models.CharField(max_length=64, blank=True)
    addresses = models.JSONField(default=list, blank=True)
    webhook = models.ForeignKey(
        "notifications.Channel", on_delete=models.PROTECT, null=True, blank=True, related_name="report_schedules"
    )
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField()
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=16, blank=True)  # delivered, failed
    last_error = models.CharField(max_length=500, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["deleted_at", "next_run_at"], name="compliance_schedule_due")]

    def __str__(self) -> str:
        return f"{self.name} ({self.frequency} {self.scope})"
