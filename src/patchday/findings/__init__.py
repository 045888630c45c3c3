"""Findings: which installed package versions fall inside which advisories' affected ranges."""
