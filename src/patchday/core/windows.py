"""Maintenance windows: when a host may be patched (an RRULE in local wall time, a duration, a time zone), less freezes.

A MaintenanceWindow recurs by an RFC 5545 RRULE evaluated in the wall time of its IANA time zone, so a Saturday
02:00-04:00 window stays at 02:00 local across daylight saving changes; every result is an aware UTC `Opening`.
The rules (docs/deployment.md, "Maintenance windows"):

- A local start that does not exist (the spring-forward gap) moves forward to the first instant after the gap:
  02:30 on the night Europe/Berlin skips from 02:00 to 03:00 opens at 03:00 CEST. A local start that happens twice
  (fall back) is the first of the two (fold=0), e.g. 02:30 CEST, not 02:30 CET.
- `duration` is elapsed time from the opening's start (a job estimate is elapsed time too): a 3-hour window from
  02:00 CEST on the fall-back night ends at 04:00 CET, three real hours though the clock shows two.
- `offset` shifts every occurrence in wall-clock time, after the rule and before the time zone: the Saturday after
  Patch Tuesday is FREQ=MONTHLY;BYDAY=2TU with offset 4 days, and stays at the rule's local hour.
- A freeze [start, end) removes its span from every opening it overlaps; what is left before and after it stays
  usable, so a freeze can split an opening in two.
- Openings are not merged: when the duration is longer than the gap between starts they overlap, and each counts
  on its own (a job must fit inside one).

Expansion is bounded, so a hostile rule cannot hang a request: FREQ=HOURLY and finer are refused, a rule that
never occurs is refused when the window is made, a day has at most MAX_TIMES_A_DAY starts, COUNT is at most
MAX_COUNT, and one question returns or weighs at most MAX_OCCURRENCES openings (more is InvalidInput) and
never looks past its horizon.
RRULE expansion is python-dateutil's (the library DESIGN.md names); everything around it (time zones, gaps,
freezes) is here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from math import prod
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dateutil.rrule

from patchday.core.errors import InvalidInput

MAX_NAME_CHARS: Final = 200
MAX_RRULE_CHARS: Final = 1000
MAX_DURATION: Final = timedelta(days=7)
MAX_OFFSET: Final = timedelta(days=31)  # either way: "the Friday before" is -4 days
MAX_COUNT: Final = 10_000
MAX_INTERVAL: Final = 1000
MAX_TIMES_A_DAY: Final = 1440  # BYHOUR x BYMINUTE x BYSECOND: once a minute at most
MAX_OCCURRENCES: Final = 2000  # openings weighed by one question (openings, next_opening, start_slot, is_open)
DEFAULT_HORIZON: Final = timedelta(days=400)
MAX_HORIZON: Final = timedelta(days=3660)
FIRST_YEAR: Final = 1900
LAST_YEAR: Final = 2999  # starts, UNTIL and every moment asked about; later dates are typos
ONE_OFF_RULE: Final = "FREQ=DAILY;COUNT=1"  # a window that opens once, at `starts`

_FREQUENCIES: Final = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_TOO_FREQUENT: Final = frozenset({"SECONDLY", "MINUTELY", "HOURLY"})
_RULE_KEYS: Final = (
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "WKST",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYSETPOS",
    "BYHOUR",
    "BYMINUTE",
    "BYSECOND",
)
_DAYS: Final = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_UNTIL: Final = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?$")
_LONGEST_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_NUMBER: Final = re.compile(r"^\d{1,6}$")
_RULE_TEXT: Final = re.compile(r"^[A-Za-z0-9=;,+\-]*$")
# Converting a UTC bound to wall time and back is off by at most the zone's offset change (hours); a day of slack
# on both sides of an expansion keeps every overlapping occurrence in, and an exact UTC filter keeps the rest out.
_SLACK: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A recurring span of time in which hosts may be patched. Use `parse_window` to make one from user input.

    `rrule` is RFC 5545 RRULE text without DTSTART ("FREQ=WEEKLY;BYDAY=SA;BYHOUR=2;BYMINUTE=0"), FREQ=DAILY or
    slower; `starts` is its DTSTART as *naive local wall time* in `timezone` (an IANA name): the rule's first
    period, and the hour, minute and day it falls back on when it names none. `starts` itself is an occurrence only
    when the rule matches it (python-dateutil's reading of RFC 5545). A date-time UNTIL ending in Z is a UTC
    instant, one without Z is local wall time, a date-only UNTIL covers that whole local day.
    `duration` (over 0, at most MAX_DURATION) is elapsed time; `offset` (at most MAX_OFFSET either way) shifts
    every occurrence in wall-clock time. Checked on creation: InvalidInput naming the field.
    """

    name: str
    rrule: str
    duration: timedelta
    timezone: str
    starts: datetime
    offset: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        _check_window(self)


