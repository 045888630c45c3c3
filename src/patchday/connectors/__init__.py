"""Connectors: the ways inventory reaches patchday besides the agent (agentless SSH, file imports)."""
