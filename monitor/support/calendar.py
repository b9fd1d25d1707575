"""The support-hours clock: when the vendor's support desk is open, and support-time arithmetic.

The licence (Schedule 1) measures response times "during Support Hours": 9.00am-5.00pm UK
time on Business Days, a Business Day being Monday to Friday excluding Bank Holidays and
Christmas Day. Everything here is pure: instants in, instants out (always in UTC, so that
callers' ``+ timedelta`` is true elapsed time, never wall-clock arithmetic across a DST change).

Opening hours are written in local wall time in ``SupportHours.timezone`` and converted per
date, so 09:00 stays 09:00 on both sides of a clock change. Holidays come from the
``holidays`` library (country + subdivision, which includes substitute days for holidays that
fall on a weekend), plus explicitly closed dates and dates closed every year.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

_SEARCH_LIMIT_DAYS = 3660
"""Give up after ten years of dates without enough opening time (a config that never opens)."""

WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, order=True)
class OpeningInterval:
    """One opening ``[start, end)`` on a day, in local wall time; it never crosses midnight."""

    start: time
    end: time

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            if getattr(self, name).tzinfo is not None:
                raise ValueError(f"opening {name} is a wall time and carries no zone")
        if self.end <= self.start:
            raise ValueError(
                "opening interval must end after it starts, "
                f"got {self.start:%H:%M}-{self.end:%H:%M}"
            )

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


_NINE_TO_FIVE = (OpeningInterval(time(9), time(17)),)
DEFAULT_WEEK: tuple[tuple[OpeningInterval, ...], ...] = (_NINE_TO_FIVE,) * 5 + ((),) * 2
"""Monday to Friday 09:00-17:00: the licence's Support Hours."""


@dataclass(frozen=True)
class SupportHours:
    """When support is open.

    ``week`` has seven entries, Monday first, each the day's opening intervals (sorted, not
    overlapping). A date is closed when it is a holiday of ``holiday_country`` /
    ``holiday_subdivision`` (``None`` country: no public holidays), is in ``closed_dates``, or
    its (month, day) is in ``annual_closures`` (Christmas Day by default, which the licence
    names separately from Bank Holidays). ``business_day`` is how much support time one
    Business Day is when deadlines are counted in Business Days.
    """

    timezone: str = "Europe/London"
    week: tuple[tuple[OpeningInterval, ...], ...] = DEFAULT_WEEK
    holiday_country: str | None = "GB"
    holiday_subdivision: str | None = "NIR"
    closed_dates: frozenset[date] = frozenset()
    annual_closures: frozenset[tuple[int, int]] = frozenset({(12, 25)})
    business_day: timedelta = timedelta(hours=8)
    zone: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        object.__setattr__(self, "zone", zone)
        if len(self.week) != 7:
            raise ValueError(f"week needs 7 days (Monday first), got {len(self.week)}")
        for name, intervals in zip(WEEKDAY_NAMES, self.week, strict=True):
            for before, after in itertools.pairwise(intervals):
                if after.start < before.end:
                    raise ValueError(
                        f"{name}: opening intervals must be sorted and not overlap, "
                        f"got {before} then {after}"
                    )
        if not any(self.week):
            raise ValueError("support is never open: give opening hours for at least one day")
        if self.business_day <= timedelta(0):
            raise ValueError(f"business_day must be positive, got {self.business_day}")
        for month, day in self.annual_closures:
            date(2000, month, day)  # a leap year, so 29 February is accepted
        if self.holiday_country is None and self.holiday_subdivision is not None:
            raise ValueError("holiday subdivision given without a holiday country")
        if self.holiday_country is not None:
            try:
                holidays.country_holidays(self.holiday_country, subdiv=self.holiday_subdivision)
            except NotImplementedError as exc:
                raise ValueError(f"holidays: {exc}") from exc


@functools.lru_cache(maxsize=256)
def _holiday_table(country: str, subdivision: str | None, year: int) -> Mapping[date, str]:
    # SupportHours validated the country and subdivision, so this cannot raise.
    table = holidays.country_holidays(country, subdiv=subdivision, years=year)
    return MappingProxyType(dict(table.items()))


def _require_aware(instant: datetime, name: str) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must carry a time zone, got naive {instant.isoformat()}")


def holidays_in_year(year: int, hours: SupportHours) -> Mapping[date, str]:
    """Every public holiday of the configured country and subdivision in ``year``, with names."""
    if hours.holiday_country is None:
        return MappingProxyType({})
    return _holiday_table(hours.holiday_country, hours.holiday_subdivision, year)


