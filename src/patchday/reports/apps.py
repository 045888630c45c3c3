"""Django app config for reports."""

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "patchday.reports"
    label = "reports"
    default_auto_field = "django.db.models.BigAutoField"
