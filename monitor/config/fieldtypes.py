"""Field types of the configuration models: names, exact decimals, durations, times, zones.

Each type's validator raises ``ValueError`` with "must ..." wording; the translator appends the
value as written, so messages read ``must be at least 1s, got -5``.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, StrictStr

from monitor.config.errors import YamlFloat, did_you_mean
from monitor.instants import InstantError, parse_instant
from probes.fields import SecretRef, parse_duration

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]*")
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")

MAX_MAGNITUDE = Decimal(10) ** 12
"""Every number read as a Decimal stays below 10^12 in size: a fee of a trillion is no
contract, and ``1e999999999`` would pass ``is_finite`` and then overflow the arithmetic that
turns downtime into money (``decimal.Overflow`` in the daemon's write loop)."""
MAX_PLACES = 6
"""Decimal places of a percentage or fraction: ``99.9999`` (six nines) needs 4."""
MAX_AMOUNT_PLACES = 4
"""Decimal places of an amount of money: currencies have at most 3 minor-unit digits (ISO 4217);
one more for rates written per unit."""
YEAR_SECONDS = 52 * 604800.0
"""The bound of intervals, timeouts and buckets (``52w``): none of them makes sense longer."""
LONGEST_DURATION = 520 * 604800.0
"""The bound of any other duration (evidence retention, support deadlines): ``520w``, about
ten years; past that a value is a typo, and ``timedelta`` overflows at 2.7 million years."""


def format_duration(seconds: float) -> str:
    """``5400`` -> ``1h30m``; the inverse of ``parse_duration`` for whole milliseconds."""
    if not math.isfinite(seconds * 1000):
        # A bound computed from another field may overflow (a 400-digit DTMF pause makes the
        # longest call infinite): the problem is still said in one line, not a traceback.
        return "forever"
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


_MEMO_LIMIT = 4096
"""Distinct spellings remembered per field type: a 10,000-SLA file writes the same few
objectives, fees and durations thousands of times (issue 20)."""
_T = TypeVar("_T")


def _memo_key(value: Any) -> tuple[type, object] | None:
    # An int is its own key: str() of a 5,000-digit int raises.
    kind = type(value)
    if kind is int:
        return (kind, value)
    return (kind, str(value)) if kind in (str, YamlFloat) else None


def plain_key(value: Any) -> tuple[object, ...] | None:
    """A key that only values read alike share, for a list of mappings of scalars as YAML
    gives them (a credit table): each scalar by its type and spelling, as ``_memoised`` keys
    it; ``None`` for anything else (never remembered)."""
    if type(value) is not list:
        return None
    parts: list[object] = []
    for item in value:
        if type(item) is not dict:
            return None
        for name, field in item.items():
            key = _memo_key(field)
            if key is None or type(name) is not str:
                return None
            parts.append((name, key))
        parts.append(None)  # where one mapping ends
    return tuple(parts)


def _memoised(check: Callable[[Any], _T]) -> Callable[[Any], _T]:
    """``check`` remembered by the value's type and spelling, up to ``_MEMO_LIMIT`` of them.
    Its results are immutable; a refused value is never kept, so it is refused again with
    its message."""
    memo: dict[tuple[type, object], _T] = {}

    def validate(value: Any) -> _T:
        key = _memo_key(value)
        if key is not None:
            known = memo.get(key)
            if known is not None:
                return known
        result = check(value)
        if key is not None and len(memo) < _MEMO_LIMIT:
            memo[key] = result
        return result

    return validate


def exact_decimal(value: Any) -> Decimal:
    """A Decimal from what was written: ``10000.00``, ``"10000.00"`` or ``10000``, never a float."""
    return _memoised_decimal(value)


def _exact_decimal(value: Any) -> Decimal:
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
    # copy_abs and comparison never round, so they cannot overflow as abs() would.
    if result.copy_abs() >= MAX_MAGNITUDE:
        raise ValueError("must be less than 10^12 in size")
    if decimal_places(result) > MAX_PLACES:
        raise ValueError(f"must have at most {MAX_PLACES} decimal places")
    return result


_memoised_decimal = _memoised(_exact_decimal)


def decimal_places(value: Decimal) -> int:
    """Significant digits after the point: ``99.90`` -> 1, ``1E+3`` -> 0, ``1E-9`` -> 9."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: checked by the caller
    if exponent >= 0:
        return 0
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -exponent - trailing)


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


def _check_amount_places(value: Decimal) -> Decimal:
    # Remembered by spelling (a Decimal's text is its digits and exponent, so its places):
    # 10,000 SLAs write the same fee (issue 20, cl32).
    text = str(value)
    if text in _FEW_PLACES:
        return value
    if decimal_places(value) > MAX_AMOUNT_PLACES:
        raise ValueError(f"must have at most {MAX_AMOUNT_PLACES} decimal places")
    if len(_FEW_PLACES) < _MEMO_LIMIT:
        _FEW_PLACES.add(text)
    return value


_FEW_PLACES: set[str] = set()
"""Amounts' texts found to have at most ``MAX_AMOUNT_PLACES`` places."""


Amount = Annotated[
    ExactDecimal, AfterValidator(_check_non_negative), AfterValidator(_check_amount_places)
]


def duration_field(
    *, minimum: float = 0.0, above: bool = False, maximum: float = LONGEST_DURATION
) -> BeforeValidator:
    """A duration validator with bounds stated in the message the way the file writes them."""

    def checked(value: Any) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            if value < -(10**15):
                raise ValueError("must be a finite duration")
            seconds = float(value)
        else:
            seconds = parse_duration(value)
        if not math.isfinite(seconds):
            raise ValueError("must be a finite duration")
        if above and seconds <= minimum:
            raise ValueError(f"must be more than {format_duration(minimum)}")
        if seconds < minimum:
            raise ValueError(f"must be at least {format_duration(minimum)}")
        if seconds > maximum:
            raise ValueError(f"must be at most {format_duration(maximum)}")
        return seconds

    return BeforeValidator(_memoised(checked))


PositiveDuration = Annotated[float, duration_field(above=True, maximum=YEAR_SECONDS)]
Interval = Annotated[float, duration_field(minimum=1.0, maximum=YEAR_SECONDS)]


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


EARLIEST_YEAR, LATEST_YEAR = 2000, 2099
"""A time in the file lies in these years: ``0001-01-01`` or ``9999-12-31`` is a typo or a
placeholder, and arithmetic a bucket away from year 9999 overflows ``datetime``."""


def _in_years(parsed: datetime) -> datetime:
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        raise ValueError(f"must lie in the years {EARLIEST_YEAR} to {LATEST_YEAR}")
    return parsed


def aware_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a UTC offset: add Z or +01:00")
        return _in_years(value)
    try:
        return _in_years(parse_instant(value, ""))
    except InstantError as exc:
        if exc.naive:
            raise ValueError("must carry a UTC offset: add Z or +01:00") from None
        raise ValueError("must be a date and time such as 2026-11-10T02:00:00Z") from None


def _local_or_aware_time(value: Any) -> datetime:
    return _in_years(_parse_time(value))


AwareTime = Annotated[datetime, BeforeValidator(aware_time)]
LocalOrAwareTime = Annotated[datetime, BeforeValidator(_local_or_aware_time)]


def _no_inline_secret(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        raise ValueError("secrets are not written inline: use {env: NAME} or {file: PATH}")
    return value


Secret = Annotated[SecretRef, BeforeValidator(_no_inline_secret)]
