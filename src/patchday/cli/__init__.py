"""The `patchday` command line: Typer entry points over the services."""
