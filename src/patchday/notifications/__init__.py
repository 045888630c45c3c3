"""Notifications: signed webhooks and e-mail when findings and exceptions need attention."""
