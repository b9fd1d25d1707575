"""The plain HTTP probe's connection without a transport (issue 20, probes/rawconn.py).

``RawStream`` stands in for ``asyncio.StreamReader`` on plain HTTP, so it must read exactly as
the stream reader does: the same bytes, the same ``LimitOverrunError`` for a separator beyond
the limit and the same ``IncompleteReadError`` (with the same partial data) at end of file.
Hostile answers then fail a probe with the same reason over either path. Loopback only.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from probes.http import HttpOptions, probe
from probes.rawconn import RawStream
from probes.result import Outcome, ProbeContext

pytestmark = pytest.mark.timeout(120)

Op = tuple[str, int | bytes]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(min_value=1, max_value=200)),
        st.tuples(st.just("readexactly"), st.integers(min_value=0, max_value=200)),
        st.tuples(st.just("readuntil"), st.sampled_from([b"\n", b"\r\n", b"\r\n\r\n"])),
    ),
    max_size=12,
)
answers = st.lists(st.sampled_from([b"a", b"bc", b"\r", b"\n", b"\r\n", b"\r\n\r\n"]), max_size=200)


async def _apply(reader: asyncio.StreamReader | RawStream, ops: list[Op]) -> list[object]:
    """What each operation returned, up to and including the first error."""
    seen: list[object] = []
    for name, argument in ops:
        try:
            if name == "read":
                assert isinstance(argument, int)
                seen.append(await reader.read(argument))
            elif name == "readexactly":
                assert isinstance(argument, int)
                seen.append(await reader.readexactly(argument))
            else:
                assert isinstance(argument, bytes)
                seen.append(await reader.readuntil(argument))
        except asyncio.IncompleteReadError as exc:
            seen.append(("incomplete", exc.partial, exc.expected))
            break
        except asyncio.LimitOverrunError as exc:
            seen.append(("limit", exc.consumed))
            break
    return seen


async def _both(data: bytes, limit: int, ops: list[Op]) -> tuple[list[object], list[object]]:
    reference = asyncio.StreamReader(limit=limit)
    reference.feed_data(data)
    reference.feed_eof()
    expected = await _apply(reference, ops)
    ours, peer = socket.socketpair()
    try:
        peer.sendall(data)
        peer.shutdown(socket.SHUT_WR)
        ours.setblocking(False)
        stream = RawStream(ours, limit)
        got = await _apply(stream, ops)
    finally:
        ours.close()
        peer.close()
    return expected, got


class TestLikeStreamReader:
    """RawStream reads as asyncio.StreamReader does."""

    @settings(max_examples=150, deadline=None)
    @given(parts=answers, limit=st.integers(min_value=1, max_value=40), ops=operations)
    # The limit's two edges: a separator ending exactly at the limit is read; end of file
    # with exactly ``limit`` bytes scanned is incomplete, not over the limit.
    @example(parts=[b"a"] * 5 + [b"\n"], limit=5, ops=[("readuntil", b"\n")])
    @example(parts=[b"a"] * 5, limit=5, ops=[("readuntil", b"\n")])
    @example(parts=[b"a"] * 6, limit=5, ops=[("readuntil", b"\r\n")])
    def test_same_bytes_and_errors(self, parts: list[bytes], limit: int, ops: list[Op]) -> None:
        """Any answer, any limit, any sequence of reads: the same results and the same first
        error (type, partial data, position) as the stream reader over the same bytes."""
        expected, got = asyncio.run(_both(b"".join(parts), limit, ops))
        assert got == expected

    async def test_answer_in_pieces(self) -> None:
        """A head arriving in several segments is read whole, the limit still applied."""
        ours, peer = socket.socketpair()
        ours.setblocking(False)
        stream = RawStream(ours, 64)
        try:

            async def send() -> None:
                for piece in (b"HTTP/1.1 200 OK\r\n", b"A: b\r\n", b"\r\n", b"ok"):
                    await asyncio.sleep(0.01)
                    peer.sendall(piece)
                peer.shutdown(socket.SHUT_WR)

            sender = asyncio.create_task(send())
            assert await stream.readuntil(b"\r\n\r\n") == b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n"
            assert await stream.readexactly(2) == b"ok"
            assert await stream.read(10) == b""
            await sender
        finally:
            ours.close()
            peer.close()


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    await writer.drain()
    writer.close()


@pytest.fixture
async def server() -> AsyncIterator[int]:
    """A loopback HTTP server answering every request with 200 and closing."""
    listener = await asyncio.start_server(_answer, "127.0.0.1", 0)
    async with listener:
        yield listener.sockets[0].getsockname()[1]


@pytest.fixture
def saved_garbage() -> Iterator[list[object]]:
    """gc.garbage filled with every unreachable object the collector finds."""
    gc.collect()
    gc.garbage.clear()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


class TestPlainProbe:
    """The plain HTTP probe over RawStream."""

    async def test_no_cyclic_garbage(self, server: int, saved_garbage: list[object]) -> None:
        """50 plain probes leave no RawStream for the cyclic collector."""
        options = HttpOptions.model_validate({"url": f"http://127.0.0.1:{server}/t/x"})
        for _ in range(50):
            result = await probe(options, ProbeContext.starting_now("web", 5.0))
            assert result.outcome is Outcome.UP, result.reason
        gc.collect()
        assert not [obj for obj in saved_garbage if isinstance(obj, RawStream)]

    async def test_phases_and_address(self, server: int) -> None:
        """The result names its address and times connect and first byte, as before."""
        options = HttpOptions.model_validate({"url": f"http://127.0.0.1:{server}/"})
        result = await probe(options, ProbeContext.starting_now("web", 5.0))
        assert result.outcome is Outcome.UP
        assert result.details["ip_address"] == "127.0.0.1"
        assert result.details["status_code"] == 200
        assert {"resolve", "connect", "first_byte", "transfer"} <= set(result.phases)

    async def test_refused_names_the_reason(self) -> None:
        """A closed port is ``connection_refused``, the socket closed."""
        with socket.socket() as spare:
            spare.bind(("127.0.0.1", 0))
            port = spare.getsockname()[1]
        options = HttpOptions.model_validate({"url": f"http://127.0.0.1:{port}/"})
        result = await probe(options, ProbeContext.starting_now("web", 5.0))
        assert (result.outcome, result.reason) == (Outcome.DOWN, "connection_refused")
