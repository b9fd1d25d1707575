"""The one reader of instants (RFC 3339 timestamps) for every input slawatch takes.

The exclusions API, the fault API and ``slawatch fault``, Alertmanager's webhook, results files,
``slawatch report --as-of``, the stored fault documents and the configuration's exclusion windows
all read instants here, so an instant one of them accepts is accepted by all (decided once):

- the RFC 3339 grammar ``YYYY-MM-DD T HH:MM:SS[.fraction] (Z | +HH:MM | -HH:MM)``;
- ``t`` and ``z`` in lower case (RFC 3339 section 5.6 allows them);
- a space instead of ``T`` (RFC 3339's own note allows it, and results files used it);
- surrounding white space is ignored; a fraction longer than microseconds is truncated (Go
  writes nanoseconds);
- an offset is required: a naive time is refused, never given the host's zone;
- ``now`` (any case) only where the caller passes ``now`` (the CLI and the fault API);
- epoch seconds (a JSON number) only where the caller says ``epoch=True`` (results files).

Refused, although :func:`datetime.fromisoformat` takes them: a time without seconds, an offset
without its colon, ISO basic and week dates. Every caller names its ``field`` so the message
says where the bad value was.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

EXAMPLE = "2026-11-10T02:00:00Z"

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)


class InstantError(ValueError):
    """Raised by :func:`parse_instant` for a value that is not an instant; ``naive`` is True for
    a well-formed time without an offset (callers with their own wording use it)."""

    def __init__(self, message: str, *, naive: bool = False) -> None:
        super().__init__(message)
        self.naive = naive


def _expected(now: datetime | None, epoch: bool) -> str:
    extra = " or epoch seconds" if epoch else ""
    extra += " or 'now'" if now is not None else ""
    return f"expected an RFC 3339 timestamp with offset such as {EXAMPLE}{extra}"


def parse_instant(
    value: object, field: str, *, now: datetime | None = None, epoch: bool = False
) -> datetime:
    """``value`` as an aware datetime (in the offset it was written with).

    ``now``: accept the word ``now`` and return this. ``epoch``: accept a number of seconds
    since 1970 (returned in UTC). Raises :class:`InstantError` naming ``field``.
    """
    if epoch and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InstantError(f"{field}: expected finite epoch seconds, got {value!r}")
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise InstantError(f"{field}: epoch seconds out of range, got {value!r}") from None
    if not isinstance(value, str):
        raise InstantError(f"{field}: {_expected(now, epoch)}, got {value!r}")
    text = value.strip()
    if now is not None and text.lower() == "now":
        return now
    match = _RFC3339.fullmatch(text)
    if match is None:
        naive = re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?", text)
        if naive is not None:
            raise InstantError(
                f"{field}: expected a UTC offset: add Z or +01:00 (naive times are refused), "
                f"got {value!r}",
                naive=True,
            )
        raise InstantError(f"{field}: {_expected(now, epoch)}, got {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7) or "", match.group(8)
    micro = int((fraction + "000000")[:6])
    zone: tzinfo
    if offset in ("Z", "z"):
        zone = UTC
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise InstantError(f"{field}: offset out of range in {value!r}")
        sign = -1 if offset[0] == "-" else 1
        zone = timezone(timedelta(minutes=sign * (hours * 60 + minutes)))
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError as exc:
        raise InstantError(f"{field}: {_expected(now, epoch)}, got {value!r} ({exc})") from None


def instant_seconds(value: object, field: str, *, epoch: bool = False) -> float:
    """Epoch seconds of ``value`` (as :func:`parse_instant`); a number given with ``epoch`` is
    returned as it is, with no round trip through microseconds."""
    if epoch and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InstantError(f"{field}: expected finite epoch seconds, got {value!r}")
        return float(value)
    return parse_instant(value, field, epoch=epoch).timestamp()


def utc_from_epoch(seconds: float) -> datetime:
    """The UTC datetime of ``seconds`` since 1970 (the store and the clock speak seconds)."""
    return datetime.fromtimestamp(seconds, tz=UTC)
