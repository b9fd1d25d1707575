"""The contract every ``Store`` backend must pass.

Backends are listed in ``BACKENDS`` as factories ``(directory, vantage) -> Store``; two calls
with the same directory and different vantages must reach the SAME database (that is how
several vantage points share one). A PostgreSQL backend plugs in by adding its factory.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.sla.policy import BucketState, ExclusionKind, ExclusionWindow, Tally
from monitor.store.base import (
    EvidenceRow,
    ExclusionExistsError,
    FaultConflictError,
    Gap,
    ServiceBucketRow,
    Store,
    StoreClosedError,
    StoreError,
    TallyRow,
    WriteBatch,
    add_tally,
    record_downtime,
)
from monitor.store.sqlite import SqliteStore
from probes.result import Outcome
from tests import pg_cluster
from tests.strategies import store_located_tally_rows, store_tally_rows

pytestmark = pytest.mark.timeout(30)


class StoreFactory(Protocol):
    """``(directory, vantage, location=None) -> Store``; one directory is one database."""

    def __call__(self, directory: Path, vantage: str, location: str | None = None) -> Store: ...


def _sqlite(directory: Path, vantage: str, location: str | None = None) -> Store:
    return SqliteStore(directory / "slawatch.db", vantage, location=location)


BACKENDS: dict[str, StoreFactory] = {
    "sqlite": _sqlite,
    "postgresql": pg_cluster.store_factory,
}


@pytest.fixture(params=sorted(BACKENDS))
def factory(request: pytest.FixtureRequest) -> StoreFactory:
    return BACKENDS[request.param]


@pytest.fixture
async def store(factory: StoreFactory, tmp_path: Path) -> AsyncIterator[Store]:
    opened = factory(tmp_path, "v1")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def other_vantage(
    factory: StoreFactory, tmp_path: Path, store: Store
) -> AsyncIterator[Store]:
    opened = factory(tmp_path, "v2")
    await opened.open()
    yield opened
    await opened.close()


def tally(target: str, start: int, ok: int, failed: int = 0, **reasons: int) -> TallyRow:
    return TallyRow("v1", target, start, 300, ok, failed, reasons)


def evidence(target: str, ts: float, reason: str = "timeout", vantage: str = "v1") -> EvidenceRow:
    return EvidenceRow(vantage, ts, target, Outcome.TIMEOUT, reason, 10.0, {"status_code": 503})


def window(
    id_: str, day: int, kind: ExclusionKind = ExclusionKind.FORCE_MAJEURE
) -> ExclusionWindow:
    start = datetime(2026, 11, day, 2, 0, tzinfo=UTC)
    return ExclusionWindow(id_, start, start + timedelta(hours=2), kind, reason="storm")


class TestWriteBatch:
    async def test_tallies_round_trip_with_reasons(self, store: Store) -> None:
        """A stored tally comes back with its counts and reason counts."""
        await store.write_batch(WriteBatch(tallies=[tally("web", 600, 8, 2, timeout=2)]))
        loaded = await store.load_tallies(0, 3600)
        assert loaded == {"web": {600: Tally(ok=8, failed=2, reasons={"timeout": 2})}}

    async def test_upsert_replaces_with_absolute_counts(self, store: Store) -> None:
        """A second upsert of the same bucket replaces the counts instead of adding to them."""
        await store.write_batch(WriteBatch(tallies=[tally("web", 600, 5, 1, timeout=1)]))
        await store.write_batch(WriteBatch(tallies=[tally("web", 600, 9, 1, refused=1)]))
        loaded = await store.load_tallies(0, 3600)
        assert loaded["web"][600] == Tally(ok=9, failed=1, reasons={"refused": 1})

    async def test_evidence_and_verdicts_round_trip(self, store: Store) -> None:
        """Evidence keeps every field and details; verdicts keep state and exclusion kind."""
        verdicts = [
            ServiceBucketRow("v1", "ujet", "voice", 0, BucketState.AVAILABLE),
            ServiceBucketRow(
                "v1", "ujet", "voice", 300, BucketState.EXCLUDED, ExclusionKind.THIRD_PARTY
            ),
        ]
        await store.write_batch(
            WriteBatch(evidence=[evidence("sip", 12.5)], service_buckets=verdicts)
        )
        [row] = await store.load_evidence(0, 100)
        assert dataclasses.replace(row, id=None) == evidence("sip", 12.5)
        assert await store.load_service_buckets("ujet", 0, 600) == verdicts

    async def test_verdict_upsert_replaces(self, store: Store) -> None:
        """A bucket's verdict is rewritten when an exclusion is added after the fact."""
        first = ServiceBucketRow("v1", "ujet", "voice", 300, BucketState.UNAVAILABLE)
        later = ServiceBucketRow(
            "v1", "ujet", "voice", 300, BucketState.EXCLUDED, ExclusionKind.FORCE_MAJEURE
        )
        await store.write_batch(WriteBatch(service_buckets=[first]))
        await store.write_batch(WriteBatch(service_buckets=[later]))
        assert await store.load_service_buckets("ujet", 0, 600) == [later]

    async def test_batch_is_all_or_nothing(self, store: Store) -> None:
        """A row the database refuses rolls back the tallies and evidence of the same batch."""
        broken = ServiceBucketRow("v1", "ujet", "voice", 0, BucketState.AVAILABLE)
        # Frozen rows validate on construction; force a state the schema's CHECK rejects.
        object.__setattr__(broken, "kind", ExclusionKind.SUSPENSION)
        batch = WriteBatch(
            tallies=[tally("web", 0, 1)], evidence=[evidence("web", 1.0)], service_buckets=[broken]
        )
        with pytest.raises(StoreError, match="nothing written"):
            await store.write_batch(batch)
        assert await store.load_tallies(0, 3600) == {}
        assert await store.load_evidence(0, 3600) == []

    async def test_heartbeat_is_the_latest_written(self, store: Store) -> None:
        """The last heartbeat written is kept, even an earlier time (a clock stepped back), so
        the next start-up's gap starts where this run really stopped."""
        assert await store.last_heartbeat() is None
        await store.write_batch(WriteBatch(heartbeat=200.0))
        await store.write_batch(WriteBatch(heartbeat=150.0))
        assert await store.last_heartbeat() == 150.0

    async def test_concurrent_batches_all_land(self, store: Store) -> None:
        """Many write_batch calls in flight at once each commit completely."""
        batches = [
            WriteBatch(tallies=[tally(f"t{i}", 300 * j, i + j) for j in range(5)])
            for i in range(20)
        ]
        await asyncio.gather(*(store.write_batch(b) for b in batches))
        loaded = await store.load_tallies(0, 3600)
        assert len(loaded) == 20
        assert loaded["t7"][1200] == Tally(ok=11)


