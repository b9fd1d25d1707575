"""The daemon's view of each SLA's month: the pure engine fed from live state and the store.

``compute_month`` is pure and cheap enough for a few services, but a scrape every few seconds
should not redo it: results are cached per (SLA, month) and recomputed when a bucket closes,
when exclusions change, or after ``max_age`` seconds (so the running bucket's verdict stays
fresh). Everything time-dependent takes ``now``; nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.sla.calendar import Month, month_bounds, month_containing
from monitor.sla.exclusions import expand_recurring
from monitor.sla.month import MonthResult, compute_month
from monitor.sla.policy import (
    ExclusionWindow,
    RecurringExclusion,
    ServiceDef,
    SlaPolicy,
    Tally,
)

TallySource = Callable[[int, Month, SlaPolicy], Mapping[str, Mapping[int, Tally]]]
"""(bucket_seconds, month, policy) -> target -> bucket start -> tally."""


@dataclass(frozen=True)
class AccountingInputs:
    """Everything but the tallies: the configuration's part and the store's part."""

    policies: tuple[SlaPolicy, ...]
    services: Mapping[str, ServiceDef]
    windows: tuple[ExclusionWindow, ...]
    recurring: tuple[RecurringExclusion, ...]
    canaries: tuple[str, ...]
    gaps: tuple[tuple[datetime, datetime], ...]
    window_filter: Callable[[SlaPolicy, ExclusionWindow], bool] | None = None
    """Returns False for a window the SLA does not honour (e.g. maintenance notice broken)."""


class Accounting:
    """Cached month results per SLA."""

    def __init__(self, inputs: AccountingInputs, tallies: TallySource, max_age: float = 5.0):
        self._inputs = inputs
        self._tallies = tallies
        self._max_age = max_age
        self._cache: dict[tuple[str, Month], tuple[float, int, MonthResult]] = {}

    @property
    def inputs(self) -> AccountingInputs:
        return self._inputs

    def replace_inputs(self, inputs: AccountingInputs) -> None:
        self._inputs = inputs
        self._cache.clear()

    def policy(self, name: str) -> SlaPolicy:
        for policy in self._inputs.policies:
            if policy.name == name:
                return policy
        raise KeyError(name)

    def windows_for(self, policy: SlaPolicy, month: Month) -> list[ExclusionWindow]:
        """Concrete windows touching ``month`` for ``policy``'s service, recurring ones expanded."""
        start, end = month_bounds(month, policy.timezone)
        windows = [w for w in self._inputs.windows if w.end > start and w.start < end]
        for rec in self._inputs.recurring:
            windows.extend(expand_recurring(rec, start, end))
        keep = self._inputs.window_filter
        return [
            w for w in windows if w.covers(policy.service) and (keep is None or keep(policy, w))
        ]

    def month_result(
        self, policy: SlaPolicy, now: datetime, month: Month | None = None
    ) -> MonthResult:
        """The month holding ``now`` (or ``month``), as of ``now``."""
        current = month_containing(now, policy.timezone)
        month = current if month is None else month
        epoch = now.timestamp()
        bucket_index = int(epoch // policy.bucket_seconds)
        key = (policy.name, month)
        cached = self._cache.get(key)
        if cached is not None:
            computed_at, computed_bucket, result = cached
            fresh = epoch - computed_at < self._max_age and computed_bucket == bucket_index
            if fresh or month < current:
                return result
        result = compute_month(
            policy,
            self._inputs.services[policy.service],
            month,
            self._tallies(policy.bucket_seconds, month, policy),
            self.windows_for(policy, month),
            canaries=self._inputs.canaries,
            gaps=self._inputs.gaps,
            now=now if month >= current else None,
        )
        self._cache[key] = (epoch, bucket_index, result)
        return result


def utc_now(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
