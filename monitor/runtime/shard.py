"""Sharding inside a location: which of the location's targets this member probes (issue 14).

``ShardKeeper`` heartbeats this member's lease every ``lease / 3`` seconds, reads the live
members of its location from the same transaction, and computes its share with rendezvous
hashing (``monitor.sla.shard``). When the share changes it calls ``on_change``; the daemon then
re-applies its schedule, and the scheduler starts and stops only the targets that moved (a
target that stays keeps its grid and its planned run).

Why every ``lease / 3``: a member's lease outlives two missed heartbeats, so one slow
transaction never makes the others think it died; and a dead member's lease is seen expired
by the others at most ``lease / 3`` after it expires. A dead member's targets are therefore
probed again by the others within ``lease + lease / 3 + interval`` of its last heartbeat.

When the database cannot be reached the keeper keeps the last share and logs it once: it
never falls back to probing nothing (the location would go unmeasured) nor everything (every
member would probe every target). The other members, also without the database, keep theirs,
so the location's targets stay covered exactly once while the assignment cannot change.

Canaries are not sharded: every member probes every canary, because a canary excuses its own
member's network trouble (issue 12), which another member's canary cannot see.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import structlog

from monitor.config import Config
from monitor.sla.shard import owned_by
from monitor.store.base import (
    Gap,
    Store,
    StoreError,
    StoreOpenError,
    WriteBatch,
    record_downtime,
)
from monitor.store.lease import LeaseHeldError, LeaseTable, Membership
from probes.fields import SecretUnavailable

log = structlog.get_logger(__name__)


class ShardKeeper:
    """This member's share of its location's targets, kept from the lease table."""

    def __init__(
        self,
        leases: LeaseTable,
        *,
        location: str,
        member: str,
        lease_seconds: float,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.leases = leases
        self.location = location
        self.member = member
        self.lease_seconds = lease_seconds
        self.period = lease_seconds / 3
        self.on_change = on_change
        self.members: tuple[str, ...] = (member,)
        """The live members at the last successful heartbeat (this member always among them)."""
        self.up = False
        """True while heartbeats reach the database."""
        self.targets_owned = 0
        self.heartbeat_failures = 0
        self.since: dict[str, float] = {}
        """Member -> start of its current lease, at the last successful heartbeat."""
        self._unreachable_logged = False
        self._lease_lock = asyncio.Lock()
        """One lease operation at a time: the lease table has one connection, and a stop
        comes while the heartbeat loop still runs. A heartbeat in flight when ``leave``
        began had both transactions interleave on that connection; both failed, the leave
        read no member live, and the stop recorded a monitor_stopped gap while the others
        were already probing this member's share."""

    def select(self, names: Sequence[str], canaries: frozenset[str]) -> frozenset[str]:
        """Of ``names`` (the configured probe targets), those this member probes: its
        rendezvous share over the live members, and every canary."""
        shared = [name for name in names if name not in canaries]
        mine = owned_by(self.member, shared, self.members)
        self.targets_owned = len(mine)
        return mine | (canaries & set(names))

    async def join(self) -> Membership:
        """The first heartbeat, at start. Raises ``LeaseHeldError`` (another live daemon with
        this name: refuse to start) or ``StoreError`` (the database cannot be reached)."""
        membership = await self._beat()
        log.info(
            "shard_joined",
            location=self.location,
            member=self.member,
            members=list(self.members),
            lease_seconds=self.lease_seconds,
        )
        return membership

    async def _beat(self) -> Membership:
        async with self._lease_lock, asyncio.timeout(self.period):
            membership = await self.leases.heartbeat()
        members = tuple(sorted(set(membership.members) | {self.member}))
        changed = members != self.members
        self.members = members
        self.since = dict(membership.since)
        self.up = True
        if self._unreachable_logged:
            self._unreachable_logged = False
            log.info("shard_membership_back", location=self.location, members=list(members))
        if changed:
            log.info("shard_members_changed", location=self.location, members=list(members))
            if self.on_change is not None:
                self.on_change()
        return membership

    async def heartbeat_once(self) -> bool:
        """One heartbeat; on failure keep the last share. True when it reached the database."""
        try:
            await self._beat()
        except LeaseHeldError as exc:
            # Our lease expired while we were cut off and a daemon with our name took it: two
            # daemons now share one name. Keep probing our share (stopping would leave it
            # unmeasured if the other one goes) and say so loudly at every heartbeat.
            self.up = False
            self.heartbeat_failures += 1
            log.error("shard_lease_taken", location=self.location, error=str(exc))
            return False
        except (StoreError, TimeoutError, OSError) as exc:
            self.up = False
            self.heartbeat_failures += 1
            if not self._unreachable_logged:
                self._unreachable_logged = True
                log.warning(
                    "shard_membership_unreachable",
                    location=self.location,
                    error=str(exc) or type(exc).__name__,
                    keeping_members=list(self.members),
                    targets_owned=self.targets_owned,
                )
            return False
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Heartbeat every ``lease / 3`` until ``stop`` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.period)
            if stop.is_set():
                break
            try:
                await self.heartbeat_once()
            except Exception:  # a bug must not end the heartbeats: the lease would expire
                self.up = False
                self.heartbeat_failures += 1
                log.exception("shard_heartbeat_failed", location=self.location)

    def covering(self, since: float) -> list[str]:
        """The other members that have held their lease without a break since ``since``
        (epoch seconds), as of the last heartbeat: while this member was down or stopping they
        probed its targets, so its downtime is not the location's."""
        return sorted(m for m, began in self.since.items() if m != self.member and began <= since)

    async def leave(self) -> None:
        """At a clean stop: give up the lease so the others take the share at once."""
        left: Membership | None = None
        # After a heartbeat in flight (bounded by its own period), never inside it.
        async with self._lease_lock:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.period):
                    left = await self.leases.release()
            # Who covers this member's targets from now on (``covering``, for the stop's
            # gap): read when leaving; unknown (nobody) when the database did not answer.
            self.since = {} if left is None else dict(left.since)
            await self.leases.close()
        if left is None:
            log.warning("shard_release_unanswered", location=self.location, member=self.member)
        log.info("shard_left", location=self.location, member=self.member)


