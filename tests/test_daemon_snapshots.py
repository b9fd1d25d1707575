"""Issue 20: the daemon persists its running months and a restart starts from them, giving
the same months as a restart that reads every stored tally, unless a tally under a snapshot
changed (then that month is read in full again).

The sample configuration and results (``config/samples``: three SLAs, outages on 1 November
2026) are written to the store; the daemon runs on a fixed clock three weeks into November.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from monitor.accounting import HistoryNotLoaded
from monitor.clock import FixedClock
from monitor.config import load_config
from monitor.http.reports import daemon_month_results
from monitor.runtime.daemon import Daemon
from monitor.sla.policy import Tally
from monitor.sla.running_codec import decode, encode_v1
from monitor.store.base import TallyRow, WriteBatch
from monitor.store.sqlite import SqliteStore
from tests.test_daemon_eviction import MONTH, NOW, same_as_store, sample_config
from tests.test_one_path import store_results

pytestmark = pytest.mark.timeout(120)


async def _months(daemon: Daemon) -> dict[str, tuple[Any, tuple[Any, ...]]]:
    out = {}
    for policy in daemon.accounting.inputs.policies:
        for month in (MONTH.previous(), MONTH):
            result = daemon.accounting.month_result(policy, NOW, month)
            out[f"{policy.name} {month}"] = (result.to_json(), tuple(result.states))
    return out


async def _start(config: Path, reads: list[int] | None = None) -> Daemon:
    """A daemon whose history is read back (``reads``: the start of every tally read)."""
    clock = FixedClock(NOW.timestamp())
    daemon = Daemon(load_config(config), config, clock=clock)
    await daemon.store.open()
    if reads is not None:
        original = daemon.store.load_tallies

        async def load(start: int, end: int, *args: Any, **kwargs: Any) -> Any:
            reads.append(start)
            return await original(start, end, *args, **kwargs)

        daemon.store.load_tallies = load  # type: ignore[method-assign]
    await daemon._load_history(clock())
    return daemon


async def saved_months(config: Path) -> dict[str, tuple[Any, tuple[Any, ...]]]:
    """Start a daemon on ``config``'s store, save its months' snapshots, stop it: its months
    (as :func:`_months` gives them) computed before the save."""
    first = await _start(config)
    try:
        expected = await _months(first)
        await first._save_snapshots(NOW.timestamp())
    finally:
        await first.store.close()
    return expected


def saved_sample(tmp_path: Path) -> tuple[Path, Path, dict[str, tuple[Any, tuple[Any, ...]]]]:
    """The sample configuration and results in a store under ``tmp_path``, its months'
    snapshots saved (:func:`saved_months`): the configuration, the database, the months."""
    config = sample_config(tmp_path)
    asyncio.run(store_results(config))
    return config, load_config(config).monitor.database_path, asyncio.run(saved_months(config))


def _replace(source: Path, database: Path) -> None:
    shutil.copy(source, database)
    for suffix in ("-wal", "-shm"):
        Path(str(database) + suffix).unlink(missing_ok=True)


class TestRestartFromSnapshots:
    def test_restart_with_snapshots_equals_restart_without(self, tmp_path: Path) -> None:
        """Saved at the first run, the months are started from their snapshots at the second
        (the closed buckets' tallies are not read again) and equal both the months of a
        start without snapshots and the months computed from the store."""
        config = sample_config(tmp_path)
        asyncio.run(store_results(config))
        database = load_config(config).monitor.database_path
        plain = tmp_path / "plain"
        plain.mkdir()

        async def run() -> None:
            expected = await saved_months(config)
            # The same store without its snapshots (schema 7 tables emptied): read in full.
            shutil.copy(database, plain / database.name)
            copy = SqliteStore(plain / database.name, "unused")
            await copy.open()
            await copy._call(
                lambda conn: conn.executescript(
                    "DELETE FROM month_snapshots; DELETE FROM snapshot_guard;"
                )
            )
            await copy.close()

            reads: list[int] = []
            second = await _start(config, reads)
            try:
                months = len(second.accounting.inputs.policies) * 2
                assert second.snapshots.restored == months
                edge = second.state.evicted_before(300)
                # Only the hour before the eviction cutoff (and memory's window) is read.
                assert all(start >= edge - 3 * 3600 for start in reads), (reads, edge)
                assert await _months(second) == expected
                await same_as_store(second, NOW)
            finally:
                await second.store.close()

            _replace(plain / database.name, database)
            reads = []
            third = await _start(config, reads)
            try:
                assert third.snapshots.restored == 0
                # Read in full: from the previous month's start.
                assert min(reads) <= int(NOW.timestamp()) - 40 * 86400
                assert await _months(third) == expected
            finally:
                await third.store.close()

        asyncio.run(run())

    def test_corrupt_or_old_format_snapshots(self, tmp_path: Path) -> None:
        """Issue 20, r22: a truncated snapshot and one of unknown format are rebuilt from the
        tallies with one log line each, a snapshot in the first format (``SWJS1``) still
        starts its month; the figures equal the months computed from the store.

        sm32: the truncated one is a previous month's, held by its counts at the start: it is
        found when the month itself is first asked for. The API then answers from the store,
        the month is not loaded until the next summary reads it back from the tallies."""
        config, database, expected = saved_sample(tmp_path)

        async def run() -> None:
            conn = sqlite3.connect(database)
            rows = conn.execute(
                "SELECT rowid, state, sla, month FROM month_snapshots ORDER BY sla, month"
            ).fetchall()
            assert len(rows) >= 3
            (cut, cut_state, cut_sla, cut_month), (alien, *_), (old, old_state, *_) = rows[:3]
            assert cut_month == str(MONTH.previous())
            conn.execute(
                "UPDATE month_snapshots SET state = ? WHERE rowid = ?",
                (bytes(cut_state)[: len(cut_state) // 2], cut),
            )
            conn.execute(
                "UPDATE month_snapshots SET state = ? WHERE rowid = ?", (b"SWJS9junk", alien)
            )
            conn.execute(
                "UPDATE month_snapshots SET state = ? WHERE rowid = ?",
                (encode_v1(decode(bytes(old_state))), old),
            )
            conn.commit()
            conn.close()
            with capture_logs() as logs:
                second = await _start(config)
            try:
                months = len(second.accounting.inputs.policies) * 2
                assert second.snapshots.restored == months - 1
                unreadable = [e for e in logs if e["event"] == "month_snapshot_unreadable"]
                assert len(unreadable) == 1, logs
                accounting = second.accounting
                policy = accounting.policy(cut_sla)
                # The summary shows its money from its counts, without building it.
                await second._summarise()
                assert accounting.built(policy, MONTH.previous())
                assert not accounting.unloaded
                with capture_logs() as logs, pytest.raises(HistoryNotLoaded):
                    accounting.month_result(policy, NOW, MONTH.previous())
                assert [e["event"] for e in logs] == ["month_snapshot_unreadable"]
                assert accounting.unloaded == {cut_sla}
                assert second.snapshots.restored == months - 2
                (answer,) = await daemon_month_results(second, [policy], str(MONTH.previous()), NOW)
                key = f"{cut_sla} {MONTH.previous()}"
                assert (answer.to_json(), tuple(answer.states)) == expected[key]
                await second._summarise()  # reads it back from the tallies
                assert not accounting.unloaded
                assert await _months(second) == expected
                await same_as_store(second, NOW)
            finally:
                await second.store.close()

        asyncio.run(run())

    def test_import_into_a_snapshotted_month_rebuilds_it(self, tmp_path: Path) -> None:
        """A tally written by another process (``slawatch import``) while the daemon is
        stopped spoils the snapshots of that month: the restart reads it in full and
        counts the import; the other months still start from their snapshots."""
        config = sample_config(tmp_path)
        asyncio.run(store_results(config))
        loaded = load_config(config)
        (ivr,) = [p for p in loaded.sla_policies() if p.name == "ujet-ivr"]
        target = sorted(loaded.service_defs()[ivr.service].all_targets)[0]

        async def run() -> None:
            first = await _start(config)
            try:
                before = first.accounting.month_result(ivr, NOW, MONTH)
                await first._save_snapshots(NOW.timestamp())
            finally:
                await first.store.close()
            importer = SqliteStore(loaded.monitor.database_path, loaded.monitor.name)
            await importer.open()
            # 12 November 10:00 UTC: long before the snapshot's end, a failing bucket.
            bucket = int(NOW.timestamp()) - 10 * 86400 - 2 * 3600
            bucket -= bucket % ivr.bucket_seconds
            row = TallyRow.of(
                loaded.monitor.name,
                target,
                bucket,
                ivr.bucket_seconds,
                Tally(ok=0, failed=5, reasons={"timeout": 5}),
            )
            await importer.write_batch(WriteBatch(tallies=[row]))
            await importer.close()

            second = await _start(config)
            try:
                months = len(second.accounting.inputs.policies) * 2
                shared = [
                    p
                    for p in second.accounting.inputs.policies
                    if target in loaded.service_defs()[p.service].all_targets
                ]
                # Every SLA reading that target loses its November snapshot, no other.
                assert second.snapshots.restored == months - len(shared)
                after = second.accounting.month_result(ivr, NOW, MONTH)
                assert after.to_json() != before.to_json()
                await same_as_store(second, NOW)
            finally:
                await second.store.close()

        asyncio.run(run())

    def test_a_month_begun_in_memory_is_snapshotted(self, tmp_path: Path) -> None:
        """The next month's guard is armed before it begins, so the month the daemon begins
        in memory at the rollover is saved and a restart in it starts from its snapshot."""
        config = sample_config(tmp_path)
        asyncio.run(store_results(config))
        later = NOW.replace(month=12, day=2)

        async def run() -> None:
            first = await _start(config)
            try:
                assert isinstance(first.clock, FixedClock)
                first.clock.advance(later.timestamp() - NOW.timestamp())
                assert await first._summarise_and_flush()  # December begun, then evicted
                assert first.state.evicted_before(300) > later.timestamp() - 3 * 3600
                await first._save_snapshots(first.clock())
                expected = {
                    p.name: first.accounting.month_result(p, later).to_json()
                    for p in first.accounting.inputs.policies
                }
            finally:
                await first.store.close()
            clock = FixedClock(later.timestamp() + 60)
            second = Daemon(load_config(config), config, clock=clock)
            await second.store.open()
            try:
                await second._load_history(clock())
                # November (previous) and December (begun in memory) from their snapshots.
                assert second.snapshots.restored == 2 * len(second.accounting.inputs.policies)
                for policy in second.accounting.inputs.policies:
                    got = second.accounting.month_result(policy, later)
                    assert got.to_json() == expected[policy.name]
            finally:
                await second.store.close()

        asyncio.run(run())
