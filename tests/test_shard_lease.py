"""Membership of a location's members in the PostgreSQL lease table, and the shard keeper over
it (monitor/store/postgres_lease.py, monitor/runtime/shard.py), against the real throw-away
cluster of tests/pg_cluster.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
import pytest

from monitor.config import parse_config_text
from monitor.config.errors import ConfigError
from monitor.runtime.shard import ShardKeeper, record_member_downtime
from monitor.sla.shard import assign
from monitor.store.base import StoreError, WriteBatch
from monitor.store.lease import LeaseHeldError
from monitor.store.postgres import PostgresStore
from monitor.store.postgres_lease import PostgresLeases
from tests import pg_cluster

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def dsn(tmp_path: Path) -> str:
    """A migrated schema of its own on the session cluster."""
    found = pg_cluster.cluster().schema_dsn(pg_cluster.schema_for(tmp_path))
    store = PostgresStore(found, "setup")
    await store.migrate()
    return found


def _leases(dsn: str, member: str, *, location: str = "dublin", lease: float = 3.0, holder=None):
    return PostgresLeases(
        dsn, location=location, member=member, lease_seconds=lease, timeout=2.0, holder=holder
    )


class TestLeaseTable:
    async def test_members_see_each_other_per_location(self, dsn: str) -> None:
        """Each heartbeat returns the live members of its own location only, sorted."""
        a, b = _leases(dsn, "dublin-b"), _leases(dsn, "dublin-a")
        other = _leases(dsn, "frankfurt-1", location="frankfurt")
        try:
            await a.heartbeat()
            await other.heartbeat()
            seen = await b.heartbeat()
            assert seen.members == ("dublin-a", "dublin-b")
            assert (await other.heartbeat()).members == ("frankfurt-1",)
        finally:
            for leases in (a, b, other):
                await leases.close()

    async def test_same_name_from_another_process_is_refused(self, dsn: str) -> None:
        """A live lease under this name held by another process: one clear line."""
        first, second = _leases(dsn, "dublin-1"), _leases(dsn, "dublin-1")
        try:
            await first.heartbeat()
            with pytest.raises(LeaseHeldError) as caught:
                await second.heartbeat()
            message = str(caught.value)
            assert "monitor.name 'dublin-1': another daemon holds a live lease" in message
            assert first.holder in message
            assert "\n" not in message
            await first.heartbeat()  # the holder itself goes on
        finally:
            await first.close()
            await second.close()

    async def test_an_expired_lease_is_taken_over(self, dsn: str) -> None:
        """Once a lease expired by the database's clock, a new process with that name joins."""
        dead, fresh = _leases(dsn, "dublin-1"), _leases(dsn, "dublin-1")
        try:
            await dead.heartbeat()
            await dead.close()
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("UPDATE shard_leases SET expires_at = now() - interval '1 second'")
            assert (await fresh.heartbeat()).members == ("dublin-1",)
            with pytest.raises(LeaseHeldError):
                await dead.heartbeat()  # the old holder came back: refused, never two holders
        finally:
            await fresh.close()
            await dead.close()

    async def test_expired_members_are_not_live(self, dsn: str) -> None:
        """A member that stopped heartbeating drops out once its lease expires (3 s)."""
        a, b = _leases(dsn, "a"), _leases(dsn, "b")
        try:
            await a.heartbeat()
            assert (await b.heartbeat()).members == ("a", "b")
            await asyncio.sleep(3.3)
            assert (await b.heartbeat()).members == ("b",)
        finally:
            await a.close()
            await b.close()

    async def test_release_removes_the_member_at_once(self, dsn: str) -> None:
        """A clean stop drops the lease: the others see it gone at their next heartbeat."""
        a, b = _leases(dsn, "a", lease=60), _leases(dsn, "b", lease=60)
        try:
            await a.heartbeat()
            assert (await b.heartbeat()).members == ("a", "b")
            left = await a.release()
            assert left is not None
            assert left.members == ("b",)
            assert set(left.since) == {"b"}
            assert (await b.heartbeat()).members == ("b",)
        finally:
            await a.close()
            await b.close()

    async def test_unreachable_database_fails_in_one_line(self, dsn: str) -> None:
        """No server: StoreError naming the server, within the timeout."""
        leases = _leases("postgresql://slawatch@127.0.0.1:1/none", "a")
        with pytest.raises(StoreError, match=r"^postgresql://127.0.0.1:1/none: shard lease: "):
            await leases.heartbeat()


