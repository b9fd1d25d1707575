"""Maintenance notice rules (monitor.support.notice)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.sla.policy import ExclusionKind, ExclusionWindow
from monitor.support.calendar import SupportHours
from monitor.support.notice import (
    NoticePolicy,
    NoticeRule,
    ViolationKind,
    apply_notice_rule,
    check_notice,
)

LONDON = ZoneInfo("Europe/London")
CONTRACT_RULE = NoticeRule(support_hours=SupportHours())


def local(*parts: int) -> datetime:
    """A Europe/London wall time."""
    return datetime(*parts, tzinfo=LONDON)  # type: ignore[misc]


def window(
    start: datetime,
    hours: float = 2,
    announced: datetime | None = None,
    kind: ExclusionKind = ExclusionKind.SCHEDULED_MAINTENANCE,
) -> ExclusionWindow:
    """A maintenance window of ``hours`` from ``start``."""
    return ExclusionWindow(
        "mw-1", start, start + timedelta(hours=hours), kind, announced_at=announced
    )


class TestCheckNotice:
    """``check_notice`` against the licence's defaults (1 hour, outside Support Hours)."""

    def test_compliant_window(self) -> None:
        """Tuesday 02:00-04:00 announced a week ahead breaks nothing."""
        w = window(local(2026, 11, 10, 2), announced=local(2026, 11, 3, 9))
        assert check_notice(w, CONTRACT_RULE) == []

    def test_exactly_one_hour_is_enough(self) -> None:
        """Notice of exactly the minimum complies."""
        w = window(local(2026, 11, 10, 2), announced=local(2026, 11, 10, 1))
        assert check_notice(w, CONTRACT_RULE) == []

    def test_short_and_missing_notice(self) -> None:
        """30 minutes' notice and no notice at all are both violations, with the figures."""
        short = check_notice(
            window(local(2026, 11, 10, 2), announced=local(2026, 11, 10, 1, 30)), CONTRACT_RULE
        )
        assert [v.kind for v in short] == [ViolationKind.SHORT_NOTICE]
        assert "30m before; at least 1h is required" in short[0].message
        missing = check_notice(window(local(2026, 11, 10, 2)), CONTRACT_RULE)
        assert [v.kind for v in missing] == [ViolationKind.NO_NOTICE]

    def test_during_support_hours(self) -> None:
        """16:00-19:00 on a Business Day overlaps Support Hours by one hour."""
        found = check_notice(
            window(local(2026, 11, 10, 16), 3, announced=local(2026, 11, 1)), CONTRACT_RULE
        )
        assert [v.kind for v in found] == [ViolationKind.DURING_SUPPORT_HOURS]
        assert "by 1h from 2026-11-10T16:00:00+00:00" in found[0].message

    def test_holiday_daytime_is_outside_support_hours(self) -> None:
        """Daytime maintenance on St Patrick's Day 2026 is outside Support Hours in NI."""
        w = window(local(2026, 3, 17, 10), 4, announced=local(2026, 3, 1))
        assert check_notice(w, CONTRACT_RULE) == []

    def test_other_kinds_are_not_checked(self) -> None:
        """Force majeure is not announced maintenance: no notice rule applies."""
        w = window(local(2026, 11, 10, 10), kind=ExclusionKind.FORCE_MAJEURE)
        assert check_notice(w, CONTRACT_RULE) == []

    def test_negative_min_notice_refused(self) -> None:
        """A negative minimum is a configuration error naming the field."""
        with pytest.raises(ValueError, match="min_notice: expected a non-negative"):
            NoticeRule(min_notice=timedelta(hours=-1))


class TestApplyNoticeRule:
    """``apply_notice_rule``: which windows are honoured under each policy."""

    def test_no_rule_honours_everything(self) -> None:
        """The availability SLA's default (no rule) honours even unannounced daytime work."""
        w = window(local(2026, 11, 10, 10))
        outcome = apply_notice_rule([w], None)
        assert (outcome.honoured, outcome.violations) == ((w,), ())

    def test_flag_keeps_reject_drops(self) -> None:
        """``flag`` reports and honours; ``reject`` reports and drops the window."""
        bad = window(local(2026, 11, 10, 10))
        good = window(local(2026, 11, 11, 2), announced=local(2026, 11, 1))
        flagged = apply_notice_rule([bad, good], CONTRACT_RULE)
        assert flagged.honoured == (bad, good)
        assert flagged.count_by_window() == {"mw-1": 2}
        assert not any(v.rejected for v in flagged.violations)
        strict = NoticeRule(support_hours=SupportHours(), policy=NoticePolicy.REJECT)
        rejected = apply_notice_rule([bad, good], strict)
        assert rejected.honoured == (good,)
        assert all(v.rejected for v in rejected.violations)
