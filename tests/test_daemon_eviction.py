"""Issue 20: closed buckets' tallies leave the daemon's memory, and its months stay equal to
the month computed from the store (start-up, buckets closing, a reload that changes an SLA).

The sample configuration and results (``config/samples``: three SLAs, outages on 1 November
2026) are written to the store as the daemon writes them; the daemon runs on a fixed clock
three weeks into November, so nothing depends on today.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor import accounting
from monitor.accounting import Accounting
from monitor.clock import FixedClock
from monitor.config import load_config
from monitor.instants import utc_from_epoch
from monitor.reports.stored import store_month_results
from monitor.runtime.daemon import KEEP_CLOSED_SECONDS, Daemon
from monitor.sla.calendar import Month
from probes.result import Outcome, ProbeResult
from tests.test_one_path import SAMPLES, store_results

pytestmark = pytest.mark.timeout(120)

MONTH = Month(2026, 11)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def sample_config(tmp_path: Path, **ivr: Any) -> Path:
    data = yaml.safe_load((SAMPLES / "report.yaml").read_text(encoding="utf-8"))
    data["monitor"]["state_dir"] = str(tmp_path)
    (sla,) = [s for s in data["slas"] if s["name"] == "ujet-ivr"]
    sla.update(ivr)
    path = tmp_path / "report.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def same_as_store(daemon: Daemon, now: datetime) -> None:
    """Every SLA's current month, from the daemon's running state and from the store."""
    for policy in daemon.accounting.inputs.policies:
        live = daemon.accounting.month_result(policy, now, MONTH)
        (stored,) = await store_month_results(
            daemon.config, daemon.store, [policy], MONTH, now, daemon.api_exclusions
        )
        assert live.to_json() == stored.to_json(), policy.name
        assert tuple(live.states) == tuple(stored.states)


def held(daemon: Daemon) -> int:
    return sum(
        len(column)
        for seconds in daemon.state.lengths()
        for column in daemon.state.tallies(seconds).values()
    )


async def _read_back(config: Path) -> Daemon:
    """A daemon at ``NOW`` over ``config``'s store, its history read back."""
    daemon = Daemon(load_config(config), config, clock=FixedClock(NOW.timestamp()))
    await daemon.store.open()
    await daemon._load_history(NOW.timestamp())
    return daemon


