"""Issue 20: the snapshot guard (monitor.store.snapshots) on the SQLite store: a persisted
running month is handed back only while no tally it was judged from changed.

PostgreSQL does not keep snapshots yet (the daemon reads every tally there at start, as
before): the backend test below holds that it does not claim to."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.store import schema
from monitor.store.base import TallyRow, WriteBatch
from monitor.store.snapshots import MonthSnapshot, SnapshotGuard, SnapshotStore
from monitor.store.sqlite import SqliteStore
from tests import pg_cluster

pytestmark = pytest.mark.timeout(30)

START, END, SIZE = 3000, 6000, 300
"""A 'month' of ten 5-minute buckets: [3000, 6000)."""
KEY = ("sla", "2026-12")


def _guard(
    mode: str = "fresh", keep: int | None = None, targets: tuple[str, ...] = ("a", "b")
) -> SnapshotGuard:
    return SnapshotGuard(
        KEY[0],
        KEY[1],
        targets,
        SIZE,
        START,
        END,
        keep_through=keep,
        mode=mode,  # type: ignore[arg-type]
    )


def _snapshot(through: int, inputs: str = "digest") -> MonthSnapshot:
    return MonthSnapshot(KEY[0], KEY[1], SIZE, through, inputs, b"state")


def _row(target: str, start: int, ok: int = 1, vantage: str = "v1", size: int = SIZE) -> TallyRow:
    return TallyRow(vantage, target, start, size, ok, 0)


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """The daemon's store: it arms the guards, so its writes are its own."""
    store = SqliteStore(tmp_path / "s.db", "v1")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def foreign(tmp_path: Path, daemon: SqliteStore) -> AsyncIterator[SqliteStore]:
    """Another writer of the same vantage (``slawatch import``, another process)."""
    store = SqliteStore(tmp_path / "s.db", "v1")
    await store.open()
    yield store
    await store.close()


async def _armed(daemon: SqliteStore, through: int = 4500) -> None:
    assert await daemon.arm_month_snapshots([_guard()]) == set()
    assert await daemon.save_month_snapshots([_snapshot(through)]) == 1


async def _valid(daemon: SqliteStore) -> bool:
    found = await daemon.load_month_snapshots([KEY])
    if KEY in found:
        assert found[KEY] == (_snapshot(found[KEY][0].judged_through), ("a", "b"))
    return KEY in found


