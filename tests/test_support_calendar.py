"""The support-hours clock against dates checked by hand for 2026 and 2027 (Europe/London).

Hand checks used below: BST 2026 runs 29 March-25 October, BST 2027 28 March-31 October.
Northern Ireland 2026 closed weekdays: 1 Jan, 17 Mar, 3 Apr, 6 Apr, 4 May, 25 May, 13 Jul (Boyne,
12 Jul is a Sunday), 31 Aug, 25 Dec, 28 Dec (Boxing Day, 26 Dec is a Saturday). 2027: 1 Jan,
17 Mar, 26 Mar, 29 Mar, 3 May, 31 May, 12 Jul, 30 Aug, 27 Dec (for Saturday's Christmas Day),
28 Dec (for Sunday's Boxing Day).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given

from monitor.support.calendar import (
    OpeningInterval,
    SupportHours,
    add_business_days,
    add_support_hours,
    closed_reason,
    is_business_day,
    is_open,
    next_open,
    support_seconds_between,
    support_time_between,
)
from tests.strategies import support_instants, support_spans

LONDON = ZoneInfo("Europe/London")
NIR = SupportHours()
ENG = SupportHours(holiday_subdivision="ENG")


def local(*parts: int) -> datetime:
    """A Europe/London wall time."""
    return datetime(*parts, tzinfo=LONDON)  # type: ignore[misc]


def utc(*parts: int) -> datetime:
    """A UTC instant."""
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


HAND_CHECKED_ADDS = [
    # (start, support hours to add, expected, why)
    (local(2026, 3, 10, 10), 4, local(2026, 3, 10, 14), "inside one day"),
    (local(2026, 3, 10, 15), 4, local(2026, 3, 11, 11), "2h Tue + 2h Wed"),
    (local(2026, 3, 14, 12), 4, local(2026, 3, 16, 13), "Saturday receipt starts Monday 09:00"),
    (local(2026, 3, 16, 15), 4, local(2026, 3, 18, 11), "St Patrick's Day Tue 17 Mar closed"),
    (local(2026, 3, 27, 15), 4, local(2026, 3, 30, 11), "Fri GMT 2h, Mon BST 2h (DST 29 Mar)"),
    (local(2026, 10, 23, 16), 4, local(2026, 10, 26, 12), "Fri BST 1h, Mon GMT 3h (DST 25 Oct)"),
    (local(2026, 4, 2, 16), 8, local(2026, 4, 7, 16), "Good Friday and Easter Monday closed"),
    (local(2026, 7, 10, 16), 4, local(2026, 7, 14, 12), "Boyne Sun 12 Jul observed Mon 13"),
    (local(2026, 12, 24, 16), 8, local(2026, 12, 29, 16), "Christmas Fri, Boxing Day subst Mon 28"),
    (local(2026, 11, 23, 13), 4, local(2026, 11, 23, 17), "landing on closing time stays there"),
    (local(2026, 11, 23, 17), 4, local(2026, 11, 24, 13), "received at closing: next morning"),
    (local(2027, 3, 16, 14), 8, local(2027, 3, 18, 14), "St Patrick's Day Wed 17 Mar 2027"),
    (local(2027, 3, 25, 13), 8, local(2027, 3, 30, 13), "Easter 2027 spans the DST change"),
    (local(2027, 7, 9, 15), 4, local(2027, 7, 13, 11), "Boyne Mon 12 Jul 2027"),
    (local(2027, 10, 29, 16, 30), 1, local(2027, 11, 1, 9, 30), "DST ends Sun 31 Oct 2027"),
    (local(2027, 12, 24, 10), 24, local(2027, 12, 31, 10), "Christmas 2027: 27 and 28 Dec closed"),
    (local(2027, 1, 1, 9), 4, local(2027, 1, 4, 13), "New Year's Day Friday 2027"),
]


class TestAddSupportHours:
    """``add_support_hours``: the deadline after N hours of support time."""

    @pytest.mark.parametrize(("start", "hours", "expected", "why"), HAND_CHECKED_ADDS)
    def test_hand_checked_dates(
        self, start: datetime, hours: int, expected: datetime, why: str
    ) -> None:
        """Each hand-checked 2026/2027 case lands on the instant worked out on paper."""
        assert add_support_hours(start, timedelta(hours=hours), NIR) == expected, why

    def test_england_and_wales_works_on_northern_irish_holidays(self) -> None:
        """ENG has no St Patrick's Day or Boyne holiday, so those days count there."""
        assert add_support_hours(local(2026, 3, 16, 15), timedelta(hours=4), ENG) == local(
            2026, 3, 17, 11
        )
        assert add_support_hours(local(2026, 7, 10, 16), timedelta(hours=4), ENG) == local(
            2026, 7, 13, 12
        )

    def test_result_is_utc(self) -> None:
        """Results are UTC so that adding a timedelta afterwards is elapsed time."""
        result = add_support_hours(local(2026, 6, 1, 10), timedelta(hours=1), NIR)
        assert result.tzinfo is UTC
        assert result == utc(2026, 6, 1, 10)

    def test_zero_returns_start_even_when_closed(self) -> None:
        """Adding nothing does not move the instant to the next opening."""
        assert add_support_hours(local(2026, 3, 14, 12), timedelta(0), NIR) == local(
            2026, 3, 14, 12
        )

    def test_rejects_naive_and_negative(self) -> None:
        """Naive datetimes and negative amounts are errors naming the problem."""
        with pytest.raises(ValueError, match="must carry a time zone"):
            add_support_hours(datetime(2026, 3, 10, 10), timedelta(hours=1), NIR)
        with pytest.raises(ValueError, match="must not be negative"):
            add_support_hours(local(2026, 3, 10, 10), timedelta(hours=-1), NIR)

    def test_closed_dates_and_split_day(self) -> None:
        """Extra closed dates are skipped and lunch breaks do not count."""
        lunch = (OpeningInterval(time(9), time(12)), OpeningInterval(time(13), time(17)))
        hours = SupportHours(
            week=(lunch,) * 5 + ((),) * 2, closed_dates=frozenset({date(2026, 3, 11)})
        )
        assert add_support_hours(local(2026, 3, 10, 11), timedelta(hours=2), hours) == local(
            2026, 3, 10, 14
        )
        assert add_support_hours(local(2026, 3, 10, 16), timedelta(hours=2), hours) == local(
            2026, 3, 12, 10
        )

    @given(support_spans())
    def test_round_trip_with_support_time_between(self, span: tuple[datetime, timedelta]) -> None:
        """The support time from start to the computed deadline is exactly what was added."""
        start, amount = span
        deadline = add_support_hours(start, amount, NIR)
        assert deadline >= start
        assert support_time_between(start, deadline, NIR) == amount
        if amount > timedelta(0):
            # The earliest such instant: a moment earlier, less support time had elapsed.
            assert support_time_between(start, deadline - timedelta(microseconds=1), NIR) < amount

    @given(support_spans())
    def test_deadline_is_inside_support_hours_or_at_closing(
        self, span: tuple[datetime, timedelta]
    ) -> None:
        """A positive amount ends while support is open or exactly at a closing time."""
        start, amount = span
        assume(amount > timedelta(0))
        deadline = add_support_hours(start, amount, NIR)
        closing = deadline.astimezone(LONDON).time() == time(17)
        assert is_open(deadline, NIR) or closing


