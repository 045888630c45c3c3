"""Compliance reporting's own tables: scheduled reports (the frameworks and evidence packs live in patchday.reports)."""
