"""Template filters of the vulnerability pages."""
