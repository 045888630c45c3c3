"""The URL table: dashboard pages, health checks, and the API under /api/v1."""

from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from patchday.accounts import views as accounts
from patchday.advisories import views as advisories
from patchday.api.errors import error_response
from patchday.api.main import api
from patchday.audit import views as audit
from patchday.dashboard import views as dashboard
from patchday.findings import views as findings
from patchday.inventory import downloads
from patchday.inventory import views as inventory
from patchday.reports import evidence_views
from patchday.reports import views as reports
from patchday.reports.prometheus import metrics_view
from patchday.rollouts import views as rollouts


@csrf_exempt  # it changes nothing; without this a POST with a bearer token got a CSRF 403, not the 404
def api_not_found(request, rest=""):  # type: ignore[no-untyped-def]
    return error_response(404, "not_found", f"no API route {request.path}")


api_not_found.required_permission = "public"  # type: ignore[attr-defined]

urlpatterns = [
    path("", dashboard.home, name="home"),
    path("healthz", dashboard.healthz, name="healthz"),
    path("readyz", dashboard.readyz, name="readyz"),
    path("metrics", metrics_view, name="prometheus-metrics"),  # Prometheus scrapes with a bearer token
    path("login/", accounts.login_page, name="login"),
    path("logout/", accounts.logout_page, name="logout"),
    path("account/password/", accounts.password_page, name="password"),
    path("users/", accounts.users_page, name="users"),
    path("users/<str:username>/", accounts.user_change_page, name="user-change"),
    path("tokens/", accounts.tokens_page, name="tokens"),
    path("tokens/<str:token_id>/revoke/", accounts.token_revoke_page, name="token-revoke"),
    path("vulnerabilities/", advisories.vulnerabilities_page, name="vulnerabilities"),
    path("vulnerabilities/<str:cve_id>/", advisories.vulnerability_page, name="vulnerability"),
    path("feeds/", advisories.feeds_page, name="feeds"),
    # hosts: the fixed paths first, so that they win over a host of the same name
    path("hosts/", inventory.hosts_page, name="hosts"),
    path("hosts/export.csv", inventory.hosts_export, name="hosts-export"),
    path("hosts/bulk/", inventory.hosts_bulk, name="hosts-bulk"),
    path("hosts/enroll/", inventory.enroll_page, name="enroll"),
    path("hosts/enroll/<str:secret_id>/revoke/", inventory.enroll_revoke, name="enroll-revoke"),
    path("hosts/groups/", inventory.groups_page, name="groups"),
    path("hosts/groups/new/", inventory.group_create, name="group-create"),
    path("hosts/groups/<str:name>/delete/", inventory.group_delete, name="group-delete"),
    path("hosts/<str:name>/", inventory.host_page, name="host"),
    path("hosts/<str:name>/edit/", inventory.host_edit, name="host-edit"),
    path("findings/", findings.findings_page, name="findings"),
    path("findings/queue/", findings.patch_queue_page, name="patch-queue"),
    path("findings/export.csv", findings.findings_export, name="findings-export"),
    path("findings/<int:finding_id>/", findings.finding_page, name="finding"),
    path("findings/<int:finding_id>/exception/", findings.finding_exception, name="finding-exception"),
    path("findings/<int:finding_id>/not-affected/", findings.finding_not_affected, name="finding-not-affected"),
    path("findings/vex/", findings.vex_page, name="vex"),
    path("findings/vex/import/", findings.vex_import, name="vex-import"),
    path("findings/vex/<int:record_id>/confirm/", findings.vex_confirm, name="vex-confirm"),
    path("findings/sla/", findings.sla_policy_page, name="sla-policy"),
    path("findings/sla/save/", findings.sla_policy_save, name="sla-policy-save"),
    path("exceptions/", findings.exceptions_page, name="exceptions"),
    path("exceptions/<int:exception_id>/decide/", findings.exception_decide, name="exception-decide"),
    path("exceptions/<int:exception_id>/revoke/", findings.exception_revoke, name="exception-revoke"),
    # deployment: plans, approvals, rollouts, jobs, maintenance windows (the fixed paths first)
    path("plans/", rollouts.plans_page, name="plans"),
    path("plans/export.csv", rollouts.plans_export, name="plans-export"),
    path("plans/new/", rollouts.plan_create, name="plan-create"),
    path("plans/<int:plan_id>/", rollouts.plan_page, name="plan"),
    path("plans/<int:plan_id>/preview/", rollouts.plan_preview, name="plan-preview"),
    path("plans/<int:plan_id>/submit/", rollouts.plan_submit, name="plan-submit"),
    path("plans/<int:plan_id>/decide/", rollouts.plan_decide, name="plan-decide"),
    path("plans/<int:plan_id>/cancel/", rollouts.plan_cancel, name="plan-cancel"),
    path("plans/<int:plan_id>/start/", rollouts.plan_start, name="plan-start"),
    path("approvals/", rollouts.approvals_page, name="approvals"),
    path("rollouts/", rollouts.rollouts_page, name="rollouts"),
    path("rollouts/export.csv", rollouts.rollouts_export, name="rollouts-export"),
    path("rollouts/<int:rollout_id>/", rollouts.rollout_page, name="rollout"),
    path("rollouts/<int:rollout_id>/progress/", rollouts.rollout_progress, name="rollout-progress"),
    path("rollouts/<int:rollout_id>/jobs.csv", rollouts.rollout_jobs_export, name="rollout-jobs-export"),
    path("rollouts/<int:rollout_id>/command/", rollouts.rollout_command, name="rollout-command"),
    path("rollouts/<int:rollout_id>/revert-host/", rollouts.rollout_revert_host, name="rollout-revert-host"),
    path("jobs/<int:job_id>/", rollouts.job_page, name="job"),
    path("windows/", rollouts.windows_page, name="windows"),
    path("windows/export.csv", rollouts.windows_export, name="windows-export"),
    path("windows/new/", rollouts.window_create, name="window-create"),
    path("windows/import/", rollouts.window_import, name="window-import"),
    path("windows/freezes/new/", rollouts.freeze_create, name="freeze-create"),
    path("windows/freezes/<int:freeze_id>/delete/", rollouts.freeze_delete, name="freeze-delete"),
    path("windows/<str:name>/delete/", rollouts.window_delete, name="window-delete"),
    # reports: the executive overview and what needs doing today
    path("overview/", reports.overview_page, name="overview"),
    path("operations/", reports.operations_page, name="operations"),
    path("audit/", audit.audit_log, name="audit-log"),
    path("audit/verify/", audit.audit_verify, name="audit-verify"),
    path("reports/evidence/", evidence_views.evidence_page, name="evidence"),
    path("agent/patchday-agent.pyz", downloads.agent_download, name="agent-download"),
    path("agent/install.sh", downloads.install_sh, name="agent-install-script"),
    path("api/v1/", api.urls),
    re_path(r"^api/(?P<rest>.*)$", api_not_found, name="api-not-found"),
]

handler403 = "patchday.dashboard.views.forbidden"
handler404 = "patchday.dashboard.views.not_found"
