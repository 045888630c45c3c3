"""Dashboard pages that belong to no single area: the overview, health and readiness checks."""

from __future__ import annotations

from typing import cast

from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from patchday.accounts.guards import PUBLIC, page_guard
from patchday.accounts.models import User
from patchday.audit.models import AuditChainHead
from patchday.core.roles import Permission
from patchday.inventory import queries as inventory
from patchday.worker.api import alive_workers, queue_counts


@page_guard(Permission.VIEW)
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    head = AuditChainHead.objects.filter(pk=1).first()
    fleet = inventory.freshness_counts()
    context = {
        "fleet": fleet,
        "fleet_total": sum(fleet.values()),  # every host has exactly one freshness
        "user_count": User.objects.filter(is_active=True).count(),
        "audit_count": head.count if head else 0,
        "workers": alive_workers(),
        "queue": queue_counts(),
        "can_read_audit": user.may(Permission.READ_AUDIT),
    }
    return render(request, "dashboard/home.html", context)


@page_guard(PUBLIC)
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process is alive (no database access)."""
    return JsonResponse({"status": "ok"})


def pending_migrations() -> list[str]:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


@page_guard(PUBLIC)
@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """Ready to serve: the database answers and every migration is applied."""
    try:
        connection.ensure_connection()
        pending = pending_migrations()
    except DatabaseError as exc:
        return JsonResponse({"status": "unavailable", "reason": f"database unreachable: {exc}"}, status=503)
    if pending:
        return JsonResponse(
            {"status": "unavailable", "reason": "migrations not applied", "pending": pending}, status=503
        )
    return JsonResponse({"status": "ok"})


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "dashboard/forbidden.html", {}, status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "dashboard/not_found.html", {}, status=404)