def closed_reason(day: date, hours: SupportHours) -> str | None:
    """Why ``day`` has no support at all (holiday name, "closed date", "weekend"), or ``None``."""
    holiday = holidays_in_year(day.year, hours).get(day)
    if holiday is not None:
        return holiday
    if day in hours.closed_dates:
        return "closed date"
    if (day.month, day.day) in hours.annual_closures:
        return "closed every year"
    if not hours.week[day.weekday()]:
        return f"no support on {WEEKDAY_NAMES[day.weekday()].capitalize()}s"
    return None


def is_business_day(day: date, hours: SupportHours) -> bool:
    """Whether ``day`` (a local date) has any Support Hours."""
    return closed_reason(day, hours) is None


def open_intervals(day: date, hours: SupportHours) -> tuple[tuple[datetime, datetime], ...]:
    """The opening intervals of local date ``day`` as UTC instants (empty on closed days)."""
    if not is_business_day(day, hours):
        return ()
    return tuple(
        (
            datetime.combine(day, interval.start, tzinfo=hours.zone).astimezone(UTC),
            datetime.combine(day, interval.end, tzinfo=hours.zone).astimezone(UTC),
        )
        for interval in hours.week[day.weekday()]
    )


def _intervals_from(start: datetime, hours: SupportHours) -> list[tuple[datetime, datetime]]:
    """The opening intervals of the first date, from ``start``'s on, still open after ``start``
    (clipped to begin no earlier than ``start``)."""
    first = start.astimezone(hours.zone).date()
    found: list[tuple[datetime, datetime]] = []
    for offset in range(_SEARCH_LIMIT_DAYS):
        for opened, closed in open_intervals(first + timedelta(days=offset), hours):
            if closed > start:
                found.append((max(opened, start), closed))
        if found:
            return found
    raise ValueError(f"no Support Hours within {_SEARCH_LIMIT_DAYS} days of {start.isoformat()}")


def is_open(instant: datetime, hours: SupportHours) -> bool:
    """Whether support is open at ``instant`` (opening time included, closing time not)."""
    _require_aware(instant, "instant")
    moment = instant.astimezone(UTC)
    day = moment.astimezone(hours.zone).date()
    return any(opened <= moment < closed for opened, closed in open_intervals(day, hours))


def next_open(instant: datetime, hours: SupportHours) -> datetime:
    """``instant`` (in UTC) if support is open then, else the next opening time."""
    _require_aware(instant, "instant")
    moment = instant.astimezone(UTC)
    return _intervals_from(moment, hours)[0][0]


def add_support_hours(start: datetime, amount: timedelta, hours: SupportHours) -> datetime:
    """The earliest instant by which ``amount`` of support time has elapsed since ``start``.

    Time outside Support Hours does not count, so a start outside them effectively begins at
    the next opening. Landing exactly on a closing time returns that closing time (the
    deadline is met by the end of that day, not the next morning). ``amount`` zero returns
    ``start`` itself.
    """
    _require_aware(start, "start")
    if amount < timedelta(0):
        raise ValueError(f"support time to add must not be negative, got {amount}")
    moment = start.astimezone(UTC)
    remaining = amount
    if remaining == timedelta(0):
        return moment
    for _ in range(_SEARCH_LIMIT_DAYS):
        for opened, closed in _intervals_from(moment, hours):
            available = closed - opened
            if remaining <= available:
                return opened + remaining
            remaining -= available
            moment = closed
    raise ValueError(f"cannot add {amount} of support time to {start.isoformat()}")


def add_business_days(start: datetime, days: int, hours: SupportHours) -> datetime:
    """``start`` plus ``days`` Business Days, each ``hours.business_day`` of support time."""
    if days < 0:
        raise ValueError(f"business days to add must not be negative, got {days}")
    return add_support_hours(start, hours.business_day * days, hours)


def support_time_between(start: datetime, end: datetime, hours: SupportHours) -> timedelta:
    """Support time in ``[start, end)``; ``end`` must not be before ``start``."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    begin, finish = start.astimezone(UTC), end.astimezone(UTC)
    if finish < begin:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    total = timedelta(0)
    day = begin.astimezone(hours.zone).date()
    last = finish.astimezone(hours.zone).date()
    while day <= last:
        for opened, closed in open_intervals(day, hours):
            overlap = min(closed, finish) - max(opened, begin)
            if overlap > timedelta(0):
                total += overlap
        day += timedelta(days=1)
    return total


def support_seconds_between(start: datetime, end: datetime, hours: SupportHours) -> float:
    """``support_time_between`` in seconds (exact to the microsecond)."""
    return support_time_between(start, end, hours).total_seconds()
