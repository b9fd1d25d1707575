"""The daemon's live filler for ``kind: prometheus`` targets.

Shortly after each bucket closes (``lag`` later: a scrape's sample is stamped at its start and
stored when the scrape ends) the filler asks Prometheus for that bucket's raw samples, buckets
them with :func:`monitor.promsource.bucketing.bucket_series` (the importer's very function) and
sets the tally in the daemon's :class:`~monitor.state.LiveState`, from where the normal flush
writes it and the accounting judges it like any probed target's.

When Prometheus fails it asks again every ``retry_every``, at most ``retries`` times; then the
bucket keeps no tally (unknown, never available) and the reason is logged and kept in
:attr:`LiveFiller.unknown`. One worker per (target, bucket length) walks the buckets in order,
so a slow Prometheus delays the figures but never skips a bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from monitor.promsource.bucketing import bucket_series
from monitor.promsource.client import PrometheusClient, PrometheusError, one_series
from monitor.promsource.importer import KIND, Measured, measured_targets
from monitor.promsource.options import PrometheusOptions
from monitor.runtime.health import Health
from monitor.runtime.state import LiveState

if TYPE_CHECKING:
    from monitor.config import Config

log = structlog.get_logger(__name__)

MIN_MARGIN_SECONDS = 120
"""Samples fetched before a bucket: they say whether its first seconds were covered."""
RECONCILE_EVERY = 1.0
MAX_UNKNOWN_KEPT = 10_000


def prometheus_targets(config: Config) -> list[Measured]:
    """The configuration's prometheus targets (none is fine for the daemon)."""
    if not any(t.kind == KIND for t in config.targets):
        return []
    return measured_targets(config)


class LiveFiller:
    """Fills closed buckets of every prometheus target; one worker per (target, length)."""

    def __init__(
        self,
        config: Callable[[], Config],
        state: LiveState,
        clock: Callable[[], float] = time.time,
        health: Health | None = None,
    ) -> None:
        """``health`` (the daemon's) counts and times the filler's loop as ``prometheus``."""
        self._config = config
        self._health = health
        self._state = state
        self._clock = clock
        self._workers: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._clients: dict[PrometheusOptions, PrometheusClient] = {}
        self._seen_config: object = None
        self._measured: dict[str, Measured] = {}
        self.filled = 0
        self.unknown: OrderedDict[tuple[str, int, int], str] = OrderedDict()
        """(target, bucket length, bucket start) -> why it has no tally."""

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: keep one worker per (target, length) of the current configuration."""
        try:
            while not stop.is_set():
                try:
                    self._reconcile()
                except Exception:
                    self._failed("prometheus_filler_failed")
                else:
                    if self._health is not None:
                        self._health.loop_ok("prometheus", self._clock(), RECONCILE_EVERY)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=RECONCILE_EVERY)
        finally:
            if self._health is not None:
                self._health.forget_loop("prometheus")
            for task in self._workers.values():
                task.cancel()
            await asyncio.gather(*self._workers.values(), return_exceptions=True)
            await self.close()

    async def close(self) -> None:
        """Close the HTTP sessions (``run`` does it on the way out)."""
        for client in self._clients.values():
            await client.close()

    def _reconcile(self) -> None:
        config = self._config()
        if config is not self._seen_config:
            self._seen_config = config
            try:
                self._measured = {m.name: m for m in prometheus_targets(config)}
            except ValueError:
                self._measured = {}
        wanted = {(m.name, seconds) for m in self._measured.values() for seconds in m.rules}
        for key, task in list(self._workers.items()):
            if key not in wanted or task.done():
                task.cancel()
                del self._workers[key]
        for key in wanted - set(self._workers):
            self._workers[key] = asyncio.create_task(self._worker(*key), name=f"prom-{key[0]}")

    def _failed(self, event: str, **details: object) -> None:
        """An unexpected exception: logged with its traceback, counted, and the loop goes on
        (issue 11, defect 4)."""
        log.exception(event, **details)
        if self._health is not None:
            self._health.loop_failed("prometheus")

    def _client(self, options: PrometheusOptions) -> PrometheusClient:
        client = self._clients.get(options)
        if client is None:
            client = self._clients[options] = PrometheusClient(options)
        return client

    async def _worker(self, target: str, seconds: int) -> None:
        # The bucket running now is filled when it closes: Prometheus holds its earlier
        # samples already. Months before the daemon started are `slawatch import`'s job.
        bucket = int(self._clock()) // seconds * seconds
        while True:
            measured = self._measured.get(target)
            if measured is None or seconds not in measured.rules:
                return
            due = bucket + seconds + measured.options.lag
            wait = due - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            try:
                await self.fill(measured, seconds, bucket)
            except Exception as exc:
                # The bucket stays unknown (never available); the worker goes on to the next.
                self._remember(target, seconds, bucket, f"internal error: {exc!r}")
                self._failed("prometheus_bucket_failed", target=target, bucket=bucket)
            bucket += seconds

    async def fill(self, measured: Measured, seconds: int, bucket: int) -> bool:
        """Fetch, bucket and set one closed bucket; retry, then leave it unknown. True if set."""
        options = measured.options
        client = self._client(options)
        margin = max(MIN_MARGIN_SECONDS, int(2 * (options.scrape_interval or 0)))
        lo, hi = (bucket - margin) * 1000, (bucket + seconds) * 1000
        reason = ""
        for attempt in range(options.retries + 1):
            if attempt:
                await asyncio.sleep(options.retry_every)
            try:
                success = one_series(
                    await client.raw_samples(options.selector, lo, hi),
                    options.selector,
                    measured.name,
                )
                up = (
                    one_series(
                        await client.raw_samples(options.up, lo, hi), options.up, measured.name
                    )
                    if options.up
                    else []
                )
            except PrometheusError as exc:
                reason = str(exc)
                log.warning(
                    "prometheus_query_failed",
                    target=measured.name,
                    bucket=bucket,
                    attempt=attempt + 1,
                    error=reason,
                )
                continue
            interval = int(options.scrape_interval * 1000) if options.scrape_interval else None
            result = bucket_series(
                success,
                start=bucket,
                end=bucket + seconds,
                bucket_seconds=seconds,
                up=up,
                scrape_interval_ms=interval,
                rules=measured.rules[seconds],
            )
            tally = result.tallies.get(bucket)
            if tally is None:
                self._remember(measured.name, seconds, bucket, result.unknown.get(bucket, "none"))
                return False
            self._state.put(seconds, measured.name, bucket, tally)
            self.filled += 1
            return True
        self._remember(
            measured.name,
            seconds,
            bucket,
            f"prometheus failed {options.retries + 1} times: {reason}",
        )
        log.error("prometheus_bucket_unknown", target=measured.name, bucket=bucket, reason=reason)
        return False

    def _remember(self, target: str, seconds: int, bucket: int, reason: str) -> None:
        self.unknown[(target, seconds, bucket)] = reason
        while len(self.unknown) > MAX_UNKNOWN_KEPT:
            self.unknown.popitem(last=False)


def start_live_filler(
    config: Callable[[], Config],
    state: LiveState,
    stop: asyncio.Event,
    health: Health | None = None,
) -> asyncio.Task[None]:
    """The daemon's one-line hook: a background task filling prometheus targets' buckets."""
    return asyncio.create_task(
        LiveFiller(config, state, health=health).run(stop), name="prometheus-filler"
    )