class TestLoadTallies:
    async def test_range_is_half_open_and_filters_targets(self, store: Store) -> None:
        """Buckets starting at ``end`` are left out; ``targets`` restricts, ``[]`` returns none."""
        rows = [tally(t, s, 1) for t in ("a", "b") for s in (0, 300, 600)]
        await store.write_batch(WriteBatch(tallies=rows))
        assert set((await store.load_tallies(300, 600))["a"]) == {300}
        assert set(await store.load_tallies(0, 900, targets=["b"])) == {"b"}
        assert await store.load_tallies(0, 900, targets=[]) == {}

    async def test_vantages_are_kept_apart(self, store: Store, other_vantage: Store) -> None:
        """Each vantage point reads its own counts by default and can read another's by name."""
        await store.write_batch(WriteBatch(tallies=[tally("web", 0, 1)], heartbeat=10.0))
        await other_vantage.write_batch(
            WriteBatch(tallies=[TallyRow("v2", "web", 0, 300, 0, 1, {"refused": 1})])
        )
        assert (await store.load_tallies(0, 300))["web"][0].ok == 1
        assert (await other_vantage.load_tallies(0, 300))["web"][0].failed == 1
        assert (await store.load_tallies(0, 300, vantage="v2"))["web"][0].failed == 1
        assert {r.vantage for r in await store.load_tally_rows(0, 300)} == {"v1", "v2"}
        assert await store.vantages() == ["v1", "v2"]
        assert await other_vantage.last_heartbeat() is None

    async def test_rows_across_vantages_filtered_by_target(
        self, store: Store, other_vantage: Store
    ) -> None:
        """load_tally_rows returns every vantage's rows for the named targets, in key order."""
        await store.write_batch(WriteBatch(tallies=[tally("web", 0, 1), tally("sip", 0, 1)]))
        await other_vantage.write_batch(
            WriteBatch(tallies=[TallyRow("v2", "web", 300, 300, 2, 0)], heartbeat=1.0)
        )
        rows = await store.load_tally_rows(0, 600, targets=["web"])
        assert [(r.vantage, r.target, r.bucket_start) for r in rows] == [
            ("v1", "web", 0),
            ("v2", "web", 300),
        ]
        assert await store.load_tally_rows(0, 600, targets=[]) == []

    async def test_evidence_belongs_to_its_vantage(
        self, store: Store, other_vantage: Store
    ) -> None:
        """Each vantage point reads its own evidence unless it names another."""
        await store.write_batch(WriteBatch(evidence=[evidence("web", 1.0)]))
        await other_vantage.write_batch(WriteBatch(evidence=[evidence("web", 2.0, vantage="v2")]))
        assert [r.ts for r in await store.load_evidence(0, 10)] == [1.0]
        assert [r.ts for r in await store.load_evidence(0, 10, vantage="v2")] == [2.0]

    async def test_bucket_lengths_do_not_collide(self, store: Store) -> None:
        """A 60 s and a 300 s bucket at the same start are separate rows; asking for both at
        once without naming a length is an error rather than a silent pick."""
        short = TallyRow("v1", "web", 600, 60, 2, 0)
        await store.write_batch(WriteBatch(tallies=[tally("web", 600, 10), short]))
        assert (await store.load_tallies(0, 900, bucket_seconds=60))["web"][600].ok == 2
        assert (await store.load_tallies(0, 900, bucket_seconds=300))["web"][600].ok == 10
        with pytest.raises(StoreError, match=r"web at 600 .* pass bucket_seconds"):
            await store.load_tallies(0, 900)

    async def test_equal_rows_read_back_equal_each_in_its_bucket(self, store: Store) -> None:
        """Rows alike (every target's last hour, read back at a start) load as equal tallies,
        each in its own target and bucket; SQLite hands out one frozen ``Tally`` for equal
        rows (tl31, issue 20), never one row's tally for another's."""
        await store.write_batch(
            WriteBatch(
                tallies=[
                    tally("web", 0, 3),
                    tally("sip", 0, 3),
                    tally("web", 300, 3),
                    tally("sip", 300, 2, 1, timeout=1),
                    tally("api", 300, 2, 1, refused=1),
                ]
            )
        )
        for length in (300, None):
            got = await store.load_tallies(0, 600, bucket_seconds=length)
            assert got["web"][0] == got["sip"][0] == got["web"][300] == Tally(ok=3)
            assert got["sip"][300] == Tally(ok=2, failed=1, reasons={"timeout": 1})
            assert got["api"][300] == Tally(ok=2, failed=1, reasons={"refused": 1})
            assert set(got) == {"web", "sip", "api"}
            assert 0 not in got["api"]
            if isinstance(store, SqliteStore):
                assert got["web"][0] is got["sip"][0] is got["web"][300]

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(upserts=st.lists(store_tally_rows(), max_size=25))
    def test_last_upsert_per_key_wins(
        self,
        factory: StoreFactory,
        tmp_path_factory: pytest.TempPathFactory,
        upserts: list[TallyRow],
    ) -> None:
        """Any sequence of upserts, in batches of any size, loads back as the last value per key."""

        async def scenario() -> list[TallyRow]:
            store = factory(tmp_path_factory.mktemp("prop"), "v1")
            await store.open()
            try:
                for i in range(0, len(upserts), 3):
                    await store.write_batch(WriteBatch(tallies=upserts[i : i + 3]))
                return await store.load_tally_rows(0, 10_000)
            finally:
                await store.close()

        expected: dict[tuple[str, str, int, int], TallyRow] = {}
        for row in upserts:
            expected[(row.vantage, row.target, row.bucket_seconds, row.bucket_start)] = row
        loaded = asyncio.run(scenario())
        assert sorted(loaded, key=repr) == sorted(expected.values(), key=repr)


