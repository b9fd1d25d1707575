"""Issue 11, defects 4, 6 and 7: the daemon's own faults never turn into wrong figures.

4. No background loop dies silently: an unexpected error is logged, counted in
   ``slawatch_internal_errors_total{loop}``, and the loop goes on; ``/readyz`` is 503 while
   durable writes fail or a loop is stuck.
6. A stop (SIGTERM) records at once that the running bucket was cut short: ``slawatch report``
   reads it unknown before the daemon starts again.
7. The stored per-bucket verdicts equal the month computed afresh, late results included.

The in-process tests run the real core (store, flush loop, HTTP adapter) on a fixed clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from monitor.accounting import month_result
from monitor.clock import FixedClock
from monitor.config import Config, load_config
from monitor.http.server import serve
from monitor.runtime.daemon import FLUSH_INTERVAL, Daemon
from monitor.runtime.health import STUCK_PERIODS
from monitor.runtime.scheduler import ProbeScheduler
from monitor.sla.calendar import month_containing, month_grid
from monitor.sla.policy import BucketState, Tally
from monitor.store.base import WriteBatch
from monitor.store.sqlite import SqliteStore
from tests.daemon_harness import ROOT, free_port, running_daemon, wait_until
from tests.test_daemon import BUCKET, http_target, midday_zone, sla, write_config
from tests.web_target import WebTarget, web_target

pytestmark = pytest.mark.timeout(120)

# Mid-month, mid-bucket, far from any month edge in UTC: nothing depends on today's date.
T0 = datetime(2026, 11, 10, 12, 0, 2, tzinfo=UTC).timestamp()
VANTAGE = "test-vantage"


def core_config(directory: Path, fee: str = "1000.00") -> Path:
    """One tcp target (its probes fail: nothing listens on its port) in one SLA over
    5-second buckets, served on 127.0.0.1 port 0."""
    config = {
        "monitor": {
            "name": VANTAGE,
            "state_dir": str(directory / "state"),
            "listen": "127.0.0.1:0",
            "allow_short_buckets": True,
        },
        "targets": [
            {
                "name": "api",
                "kind": "tcp",
                "interval": "5s",
                "timeout": "900ms",
                "tcp": {"host": "127.0.0.1", "port": free_port()},
            }
        ],
        "services": [{"name": "web", "targets": ["api"]}],
        "slas": [{**sla("web-sla", "web", timezone="UTC"), "monthly_fee": fee}],
    }
    path = directory / "slawatch.yaml"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


class FlakyStore(SqliteStore):
    """The SQLite store, whose batch writes fail while ``failing`` is set (a full disk)."""

    failing = False

    async def write_batch(self, batch: WriteBatch) -> None:
        if self.failing:
            raise OSError(28, "No space left on device")
        await super().write_batch(batch)


class SlowFailingStore(SqliteStore):
    """The SQLite store on a full disk whose failing writes take a while: ``entered`` is set
    once a write is in flight."""

    failing = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered = asyncio.Event()

    async def write_batch(self, batch: WriteBatch) -> None:
        if self.failing and not batch.empty:
            self.entered.set()
            await asyncio.sleep(0.5)
            raise OSError(28, "No space left on device")
        await super().write_batch(batch)


async def readyz(port: int) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://127.0.0.1:{port}/readyz") as reply,
    ):
        return reply.status, await reply.text()


async def until(predicate: Any, what: str, within: float = 15.0) -> Any:
    """Poll an async predicate every 0.1 s until it returns something truthy."""
    end = time.monotonic() + within
    last: Any = None
    while time.monotonic() < end:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


def bucket(offset: int) -> int:
    """Start of the bucket ``offset`` buckets after the one holding T0."""
    return int(T0) // BUCKET * BUCKET + offset * BUCKET


async def stored_tallies(db: Path) -> dict[int, Tally]:
    store = SqliteStore(db, vantage=VANTAGE, read_only=True)
    await store.open()
    try:
        rows = await store.load_tallies(bucket(-100), bucket(100), bucket_seconds=BUCKET)
    finally:
        await store.close()
    return dict(rows.get("api", {}))


class TestLoopsSurvive:
    def test_a_failing_month_computation_is_logged_counted_and_the_flush_goes_on(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The issue's case: a fee so large that the credit overflows Decimal (a configuration
        that got past the checks; here put in place after loading) makes every verdict
        computation raise ``decimal.Overflow`` once a credit tier is reached. The flush
        loop logs and counts it and keeps storing tallies; ``/readyz`` turns 503 once the
        loop has had no good iteration for many periods, and 200 again after a reload fixes
        the configuration."""
        path = core_config(tmp_path)
        good = load_config(path)
        slas = [s.model_copy(update={"monthly_fee": Decimal("1e999999999")}) for s in good.slas]
        broken: Config = good.model_copy(update={"slas": slas})
        clock = FixedClock(T0)
        db = good.monitor.database_path

        async def scenario() -> None:
            daemon = Daemon(broken, path, clock=clock, store=SqliteStore(db, vantage=VANTAGE))
            await daemon.start()
            daemon.serving(await serve(daemon))
            assert daemon.listen_address is not None
            port = daemon.listen_address[1]
            try:
                # fs28 (issue 20): ready once the first summary's refresh wrote /metrics'
                # per-SLA lines (a second or so after the start here).
                await until(lambda: _ready(port), "ready after the first summary")
                # Closed, failed buckets: enough unavailable ones for a credit tier.
                for offset in range(2, 12):
                    daemon.state.put(BUCKET, "api", bucket(-offset), Tally(failed=3))
                await asyncio.sleep(3 * FLUSH_INTERVAL)
                # The loop is alive: a later tally is stored too, and so are the failed ones.
                daemon.state.put(BUCKET, "api", bucket(-1), Tally(ok=4))
                await until(lambda: _stored(db, bucket(-1)), "later tally stored")
                assert (await stored_tallies(db))[bucket(-2)].failed == 3
                assert daemon.health.internal_errors["flush"] >= 2
                assert "background_loop_failed" in capsys.readouterr().out
                # No good flush for more than STUCK_PERIODS periods: not ready.
                clock.advance(STUCK_PERIODS * FLUSH_INTERVAL + 5)
                _, text = await until(lambda: _not_ready(port), "readyz 503 while the flush fails")
                assert "loop flush stuck" in text
                # The file (the good configuration) is read again: the flush recovers.
                assert daemon.reload()
                await until(lambda: _ready(port), "readyz 200 after the fix")
                before = daemon.health.internal_errors["flush"]
                daemon.state.put(BUCKET, "api", bucket(0), Tally(ok=2))
                await until(lambda: _stored(db, bucket(0)), "tally after fix")
                assert daemon.health.internal_errors["flush"] == before
                metrics = await _metrics(port)
                assert 'slawatch_internal_errors_total{loop="flush"}' in metrics
            finally:
                await daemon.stop()

        asyncio.run(asyncio.wait_for(scenario(), 60))

    def test_failing_store_writes_make_readyz_503_until_they_succeed(self, tmp_path: Path) -> None:
        """A full disk: every batch write fails; the rows are kept, ``/readyz`` says 503
        naming the store, and once writes succeed again it is 200 and the rows are stored."""
        path = core_config(tmp_path)
        config = load_config(path)
        db = config.monitor.database_path
        store = FlakyStore(db, vantage=VANTAGE)

        async def scenario() -> None:
            daemon = Daemon(config, path, clock=FixedClock(T0), store=store)
            await daemon.start()
            daemon.serving(await serve(daemon))
            assert daemon.listen_address is not None
            port = daemon.listen_address[1]
            try:
                # fs28 (issue 20): ready once the first summary's refresh wrote /metrics'
                # per-SLA lines (a second or so after the start here).
                await until(lambda: _ready(port), "ready after the first summary")
                store.failing = True
                daemon.state.put(BUCKET, "api", bucket(-1), Tally(ok=5))
                _, text = await until(lambda: _not_ready(port), "readyz 503")
                assert "store writes failing" in text
                assert daemon.health.store_write_errors >= 1
                store.failing = False
                await until(lambda: _ready(port), "readyz 200 again")
                assert (await stored_tallies(db))[bucket(-1)].ok == 5
            finally:
                await daemon.stop()

        asyncio.run(asyncio.wait_for(scenario(), 60))


