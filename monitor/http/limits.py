"""Bounded concurrency for the expensive reads, so that no burst of requests delays a probe.

Probes and HTTP requests share one event loop. A month computation, a bucket list or a report
runs on the loop; a thousand of them at once used to hold it for seconds (issue 16: probes
started 2 s late and healthy targets timed out). Every request except the trivial health
checks takes a slot: at most ``concurrency`` run at once, at most ``waiting`` more queue for a
slot, and beyond that the request gets 503 with ``Retry-After`` at once, costing nothing.
``/metrics`` has its own slots so that a flood of API reads never starves Prometheus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from monitor.http.common import json_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")

CHEAP_PATHS = frozenset({"/healthz", "/readyz"})
"""Answered from a flag: never queued, so a health check shows the truth under load."""


@dataclass
class Slots:
    """``concurrency`` running at once, ``waiting`` queued; counts for the benchmark."""

    concurrency: int
    waiting: int
    refused: int = 0
    _queued: int = 0
    _semaphore: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._semaphore = asyncio.Semaphore(self.concurrency)

    async def run(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._semaphore.locked() and self._queued >= self.waiting:
            self.refused += 1
            response = json_error(503, "busy: too many requests in progress; retry shortly")
            response.headers["Retry-After"] = "1"
            return response
        self._queued += 1
        try:
            await self._semaphore.acquire()
        finally:
            self._queued -= 1
        try:
            return await handler(request)
        finally:
            self._semaphore.release()


@dataclass
class ReadLimits:
    """The slots of the daemon's port: one pool for ``/metrics``, one for everything else."""

    # Concurrent scrapes share one rendering (api.metrics), so many may wait on it at once.
    metrics: Slots = field(default_factory=lambda: Slots(concurrency=64, waiting=64))
    other: Slots = field(default_factory=lambda: Slots(concurrency=2, waiting=64))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path in CHEAP_PATHS:
            return await handler(request)
        slots = self.metrics if path == "/metrics" else self.other
        return await slots.run(request, handler)


class Coalesce:
    """Concurrent identical reads share one computation: the first starts it, the ones
    arriving while it runs wait for its result (which reflects a moment during their request).
    A burst of N identical reads then costs one computation, not N."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[Any]] = {}

    async def run(self, key: str, compute: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is None or running.done():
            running = asyncio.ensure_future(compute())
            self._running[key] = running
            running.add_done_callback(lambda done: self._forget(key, done))
        result: T = await asyncio.shield(running)
        return result

    def _forget(self, key: str, done: asyncio.Future[Any]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
