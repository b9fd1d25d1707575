"""The Prometheus client and the live filler against loopback servers that misbehave on purpose.

A real Prometheus never sends a proxy's HTML error page or asks for credentials, so these
answers come from a small aiohttp server on 127.0.0.1 that records what it was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from monitor.promsource.client import PrometheusClient, PrometheusError, one_series
from monitor.promsource.importer import Measured
from monitor.promsource.live import LiveFiller
from monitor.promsource.options import PrometheusOptions
from monitor.runtime.state import LiveState
from monitor.sla.policy import BucketRule
from tests.daemon_harness import free_port

pytestmark = pytest.mark.timeout(30)


class Fake:
    """Answers /api/v1/query with ``reply`` (status, body) and records each request."""

    def __init__(self) -> None:
        self.reply: tuple[int, str] = (200, "{}")
        self.seen: list[tuple[dict[str, str], dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.seen.append(({k: str(v) for k, v in form.items()}, dict(request.headers)))
        status, body = self.reply
        return web.Response(status=status, text=body, content_type="application/json")


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """``app`` on 127.0.0.1 port 0, its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def fake() -> AsyncIterator[tuple[Fake, str]]:
    server = Fake()
    app = web.Application()
    app.router.add_post("/api/v1/query", server.handle)
    async with serving(app) as url:
        yield server, url


def matrix(*series: tuple[dict[str, str], list[tuple[float, str]]]) -> str:
    result = [{"metric": m, "values": [[ts, v] for ts, v in values]} for m, values in series]
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}})


def options(url: str, **more: Any) -> PrometheusOptions:
    return PrometheusOptions.model_validate({"url": url, "selector": "probe_success", **more})