class TestEvidenceOnce:
    async def test_a_batch_sent_again_stores_each_probe_once(self, store: Store) -> None:
        """A batch whose commit was not acknowledged is sent again: each probe (vantage, target,
        start instant) stays one evidence row; a new probe in the re-sent batch is added."""
        first = [evidence("web", 1.0), evidence("web", 2.0)]
        await store.write_batch(WriteBatch(evidence=first))
        await store.write_batch(WriteBatch(evidence=[*first, evidence("web", 3.0)]))
        assert [r.ts for r in await store.load_evidence(0, 10)] == [1.0, 2.0, 3.0]


class TestLocations:
    """Issue 14: every row names its location; one location's members sum."""

    async def test_default_location_is_the_vantage(self, store: Store) -> None:
        """A store and rows built without a location are one location named like the vantage."""
        assert store.location == "v1"
        await store.write_batch(
            WriteBatch(tallies=[tally("web", 0, 1)], evidence=[evidence("web", 1.0)], heartbeat=2.0)
        )
        [row] = await store.load_tally_rows(0, 300)
        assert row.location == "v1"
        [kept] = await store.load_evidence(0, 10)
        assert kept.location == "v1"
        assert await store.locations() == ["v1"]
        assert (await store.load_tallies(0, 300, location="v1"))["web"][0].ok == 1

    async def test_members_of_one_location_sum(self, factory: StoreFactory, tmp_path: Path) -> None:
        """Two members of dublin add up per (target, bucket), reasons merged by count; paris
        stays apart; each member still reads its own counts by vantage."""
        d1, d2, p1 = (
            factory(tmp_path, "d1", "dublin"),
            factory(tmp_path, "d2", "dublin"),
            factory(tmp_path, "p1", "paris"),
        )
        for member in (d1, d2, p1):
            await member.open()
        try:
            await d1.write_batch(
                WriteBatch(
                    tallies=[
                        TallyRow("d1", "web", 0, 300, 3, 2, {"timeout": 2}, location="dublin"),
                        TallyRow("d1", "sip", 0, 300, 5, 0, location="dublin"),
                    ],
                    heartbeat=1.0,
                )
            )
            await d2.write_batch(
                WriteBatch(
                    tallies=[
                        TallyRow(
                            "d2",
                            "web",
                            0,
                            300,
                            4,
                            3,
                            {"timeout": 1, "refused": 2},
                            errors=1,
                            error_reasons={"probe_error": 1},
                            excused=1,
                            location="dublin",
                        )
                    ],
                    heartbeat=1.0,
                )
            )
            await p1.write_batch(
                WriteBatch(
                    tallies=[TallyRow("p1", "web", 0, 300, 9, 0, location="paris")], heartbeat=1.0
                )
            )
            dublin = await p1.load_tallies(0, 300, location="dublin", bucket_seconds=300)
            assert dublin == {
                "web": {
                    0: Tally(
                        ok=7,
                        failed=5,
                        reasons={"timeout": 3, "refused": 2},
                        errors=1,
                        error_reasons={"probe_error": 1},
                        excused=1,
                    )
                },
                "sip": {0: Tally(ok=5)},
            }
            assert await d1.load_tallies(0, 300, location="paris") == {"web": {0: Tally(ok=9)}}
            assert await d1.load_tallies(0, 300, targets=["sip"], location="dublin") == {
                "sip": {0: Tally(ok=5)}
            }
            assert (await d1.load_tallies(0, 300))["web"][0].ok == 3
            assert await d1.locations() == ["dublin", "paris"]
            assert await d1.vantages() == ["d1", "d2", "p1"]
            with pytest.raises(ValueError, match=r"vantage .* or location"):
                await d1.load_tallies(0, 300, vantage="d1", location="dublin")
        finally:
            for member in (d1, d2, p1):
                await member.close()

    async def test_many_named_targets(self, factory: StoreFactory, tmp_path: Path) -> None:
        """A location read naming many targets (a large group of SLAs) returns exactly those."""
        member = factory(tmp_path, "d1", "dublin")
        await member.open()
        try:
            rows = [
                TallyRow("d1", f"t{i:03d}", 0, 300, i, 0, location="dublin") for i in range(100)
            ]
            await member.write_batch(WriteBatch(tallies=rows))
            named = [f"t{i:03d}" for i in range(0, 200, 2)]  # 100 names, half of them stored
            loaded = await member.load_tallies(0, 300, named, location="dublin")
            assert loaded == {f"t{i:03d}": {0: Tally(ok=i)} for i in range(0, 100, 2)}
        finally:
            await member.close()

    async def test_every_row_kind_carries_the_location(
        self, factory: StoreFactory, tmp_path: Path
    ) -> None:
        """Evidence, verdicts, gaps and heartbeats keep the location of the member that wrote
        them; a store's gaps and heartbeat carry its own location."""
        member = factory(tmp_path, "d1", "dublin")
        await member.open()
        try:
            verdict = ServiceBucketRow(
                "d1", "ujet", "voice", 0, BucketState.AVAILABLE, location="dublin"
            )
            sample = EvidenceRow(
                "d1", 3.0, "web", Outcome.DOWN, "status_code_503", 0.1, location="dublin"
            )
            await member.write_batch(
                WriteBatch(evidence=[sample], service_buckets=[verdict], heartbeat=5.0)
            )
            gap = await member.record_gap(1.0, 2.0, "monitor_not_running")
            assert gap.location == "dublin"
            assert [g.location for g in await member.load_gaps(0, 10)] == ["dublin"]
            assert await member.load_gaps(0, 10, location="dublin") == [gap]
            assert await member.load_gaps(0, 10, location="paris") == []
            assert await member.load_service_buckets("ujet", 0, 300) == [verdict]
            [kept] = await member.load_evidence(0, 10)
            assert dataclasses.replace(kept, id=None) == sample
            assert await member.locations() == ["dublin"]
        finally:
            await member.close()

    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(upserts=st.lists(store_located_tally_rows(), max_size=20))
    def test_location_read_is_the_sum_of_its_members_last_rows(
        self,
        factory: StoreFactory,
        tmp_path_factory: pytest.TempPathFactory,
        upserts: list[TallyRow],
    ) -> None:
        """For any upserts by members of two locations, a location's read at one bucket
        length equals the sum over its members of each key's last row."""

        async def scenario() -> dict[str, dict[str, dict[int, Tally]]]:
            store = factory(tmp_path_factory.mktemp("loc"), "v1")
            await store.open()
            try:
                for i in range(0, len(upserts), 4):
                    await store.write_batch(WriteBatch(tallies=upserts[i : i + 4]))
                return {
                    where: await store.load_tallies(0, 10_000, location=where, bucket_seconds=300)
                    for where in ("dublin", "paris", "v1")
                }
            finally:
                await store.close()

        last: dict[tuple[str, str, int, int], TallyRow] = {}
        for row in upserts:
            last[(row.vantage, row.target, row.bucket_seconds, row.bucket_start)] = row
        expected: dict[str, dict[str, dict[int, Tally]]] = {
            "dublin": {},
            "paris": {},
            "v1": {},
        }
        for row in last.values():
            if row.bucket_seconds == 300:
                add_tally(
                    expected[row.location].setdefault(row.target, {}),
                    row.bucket_start,
                    row.tally(),
                )
        assert asyncio.run(scenario()) == expected


