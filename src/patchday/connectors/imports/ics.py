"""Maintenance windows and freeze periods from an iCalendar (.ics) file: each VEVENT becomes one or the other.

How a VEVENT is read (docs/deployment.md, "Maintenance windows"):

- SUMMARY is the name (else UID). DTSTART gives the start and time zone: its TZID (an IANA name, or one icalendar
  maps to it, like Outlook's "W. Europe Standard Time"), UTC for a time ending in Z, and for a floating time or an
  all-day date the calendar's X-WR-TIMEZONE, else `default_timezone`.
- DTEND (the wall-clock difference when both are in one time zone) or DURATION gives the length; an all-day event
  with neither lasts a day.
- RRULE becomes the window's rule; an event without one is a one-off window (ONE_OFF_RULE).
- X-PATCHDAY-KIND:freeze, or FREEZE among its CATEGORIES, makes it a FreezePeriod from DTSTART to its end.

An event patchday cannot use is skipped, with a reason in `IcsImport.skipped` naming it: no DTSTART, a TZID no time
zone database knows, EXDATE, RDATE, RECURRENCE-ID or several RRULEs (a window has one plain rule), a recurring
freeze, a broken property, or a window `parse_window` refuses. A file that is not iCalendar, holds no VCALENDAR,
or is over MAX_BYTES raises InvalidImport, and nothing of it is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar

from patchday.connectors.imports.decoding import check_size, decode_utf8
from patchday.core.errors import InvalidImport, InvalidInput
from patchday.core.windows import MAX_NAME_CHARS, ONE_OFF_RULE, FreezePeriod, MaintenanceWindow, parse_window

MAX_BYTES: Final = 1024 * 1024
MAX_EVENTS: Final = 5000
FREEZE: Final = "freeze"
WINDOW: Final = "window"
_UNSUPPORTED: Final = (
    ("EXDATE", "EXDATE (excluded occurrences) is not supported; use a freeze for the excluded dates"),
    ("RDATE", "RDATE (extra occurrences) is not supported; add them as one-off events"),
    ("RECURRENCE-ID", "it changes one occurrence of another event (RECURRENCE-ID), which is not supported"),
)


@dataclass(frozen=True, slots=True)
class IcsImport:
    """What a .ics file held: its windows and freezes in file order, and one reason per event left out."""

    windows: tuple[MaintenanceWindow, ...]
    freezes: tuple[FreezePeriod, ...]
    skipped: tuple[str, ...]


class _Skip(Exception):
    """An event patchday cannot use; the message says why."""


def parse_ics(text: str | bytes, *, source: str = "calendar.ics", default_timezone: str | None = None) -> IcsImport:
    """The windows and freezes of iCalendar `text` (UTF-8 bytes or text); see the module docstring for how each
    VEVENT is read and when it is skipped. `default_timezone` (IANA) serves floating times and all-day dates when
    the calendar names no X-WR-TIMEZONE. Raises InvalidImport naming `source` when the file is over MAX_BYTES,
    not UTF-8, not iCalendar, not one VCALENDAR, or holds more than MAX_EVENTS events."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    check_size(data, MAX_BYTES, source)
    body = decode_utf8(data, source)
    try:
        calendar = Calendar.from_ical(body)
    except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
        raise InvalidImport(f"not an iCalendar file: {exc}", source=source) from None
    if not isinstance(calendar, Calendar) or calendar.name != "VCALENDAR":
        raise InvalidImport("not an iCalendar file: it must be one BEGIN:VCALENDAR ... END:VCALENDAR", source=source)
    events = calendar.walk("VEVENT")
    if len(events) > MAX_EVENTS:
        raise InvalidImport(f"{len(events)} events; at most {MAX_EVENTS} are read", source=source)
    zone = calendar.get("X-WR-TIMEZONE")
    calendar_zone = str(zone).strip() if zone is not None and str(zone).strip() else default_timezone
    windows: list[MaintenanceWindow] = []
    freezes: list[FreezePeriod] = []
    skipped: list[str] = []
    for number, event in enumerate(events, start=1):
        label = f"VEVENT {number} ({_name(event, number)!r})"
        try:
            read = _read_event(event, _name(event, number), calendar_zone)
        except _Skip as skip:
            skipped.append(f"{label}: {skip}")
            continue
        except InvalidInput as exc:
            skipped.append(f"{label}: {exc}")
            continue
        if isinstance(read, FreezePeriod):
            freezes.append(read)
        else:
            windows.append(read)
    return IcsImport(windows=tuple(windows), freezes=tuple(freezes), skipped=tuple(skipped))


