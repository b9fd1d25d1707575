"""A plain (no TLS) probe connection on the event loop's socket calls, without a transport.

asyncio's streams cost a plain HTTP probe about a third of its CPU beyond the kernel's own
work: a transport, a protocol, a stream reader and writer, a waiter future and several
``call_soon`` hops per connection (issue 20, measured against the bench's target server:
about 490 us of CPU per request through ``asyncio.open_connection`` and 320 us through
``loop.sock_connect`` / ``sock_sendall`` / ``sock_recv``). Every hop is also one more loop
iteration between the timer and the request's arrival at the target.

:class:`RawStream` keeps the subset of ``asyncio.StreamReader`` the HTTP probe reads with,
with the same limits and errors (``LimitOverrunError`` when a separator is not within
``limit`` bytes, ``IncompleteReadError`` carrying the partial data at end of file), so a
hostile answer fails the probe with the same reason either way. It reads only when the
caller asks: nothing is buffered beyond ``limit`` plus one receive.
"""

from __future__ import annotations

import asyncio
import socket

from probes.tcp import Attempt, IpProtocol, resolve

_RECEIVE_SIZE = 64 * 1024


class RawStream:
    """One connected non-blocking socket with a small read buffer (see the module)."""

    __slots__ = ("_buffer", "_eof", "_limit", "_loop", "_sock")

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._limit = limit
        self._eof = False

    async def _fill(self) -> None:
        """Receive once more into the buffer; marks end of file on an empty receive."""
        chunk = await self._loop.sock_recv(self._sock, _RECEIVE_SIZE)
        if chunk:
            self._buffer += chunk
        else:
            self._eof = True

    async def write(self, data: bytes) -> None:
        """Send all of ``data`` (the probe's request: one small write)."""
        await self._loop.sock_sendall(self._sock, data)

    async def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; ``b""`` at end of file."""
        if not self._buffer and not self._eof:
            await self._fill()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or ``IncompleteReadError`` with what came before the end."""
        while len(self._buffer) < n:
            if self._eof:
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise asyncio.IncompleteReadError(partial, n)
            await self._fill()
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        return data

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Up to and including ``separator``, as ``asyncio.StreamReader.readuntil``: the
        separator must end within ``limit`` bytes (``LimitOverrunError`` otherwise, the data
        left in the buffer), and end of file before it is ``IncompleteReadError``."""
        width = len(separator)
        offset = 0
        while True:
            found = self._buffer.find(separator, offset)
            if found >= 0:
                if found > self._limit:
                    raise asyncio.LimitOverrunError(
                        "Separator is found, but chunk is longer than limit", found
                    )
                end = found + width
                data = bytes(self._buffer[:end])
                del self._buffer[:end]
                return data
            offset = max(0, len(self._buffer) + 1 - width)
            if offset > self._limit:
                raise asyncio.LimitOverrunError(
                    "Separator is not found, and chunk exceed the limit", offset
                )
            if self._eof:
                partial = bytes(self._buffer)
                self._buffer.clear()
                raise asyncio.IncompleteReadError(partial, None)
            await self._fill()

    def close(self) -> None:
        """Close at once: nothing more is read or sent on a probe's connection."""
        self._sock.close()


async def open_raw(
    attempt: Attempt,
    host: str,
    port: int,
    *,
    preferred: IpProtocol,
    fallback: bool,
    limit: int,
) -> RawStream:
    """A new plain connection (resolve, connect), phases recorded as ``open_stream`` does."""
    attempt.enter("resolve")
    address = await resolve(host, port, preferred, fallback)
    attempt.details["ip_address"] = address
    attempt.enter("connect")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        # As asyncio's transports do: the request goes out in one segment without waiting.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
    except BaseException:
        sock.close()
        raise
    return RawStream(sock, limit)