class TestEvidence:
    async def test_range_target_limit_and_order(self, store: Store) -> None:
        """Evidence comes oldest first, within [start, end), for one target, up to ``limit``."""
        rows = [evidence("sip", ts) for ts in (5.0, 1.0, 3.0)] + [evidence("web", 2.0)]
        await store.write_batch(WriteBatch(evidence=rows))
        assert [r.ts for r in await store.load_evidence(0, 10, target="sip")] == [1.0, 3.0, 5.0]
        assert [r.ts for r in await store.load_evidence(2, 5)] == [2.0, 3.0]
        assert [r.ts for r in await store.load_evidence(0, 10, limit=2)] == [1.0, 2.0]

    async def test_limit_must_be_positive(self, store: Store) -> None:
        """A zero limit is refused with the field named."""
        with pytest.raises(ValueError, match="limit: expected a positive integer, got 0"):
            await store.load_evidence(0, 10, limit=0)

    async def test_prune_removes_only_old_evidence(self, store: Store) -> None:
        """Pruning deletes evidence older than the cutoff and nothing else."""
        await store.write_batch(
            WriteBatch(
                tallies=[tally("web", 0, 1)],
                evidence=[evidence("web", float(ts)) for ts in range(10)],
            )
        )
        assert await store.prune_evidence(6.0) == 6
        assert [r.ts for r in await store.load_evidence(0, 100)] == [6.0, 7.0, 8.0, 9.0]
        assert await store.load_tallies(0, 300) != {}


