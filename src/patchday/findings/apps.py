"""Django app config for findings."""

from django.apps import AppConfig


class FindingsConfig(AppConfig):
    name = "patchday.findings"
    label = "findings"
    default_auto_field = "django.db.models.BigAutoField"
