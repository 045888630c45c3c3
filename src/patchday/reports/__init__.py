"""Reporting: metrics over the findings ledger, inventory and rollouts, their daily snapshots, and exports."""
