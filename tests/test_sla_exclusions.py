"""Excluded windows: partial-bucket modes, kind precedence, and recurring rules across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.sla.calendar import Month, month_bounds, month_grid
from monitor.sla.exclusions import excluded_buckets, expand_recurring
from monitor.sla.policy import (
    ExclusionKind,
    ExclusionWindow,
    PartialExclusion,
    RecurringExclusion,
)

GRID = month_grid(Month(2026, 11), "UTC", 300)
T0 = GRID.start
MAINT = ExclusionKind.SCHEDULED_MAINTENANCE
LONDON = ZoneInfo("Europe/London")


def window(
    start_s: int,
    end_s: int,
    kind: ExclusionKind = MAINT,
    services: frozenset[str] = frozenset(),
    name: str = "w",
) -> ExclusionWindow:
    return ExclusionWindow(
        id=name,
        start=T0 + timedelta(seconds=start_s),
        end=T0 + timedelta(seconds=end_s),
        kind=kind,
        services=services,
    )


class TestExcludedBuckets:
    @pytest.mark.parametrize(
        ("start_s", "end_s", "mode", "expected"),
        [
            (0, 600, PartialExclusion.FULL, {0, 1}),
            (60, 600, PartialExclusion.FULL, {1}),
            (60, 600, PartialExclusion.ANY_OVERLAP, {0, 1}),
            (150, 600, PartialExclusion.MAJORITY, {0, 1}),
            (151, 600, PartialExclusion.MAJORITY, {1}),
            (0, 150, PartialExclusion.MAJORITY, {0}),
            (0, 149, PartialExclusion.MAJORITY, set()),
            (299, 301, PartialExclusion.ANY_OVERLAP, {0, 1}),
            (299, 301, PartialExclusion.FULL, set()),
            (600, 601, PartialExclusion.ANY_OVERLAP, {2}),
        ],
    )
    def test_partial_modes(
        self, start_s: int, end_s: int, mode: PartialExclusion, expected: set[int]
    ) -> None:
        """any_overlap: any part; majority: at least half; full: the whole bucket."""
        assert set(excluded_buckets(GRID, [window(start_s, end_s)], "voice", mode)) == expected

    def test_window_end_is_exclusive(self) -> None:
        """A window ending exactly on a bucket start does not touch that bucket."""
        result = excluded_buckets(GRID, [window(0, 300)], "voice", PartialExclusion.ANY_OVERLAP)
        assert set(result) == {0}

    def test_coverage_is_the_union_of_windows(self) -> None:
        """Two abutting half-bucket windows cover the bucket fully."""
        windows = [
            window(0, 150, name="a"),
            window(150, 300, ExclusionKind.FORCE_MAJEURE, name="b"),
        ]
        result = excluded_buckets(GRID, windows, "voice", PartialExclusion.FULL)
        assert result == {0: MAINT}

    def test_earliest_window_names_the_kind(self) -> None:
        """The window that started first gives the kind; on a tie, ExclusionKind order."""
        early = window(-600, 600, ExclusionKind.TELECOM_PROVIDER, name="early")
        late = window(0, 600, ExclusionKind.SCHEDULED_MAINTENANCE, name="late")
        result = excluded_buckets(GRID, [late, early], "voice", PartialExclusion.ANY_OVERLAP)
        assert result == {0: ExclusionKind.TELECOM_PROVIDER, 1: ExclusionKind.TELECOM_PROVIDER}
        tie = [
            window(0, 300, ExclusionKind.SUSPENSION),
            window(0, 300, ExclusionKind.FORCE_MAJEURE),
        ]
        assert excluded_buckets(GRID, tie, "voice", PartialExclusion.FULL) == {
            0: ExclusionKind.FORCE_MAJEURE
        }

    def test_service_scope(self) -> None:
        """A window for another service excludes nothing here; an unscoped one excludes all."""
        web_only = window(0, 300, services=frozenset({"web"}))
        assert excluded_buckets(GRID, [web_only], "voice", PartialExclusion.FULL) == {}
        assert excluded_buckets(GRID, [web_only], "web", PartialExclusion.FULL) == {0: MAINT}

    def test_windows_are_clipped_to_the_month(self) -> None:
        """A window reaching past both ends of the month excludes every bucket, no more."""
        huge = window(-86_400, 40 * 86_400)
        assert len(excluded_buckets(GRID, [huge], "voice", PartialExclusion.FULL)) == GRID.count


class TestExpandRecurring:
    def test_rrule_keeps_local_time_across_the_autumn_shift(self) -> None:
        """Sundays 02:00 London: 01:00 UTC in BST, 02:00 UTC after 25 October."""
        rec = RecurringExclusion(
            id="sunday",
            kind=MAINT,
            duration=timedelta(hours=2),
            timezone="Europe/London",
            rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0;BYSECOND=0",
            dtstart=datetime(2026, 1, 4, 2, 0),
        )
        start, end = month_bounds(Month(2026, 10), "Europe/London")
        windows = expand_recurring(rec, start, end)
        assert [w.start.astimezone(UTC).hour for w in windows] == [1, 1, 1, 2]
        assert all(w.start.astimezone(LONDON).hour == 2 for w in windows)
        assert all(w.end - w.start == timedelta(hours=2) for w in windows)
        assert windows[0].source == "recurring:sunday"
        assert windows[0].id == "sunday@2026-10-04T01:00:00Z"

    def test_cron_keeps_local_time_across_the_spring_shift(self) -> None:
        """cron 03:00 daily in London moves from 03:00 UTC to 02:00 UTC on 29 March."""
        rec = RecurringExclusion(
            id="nightly",
            kind=MAINT,
            duration=timedelta(minutes=30),
            timezone="Europe/London",
            cron="0 3 * * *",
        )
        start, end = month_bounds(Month(2026, 3), "Europe/London")
        windows = expand_recurring(rec, start, end)
        assert len(windows) == 31
        by_day = {w.start.astimezone(LONDON).day: w.start.astimezone(UTC).hour for w in windows}
        assert by_day[28] == 3
        assert by_day[29] == 2

    def test_occurrence_overlapping_the_range_start_is_kept(self) -> None:
        """A window that began before the range but runs into it is returned."""
        rec = RecurringExclusion(
            id="late", kind=MAINT, duration=timedelta(hours=3), timezone="UTC", cron="0 23 * * *"
        )
        start = datetime(2026, 11, 1, tzinfo=UTC)
        windows = expand_recurring(rec, start, start + timedelta(hours=1))
        assert [w.start for w in windows] == [datetime(2026, 10, 31, 23, tzinfo=UTC)]

    def test_nonexistent_local_start_uses_the_earlier_offset(self) -> None:
        """01:30 London on 29 March 2026 does not exist; it is read as 01:30 GMT."""
        rec = RecurringExclusion(
            id="gap",
            kind=MAINT,
            duration=timedelta(minutes=10),
            timezone="Europe/London",
            rrule="FREQ=DAILY;BYHOUR=1;BYMINUTE=30;BYSECOND=0",
            dtstart=datetime(2026, 3, 1, 1, 30),
        )
        day = datetime(2026, 3, 29, tzinfo=UTC)
        windows = expand_recurring(rec, day, day + timedelta(days=1))
        assert [w.start for w in windows] == [datetime(2026, 3, 29, 1, 30, tzinfo=UTC)]

    def test_bad_rules_name_the_exclusion(self) -> None:
        """Invalid rrule and cron expressions are refused naming the id and the text."""
        start, end = month_bounds(Month(2026, 1), "UTC")
        bad_rrule = RecurringExclusion(
            id="r1",
            kind=MAINT,
            duration=timedelta(hours=1),
            timezone="UTC",
            rrule="FREQ=SOMETIMES",
            dtstart=datetime(2026, 1, 1),
        )
        with pytest.raises(ValueError, match=r"recurring exclusion r1: rrule.*FREQ=SOMETIMES"):
            expand_recurring(bad_rrule, start, end)
        bad_cron = RecurringExclusion(
            id="c1", kind=MAINT, duration=timedelta(hours=1), timezone="UTC", cron="61 * * * *"
        )
        with pytest.raises(ValueError, match=r"recurring exclusion c1: cron.*'61 \* \* \* \*'"):
            expand_recurring(bad_cron, start, end)
        no_start = RecurringExclusion(
            id="r2", kind=MAINT, duration=timedelta(hours=1), timezone="UTC", rrule="FREQ=DAILY"
        )
        with pytest.raises(ValueError, match="r2: rrule needs dtstart"):
            expand_recurring(no_start, start, end)