class TestGaps:
    async def test_gaps_overlapping_the_range(self, store: Store) -> None:
        """load_gaps returns the gaps that overlap [start, end), in order."""
        await store.record_gap(100.0, 200.0, "monitor_not_running")
        await store.record_gap(500.0, 600.0, "clock_jump")
        assert await store.load_gaps(150.0, 550.0) == [
            Gap("v1", 100.0, 200.0, "monitor_not_running"),
            Gap("v1", 500.0, 600.0, "clock_jump"),
        ]
        assert await store.load_gaps(200.0, 500.0) == []

    async def test_bad_gap_names_the_field(self, store: Store) -> None:
        """A gap ending before it starts is refused with both values named."""
        with pytest.raises(ValueError, match=r"gap: end: expected after start=200\.0, got 100\.0"):
            await store.record_gap(200.0, 100.0, "x")

    async def test_downtime_since_last_heartbeat(self, store: Store) -> None:
        """First start records nothing; a restart records [last heartbeat, now) exactly once."""
        assert await record_downtime(store, 1000.0) is None
        await store.write_batch(WriteBatch(heartbeat=1010.0))
        gap = await record_downtime(store, 1400.0)
        assert gap == Gap("v1", 1010.0, 1400.0, "monitor_not_running")
        assert await record_downtime(store, 1400.0) is None
        assert await store.load_gaps(0, 2000) == [gap]


