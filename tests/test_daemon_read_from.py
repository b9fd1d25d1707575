"""em30 (issue 20): the first bucket a start reads from the store for an SLA, with the months
around the instant remembered per zone: the same as computed from the calendar for any
instant, zone and snapshots proven (a month judged to its end needs no tally)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.runtime.daemon import _read_from
from monitor.runtime.snapshots import ProvenSnapshot
from monitor.sla.calendar import month_bounds, month_containing
from monitor.sla.policy import SlaPolicy
from tests.strategies import STANDARD_CREDIT

ZONES = ("UTC", "Europe/London", "America/New_York", "Pacific/Chatham", "Asia/Kolkata")


def _reference(policy: SlaPolicy, moment: datetime, proven: dict[int, int]) -> int:
    current = month_containing(moment, policy.timezone)
    starts = []
    for which, month in enumerate((current.previous(), current)):
        begin, end = (int(t.timestamp()) for t in month_bounds(month, policy.timezone))
        judged = proven.get(which)
        start = begin if judged is None else begin + judged * policy.bucket_seconds
        if start < end:
            starts.append(start)
    return min(starts, default=int(month_bounds(current, policy.timezone)[1].timestamp()))


class TestReadFrom:
    @settings(max_examples=80, deadline=None)
    @given(
        asks=st.lists(
            st.tuples(
                st.integers(0, 3 * 366 * 24),
                st.sampled_from(ZONES),
                st.dictionaries(st.integers(0, 1), st.integers(0, 9000), max_size=2),
            ),
            min_size=1,
            max_size=8,
        )
    )
    def test_equals_the_calendar(self, asks: list[tuple[int, str, dict[int, int]]]) -> None:
        for hours, zone, proven in asks:
            moment = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=hours, minutes=7)
            policy = SlaPolicy(
                "s", "svc", Decimal("99.9"), STANDARD_CREDIT, timezone=zone, bucket_seconds=300
            )
            current = month_containing(moment, zone)
            restorable = {
                (policy.name, (current.previous(), current)[which]): ProvenSnapshot(judged, b"")
                for which, judged in proven.items()
            }
            assert _read_from(policy, moment, restorable) == _reference(policy, moment, proven)
