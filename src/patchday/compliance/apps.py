"""Django app config for compliance reporting (scheduled reports)."""

from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "patchday.compliance"
    label = "compliance"
    default_auto_field = "django.db.models.BigAutoField"