@dataclass(frozen=True, slots=True)
class FreezePeriod:
    """No patching in [start, end) (aware datetimes, start < end), whatever the windows say."""

    name: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or len(self.name) > MAX_NAME_CHARS:
            raise InvalidInput(f"a freeze needs a name of 1 to {MAX_NAME_CHARS} characters", "name")
        start = _utc(self.start, "start")
        if _utc(self.end, "end") <= start:
            raise InvalidInput(
                f"freeze {self.name!r} ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})",
                "end",
            )

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class Opening:
    """A span [start, end) in which a window is open, in aware UTC."""

    start: datetime
    end: datetime

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end


def parse_window(
    name: str,
    rrule: str,
    duration: timedelta,
    timezone: str,
    starts: datetime,
    offset: timedelta = timedelta(0),
) -> MaintenanceWindow:
    """A MaintenanceWindow from user input, tidied: the name and time zone stripped, the rule upper-cased and
    without a leading "RRULE:", an aware `starts` turned into its wall time in `timezone` (a naive one already is).

    Raises InvalidInput naming the field: a name that is empty or too long; RRULE text that does not parse, has a
    part patchday does not support (DTSTART included: pass it as `starts`), FREQ=HOURLY or finer, COUNT with UNTIL,
    an UNTIL before `starts`, or never occurs; a time zone zoneinfo does not know; a duration not over 0 or over
    MAX_DURATION; an offset beyond MAX_OFFSET; a `starts` outside FIRST_YEAR..LAST_YEAR or with fractions of a second.
    """
    if not isinstance(name, str):
        raise InvalidInput(f"name must be text, not {name!r}", "name")
    if not isinstance(rrule, str):
        raise InvalidInput(f"rrule must be RRULE text, not {rrule!r}", "rrule")
    if not isinstance(timezone, str):
        raise InvalidInput(f"timezone must be an IANA time zone name, not {timezone!r}", "timezone")
    if not isinstance(starts, datetime):
        raise InvalidInput(f"starts must be a date and time, not {starts!r}", "starts")
    rule = rrule.strip()
    if rule[:6].upper() == "RRULE:":
        rule = rule[6:]
    zone_name = timezone.strip()
    wall = starts
    if starts.tzinfo is not None:
        wall = starts.astimezone(_zone(zone_name)).replace(tzinfo=None, fold=0)
    return MaintenanceWindow(
        name=name.strip(),
        rrule=rule.upper(),
        duration=duration,
        timezone=zone_name,
        starts=wall,
        offset=offset,
    )


def openings(window: MaintenanceWindow, after: datetime, until: datetime) -> list[Opening]:
    """Every opening of `window` that overlaps [after, until), in order of start, in UTC; freezes are not applied.

    InvalidInput for naive datetimes, `until` not after `after`, or more than MAX_OCCURRENCES occurrences in range.
    """
    start, end = _utc(after, "after"), _utc(until, "until")
    if end <= start:
        raise InvalidInput(f"until ({until.isoformat()}) must be after after ({after.isoformat()})", "until")
    return list(_occurrences(window, start, end))


def next_opening(
    window: MaintenanceWindow,
    after: datetime,
    freezes: Sequence[FreezePeriod] = (),
    *,
    horizon: timedelta = DEFAULT_HORIZON,
) -> Opening | None:
    """The opening `after` is in (its start may be before `after`), else the next one to start before
    `after + horizon`; freezes are cut out of openings first, so the result is a freeze-free part of one. When
    several overlapping openings hold `after`, the one that started first. None when nothing opens in the horizon.
    InvalidInput for a naive `after`, a horizon not over 0 or over MAX_HORIZON, or too many occurrences."""
    found = _earliest(window, _utc(after, "after"), freezes, _horizon(horizon), timedelta(0))
    return None if found is None else found[1]


