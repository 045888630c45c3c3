"""Django app config for audit."""

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "patchday.audit"
    label = "audit"
    default_auto_field = "django.db.models.BigAutoField"
