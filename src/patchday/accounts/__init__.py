"""People, their roles, their API tokens, and signing in."""
