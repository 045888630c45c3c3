"""Maintenance windows: RRULE in local wall time, DST gaps and folds, offsets, freezes, bounds on hostile rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st

from patchday.core.errors import InvalidInput
from patchday.core.windows import (
    MAX_DURATION,
    FreezePeriod,
    MaintenanceWindow,
    Opening,
    frozen,
    is_open,
    next_opening,
    openings,
    parse_window,
    start_slot,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def spans(found: list[Opening]) -> list[tuple[datetime, datetime]]:
    return [(opening.start, opening.end) for opening in found]


def window(
    rrule: str,
    duration: timedelta = timedelta(hours=2),
    timezone: str = "UTC",
    starts: datetime = datetime(2026, 1, 1),
    offset: timedelta = timedelta(0),
) -> MaintenanceWindow:
    return parse_window("test window", rrule, duration, timezone, starts, offset)


# --- daylight saving time ------------------------------------------------------------------------------------

SUNDAY_0230_BERLIN = window("FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30", timezone="Europe/Berlin")


def test_berlin_spring_forward_moves_a_missing_start_to_the_end_of_the_gap() -> None:
    # 2026-03-29: clocks go from 02:00 CET to 03:00 CEST at 01:00 UTC; 02:30 does not exist, so 03:00 CEST.
    found = openings(SUNDAY_0230_BERLIN, utc(2026, 3, 21), utc(2026, 4, 6))
    assert spans(found) == [
        (utc(2026, 3, 22, 1, 30), utc(2026, 3, 22, 3, 30)),  # 02:30 CET
        (utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 3, 0)),  # 03:00 CEST, two elapsed hours
        (utc(2026, 4, 5, 0, 30), utc(2026, 4, 5, 2, 30)),  # 02:30 CEST
    ]


def test_berlin_fall_back_uses_the_first_of_two_equal_wall_times() -> None:
    # 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET at 01:00 UTC; 02:30 happens twice, first in CEST.
    found = openings(SUNDAY_0230_BERLIN, utc(2026, 10, 17), utc(2026, 11, 2))
    assert spans(found) == [
        (utc(2026, 10, 18, 0, 30), utc(2026, 10, 18, 2, 30)),  # 02:30 CEST
        (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2, 30)),  # 02:30 CEST, not 02:30 CET (01:30 UTC)
        (utc(2026, 11, 1, 1, 30), utc(2026, 11, 1, 3, 30)),  # 02:30 CET
    ]


def test_duration_is_elapsed_time_on_the_fall_back_night() -> None:
    three_hours = window("FREQ=DAILY;BYHOUR=2;BYMINUTE=0", timedelta(hours=3), "Europe/Berlin")
    [opening] = openings(three_hours, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))
    assert (opening.start, opening.end) == (utc(2026, 10, 25, 0), utc(2026, 10, 25, 3))
    assert opening.end.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 10, 25, 4, 0)  # 04:00 CET


def test_new_york_spring_forward() -> None:
    # 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00 UTC.
    sunday = window("FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30", timedelta(hours=1), "America/New_York")
    found = openings(sunday, utc(2026, 2, 28), utc(2026, 3, 16))
    assert spans(found) == [
        (utc(2026, 3, 1, 7, 30), utc(2026, 3, 1, 8, 30)),  # 02:30 EST
        (utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 8, 0)),  # 03:00 EDT
        (utc(2026, 3, 15, 6, 30), utc(2026, 3, 15, 7, 30)),  # 02:30 EDT
    ]


def test_new_york_fall_back() -> None:
    # 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00 UTC; 01:30 happens twice, 02:30 once.
    early = window("FREQ=WEEKLY;BYDAY=SU;BYHOUR=1;BYMINUTE=30", timedelta(hours=1), "America/New_York")
    late = window("FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=30", timedelta(hours=1), "America/New_York")
    assert [o.start for o in openings(early, utc(2026, 10, 24), utc(2026, 11, 9))] == [
        utc(2026, 10, 25, 5, 30),  # 01:30 EDT
        utc(2026, 11, 1, 5, 30),  # the first 01:30, EDT
        utc(2026, 11, 8, 6, 30),  # 01:30 EST
    ]
    assert [o.start for o in openings(late, utc(2026, 10, 31), utc(2026, 11, 2))] == [utc(2026, 11, 1, 7, 30)]


def test_an_opening_that_started_before_after_is_returned() -> None:
    found = openings(SUNDAY_0230_BERLIN, utc(2026, 3, 22, 3), utc(2026, 3, 22, 4))
    assert spans(found) == [(utc(2026, 3, 22, 1, 30), utc(2026, 3, 22, 3, 30))]
    assert openings(SUNDAY_0230_BERLIN, utc(2026, 3, 22, 3, 30), utc(2026, 3, 22, 4)) == []


# --- Patch Tuesday and friends -------------------------------------------------------------------------------

# The 2nd Tuesday of each month (Microsoft's Patch Tuesday), worked out from a calendar.
PATCH_TUESDAYS = [
    date(2026, 1, 13),
    date(2026, 2, 10),
    date(2026, 3, 10),
    date(2026, 4, 14),
    date(2026, 10, 13),
    date(2026, 11, 10),
    date(2026, 12, 8),
    date(2027, 1, 12),
    date(2027, 2, 9),
    date(2027, 3, 9),
]
THIRD_TUESDAYS = [
    date(2026, 1, 20),
    date(2026, 2, 17),
    date(2026, 3, 17),
    date(2026, 4, 21),
    date(2026, 10, 20),
    date(2026, 11, 17),
    date(2026, 12, 15),
    date(2027, 1, 19),
    date(2027, 2, 16),
    date(2027, 3, 16),
]
SATURDAYS_AFTER = [
    date(2026, 1, 17),
    date(2026, 2, 14),
    date(2026, 3, 14),
    date(2026, 4, 18),
    date(2026, 10, 17),
    date(2026, 11, 14),
    date(2026, 12, 12),
    date(2027, 1, 16),
    date(2027, 2, 13),
    date(2027, 3, 13),
]
MONTHS = [(2026, 1, 4), (2026, 10, 3), (2027, 1, 3)]  # (year, first month, months) spans asked about


def local_start_dates(found: MaintenanceWindow) -> list[date]:
    dates: list[date] = []
    for year, month, months in MONTHS:
        end_year, end_month = divmod(month - 1 + months, 12)
        for opening in openings(found, utc(year, month, 1), utc(year + end_year, end_month + 1, 1)):
            local = opening.start.astimezone(BERLIN)
            assert (local.hour, local.minute) == (22, 0)
            dates.append(local.date())
    return dates


@pytest.mark.parametrize(
    ("rrule", "offset", "expected"),
    [
        ("FREQ=MONTHLY;BYDAY=2TU;BYHOUR=22;BYMINUTE=0", timedelta(0), PATCH_TUESDAYS),
        ("FREQ=MONTHLY;BYDAY=3TU;BYHOUR=22;BYMINUTE=0", timedelta(0), THIRD_TUESDAYS),
        ("FREQ=MONTHLY;BYDAY=2TU;BYHOUR=22;BYMINUTE=0", timedelta(days=7), THIRD_TUESDAYS),
        ("FREQ=MONTHLY;BYDAY=2TU;BYHOUR=22;BYMINUTE=0", timedelta(days=4), SATURDAYS_AFTER),
        ("FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=12,13,14,15,16,17,18;BYHOUR=22;BYMINUTE=0", timedelta(0), SATURDAYS_AFTER),
    ],
    ids=["patch-tuesday", "third-tuesday", "tuesday-after", "saturday-after", "saturday-after-as-one-rule"],
)
def test_monthly_windows_fall_on_the_calendar_dates(rrule: str, offset: timedelta, expected: list[date]) -> None:
    found = window(rrule, timedelta(hours=4), "Europe/Berlin", datetime(2025, 12, 1), offset)
    assert local_start_dates(found) == expected


def test_an_offset_keeps_the_local_hour_across_a_clock_change() -> None:
    # Patch Tuesday 2026-03-10 is in CET, the Saturday after (03-14) too; 2026-04-14 + 4 days is in CEST.
    saturday = window("FREQ=MONTHLY;BYDAY=2TU;BYHOUR=22", timedelta(hours=4), "Europe/Berlin", offset=timedelta(days=4))
    assert [o.start for o in openings(saturday, utc(2026, 3, 1), utc(2026, 5, 1))] == [
        utc(2026, 3, 14, 21),
        utc(2026, 4, 18, 20),
    ]


def test_a_negative_offset_reaches_back() -> None:
    friday_before = window("FREQ=MONTHLY;BYDAY=2TU;BYHOUR=20", timedelta(hours=1), offset=timedelta(days=-4))
    assert [o.start for o in openings(friday_before, utc(2026, 1, 1), utc(2026, 3, 1))] == [
        utc(2026, 1, 9, 20),
        utc(2026, 2, 6, 20),
    ]


# --- freezes, next_opening, is_open, start_slot -------------------------------------------------------------

NIGHTLY = window("FREQ=DAILY;BYHOUR=1;BYMINUTE=0", timedelta(hours=4))  # 01:00-05:00 UTC every day
LUNCH_FREEZE = FreezePeriod("db migration", utc(2026, 6, 10, 2), utc(2026, 6, 10, 3))


def test_next_opening_inside_an_open_window_returns_it_with_its_earlier_start() -> None:
    assert next_opening(NIGHTLY, utc(2026, 6, 10, 3)) == Opening(utc(2026, 6, 10, 1), utc(2026, 6, 10, 5))


def test_next_opening_between_windows_returns_the_next() -> None:
    assert next_opening(NIGHTLY, utc(2026, 6, 10, 5)) == Opening(utc(2026, 6, 11, 1), utc(2026, 6, 11, 5))


def test_a_freeze_splits_an_opening() -> None:
    assert next_opening(NIGHTLY, utc(2026, 6, 10), [LUNCH_FREEZE]) == Opening(utc(2026, 6, 10, 1), utc(2026, 6, 10, 2))
    assert next_opening(NIGHTLY, utc(2026, 6, 10, 2, 30), [LUNCH_FREEZE]) == Opening(
        utc(2026, 6, 10, 3), utc(2026, 6, 10, 5)
    )


def test_a_freeze_over_a_whole_opening_skips_it() -> None:
    day = FreezePeriod("release day", datetime(2026, 6, 10, tzinfo=BERLIN), datetime(2026, 6, 11, tzinfo=BERLIN))
    assert next_opening(NIGHTLY, utc(2026, 6, 9, 12), [day]) == Opening(utc(2026, 6, 11, 1), utc(2026, 6, 11, 5))


def test_overlapping_freezes_leave_only_what_neither_covers() -> None:
    freezes = [
        FreezePeriod("a", utc(2026, 6, 10, 0), utc(2026, 6, 10, 2)),
        FreezePeriod("b", utc(2026, 6, 10, 1, 30), utc(2026, 6, 10, 4)),
    ]
    assert next_opening(NIGHTLY, utc(2026, 6, 10), freezes) == Opening(utc(2026, 6, 10, 4), utc(2026, 6, 10, 5))


def test_is_open() -> None:
    assert is_open(NIGHTLY, utc(2026, 6, 10, 1))
    assert is_open(NIGHTLY, utc(2026, 6, 10, 4, 59))
    assert not is_open(NIGHTLY, utc(2026, 6, 10, 5))  # openings are half-open
    assert not is_open(NIGHTLY, utc(2026, 6, 10, 0, 59))
    assert is_open(NIGHTLY, utc(2026, 6, 10, 1, 30), [LUNCH_FREEZE])
    assert not is_open(NIGHTLY, utc(2026, 6, 10, 2, 30), [LUNCH_FREEZE])
    assert is_open(NIGHTLY, utc(2026, 6, 10, 3), [LUNCH_FREEZE])  # freezes are half-open too


def test_start_slot_starts_now_when_the_job_fits_in_the_rest() -> None:
    assert start_slot(NIGHTLY, utc(2026, 6, 10, 4), timedelta(hours=1)) == utc(2026, 6, 10, 4)


def test_start_slot_waits_for_the_next_opening_when_the_rest_is_too_short() -> None:
    assert start_slot(NIGHTLY, utc(2026, 6, 10, 4), timedelta(hours=1, seconds=1)) == utc(2026, 6, 11, 1)


def test_start_slot_skips_a_part_a_freeze_made_too_short() -> None:
    at = utc(2026, 6, 10)
    assert start_slot(NIGHTLY, at, timedelta(minutes=60), [LUNCH_FREEZE]) == utc(2026, 6, 10, 1)
    assert start_slot(NIGHTLY, at, timedelta(minutes=90), [LUNCH_FREEZE]) == utc(2026, 6, 10, 3)
    assert start_slot(NIGHTLY, at, timedelta(hours=3), [LUNCH_FREEZE]) == utc(2026, 6, 11, 1)


def test_start_slot_takes_the_earliest_of_overlapping_openings() -> None:
    # Starts every 2 hours, open 3: [00-03) [02-05) ...; a freeze 02:30-03:00 cuts the first short, not the second.
    overlapping = window("FREQ=DAILY;BYHOUR=0,2,4,6,8,10,12,14,16,18,20,22;BYMINUTE=0", timedelta(hours=3))
    freeze = FreezePeriod("f", utc(2026, 6, 10, 2, 30), utc(2026, 6, 10, 3))
    assert start_slot(overlapping, utc(2026, 6, 10, 1), timedelta(hours=2), [freeze]) == utc(2026, 6, 10, 3)
    assert start_slot(overlapping, utc(2026, 6, 10, 1), timedelta(hours=1), [freeze]) == utc(2026, 6, 10, 1)


def test_nothing_within_the_horizon_is_none() -> None:
    yearly = window("FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24;BYHOUR=10", timedelta(hours=2))
    assert next_opening(yearly, utc(2026, 1, 1), horizon=timedelta(days=300)) is None
    assert next_opening(yearly, utc(2026, 1, 1)) == Opening(utc(2026, 12, 24, 10), utc(2026, 12, 24, 12))
    assert start_slot(yearly, utc(2026, 1, 1), timedelta(hours=1), horizon=timedelta(days=300)) is None
    assert start_slot(NIGHTLY, utc(2026, 6, 10), timedelta(hours=5)) is None  # longer than the window


def test_a_freeze_longer_than_the_horizon_is_none() -> None:
    summer = FreezePeriod("summer", utc(2026, 6, 1), utc(2026, 9, 1))
    assert next_opening(NIGHTLY, utc(2026, 6, 10), [summer], horizon=timedelta(days=30)) is None
    assert next_opening(NIGHTLY, utc(2026, 6, 10), [summer]) == Opening(utc(2026, 9, 1, 1), utc(2026, 9, 1, 5))


def test_a_finished_rule_has_no_next_opening() -> None:
    counted = window("FREQ=WEEKLY;COUNT=3;BYHOUR=1", starts=datetime(2026, 1, 1))
    assert [o.start.date() for o in openings(counted, utc(2025, 1, 1), utc(2027, 1, 1))] == [
        date(2026, 1, 1),
        date(2026, 1, 8),
        date(2026, 1, 15),
    ]
    assert next_opening(counted, utc(2026, 1, 16)) is None


def test_frozen() -> None:
    later = FreezePeriod("later", utc(2026, 6, 10, 2, 30), utc(2026, 6, 12))
    assert frozen([LUNCH_FREEZE, later], utc(2026, 6, 10, 2, 45)) is LUNCH_FREEZE
    assert frozen([LUNCH_FREEZE, later], utc(2026, 6, 10, 3)) is later
    assert frozen([LUNCH_FREEZE, later], utc(2026, 6, 12)) is None
    assert frozen([], utc(2026, 6, 12)) is None


# --- UNTIL, COUNT and starts ---------------------------------------------------------------------------------


def test_until_in_utc_local_and_as_a_date() -> None:
    zulu = window("FREQ=DAILY;BYHOUR=22;UNTIL=20260103T210000Z", timezone="Europe/Berlin")  # 22:00 CET on the 3rd
    local = window("FREQ=DAILY;BYHOUR=22;UNTIL=20260103T215959", timezone="Europe/Berlin")
    whole_day = window("FREQ=DAILY;BYHOUR=22;UNTIL=20260103", timezone="Europe/Berlin")
    everything = (utc(2025, 12, 1), utc(2026, 2, 1))
    assert len(openings(zulu, *everything)) == 3
    assert len(openings(local, *everything)) == 2
    assert len(openings(whole_day, *everything)) == 3


def test_an_aware_starts_becomes_wall_time() -> None:
    made = parse_window("w", "RRULE:freq=daily", timedelta(hours=1), " Europe/Berlin ", utc(2026, 1, 3, 1))
    assert (made.starts, made.rrule, made.timezone) == (datetime(2026, 1, 3, 2, 0), "FREQ=DAILY", "Europe/Berlin")


def test_expanding_far_from_starts_matches_expanding_from_starts() -> None:
    every_third_week = window("FREQ=WEEKLY;INTERVAL=3;BYDAY=MO,TH;BYHOUR=4", starts=datetime(2001, 2, 3, 4, 5))
    found = openings(every_third_week, utc(2026, 6, 1), utc(2026, 8, 1))
    expected = dateutil_reference(every_third_week, utc(2026, 6, 1), utc(2026, 8, 1))
    assert spans(found) == expected
    assert len(found) == 6


# --- refused input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rrule", "message"),
    [
        ("FREQ=SECONDLY", "FREQ=SECONDLY is refused"),
        ("FREQ=MINUTELY;INTERVAL=1", "FREQ=MINUTELY is refused"),
        ("FREQ=HOURLY", "FREQ=HOURLY is refused"),
        ("FREQ=FORTNIGHTLY", "FREQ must be one of"),
        ("BYDAY=MO", "needs FREQ"),
        ("", "one RRULE line"),
        ("FREQ=DAILY\nDTSTART:20260101T000000", "one RRULE line"),
        ("DTSTART=20260101T000000;FREQ=DAILY", "must not hold DTSTART"),
        ("FREQ=DAILY;BYEASTER=0", "BYEASTER is not supported"),
        ("FREQ=DAILY;X-NAME=1", "X-NAME is not supported"),
        ("FREQ=DAILY;FREQ=WEEKLY", "FREQ twice"),
        ("FREQ=DAILY;;", "is not KEY=VALUE"),
        ("FREQ=DAILY;COUNT=5;UNTIL=20270101T000000Z", "both COUNT and UNTIL"),
        ("FREQ=DAILY;COUNT=10001", "COUNT must be a whole number from 1 to 10000"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number"),
        ("FREQ=DAILY;WKST=XX", "WKST must be one of"),
        ("FREQ=DAILY;UNTIL=20251231T000000Z", "is before the window's starts"),
        ("FREQ=DAILY;UNTIL=2026-12-31", "not a date or date-time"),
        ("FREQ=DAILY;UNTIL=20261331", "not a date or date-time"),
        ("FREQ=WEEKLY;BYDAY=XX", "not a valid RRULE"),
        ("FREQ=MONTHLY;BYSETPOS=400;BYDAY=MO", "not a valid RRULE"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never occurs"),
        ("FREQ=DAILY;BYMONTH=4,6;BYMONTHDAY=31,-31", "never occurs"),
        ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6", "never occurs"),
        (
            "FREQ=DAILY;BYHOUR="
            + ",".join(map(str, range(24)))
            + ";BYMINUTE="
            + ",".join(map(str, range(60)))
            + ";BYSECOND=0,30",
            "2880 times a day",
        ),
        ("FREQ=DAILY;" + "BYHOUR=1;" * 200, "at most 1000 characters"),
    ],
)
def test_hostile_and_broken_rules_are_refused_naming_the_rrule(rrule: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        window(rrule)
    assert caught.value.field == "rrule"


def test_a_rule_denser_than_the_occurrence_limit_fails_loudly() -> None:
    every_minute = window(
        "FREQ=DAILY;BYMINUTE=" + ",".join(map(str, range(60))) + ";BYHOUR=" + ",".join(map(str, range(24))),
        timedelta(minutes=1),
    )
    assert len(openings(every_minute, utc(2026, 6, 10), utc(2026, 6, 11))) == 1440
    with pytest.raises(InvalidInput, match="more than 2000 openings"):
        openings(every_minute, utc(2026, 6, 10), utc(2026, 6, 12))


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "", "../../etc/passwd", "CEST"])
def test_an_unknown_time_zone_is_refused(timezone: str) -> None:
    with pytest.raises(InvalidInput, match="not an IANA time zone") as caught:
        window("FREQ=DAILY", timezone=timezone)
    assert caught.value.field == "timezone"


@pytest.mark.parametrize(
    "duration", [timedelta(0), timedelta(minutes=-5), MAX_DURATION + timedelta(seconds=1)], ids=["zero", "neg", "long"]
)
def test_a_duration_out_of_range_is_refused(duration: timedelta) -> None:
    with pytest.raises(InvalidInput, match="duration of window 'test window' must be over 0") as caught:
        window("FREQ=DAILY", duration=duration)
    assert caught.value.field == "duration"


def test_a_week_long_duration_is_allowed() -> None:
    assert window("FREQ=WEEKLY", duration=MAX_DURATION).duration == MAX_DURATION


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"offset": timedelta(days=32)}, "offset"),
        ({"name": "  "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"starts": datetime(1800, 1, 1)}, "starts"),
        ({"starts": datetime(2026, 1, 1, 2, 0, 0, 5)}, "starts"),
    ],
)
def test_other_fields_are_checked(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {
        "name": "w",
        "rrule": "FREQ=DAILY",
        "duration": timedelta(hours=1),
        "timezone": "UTC",
        "starts": datetime(2026, 1, 1),
    }
    arguments.update(kwargs)
    with pytest.raises(InvalidInput) as caught:
        parse_window(**arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 6, 10, 3)
    with pytest.raises(InvalidInput, match="after must be an aware datetime") as caught:
        openings(NIGHTLY, naive, utc(2026, 7, 1))
    assert caught.value.field == "after"
    for call in (
        lambda: next_opening(NIGHTLY, naive),
        lambda: is_open(NIGHTLY, naive),
        lambda: start_slot(NIGHTLY, naive, timedelta(hours=1)),
        lambda: frozen([LUNCH_FREEZE], naive),
        lambda: FreezePeriod("f", naive, utc(2026, 7, 1)),
        lambda: MaintenanceWindow("w", "FREQ=DAILY", timedelta(hours=1), "UTC", utc(2026, 1, 1)),
    ):
        with pytest.raises(InvalidInput):
            call()


def test_other_question_arguments_are_checked() -> None:
    with pytest.raises(InvalidInput, match="must be after"):
        openings(NIGHTLY, utc(2026, 7, 1), utc(2026, 7, 1))
    with pytest.raises(InvalidInput, match="horizon"):
        next_opening(NIGHTLY, utc(2026, 7, 1), horizon=timedelta(0))
    with pytest.raises(InvalidInput, match="estimate"):
        start_slot(NIGHTLY, utc(2026, 7, 1), timedelta(minutes=-1))
    with pytest.raises(InvalidInput, match=r"ends .* before it starts"):
        FreezePeriod("backwards", utc(2026, 7, 2), utc(2026, 7, 1))


# --- properties ----------------------------------------------------------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC", "Pacific/Chatham"]
RULES = ["FREQ=DAILY", "FREQ=WEEKLY;BYDAY=SU", "FREQ=MONTHLY;BYDAY=2TU", "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA,SU"]


@settings(max_examples=200, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    rule=st.sampled_from(RULES),
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 15, 30, 45]),
    minutes=st.integers(1, 7 * 24 * 60),
    first_day=st.integers(0, 3000),
    days=st.integers(1, 60),
)
def test_openings_last_the_duration_and_start_at_the_rule_hour_outside_gaps(
    zone_name: str, rule: str, hour: int, minute: int, minutes: int, first_day: int, days: int
) -> None:
    zone = ZoneInfo(zone_name)
    duration = timedelta(minutes=minutes)
    found = window(f"{rule};BYHOUR={hour};BYMINUTE={minute}", duration, zone_name, datetime(2019, 1, 1))
    after = utc(2020, 1, 1) + timedelta(days=first_day)
    until = after + timedelta(days=days)
    result = openings(found, after, until)
    assert result == sorted(result, key=lambda opening: opening.start)
    for opening in result:
        assert opening.end - opening.start == duration
        assert opening.end > after
        assert opening.start < until
        local = opening.start.astimezone(zone)
        wanted = datetime.combine(local.date(), time(hour, minute))
        if wanted.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wanted:
            assert (local.hour, local.minute, local.fold) == (hour, minute, 0)
        else:  # in a gap: the start is the first instant after it
            assert (opening.start - timedelta(seconds=1)).astimezone(zone).utcoffset() != local.utcoffset()
            assert local.replace(tzinfo=None) > wanted


def dateutil_reference(found: MaintenanceWindow, after: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """Openings of a UTC window by walking dateutil's rule from its start, as the simple reading says."""
    rule = rrulestr(found.rrule.replace("Z", ""), dtstart=found.starts)  # UTC: UNTIL as wall time
    low = (after - found.duration - found.offset).replace(tzinfo=None)
    high = (until - found.offset).replace(tzinfo=None)
    return [
        (
            (occurrence + found.offset).replace(tzinfo=UTC),
            (occurrence + found.offset + found.duration).replace(tzinfo=UTC),
        )
        for occurrence in rule.between(low, high, inc=True)
        if (occurrence + found.offset + found.duration).replace(tzinfo=UTC) > after
        and (occurrence + found.offset).replace(tzinfo=UTC) < until
    ]


