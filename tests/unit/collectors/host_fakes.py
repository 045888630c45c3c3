"""Shared pieces of the collector tests: the recorded host fixtures and a runner that plays back command output."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from pathlib import Path

from patchday.collectors import CollectorError
from patchday.collectors.host import CommandResult

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "host"

Answer = CommandResult | Callable[[Sequence[str], str | None], CommandResult]


def fixture_text(name: str) -> str:
    """A host fixture's text, gunzipped when its name ends in .gz."""
    data = (FIXTURES / name).read_bytes()
    return (gzip.decompress(data) if name.endswith(".gz") else data).decode("utf-8")


class FakeRunner:
    """Answers commands by their first argv items and records every argv.

    A command it has no answer for raises CollectorError, as run_command does for a missing tool.
    """

    def __init__(self, answers: dict[tuple[str, ...], Answer] | None = None) -> None:
        self.answers = dict(answers or {})
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float, cwd: str | None) -> CommandResult:
        assert isinstance(argv, list | tuple), "commands are argv lists, never shell strings"
        assert all(isinstance(item, str) for item in argv)
        self.calls.append(list(argv))
        for length in range(len(argv), 0, -1):
            answer = self.answers.get(tuple(argv[:length]))
            if answer is not None:
                return answer(argv, cwd) if callable(answer) else answer
        raise CollectorError(f"{argv[0]} is not installed")  # what run_command says for a missing tool


def ok(stdout: str) -> CommandResult:
    return CommandResult(0, stdout, "")
