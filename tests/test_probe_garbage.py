"""A probe leaves no reference cycle behind (issue 20: CPU per probe and scheduling lag).

asyncio's socket transport holds a bound method of itself; before ``probes.tcp.drop`` broke
that cycle every connection (the transport, its dict, the method, the socket and its wrapper)
waited for the cyclic collector, whose young collections then cost 40-70 ms of CPU each on the
event loop at 10,000 targets. Loopback servers, bound to port 0.
"""

from __future__ import annotations

import asyncio
import gc
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from probes.http import HttpOptions, probe
from probes.result import Outcome, ProbeContext
from probes.tcp import TcpOptions, drop
from probes.tcp import probe as tcp_probe
from tests.test_probe_http import _make_cert

pytestmark = pytest.mark.timeout(60)

REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(REPLY)
    await writer.drain()
    writer.close()


@pytest.fixture
async def server() -> AsyncIterator[int]:
    """A loopback HTTP server answering every request with 200 and closing."""
    listener = await asyncio.start_server(_answer, "127.0.0.1", 0)
    async with listener:
        yield listener.sockets[0].getsockname()[1]


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    """The same over TLS (a self-signed certificate for 127.0.0.1): (port, certificate)."""
    cert, key = _make_cert(tmp_path, "server", 2)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = await asyncio.start_server(_answer, "127.0.0.1", 0, ssl=context)
    async with listener:
        yield listener.sockets[0].getsockname()[1], cert


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """gc.garbage filled with every unreachable object the collector finds (DEBUG_SAVEALL)."""
    gc.collect()
    gc.garbage.clear()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def transports(garbage: list[object], port: int) -> int:
    """The probes' transports in ``garbage``: those whose peer is the server (the server's
    own transports, in this process too, are not the probe's)."""
    return sum(
        1
        for obj in garbage
        if isinstance(obj, asyncio.Transport)
        and (obj.get_extra_info("peername") or ("", 0))[1] == port
    )


class TestNoCycles:
    async def test_http_probe_leaves_no_cyclic_garbage(
        self, server: int, saved_garbage: list[object]
    ) -> None:
        """50 successful HTTP probes leave no transport for the cyclic collector."""
        options = HttpOptions.model_validate({"url": f"http://127.0.0.1:{server}/t/x"})
        for _ in range(50):
            result = await probe(options, ProbeContext.starting_now("web", 5.0))
            assert result.outcome is Outcome.UP, result.reason
        await asyncio.sleep(0.05)  # the transports' connection_lost callbacks run
        gc.collect()
        assert transports(saved_garbage, server) == 0

    async def test_https_probe_leaves_no_cyclic_garbage(
        self, tls_server: tuple[int, Path], saved_garbage: list[object]
    ) -> None:
        """Over TLS the socket transport under the TLS one is freed the same way."""
        port, cert = tls_server
        options = HttpOptions.model_validate(
            {"url": f"https://127.0.0.1:{port}/", "tls": {"ca_file": str(cert)}}
        )
        for _ in range(20):
            result = await probe(options, ProbeContext.starting_now("web", 5.0))
            assert result.outcome is Outcome.UP, result.reason
        await asyncio.sleep(0.05)
        gc.collect()
        assert transports(saved_garbage, port) == 0

    async def test_tcp_probe_leaves_no_cyclic_garbage(
        self, server: int, saved_garbage: list[object]
    ) -> None:
        """50 tcp connects leave no transport for the cyclic collector."""
        options = TcpOptions.model_validate({"host": "127.0.0.1", "port": server})
        for _ in range(50):
            result = await tcp_probe(options, ProbeContext.starting_now("tcp", 5.0))
            assert result.outcome is Outcome.UP, result.reason
        await asyncio.sleep(0.05)
        gc.collect()
        assert transports(saved_garbage, server) == 0

    async def test_read_callback_queued_after_drop_is_harmless(self, server: int) -> None:
        """A read callback the loop already queued when the probe dropped the connection
        runs without error (the transport's read callback is a no-op once dropped)."""
        reader, writer = await asyncio.open_connection("127.0.0.1", server)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.read(1)
        transport = writer.transport
        drop(writer)
        transport._read_ready()  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)
        assert transport.is_closing()
