"""The daemon's reading of every location (monitor.runtime.locations.LocationFeed) and the
accountant's lock (monitor.runtime.accountant, PostgresStore.session_lock), at fixed instants
on real stores (issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from monitor.runtime.accountant import Accountant
from monitor.runtime.locations import LocationFeed
from monitor.sla.policy import LocationRule, ServiceDef, SlaPolicy, Tally
from monitor.store.base import TallyRow, WriteBatch
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SqliteStore
from tests import pg_cluster
from tests.strategies import STANDARD_CREDIT

pytestmark = pytest.mark.timeout(60)

RULE = LocationRule(quorum=2, of=("dublin", "paris"))
POLICY = SlaPolicy(
    "vendor-web", "web", Decimal("99.9"), STANDARD_CREDIT, bucket_seconds=300, locations=RULE
)
SERVICES = {"web": ServiceDef("web", ("site",))}
NOW = datetime(2026, 11, 15, 12, 0, 1, tzinfo=UTC).timestamp()
BUCKET = int(NOW) // 300 * 300


def _row(
    member: str, location: str, target: str, bucket: int, ok: int, failed: int = 0
) -> TallyRow:
    return TallyRow(member, target, bucket, 300, ok, failed, location=location)


class TestLocationFeed:
    async def test_reads_every_location_and_reports_what_moved(self, tmp_path: Path) -> None:
        """The first read takes the two months of both locations (members summed, canaries
        included, other targets and locations left out); the next returns only the buckets
        that changed, within the recent window."""
        store = SqliteStore(tmp_path / "s.db", "d1", location="dublin")
        await store.open()
        try:
            old = BUCKET - 20 * 86400  # earlier this month: read in full only
            await store.write_batch(
                WriteBatch(
                    tallies=[
                        _row("d1", "dublin", "site", BUCKET - 300, 5),
                        _row("d2", "dublin", "site", BUCKET - 300, 2, 1),
                        _row("p1", "paris", "site", BUCKET - 300, 4),
                        _row("p1", "paris", "canary", BUCKET - 300, 0, 3),
                        _row("p1", "paris", "other", BUCKET - 300, 9),
                        _row("o1", "oslo", "site", BUCKET - 300, 9),
                        _row("d1", "dublin", "site", old, 7),
                    ]
                )
            )
            feed = LocationFeed()
            feed.configure([POLICY], SERVICES, ["canary"])
            moved = await feed.refresh(store, NOW, settle=2.0)
            assert sorted(set(moved)) == [("vendor-web", old), ("vendor-web", BUCKET - 300)]
            located = feed.tallies_for(POLICY)
            assert located.by_location["dublin"]["site"][BUCKET - 300] == Tally(ok=7, failed=1)
            assert located.by_location["paris"]["canary"][BUCKET - 300].failed == 3
            assert "other" not in located.by_location["paris"]
            assert "oslo" not in located.by_location
            assert located["site"][BUCKET - 300].ok == 11  # the voting locations' sum
            assert await feed.refresh(store, NOW + 1, settle=2.0) == []
            await store.write_batch(
                WriteBatch(
                    tallies=[
                        _row("p1", "paris", "site", BUCKET, 1, 1),
                        _row("d1", "dublin", "site", old, 8),  # older than the window
                    ]
                )
            )
            assert await feed.refresh(store, NOW + 2, settle=2.0) == [("vendor-web", BUCKET)]
            gap = await store.record_gap(BUCKET - 10.0, BUCKET + 10.0, "monitor_not_running")
            moved = await feed.refresh(store, NOW + 3, settle=2.0)
            assert set(moved) == {("vendor-web", BUCKET - 300), ("vendor-web", BUCKET)}
            assert feed.tallies_for(POLICY).gaps["dublin"] == [(gap.start, gap.end)]
        finally:
            await store.close()

    async def test_slas_of_one_group_are_read_together(self, tmp_path: Path) -> None:
        """Two SLAs listing the same locations at one bucket length share one read; a change
        of a target re-judges only the SLA reading it, a canary's change both."""
        one = LocationRule(1, RULE.of)
        other = SlaPolicy("vendor-api", "api", Decimal("99.9"), STANDARD_CREDIT, locations=one)
        services = {**SERVICES, "api": ServiceDef("api", ("api",))}
        store = SqliteStore(tmp_path / "s.db", "d1", location="dublin")
        await store.open()
        try:
            feed = LocationFeed()
            feed.configure([POLICY, other], services, ["canary"])
            assert await feed.refresh(store, NOW, settle=2.0) == []
            await store.write_batch(
                WriteBatch(
                    tallies=[
                        _row("d1", "dublin", "api", BUCKET, 3),
                        _row("p1", "paris", "canary", BUCKET, 1),
                    ]
                )
            )
            moved = await feed.refresh(store, NOW + 1, settle=2.0)
            assert sorted(moved) == [
                ("vendor-api", BUCKET),
                ("vendor-api", BUCKET),
                ("vendor-web", BUCKET),
            ]
            assert feed.tallies_for(other)["api"][BUCKET].ok == 3
            assert feed.tallies_for(other).rule == one
        finally:
            await store.close()

    def test_sla_without_locations_is_not_followed(self) -> None:
        """Only SLAs with ``locations`` are read; asking for another is refused."""
        feed = LocationFeed()
        plain = SlaPolicy("plain", "web", Decimal("99.9"), STANDARD_CREDIT)
        feed.configure([plain], SERVICES, [])
        assert not feed.active
        with pytest.raises(ValueError, match="sets no locations"):
            feed.tallies_for(plain)


class TestAccountant:
    async def test_sqlite_daemon_is_always_the_accountant(self, tmp_path: Path) -> None:
        """One daemon on its own file: always the accountant."""
        store = SqliteStore(tmp_path / "s.db", "d1")
        accountant = Accountant(store)
        assert accountant.holding
        assert await accountant.refresh()

    async def test_one_holder_and_takeover_when_its_session_ends(self, tmp_path: Path) -> None:
        """Two daemons on one schema: one holds the lock, the other not, whatever the order
        of retries; when the holder's session is terminated (as when its process dies), the
        other takes over at its next try; a released lock is free at once."""
        dsn = pg_cluster.cluster().schema_dsn(pg_cluster.schema_for(tmp_path))
        first, second = PostgresStore(dsn, "a"), PostgresStore(dsn, "b")
        a, b = Accountant(first), Accountant(second)
        try:
            assert not a.holding
            assert await a.refresh()
            assert not await b.refresh()
            assert await a.refresh()  # re-tried while held: still held, still one level
            assert not await b.refresh()
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute(
                    # Waits (up to 5 s) until the backend has exited and freed its locks.
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                )
            assert await b.refresh()
            assert not await a.refresh()
            await b.release()
            assert await a.refresh()
        finally:
            await a.release()
            await b.release()
