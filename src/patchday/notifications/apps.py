"""Django app config for notifications."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "patchday.notifications"
    label = "notifications"
    default_auto_field = "django.db.models.BigAutoField"
