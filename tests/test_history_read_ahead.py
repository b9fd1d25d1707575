"""ov33 (issue 20): the start-up's store calls run one piece ahead of the loop's work
(``monitor.runtime.ahead``): the next chunk's snapshots load while this chunk is checked, the
next batch's tallies are read while this batch's months are built. Nothing is lost or
reordered by it:

- each chunk's guards are still armed after its snapshots were loaded, so a write landing
  between the two (here: with the next chunk's load queued in between) is still caught, and
  that month is read in full;
- the months built in many small batches, read ahead, equal the store's;
- a store failure mid-way fails the history read with that error and leaves no call of it
  running behind.

The sample configuration (three SLAs on disjoint targets) is cut into one SLA per snapshot
chunk and per batch.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import monitor.runtime.daemon as daemon_module
import monitor.runtime.snapshots as snapshots_module
from monitor.clock import FixedClock
from monitor.config import load_config
from monitor.runtime.daemon import Daemon
from monitor.sla.policy import Tally
from monitor.store.base import StoreError, TallyRow, WriteBatch
from monitor.store.sqlite import SqliteStore
from tests.test_daemon_eviction import MONTH, NOW, same_as_store, sample_config
from tests.test_daemon_snapshots import _months
from tests.test_one_path import store_results

pytestmark = pytest.mark.timeout(120)


def _daemon(config: Path) -> Daemon:
    return Daemon(load_config(config), config, clock=FixedClock(NOW.timestamp()))


def _logged(daemon: Daemon, calls: list[tuple[str, str]]) -> None:
    """Record the snapshot loads and arms (by the SLAs in them) in the order they reach the
    store, and the tally reads (by their targets)."""
    store = daemon.store
    load, arm, tallies = (
        store.load_month_snapshots,  # type: ignore[attr-defined]
        store.arm_month_snapshots,  # type: ignore[attr-defined]
        store.load_tallies,
    )

    def logged_load(keys: Any) -> Any:
        calls.append(("load", ",".join(sorted({sla for sla, _ in keys}))))
        return load(keys)

    def logged_arm(guards: Any) -> Any:
        calls.append(("arm", ",".join(sorted({g.sla for g in guards}))))
        return arm(guards)

    def logged_tallies(start: int, end: int, targets: Any = None, *a: Any, **k: Any) -> Any:
        calls.append(("tallies", ",".join(targets or ["*"])))
        return tallies(start, end, targets, *a, **k)

    store.load_month_snapshots = logged_load  # type: ignore[attr-defined]
    store.arm_month_snapshots = logged_arm  # type: ignore[attr-defined]
    store.load_tallies = logged_tallies  # type: ignore[method-assign]


async def _saved(config: Path) -> dict[str, Any]:
    """A first run's months, their snapshots saved."""
    first = _daemon(config)
    await first.store.open()
    try:
        await first._load_history(first.clock())
        expected = await _months(first)
        await first._save_snapshots(NOW.timestamp())
    finally:
        await first.store.close()
    return expected


@pytest.fixture
def one_per_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(snapshots_module, "CHUNK", 2)  # one SLA per chunk
    monkeypatch.setattr(daemon_module, "HISTORY_BATCH_ROWS", 1)  # one SLA per batch


