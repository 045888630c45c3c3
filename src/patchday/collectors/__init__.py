"""Collectors: text in, facts out. Standard library only and Python 3.9+, so the agent and the
SSH connector can run them on any host; they import nothing else from patchday."""


class CollectorError(Exception):
    """Input that a collector cannot read (not a dpkg status file, a missing file); the message names it."""
