"""The tamper-evident audit trail: every change, by whom, chained by hash."""
