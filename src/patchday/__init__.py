"""patchday: self-hosted patch management for a fleet of servers and workstations."""

__version__ = "0.1.0"