class TestAddBusinessDays:
    """``add_business_days``: N Business Days of 8 support hours each."""

    def test_three_business_days_from_monday_morning(self) -> None:
        """24 support hours from Monday 10:00 is Thursday 10:00 in an ordinary week."""
        assert add_business_days(local(2026, 11, 23, 10), 3, NIR) == local(2026, 11, 26, 10)

    def test_five_days_over_easter_2027(self) -> None:
        """Five Business Days from Wed 24 Mar 2027 12:00 skip Good Friday and Easter Monday."""
        # Wed 5h, Thu 8h, Tue 30 8h, Wed 31 8h, Thu 1 Apr 8h -> 37h; 3h more on Fri 2 Apr.
        assert add_business_days(local(2027, 3, 24, 12), 5, NIR) == local(2027, 4, 2, 12)

    def test_configured_business_day_length(self) -> None:
        """A Business Day of 7.5 hours is honoured."""
        hours = SupportHours(business_day=timedelta(hours=7, minutes=30))
        assert add_business_days(local(2026, 11, 23, 9), 2, hours) == local(2026, 11, 24, 16)

    def test_rejects_negative(self) -> None:
        """Negative Business Days are an error."""
        with pytest.raises(ValueError, match="must not be negative"):
            add_business_days(local(2026, 11, 23, 9), -1, NIR)


class TestSupportTimeBetween:
    """``support_time_between`` / ``support_seconds_between``: counted support time."""

    def test_across_weekend_and_spring_dst(self) -> None:
        """Fri 27 Mar 2026 12:00 GMT to Mon 30 Mar 12:00 BST is 5h + 3h."""
        assert support_time_between(local(2026, 3, 27, 12), local(2026, 3, 30, 12), NIR) == (
            timedelta(hours=8)
        )

    def test_across_christmas_2026(self) -> None:
        """24 Dec to 29 Dec 2026: only the 24th and the 29th are Business Days."""
        assert support_seconds_between(local(2026, 12, 24, 9), local(2026, 12, 29, 17), NIR) == (
            16 * 3600.0
        )

    def test_empty_and_reversed(self) -> None:
        """An empty span is zero; a reversed one is an error."""
        assert support_time_between(local(2026, 3, 14), local(2026, 3, 15), NIR) == timedelta(0)
        with pytest.raises(ValueError, match="is before start"):
            support_time_between(local(2026, 3, 15), local(2026, 3, 14), NIR)

    @given(support_instants(), support_instants(), support_instants())
    def test_additive(self, a: datetime, b: datetime, c: datetime) -> None:
        """Support time over [a, c) is the sum over [a, b) and [b, c)."""
        a, b, c = sorted((a, b, c))
        whole = support_time_between(a, c, NIR)
        assert whole == support_time_between(a, b, NIR) + support_time_between(b, c, NIR)
        assert whole <= c - a


