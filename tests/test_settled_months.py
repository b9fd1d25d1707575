"""sm32 (issue 20): a start holds each SLA's previous month by the counts its whole-month
snapshot carries, shows its money from them, and builds the month only when something needs
it, with the same figures as a start that builds it.

The sample configuration and results (``config/samples``: three SLAs, outages on 1 November
2026) are written to the store; the daemon runs on a fixed clock on 10 December, so November
is the previous month.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.clock import FixedClock
from monitor.config import load_config
from monitor.metrics.collector import MetricsExposition
from monitor.metrics.contract import ContractCollector
from monitor.reports.stored import store_month_results
from monitor.runtime.daemon import Daemon
from monitor.runtime.sealing import held_result
from monitor.sla.calendar import Month
from monitor.sla.month import MonthResult
from monitor.sla.policy import ExclusionKind, ExclusionWindow, Tally
from monitor.sla.settled import (
    SettledCounts,
    money_of_result,
    settled_counts,
    settled_text,
    windows_digest,
)
from tests.test_daemon_eviction import sample_config
from tests.test_one_path import store_results

pytestmark = pytest.mark.timeout(120)

NOVEMBER = Month(2026, 11)
LATER = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
_START = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())

_WINDOW = ExclusionWindow(
    id="carrier",
    start=datetime(2026, 11, 1, 0, 0, tzinfo=UTC),
    end=datetime(2026, 11, 2, 0, 0, tzinfo=UTC),
    kind=ExclusionKind.TELECOM_PROVIDER,
    reason="carrier outage",
    source="api",
)


class TestSettledText:
    @given(
        counts=st.tuples(st.integers(0, 3000), st.integers(0, 3000), st.integers(0, 2928)),
        windows=st.sampled_from([(), (_WINDOW,)]),
    )
    def test_read_back_under_the_same_windows_only(
        self, counts: tuple[int, int, int], windows: tuple[ExclusionWindow, ...]
    ) -> None:
        """The counts come back under the windows they were written with; under others, or
        past the month's buckets, they are not read."""
        buckets = 8928
        text = settled_text(SettledCounts(*counts), windows)
        assert settled_counts(text, windows, buckets) == SettledCounts(*counts)
        other = () if windows else (_WINDOW,)
        assert settled_counts(text, other, buckets) is None
        if sum(counts) > 0:
            assert settled_counts(text, windows, sum(counts) - 1) is None

    @pytest.mark.parametrize(
        "text",
        ["", "s1", "s2 0 0 0 x", "s1 a 0 0 x", "s1 -1 0 0 x", "s1 0 0 0", "s1 0 0 0 x y"],
    )
    def test_anything_else_is_not_read(self, text: str) -> None:
        """Empty (a snapshot of part of a month, or written before sm32), another format or
        damaged: not read (the month is built as before)."""
        assert settled_counts(text.replace("x", windows_digest(())), (), 8928) is None


async def _start(config: Path) -> Daemon:
    clock = FixedClock(LATER.timestamp())
    daemon = Daemon(load_config(config), config, clock=clock)
    await daemon.store.open()
    await daemon._load_history(clock())
    return daemon


async def _sla_lines(daemon: Daemon) -> list[str]:
    """The SLA families' lines of ``/metrics`` after a summary (the daemon's own text)."""
    await daemon._summarise()
    body = (await MetricsExposition(daemon, extra=[ContractCollector(daemon)]).render()).decode()
    prefixes = ("slawatch_month_", "slawatch_previous_month_", "slawatch_credit_", "slawatch_sla")
    return [line for line in body.splitlines() if line.startswith(prefixes)]


def _november(daemon: Daemon) -> dict[str, tuple[Any, ...]]:
    out = {}
    for policy in daemon.accounting.inputs.policies:
        result = daemon.accounting.month_result(policy, LATER, NOVEMBER)
        out[policy.name] = (result.to_json(), tuple(result.states))
    return out


async def _stored(daemon: Daemon) -> dict[str, Any]:
    out = {}
    for policy in daemon.accounting.inputs.policies:
        (result,) = await store_month_results(
            daemon.config, daemon.store, [policy], NOVEMBER, LATER, daemon.api_exclusions
        )
        out[policy.name] = result
    return out


def _settled(daemon: Daemon) -> set[str]:
    accounting = daemon.accounting
    return {p.name for p in accounting.inputs.policies if accounting.is_settled(p, NOVEMBER)}


def _saved_then_started(tmp_path: Path, check: Any) -> None:
    """A first daemon builds every month and saves them; ``check(first_lines, first_months,
    second)`` runs on a second daemon started from those snapshots."""
    config = sample_config(tmp_path)
    asyncio.run(store_results(config))

    async def run() -> None:
        first = await _start(config)
        try:
            assert not _settled(first)  # nothing saved yet: built from the tallies
            lines = await _sla_lines(first)
            months = _november(first)
            await first._save_snapshots(LATER.timestamp())
        finally:
            await first.store.close()
        second = await _start(config)
        try:
            await check(lines, months, second)
        finally:
            await second.store.close()

    asyncio.run(run())