@pytest.mark.usefixtures("one_per_piece")
class TestReadAhead:
    def test_a_write_between_a_chunks_load_and_its_arm_is_caught(self, tmp_path: Path) -> None:
        """A tally written into ujet-ivr's snapshotted month after its chunk's snapshots
        were loaded (the next chunk's load already queued) and before its guards are armed
        spoils it: that month is read in full and counts the write; the others start from
        their snapshots."""
        config = sample_config(tmp_path)
        asyncio.run(store_results(config))
        loaded = load_config(config)
        (ivr,) = [p for p in loaded.sla_policies() if p.name == "ujet-ivr"]

        async def run() -> None:
            expected = await _saved(config)
            importer = SqliteStore(loaded.monitor.database_path, loaded.monitor.name)
            await importer.open()
            second = _daemon(config)
            await second.store.open()
            calls: list[tuple[str, str]] = []
            _logged(second, calls)
            arm = second.store.arm_month_snapshots  # type: ignore[attr-defined]

            async def write_then_arm(guards: Any) -> Any:
                if any(g.sla == ivr.name for g in guards):
                    bucket = int(NOW.timestamp()) - 10 * 86400 - 2 * 3600
                    bucket -= bucket % ivr.bucket_seconds
                    tally = Tally(ok=0, failed=5, reasons={"timeout": 5})
                    row = TallyRow.of(
                        loaded.monitor.name, "ivr-api", bucket, ivr.bucket_seconds, tally
                    )
                    await importer.write_batch(WriteBatch(tallies=[row]))
                return await arm(guards)

            second.store.arm_month_snapshots = write_then_arm  # type: ignore[attr-defined]
            try:
                await second._load_history(second.clock())
                # Pipelined: each chunk's load is queued before the previous chunk's arm,
                # every arm before the first tally read.
                snapshot_calls = [c for c in calls if c[0] != "tallies"]
                assert snapshot_calls == [
                    ("load", "ujet-voice"),
                    ("load", "ujet-ivr"),
                    ("arm", "ujet-voice"),
                    ("load", "web-portal"),
                    ("arm", "ujet-ivr"),
                    ("arm", "web-portal"),
                ], calls
                assert calls.index(("arm", "web-portal")) < min(
                    i for i, c in enumerate(calls) if c[0] == "tallies"
                )
                months = len(second.accounting.inputs.policies) * 2
                assert second.snapshots.restored == months - 1
                now = await _months(second)
                changed = [key for key in expected if now[key] != expected[key]]
                assert changed == [f"ujet-ivr {MONTH}"]
                await same_as_store(second, NOW)
            finally:
                await second.store.close()
                await importer.close()

        asyncio.run(run())

    def test_batches_read_ahead_equal_the_store(self, tmp_path: Path) -> None:
        """Without snapshots (every month read in full), one SLA per batch: the next batch's
        tallies are read before this batch's months are built, and the months equal the
        store's."""
        config = sample_config(tmp_path)
        asyncio.run(store_results(config))

        async def run() -> None:
            daemon = _daemon(config)
            await daemon.store.open()
            calls: list[tuple[str, str]] = []
            _logged(daemon, calls)
            prepare = daemon.accounting.prepare

            def logged_prepare(inputs: Any, policy: Any, *a: Any, **k: Any) -> Any:
                calls.append(("build", policy.name))
                return prepare(inputs, policy, *a, **k)

            daemon.accounting.prepare = logged_prepare  # type: ignore[method-assign]
            try:
                await daemon._load_history(daemon.clock())
                order = [c for c in calls if c[0] in ("tallies", "build")]
                # The live window's read (every target), then one read per SLA's target,
                # each before the previous SLA's months are built.
                assert order == [
                    ("tallies", "*"),
                    ("tallies", "sip-edge"),
                    ("tallies", "ivr-api"),
                    ("build", "ujet-voice"),
                    ("build", "ujet-voice"),
                    ("tallies", "agent-login"),
                    ("build", "ujet-ivr"),
                    ("build", "ujet-ivr"),
                    ("build", "web-portal"),
                    ("build", "web-portal"),
                ], calls
                await same_as_store(daemon, NOW)
            finally:
                await daemon.store.close()

        asyncio.run(run())

    @pytest.mark.parametrize("failing", ["load", "arm", "tallies"])
    def test_a_store_failure_mid_way_fails_the_read_and_leaves_nothing_running(
        self, tmp_path: Path, failing: str
    ) -> None:
        """The second snapshot load, the second arm or (without snapshots) the third tally
        read (the second batch's, read while the first batch is built) fails: the history
        read raises that error, once every call it queued has ended; no task is left behind
        and no months are installed."""
        config = sample_config(tmp_path)
        asyncio.run(store_results(config))

        async def run() -> None:
            if failing != "tallies":  # without snapshots: every batch reads its tallies
                await _saved(config)
            daemon = _daemon(config)
            await daemon.store.open()
            ended: list[str] = []
            seen = {"load": 0, "arm": 0, "tallies": 0}
            store: Any = daemon.store
            name = {
                "load": "load_month_snapshots",
                "arm": "arm_month_snapshots",
                "tallies": "load_tallies",
            }
            originals = {kind: getattr(store, name[kind]) for kind in seen}

            def wrapped(kind: str) -> Any:
                async def call(*a: Any, **k: Any) -> Any:
                    seen[kind] += 1
                    try:
                        if kind == failing and seen[kind] == (3 if kind == "tallies" else 2):
                            await asyncio.sleep(0)
                            raise StoreError("disk I/O error")
                        return await originals[kind](*a, **k)
                    finally:
                        ended.append(kind)

                return call

            for kind in seen:
                setattr(store, name[kind], wrapped(kind))
            try:
                with pytest.raises(StoreError, match="disk I/O error"):
                    await daemon._load_history(daemon.clock())
                # Every call begun has ended; nothing of the read is still running.
                assert len(ended) == sum(seen.values())
                assert asyncio.all_tasks() == {asyncio.current_task()}
                accounting = daemon.accounting
                assert not any(
                    accounting.built(p, month)
                    for p in accounting.inputs.policies
                    for month in (MONTH.previous(), MONTH)
                )
                assert daemon._restoring == 0
            finally:
                await daemon.store.close()

        asyncio.run(run())