@settings(max_examples=300, deadline=None)
@given(
    rule=st.sampled_from(
        [
            "FREQ=DAILY;INTERVAL={i}",
            "FREQ=WEEKLY;INTERVAL={i}",
            "FREQ=WEEKLY;INTERVAL={i};WKST=SU;BYDAY=SU,MO,FR",
            "FREQ=MONTHLY;INTERVAL={i}",
            "FREQ=MONTHLY;INTERVAL={i};BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
            "FREQ=MONTHLY;INTERVAL={i};BYDAY=-1SA;BYHOUR=3,15",
            "FREQ=YEARLY;INTERVAL={i}",
            "FREQ=YEARLY;INTERVAL={i};BYWEEKNO=1,20;BYDAY=MO",
            "FREQ=YEARLY;INTERVAL={i};BYYEARDAY=1,100,-1",
            "FREQ=DAILY;INTERVAL={i};UNTIL=20310101T000000Z",
        ]
    ),
    interval=st.integers(1, 5),
    starts=st.datetimes(datetime(2000, 1, 1), datetime(2030, 12, 31)).map(lambda moment: moment.replace(microsecond=0)),
    later_days=st.integers(0, 4000),
    span_days=st.integers(1, 120),
    offset_hours=st.integers(-48, 48),
)
def test_expanding_near_the_question_gives_what_walking_from_starts_gives(
    rule: str, interval: int, starts: datetime, later_days: int, span_days: int, offset_hours: int
) -> None:
    found = window(rule.format(i=interval), timedelta(hours=5), "UTC", starts, timedelta(hours=offset_hours))
    after = starts.replace(tzinfo=UTC) + timedelta(days=later_days)
    until = after + timedelta(days=span_days)
    assert spans(openings(found, after, until)) == dateutil_reference(found, after, until)