class TestStartHoldsThePreviousMonthByItsCounts:
    def test_metrics_and_months_equal_a_start_that_builds_them(self, tmp_path: Path) -> None:
        """Every SLA's November is held by its counts after the restart: ``/metrics`` is
        line for line the first daemon's without building any of them; asked for, each month
        is built from its snapshot and equals the first daemon's and the store's."""

        async def check(lines: list[str], months: dict[str, Any], second: Daemon) -> None:
            names = {p.name for p in second.accounting.inputs.policies}
            assert _settled(second) == names
            assert any(
                line.startswith("slawatch_previous_month_credit_amount") and not line.endswith(" 0")
                for line in lines
            ), "the sample's November owes a credit"
            assert await _sla_lines(second) == lines
            assert _settled(second) == names  # the summary and the scrape built none
            assert _november(second) == months
            assert not _settled(second)  # asked for: built
            stored = await _stored(second)
            for name, (doc, states) in months.items():
                assert doc == stored[name].to_json()
                assert states == tuple(stored[name].states)

        _saved_then_started(tmp_path, check)

    def test_an_exclusion_over_it_moves_its_money_as_the_store_computes(
        self, tmp_path: Path
    ) -> None:
        """A window added through the API over November's outages: the money shown is that
        of the month computed from the store under the new windows (the month is built, its
        counts were taken under other windows), and so are the figures."""

        async def check(lines: list[str], months: dict[str, Any], second: Daemon) -> None:
            await second.add_exclusion(_WINDOW)
            after = await _sla_lines(second)
            stored = await _stored(second)
            accounting = second.accounting
            for policy in accounting.inputs.policies:
                money = accounting.previous_money(policy, LATER, NOVEMBER)
                assert money == money_of_result(stored[policy.name]), policy.name
            assert after != lines  # the window moved a credit
            assert not _settled(second)

        _saved_then_started(tmp_path, check)

    def test_a_tally_into_it_builds_it_and_is_judged(self, tmp_path: Path) -> None:
        """A tally of a settled month's bucket told to the accounting (a write the guard did
        not expect): the month is built from its snapshot, then that bucket judged again."""

        async def check(lines: list[str], months: dict[str, Any], second: Daemon) -> None:
            accounting = second.accounting
            policy = accounting.inputs.policies[0]
            service = accounting.inputs.services[policy.service]
            target = sorted(service.all_targets)[0]
            size = policy.bucket_seconds
            states = [state.value for state in months[policy.name][1]]
            bucket = _START + states.index("available") * size  # a bucket measured up
            # The tally source the month would read it from (memory, in the daemon).
            tallies: dict[str, dict[int, Tally]] = {name: {} for name in service.all_targets}
            tallies[target][bucket] = Tally(ok=0, failed=3, reasons={"timeout": 3})
            accounting._tallies = lambda seconds, month, p: tallies  # type: ignore[method-assign]
            assert accounting.is_settled(policy, NOVEMBER)
            accounting.tally_changed(size, target, bucket)
            assert not accounting.is_settled(policy, NOVEMBER)
            result = accounting.month_result(policy, LATER, NOVEMBER)
            assert result.states[(bucket - _START) // size].value == "unavailable"
            assert result.buckets_unavailable == months[policy.name][0]["buckets_unavailable"] + 1

        _saved_then_started(tmp_path, check)

    def test_not_settled_while_the_month_has_live_tallies(self, tmp_path: Path) -> None:
        """Just after the month's end (its last buckets still in memory, a late result may
        still count into them) the previous month is built, not settled."""
        config = sample_config(tmp_path)
        asyncio.run(store_results(config))
        early = datetime(2026, 12, 1, 0, 20, tzinfo=UTC)

        async def run() -> None:
            for _ in range(2):
                clock = FixedClock(early.timestamp())
                daemon = Daemon(load_config(config), config, clock=clock)
                await daemon.store.open()
                try:
                    await daemon._load_history(clock())
                    accounting = daemon.accounting
                    assert not any(
                        accounting.is_settled(p, NOVEMBER) for p in accounting.inputs.policies
                    )
                    await daemon._save_snapshots((early + timedelta(minutes=1)).timestamp())
                finally:
                    await daemon.store.close()

        asyncio.run(run())

    def test_sealing_builds_it_and_seals_the_store_s_month(self, tmp_path: Path) -> None:
        """Sealing asks for the month (``runtime.sealing.held_result``): a settled month is
        built from its snapshot and stands for the store's; one whose snapshot does not decode
        gives None (sealing computes it from the store), never an error."""

        async def check(lines: list[str], months: dict[str, Any], second: Daemon) -> None:
            accounting = second.accounting
            stored = await _stored(second)
            first, *others = accounting.inputs.policies
            broken = accounting._settled[first.name]
            object.__setattr__(broken, "restore", lambda: None)
            assert held_result(accounting, first, NOVEMBER, accounting.inputs, LATER) is None
            assert accounting.unloaded == {first.name}
            for policy in others:
                assert accounting.is_settled(policy, NOVEMBER)
                held = held_result(accounting, policy, NOVEMBER, accounting.inputs, LATER)
                assert isinstance(held, MonthResult)
                assert held.to_json() == stored[policy.name].to_json()
                assert not accounting.is_settled(policy, NOVEMBER)

        _saved_then_started(tmp_path, check)
