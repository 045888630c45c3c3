"""The patchday agent: enrolls a host, checks in on a jittered interval, sends its inventory when it changed.

Standard library only and Python 3.9+, so it runs on any host; it ships as one zipapp file
(`patchday.agent.build`). It imports nothing from patchday but itself and `patchday.collectors`.
"""

AGENT_VERSION = "0.1.0"
USER_AGENT = f"patchday-agent/{AGENT_VERSION}"
