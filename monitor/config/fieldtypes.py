"""Field types of the configuration models: names, exact decimals, durations, times, zones.

Each type's validator raises ``ValueError`` with "must ..." wording; the translator appends the
value as written, so messages read ``must be at least 1s, got -5``.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, StrictStr

from monitor.config.errors import YamlFloat, did_you_mean
from monitor.instants import InstantError, parse_instant
from probes.fields import SecretRef, parse_duration

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")


def format_duration(seconds: float) -> str:
    """``5400`` -> ``1h30m``; the inverse of ``parse_duration`` for whole milliseconds."""
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    whole, rest = divmod(millis, 1000)
    if whole:
        parts.append(f"{whole}s")
    if rest:
        parts.append(f"{rest}ms")
    return "".join(parts)


def _check_name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError("must start with a lower-case letter or digit and use only a-z 0-9 _ . -")
    return value


Name = Annotated[StrictStr, AfterValidator(_check_name)]
"""A target, service, SLA or exclusion name: also a Prometheus label value, so kept plain."""


def exact_decimal(value: Any) -> Decimal:
    """A Decimal from what was written: ``10000.00``, ``"10000.00"`` or ``10000``, never a float."""
    if isinstance(value, bool):
        raise ValueError('must be a number such as 99.9 or "10000.00"')
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, YamlFloat):
        result = _decimal_text(value.text)
    elif isinstance(value, float):
        # Only reachable from Python callers; repr is the shortest text that round-trips.
        result = _decimal_text(repr(value))
    elif isinstance(value, str):
        result = _decimal_text(value)
    else:
        raise ValueError('must be a number such as 99.9 or "10000.00"')
    if not result.is_finite():
        raise ValueError("must be a finite number")
    return result


def _decimal_text(text: str) -> Decimal:
    try:
        return Decimal(text.strip().replace("_", ""))
    except InvalidOperation:
        raise ValueError('must be a number such as 99.9 or "10000.00"') from None


ExactDecimal = Annotated[Decimal, BeforeValidator(exact_decimal)]


def _check_percent(value: Decimal) -> Decimal:
    if not Decimal(0) <= value <= Decimal(100):
        raise ValueError("must be a percentage between 0 and 100")
    return value


Percent = Annotated[ExactDecimal, AfterValidator(_check_percent)]


def _check_non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


Amount = Annotated[ExactDecimal, AfterValidator(_check_non_negative)]


def duration_field(
    *, minimum: float = 0.0, above: bool = False, maximum: float | None = None
) -> BeforeValidator:
    """A duration validator with bounds stated in the message the way the file writes them."""

    def validate(value: Any) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            seconds = float(value)
        else:
            seconds = parse_duration(value)
        if not math.isfinite(seconds):
            raise ValueError("must be a finite duration")
        if above and seconds <= minimum:
            raise ValueError(f"must be more than {format_duration(minimum)}")
        if seconds < minimum:
            raise ValueError(f"must be at least {format_duration(minimum)}")
        if maximum is not None and seconds > maximum:
            raise ValueError(f"must be at most {format_duration(maximum)}")
        return seconds

    return BeforeValidator(validate)


PositiveDuration = Annotated[float, duration_field(above=True)]
Interval = Annotated[float, duration_field(minimum=1.0)]


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


_HOST_ZONES = frozenset({"localtime", "Factory"})


def check_timezone(value: str) -> str:
    if value in _HOST_ZONES:
        # These follow the machine's settings: the same file would give other figures elsewhere.
        raise ValueError(
            "must be an IANA time zone such as UTC or Europe/London, not the host's own zone"
        )
    try:
        zoneinfo.ZoneInfo(value)
        known = value in _zone_names() or not _zone_names()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        known = False
    if not known:
        hint = did_you_mean(value, _zone_names())
        raise ValueError(f"must be an IANA time zone such as UTC or Europe/London{hint}")
    return value


Timezone = Annotated[StrictStr, AfterValidator(check_timezone)]


def _check_currency(value: str) -> str:
    if not CURRENCY_PATTERN.fullmatch(value):
        raise ValueError("must be a three-letter upper-case currency code such as USD or EUR")
    return value


Currency = Annotated[StrictStr, AfterValidator(_check_currency)]


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date and time such as 2026-11-10T02:00:00Z")
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("must be a date and time such as 2026-11-10T02:00:00Z") from None


def aware_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a UTC offset: add Z or +01:00")
        return value
    try:
        return parse_instant(value, "")
    except InstantError as exc:
        if exc.naive:
            raise ValueError("must carry a UTC offset: add Z or +01:00") from None
        raise ValueError("must be a date and time such as 2026-11-10T02:00:00Z") from None


AwareTime = Annotated[datetime, BeforeValidator(aware_time)]
LocalOrAwareTime = Annotated[datetime, BeforeValidator(_parse_time)]


def _no_inline_secret(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        raise ValueError("secrets are not written inline: use {env: NAME} or {file: PATH}")
    return value


Secret = Annotated[SecretRef, BeforeValidator(_no_inline_secret)]
