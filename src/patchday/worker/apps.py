"""Django app config for the worker."""

from django.apps import AppConfig


class WorkerConfig(AppConfig):
    name = "patchday.worker"
    label = "worker"
    default_auto_field = "django.db.models.BigAutoField"
