"""What can go wrong in the agent, in the agent's terms (never urllib's or ssl's).

AgentError
├── ConfigError          the config or state file is missing, unreadable or unsafe (an http:// URL, ...)
├── NotEnrolled          there is no host token yet: run `patchday-agent enroll`
├── ServerUnavailable    no answer, a timeout, a TLS failure, 429 or 5xx: retrying later is safe
└── ServerRefused        a 4xx answer: retrying the same request will not help
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of the agent's errors; the message names the action and the input."""


class ConfigError(AgentError):
    """The agent's configuration or state cannot be used as it is."""


class NotEnrolled(AgentError):
    """The host has no host token yet."""


class ServerUnavailable(AgentError):
    """The server could not be reached or answered 429/5xx; `retry_after` is its Retry-After in seconds, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerRefused(AgentError):
    """The server answered 4xx (or an unexpected 3xx); `code`/`field` come from its error document."""

    def __init__(
        self, message: str, status: int, code: str = "", field: str = "", detail: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.field = field
        self.detail: dict[str, object] = detail or {}
