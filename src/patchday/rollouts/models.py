"""Tables of deployment: maintenance windows and freezes, hook scripts, plans (change requests) with
their per-host preview and approvals, auto-approval rules, rollouts with their rings and host jobs.

States are the StrEnums of patchday.core.rollout stored as text; every transition goes through
that module (services call it, then save), so no code here decides what may follow what.
"""

from __future__ import annotations

from django.db import models

from patchday.inventory.models import Host


class MaintenanceWindow(models.Model):
    """An RFC 5545 recurrence (RRULE) of openings of `duration_minutes`, in an IANA time zone.

    `starts` is DTSTART as local wall time in `timezone`; `offset_minutes` shifts every occurrence
    ("Tuesday after Patch Tuesday" = the second Tuesday + 7 days). Hosts name their window
    (Host.maintenance_window); a window can also cover every host of the groups in `groups`.
    """

    name = models.CharField(max_length=64, unique=True)
    description = models.CharField(max_length=255, blank=True)
    rrule = models.CharField(max_length=512)
    duration_minutes = models.PositiveIntegerField()
    timezone = models.CharField(max_length=64)
    starts = models.CharField(max_length=19)  # DTSTART as local wall time in `timezone`: "2026-01-03T02:00:00"
    offset_minutes = models.IntegerField(default=0)
    groups = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class FreezePeriod(models.Model):
    """No job starts between `start` and `end` (change freeze: year end, a launch, an audit)."""

    name = models.CharField(max_length=100)
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=255, blank=True)
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["start", "id"]


class HookScript(models.Model):
    """A pre- or post-script or health check run on hosts as an argv list, versioned: a change is a new
    version, and a plan names the exact version it uses."""

    name = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    argv = models.JSONField()
    timeout = models.PositiveIntegerField(default=300)
    description = models.CharField(max_length=255, blank=True)
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="rollouts_hookscript_version_once")]
        ordering = ["name", "-version"]


class Plan(models.Model):
    """What to fix (selection), where (target), how (options, rings), and its life as a change request."""

    name = models.CharField(max_length=200)
    state = models.CharField(max_length=24)  # core.rollout.PlanState
    selection = models.JSONField()
    target = models.JSONField()
    options = models.JSONField(default=dict)
    rings = models.JSONField(default=list)
    totals = models.JSONField(default=dict)
    requested_by = models.CharField(max_length=255)
    created_at = models.DateTimeField()
    previewed_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=255, blank=True)
    auto_rule = models.CharField(max_length=100, blank=True)  # the auto-approval rule that approved it
    override = models.BooleanField(default=False)  # started by an admin without approval (emergency)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class PlanHost(models.Model):
    """The preview of a plan on one host: the exact changes, reboot, findings closed, window start."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="hosts")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="plan_entries")
    ring = models.PositiveSmallIntegerField(default=0)
    manager = models.CharField(max_length=16)
    targets = models.JSONField(default=list)  # [{"name", "version"}]: what the job asks for
    changes = models.JSONField(default=list)  # [{"name", "arch", "from", "to", "action"}]
    simulated = models.BooleanField(default=False)  # changes come from the host's own simulated run
    simulated_at = models.DateTimeField(null=True, blank=True)
    simulation_error = models.CharField(max_length=2000, blank=True)  # why the host's simulated run failed
    skipped = models.JSONField(default=list)  # [{"name", "version", "reason"}]: held, excluded, cooling down
    reboot = models.BooleanField(default=False)
    closes = models.JSONField(default=list)  # ids of the findings these versions fix
    window_start = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plan", "host"], name="rollouts_planhost_once")]
        ordering = ["ring", "host__name"]


class Approval(models.Model):
    """A decision on a plan: approve or reject, by whom, with a comment."""

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="approvals")
    decision = models.CharField(max_length=16)  # approve, reject, auto_approve, override
    by = models.CharField(max_length=255)
    comment = models.TextField(blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]


class AutoApprovalRule(models.Model):
    """Plans that fit every condition are approved on submit, and the firing is audited.

    `selections`: the selection kinds allowed (e.g. ["security"]); `environments`: every target host
    must be in one; `below_decision`: every finding the plan closes must rank below this SSVC decision.
    """

    name = models.CharField(max_length=100, unique=True)
    enabled = models.BooleanField(default=True)
    selections = models.JSONField(default=list)
    environments = models.JSONField(default=list)
    below_decision = models.CharField(max_length=8, default="Act")
    created_by = models.CharField(max_length=255)
    created_at = models.DateTimeField()


class Rollout(models.Model):
    """An approved plan being applied ring by ring."""

    plan = models.OneToOneField(Plan, on_delete=models.PROTECT, related_name="rollout")
    state = models.CharField(max_length=16)  # core.rollout.RolloutState
    reason = models.CharField(max_length=500, blank=True)  # the last decision, in one sentence
    salt = models.CharField(max_length=32)
    started_by = models.CharField(max_length=255)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    ticked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["state"], name="rollouts_rollout_state")]


class Ring(models.Model):
    """One ring of a rollout, in order, with its gate."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="ring_set")
    index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=64)
    state = models.CharField(max_length=16)  # core.rollout.RingState
    gate = models.JSONField(default=dict)
    opened_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    promoted = models.BooleanField(default=False)
    health_failures = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollout", "index"], name="rollouts_ring_once")]
        ordering = ["rollout", "index"]


class Job(models.Model):
    """The work of one rollout on one host: deploy, then maybe roll back. Executed by the host's agent
    (pull, leased on check-in) or by the SSH connector (push). `spec` is exactly what the executor gets.
    """

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="jobs")
    ring = models.ForeignKey(Ring, on_delete=models.CASCADE, related_name="jobs")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="jobs")
    state = models.CharField(max_length=20)  # core.rollout.JobState
    executor = models.CharField(max_length=8)  # agent or ssh
    spec = models.JSONField()
    lease_token = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    queued_at = models.DateTimeField()
    leased_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    result_key = models.CharField(max_length=100, blank=True)  # the idempotency key of the stored result
    rollback_result = models.JSONField(null=True, blank=True)
    rollback_key = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    unexpected = models.JSONField(default=list, blank=True)  # packages the host changed that no one asked for

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rollout", "host"], name="rollouts_job_once")]
        indexes = [
            models.Index(fields=["host", "state"], name="rollouts_job_host_state"),
            models.Index(fields=["state", "lease_expires_at"], name="rollouts_job_lease"),
            models.Index(fields=["rollout", "state"], name="rollouts_job_rollout_state"),
            models.Index(fields=["ring", "state"], name="rollouts_job_ring_state"),
        ]
