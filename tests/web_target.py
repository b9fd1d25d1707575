"""A real aiohttp server on loopback whose behaviour each test switches, per path.

It runs in its own thread with its own event loop, so tests may block (polling the daemon over
HTTP) while it serves. Modes: up, status (500), body (wrong content), slow (sleeps past any
probe timeout), reset (drops the connection mid-response), big (a body far over the limit).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

MODES = ("up", "status", "body", "slow", "reset", "big")


class WebTarget:
    def __init__(self) -> None:
        self.modes: dict[str, str] = {}
        self.hits: dict[str, int] = {}
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="web-target", daemon=True)
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def set(self, path: str, mode: str) -> None:
        assert mode in MODES, mode
        self.modes[path] = mode

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        self.hits[path] = self.hits.get(path, 0) + 1
        mode = self.modes.get(path, "up")
        if mode == "status":
            return web.Response(status=500, text="internal error")
        if mode == "body":
            return web.Response(text="maintenance page")
        if mode == "slow":
            await asyncio.sleep(30)
        if mode == "reset":
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(0.1)
        if mode == "big":
            response = web.StreamResponse()
            await response.prepare(request)
            chunk = b"x" * 65536
            try:
                for _ in range(64):  # 4 MiB; the prober hangs up long before
                    await response.write(chunk)
            except ConnectionError:
                pass
            return response
        return web.Response(text="service OK")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/{path}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())

    def start(self) -> WebTarget:
        self._thread.start()
        assert self._ready.wait(10), "web target did not start"
        return self

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextmanager
def web_target() -> Iterator[WebTarget]:
    target = WebTarget().start()
    try:
        yield target
    finally:
        target.close()
