"""Calendar months in the SLA's zone, the bucket grid, and the claim deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.sla.calendar import (
    BucketGrid,
    Month,
    claim_deadline,
    month_bounds,
    month_containing,
    month_grid,
)


class TestMonth:
    def test_parse_and_str_round_trip(self) -> None:
        """YYYY-MM parses and prints back the same."""
        assert str(Month.parse("2026-03")) == "2026-03"
        assert Month.parse(" 2026-11 ") == Month(2026, 11)

    @pytest.mark.parametrize("text", ["2026-13", "2026-00", "26-01", "2026/01", "2026-1", ""])
    def test_parse_rejects_bad_text_naming_it(self, text: str) -> None:
        """A malformed month names the expected form and the value."""
        with pytest.raises(ValueError, match=r"expected YYYY-MM .*got") as info:
            Month.parse(text)
        assert repr(text) in str(info.value)

    def test_next_and_previous_cross_years(self) -> None:
        """December's next month is January of the next year, and back."""
        assert Month(2026, 12).next() == Month(2027, 1)
        assert Month(2027, 1).previous() == Month(2026, 12)
        assert Month(2026, 5) < Month(2026, 6) < Month(2027, 1)


class TestMonthBounds:
    @pytest.mark.parametrize(
        ("month", "tz", "buckets"),
        [
            ("2026-03", "Europe/London", 8916),
            ("2026-10", "Europe/London", 8940),
            ("2026-02", "UTC", 8064),
            ("2028-02", "UTC", 8352),
            ("2024-02", "UTC", 8352),
            ("2026-11", "UTC", 8640),
            ("2026-12", "UTC", 8928),
            ("2026-03", "America/New_York", 8916),
            ("2026-11", "America/New_York", 8652),
            ("2026-04", "Europe/London", 8640),
        ],
    )
    def test_five_minute_bucket_counts(self, month: str, tz: str, buckets: int) -> None:
        """Bucket counts follow the zone's DST shifts and leap years."""
        assert month_grid(Month.parse(month), tz, 300).count == buckets

    def test_bounds_are_local_midnights_in_utc(self) -> None:
        """A London July runs from 23:00 UTC on 30 June to 23:00 UTC on 31 July."""
        start, end = month_bounds(Month(2026, 7), "Europe/London")
        assert start == datetime(2026, 6, 30, 23, tzinfo=UTC)
        assert end == datetime(2026, 7, 31, 23, tzinfo=UTC)
        assert start.tzinfo is UTC

    def test_unknown_zone_is_named(self) -> None:
        """A zone name that does not exist is refused with the name quoted."""
        with pytest.raises(ValueError, match="Mars/Olympus"):
            month_bounds(Month(2026, 1), "Mars/Olympus")

    def test_month_containing_uses_the_zone(self) -> None:
        """23:30 UTC on 31 March is already April in London (BST)."""
        instant = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
        assert month_containing(instant, "Europe/London") == Month(2026, 4)
        assert month_containing(instant, "UTC") == Month(2026, 3)

    def test_month_containing_rejects_naive(self) -> None:
        """A naive instant is refused, never given the host's zone."""
        with pytest.raises(ValueError, match="naive"):
            month_containing(datetime(2026, 3, 1), "UTC")


class TestBucketGrid:
    def test_index_and_start_agree(self) -> None:
        """index_of inverts bucket_start, and instants outside the month have no index."""
        grid = month_grid(Month(2026, 3), "Europe/London", 300)
        assert grid.index_of(grid.start_epoch) == 0
        assert grid.index_of(grid.start_epoch - 1) is None
        assert grid.index_of(grid.end_epoch) is None
        assert grid.index_of(grid.end_epoch - 0.001) == grid.count - 1
        assert grid.index_of(grid.bucket_start(100) + 299.9) == 100
        with pytest.raises(IndexError, match="bucket index"):
            grid.bucket_start(grid.count)

    def test_buckets_stay_on_local_wall_clock_across_dst(self) -> None:
        """After the March shift, buckets still start at :00, :05... local time."""
        grid = month_grid(Month(2026, 3), "Europe/London", 300)
        from zoneinfo import ZoneInfo

        london = ZoneInfo("Europe/London")
        for index in (0, 4000, grid.count - 1):
            local = datetime.fromtimestamp(grid.bucket_start(index), london)
            assert local.minute % 5 == 0
            assert local.second == 0

    def test_bucket_floor_outside_the_grid(self) -> None:
        """bucket_floor aligns instants before the month to the same grid."""
        grid = month_grid(Month(2026, 11), "UTC", 300)
        assert grid.bucket_floor(grid.start_epoch - 1) == grid.start_epoch - 300
        assert grid.bucket_floor(grid.start_epoch + 301) == grid.start_epoch + 300

    def test_grid_refuses_a_partial_bucket(self) -> None:
        """A span that is not a whole number of buckets is refused with the figures."""
        start = datetime(2026, 1, 1, tzinfo=UTC)
        with pytest.raises(ValueError, match="whole number of 300s buckets, got 301s"):
            BucketGrid(start, start + timedelta(seconds=301), 300)

    @given(st.integers(2000, 2100), st.integers(1, 12), st.sampled_from([300, 600, 900, 3600]))
    def test_buckets_partition_the_month(self, year: int, month: int, size: int) -> None:
        """Buckets exactly tile [start, end) in any month and zone."""
        grid = month_grid(Month(year, month), "Europe/London", size)
        assert grid.count * size == grid.end_epoch - grid.start_epoch
        assert grid.bucket_start(grid.count - 1) + size == grid.end_epoch


class TestClaimDeadline:
    def test_thirty_days_after_november(self) -> None:
        """November's claim window ends at local midnight starting 31 December."""
        deadline = claim_deadline(Month(2026, 11), "UTC", 30)
        assert deadline == datetime(2026, 12, 31, tzinfo=UTC)

    def test_calendar_days_across_a_dst_shift(self) -> None:
        """Windows crossing a London shift still end at local midnight, in the new offset."""
        # 1 October + 30 days = 31 October 00:00, after the 25 October shift back to GMT.
        september = claim_deadline(Month(2026, 9), "Europe/London", 30)
        assert september.utcoffset() == timedelta(0)
        assert september.astimezone(UTC) == datetime(2026, 10, 31, tzinfo=UTC)
        # 1 March + 30 days = 31 March 00:00 BST, after the 29 March shift forward.
        february = claim_deadline(Month(2026, 2), "Europe/London", 30)
        assert february.astimezone(UTC) == datetime(2026, 3, 30, 23, tzinfo=UTC)

    def test_negative_window_is_refused(self) -> None:
        """A negative claim window names the field."""
        with pytest.raises(ValueError, match="claim_window_days"):
            claim_deadline(Month(2026, 1), "UTC", -1)
