"""Prometheus exposition at /metrics: fleet gauges read from the database at scrape time, and the server's own
request counts and latencies, which every web process adds to files in one shared directory.

prometheus_client's multiprocess mode is chosen by an environment variable it reads when it is first imported,
so this module sets it (to PATCHDAY_DATA_DIR/prometheus, unless the operator set it) before importing the client;
import prometheus_client only through this module. docs/metrics.md explains the choice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from patchday.settings import load_settings


def multiprocess_dir() -> Path:
    """Where web processes keep their request counters: PATCHDAY_DATA_DIR/prometheus (or the operator's own)."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(configured) if configured else load_settings().data_dir / "prometheus"


_DIR = multiprocess_dir()
_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_DIR)

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

# Had something imported prometheus_client before the variable was set, its values would live in this process
# only; choosing the multiprocess value class here makes the request metrics below shared whatever the order.
values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]

REQUESTS = Counter(
    "patchday_http_requests", "HTTP requests answered, by method, route and status", ["method", "route", "status"]
)
LATENCY = Histogram(
    "patchday_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route",
    ["method", "route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def route_of(request: HttpRequest) -> str:
    """The URL pattern that answered (bounded label values: never the raw path), or "unmatched"."""
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None and match.route else "unmatched"


class RequestMetricsMiddleware:
    """Counts each request and observes its latency under its route pattern, method and status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        route, method = route_of(request), request.method or "?"
        LATENCY.labels(method, route).observe(time.perf_counter() - started)
        REQUESTS.labels(method, route, str(response.status_code)).inc()
        return response


class FleetCollector(Collector):
    """Gauges of the fleet, read from the database at each scrape (so every process reports the same)."""

    def collect(self) -> Iterator[Metric]:
        from django.db.models import Max
        from django.utils import timezone
        from django_tasks_db.models import DBTaskResult

        from patchday.advisories.models import FeedRun, KevEntry
        from patchday.findings.models import Finding, FindingStatus
        from patchday.inventory.queries import freshness_counts
        from patchday.reports.metrics import open_by_priority
        from patchday.rollouts.models import Job, Rollout

        now = timezone.now()
        hosts = GaugeMetricFamily("patchday_hosts", "Hosts by inventory freshness", labels=["freshness"])
        for state, n in freshness_counts(now).items():
            hosts.add_metric([state], n)
        yield hosts
        findings = GaugeMetricFamily("patchday_findings_open", "Open findings by SSVC decision", labels=["decision"])
        for decision, n in open_by_priority().items():
            findings.add_metric([decision or "none"], n)
        yield findings
        open_rows = Finding.objects.filter(status=FindingStatus.OPEN)
        kev_hosts = open_rows.filter(vulnerability__in=KevEntry.objects.values("cve_id")).values("host_id").distinct()
        yield GaugeMetricFamily(
            "patchday_kev_exposed_hosts", "Hosts with an open finding in CISA's KEV catalog", value=kev_hosts.count()
        )
        overdue = open_rows.filter(due_date__lt=now.date()).count()
        yield GaugeMetricFamily("patchday_findings_overdue", "Open findings past their due date", value=overdue)
        yield _by_label("patchday_rollouts", "Rollouts by state", "state", Rollout.objects.values_list("state"))
        yield _by_label("patchday_jobs", "Host jobs by state", "state", Job.objects.values_list("state"))
        yield _by_label(
            "patchday_tasks",
            "Background tasks by state (the worker queue)",
            "state",
            DBTaskResult.objects.values_list("status"),
        )
        feeds = GaugeMetricFamily(
            "patchday_feed_last_success_timestamp_seconds",
            "When each feed last loaded successfully (Unix time)",
            labels=["source"],
        )
        succeeded = FeedRun.objects.filter(outcome=FeedRun.SUCCEEDED, finished_at__isnull=False)
        for source, finished in succeeded.values_list("source").annotate(last=Max("finished_at")).order_by("source"):
            feeds.add_metric([source], finished.timestamp())
        yield feeds


def _by_label(name: str, documentation: str, label: str, rows: QuerySet[Any, Any]) -> GaugeMetricFamily:
    from django.db.models import Count

    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, n in rows.annotate(n=Count("pk")).order_by():
        family.add_metric([str(value).lower()], n)
    return family


def exposition() -> bytes:
    """Every metric in Prometheus' text format: the fleet gauges and all web processes' request metrics summed."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(_DIR))  # type: ignore[no-untyped-call]
    registry.register(FleetCollector())
    return generate_latest(registry)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics for Prometheus: an API token with the view permission (Authorization: Bearer), or a session.

    It changes nothing, so a session needs no CSRF token; other methods than GET and HEAD get 405.
    """
    from patchday.accounts import services
    from patchday.api.errors import error_response
    from patchday.core.errors import AuthenticationFailed
    from patchday.core.roles import Permission

    header = request.headers.get("Authorization", "")
    try:
        if header:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise AuthenticationFailed("Authorization header must be 'Bearer <token>'")
            user, _token = services.authenticate_token(secret.strip())
        elif request.user.is_authenticated and request.user.is_active:
            user = request.user
        else:
            raise AuthenticationFailed("send an API token with the view permission (Authorization: Bearer ...)")
    except AuthenticationFailed as exc:
        response = error_response(401, exc.code, str(exc))
        response["WWW-Authenticate"] = 'Bearer realm="patchday"'
        return response
    if not user.may(Permission.VIEW):
        return error_response(403, "forbidden", f"role {user.role!r} may not read metrics (it needs 'view')")
    if request.method not in ("GET", "HEAD"):
        response = error_response(405, "method_not_allowed", "/metrics answers GET only")
        response["Allow"] = "GET, HEAD"
        return response
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


metrics_view.required_permission = "view"  # type: ignore[attr-defined]