class TestReadyDuringTheFirstSummary:
    """st26 (issue 20): ``/readyz`` does not wait for the first summary after a start (tens
    of seconds at a month's end at 10,000 SLAs), nor count the start's own read-back as the
    loops' silence; a later iteration that stops making progress is stuck as before."""

    def test_long_start_and_first_summary_are_not_stuck(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import monitor.runtime.daemon as daemon_module

        path = core_config(tmp_path)
        config = json.loads(path.read_text(encoding="utf-8"))
        config["slas"] = [
            {**sla(f"web-{n}", "web", timezone="UTC"), "monthly_fee": "1000.00"} for n in range(4)
        ]
        path.write_text(json.dumps(config), encoding="utf-8")
        clock = FixedClock(T0)
        # Every SLA asked is a slice of its own; each month asked takes 4 s of the clock, so
        # a summary of 4 SLAs (8 months) runs 32 s, beyond STUCK_PERIODS flush periods.
        monkeypatch.setattr(daemon_module, "SUMMARY_SLICE_SECONDS", -1.0)
        step = 4.0
        assert 2 * step < STUCK_PERIODS * FLUSH_INTERVAL < 8 * step

        async def scenario() -> None:
            daemon = Daemon(load_config(path), path, clock=clock)
            original_history = daemon._load_history

            async def long_history(now: float) -> None:
                await original_history(now)
                clock.advance(3 * STUCK_PERIODS * FLUSH_INTERVAL)  # a long read back

            daemon._load_history = long_history  # type: ignore[method-assign]
            seen: list[tuple[bool, list[str]]] = []
            accounting = daemon.accounting
            original = accounting.month_result

            def slow(policy: Any, *args: Any, **kwargs: Any) -> Any:
                clock.advance(step)
                seen.append((daemon._warming, daemon.health.problems(clock())))
                return original(policy, *args, **kwargs)

            accounting.month_result = slow  # type: ignore[method-assign]
            await daemon.start()
            daemon.serving(None)
            try:
                assert daemon.health.problems(clock()) == []
                await until(lambda: _async(not daemon._warming and len(seen) >= 8), "first")
                first = [problems for warming, problems in seen if warming]
                assert len(first) >= 8
                assert all(problems == [] for problems in first), first
                # Later iterations: a summary as long, with no beat until it ends, is stuck.
                clock.advance(6)
                count = len(seen)
                await until(lambda: _async(len(seen) >= count + 8), "second")
                later = [problems for warming, problems in seen[count:] if not warming]
                assert any("loop flush stuck" in " ".join(p) for p in later), later
            finally:
                del accounting.month_result
                await daemon.stop()

        asyncio.run(asyncio.wait_for(scenario(), 60))

    def test_the_maintenance_pass_waits_for_the_first_summary(self, tmp_path: Path) -> None:
        """fs31 (issue 20): the maintenance loop's first pass runs once the flush loop's first
        iteration after the start is over (the summary that builds every SLA's figures, what
        ``/readyz`` waits for) and nothing else ``/readyz`` waits for is being built
        (``Health.warming``), not beside them; its beat is set from the start (not stuck
        while it waits), and it runs on its own once they are done."""
        path = core_config(tmp_path)
        clock = FixedClock(T0)

        async def scenario() -> None:
            daemon = Daemon(load_config(path), path, clock=clock)
            asked: list[object] = []
            accounting = daemon.accounting
            original = accounting.month_result

            def counted(policy: Any, *args: Any, **kwargs: Any) -> Any:
                asked.append(policy.name)
                return original(policy, *args, **kwargs)

            accounting.month_result = counted  # type: ignore[method-assign]
            passes: list[tuple[int, list[str]]] = []
            maintain = daemon._maintain

            async def recorded() -> None:
                passes.append((len(asked), daemon.health.problems(clock())))
                await maintain()

            daemon._maintain = recorded  # type: ignore[method-assign]
            daemon.health.warming.add("lines")  # as /metrics' gate holds it until written
            await daemon.start()
            daemon.serving(None)
            try:
                assert "maintenance" in daemon.health.beats
                await until(lambda: _async(not daemon._warming), "the first flush iteration")
                await until(lambda: _async(daemon._warmed.is_set()), "its support refresh")
                await asyncio.sleep(2 * FLUSH_INTERVAL)  # the loop looks again meanwhile
                assert passes == []  # still building: no pass (deterministic, not timed)
                daemon.health.warming.discard("lines")
                await until(lambda: _async(bool(passes)), "the first maintenance pass")
                summarised, problems = passes[0]
                # Every SLA's current and previous month asked before the pass began.
                assert summarised >= 2 * len(daemon.config.sla_policies()) > 0
                assert problems == []  # ready then
            finally:
                del accounting.month_result
                await daemon.stop()

        asyncio.run(asyncio.wait_for(scenario(), 60))


async def _async(value: bool) -> bool:
    return value


class TestStopDuringAFlush:
    def test_a_stop_while_a_failing_write_is_in_flight_spools_its_rows(
        self, tmp_path: Path
    ) -> None:
        """SIGTERM while the flush loop's write is in flight on a full disk: the stop waits for
        that flush to give its rows back, then spools them. (Cancelled mid-write, the rows were
        neither written nor returned, the stop's flush found nothing and nothing was spooled.)"""
        from monitor.store.spool import read_spool, spool_path

        path = core_config(tmp_path)
        config = load_config(path)
        db = config.monitor.database_path
        store = SlowFailingStore(db, vantage=VANTAGE)

        async def scenario() -> None:
            daemon = Daemon(config, path, clock=FixedClock(T0), store=store)
            await daemon.start()
            try:
                store.failing = True
                daemon.state.put(BUCKET, "api", bucket(-1), Tally(ok=7))
                await asyncio.wait_for(store.entered.wait(), 10)
            finally:
                await daemon.stop()

        asyncio.run(asyncio.wait_for(scenario(), 60))
        spooled = read_spool(spool_path(db))
        assert spooled is not None, "nothing was spooled"
        assert [(t.target, t.bucket_start, t.ok) for t in spooled.tallies] == [
            ("api", bucket(-1), 7)
        ]


async def _stored(db: Path, start: int) -> bool:
    return start in await stored_tallies(db)


async def _not_ready(port: int) -> tuple[int, str] | None:
    status, text = await readyz(port)
    return (status, text) if status == 503 else None


async def _ready(port: int) -> bool:
    return (await readyz(port))[0] == 200


async def _metrics(port: int) -> str:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as reply,
    ):
        assert reply.status == 200
        return await reply.text()


