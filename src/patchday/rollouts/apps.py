"""Django app config for rollouts."""

from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    name = "patchday.rollouts"
    label = "rollouts"
    default_auto_field = "django.db.models.BigAutoField"
