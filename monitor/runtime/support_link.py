"""Where the support SLA meets the running daemon: maintenance notice rules as a filter on the
exclusion windows each availability SLA honours, and the support figures the metrics show.

The rules themselves are pure (``monitor.support``); this module only feeds them the
configuration, the month's windows and the faults in the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from monitor.config import Config
from monitor.sla.policy import ExclusionKind, ExclusionWindow, SlaPolicy
from monitor.store.base import Store
from monitor.support.metrics import Sample, support_samples
from monitor.support.notice import NoticePolicy, NoticeRule, Violation, check_notice
from monitor.support.service import load_summaries, log_notice_violations

WindowFilter = Callable[[SlaPolicy, ExclusionWindow], bool]


def notice_rules(config: Config) -> dict[str, NoticeRule]:
    """SLA name -> its maintenance notice rule, for the SLAs that set one."""
    rules: dict[str, NoticeRule] = {}
    for sla in config.slas:
        if sla.maintenance_notice is not None:
            rules[sla.name] = sla.maintenance_notice.to_rule(config.support)
    return rules


def window_filter(rules: Mapping[str, NoticeRule]) -> WindowFilter | None:
    """A window breaking its SLA's notice rule under ``policy: reject`` is not honoured."""
    rejecting = {name: rule for name, rule in rules.items() if rule.policy is NoticePolicy.REJECT}
    if not rejecting:
        return None

    def honoured(policy: SlaPolicy, window: ExclusionWindow) -> bool:
        rule = rejecting.get(policy.name)
        return rule is None or not check_notice(window, rule)

    return honoured


def violations(
    rules: Mapping[str, NoticeRule],
    windows_by_sla: Mapping[str, Iterable[ExclusionWindow]],
) -> dict[str, list[Violation]]:
    """Every broken notice rule, per SLA, among the scheduled maintenance windows given."""
    found: dict[str, list[Violation]] = {}
    for sla, rule in rules.items():
        found[sla] = [
            v
            for w in windows_by_sla.get(sla, ())
            if w.kind is ExclusionKind.SCHEDULED_MAINTENANCE
            for v in check_notice(w, rule)
        ]
    return found


class SupportFigures:
    """The latest support samples for /metrics, refreshed from the store by the daemon.

    A scrape must not wait on the store, so the daemon refreshes these every few seconds and
    the collector reads the last ones; a violation is logged once per window, not per refresh.
    """

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self._logged: set[tuple[str, str, str]] = set()

    async def refresh(
        self,
        config: Config,
        store: Store,
        now: datetime,
        windows_by_sla: Mapping[str, Iterable[ExclusionWindow]],
    ) -> None:
        rules = notice_rules(config)
        broken = violations(rules, windows_by_sla)
        for sla, items in broken.items():
            fresh = [v for v in items if (sla, v.window_id, v.kind.value) not in self._logged]
            log_notice_violations(sla, fresh)
            self._logged.update((sla, v.window_id, v.kind.value) for v in fresh)
        summaries = []
        if config.support is not None and config.support.contracts:
            summaries = await load_summaries(store, config.support.support_contracts(), now)
        self.samples = support_samples(
            summaries, {sla: len(items) for sla, items in broken.items()}
        )
