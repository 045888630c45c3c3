"""`python3 -m patchday.agent` (and the zipapp's entry point): the agent's command line."""

from __future__ import annotations

from patchday.agent.cli import main

raise SystemExit(main())