class TestClosedBucketsLeaveMemory:
    def test_start_up_holds_only_the_open_window_and_equals_the_store(self, tmp_path: Path) -> None:
        """Start-up builds the months from the store in batches and keeps only the tallies
        of the last hour in memory; the figures (outages and their evidence included) are
        those computed from the store."""
        config = sample_config(tmp_path)
        asyncio.run(store_results(config))

        async def run() -> None:
            clock = FixedClock(NOW.timestamp())
            daemon = Daemon(load_config(config), config, clock=clock)
            await daemon.store.open()
            try:
                # The sample's results end on 1 November: nothing is within the last hour.
                await daemon._load_history(clock())
                assert held(daemon) == 0
                assert daemon.state.evicted_before(300) > NOW.timestamp() - 2 * KEEP_CLOSED_SECONDS
                await same_as_store(daemon, NOW)
                outages = [
                    outage
                    for policy in daemon.accounting.inputs.policies
                    for outage in daemon.accounting.month_result(policy, NOW, MONTH).outages
                ]
                assert outages  # with their evidence, equal to the store's (above)
                assert all(o.probes > 0 for o in outages)
                assert any(o.failed_targets for o in outages)
            finally:
                await daemon.store.close()

        asyncio.run(run())

    def test_buckets_closing_leave_memory_after_the_window_and_figures_stay(
        self, tmp_path: Path
    ) -> None:
        """A started daemon's flushed tallies leave memory once past the late-result window;
        the month, judged from its running state, still equals the store's."""
        config = sample_config(tmp_path)
        asyncio.run(store_results(config))

        async def run() -> None:
            clock = FixedClock(NOW.timestamp())
            daemon = Daemon(load_config(config), config, clock=clock)
            await daemon.store.open()
            try:
                await daemon._load_history(clock())
                for index in range(40):
                    # Results of the last few minutes, some failing.
                    outcome = Outcome.DOWN if index % 7 == 0 else Outcome.UP
                    reason = "timeout" if outcome is Outcome.DOWN else ""
                    result = ProbeResult("ivr-api", outcome, clock() - 240 + index, 0.01, reason)
                    daemon.state.record(result, (300,))
                assert held(daemon) > 0
                assert await daemon._summarise_and_flush()
                assert held(daemon) > 0  # inside the window: kept
                clock.advance(KEEP_CLOSED_SECONDS + 900)
                assert await daemon._summarise_and_flush()
                assert held(daemon) == 0
                await same_as_store(daemon, utc_from_epoch(clock()))
            finally:
                await daemon.store.close()

        asyncio.run(run())

    def test_reload_changing_an_sla_rebuilds_its_month_from_the_store(self, tmp_path: Path) -> None:
        """After eviction a reload that changes an SLA's rules reads its months back from
        the store before it applies: the figures are those of the new rules over every
        stored tally."""
        config = sample_config(tmp_path)
        asyncio.run(store_results(config))

        async def run() -> None:
            clock = FixedClock(NOW.timestamp())
            daemon = Daemon(load_config(config), config, clock=clock)
            await daemon.store.open()
            try:
                await daemon._load_history(clock())
                policy = daemon.accounting.policy("ujet-ivr")
                before = daemon.accounting.month_result(policy, NOW, MONTH)
                sample_config(tmp_path, unavailable_when="all_failed", min_probes=2)
                assert daemon.reload()
                # Applied once the store has been read: the old rules until then.
                assert daemon.accounting.policy("ujet-ivr") == policy
                await asyncio.gather(*daemon._background)
                changed = daemon.accounting.policy("ujet-ivr")
                assert changed != policy
                after = daemon.accounting.month_result(changed, NOW, MONTH)
                assert after.to_json() != before.to_json()
                await same_as_store(daemon, NOW)
            finally:
                await daemon.store.close()

        asyncio.run(run())

    def test_reload_rebuilds_only_the_changed_slas_months(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """rl34 (issue 20): after eviction, a reload changing one SLA reads back and builds
        that SLA's months only (its current and previous month); every other SLA keeps the
        very months it held, and the summary after it asks each SLA's figures once."""
        config = sample_config(tmp_path)
        asyncio.run(store_results(config))

        async def run() -> None:
            daemon = await _read_back(config)
            try:
                await daemon._summarise()
                held_before = dict(daemon.accounting._running)
                built: list[str] = []
                prepare = Accounting.prepare

                def counted(self: Accounting, inputs: Any, policy: Any, *rest: Any) -> Any:
                    built.append(policy.name)
                    return prepare(self, inputs, policy, *rest)

                monkeypatch.setattr(Accounting, "prepare", counted)
                compared: list[str] = []
                keeps = accounting._keeps

                def counted_keeps(running: Any, policy: Any, inputs: Any) -> bool:
                    compared.append(policy.name)
                    return keeps(running, policy, inputs)

                monkeypatch.setattr(accounting, "_keeps", counted_keeps)
                sample_config(tmp_path, unavailable_when="all_failed", min_probes=2)
                assert daemon.reload()
                await asyncio.gather(*daemon._background)
                assert built == ["ujet-ivr", "ujet-ivr"]
                # Each held month compared once when the reload asks what to read back, and
                # each month read back when installed: not every month again at the install.
                assert len(compared) == len(held_before) + len(built), compared
                for key, running in daemon.accounting._running.items():
                    if key[0] != "ujet-ivr":
                        assert running is held_before[key], key
                asked: list[str] = []
                month_result = Accounting.month_result

                def counted_result(self: Accounting, policy: Any, *rest: Any, **kw: Any) -> Any:
                    asked.append(policy.name)
                    return month_result(self, policy, *rest, **kw)

                monkeypatch.setattr(Accounting, "month_result", counted_result)
                await daemon._summarise()
                assert set(asked) == {p.name for p in daemon.config.sla_policies()}
                assert built == ["ujet-ivr", "ujet-ivr"]  # the summary built no month again
                await same_as_store(daemon, NOW)
            finally:
                await daemon.store.close()

        asyncio.run(run())
