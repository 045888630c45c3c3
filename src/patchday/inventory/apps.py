"""Django app config for inventory."""

from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "patchday.inventory"
    label = "inventory"
    default_auto_field = "django.db.models.BigAutoField"
