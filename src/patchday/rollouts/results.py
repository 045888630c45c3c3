"""What an executor may report: the job result's shape checked at the edge (docs/deployment.md, "Job result"),
so a hostile or broken agent cannot store arbitrary structures or sizes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from patchday.core.errors import InvalidInput

MAX_STEPS = 64
MAX_PACKAGES = 20000
MAX_TEXT = 16 * 1024


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _packages(value: Any, field: str) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_PACKAGES:
        raise InvalidInput(f"{field} must be an object of at most {MAX_PACKAGES} packages", field=f"result.{field}")
    packages: dict[str, dict[str, Any]] = {}
    for name, entry in value.items():
        if not isinstance(name, str) or not 0 < len(name) <= 255 or not isinstance(entry, dict):
            raise InvalidInput(f"{field} has a malformed entry {str(name)[:60]!r}", field=f"result.{field}")
        version = entry.get("version")
        if version is not None and (not isinstance(version, str) or len(version) > 255):
            raise InvalidInput(f"{field}[{name}] has a malformed version", field=f"result.{field}")
        packages[name] = {"version": version, "arch": _text(entry.get("arch"), 32)}
    return packages


def _steps(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_STEPS:
        raise InvalidInput(f"steps must be a list of at most {MAX_STEPS} steps", field="result.steps")
    steps = []
    for step in value:
        if not isinstance(step, dict):
            raise InvalidInput("each step must be an object", field="result.steps")
        argv = step.get("argv")
        exit_code = step.get("exit_code")
        steps.append(
            {
                "name": _text(step.get("name"), 100),
                "argv": [_text(a, 1000) for a in argv[:100]] if isinstance(argv, list) else [],
                "exit_code": exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
                "stdout": _text(step.get("stdout")),
                "stderr": _text(step.get("stderr")),
                "started_at": _text(step.get("started_at"), 40),
                "finished_at": _text(step.get("finished_at"), 40),
                "timed_out": step.get("timed_out") is True,
            }
        )
    return steps


def check_result(result: Mapping[str, Any], job_id: int, phase: str) -> dict[str, Any]:
    """The result reduced to known fields with bounded sizes; raises InvalidInput naming the bad field."""
    status = result.get("status")
    if status not in ("succeeded", "failed"):
        raise InvalidInput("status must be succeeded or failed", field="result.status")
    if result.get("job_id") != job_id:
        raise InvalidInput(f"the result is for job {result.get('job_id')!r}, not job {job_id}", field="result.job_id")
    if result.get("kind", phase) != phase:
        raise InvalidInput(f"a {phase} result must say kind {phase!r}", field="result.kind")
    health = result.get("health") or []
    if not isinstance(health, list) or len(health) > MAX_STEPS:
        raise InvalidInput("health must be a list", field="result.health")
    kept = result.get("kept_files") or []
    return {
        "job_id": job_id,
        "kind": phase,
        "status": status,
        "error": _text(result.get("error"), 4000),
        "steps": _steps(result.get("steps")),
        "before": _packages(result.get("before"), "before"),
        "after": _packages(result.get("after"), "after"),
        "kept_files": [_text(k, 1024) for k in kept[:MAX_PACKAGES]] if isinstance(kept, list) else [],
        "reboot_required": result.get("reboot_required") is True,
        "reboot_scheduled": result.get("reboot_scheduled") is True,
        "health": [
            {"name": _text(h.get("name"), 64), "ok": h.get("ok") is True, "detail": _text(h.get("detail"), 1000)}
            for h in health
            if isinstance(h, dict)
        ],
    }
