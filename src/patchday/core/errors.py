"""The errors patchday raises, in patchday's terms.

PatchdayError
 +-- InvalidInput            input does not fit: a field, a name, a value (API 422)
 |    +-- InvalidVersion      a version string does not parse under its scheme (dpkg, rpm, ...)
 |    +-- InvalidImport       an imported file (SBOM, hosts CSV, osquery results) does not fit; names file, line, field
 +-- NotFound                the named object does not exist (API 404)
 +-- Conflict                the change contradicts the current state, e.g. a duplicate name (API 409)
 |    +-- InvalidTransition   a plan, rollout, ring or job cannot take that event in its state
 +-- AuthenticationFailed    no valid credentials (API 401)
 +-- LoginThrottled          too many failed sign-ins; retry later (API 429)
 +-- PermissionDenied        the actor's role does not allow the action (API 403)
 +-- ConfigurationError      a PATCHDAY_* setting is malformed
 +-- DatabaseUnavailable     the database cannot be reached or is not migrated
 +-- AuditChainBroken        an audit record does not match the hash chain
 +-- FeedUnreadable          a feed file or payload cannot be read or parsed; nothing of it was loaded
 +-- FeedUnavailable         a feed could not be downloaded this time; retrying later is safe (API 503)

The API maps these types to status codes in one table (patchday.api.errors).
"""

from __future__ import annotations


class PatchdayError(Exception):
    """Base of every error patchday raises on purpose; the message names the action and the input."""

    code = "error"


class InvalidInput(PatchdayError):
    """Input does not fit; `field` names the offending field when there is one."""

    code = "invalid_input"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(PatchdayError):
    """The named object does not exist (or the actor may not know it exists)."""

    code = "not_found"


class Conflict(PatchdayError):
    """The change contradicts the current state (a duplicate name, a disabled account); `details` says
    what the client needs to get past it (e.g. {"last_sequence": 50} for a replayed inventory)."""

    code = "conflict"

    def __init__(self, message: str, details: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.details = details


class AuthenticationFailed(PatchdayError):
    """No valid credentials came with the request."""

    code = "not_authenticated"


class LoginThrottled(PatchdayError):
    """Too many failed sign-ins for this account or address; `retry_after` is in seconds."""

    code = "throttled"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermissionDenied(PatchdayError):
    """The actor's role does not allow the action."""

    code = "forbidden"


class ConfigurationError(PatchdayError):
    """A PATCHDAY_* setting is malformed; the message names the variable."""

    code = "configuration_error"


class DatabaseUnavailable(PatchdayError):
    """The database cannot be reached, or its schema is not migrated."""

    code = "database_unavailable"


class AuditChainBroken(PatchdayError):
    """An audit record does not match the hash chain; `record_id` names the first broken one."""

    code = "audit_chain_broken"

    def __init__(self, message: str, record_id: int | None) -> None:
        super().__init__(message)
        self.record_id = record_id


class InvalidVersion(InvalidInput):
    """A version string does not parse under its scheme; the message names both."""

    code = "invalid_version"

    def __init__(self, scheme: str, version: str, reason: str) -> None:
        super().__init__(f"{version!r} is not a valid {scheme} version: {reason}", field="version")
        self.scheme = scheme
        self.version = version
        self.reason = reason


class InvalidImport(InvalidInput):
    """An imported file (SBOM, hosts CSV, osquery results) cannot be used; nothing of it was imported.

    `source` names the file, `line` the line (1-based) or None for the whole file, `field` the
    column or JSON key; the message repeats them so it reads on its own. `problems` lists every
    problem when there are several (a CSV's rows).
    """

    code = "invalid_import"

    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        line: int | None = None,
        field: str | None = None,
        problems: tuple[str, ...] = (),
    ) -> None:
        where = ", ".join(part for part in (source, f"line {line}" if line is not None else "") if part)
        super().__init__(f"{where}: {message}" if where else message, field=field)
        self.source = source
        self.line = line
        self.detail = message
        self.problems = problems


class FeedUnreadable(PatchdayError):
    """A feed file or payload cannot be read or parsed; nothing of it was loaded. Names the file and entry."""

    code = "feed_unreadable"


class FeedUnavailable(PatchdayError):
    """A feed could not be downloaded this time (unreachable, an error status, too large); retrying later is safe."""

    code = "feed_unavailable"


class InvalidTransition(Conflict):
    """A plan, rollout, ring or job cannot take this event in its current state (API 409); `kind`, `state`
    and `event` name them ("rollout in state completed cannot take pause")."""

    code = "invalid_transition"

    def __init__(self, kind: str, state: str, event: str) -> None:
        super().__init__(
            f"{kind} in state {state} cannot take {event}",
            details={"kind": kind, "state": str(state), "event": str(event)},
        )
        self.kind = kind
        self.state = str(state)
        self.event = str(event)