class TestExclusions:
    async def test_add_assigns_id_and_source(self, store: Store) -> None:
        """An exclusion without an id gets one; the stored window is marked as from the API."""
        added = await store.add_exclusion(window("", 10))
        assert added.id
        assert added.source == "api"
        assert await store.list_exclusions() == [added]

    async def test_round_trip_keeps_fields_and_offset(self, store: Store) -> None:
        """Services, announcement and the written UTC offset survive storage."""
        plus2 = timezone(timedelta(hours=2))
        given_window = ExclusionWindow(
            "mw-1",
            datetime(2026, 11, 10, 4, 0, tzinfo=plus2),
            datetime(2026, 11, 10, 6, 0, tzinfo=plus2),
            ExclusionKind.SCHEDULED_MAINTENANCE,
            reason="core switch",
            services=frozenset({"voice", "web"}),
            announced_at=datetime(2026, 11, 3, 9, 0, tzinfo=UTC),
        )
        await store.add_exclusion(given_window)
        [loaded] = await store.list_exclusions()
        assert loaded == dataclasses.replace(given_window, source="api")
        assert loaded.start.utcoffset() == timedelta(hours=2)

    async def test_duplicate_id_is_refused(self, store: Store) -> None:
        """A second window with a stored id raises, naming the id."""
        await store.add_exclusion(window("mw-1", 10))
        with pytest.raises(ExclusionExistsError, match="'mw-1' already exists"):
            await store.add_exclusion(window("mw-1", 11))

    async def test_list_in_time_order_and_delete(self, store: Store) -> None:
        """Windows list by start; delete reports whether something was removed."""
        await store.add_exclusion(window("late", 20))
        await store.add_exclusion(window("early", 5))
        assert [w.id for w in await store.list_exclusions()] == ["early", "late"]
        assert await store.delete_exclusion("early") is True
        assert await store.delete_exclusion("early") is False
        assert [w.id for w in await store.list_exclusions()] == ["late"]


