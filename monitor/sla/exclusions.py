"""Excluded windows: recurring rules expanded to concrete windows, and windows mapped to buckets.

Recurring rules are expanded in local wall time and each occurrence is converted to UTC on its
own, so "02:00 Europe/London every Sunday" stays at 02:00 local on both sides of a DST shift.
An occurrence lasts ``duration`` of elapsed time. A local start that does not exist (inside a
spring-forward gap) is read with the offset in force before the shift (PEP 495 ``fold=0``);
one that exists twice (autumn) is the first of the two.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from croniter import croniter
from dateutil.rrule import rrulestr

from monitor.sla.calendar import BucketGrid, require_aware, zone
from monitor.sla.policy import (
    ExclusionKind,
    ExclusionWindow,
    PartialExclusion,
    RecurringExclusion,
)

_KIND_ORDER = {kind: position for position, kind in enumerate(ExclusionKind)}
# Enough slack around the requested range that a DST shift cannot push a local occurrence out.
_LOCAL_SLACK = timedelta(hours=3)
_MAX_OCCURRENCES = 100_000


def expand_recurring(
    rec: RecurringExclusion, start: datetime, end: datetime
) -> list[ExclusionWindow]:
    """The occurrences of ``rec`` whose window overlaps ``[start, end)``, in order."""
    require_aware(start, f"recurring exclusion {rec.id}: range start")
    require_aware(end, f"recurring exclusion {rec.id}: range end")
    tz = zone(rec.timezone)
    lo_local = (start - rec.duration).astimezone(tz).replace(tzinfo=None) - _LOCAL_SLACK
    hi_local = end.astimezone(tz).replace(tzinfo=None) + _LOCAL_SLACK
    windows: list[ExclusionWindow] = []
    for number, local in enumerate(_local_occurrences(rec, lo_local, hi_local)):
        if number >= _MAX_OCCURRENCES:
            raise ValueError(
                f"recurring exclusion {rec.id}: expected at most {_MAX_OCCURRENCES} occurrences "
                f"between {start.isoformat()} and {end.isoformat()}, got more"
            )
        begin = local.replace(tzinfo=tz).astimezone(UTC)
        finish = begin + rec.duration
        if finish <= start or begin >= end:
            continue
        windows.append(
            ExclusionWindow(
                id=f"{rec.id}@{begin.strftime('%Y-%m-%dT%H:%M:%SZ')}",
                start=begin,
                end=finish,
                kind=rec.kind,
                reason=rec.reason,
                services=rec.services,
                source=f"recurring:{rec.id}",
            )
        )
    return windows


_DAY_NAMES = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")
_DAY_WORDS = {name: number for number, name in enumerate(_DAY_NAMES)}
_DAY_WORDS.update({"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6})


def cron_days_ored(cron: str) -> bool:
    """True when a 5-field cron line restricts both day-of-month and day-of-week: cron then
    fires on a day matching *either* field (``0 2 1-7 * SUN`` is days 1-7 and every Sunday)."""
    fields = cron.split()
    if len(fields) != 5:
        return False
    return fields[2] not in ("*", "?") and fields[4] not in ("*", "?")


def cron_or_message(cron: str) -> str:
    """Why ``cron`` is refused, and the RRULE that means what it probably says."""
    minute, hour, dom, _, dow = cron.split()
    return (
        f"restricts both day-of-month ({dom}) and day-of-week ({dow}); cron fires on a day "
        f"matching EITHER field, not both (days {dom} of the month and also every {dow}). "
        "For both at once write an rrule, e.g. "
        f'rrule: "{_and_rrule(minute, hour, dom, dow)}" with dtstart; to mean cron\'s OR, '
        "add cron_day_rule: or"
    )


def _and_rrule(minute: str, hour: str, dom: str, dow: str) -> str:
    """The RRULE for "day-of-month AND day-of-week" (``1-7`` + ``SUN`` -> ``BYDAY=1SU``)."""
    days = [_day_code(part) for part in dow.upper().split(",")]
    nth = {"1-7": 1, "8-14": 2, "15-21": 3, "22-28": 4}.get(dom)
    if nth is not None and all(days):
        by_day = f"BYDAY={','.join(f'{nth}{d}' for d in days)}"
    else:
        by_day = f"BYMONTHDAY={_expand(dom)};BYDAY={','.join(d or '?' for d in days)}"
    time = ";".join(
        f"{key}={value}"
        for key, value in (("BYHOUR", hour), ("BYMINUTE", minute))
        if value.isdigit()
    )
    return f"FREQ=MONTHLY;{by_day}" + (f";{time}" if time else "") + ";BYSECOND=0"


def _day_code(part: str) -> str | None:
    if part.isdigit():
        return _DAY_NAMES[int(part) % 7]
    return _DAY_NAMES[_DAY_WORDS[part]] if part in _DAY_WORDS else None


def _expand(dom: str) -> str:
    out: list[str] = []
    for part in dom.split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and hi.isdigit():
            out.extend(str(n) for n in range(int(lo), int(hi) + 1))
        else:
            out.append(part)
    return ",".join(out)


def _local_occurrences(
    rec: RecurringExclusion, lo_local: datetime, hi_local: datetime
) -> Iterable[datetime]:
    """Naive local occurrence starts in ``[lo_local, hi_local]``."""
    if rec.rrule is not None:
        dtstart = rec.dtstart
        if dtstart is not None and dtstart.tzinfo is not None:
            dtstart = dtstart.astimezone(zone(rec.timezone)).replace(tzinfo=None)
        if dtstart is None and "DTSTART" not in rec.rrule.upper():
            raise ValueError(f"recurring exclusion {rec.id}: rrule needs dtstart, got none")
        try:
            rule = rrulestr(rec.rrule, dtstart=dtstart, forceset=True)
            return list(rule.between(lo_local, hi_local, inc=True))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"recurring exclusion {rec.id}: rrule: expected an RFC 5545 RRULE with local "
                f"(floating) times, got {rec.rrule!r} ({exc})"
            ) from exc
    if rec.cron is None or not croniter.is_valid(rec.cron):
        raise ValueError(
            f"recurring exclusion {rec.id}: cron: expected a 5-field cron expression, "
            f"got {rec.cron!r}"
        )
    if rec.cron_day_rule != "or" and cron_days_ored(rec.cron):
        raise ValueError(f"recurring exclusion {rec.id}: cron: {cron_or_message(rec.cron)}")
    found: list[datetime] = []
    # croniter over naive datetimes walks the wall clock, which is what the rule means.
    walker = croniter(rec.cron, lo_local - timedelta(seconds=1))
    while True:
        occurrence: datetime = walker.get_next(datetime)
        if occurrence > hi_local:
            return found
        found.append(occurrence)
        if len(found) > _MAX_OCCURRENCES:
            return found


def excluded_buckets(
    grid: BucketGrid,
    windows: Sequence[ExclusionWindow],
    service: str,
    partial: PartialExclusion,
) -> dict[int, ExclusionKind]:
    """Bucket index -> exclusion kind, for the buckets the windows exclude for ``service``.

    Coverage is the union of all windows that apply (two half-bucket windows cover a bucket
    fully). ``any_overlap``: any covered part excludes the bucket; ``majority``: at least half;
    ``full``: all of it. The kind reported is that of the overlapping window that started first
    (ties: the order of ``ExclusionKind``).
    """
    size = grid.bucket_seconds
    origin = grid.start_epoch
    pieces: dict[int, list[tuple[float, float]]] = {}
    winner: dict[int, tuple[float, int, ExclusionKind]] = {}
    for window in windows:
        if not window.covers(service):
            continue
        lo = max(window.start.timestamp(), float(origin))
        hi = min(window.end.timestamp(), float(grid.end_epoch))
        if hi <= lo:
            continue
        first = int((lo - origin) // size)
        last = math.ceil((hi - origin) / size) - 1
        rank = (window.start.timestamp(), _KIND_ORDER[window.kind], window.kind)
        for index in range(first, last + 1):
            bucket_lo = origin + index * size
            pieces.setdefault(index, []).append((max(lo, bucket_lo), min(hi, bucket_lo + size)))
            best = winner.get(index)
            if best is None or rank[:2] < best[:2]:
                winner[index] = rank
    result: dict[int, ExclusionKind] = {}
    for index, spans in pieces.items():
        covered = _covered_seconds(spans)
        if _counts(covered, size, partial):
            result[index] = winner[index][2]
    return result


def _covered_seconds(spans: list[tuple[float, float]]) -> float:
    if len(spans) == 1:
        return spans[0][1] - spans[0][0]
    total = 0.0
    reach = float("-inf")
    for lo, hi in sorted(spans):
        if hi <= reach:
            continue
        total += hi - max(lo, reach)
        reach = hi
    return total


def _counts(covered: float, size: int, partial: PartialExclusion) -> bool:
    if partial is PartialExclusion.ANY_OVERLAP:
        return covered > 0
    if partial is PartialExclusion.MAJORITY:
        return 2 * covered >= size
    return covered >= size
