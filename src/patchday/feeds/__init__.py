"""Vulnerability feeds: read a source's published format and turn it into core values."""