class TestFaults:
    async def test_insert_if_absent_is_idempotent_under_gather(self, store: Store) -> None:
        """Concurrent deliveries of one alert create exactly one fault."""
        results = await asyncio.gather(
            *(store.insert_fault_if_absent("c1", f"F-{i}", {"n": i}, "alert-1") for i in range(10))
        )
        created = [fault_id for fault_id, was_created in results if was_created]
        assert len(created) == 1
        assert {fault_id for fault_id, _ in results} == set(created)
        assert await store.fault_id_for_alert("alert-1") == created[0]
        assert len(await store.load_faults()) == 1

    async def test_insert_if_absent_across_vantages(
        self, store: Store, other_vantage: Store
    ) -> None:
        """Two vantage points receiving the same alert at once share one fault."""
        results = await asyncio.gather(
            *(
                s.insert_fault_if_absent("c1", f"F-{s.vantage}-{i}", {}, "alert-7")
                for i in range(5)
                for s in (store, other_vantage)
            )
        )
        assert sum(created for _, created in results) == 1
        assert len({fault_id for fault_id, _ in results}) == 1

    async def test_fault_id_taken_by_another_alert(self, store: Store) -> None:
        """Reusing a fault id for a different alert is a conflict, not an overwrite."""
        await store.insert_fault_if_absent("c1", "F-1", {}, "alert-1")
        with pytest.raises(FaultConflictError, match="'F-1' already exists for alert 'alert-1'"):
            await store.insert_fault_if_absent("c1", "F-1", {}, "alert-2")

    async def test_save_history_and_filters(self, store: Store) -> None:
        """save_fault replaces the document, events keep their order, filters select."""
        await store.insert_fault_if_absent("c1", "F-1", {"severity": 1}, None)
        await store.save_fault("c2", "F-2", {"severity": 2}, "alert-2")
        assert await store.append_fault_event("F-1", {"type": "opened"}) == 1
        assert await store.append_fault_event("F-1", {"type": "acknowledged"}) == 2
        await store.save_fault("c1", "F-1", {"severity": 1, "resolved": True}, None, is_open=False)
        fault = await store.load_fault("F-1")
        assert fault is not None
        assert fault.doc == {"severity": 1, "resolved": True}
        assert [e["type"] for e in fault.events] == ["opened", "acknowledged"]
        assert [f.fault_id for f in await store.load_faults(open_only=True)] == ["F-2"]
        assert [f.fault_id for f in await store.load_faults(contract="c1")] == ["F-1"]
        assert await store.load_fault("F-9") is None

    async def test_event_can_close_the_fault_atomically(self, store: Store) -> None:
        """An event appended with is_open=False closes the fault in the same step."""
        await store.insert_fault_if_absent("c1", "F-1", {"severity": 2}, None)
        await store.append_fault_event("F-1", {"type": "solved"}, is_open=False)
        assert await store.load_faults(open_only=True) == []
        fault = await store.load_fault("F-1")
        assert fault is not None
        assert (fault.is_open, fault.doc, len(fault.events)) == (False, {"severity": 2}, 1)

    async def test_event_for_missing_fault(self, store: Store) -> None:
        """An event for an unknown fault is refused with the id named."""
        with pytest.raises(FaultConflictError, match="'F-9' does not exist"):
            await store.append_fault_event("F-9", {"type": "opened"})

    async def test_alert_key_cannot_move_to_another_fault(self, store: Store) -> None:
        """save_fault with an alert key another fault holds is refused."""
        await store.save_fault("c1", "F-1", {}, "alert-1")
        with pytest.raises(FaultConflictError, match="'alert-1' belongs to another fault"):
            await store.save_fault("c1", "F-2", {}, "alert-1")


class TestKeyValue:
    async def test_set_get_delete(self, store: Store) -> None:
        """JSON values round-trip; a missing key reads as None; delete reports removal."""
        assert await store.kv_get("claims") is None
        await store.kv_set("claims", {"2026-10": ["ujet-voice"]})
        await store.kv_set("claims", {"2026-11": []})
        assert await store.kv_get("claims") == {"2026-11": []}
        assert await store.kv_delete("claims") is True
        assert await store.kv_delete("claims") is False

    async def test_non_json_value_is_refused(self, store: Store) -> None:
        """A value JSON cannot encode is refused with the key named."""
        with pytest.raises(ValueError, match="kv when: expected a JSON-encodable value"):
            await store.kv_set("when", datetime(2026, 1, 1, tzinfo=UTC))


