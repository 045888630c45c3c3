"""Severity ratings: the qualitative scale CVSS defines, from a score or from a feed's own word."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Rating(StrEnum):
    """Qualitative severity, in ascending order (so max() picks the worst)."""

    UNKNOWN = "unknown"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


RANK: Final = {rating: index for index, rating in enumerate(Rating)}

# Words feeds use for their own severity (GHSA: MODERATE; Debian tracker: "not yet assigned", ...).
_WORDS: Final = {
    "none": Rating.LOW,
    "negligible": Rating.LOW,
    "unimportant": Rating.LOW,
    "low": Rating.LOW,
    "moderate": Rating.MEDIUM,
    "medium": Rating.MEDIUM,
    "important": Rating.HIGH,
    "high": Rating.HIGH,
    "critical": Rating.CRITICAL,
}


def rating_for_score(score: float) -> Rating:
    """CVSS v3/v4 qualitative rating of a base score (0.0 counts as low: a scored, negligible issue)."""
    if score >= 9.0:
        return Rating.CRITICAL
    if score >= 7.0:
        return Rating.HIGH
    if score >= 4.0:
        return Rating.MEDIUM
    return Rating.LOW


def rating_for_word(word: str) -> Rating:
    """A feed's severity word as a Rating; UNKNOWN when the word means nothing on this scale."""
    return _WORDS.get(word.strip().lower(), Rating.UNKNOWN)


def worst(ratings: list[Rating]) -> Rating:
    return max(ratings, key=RANK.__getitem__, default=Rating.UNKNOWN)
