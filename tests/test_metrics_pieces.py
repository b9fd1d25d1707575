"""``/metrics`` sent as the pieces it was rendered as (issue 20, sc24): the bytes on the wire
are the reference rendering's, the body is valid exposition text, and any list of pieces
arrives whole, in order, with its ``Content-Length`` (HEAD: the headers alone).

Real loopback servers (aiohttp's own, port 0), a daemon built in process over a fixed clock
(tests.test_metrics_sla_text's harness): nothing depends on the date the tests run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout, web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from monitor.http.api import build_app
from monitor.http.pieces import BATCH_BYTES, send_pieces
from monitor.metrics.collector import MetricsExposition
from monitor.metrics.contract import ContractCollector
from tests.test_metrics_sla_text import Harness, assert_matches, check_layout

pytestmark = pytest.mark.timeout(300)

Fetched = tuple[int, dict[str, str], bytes]


async def serving(app: web.Application, requests: Callable[[str], Awaitable[Any]]) -> Any:
    """Run ``app`` on 127.0.0.1 port 0 while ``requests(base_url)`` runs."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        return await requests(f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


async def fetch(session: ClientSession, url: str, method: str = "GET") -> Fetched:
    async with session.request(
        method,
        url,
        headers={"Accept-Encoding": "gzip"},
        auto_decompress=False,
        timeout=ClientTimeout(total=30),  # a body shorter than its length: fail, not hang
    ) as response:
        return response.status, dict(response.headers), await response.read()


# Pieces around the batch size: empty ones, small ones, and ones larger than a batch.
PIECES = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.integers(0, 3 * BATCH_BYTES).map(lambda n: bytes([n % 251]) * n),
    ),
    max_size=12,
)


class TestSendPieces:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(pieces=PIECES)
    def test_the_body_is_the_pieces_joined(self, pieces: list[bytes]) -> None:
        """Any pieces (empty, small, larger than a batch) arrive joined, in order, with a
        Content-Length and without chunked framing; HEAD answers the same headers and no
        body."""

        async def handler(request: web.Request) -> web.StreamResponse:
            return await send_pieces(request, pieces, "text/plain; version=0.0.4")

        app = web.Application()
        app.router.add_get("/p", handler)

        async def requests(base: str) -> tuple[Fetched, Fetched]:
            async with ClientSession() as session:
                return await fetch(session, base + "/p"), await fetch(session, base + "/p", "HEAD")

        (status, headers, body), (head_status, head_headers, head_body) = asyncio.run(
            serving(app, requests)
        )
        joined = b"".join(pieces)
        assert status == 200
        assert body == joined
        assert headers["Content-Length"] == str(len(joined))
        assert "Transfer-Encoding" not in headers
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert head_status == 200
        assert head_body == b""
        assert head_headers["Content-Length"] == str(len(joined))


class TestMetricsOverHttp:
    def test_the_streamed_body_equals_the_reference_rendering(self, tmp_path: Path) -> None:
        """After results, time passing (buckets closing), the daemon's refresh after its
        summary and earlier scrapes, ``GET /metrics`` sends byte for byte what a fresh
        exposition (no cached text) renders at the same instant, as valid exposition text;
        asked with ``Accept-Encoding: gzip`` it answers identity, as before (no compression)."""

        async def run() -> None:
            h = Harness(tmp_path)
            d = h.daemon
            await d.store.open()
            try:
                h.history(6)
                app = build_app(d)

                async def requests(base: str) -> None:
                    async with ClientSession() as session:
                        for step in range(6):
                            if step % 2:
                                h.clock.advance(300)  # a bucket closes
                                for target in ("a1", "b1", "b2", "c1"):
                                    h.feed(target, h.clock() - 3, step % 4 != 1)
                            if step == 3:
                                await d._summarise()  # starts the refresh after it
                            status, headers, body = await fetch(session, base + "/metrics")
                            assert status == 200
                            assert "Content-Encoding" not in headers
                            reference = MetricsExposition(d, extra=[ContractCollector(d)])
                            assert body == await reference.render()
                            text = body.decode("utf-8")
                            check_layout(text)
                            # The reference shares the cached code: the figures are held
                            # against the month assembly too.
                            assert_matches(d, text)
                            names = {f.name for f in text_string_to_metric_families(text)}
                            assert "slawatch_month_uptime_ratio" in names
                            assert "slawatch_probe_success" in names

                await serving(app, requests)
            finally:
                await d.store.close()

        asyncio.run(run())

    def test_pieces_stay_whole_while_later_scrapes_replace_the_chunks(self, tmp_path: Path) -> None:
        """The pieces of one rendering are immutable snapshots: results arriving and
        another rendering after it leave them equal to what was rendered."""

        async def run() -> None:
            h = Harness(tmp_path)
            d = h.daemon
            await d.store.open()
            try:
                h.history(3)
                exposition = MetricsExposition(d, extra=[ContractCollector(d)])
                first = await exposition.render_parts()
                before = b"".join(first)
                h.clock.advance(600)
                for target in ("a1", "b1", "b2", "c1"):
                    h.feed(target, h.clock() - 2, False)
                after = await exposition.render()
                assert after != before
                assert b"".join(first) == before
            finally:
                await d.store.close()

        asyncio.run(run())