class TestIsOpenAndNextOpen:
    """``is_open`` and ``next_open`` around DST, holidays and closing time."""

    def test_opening_hours_follow_local_time_across_dst(self) -> None:
        """08:30 UTC is 09:30 BST (open) after the change but 08:30 GMT (closed) before."""
        assert is_open(utc(2026, 3, 30, 8, 30), NIR)
        assert not is_open(utc(2026, 3, 23, 8, 30), NIR)
        assert not is_open(utc(2026, 3, 30, 16, 30), NIR)
        assert is_open(utc(2026, 3, 23, 16, 30), NIR)

    def test_closing_time_is_closed(self) -> None:
        """Opening is inclusive, closing exclusive."""
        assert is_open(local(2026, 11, 23, 9), NIR)
        assert not is_open(local(2026, 11, 23, 17), NIR)

    def test_next_open(self) -> None:
        """From Friday evening before the Boyne substitute day, support next opens Tuesday."""
        assert next_open(local(2026, 7, 10, 18), NIR) == local(2026, 7, 14, 9)
        assert next_open(local(2026, 7, 14, 10), NIR) == local(2026, 7, 14, 10)


class TestBusinessDays:
    """``is_business_day`` and ``closed_reason``."""

    @pytest.mark.parametrize(
        "day",
        [
            date(2026, 1, 1),
            date(2026, 3, 17),
            date(2026, 4, 3),
            date(2026, 4, 6),
            date(2026, 5, 4),
            date(2026, 5, 25),
            date(2026, 7, 13),
            date(2026, 8, 31),
            date(2026, 12, 25),
            date(2026, 12, 28),
            date(2027, 1, 1),
            date(2027, 3, 17),
            date(2027, 3, 26),
            date(2027, 3, 29),
            date(2027, 5, 3),
            date(2027, 5, 31),
            date(2027, 7, 12),
            date(2027, 8, 30),
            date(2027, 12, 27),
            date(2027, 12, 28),
        ],
    )
    def test_northern_ireland_closed_weekdays(self, day: date) -> None:
        """Every hand-listed Northern Irish holiday weekday is closed."""
        assert day.weekday() < 5
        assert not is_business_day(day, NIR)

    def test_ordinary_days_and_reasons(self) -> None:
        """Working days are open; closed days say why."""
        assert is_business_day(date(2026, 12, 29), NIR)
        assert is_business_day(date(2026, 3, 17), ENG)
        assert closed_reason(date(2026, 3, 17), NIR) == "Saint Patrick's Day"
        assert closed_reason(date(2026, 3, 14), NIR) == "no support on Saturdays"
        no_holidays = SupportHours(holiday_country=None, holiday_subdivision=None)
        assert closed_reason(date(2026, 12, 25), no_holidays) == "closed every year"
        assert is_business_day(date(2026, 12, 28), no_holidays)


class TestSupportHoursValidation:
    """``SupportHours`` rejects configurations that cannot be a support calendar."""

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
            ({"week": ((),) * 7}, "support is never open"),
            ({"week": ((),) * 6}, "week needs 7 days"),
            ({"holiday_country": "XX"}, "holidays: Country XX not available"),
            ({"holiday_subdivision": "ZZZ"}, "does not have subdivision ZZZ"),
            ({"business_day": timedelta(0)}, "business_day must be positive"),
            (
                {
                    "week": (
                        (
                            OpeningInterval(time(9), time(13)),
                            OpeningInterval(time(12), time(17)),
                        ),
                    )
                    + ((),) * 6
                },
                "monday: opening intervals must be sorted and not overlap, got 09:00-13:00",
            ),
        ],
    )
    def test_rejected(self, kwargs: dict[str, object], message: str) -> None:
        """Each invalid setting raises ValueError naming the setting and value."""
        with pytest.raises(ValueError, match=message.replace("(", r"\(")):
            SupportHours(**kwargs)  # type: ignore[arg-type]

    def test_interval_must_end_after_start(self) -> None:
        """An opening that ends before it starts is refused with both times."""
        with pytest.raises(ValueError, match="got 17:00-09:00"):
            OpeningInterval(time(17), time(9))
