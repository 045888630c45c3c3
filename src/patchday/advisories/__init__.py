"""Advisories from feeds, with their affected ranges stored as version sort keys."""