class TestLifecycle:
    async def test_closed_store_refuses_calls(self, factory: StoreFactory, tmp_path: Path) -> None:
        """Calls before open and after close raise StoreClosedError; close is idempotent."""
        store = factory(tmp_path, "v1")
        with pytest.raises(StoreClosedError):
            await store.load_tallies(0, 1)
        await store.open()
        await store.close()
        await store.close()
        with pytest.raises(StoreClosedError):
            await store.write_batch(WriteBatch(heartbeat=1.0))

    async def test_data_survives_reopen(self, factory: StoreFactory, tmp_path: Path) -> None:
        """What one open wrote, the next open reads."""
        store = factory(tmp_path, "v1")
        await store.open()
        await store.write_batch(WriteBatch(tallies=[tally("web", 0, 3)], heartbeat=5.0))
        await store.close()
        again = factory(tmp_path, "v1")
        await again.open()
        try:
            assert (await again.load_tallies(0, 300))["web"][0].ok == 3
            assert await again.last_heartbeat() == 5.0
        finally:
            await again.close()


class TestSealsAndRetention:
    """Issue 17's protocol methods: month seals and the tallies' roll-up."""

    async def test_seal_is_stored_once(self, store: Store) -> None:
        """A seal round-trips; a second seal of the same SLA month is refused, the first kept."""
        from monitor.store.base import MonthSeal

        doc = {"report": {"credit_percent": 10.0}, "states": [["available", 8640]]}
        first = MonthSeal("sla", "2026-11", 1.0e9, "abc", "sha256:00", doc, "sha256:11")
        assert await store.save_month_seal(first)
        second = MonthSeal("sla", "2026-11", 2.0e9, "def", "sha256:22", {}, "sha256:33")
        assert not await store.save_month_seal(second)
        assert await store.load_month_seal("sla", "2026-11") == first
        assert await store.load_month_seal("sla", "2026-10") is None

    async def test_seals_are_loaded_many_at_once(self, store: Store) -> None:
        """st26 (issue 20): ``load_month_seals`` holds exactly what ``load_month_seal`` gives
        for each SLA asked (sealed ones only, that month only), over more SLAs than one query
        binds."""
        from monitor.store.base import MonthSeal
        from monitor.store.sqlite_records import SEALS_PER_QUERY

        names = [f"sla{n:04d}" for n in range(SEALS_PER_QUERY + 7)]
        for n, name in enumerate(names):
            if n % 3:  # a third left unsealed
                doc = {"report": {"credit_percent": n}}
                await store.save_month_seal(
                    MonthSeal(name, "2026-11", 1.0e9 + n, "abc", "sha256:00", doc, f"d{n}")
                )
            if n % 5 == 0:  # another month: never returned for November
                await store.save_month_seal(
                    MonthSeal(name, "2026-10", 1.0, "abc", "sha256:00", {}, "oct")
                )
        asked = [*names[::-1], "never-sealed", names[1]]  # any order, unknown and repeated
        held = await store.load_month_seals(asked, "2026-11")
        one_by_one = {
            name: seal
            for name in asked
            if (seal := await store.load_month_seal(name, "2026-11")) is not None
        }
        assert held == one_by_one
        assert len(held) == len(names) - len(names[::3])
        assert await store.load_month_seals([], "2026-11") == {}

    async def test_prune_tallies_drops_only_the_range_of_this_vantage(
        self, store: Store, other_vantage: Store
    ) -> None:
        """Tallies in [start, end) of this vantage go; others and evidence stay."""
        await store.write_batch(
            WriteBatch(
                tallies=[tally("web", 300 * i, 1) for i in range(10)],
                evidence=[evidence("web", 600.0)],
            )
        )
        other = TallyRow("v2", "web", 600, 300, 1, 0)
        await other_vantage.write_batch(WriteBatch(tallies=[other]))
        assert await store.prune_tallies(600, 1800) == 4
        left = await store.load_tallies(0, 10**6)
        assert sorted(left["web"]) == [0, 300, 1800, 2100, 2400, 2700]
        assert (await other_vantage.load_tallies(0, 10**6))["web"][600].ok == 1
        assert len(await store.load_evidence(0, 1e6)) == 1

    async def test_schema_version_is_current_after_migrate(self, store: Store) -> None:
        """``migrate`` returns the version the open store is then at (a positive number)."""
        reached = await store.migrate()
        assert reached.version > 0
        assert reached.pending == 0
        assert not reached.newer
        assert await store.schema_version() == reached
        assert await store.migrate() == reached
