"""Django app config for advisories."""

from django.apps import AppConfig


class AdvisoriesConfig(AppConfig):
    name = "patchday.advisories"
    label = "advisories"
    default_auto_field = "django.db.models.BigAutoField"
