"""Template filters of the vulnerability pages: probabilities as percentages, and their changes."""

from __future__ import annotations

from datetime import datetime

from django import template

register = template.Library()


@register.filter
def percent(value: float | None) -> str:
    """0.9734 -> "97.3%", 0.0123 -> "1.23%", 0.00043 -> "0.043%": enough digits to tell small values apart."""
    if value is None:
        return ""
    points = value * 100
    if points == 0:
        return "0%"
    if points < 0.1:
        return f"{points:.3f}%"
    if points < 10:
        return f"{points:.2f}%"
    return f"{points:.1f}%"


@register.filter
def points_change(value: float | None) -> str:
    """A change of probability in percentage points: "+1.20 pts", "\N{MINUS SIGN}0.04 pts" or "no change"."""
    if value is None:
        return ""
    points = value * 100
    if abs(points) < 0.005:
        return "no change"
    sign = "+" if points > 0 else "\N{MINUS SIGN}"
    return f"{sign}{abs(points):.2f} pts"


@register.filter
def elapsed(start: datetime | None, end: datetime | None) -> str:
    """How long from `start` to `end`: "0.4 s", "12 s", "3 min 5 s", "2 h 1 min"."""
    if start is None or end is None:
        return ""
    seconds = max((end - start).total_seconds(), 0.0)
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