def build_keeper(
    dsn: str,
    *,
    location: str,
    member: str,
    lease_seconds: float,
    on_change: Callable[[], None] | None = None,
) -> ShardKeeper:
    """A keeper over the PostgreSQL lease table (the driver is imported here, only when
    sharding is configured, which requires the postgresql store)."""
    from monitor.store.postgres_lease import PostgresLeases

    leases = PostgresLeases(
        dsn,
        location=location,
        member=member,
        lease_seconds=lease_seconds,
        timeout=lease_seconds / 3,
    )
    return ShardKeeper(
        leases,
        location=location,
        member=member,
        lease_seconds=lease_seconds,
        on_change=on_change,
    )


def location_of(config: Config) -> str:
    """The location this member belongs to: ``monitor.location`` (default ``monitor.name``)."""
    return config.monitor.location_name


def shard_settings_changed(old: Config, new: Config) -> bool:
    """True when a reload would change what this member's lease names (its name, location or
    sharding settings): the keeper holds the lease it started with, so that needs a restart."""
    if old.monitor.sharding is None and new.monitor.sharding is None:
        return False
    return (old.monitor.name, location_of(old), old.monitor.sharding) != (
        new.monitor.name,
        location_of(new),
        new.monitor.sharding,
    )


async def start_shard(config: Config, on_change: Callable[[], None]) -> ShardKeeper:
    """Join the location at daemon start: the first heartbeat must succeed. Raises
    ``StoreOpenError`` with one line (another live daemon with this name, or no database)."""
    sharding = config.monitor.sharding
    store = config.monitor.store
    assert sharding is not None
    assert store.dsn is not None
    try:
        dsn = store.dsn.read()
    except SecretUnavailable as exc:
        raise StoreOpenError(f"monitor.store.dsn: {exc}") from exc
    keeper = build_keeper(
        dsn,
        location=location_of(config),
        member=config.monitor.name,
        lease_seconds=sharding.lease,
        on_change=on_change,
    )
    try:
        await keeper.join()
    except (StoreError, TimeoutError, OSError) as exc:
        await keeper.leases.close()
        if isinstance(exc, LeaseHeldError):
            raise StoreOpenError(str(exc)) from exc
        raise StoreOpenError(
            f"{keeper.leases.where}: cannot join location {keeper.location!r} "
            f"as {keeper.member!r}: {exc or type(exc).__name__}"
        ) from exc
    return keeper


async def record_member_downtime(store: Store, keeper: ShardKeeper, now: float) -> Gap | None:
    """At start-up of a member: its downtime ``[last heartbeat, now)`` is a gap of the
    location (``store.base.record_downtime``) unless another member of the location held its
    lease without a break since before that heartbeat. Then that member probed this one's
    targets (after the hand-over window): the location was monitored, and a gap would turn
    buckets the others measured into unknown ones. The heartbeat is written either way."""
    last = await store.last_heartbeat()
    if last is not None and last < now:
        covering = keeper.covering(last)
        if covering:
            await store.write_batch(WriteBatch(heartbeat=now))
            log.info(
                "downtime_covered_by_members",
                location=keeper.location,
                start=last,
                end=now,
                members=covering,
            )
            return None
    return await record_downtime(store, now)