def is_open(window: MaintenanceWindow, at: datetime, freezes: Sequence[FreezePeriod] = ()) -> bool:
    """Whether `at` (aware) is inside an opening of `window` and outside every freeze."""
    moment = _utc(at, "at")
    found = _earliest(window, moment, freezes, timedelta(microseconds=1), timedelta(0))
    return found is not None and found[0] == moment


def start_slot(
    window: MaintenanceWindow,
    at: datetime,
    estimate: timedelta,
    freezes: Sequence[FreezePeriod] = (),
    *,
    horizon: timedelta = DEFAULT_HORIZON,
) -> datetime | None:
    """The earliest moment from `at` (in UTC) at which a job lasting `estimate` fits entirely inside the
    freeze-free part of one opening: `at` itself when it fits in the opening under way, else the start of a
    later part. None when no such moment comes before `at + horizon` (or the estimate is longer than the window).
    InvalidInput for a naive `at`, a negative estimate, or a horizon as in `next_opening`."""
    if not isinstance(estimate, timedelta) or estimate < timedelta(0):
        raise InvalidInput(f"estimate must be a duration of 0 or more, not {estimate!r}", "estimate")
    moment, span = _utc(at, "at"), _horizon(horizon)
    if estimate > window.duration:
        return None
    found = _earliest(window, moment, freezes, span, estimate)
    return None if found is None else found[0]


def frozen(freezes: Sequence[FreezePeriod], at: datetime) -> FreezePeriod | None:
    """The first of `freezes` (in the order given) whose [start, end) holds `at` (aware), or None."""
    moment = _utc(at, "at")
    return next((freeze for freeze in freezes if freeze.contains(moment)), None)


