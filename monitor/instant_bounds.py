"""Bounds of the instants a user or a webhook records: fault times, exclusions, claims.

A recorded instant says when something happened, so it cannot lie ahead of the clock by more
than the skew two honest machines may have (``FUTURE_TOLERANCE``, 5 minutes), nor before the
year 2000 (slawatch's contracts, Alertmanager and NTP-synchronised hosts all postdate it) or
before a contract's start when one is given. Without these bounds ``fault solve --at`` three
weeks ahead closes a fault at once, its deadlines pass unseen and its alerts go quiet; and
Go's zero time ``0001-01-01T00:00:00Z`` (Alertmanager's "no value") opens a fault in year 1.

An exclusion window is a plan, not a record: its start and end may lie ahead, but not beyond
``SCHEDULE_HORIZON`` (a year), and never before 2000 either.

Pure: ``now`` is an argument. Every refusal is an ``InstantOutOfRange`` (a ``ValueError``)
whose message is one line naming the field, the bound and the value.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

FUTURE_TOLERANCE = timedelta(minutes=5)
"""How far ahead of ``now`` a recorded instant may lie: clock skew between the sender and us."""
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No recorded instant lies before this (absent a later contract start)."""
SCHEDULE_HORIZON = timedelta(days=366)
"""How far ahead an exclusion window may be planned."""
GO_ZERO_YEAR = 1
"""Go's zero time (``0001-01-01T00:00:00Z``) is how Alertmanager writes "no value"."""


class InstantOutOfRange(ValueError):
    """Raised by ``check_recorded``/``check_scheduled`` for an instant outside its bounds;
    the message is ``<field>: must ..., got <instant>``."""


def is_go_zero_time(instant: datetime) -> bool:
    """Whether ``instant`` is Go's zero time, which means "absent" (any offset: Go prints
    the zero time in UTC, but a hand-written payload may not)."""
    return instant.year == GO_ZERO_YEAR and instant.month == 1 and instant.day == 1


def _show(instant: datetime) -> str:
    return instant.isoformat()


def _check_aware(instant: datetime, field: str) -> None:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InstantOutOfRange(f"{field}: must carry a UTC offset, got {_show(instant)}")


def _floor(not_before: datetime | None) -> datetime:
    return EARLIEST if not_before is None else max(EARLIEST, not_before)


def _check_floor(instant: datetime, field: str, not_before: datetime | None) -> None:
    floor = _floor(not_before)
    if instant < floor:
        what = "the year 2000" if floor == EARLIEST else f"the contract start {_show(floor)}"
        zero = " (Go's zero time, which means no value)" if is_go_zero_time(instant) else ""
        raise InstantOutOfRange(f"{field}: must not lie before {what}, got {_show(instant)}{zero}")


def check_recorded(
    instant: datetime, field: str, now: datetime, *, not_before: datetime | None = None
) -> datetime:
    """``instant`` if it may be recorded as having happened, as of ``now``.

    Refused: more than ``FUTURE_TOLERANCE`` after ``now``; before 2000-01-01 or before
    ``not_before`` (a contract's start); without a UTC offset.
    """
    _check_aware(instant, field)
    _check_floor(instant, field, not_before)
    if instant - now > FUTURE_TOLERANCE:
        raise InstantOutOfRange(
            f"{field}: must not lie more than 5 minutes after now ({_show(now)}): "
            f"a recorded time says when it happened, got {_show(instant)}"
        )
    return instant


def check_scheduled(
    instant: datetime, field: str, now: datetime, *, not_before: datetime | None = None
) -> datetime:
    """``instant`` if it may bound a planned window (an exclusion), as of ``now``: not before
    2000-01-01 (or ``not_before``), not more than ``SCHEDULE_HORIZON`` after ``now``."""
    _check_aware(instant, field)
    _check_floor(instant, field, not_before)
    if instant - now > SCHEDULE_HORIZON:
        raise InstantOutOfRange(
            f"{field}: must not lie more than 366 days after now ({_show(now)}), "
            f"got {_show(instant)}"
        )
    return instant


def check_exclusion(
    start: datetime, end: datetime, announced_at: datetime | None, now: datetime
) -> None:
    """An exclusion window given through the API: ``start``/``end`` planned within reach,
    ``announced_at`` (when the vendor gave notice) recorded, so not in the future."""
    check_scheduled(start, "start", now)
    check_scheduled(end, "end", now)
    if announced_at is not None:
        check_recorded(announced_at, "announced_at", now)
