"""A month that is over, read by its counts (issue 20, sm32).

Once every bucket of a month is judged, the money its result shows (the credit and the claim
deadline on ``/metrics``) reads nothing of the month but three counts: its buckets judged
unavailable, unknown and excluded (``monitor.sla.month.assemble_month`` hands them to
``_shared_money``, with the SLA's terms and the month). A whole month's snapshot carries those
counts (``MonthSnapshot.settled``, written by :func:`settled_text`), so a start at a month's
end shows the previous month's money from them without building the month: decoding, judging
and summarising 10,000 previous months was about a quarter of a day-28 start.

The counts are taken from the same month the snapshot holds, under the windows it was laid
with; they stand for today's month only where the snapshot is proven (the same inputs digest,
an unspoiled guard: ``monitor.runtime.snapshots``) and today's honoured windows are the same
(their digest is in the text). The money is then computed here by the engine's own function,
so it is the figure the built month would show (``tests/test_settled_months.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from monitor.sla.calendar import Month
from monitor.sla.month import MonthResult, _shared_money
from monitor.sla.policy import ExclusionWindow, SlaPolicy
from monitor.sla.running_codec import canonical_text

SETTLED_FORMAT = "s1"
"""The first word of :func:`settled_text`; another word is not read (the month is built)."""


@dataclass(frozen=True, slots=True)
class SettledCounts:
    """A whole month's buckets judged unavailable, unknown and excluded (exclusions laid)."""

    unavailable: int
    unknown: int
    excluded: int


@dataclass(frozen=True, slots=True)
class MonthMoney:
    """What ``/metrics`` shows of the previous month: the credit owed and the claim deadline
    (the same-named fields of its :class:`MonthResult`)."""

    currency: str
    credit_amount: Decimal
    claim_deadline: datetime


def money_of_result(result: MonthResult) -> MonthMoney:
    """``result``'s money as :class:`MonthMoney`."""
    return MonthMoney(result.currency, result.credit_amount, result.claim_deadline)


def settled_money(
    policy: SlaPolicy, month: Month, buckets: int, counts: SettledCounts
) -> MonthMoney:
    """The money of ``policy``'s whole ``month`` of ``buckets`` buckets holding ``counts``:
    what ``assemble_month`` computes for it (the same function, the same arguments)."""
    money = _shared_money(
        policy, month, counts.unavailable, counts.unknown, buckets - counts.excluded
    )
    return MonthMoney(policy.credit.currency, money.credit_amount, money.claim_deadline)


def settled_text(counts: SettledCounts, windows: Sequence[ExclusionWindow]) -> str:
    """``counts`` as stored with a snapshot, with the digest of the ``windows`` they were
    counted under."""
    return (
        f"{SETTLED_FORMAT} {counts.unavailable} {counts.unknown} {counts.excluded} "
        f"{windows_digest(windows)}"
    )


def settled_counts(
    text: str, windows: Sequence[ExclusionWindow], buckets: int
) -> SettledCounts | None:
    """The counts :func:`settled_text` wrote, if they were counted under ``windows`` and fit a
    month of ``buckets`` buckets; None otherwise (none stored, another format, other windows,
    or damaged: the month is then built from its snapshot as before)."""
    words = text.split(" ")
    if len(words) != 5 or words[0] != SETTLED_FORMAT:
        return None
    try:
        unavailable, unknown, excluded = (int(word) for word in words[1:4])
    except ValueError:
        return None
    if min(unavailable, unknown, excluded) < 0 or unavailable + unknown + excluded > buckets:
        return None
    if words[4] != windows_digest(windows):
        return None
    return SettledCounts(unavailable, unknown, excluded)


def windows_digest(windows: Sequence[ExclusionWindow]) -> str:
    """A digest of honoured windows, the same in every process (the snapshot digest's text
    of them: sets sorted, dataclasses field by field). Most months honour none."""
    if not windows:
        return _NO_WINDOWS
    return _digest(canonical_text(tuple(windows)))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


_NO_WINDOWS = _digest(canonical_text(()))