class TestSchedulerErrors:
    def test_a_result_that_cannot_be_recorded_is_counted_and_probing_goes_on(self) -> None:
        """A sink that raises on every other result: each exception is logged and counted
        through ``on_error`` (the daemon's ``scheduler`` loop), and the target keeps its
        rhythm."""
        from tests.test_scheduler import target as scheduled

        calls: list[str] = []
        errors: list[int] = []

        def sink(t: Any, result: Any) -> None:
            calls.append(t.name)
            if len(calls) % 2:
                raise ValueError("cannot record")

        async def scenario() -> None:
            scheduler = ProbeScheduler(sink, on_error=lambda: errors.append(1))
            scheduler.apply([scheduled("a", 0.2)])
            scheduler.start()
            await asyncio.sleep(1.3)
            await scheduler.shutdown()

        asyncio.run(asyncio.wait_for(scenario(), 30))
        assert len(calls) >= 4
        assert len(errors) == (len(calls) + 1) // 2


class TestStoredVerdicts:
    def test_verdict_table_equals_the_computed_month_after_late_results(
        self, tmp_path: Path
    ) -> None:
        """A scrape caches the month while a bucket reads available; the bucket's last probe
        then reports a failure (late, inside the settle time) and the verdict is written
        after the settle time: it is the fresh one (unavailable). A result arriving after the
        verdict was written (a prometheus bucket filled after its lag) rewrites it. The table
        equals the month computed from the same tallies at every step."""
        path = core_config(tmp_path)
        config = load_config(path)
        db = config.monitor.database_path
        b0 = bucket(1)  # a bucket that closes after T0
        clock = FixedClock(b0 + BUCKET + 0.5)

        async def table(daemon: Daemon) -> dict[int, BucketState]:
            rows = await daemon.store.load_service_buckets("web-sla", b0 - 60, b0 + 60)
            return {r.bucket_start: r.state for r in rows}

        def computed(daemon: Daemon) -> dict[int, BucketState]:
            """The fresh month's closed buckets from the first measured one (the table starts
            there: the unknown buckets before monitoring began are not written)."""
            policy = daemon.accounting.inputs.policy("web-sla")
            now = datetime.fromtimestamp(clock(), UTC)
            month = month_containing(now, policy.timezone)
            grid = month_grid(month, policy.timezone, policy.bucket_seconds)
            result = month_result(
                daemon.accounting.inputs,
                policy,
                month,
                daemon.state.tallies(policy.bucket_seconds),
                now,
            )
            return {
                grid.start_epoch + i * BUCKET: s
                for i, s in enumerate(result.states)
                if b0 <= grid.start_epoch + i * BUCKET < b0 + 60 and s is not BucketState.PENDING
            }

        async def scenario() -> None:
            daemon = Daemon(config, path, clock=clock, store=SqliteStore(db, vantage=VANTAGE))
            await daemon.store.open()
            try:
                daemon.state.put(BUCKET, "api", b0, Tally(ok=4))
                policy = daemon.accounting.inputs.policy("web-sla")
                scraped = daemon.accounting.month_result(
                    policy, datetime.fromtimestamp(clock(), UTC)
                )
                index = (b0 - int(scraped.start.timestamp())) // BUCKET
                assert scraped.states[index] is BucketState.AVAILABLE
                # The bucket's last probe: a timeout reported 0.9 s after the bucket closed.
                daemon.state.put(BUCKET, "api", b0, Tally(ok=4, failed=1, reasons={"timeout": 1}))
                clock.advance(1.5)  # past the settle time (900 ms + one flush), same bucket
                assert await daemon.flush()
                assert (await table(daemon))[b0] is BucketState.UNAVAILABLE
                assert await table(daemon) == computed(daemon)
                # Later still: the tally of the bucket is set again (a prometheus fill).
                clock.advance(2 * BUCKET)
                daemon.state.put(BUCKET, "api", b0, Tally(ok=5))
                assert await daemon.flush()
                assert (await table(daemon))[b0] is BucketState.AVAILABLE
                assert await table(daemon) == computed(daemon)
            finally:
                await daemon.store.close()

        asyncio.run(asyncio.wait_for(scenario(), 60))


