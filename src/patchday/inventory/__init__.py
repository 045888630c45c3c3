"""Inventory: hosts and what is installed on them, stored once per distinct package version."""