def _read_event(event: Any, name: str, calendar_zone: str | None) -> MaintenanceWindow | FreezePeriod:
    broken = {str(prop): str(problem) for prop, problem in getattr(event, "errors", [])}
    for prop in ("DTSTART", "DTEND", "DURATION", "RRULE"):
        if prop in broken:
            raise _Skip(f"{prop} cannot be read: {broken[prop]}")
    for prop, reason in _UNSUPPORTED:
        if prop in event:
            raise _Skip(reason)
    kind = _kind(event)
    start_prop = _single(event, "DTSTART", required=True)
    start = start_prop.dt
    zone_name, wall = _start(start, start_prop.params.get("TZID"), calendar_zone)
    length = _length(event, start)
    rule = _single(event, "RRULE", required=False)
    if kind == FREEZE:
        if rule is not None:
            raise _Skip("a recurring freeze is not supported; give each freeze as its own event")
        zone = _zone(zone_name)
        return FreezePeriod(
            name=name,
            start=wall.replace(tzinfo=zone).astimezone(UTC),
            end=(wall + length).replace(tzinfo=zone).astimezone(UTC),
        )
    rule_text = ONE_OFF_RULE if rule is None else rule.to_ical().decode("ascii", errors="replace")
    return parse_window(name, rule_text, length, zone_name, wall)


def _name(event: Any, number: int) -> str:
    for prop in ("SUMMARY", "UID"):
        value = event.get(prop)
        if value is not None and not isinstance(value, list) and str(value).strip():
            return " ".join(str(value).split())[:MAX_NAME_CHARS]
    return f"event {number}"


def _kind(event: Any) -> str:
    stated = event.get("X-PATCHDAY-KIND")
    if stated is not None:
        kind = str(stated).strip().lower()
        if kind not in (FREEZE, WINDOW):
            raise _Skip(f"X-PATCHDAY-KIND must be {FREEZE} or {WINDOW}, not {str(stated)[:40]!r}")
        return kind
    listed = event.get("CATEGORIES")
    lines = listed if isinstance(listed, list) else [] if listed is None else [listed]
    categories = {str(category).strip().lower() for line in lines for category in getattr(line, "cats", [])}
    return FREEZE if FREEZE in categories else WINDOW


def _single(event: Any, prop: str, *, required: bool) -> Any:
    value = event.get(prop)
    if value is None and required:
        raise _Skip(f"it has no {prop}")
    if isinstance(value, list):
        raise _Skip(f"it has {len(value)} {prop} properties; one is supported")
    return value


def _start(start: object, tzid: object, calendar_zone: str | None) -> tuple[str, datetime]:
    """The time zone name and local wall time of DTSTART."""
    if isinstance(start, datetime):
        wall = start.replace(tzinfo=None)
        if start.tzinfo is None:
            if tzid is not None:
                raise _Skip(f"TZID {str(tzid)[:80]!r} is not a time zone patchday knows (use an IANA name)")
            return _floating_zone(calendar_zone, "a floating DTSTART"), wall
        if isinstance(start.tzinfo, ZoneInfo):
            return start.tzinfo.key, wall
        if start.utcoffset() == timedelta(0) and tzid is None:
            return "UTC", wall
        raise _Skip(f"TZID {str(tzid)[:80]!r} is not an IANA time zone")
    if isinstance(start, date):
        return _floating_zone(calendar_zone, "an all-day DTSTART"), datetime(start.year, start.month, start.day)
    raise _Skip("DTSTART is not a date or date-time")


def _floating_zone(calendar_zone: str | None, what: str) -> str:
    if calendar_zone is None:
        raise _Skip(f"{what} needs a time zone: the calendar names no X-WR-TIMEZONE")
    return calendar_zone


def _length(event: Any, start: object) -> timedelta:
    end_prop = _single(event, "DTEND", required=False)
    duration_prop = _single(event, "DURATION", required=False)
    if end_prop is not None and duration_prop is not None:
        raise _Skip("it has both DTEND and DURATION; RFC 5545 allows one")
    if duration_prop is not None:
        length = duration_prop.dt
        if not isinstance(length, timedelta):
            raise _Skip("DURATION is not a duration")
        return length
    if end_prop is None:
        if isinstance(start, datetime):
            raise _Skip("it has no DTEND or DURATION, so no length")
        return timedelta(days=1)  # RFC 5545 3.6.1: an all-day event without an end lasts the day
    end = end_prop.dt
    if isinstance(start, datetime) and isinstance(end, datetime):
        if start.tzinfo is None or end.tzinfo is None or start.tzinfo == end.tzinfo:
            if (start.tzinfo is None) != (end.tzinfo is None):
                raise _Skip("DTSTART and DTEND mix a floating and a fixed time")
            # One time zone: the wall-clock length the calendar shows (core turns it into elapsed time).
            return end.replace(tzinfo=None) - start.replace(tzinfo=None)
        length = end - start
        assert isinstance(length, timedelta)
        return length
    if isinstance(start, datetime) or isinstance(end, datetime) or not isinstance(end, date):
        raise _Skip("DTSTART and DTEND mix a date and a date-time")
    assert isinstance(start, date)
    return timedelta(days=(end - start).days)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise _Skip(f"time zone {name[:80]!r} is not an IANA time zone name") from None