class TestKeeper:
    async def test_share_follows_the_members(self, dsn: str) -> None:
        """Two keepers split the targets by rendezvous; when one leaves, the other owns all."""
        targets = [f"t{i}" for i in range(40)]
        changes: list[str] = []
        a = ShardKeeper(
            _leases(dsn, "a"),
            location="dublin",
            member="a",
            lease_seconds=3.0,
            on_change=lambda: changes.append("a"),
        )
        b = ShardKeeper(_leases(dsn, "b"), location="dublin", member="b", lease_seconds=3.0)
        await a.join()
        await b.join()
        assert await a.heartbeat_once()
        assert a.members == ("a", "b")
        assert changes == ["a"]
        split = assign(targets, ["a", "b"])
        assert a.select(targets, frozenset()) == split["a"]
        assert b.select(targets, frozenset({"t0"})) == split["b"] | {"t0"}  # canaries kept
        await b.leave()
        assert await a.heartbeat_once()
        assert a.select(targets, frozenset()) == frozenset(targets)
        assert a.targets_owned == len(targets)
        await a.leave()

    async def test_database_lost_keeps_the_last_share(self, dsn: str) -> None:
        """Heartbeats failing: the keeper keeps its members and share, never all or nothing."""
        targets = [f"t{i}" for i in range(40)]
        a = ShardKeeper(_leases(dsn, "a"), location="dublin", member="a", lease_seconds=3.0)
        b = ShardKeeper(_leases(dsn, "b"), location="dublin", member="b", lease_seconds=3.0)
        await a.join()
        await b.join()
        assert await a.heartbeat_once()
        before = a.select(targets, frozenset())
        assert a.leases is not None
        a.leases = _leases("postgresql://slawatch@127.0.0.1:1/none", "a")
        assert not await a.heartbeat_once()
        assert not a.up
        assert a.members == ("a", "b")
        assert a.select(targets, frozenset()) == before
        await a.leave()
        await b.leave()

    async def test_leave_waits_for_a_heartbeat_in_flight(self, dsn: str) -> None:
        """A stop while this member's heartbeat is still in flight (its transaction held here
        on a row lock, as a loaded server holds it) releases after that heartbeat, not inside
        it on the same connection: the leave reads the other member live, so the stop
        records no monitor_stopped gap, and this member's lease is gone."""

        def keeper(member: str) -> ShardKeeper:
            # A long lease: the heartbeat held below must not time out (period = lease / 3).
            leases = PostgresLeases(
                dsn, location="dublin", member=member, lease_seconds=60.0, timeout=20.0
            )
            return ShardKeeper(leases, location="dublin", member=member, lease_seconds=60.0)

        a, b = keeper("a"), keeper("b")
        await a.join()
        await b.join()
        async with await psycopg.AsyncConnection.connect(dsn) as blocker:
            await blocker.execute("SELECT 1 FROM shard_leases WHERE member = 'a' FOR UPDATE")
            beat = asyncio.create_task(a.heartbeat_once())
            await _blocked_by(blocker)  # a's heartbeat is inside its transaction, waiting
            leaving = asyncio.create_task(a.leave())
            for _ in range(5):  # event-loop turns, no wall time: leave reaches its wait
                await asyncio.sleep(0)
            assert not leaving.done()
            await blocker.commit()
            await leaving
            assert a.covering(time.time()) == ["b"]  # read when leaving: b covers a's share
            assert await beat
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT member FROM shard_leases ORDER BY member").fetchall()
        assert rows == [("b",)]
        await b.leave()


async def _blocked_by(blocker: psycopg.AsyncConnection) -> None:
    """Until a statement of another session waits for a lock ``blocker`` holds (10 s at most)."""
    pid = blocker.info.backend_pid
    async with asyncio.timeout(10):
        while True:
            async with await psycopg.AsyncConnection.connect(
                blocker.info.dsn, autocommit=True
            ) as probe:
                cur = await probe.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    (pid,),
                )
                row = await cur.fetchone()
            if row is not None and row[0] > 0:
                return
            await asyncio.sleep(0.02)


