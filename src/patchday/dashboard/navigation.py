"""The dashboard's navigation: each area adds its pages here; a user sees those their role allows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from patchday.core.roles import Permission


@dataclass(frozen=True, slots=True)
class NavItem:
    label: str
    url_name: str
    permission: Permission
    section: str = ""  # a path prefix whose pages also mark this item current ("" = the item's URL)
    # How many things wait here for the user (one cheap query), shown as a badge; None = no badge.
    count: Callable[[], int] | None = None
    count_permission: Permission | None = None  # who sees the count (None: whoever sees the item)
    count_label: str = ""  # what the number means, for screen readers and the tooltip


def exceptions_awaiting_decision() -> int:
    from patchday.findings.models import ExceptionState, RiskException

    return RiskException.objects.filter(state=ExceptionState.REQUESTED).count()


def plans_awaiting_approval() -> int:
    from patchday.core.rollout import PlanState
    from patchday.rollouts.models import Plan

    return Plan.objects.filter(state=PlanState.PENDING_APPROVAL).count()


NAVIGATION: tuple[NavItem, ...] = (
    NavItem("Overview", "home", Permission.VIEW),
    NavItem("Hosts", "hosts", Permission.VIEW),
    NavItem("Findings", "patch-queue", Permission.VIEW, section="/findings/"),
    NavItem(
        "Exceptions",
        "exceptions",
        Permission.VIEW,
        count=exceptions_awaiting_decision,
        count_permission=Permission.APPROVE,
        count_label="awaiting a decision",
    ),
    NavItem("Vulnerabilities", "vulnerabilities", Permission.VIEW),
    # deployment: plans (with the maintenance windows they are scheduled in), approvals, rollouts (with their jobs)
    NavItem("Plans", "plans", Permission.VIEW, section="/windows/"),
    NavItem(
        "Approvals",
        "approvals",
        Permission.VIEW,
        count=plans_awaiting_approval,
        count_permission=Permission.APPROVE,
        count_label="awaiting a decision",
    ),
    NavItem("Rollouts", "rollouts", Permission.VIEW, section="/jobs/"),
    # reports: what needs doing today, and the executive overview with its trends
    NavItem("Operations", "operations", Permission.VIEW),
    NavItem("Reports", "overview", Permission.VIEW),
    NavItem("Feeds", "feeds", Permission.VIEW),
    NavItem("Audit trail", "audit-log", Permission.READ_AUDIT),
    NavItem("Evidence", "evidence", Permission.READ_AUDIT),
    NavItem("Users", "users", Permission.ADMINISTER),
    NavItem("API tokens", "tokens", Permission.VIEW),
)
