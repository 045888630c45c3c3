"""The Django project: settings, URL table, WSGI entry point."""