class TestDowntime:
    async def test_covered_downtime_is_not_a_gap(self, dsn: str) -> None:
        """A member returning while another held its lease since before the member's last
        heartbeat records no gap (the other probed its targets); alone, it records one."""
        store = PostgresStore(dsn, "a", location="dublin")
        await store.open()
        try:
            b = ShardKeeper(_leases(dsn, "b"), location="dublin", member="b", lease_seconds=3.0)
            await b.join()
            await store.write_batch(WriteBatch(heartbeat=time.time()))
            await asyncio.sleep(0.2)
            a = ShardKeeper(_leases(dsn, "a"), location="dublin", member="a", lease_seconds=3.0)
            await a.join()
            assert a.covering(time.time()) == ["b"]
            assert await record_member_downtime(store, a, time.time()) is None
            assert await store.load_gaps(0, 2**40) == []
            await b.leave()
            await a.leave()
            assert a.covering(time.time()) == []  # read when leaving: b had left
            alone = ShardKeeper(_leases(dsn, "a"), location="dublin", member="a", lease_seconds=3.0)
            await alone.join()
            gap = await record_member_downtime(store, alone, time.time() + 1)
            assert gap is not None
            assert [g.reason for g in await store.load_gaps(0, 2**40)] == ["monitor_not_running"]
            await alone.leave()
        finally:
            await store.close()


class TestConfig:
    def test_sharding_needs_postgresql(self) -> None:
        """monitor.sharding with the default sqlite store: one line at the key."""
        text = "monitor:\n  name: a\n  sharding: {lease: 6s}\ntargets: []\n"
        with pytest.raises(ConfigError) as caught:
            parse_config_text(text, "c.yaml")
        assert "c.yaml:3: monitor.sharding: sharding needs monitor.store.backend: postgresql" in (
            str(caught.value)
        )

    def test_lease_bounds(self) -> None:
        """A lease under 3 s is refused (the heartbeat runs every lease / 3)."""
        text = (
            "monitor:\n  name: a\n  store: {backend: postgresql, dsn: {env: X}}\n"
            "  sharding: {lease: 2s}\ntargets: []\n"
        )
        with pytest.raises(ConfigError, match=r"monitor\.sharding\.lease: must be at least 3s"):
            parse_config_text(text, "c.yaml")

    def test_off_by_default(self) -> None:
        """No sharding unless configured."""
        config = parse_config_text(
            "monitor:\n  name: a\ntargets:\n"
            "  - {name: t, kind: tcp, tcp: {host: 127.0.0.1, port: 9}}\n",
            "c.yaml",
        )
        assert config.monitor.sharding is None

    def test_a_member_judges_its_slas_by_the_whole_location(self) -> None:
        """Under sharding an SLA without ``locations`` is judged from the location's tallies
        summed over its members ({quorum: 1, of: [location]}), not from this member's share;
        an explicit ``locations`` is kept; without sharding nothing changes."""
        from monitor.sla.policy import LocationRule

        def config(sharding: str, locations: str = "") -> list[LocationRule | None]:
            text = (
                "monitor:\n  name: a\n  location: dublin\n"
                "  store: {backend: postgresql, dsn: {env: X}}\n"
                f"{sharding}targets:\n"
                "  - {name: t, kind: tcp, tcp: {host: 127.0.0.1, port: 9}}\n"
                "services:\n  - {name: s, targets: [t]}\n"
                "slas:\n"
                "  - {name: one, service: s, objective: 99.9, monthly_fee: 100, currency: USD}\n"
                "  - {name: two, service: s, objective: 99.9, monthly_fee: 100, currency: USD"
                f"{locations}}}\n"
            )
            return [p.locations for p in parse_config_text(text, "c.yaml").sla_policies()]

        quorum = ", locations: {down_when: quorum, quorum: 2, of: [dublin, paris, rome]}"
        assert config("  sharding: {lease: 6s}\n", quorum) == [
            LocationRule(quorum=1, of=("dublin",)),
            LocationRule(quorum=2, of=("dublin", "paris", "rome")),
        ]
        assert config("") == [None, None]

    def test_reload_may_not_change_the_lease(self) -> None:
        """Name, location or lease changing under sharding needs a restart; other keys do not."""
        from monitor.runtime.shard import shard_settings_changed

        def config(name: str, lease: str, interval: str = "30s"):
            return parse_config_text(
                f"monitor:\n  name: {name}\n  store: {{backend: postgresql, dsn: {{env: X}}}}\n"
                f"  sharding: {{lease: {lease}}}\ntargets:\n"
                f"  - {{name: t, kind: tcp, interval: {interval}, "
                "tcp: {host: 127.0.0.1, port: 9}}\n",
                "c.yaml",
            )

        base = config("a", "6s")
        assert not shard_settings_changed(base, config("a", "6s", interval="10s"))
        assert shard_settings_changed(base, config("b", "6s"))
        assert shard_settings_changed(base, config("a", "9s"))
