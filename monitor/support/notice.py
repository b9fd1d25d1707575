"""Maintenance notice rules: was a scheduled-maintenance window announced as the contract says?

The licence (Schedule 1 clause 6.1) requires Maintenance "outside of the Support Hours" with "a
minimum of 1 hour's notice" in writing. A window breaking a rule is always reported (report,
metric, log); with ``policy=reject`` it is also not honoured as an exclusion, so its downtime
counts against the vendor. The availability SLA sets no notice rule, so by default every
window is honoured (no rule configured = nothing checked).

Only ``scheduled_maintenance`` windows are checked: the other exclusion kinds (force majeure,
customer network, ...) are not announced in advance by nature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from monitor.sla.policy import ExclusionKind, ExclusionWindow
from monitor.support.calendar import SupportHours, next_open, support_time_between


class NoticePolicy(StrEnum):
    """What happens to a window that breaks a notice rule."""

    FLAG = "flag"
    """Reported, still honoured as an exclusion."""
    REJECT = "reject"
    """Reported and not honoured: its downtime counts."""


class ViolationKind(StrEnum):
    """Which rule a window broke."""

    NO_NOTICE = "no_notice"
    SHORT_NOTICE = "short_notice"
    DURING_SUPPORT_HOURS = "during_support_hours"


@dataclass(frozen=True)
class NoticeRule:
    """``min_notice``: required time between announcement and start (``None``: no minimum).
    ``support_hours``: the Support Hours maintenance must avoid (``None``: no such rule)."""

    min_notice: timedelta | None = timedelta(hours=1)
    support_hours: SupportHours | None = None
    policy: NoticePolicy = NoticePolicy.FLAG

    def __post_init__(self) -> None:
        if self.min_notice is not None and self.min_notice < timedelta(0):
            raise ValueError(f"min_notice: expected a non-negative duration, got {self.min_notice}")


@dataclass(frozen=True)
class Violation:
    """One broken rule, with a sentence fit for a report or a claim."""

    window_id: str
    kind: ViolationKind
    message: str
    rejected: bool


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return sign + ("".join(parts) or "0s")


def check_notice(window: ExclusionWindow, rule: NoticeRule) -> list[Violation]:
    """Every rule ``window`` breaks (empty when it complies or is not scheduled maintenance)."""
    if window.kind is not ExclusionKind.SCHEDULED_MAINTENANCE:
        return []
    rejected = rule.policy is NoticePolicy.REJECT
    found: list[Violation] = []
    start = window.start.isoformat()
    if rule.min_notice is not None:
        if window.announced_at is None:
            found.append(
                Violation(
                    window.id,
                    ViolationKind.NO_NOTICE,
                    f"maintenance {window.id} starting {start} has no announced_at; "
                    f"at least {_duration(rule.min_notice)} notice is required",
                    rejected,
                )
            )
        elif window.start - window.announced_at < rule.min_notice:
            given = window.start - window.announced_at
            found.append(
                Violation(
                    window.id,
                    ViolationKind.SHORT_NOTICE,
                    f"maintenance {window.id} starting {start} was announced at "
                    f"{window.announced_at.isoformat()}, {_duration(given)} before; at least "
                    f"{_duration(rule.min_notice)} is required",
                    rejected,
                )
            )
    if rule.support_hours is not None:
        overlap = support_time_between(window.start, window.end, rule.support_hours)
        if overlap > timedelta(0):
            first = next_open(window.start, rule.support_hours)
            found.append(
                Violation(
                    window.id,
                    ViolationKind.DURING_SUPPORT_HOURS,
                    f"maintenance {window.id} ({start} to {window.end.isoformat()}) overlaps "
                    f"Support Hours by {_duration(overlap)} from {first.isoformat()}",
                    rejected,
                )
            )
    return found


@dataclass(frozen=True)
class NoticeOutcome:
    """The windows to honour as exclusions and every violation found."""

    honoured: tuple[ExclusionWindow, ...]
    violations: tuple[Violation, ...]

    def count_by_window(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for violation in self.violations:
            counts[violation.window_id] = counts.get(violation.window_id, 0) + 1
        return counts


def apply_notice_rule(windows: Sequence[ExclusionWindow], rule: NoticeRule | None) -> NoticeOutcome:
    """Check every window; with ``rule=None`` (the availability SLA's default) honour all."""
    if rule is None:
        return NoticeOutcome(tuple(windows), ())
    honoured: list[ExclusionWindow] = []
    violations: list[Violation] = []
    for window in windows:
        found = check_notice(window, rule)
        violations.extend(found)
        if not (found and rule.policy is NoticePolicy.REJECT):
            honoured.append(window)
    return NoticeOutcome(tuple(honoured), tuple(violations))
