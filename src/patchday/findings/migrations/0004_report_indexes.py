"""Indexes the reports read (issue 8): the overview's live lists and the period scans of fixed findings.

On a 1,000,000-finding ledger (SQLite) they take top_vulnerabilities from 2.5 s to 0.09 s, the burndown's
rollout credits from 1.0 s to 0.1 s, top_risky_hosts from 0.23 s to 0.06 s (its KEV count now narrowed to
the hosts shown) and open_by_priority from 0.6 s to 0.05 s (docs/performance.md, "Reports"). Status leads
each index: every query asks for one status, bound as a parameter, which SQLite cannot match against a
partial index's WHERE.

Plain SQL, so the model state (findings.models.Finding.Meta) stays the findings area's own: these are
physical indexes for reports.metrics, not part of the ledger's design.
"""

from django.db import migrations

INDEXES = {
    "findings_report_open_vuln": "status, vulnerability, host_id, priority_score",  # top_vulnerabilities
    "findings_report_open_host": "status, host_id, priority_score",  # top_risky_hosts
    "findings_report_decision": "status, priority_decision",  # open_by_priority, open findings by decision
    "findings_report_fixed_at": "status, fixed_at, fixed_by_rollout, priority_score",  # burndown, time to patch
}


class Migration(migrations.Migration):
    dependencies = [
        ("findings", "0003_finding_fixed_by_rollout"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX {name} ON findings_finding ({columns})",
            reverse_sql=f"DROP INDEX {name}",
        )
        for name, columns in INDEXES.items()
    ]