@pytest.fixture
def target() -> Iterator[WebTarget]:
    with web_target() as t:
        yield t


def report_counts(config: Path, month: str, as_of: float) -> dict[str, int]:
    """``slawatch report`` from the store as of ``as_of``: the bucket counts of web-sla."""
    moment = datetime.fromtimestamp(as_of, UTC).isoformat()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "monitor.cli", "report", "--config", str(config)),
            *("--month", month, "--format", "json", "--as-of", moment),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(config.parent),
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (report,) = [r for r in json.loads(done.stdout)["reports"] if r["sla"] == "web-sla"]
    return {k: int(report[f"buckets_{k}"]) for k in ("available", "unavailable", "unknown")}


def _stop_gap_starts(db: Path) -> list[float]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT start_ts FROM gaps WHERE reason = 'monitor_stopped'")
        return [float(start) for (start,) in rows]


class TestStopGap:
    def test_sigterm_mid_bucket_reads_unknown_before_the_next_start(
        self, tmp_path: Path, target: WebTarget
    ) -> None:
        """The daemon probes a healthy endpoint and is stopped (SIGTERM) mid-bucket. Before any
        restart, ``slawatch report`` from the store reads the bucket cut short as unknown (it
        read available until the next start recorded the gap), while the full buckets before
        it stay available."""
        target.set("svc", "up")
        zone = midday_zone()
        port = free_port()
        config = write_config(
            tmp_path,
            port,
            [http_target("api", target.url("svc"))],
            [{"name": "web", "targets": ["api"]}],
            [sla("web-sla", "web", timezone=zone)],
        )
        with running_daemon(config, port) as daemon:
            wait_until(
                lambda: (
                    (daemon.metric("slawatch_probes_total", target="api", outcome="up") or 0) >= 2
                ),
                15,
                "a few probes",
            )
            # Wait for a bucket the daemon saw from its start, then stop 2.5 s into the next.
            time.sleep(2 * BUCKET - time.time() % BUCKET + 2.5)
            stopped_at = time.time()
            daemon.signal(signal.SIGTERM)
            assert daemon.proc.wait(10) == 0
            log = daemon.log()
        # The stop instant is the gap's start (a loaded machine may take a while to stop);
        # without that row, the signal's time.
        stops = _stop_gap_starts(tmp_path / "state" / "slawatch.db")
        cut = int(stops[0] if stops else stopped_at) // BUCKET * BUCKET
        month = datetime.fromtimestamp(cut, ZoneInfo(zone)).strftime("%Y-%m")
        wait_until(lambda: time.time() > cut + BUCKET + 0.5, 2 * BUCKET, "the bucket's end")
        before = report_counts(config, month, cut)
        after = report_counts(config, month, cut + BUCKET)
        assert before["available"] >= 1, before  # the full bucket before it was measured
        assert after["unknown"] == before["unknown"] + 1, (before, after)
        assert after["available"] == before["available"], (before, after)
        assert "stop_recorded_as_unknown" in log
