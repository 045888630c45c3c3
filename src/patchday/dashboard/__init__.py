"""The dashboard shell: base layout, navigation, overview page, health endpoints."""
