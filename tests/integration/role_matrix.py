"""The declared role matrix: the permission every API operation and every page requires, or "public".

test_role_matrix.py walks the real route table and fails when a route is missing here, when an entry
here names no route, when the guard in code says otherwise, or when a request disagrees with it.
Adding a route means adding its line here, on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from patchday.core.roles import Permission

PUBLIC: Final = "public"
HOST: Final = "host"  # an enrolled agent's host token, never a person's token or session
Rule = Permission | Literal["public", "host"]

# (METHOD, path template as the client sees it) -> rule. Path parameters keep ninja's {name} form.
API_RULES: Final[Mapping[tuple[str, str], Rule]] = {
    # the API's own pages: its root (a 404 pointing at the docs), the OpenAPI document and the docs
    ("GET", "/api/v1/"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/docs"): PUBLIC,
    # accounts
    ("GET", "/api/v1/me"): Permission.VIEW,
    ("GET", "/api/v1/users"): Permission.ADMINISTER,
    ("POST", "/api/v1/users"): Permission.ADMINISTER,
    ("GET", "/api/v1/users/{username}"): Permission.ADMINISTER,
    ("PATCH", "/api/v1/users/{username}"): Permission.ADMINISTER,
    ("GET", "/api/v1/tokens"): Permission.VIEW,
    ("POST", "/api/v1/tokens"): Permission.VIEW,
    ("DELETE", "/api/v1/tokens/{token_id}"): Permission.VIEW,
    # audit
    ("GET", "/api/v1/audit"): Permission.READ_AUDIT,
    ("GET", "/api/v1/audit/export"): Permission.READ_AUDIT,
    ("GET", "/api/v1/audit/verify"): Permission.READ_AUDIT,
    # vulnerabilities and feeds
    ("GET", "/api/v1/vulnerabilities"): Permission.VIEW,
    ("GET", "/api/v1/vulnerabilities/{cve_id}"): Permission.VIEW,
    ("GET", "/api/v1/vulnerabilities/{cve_id}/hosts"): Permission.VIEW,
    ("GET", "/api/v1/feeds/runs"): Permission.VIEW,
    ("GET", "/api/v1/feeds/status"): Permission.VIEW,
    # hosts, groups, enrollment secrets
    ("GET", "/api/v1/hosts"): Permission.VIEW,
    ("PATCH", "/api/v1/hosts"): Permission.OPERATE,
    ("POST", "/api/v1/hosts/import"): Permission.OPERATE,
    ("GET", "/api/v1/hosts/freshness"): Permission.VIEW,
    ("GET", "/api/v1/hosts/{name}"): Permission.VIEW,
    ("PATCH", "/api/v1/hosts/{name}"): Permission.OPERATE,
    ("DELETE", "/api/v1/hosts/{name}"): Permission.ADMINISTER,
    ("GET", "/api/v1/hosts/{name}/packages"): Permission.VIEW,
    ("GET", "/api/v1/hosts/{name}/pending-updates"): Permission.VIEW,
    ("GET", "/api/v1/hosts/{name}/history"): Permission.VIEW,
    ("GET", "/api/v1/groups"): Permission.VIEW,
    ("POST", "/api/v1/groups"): Permission.OPERATE,
    ("POST", "/api/v1/groups/{name}/members"): Permission.OPERATE,
    ("DELETE", "/api/v1/groups/{name}"): Permission.OPERATE,
    ("GET", "/api/v1/enrollment-secrets"): Permission.ADMINISTER,
    ("POST", "/api/v1/enrollment-secrets"): Permission.ADMINISTER,
    ("DELETE", "/api/v1/enrollment-secrets/{secret_id}"): Permission.ADMINISTER,
    # findings
    ("GET", "/api/v1/findings"): Permission.VIEW,
    ("GET", "/api/v1/findings/queue"): Permission.VIEW,
    ("POST", "/api/v1/findings/reevaluate"): Permission.ADMINISTER,
    ("GET", "/api/v1/findings/{finding_id}"): Permission.VIEW,
    ("POST", "/api/v1/findings/{finding_id}/not-affected"): Permission.OPERATE,
    ("GET", "/api/v1/vex"): Permission.VIEW,
    ("POST", "/api/v1/vex"): Permission.APPROVE,
    ("GET", "/api/v1/vex/export"): Permission.VIEW,
    ("POST", "/api/v1/vex/{record_id}/confirm"): Permission.APPROVE,
    ("GET", "/api/v1/sla-policy"): Permission.VIEW,
    ("GET", "/api/v1/sla-policy/versions"): Permission.VIEW,
    ("PUT", "/api/v1/sla-policy"): Permission.ADMINISTER,
    ("GET", "/api/v1/exceptions"): Permission.VIEW,
    ("POST", "/api/v1/exceptions"): Permission.OPERATE,
    ("POST", "/api/v1/exceptions/{exception_id}/approve"): Permission.APPROVE,
    ("POST", "/api/v1/exceptions/{exception_id}/reject"): Permission.APPROVE,
    ("POST", "/api/v1/exceptions/{exception_id}/revoke"): Permission.APPROVE,
    # the agent protocol: enrolling needs only the secret in the body; the rest a host token
    ("POST", "/api/v1/agent/enroll"): PUBLIC,
    ("POST", "/api/v1/agent/checkin"): HOST,
    ("PUT", "/api/v1/agent/inventory"): HOST,
    # worker
    ("GET", "/api/v1/worker/status"): Permission.VIEW,
    ("POST", "/api/v1/worker/probes"): Permission.ADMINISTER,
    # notifications: channels are system settings; the delivery log is evidence
    ("GET", "/api/v1/notifications/webhooks"): Permission.ADMINISTER,
    ("POST", "/api/v1/notifications/webhooks"): Permission.ADMINISTER,
    ("DELETE", "/api/v1/notifications/webhooks/{webhook_id}"): Permission.ADMINISTER,
    ("POST", "/api/v1/notifications/webhooks/{webhook_id}/test"): Permission.ADMINISTER,
    ("GET", "/api/v1/notifications/email"): Permission.ADMINISTER,
    ("POST", "/api/v1/notifications/email"): Permission.ADMINISTER,
    ("DELETE", "/api/v1/notifications/email/{recipient_id}"): Permission.ADMINISTER,
    ("GET", "/api/v1/notifications/deliveries"): Permission.READ_AUDIT,
    # deployment: operators plan and run, approvers decide; the agent reports its jobs with its host token
    ("GET", "/api/v1/plans"): Permission.VIEW,
    ("POST", "/api/v1/plans"): Permission.OPERATE,
    ("GET", "/api/v1/plans/{plan_id}"): Permission.VIEW,
    ("POST", "/api/v1/plans/{plan_id}/preview"): Permission.OPERATE,
    ("POST", "/api/v1/plans/{plan_id}/submit"): Permission.OPERATE,
    ("POST", "/api/v1/plans/{plan_id}/approve"): Permission.APPROVE,
    ("POST", "/api/v1/plans/{plan_id}/reject"): Permission.APPROVE,
    ("POST", "/api/v1/plans/{plan_id}/cancel"): Permission.OPERATE,
    ("POST", "/api/v1/plans/{plan_id}/start"): Permission.OPERATE,  # with override: admins only, checked inside
    ("GET", "/api/v1/approvals"): Permission.VIEW,
    ("GET", "/api/v1/rollouts"): Permission.VIEW,
    ("GET", "/api/v1/rollouts/{rollout_id}"): Permission.VIEW,
    ("GET", "/api/v1/rollouts/{rollout_id}/jobs"): Permission.VIEW,
    ("POST", "/api/v1/rollouts/{rollout_id}/{command}"): Permission.OPERATE,
    ("POST", "/api/v1/rollouts/{rollout_id}/hosts/{host}/rollback"): Permission.OPERATE,
    ("GET", "/api/v1/jobs/{job_id}"): Permission.VIEW,
    ("GET", "/api/v1/windows"): Permission.VIEW,
    ("POST", "/api/v1/windows"): Permission.OPERATE,
    ("POST", "/api/v1/windows/import"): Permission.OPERATE,
    ("DELETE", "/api/v1/windows/{name}"): Permission.OPERATE,
    ("GET", "/api/v1/freezes"): Permission.VIEW,
    ("POST", "/api/v1/freezes"): Permission.OPERATE,
    ("DELETE", "/api/v1/freezes/{freeze_id}"): Permission.OPERATE,
    ("GET", "/api/v1/scripts"): Permission.VIEW,
    ("POST", "/api/v1/scripts"): Permission.OPERATE,
    ("GET", "/api/v1/approval-rules"): Permission.VIEW,
    ("POST", "/api/v1/approval-rules"): Permission.APPROVE,
    ("DELETE", "/api/v1/approval-rules/{name}"): Permission.APPROVE,
    ("POST", "/api/v1/agent/jobs/{job_id}/result"): HOST,
    ("POST", "/api/v1/agent/simulations/{plan_host_id}"): HOST,
    # metrics: reading them is viewing
    ("GET", "/api/v1/metrics"): Permission.VIEW,
    ("GET", "/api/v1/metrics/grafana"): Permission.VIEW,
    ("GET", "/api/v1/metrics/{name}/series"): Permission.VIEW,
    # compliance reporting: evidence packs and report schedules are auditors' (and admins') work
    ("POST", "/api/v1/reports/evidence"): Permission.READ_AUDIT,
    ("GET", "/api/v1/reports/schedules"): Permission.READ_AUDIT,
    ("POST", "/api/v1/reports/schedules"): Permission.READ_AUDIT,
    ("DELETE", "/api/v1/reports/schedules/{schedule_id}"): Permission.READ_AUDIT,
}

# Non-API URLs that machines call with a bearer token: nobody gets 401 in the API's error shape, not a login redirect.
TOKEN_PAGES: Final = frozenset({"prometheus-metrics"})

# URL name of a dashboard page (or other non-API URL) -> rule.
PAGE_RULES: Final[Mapping[str, Rule]] = {
    "home": Permission.VIEW,
    "healthz": PUBLIC,
    "readyz": PUBLIC,
    "prometheus-metrics": Permission.VIEW,  # a bearer token (Prometheus) or a session; see TOKEN_PAGES
    "login": PUBLIC,
    "logout": Permission.VIEW,
    "password": Permission.VIEW,
    "users": Permission.ADMINISTER,
    "user-change": Permission.ADMINISTER,
    "tokens": Permission.VIEW,
    "token-revoke": Permission.VIEW,
    "vulnerabilities": Permission.VIEW,
    "vulnerability": Permission.VIEW,
    "feeds": Permission.VIEW,
    "hosts": Permission.VIEW,
    "hosts-export": Permission.VIEW,
    "hosts-bulk": Permission.OPERATE,
    "host": Permission.VIEW,
    "host-edit": Permission.OPERATE,
    "enroll": Permission.ADMINISTER,
    "enroll-revoke": Permission.ADMINISTER,
    "groups": Permission.VIEW,
    "group-create": Permission.OPERATE,
    "group-delete": Permission.OPERATE,
    "findings": Permission.VIEW,
    "patch-queue": Permission.VIEW,
    "findings-export": Permission.VIEW,
    "finding": Permission.VIEW,
    "finding-exception": Permission.OPERATE,
    "exceptions": Permission.VIEW,
    "exception-decide": Permission.APPROVE,
    "exception-revoke": Permission.APPROVE,
    "audit-log": Permission.READ_AUDIT,
    "audit-verify": Permission.READ_AUDIT,
    "agent-download": PUBLIC,  # the agent zipapp: no secret in it
    "agent-install-script": PUBLIC,  # the enrollment secret is the admin's argument, never in the script
    "finding-not-affected": Permission.OPERATE,
    "vex": Permission.VIEW,
    "vex-import": Permission.APPROVE,
    "vex-confirm": Permission.APPROVE,
    "sla-policy": Permission.VIEW,
    "sla-policy-save": Permission.ADMINISTER,
    "api-not-found": PUBLIC,  # the catch-all under /api/: a 404 in the API's error shape
    # deployment: reading is VIEW; plan, rollout and window actions OPERATE; deciding a plan APPROVE
    "plans": Permission.VIEW,
    "plans-export": Permission.VIEW,
    "plan-create": Permission.OPERATE,
    "plan": Permission.VIEW,
    "plan-preview": Permission.OPERATE,
    "plan-submit": Permission.OPERATE,
    "plan-decide": Permission.APPROVE,
    "plan-cancel": Permission.OPERATE,
    "plan-start": Permission.OPERATE,
    "approvals": Permission.VIEW,
    "rollouts": Permission.VIEW,
    "rollouts-export": Permission.VIEW,
    "rollout": Permission.VIEW,
    "rollout-progress": Permission.VIEW,
    "rollout-jobs-export": Permission.VIEW,
    "rollout-command": Permission.OPERATE,
    "rollout-revert-host": Permission.OPERATE,
    "job": Permission.VIEW,
    "windows": Permission.VIEW,
    "windows-export": Permission.VIEW,
    "window-create": Permission.OPERATE,
    "window-import": Permission.OPERATE,
    "window-delete": Permission.OPERATE,
    "freeze-create": Permission.OPERATE,
    "freeze-delete": Permission.OPERATE,
    "evidence": Permission.READ_AUDIT,
    # reports: the executive overview and the operations page are read by every role
    "overview": Permission.VIEW,
    "operations": Permission.VIEW,
}
