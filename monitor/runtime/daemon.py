"""`slawatch run`: the long-running service.

Start-up order matters for the evidence: open the store, record the time the daemon was not
running as a gap (so those buckets read unknown, never available), read the month's tallies
back, and only then start probing and tell systemd we are ready. Shutdown is the reverse: stop
probing, flush everything to the store, close it. SIGKILL skips all that, which is why tallies
are flushed every second: at most the last second of probes is lost, and the next start records
the gap from the last heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path

import structlog

from monitor.accounting import (
    Accounting,
    AccountingInputs,
    inputs_from_config,
    month_violations,
    utc_now,
)
from monitor.clock import Clock, system_clock
from monitor.config import Config, ConfigError, load_config
from monitor.config.secrets import check_secrets
from monitor.host import sdnotify
from monitor.runtime.claims import KV_KEY as CLAIMS_KEY
from monitor.runtime.claims import Claim, claims_from_kv, claims_to_kv
from monitor.runtime.health import Health
from monitor.runtime.scheduler import ProbeScheduler, ScheduledTarget
from monitor.runtime.state import LiveState, bucket_floor
from monitor.runtime.support_link import SupportFigures
from monitor.sla.calendar import Month, month_bounds, month_containing
from monitor.sla.policy import BucketState, ExclusionWindow, SlaPolicy, Tally
from monitor.store.base import (
    ServiceBucketRow,
    Store,
    TallyRow,
    WriteBatch,
    evidence_from_result,
    record_downtime,
)
from monitor.store.sqlite import SqliteStore
from monitor.support.metrics import Sample
from probes.registry import PROBE_KINDS
from probes.result import ProbeResult

log = structlog.get_logger(__name__)

FLUSH_INTERVAL = 1.0
SUPPORT_REFRESH_FLUSHES = 5
MAX_VERDICTS_PER_FLUSH = 20_000
MAINTENANCE_INTERVAL = 3600.0
SUMMARY_SLICE_SECONDS = 0.02


class Daemon:
    """One vantage point: scheduler, live state, store, accounting and the HTTP interface."""

    def __init__(
        self, config: Config, config_path: Path | None = None, *, clock: Clock = system_clock
    ) -> None:
        self.config = config
        self.clock = clock
        self.config_path = config_path
        self.health = Health()
        self.state = LiveState()
        self.store: Store = SqliteStore(config.monitor.database_path, vantage=config.monitor.name)
        self.scheduler = ProbeScheduler(self._on_result, self.health.observe_lag, clock=clock)
        self.api_exclusions: list[ExclusionWindow] = []
        self.claims: dict[str, Claim] = {}
        self.support = SupportFigures()
        self.gaps: list[tuple[datetime, datetime]] = []
        self.accounting = Accounting(self._inputs(), self._tallies_for)
        self._stop = asyncio.Event()
        self._stop_hooks: list[Callable[[], Awaitable[None]]] = []
        self._flush_lock = asyncio.Lock()
        self._background: list[asyncio.Task[None]] = []
        self._bucket_lengths: dict[str, tuple[int, ...]] = {}
        self._verdicts_written: dict[str, tuple[Month, int]] = {}
        self._settle: tuple[Config, float] | None = None
        self.started_at = self.clock()
        self.listen_address: tuple[str, int] | None = None

    # -- configuration -------------------------------------------------------------------------
    def _inputs(self) -> AccountingInputs:
        return inputs_from_config(self.config, api_windows=self.api_exclusions, gaps=self.gaps)

    def _schedule(self) -> list[ScheduledTarget]:
        """Targets as the scheduler wants them, each with the bucket lengths measuring it."""
        policies = self.config.sla_policies()
        services = self.config.service_defs()
        canaries = set(self.config.canaries())
        all_lengths = tuple(sorted({p.bucket_seconds for p in policies}))
        # Target -> bucket lengths measuring it, indexed once: O(targets + SLAs x their
        # services' targets), not every target x every SLA x a search of the service.
        measuring: dict[str, set[int]] = {}
        for p in policies:
            for name in services[p.service].targets:
                measuring.setdefault(name, set()).add(p.bucket_seconds)
        out: list[ScheduledTarget] = []
        self._bucket_lengths = {}
        for target in self.config.targets:
            if target.name in canaries:
                lengths = all_lengths
            else:
                lengths = tuple(sorted(measuring.get(target.name, ())))
            self._bucket_lengths[target.name] = lengths
            out.append(
                ScheduledTarget(
                    name=target.name,
                    kind=PROBE_KINDS[target.kind],
                    options=target.options,
                    interval=target.interval,
                    timeout=target.timeout,
                    role=target.role,
                    bucket_lengths=lengths,
                )
            )
        return out

    def reload(self) -> bool:
        """Re-read the configuration file; apply it only if it is entirely valid."""
        now = self.clock()
        self.health.last_reload_attempt = now
        if self.config_path is None:
            return False
        try:
            new = load_config(self.config_path)
            check_secrets(new, self.config_path)
        except ConfigError as exc:
            self.health.reload_successful = False
            log.error("config_reload_rejected", path=str(self.config_path), problems=str(exc))
            return False
        if new.monitor.database_path != self.config.monitor.database_path:
            self.health.reload_successful = False
            log.error(
                "config_reload_rejected",
                path=str(self.config_path),
                problems="monitor.database cannot change on reload: restart the daemon",
            )
            return False
        old_hash = self.config.content_hash
        sdnotify.reloading()
        self.config = new
        self.scheduler.apply(self._schedule())
        self.accounting.replace_inputs(self._inputs())
        self.state.forget_targets({t.name for t in new.targets})
        self.health.reload_successful = True
        self.health.last_reload_success = now
        sdnotify.ready()
        log.info(
            "config_reloaded",
            path=str(self.config_path),
            changed=old_hash != new.content_hash,
            targets=len(new.targets),
        )
        return True

    # -- results ---------------------------------------------------------------------------------
    def _on_result(self, target: ScheduledTarget, result: ProbeResult) -> None:
        lengths = self._bucket_lengths.get(target.name, target.bucket_lengths)
        self.state.record(result, lengths)
        # A result landing in a bucket that already closed (a late one) changes a judged
        # bucket: the running months reading it re-judge that bucket, and only that one.
        now = self.clock()
        for seconds in lengths:
            start = bucket_floor(result.started_at, seconds)
            if start < bucket_floor(now, seconds):
                self.accounting.tally_changed(seconds, target.name, start)
        if not result.ok:
            log.info(
                "probe_failed",
                target=target.name,
                kind=target.kind.name,
                outcome=result.outcome.value,
                reason=result.reason,
                duration=round(result.duration_seconds, 4),
            )

    def _tallies_for(
        self, bucket_seconds: int, month: Month, policy: SlaPolicy
    ) -> Mapping[str, Mapping[int, Tally]]:
        return self.state.tallies(bucket_seconds)

    # -- store -----------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write what changed since the last flush, with a heartbeat; keep it on failure."""
        async with self._flush_lock:
            now = self.clock()
            dirty = self.state.take_dirty()
            evidence = self.state.take_evidence()
            vantage = self.config.monitor.name
            verdicts, marks = self._closed_verdicts(now)
            batch = WriteBatch(
                tallies=[
                    TallyRow(vantage, target, start, seconds, t.ok, t.failed, t.reasons)
                    for (seconds, target, start), t in dirty
                ],
                evidence=[evidence_from_result(vantage, r) for r in evidence],
                service_buckets=verdicts,
                heartbeat=now,
            )
            try:
                await self.store.write_batch(batch)
            except Exception:
                self.health.store_write_errors += 1
                self.state.return_dirty(key for key, _ in dirty)
                self.state.return_evidence(evidence)
                log.exception(
                    "store_write_failed", rows=len(batch.tallies), evidence=len(batch.evidence)
                )
                return
            self._verdicts_written.update(marks)
            self.health.last_flush = now

    def _closed_verdicts(
        self, now: float
    ) -> tuple[list[ServiceBucketRow], dict[str, tuple[Month, int]]]:
        """Service verdicts of buckets that closed (and whose last probes have reported) since
        the last flush, at most ``MAX_VERDICTS_PER_FLUSH`` at a time.

        After a restart or an exclusion change the month is rewritten from its first bucket
        holding any probe: the unknown buckets before monitoring began are not evidence of
        anything and would only bloat the table.
        """
        settle = self._settle_seconds()
        moment = utc_now(now)
        rows: list[ServiceBucketRow] = []
        marks: dict[str, tuple[Month, int]] = {}
        vantage = self.config.monitor.name
        budget = MAX_VERDICTS_PER_FLUSH
        for policy in self.accounting.inputs.policies:
            # The running month's states, not its figures: summarising is the scrape's part.
            running = self.accounting.running_month(policy, moment)
            start_epoch = running.grid.start_epoch
            settled = int((now - settle - start_epoch) // policy.bucket_seconds)
            upto = max(0, min(running.grid.count, settled))
            month, first = self._verdicts_written.get(policy.name, (running.month, -1))
            if month == running.month and first >= upto:
                marks[policy.name] = (month, first)
                continue
            if month != running.month or first < 0:
                first = self._first_measured(policy, start_epoch, upto)
            upto = min(upto, first + budget)
            budget -= max(0, upto - first)
            for index in range(first, upto):
                state = running.state_at(index)
                rows.append(
                    ServiceBucketRow(
                        vantage,
                        policy.name,
                        policy.service,
                        start_epoch + index * policy.bucket_seconds,
                        state,
                        running.excluded_kind(index) if state is BucketState.EXCLUDED else None,
                    )
                )
            marks[policy.name] = (running.month, max(first, upto))
        return rows, marks

    def _settle_seconds(self) -> float:
        """How long after a bucket closes its last probes may still report: the longest
        timeout plus one flush. Kept per configuration: scanning 10,000 targets every flush
        cost more than the rest of the flush."""
        config = self.config
        if self._settle is None or self._settle[0] is not config:
            longest = max((t.timeout for t in config.targets), default=0.0)
            self._settle = (config, longest + FLUSH_INTERVAL)
        return self._settle[1]

    def _first_measured(self, policy: SlaPolicy, start_epoch: int, upto: int) -> int:
        """Index of the month's first bucket holding a probe of the SLA's targets (or upto)."""
        service = self.accounting.inputs.services[policy.service]
        tallies = self.state.tallies(policy.bucket_seconds)
        first: int | None = None
        for name in service.targets:
            column = tallies.get(name)
            if not column:
                continue
            # min() over the keys runs in C; filter only when the column reaches back into
            # the previous month (a filtered scan in Python cost seconds at 10,000 SLAs).
            low: int | None = min(column)
            if low is not None and low < start_epoch:
                low = min((s for s in column if s >= start_epoch), default=None)
            if low is not None and (first is None or low < first):
                first = low
        if first is None:
            return upto
        return min(upto, (first - start_epoch) // policy.bucket_seconds)

    async def _flush_loop(self) -> None:
        flushes = 0
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=FLUSH_INTERVAL)
            # Summarise first: it builds and advances the running months in slices, so the
            # flush after it finds them ready instead of building them in one block.
            await self._summarise()
            await self.flush()
            if flushes % SUPPORT_REFRESH_FLUSHES == 0:
                await self.refresh_support()
            flushes += 1

    async def _summarise(self) -> None:
        """Bring every SLA's month figures up to date in slices, yielding to the probes
        between them: after a bucket closes every SLA's figures move, and at 10,000 SLAs
        summarising them in one block would hold the loop for seconds (the scrape then finds
        them ready)."""
        # Yield by elapsed CPU time, not by count: one SLA costs microseconds when nothing
        # changed and much more when its month is first built (start-up, reload).
        mark = time.perf_counter()
        for policy in self.accounting.inputs.policies:
            moment = utc_now(self.clock())
            result = self.accounting.month_result(policy, moment, stamp=False)
            # The previous month too: /metrics shows its credit, and building it inside a
            # scrape (once per month and SLA) held the loop for a minute at 10,000 SLAs.
            self.accounting.month_result(policy, moment, result.month.previous(), stamp=False)
            if time.perf_counter() - mark > SUMMARY_SLICE_SECONDS:
                await asyncio.sleep(0)
                mark = time.perf_counter()

    def support_samples(self) -> list[Sample]:
        return self.support.samples

    async def refresh_support(self) -> None:
        """Recompute the support figures and notice violations (never fails the daemon)."""
        moment = utc_now(self.clock())
        broken = month_violations(
            self.accounting.inputs, lambda p: month_containing(moment, p.timezone)
        )
        try:
            await self.support.refresh(self.config, self.store, moment, broken)
        except Exception:
            log.exception("support_refresh_failed")

    async def _maintenance_loop(self) -> None:
        """Hourly: prune old evidence, forget tallies of months no longer computed live."""
        while not self._stop.is_set():
            now = self.clock()
            retention = self.config.monitor.evidence_retention
            try:
                pruned = await self.store.prune_evidence(now - retention)
                if pruned:
                    log.info("evidence_pruned", rows=pruned, older_than_seconds=retention)
            except Exception:
                self.health.store_write_errors += 1
                log.exception("evidence_prune_failed")
            self.state.forget_before(int(self._live_window_start(now)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=MAINTENANCE_INTERVAL)

    def _live_window_start(self, now: float) -> float:
        """Start of the previous month in the earliest-starting SLA zone: kept in memory."""
        starts = [
            month_bounds(month_containing(utc_now(now), p.timezone).previous(), p.timezone)[0]
            for p in self.config.sla_policies()
        ]
        return min(s.timestamp() for s in starts) if starts else now - 62 * 86400

    async def _load_history(self, now: float) -> None:
        """Read back the previous and current months' tallies, gaps and API exclusions."""
        start = int(self._live_window_start(now)) - 86400
        end = int(now) + 86400
        lengths = {p.bucket_seconds for p in self.config.sla_policies()}
        for seconds in lengths:
            self.state.load(
                seconds, await self.store.load_tallies(start, end, bucket_seconds=seconds)
            )
        self.gaps = [
            (utc_now(g.start), utc_now(g.end)) for g in await self.store.load_gaps(start, end)
        ]
        self.api_exclusions = await self.store.list_exclusions()
        self.claims = claims_from_kv(await self.store.kv_get(CLAIMS_KEY))
        self.accounting.replace_inputs(self._inputs())

    async def record_claim(self, claim: Claim) -> None:
        claims = {**self.claims, claim.key: claim}
        await self.store.kv_set(CLAIMS_KEY, claims_to_kv(claims))
        self.claims = claims

    async def add_exclusion(self, window: ExclusionWindow) -> ExclusionWindow:
        """Store an API window and apply it to the months (raises ExclusionExistsError)."""
        stored = await self.store.add_exclusion(window)
        await self.exclusions_changed()
        return stored

    async def delete_exclusion(self, ident: str) -> bool:
        """Forget the API window ``ident``; False when the store holds none."""
        if not await self.store.delete_exclusion(ident):
            return False
        await self.exclusions_changed()
        return True

    async def exclusions_changed(self) -> None:
        """Re-read the API windows; the month inputs change and verdicts are rewritten."""
        self.api_exclusions = await self.store.list_exclusions()
        self.accounting.replace_inputs(self._inputs())
        self._verdicts_written.clear()

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store, record the downtime gap, read the history back, start probing and
        the background loops. The caller then starts the adapters (HTTP) and calls
        :meth:`serving`."""
        await self.store.open()
        now = self.clock()
        gap = await record_downtime(self.store, now)
        if gap is not None:
            log.warning(
                "downtime_recorded_as_unknown",
                start=gap.start,
                end=gap.end,
                seconds=round(gap.end - gap.start, 3),
            )
        await self._load_history(now)
        self.scheduler.apply(self._schedule(), now=now)
        self.scheduler.start()
        self._background = [
            asyncio.create_task(self._flush_loop(), name="flush"),
            asyncio.create_task(self._maintenance_loop(), name="maintenance"),
        ]

    def serving(self, listen_address: tuple[str, int] | None) -> None:
        """The adapters are up: ready for systemd and ``/readyz``; the watchdog pings
        follow READY."""
        self.listen_address = listen_address
        self.health.ready = True
        self.health.last_reload_success = self.clock()
        sdnotify.ready()
        watchdog = sdnotify.watchdog_interval()
        if watchdog:
            self._background.append(asyncio.create_task(self._watchdog_loop(watchdog / 2)))
        log.info(
            "daemon_started",
            vantage=self.config.monitor.name,
            targets=len(self.config.targets),
            slas=len(self.config.sla_policies()),
            listen=self.listen_address,
            database=str(self.config.monitor.database_path),
        )

    def on_stop(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` when stopping, after the last flush and before the store closes (the
        HTTP server's clean-up: a request may still read the store until then)."""
        self._stop_hooks.append(hook)

    async def _watchdog_loop(self, every: float) -> None:
        while not self._stop.is_set():
            sdnotify.watchdog()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=every)

    def handle_signals(self) -> None:
        """SIGTERM and SIGINT stop the daemon (flushing first); SIGHUP reloads the file."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    def request_stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        await self._stop.wait()

    async def stop(self) -> None:
        """Stop probing, flush, close. Bounded: well inside systemd's and the issue's 5 s."""
        self._stop.set()
        self.health.ready = False
        sdnotify.stopping()
        await self.scheduler.shutdown(grace=0.5)
        await _finish_teardowns(within=3.0)
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.flush()
        for hook in self._stop_hooks:
            await hook()
        await self.store.close()
        log.info("daemon_stopped", vantage=self.config.monitor.name)


async def _finish_teardowns(within: float) -> None:
    """Let cancelled test calls send their CANCEL or BYE: a probe must never leave a call up."""
    from probes.sip.call import pending_teardowns

    pending = pending_teardowns()
    if pending:
        log.info("waiting_for_call_teardowns", calls=len(pending))
        await asyncio.wait(pending, timeout=within)