# --- checking and compiling a window -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    """A window's rule, ready to expand: `base` starts at the window's `starts`; `freq`, `interval` and `wkst`
    say where its periods begin, so an expansion can start at a later period (`_rebased`)."""

    base: dateutil.rrule.rrule
    zone: ZoneInfo
    starts: datetime
    freq: str
    interval: int
    wkst: int
    counted: bool


def _check_window(window: MaintenanceWindow) -> _Rule:
    if not isinstance(window.name, str) or not window.name.strip() or len(window.name) > MAX_NAME_CHARS:
        raise InvalidInput(f"a maintenance window needs a name of 1 to {MAX_NAME_CHARS} characters", "name")
    if not isinstance(window.duration, timedelta) or not timedelta(0) < window.duration <= MAX_DURATION:
        raise InvalidInput(
            f"duration of window {window.name!r} must be over 0 and at most {MAX_DURATION.days} days,"
            f" not {window.duration!r}",
            "duration",
        )
    if not isinstance(window.offset, timedelta) or abs(window.offset) > MAX_OFFSET:
        raise InvalidInput(
            f"offset of window {window.name!r} must be at most {MAX_OFFSET.days} days either way,"
            f" not {window.offset!r}",
            "offset",
        )
    starts = window.starts
    if not isinstance(starts, datetime) or starts.tzinfo is not None:
        raise InvalidInput(
            f"starts of window {window.name!r} is local wall time in its time zone: a naive datetime"
            f" (parse_window turns an aware one into it), not {starts!r}",
            "starts",
        )
    if not FIRST_YEAR <= starts.year <= LAST_YEAR or starts.microsecond:
        raise InvalidInput(
            f"starts of window {window.name!r} must be a whole second in {FIRST_YEAR}..{LAST_YEAR},"
            f" not {starts.isoformat()}",
            "starts",
        )
    if not isinstance(window.timezone, str) or not isinstance(window.rrule, str):
        raise InvalidInput("timezone and rrule must be text", "timezone" if isinstance(window.rrule, str) else "rrule")
    return _compile(window.rrule, window.timezone, starts)


@lru_cache(maxsize=512)
def _compile(text: str, zone_name: str, starts: datetime) -> _Rule:
    zone = _zone(zone_name)
    parts = _rule_parts(text)
    freq = parts["FREQ"]
    if "UNTIL" in parts:
        parts["UNTIL"] = _until_wall(parts["UNTIL"], zone, starts).strftime("%Y%m%dT%H%M%S")
    # dateutil fills what a rule leaves out from DTSTART; spelling it out keeps the rule the same when an
    # expansion starts at a later period (_rebased), whose start is midnight.
    parts.setdefault("BYHOUR", str(starts.hour))
    parts.setdefault("BYMINUTE", str(starts.minute))
    parts.setdefault("BYSECOND", str(starts.second))
    if not any(key in parts for key in ("BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY")):
        if freq == "WEEKLY":
            parts["BYDAY"] = _DAYS[starts.weekday()]
        elif freq == "MONTHLY":
            parts["BYMONTHDAY"] = str(starts.day)
        elif freq == "YEARLY":
            parts.setdefault("BYMONTH", str(starts.month))
            parts["BYMONTHDAY"] = str(starts.day)
    if _impossible_month_day(parts):
        raise InvalidInput(f"rrule {text!r} never occurs: no month of BYMONTH has a day of BYMONTHDAY", "rrule")
    times = prod(len(parts[key].split(",")) for key in ("BYHOUR", "BYMINUTE", "BYSECOND"))
    if times > MAX_TIMES_A_DAY:
        raise InvalidInput(
            f"rrule {text!r} starts {times} times a day; at most {MAX_TIMES_A_DAY} (once a minute)", "rrule"
        )
    try:
        base = dateutil.rrule.rrulestr(";".join(f"{key}={value}" for key, value in parts.items()), dtstart=starts)
    except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
        raise InvalidInput(f"rrule {text!r} is not a valid RRULE: {exc}", "rrule") from None
    assert isinstance(base, dateutil.rrule.rrule)  # one RRULE and no forceset: never an rruleset
    # A rule no date can satisfy (BYMONTH=2;BYMONTHDAY=30) would make every later question walk dateutil's
    # calendar to year 9999; here that walk happens once (a few seconds at worst for FREQ=DAILY) and is refused.
    if next(iter(base), None) is None:
        if "UNTIL" in parts:
            raise InvalidInput(f"rrule {text!r} ends (UNTIL) before its first occurrence from {starts}", "rrule")
        raise InvalidInput(f"rrule {text!r} never occurs: no date matches all its parts", "rrule")
    return _Rule(
        base=base,
        zone=zone,
        starts=starts,
        freq=freq,
        interval=int(parts.get("INTERVAL", "1")),
        wkst=_DAYS.index(parts.get("WKST", "MO")),
        counted="COUNT" in parts,
    )


def _rule_parts(text: str) -> dict[str, str]:
    if not text or len(text) > MAX_RRULE_CHARS or not _RULE_TEXT.fullmatch(text):
        raise InvalidInput(
            f"rrule must be one RRULE line of at most {MAX_RRULE_CHARS} characters (letters, digits, = ; , + -),"
            f" like FREQ=WEEKLY;BYDAY=SA;BYHOUR=2, not {text[:80]!r}",
            "rrule",
        )
    parts: dict[str, str] = {}
    for item in text.upper().split(";"):
        key, equals, value = item.partition("=")
        if not equals or not key or not value:
            raise InvalidInput(f"rrule part {item!r} is not KEY=VALUE", "rrule")
        if key == "DTSTART":
            raise InvalidInput("rrule must not hold DTSTART: give it as the window's starts", "rrule")
        if key not in _RULE_KEYS:
            raise InvalidInput(f"rrule part {key} is not supported (supported: {', '.join(_RULE_KEYS)})", "rrule")
        if key in parts:
            raise InvalidInput(f"rrule gives {key} twice", "rrule")
        parts[key] = value
    freq = parts.get("FREQ")
    if freq is None:
        raise InvalidInput("rrule needs FREQ (DAILY, WEEKLY, MONTHLY or YEARLY)", "rrule")
    if freq in _TOO_FREQUENT:
        raise InvalidInput(
            f"rrule FREQ={freq} is refused: a maintenance window recurs at most daily"
            " (for several starts a day, use FREQ=DAILY with BYHOUR)",
            "rrule",
        )
    if freq not in _FREQUENCIES:
        raise InvalidInput(f"rrule FREQ must be one of {', '.join(_FREQUENCIES)}, not {freq}", "rrule")
    if "COUNT" in parts and "UNTIL" in parts:
        raise InvalidInput("rrule gives both COUNT and UNTIL; RFC 5545 allows one of them", "rrule")
    for key, limit in (("INTERVAL", MAX_INTERVAL), ("COUNT", MAX_COUNT)):
        if key in parts and not (_NUMBER.fullmatch(parts[key]) and 1 <= int(parts[key]) <= limit):
            raise InvalidInput(f"rrule {key} must be a whole number from 1 to {limit}, not {parts[key]}", "rrule")
    if parts.get("WKST", "MO") not in _DAYS:
        raise InvalidInput(f"rrule WKST must be one of {', '.join(_DAYS)}, not {parts['WKST']}", "rrule")
    return parts


def _impossible_month_day(parts: dict[str, str]) -> bool:
    """The common rule no date satisfies (BYMONTH=2;BYMONTHDAY=30), found without walking the calendar."""
    if "BYMONTH" not in parts or "BYMONTHDAY" not in parts:
        return False
    try:
        months = [int(month) for month in parts["BYMONTH"].split(",")]
        days = [int(day) for day in parts["BYMONTHDAY"].split(",")]
    except ValueError:
        return False  # dateutil says what is wrong with it
    longest = max((_LONGEST_MONTH[month - 1] for month in months if 1 <= month <= 12), default=31)
    return all(abs(day) > longest for day in days)


def _until_wall(value: str, zone: ZoneInfo, starts: datetime) -> datetime:
    """UNTIL as naive wall time in `zone`: a UTC instant (Z) converted, local wall time as is, a date as its end."""
    found = _UNTIL.fullmatch(value)
    try:
        if found is None:
            raise ValueError("not YYYYMMDD, YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ")
        year, month, day, hour, minute, second, utc = found.groups()
        if hour is None:
            wall = datetime(int(year), int(month), int(day), 23, 59, 59)
        else:
            wall = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
            if utc:
                wall = wall.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None, fold=0)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"rrule UNTIL={value} is not a date or date-time: {exc}", "rrule") from None
    if not FIRST_YEAR <= wall.year <= LAST_YEAR:
        raise InvalidInput(f"rrule UNTIL={value} must be in {FIRST_YEAR}..{LAST_YEAR}", "rrule")
    if wall < starts:
        raise InvalidInput(f"rrule UNTIL={value} is before the window's starts ({starts.isoformat()})", "rrule")
    return wall


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:  # ValueError: a path-like name ("../etc")
        raise InvalidInput(f"timezone {name!r} is not an IANA time zone name (like Europe/Berlin)", "timezone") from exc


# --- expanding -------------------------------------------------------------------------------------------------


def _occurrences(window: MaintenanceWindow, after: datetime, before: datetime) -> Iterator[Opening]:
    """Openings of `window` that overlap [after, before) (UTC), by start; no freezes applied."""
    rule = _check_window(window)
    low = _wall(after - window.duration, rule.zone) - window.offset - _SLACK
    high = _wall(before, rule.zone) - window.offset + _SLACK
    looked_at = 0
    for occurrence in _rebased(rule, low):
        if occurrence < low:
            continue  # only a COUNT rule, which must count from its start, gets here
        if occurrence >= high:
            return
        start = _instant(occurrence + window.offset, rule.zone)
        opening = Opening(start, start + window.duration)
        if opening.end > after and opening.start < before:
            # The slack and the look-back for openings under way add at most MAX_TIMES_A_DAY a day more.
            looked_at += 1
            if looked_at > MAX_OCCURRENCES:
                raise InvalidInput(
                    f"window {window.name!r} has more than {MAX_OCCURRENCES} openings between"
                    f" {after.isoformat()} and {before.isoformat()}; ask about a shorter span",
                    "rrule",
                )
            yield opening


def _rebased(rule: _Rule, wall: datetime) -> dateutil.rrule.rrule:
    """`rule` started at the first period (day, week from WKST, month, year, stepped by INTERVAL from the
    window's first period) that holds `wall`, so expanding near `wall` does not walk from `starts`. Its
    occurrences from `wall` on are the same as the original's; a COUNT rule is never moved."""
    start = rule.starts
    if rule.counted or wall <= start:
        return rule.base
    day, first = wall.date(), start.date()
    if rule.freq == "DAILY":
        moved = day - timedelta(days=(day - first).days % rule.interval)
    elif rule.freq == "WEEKLY":
        week = day - timedelta(days=(day.weekday() - rule.wkst) % 7)
        first_week = first - timedelta(days=(first.weekday() - rule.wkst) % 7)
        moved = week - timedelta(weeks=((week - first_week).days // 7) % rule.interval)
    elif rule.freq == "MONTHLY":
        months = (day.year - first.year) * 12 + day.month - first.month
        year, month = divmod(first.year * 12 + first.month - 1 + months - months % rule.interval, 12)
        moved = date(year, month + 1, 1)
    else:
        years = day.year - first.year
        moved = date(first.year + years - years % rule.interval, 1, 1)
    moved_start = datetime.combine(moved, time())
    return rule.base if moved_start <= start else rule.base.replace(dtstart=moved_start)


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall time `wall` in `zone`: the first of two in a fall-back hour (fold=0), the first
    instant after the gap for a time the spring-forward skips."""
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # In a gap, fold=0 reads `wall` with the offset before the change and lands after it, fold=1 with the offset
    # after and lands before it (PEP 495); the change itself is between, found to the second.
    before, after = wall.replace(tzinfo=zone, fold=1).astimezone(UTC), instant
    new_offset = after.astimezone(zone).utcoffset()
    while after - before > timedelta(seconds=1):
        middle = before + timedelta(seconds=(after - before) // timedelta(seconds=2))
        if middle.astimezone(zone).utcoffset() == new_offset:
            after = middle
        else:
            before = middle
    return after


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def _earliest(
    window: MaintenanceWindow,
    at: datetime,
    freezes: Sequence[FreezePeriod],
    horizon: timedelta,
    need: timedelta,
) -> tuple[datetime, Opening] | None:
    """The earliest moment from `at` and before `at + horizon` from which `need` fits (and time is left) in a
    freeze-free part of one opening, with that part."""
    periods = sorted(freezes, key=lambda freeze: freeze.start)
    best: tuple[datetime, Opening] | None = None
    for occurrence in _occurrences(window, at, at + horizon):
        # Occurrences come by start and a part never begins before its occurrence: none later can do better.
        if best is not None and occurrence.start >= best[0]:
            break
        for part in _unfrozen(occurrence, periods):
            begin = max(part.start, at)
            fits = begin < at + horizon and part.end > begin and part.end - begin >= need
            if fits and (best is None or begin < best[0]):
                best = (begin, part)
    return best


def _unfrozen(opening: Opening, freezes: Sequence[FreezePeriod]) -> list[Opening]:
    """`opening` less every freeze: no, one or several parts, in order."""
    parts = [opening]
    for freeze in freezes:
        start, end = freeze.start.astimezone(UTC), freeze.end.astimezone(UTC)
        kept: list[Opening] = []
        for part in parts:
            if end <= part.start or start >= part.end:
                kept.append(part)
                continue
            if part.start < start:
                kept.append(Opening(part.start, start))
            if end < part.end:
                kept.append(Opening(end, part.end))
        parts = kept
    return parts


def _utc(moment: datetime, field: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        shown = moment.isoformat() if isinstance(moment, datetime) else repr(moment)
        raise InvalidInput(f"{field} must be an aware datetime, not naive {shown}", field)
    instant = moment.astimezone(UTC)
    if not FIRST_YEAR <= instant.year <= LAST_YEAR:
        raise InvalidInput(f"{field} must be in {FIRST_YEAR}..{LAST_YEAR}, not {moment.isoformat()}", field)
    return instant


def _horizon(horizon: timedelta) -> timedelta:
    if not isinstance(horizon, timedelta) or not timedelta(0) < horizon <= MAX_HORIZON:
        raise InvalidInput(f"horizon must be over 0 and at most {MAX_HORIZON.days} days, not {horizon!r}", "horizon")
    return horizon