class TestGuard:
    async def test_schema_holds_the_guard(self, daemon: SqliteStore) -> None:
        """The migrations to schema 7 (the guard), 8 (the verdict marks, vm26) and 9 (a
        whole month's settled counts, sm32) are applied to a new file."""
        assert schema.SCHEMA_VERSION == 9
        assert (await daemon.schema_version()).version == 9

    async def test_settled_counts_come_back(self, daemon: SqliteStore) -> None:
        """sm32: a snapshot's settled counts are stored and read back with it."""
        await _armed(daemon)
        snapshot = dataclasses.replace(_snapshot(4500), settled="s1 0 0 0 x")
        assert await daemon.save_month_snapshots([snapshot]) == 1
        found = await daemon.load_month_snapshots([KEY])
        assert found[KEY][0] == snapshot

    async def test_saved_snapshot_comes_back_while_unchanged(self, daemon: SqliteStore) -> None:
        """Armed, saved, loaded: the snapshot and the guarded targets come back."""
        await _armed(daemon)
        assert await _valid(daemon)

    async def test_a_snapshot_is_not_saved_without_a_guard(self, daemon: SqliteStore) -> None:
        """Never armed: nothing proves the snapshot, so it is not written."""
        assert await daemon.save_month_snapshots([_snapshot(4500)]) == 0
        assert not await _valid(daemon)

    async def test_own_write_after_judged_through_keeps_it(self, daemon: SqliteStore) -> None:
        """The daemon's flush into buckets after the snapshot (read at start) keeps it."""
        await _armed(daemon)
        await daemon.write_batch(WriteBatch(tallies=[_row("a", 4500), _row("b", 5700)]))
        assert await _valid(daemon)

    @pytest.mark.parametrize("bucket", [START, 4200])
    async def test_own_write_before_judged_through_spoils(
        self, daemon: SqliteStore, bucket: int
    ) -> None:
        """A late write (a spool replay) into a snapshotted bucket spoils it."""
        await _armed(daemon)
        await daemon.write_batch(WriteBatch(tallies=[_row("b", bucket)]))
        assert not await _valid(daemon)

    @pytest.mark.parametrize("bucket", [3300, 4500, 5700])
    async def test_foreign_write_anywhere_in_the_month_spoils(
        self, daemon: SqliteStore, foreign: SqliteStore, bucket: int
    ) -> None:
        """An import into the month, even after judged_through, spoils: the running daemon
        never sees it, so a later snapshot would not hold it either."""
        await _armed(daemon)
        await foreign.write_batch(WriteBatch(tallies=[_row("a", bucket)]))
        assert not await _valid(daemon)
        # Sticky: a later save is refused until the month is built from the store again.
        assert await daemon.save_month_snapshots([_snapshot(5400)]) == 0
        assert not await _valid(daemon)

    async def test_update_spoils(self, daemon: SqliteStore, foreign: SqliteStore) -> None:
        """A row rewritten before judged_through (upsert: the UPDATE trigger) spoils."""
        await daemon.arm_month_snapshots([_guard()])
        await daemon.write_batch(WriteBatch(tallies=[_row("a", 3300)]))
        assert await daemon.save_month_snapshots([_snapshot(4500)]) == 1
        assert await _valid(daemon)
        await daemon.write_batch(WriteBatch(tallies=[_row("a", 3300, ok=2)]))
        assert not await _valid(daemon)

    async def test_delete_spoils(self, daemon: SqliteStore) -> None:
        """Retention (``prune_tallies``) deleting a snapshotted row spoils it."""
        await daemon.arm_month_snapshots([_guard()])
        await daemon.write_batch(WriteBatch(tallies=[_row("a", 3300)]))
        await daemon.save_month_snapshots([_snapshot(4500)])
        assert await daemon.prune_tallies(3300, 3600) == 1
        assert not await _valid(daemon)

    async def test_rows_the_month_does_not_read_do_not_spoil(
        self, daemon: SqliteStore, tmp_path: Path
    ) -> None:
        """Another target, vantage or bucket length, or a bucket outside the month: not read
        by the month, so not a change to it."""
        await _armed(daemon)
        other = SqliteStore(tmp_path / "s.db", "v2")
        await other.open()
        try:
            await other.write_batch(WriteBatch(tallies=[_row("a", 3300, vantage="v2")]))
        finally:
            await other.close()
        await daemon.write_batch(
            WriteBatch(
                tallies=[
                    _row("c", 3300),
                    _row("a", 3000, size=60),
                    _row("a", START - SIZE),
                    _row("a", END),
                ]
            )
        )
        assert await _valid(daemon)

    async def test_arm_keeps_an_unspoiled_snapshot(self, daemon: SqliteStore) -> None:
        """Start-up: the loaded snapshot's judged_through stands if still unspoiled; a
        spoiled one starts over (snapshot deleted, guard from the month's start)."""
        await _armed(daemon)
        assert await daemon.arm_month_snapshots([_guard(keep=4500)]) == {KEY}
        assert await _valid(daemon)
        await daemon.write_batch(WriteBatch(tallies=[_row("a", 3000)]))
        assert await daemon.arm_month_snapshots([_guard(keep=4500)]) == set()
        assert not await _valid(daemon)
        # Freshly armed (the month was read from the store after it): snapshots again.
        assert await daemon.save_month_snapshots([_snapshot(4800)]) == 1
        assert await _valid(daemon)

    async def test_arm_refuses_a_snapshot_over_other_targets(self, daemon: SqliteStore) -> None:
        """A service whose targets changed: the guard covers the new targets from scratch."""
        await _armed(daemon)
        assert await daemon.arm_month_snapshots([_guard(keep=4500, targets=("a",))]) == set()
        assert await daemon.load_month_snapshots([KEY]) == {}

    async def test_ahead_arms_only_an_empty_month(self, daemon: SqliteStore) -> None:
        """A month not begun is guarded only if the store holds none of its tallies yet; one
        armed before is left as it is."""
        assert await daemon.arm_month_snapshots([_guard("ahead")]) == set()
        assert await daemon.save_month_snapshots([_snapshot(3300)]) == 1
        assert await daemon.arm_month_snapshots([_guard("ahead")]) == set()
        assert await _valid(daemon)  # left as it was
        other = SnapshotGuard("sla2", KEY[1], ("a",), SIZE, START, END, mode="ahead")
        await daemon.write_batch(WriteBatch(tallies=[_row("a", 3600)]))
        await daemon.arm_month_snapshots([other])
        assert (
            await daemon.save_month_snapshots([MonthSnapshot("sla2", KEY[1], SIZE, 3300, "d", b"")])
            == 0
        )

    async def test_carry_needs_every_target_guarded(
        self, daemon: SqliteStore, foreign: SqliteStore
    ) -> None:
        """A reload rebuilding the month while running: guarded unspoiled only if every
        target already was (an earlier guard saw every foreign write since)."""
        await daemon.arm_month_snapshots([_guard()])
        assert await daemon.arm_month_snapshots([_guard("carry")]) == set()
        assert await daemon.save_month_snapshots([_snapshot(3600)]) == 1
        assert (
            await daemon.arm_month_snapshots([_guard("carry", targets=("a", "b", "new"))]) == set()
        )
        assert await daemon.save_month_snapshots([_snapshot(3600)]) == 0
        await daemon.arm_month_snapshots([_guard()])
        await foreign.write_batch(WriteBatch(tallies=[_row("b", 5700)]))
        await daemon.arm_month_snapshots([_guard("carry")])
        assert await daemon.save_month_snapshots([_snapshot(3600)]) == 0

    async def test_drop_before_deletes_old_months(self, daemon: SqliteStore) -> None:
        """Months no longer shown leave the guard (it would spoil for nothing)."""
        await _armed(daemon)
        assert await daemon.save_month_snapshots([], drop_before=END) == 0
        assert await daemon.load_month_snapshots([KEY]) == {}
        assert await daemon.save_month_snapshots([_snapshot(4500)]) == 0


class TestBackends:
    @pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
    async def test_which_backends_keep_snapshots(self, backend: str, tmp_path: Path) -> None:
        """SQLite keeps snapshots; PostgreSQL does not (yet): the daemon reads every tally
        there at start, so it must not look like a SnapshotStore."""
        if backend == "sqlite":
            assert isinstance(SqliteStore(tmp_path / "x.db", "v1"), SnapshotStore)
        else:
            assert not isinstance(pg_cluster.store_factory(tmp_path, "v1"), SnapshotStore)
