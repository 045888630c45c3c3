"""iCalendar imports: VEVENTs to maintenance windows and freezes, and what is skipped or refused, and why."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from patchday.connectors.imports.ics import MAX_BYTES, IcsImport, parse_ics
from patchday.core.errors import InvalidImport
from patchday.core.windows import FreezePeriod, MaintenanceWindow, openings, parse_window

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "ics" / "maintenance-windows.ics"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def calendar(*events: str, header: str = "") -> str:
    body = "".join(
        f"BEGIN:VEVENT\nUID:{n}@test\nDTSTAMP:20260101T000000Z\n{e}\nEND:VEVENT\n" for n, e in enumerate(events)
    )
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//patchday//tests//EN\n{header}{body}END:VCALENDAR\n"


def one_window(result: IcsImport) -> MaintenanceWindow:
    assert result.skipped == ()
    [window] = result.windows
    return window


@pytest.fixture(scope="module")
def fixture_import() -> IcsImport:
    return parse_ics(FIXTURE.read_bytes())


def test_recurring_events_become_windows_in_wall_time(fixture_import: IcsImport) -> None:
    saturday, sunday, emergency = fixture_import.windows
    assert saturday == MaintenanceWindow(
        name="Saturday after Patch Tuesday",
        rrule="FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=12,13,14,15,16,17,18",
        duration=timedelta(hours=4),
        timezone="Europe/Berlin",
        starts=datetime(2026, 1, 17, 2, 0),
    )
    assert sunday == MaintenanceWindow(
        name="Sunday night pilot ring",
        rrule="FREQ=WEEKLY;UNTIL=20261231T225959Z;BYDAY=SU",
        duration=timedelta(hours=3),
        timezone="Europe/Berlin",
        starts=datetime(2026, 1, 4, 1, 30),
    )
    assert emergency == MaintenanceWindow(
        name="Emergency kernel window",
        rrule="FREQ=DAILY;COUNT=1",
        duration=timedelta(minutes=90),
        timezone="UTC",
        starts=datetime(2026, 3, 20, 22, 0),
    )


def test_the_ics_saturday_after_patch_tuesday_matches_the_offset_rule(fixture_import: IcsImport) -> None:
    from_ics = fixture_import.windows[0]
    with_offset = parse_window(
        "offset", "FREQ=MONTHLY;BYDAY=2TU;BYHOUR=2", timedelta(hours=4), "Europe/Berlin", datetime(2026, 1, 1),
        offset=timedelta(days=4),
    )  # fmt: skip
    span = (utc(2026, 1, 1), utc(2027, 4, 1))
    assert openings(from_ics, *span) == openings(with_offset, *span)
    assert [o.start for o in openings(from_ics, utc(2026, 2, 1), utc(2026, 5, 1))] == [
        utc(2026, 2, 14, 1),  # 02:00 CET
        utc(2026, 3, 14, 1),
        utc(2026, 4, 18, 0),  # 02:00 CEST
    ]


def test_until_ends_the_sunday_window_and_the_one_off_opens_once(fixture_import: IcsImport) -> None:
    _, sunday, emergency = fixture_import.windows
    assert openings(sunday, utc(2026, 12, 20), utc(2027, 2, 1))[-1].start == utc(2026, 12, 27, 0, 30)
    assert openings(sunday, utc(2027, 1, 1), utc(2027, 6, 1)) == []
    [once] = openings(emergency, utc(2026, 1, 1), utc(2027, 1, 1))
    assert (once.start, once.end) == (utc(2026, 3, 20, 22), utc(2026, 3, 20, 23, 30))


def test_freezes_from_categories_and_x_patchday_kind(fixture_import: IcsImport) -> None:
    assert fixture_import.freezes == (
        # All-day, in the calendar's X-WR-TIMEZONE (Europe/Berlin, CET): local midnights.
        FreezePeriod("Year-end change freeze", utc(2026, 12, 17, 23), utc(2027, 1, 4, 23)),
        FreezePeriod("Q1 close", utc(2026, 3, 30, 16), utc(2026, 4, 1, 6)),  # 18:00 CEST to 08:00 CEST
    )


def test_an_event_with_exdate_is_skipped_with_its_reason(fixture_import: IcsImport) -> None:
    assert fixture_import.skipped == (
        "VEVENT 6 ('Database weekly window'): EXDATE (excluded occurrences) is not supported;"
        " use a freeze for the excluded dates",
    )


def test_text_and_bytes_read_alike() -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    assert parse_ics(text) == parse_ics(text.encode("utf-8")) == parse_ics(b"\xef\xbb\xbf" + text.encode("utf-8"))


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("SUMMARY:no start\nDTEND:20260101T010000Z", "it has no DTSTART"),
        ("SUMMARY:mars\nDTSTART;TZID=Mars/Olympus:20260101T010000\nDURATION:PT1H", "TZID 'Mars/Olympus' is not a time"),
        ("SUMMARY:floating\nDTSTART:20260101T010000\nDURATION:PT1H", "floating DTSTART needs a time zone"),
        ("SUMMARY:all day\nDTSTART;VALUE=DATE:20260101", "all-day DTSTART needs a time zone"),
        ("SUMMARY:no end\nDTSTART:20260101T010000Z", "no DTEND or DURATION"),
        ("SUMMARY:both\nDTSTART:20260101T010000Z\nDTEND:20260101T020000Z\nDURATION:PT1H", "both DTEND and DURATION"),
        ("SUMMARY:backwards\nDTSTART:20260101T010000Z\nDTEND:20260101T000000Z", "duration of window 'backwards'"),
        (
            "SUMMARY:bad rule\nDTSTART:20260101T010000Z\nDURATION:PT1H\nRRULE:FREQ=WEEKLY;BYDAY=XX",
            "RRULE cannot be read",
        ),
        ("SUMMARY:fast\nDTSTART:20260101T010000Z\nDURATION:PT1H\nRRULE:FREQ=SECONDLY", "FREQ=SECONDLY is refused"),
        ("SUMMARY:two\nDTSTART:20260101T010000Z\nDURATION:PT1H\nRRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY", "2 RRULE"),
        ("SUMMARY:r\nDTSTART:20260101T010000Z\nDURATION:PT1H\nRRULE:FREQ=DAILY\nRDATE:20260105T010000Z", "RDATE"),
        ("SUMMARY:moved\nDTSTART:20260108T010000Z\nDURATION:PT1H\nRECURRENCE-ID:20260107T010000Z", "RECURRENCE-ID"),
        (
            "SUMMARY:xmas\nDTSTART:20261224T000000Z\nDURATION:P1D\nRRULE:FREQ=YEARLY\nX-PATCHDAY-KIND:freeze",
            "recurring freeze is not supported",
        ),
        ("SUMMARY:odd\nDTSTART:20260101T010000Z\nDURATION:PT1H\nX-PATCHDAY-KIND:party", "X-PATCHDAY-KIND must be"),
        ("SUMMARY:broken\nDTSTART:tomorrow\nDURATION:PT1H", "DTSTART cannot be read"),
        ("SUMMARY:mixed\nDTSTART:20260101T000000Z\nDTEND;VALUE=DATE:20260102", "mix a date and a date-time"),
    ],
)
def test_events_patchday_cannot_use_are_skipped_with_a_reason(event: str, reason: str) -> None:
    result = parse_ics(calendar(event, "SUMMARY:fine\nDTSTART:20260601T010000Z\nDURATION:PT2H"))
    assert [window.name for window in result.windows] == ["fine"]
    [skipped] = result.skipped
    assert skipped.startswith("VEVENT 1 (")
    assert reason in skipped


def test_a_floating_or_all_day_event_uses_x_wr_timezone_or_the_default() -> None:
    floating = "SUMMARY:floating\nDTSTART:20260101T010000\nDURATION:PT1H"
    with_header = one_window(parse_ics(calendar(floating, header="X-WR-TIMEZONE:Europe/Vienna\n")))
    with_default = one_window(parse_ics(calendar(floating), default_timezone="Europe/Vienna"))
    assert with_header == with_default
    assert (with_header.timezone, with_header.starts) == ("Europe/Vienna", datetime(2026, 1, 1, 1, 0))
    all_day = one_window(parse_ics(calendar("SUMMARY:day\nDTSTART;VALUE=DATE:20260301"), default_timezone="UTC"))
    assert (all_day.starts, all_day.duration, all_day.rrule) == (
        datetime(2026, 3, 1),
        timedelta(days=1),
        "FREQ=DAILY;COUNT=1",
    )


def test_an_unknown_calendar_time_zone_skips_the_events_that_need_it() -> None:
    result = parse_ics(calendar("SUMMARY:f\nDTSTART:20260101T010000\nDURATION:PT1H", header="X-WR-TIMEZONE:Nowhere\n"))
    assert result.windows == ()
    assert "not an IANA time zone" in result.skipped[0]


def test_an_outlook_time_zone_name_is_mapped_to_iana() -> None:
    event = "SUMMARY:outlook\nDTSTART;TZID=W. Europe Standard Time:20260103T020000\nDURATION:PT2H\nRRULE:FREQ=WEEKLY"
    window = one_window(parse_ics(calendar(event)))
    assert (window.timezone, window.starts) == ("Europe/Berlin", datetime(2026, 1, 3, 2, 0))


def test_dtend_in_another_time_zone_gives_elapsed_time() -> None:
    event = "SUMMARY:x\nDTSTART;TZID=Europe/Berlin:20260103T020000\nDTEND;TZID=America/New_York:20260102T230000"
    assert one_window(parse_ics(calendar(event))).duration == timedelta(hours=3)  # 01:00 UTC to 04:00 UTC


def test_a_name_falls_back_to_the_uid() -> None:
    window = one_window(parse_ics(calendar("DTSTART:20260101T010000Z\nDURATION:PT1H")))
    assert window.name == "0@test"


def test_a_one_off_date_freeze_without_end_lasts_a_local_day() -> None:
    result = parse_ics(
        calendar("SUMMARY:audit\nCATEGORIES:Freeze\nDTSTART;VALUE=DATE:20260701"), default_timezone="Europe/Berlin"
    )
    assert result.freezes == (FreezePeriod("audit", utc(2026, 6, 30, 22), utc(2026, 7, 1, 22)),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello", "not an iCalendar file"),
        (b'{"windows": []}', "not an iCalendar file"),
        (b"", "not an iCalendar file"),
        (b"BEGIN:VEVENT\nDTSTART:20260101T000000Z\nEND:VEVENT\n", "one BEGIN:VCALENDAR"),
        (b"BEGIN:VCALENDAR\nEND:VCALENDAR\nBEGIN:VCALENDAR\nEND:VCALENDAR\n", "not an iCalendar file"),
        (b"BEGIN:VCALENDAR\nSUMMARY:caf\xe9\nEND:VCALENDAR\n", "not valid UTF-8"),
        (b"BEGIN:VCALENDAR\n" + b"X-PAD:" + b"x" * MAX_BYTES + b"\nEND:VCALENDAR\n", "at most 1048576 are accepted"),
    ],
    ids=["text", "json", "empty", "bare-vevent", "two-calendars", "latin-1", "too-large"],
)
def test_a_file_that_is_not_usable_icalendar_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImport, match=message) as caught:
        parse_ics(data, source="windows.ics")
    assert caught.value.source == "windows.ics"


def test_an_empty_calendar_imports_nothing() -> None:
    assert parse_ics(calendar()) == IcsImport(windows=(), freezes=(), skipped=())


def test_dates_are_wall_dates_not_shifted_by_the_zone() -> None:
    window = one_window(
        parse_ics(
            calendar("SUMMARY:d\nDTSTART;VALUE=DATE:20261231\nDTEND;VALUE=DATE:20270102"),
            default_timezone="Pacific/Kiritimati",
        )
    )
    assert (window.starts.date(), window.duration) == (date(2026, 12, 31), timedelta(days=2))