class TestClient:
    async def test_range_query_shape_and_half_open_range(self, fake: tuple[Fake, str]) -> None:
        """The range ends 1 ms before the end; a sample 1 ms before the start (2.x) is dropped."""
        server, url = fake
        server.reply = (200, matrix(({"job": "bb"}, [(9.999, "1"), (10.0, "0"), (19.999, "1")])))
        async with PrometheusClient(options(url)) as client:
            series = await client.raw_samples("probe_success", 10_000, 20_000)
        assert series[0].samples == [(10_000, 0.0), (19_999, 1.0)]
        form, _ = server.seen[0]
        assert form == {"query": "probe_success[10000ms]", "time": "19.999"}
        assert client.queries == 1

    async def test_bearer_and_basic_auth_read_their_secrets(
        self, fake: tuple[Fake, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Secrets come from the environment at query time, as Authorization headers."""
        server, url = fake
        server.reply = (200, matrix())
        monkeypatch.setenv("PROM_TOKEN", "s3cret")
        monkeypatch.setenv("PROM_PASSWORD", "pw")
        async with PrometheusClient(options(url, bearer_token={"env": "PROM_TOKEN"})) as client:
            await client.raw_samples("probe_success", 0, 1000)
        basic = options(url, username="ops", password={"env": "PROM_PASSWORD"})
        async with PrometheusClient(basic) as client:
            await client.raw_samples("probe_success", 0, 1000)
        assert server.seen[0][1]["Authorization"] == "Bearer s3cret"
        assert server.seen[1][1]["Authorization"] == "Basic b3BzOnB3"

    async def test_errors_are_one_line_and_name_the_server(self, fake: tuple[Fake, str]) -> None:
        """An API error, a non-JSON page and a missing secret each give one clear line."""
        server, url = fake
        server.reply = (
            400,
            json.dumps({"status": "error", "errorType": "bad_data", "error": "parse\nerror"}),
        )
        async with PrometheusClient(options(url)) as client:
            with pytest.raises(
                PrometheusError, match=f"prometheus {url}: HTTP 400: bad_data: parse error$"
            ):
                await client.raw_samples("probe_success", 0, 1000)
            server.reply = (502, "<html>bad gateway</html>")
            with pytest.raises(PrometheusError, match="HTTP 502, expected a JSON API answer"):
                await client.raw_samples("probe_success", 0, 1000)
        missing = options(url, bearer_token={"env": "NO_SUCH_VARIABLE_P15"})
        async with PrometheusClient(missing) as client:
            with pytest.raises(PrometheusError, match="NO_SUCH_VARIABLE_P15 is not set"):
                await client.raw_samples("probe_success", 0, 1000)

    async def test_selector_yielding_two_series_is_refused(self, fake: tuple[Fake, str]) -> None:
        """A selector must name one series: two are an error listing them."""
        server, url = fake
        server.reply = (
            200,
            matrix(({"instance": "a"}, [(1.0, "1")]), ({"instance": "b"}, [(1.0, "1")])),
        )
        async with PrometheusClient(options(url)) as client:
            series = await client.raw_samples("probe_success", 0, 2000)
        with pytest.raises(PrometheusError, match=r'yields 2 series \(\{instance="a"\}'):
            one_series(series, "probe_success", "portal")

    def test_options_refuse_a_range_selector_and_mixed_auth(self) -> None:
        """slawatch adds the range itself; basic and bearer auth exclude each other."""
        with pytest.raises(ValueError, match="instant-vector selector"):
            PrometheusOptions.model_validate({"url": "http://p:9090", "selector": "up[5m]"})
        with pytest.raises(ValueError, match="either username/password or bearer_token"):
            options("http://p:9090", username="a", password={"env": "X"}, bearer_token={"env": "Y"})


class TestLiveFiller:
    async def test_fills_a_closed_bucket_from_samples(self, fake: tuple[Fake, str]) -> None:
        """A bucket's samples become its tally in the live state, marked for the flush."""
        server, url = fake
        values = [(1000 + i, "0" if i == 3 else "1") for i in range(-120, 10)]
        server.reply = (200, matrix(({"job": "bb"}, [(float(t), v) for t, v in values])))
        state = LiveState()
        measured = Measured("portal", options(url, scrape_interval="1s"), {10: (BucketRule(),)})
        filler = LiveFiller(lambda: None, state)  # type: ignore[arg-type,return-value]
        assert await filler.fill(measured, 10, 1000)
        await filler.close()
        tally = state.tallies(10)["portal"][1000]
        assert (tally.ok, tally.failed) == (9, 1)
        assert [key for key, _ in state.take_dirty()] == [(10, "portal", 1000)]

    async def test_unreachable_prometheus_retries_then_unknown(self) -> None:
        """Prometheus down: retries as configured, then the bucket has no tally and a reason."""
        closed = f"http://127.0.0.1:{free_port()}"
        state = LiveState()
        opts = options(closed, retries=2, retry_every="0.05s", timeout="1s")
        measured = Measured("portal", opts, {10: (BucketRule(),)})
        filler = LiveFiller(lambda: None, state)  # type: ignore[arg-type,return-value]
        started = asyncio.get_running_loop().time()
        assert not await filler.fill(measured, 10, 1000)
        await filler.close()
        assert asyncio.get_running_loop().time() - started >= 0.1
        assert "portal" not in state.tallies(10)
        reason = filler.unknown[("portal", 10, 1000)]
        assert reason.startswith("prometheus failed 3 times: prometheus http://127.0.0.1:")
        assert "cannot reach it" in reason


class _Hostile:
    """A server that answers every query with a zlib bomb sent gzip-encoded whatever it was
    asked (``bomb``), or with a body that never ends (``endless``)."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.sent = 0

    async def bomb(self, request: web.Request) -> web.Response:
        await request.post()
        self.asked.append(request.headers.get("Accept-Encoding", ""))
        return web.Response(body=_gzip_bomb(256 << 20), headers={"Content-Encoding": "gzip"})

    async def endless(self, request: web.Request) -> web.StreamResponse:
        await request.post()
        reply = web.StreamResponse(headers={"Content-Type": "application/json"})
        await reply.prepare(request)
        piece = b"[" * 65536
        try:
            while True:  # until the client hangs up
                await reply.write(piece)
                self.sent += len(piece)
        except (ConnectionError, RuntimeError):
            pass
        return reply


@functools.cache
def _gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes as a gzip stream (256 MB: about 250 KB)."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # a gzip stream
    zeros = bytes(1 << 20)
    return b"".join([packer.compress(zeros) for _ in range(size >> 20)]) + packer.flush()


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[_Hostile, str]]:
    server = _Hostile()
    app = web.Application()
    app.router.add_post("/bomb/api/v1/query", server.bomb)
    app.router.add_post("/endless/api/v1/query", server.endless)
    async with serving(app) as url:
        yield server, url


class TestBoundedAnswer:
    """hd34 (issue 20): an answer is read as sent and only up to what its range can need."""

    def test_the_bound_is_one_series_of_the_range(self) -> None:
        """A day of one series at ten samples a second fits; the bound grows with the range."""
        from monitor.promsource.client import most_answer_bytes

        day = most_answer_bytes(0, 86_400_000)
        sample = len('[1733222400.123,"0.30000000000000004"],')
        assert day >= 864_001 * sample
        assert most_answer_bytes(0, 1000) < day < most_answer_bytes(0, 2 * 86_400_000)

    async def test_a_compressed_bomb_is_refused_uninflated(
        self, hostile: tuple[_Hostile, str]
    ) -> None:
        """The client asks for the answer as is; a gzip answer (256 MB inflated) is refused
        naming its encoding, without inflating it (tracemalloc's peak stays far below)."""
        import tracemalloc

        server, url = hostile
        _gzip_bomb(256 << 20)  # made before counting
        tracemalloc.start()
        try:
            async with PrometheusClient(options(url + "/bomb")) as client:
                with pytest.raises(PrometheusError, match=r"got Content-Encoding 'gzip'$"):
                    await client.raw_samples("probe_success", 0, 86_400_000)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert server.asked == ["identity"]
        assert peak < 32 << 20, peak

    async def test_an_endless_answer_is_refused_at_the_bound(
        self, hostile: tuple[_Hostile, str]
    ) -> None:
        """A body that never ends is read up to the range's bound and refused (the test would
        time out if the client read on)."""
        from monitor.promsource.client import most_answer_bytes

        server, url = hostile
        most = most_answer_bytes(0, 60_000)
        async with PrometheusClient(options(url + "/endless")) as client:
            with pytest.raises(PrometheusError, match=f"answer longer than {most} bytes"):
                await client.raw_samples("probe_success", 0, 60_000)
        assert most < server.sent + (1 << 16)
