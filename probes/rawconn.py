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
import errno
import socket

from probes.tcp import Attempt, IpProtocol, resolve

_RECEIVE_SIZE = 64 * 1024
_NONBLOCKING_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
# A second connect() while the handshake is still on (EINTR: interrupted by a signal).
_CONNECTING = frozenset({errno.EALREADY, errno.EINPROGRESS, errno.EINTR})


class RawStream:
    """One connected non-blocking socket with a small read buffer (see the module)."""

    __slots__ = ("_buffer", "_eof", "_limit", "_loop", "_sock")

    def __init__(
        self, sock: socket.socket, limit: int, loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop() if loop is None else loop
        self._buffer = bytearray()
        self._limit = limit
        self._eof = False

    async def _fill(self) -> None:
        """Receive once more into the buffer; marks end of file on an empty receive."""
        chunk = await receive(self._loop, self._sock, _RECEIVE_SIZE)
        if chunk:
            self._buffer += chunk
        else:
            self._eof = True

    async def write(self, data: bytes) -> None:
        """Send all of ``data`` (the probe's request: one small write).

        One ``send`` first, as ``loop.sock_sendall`` starts (the same errors, raised from the
        same call), without its coroutine when the request went out whole, as it does in a
        fresh connection's empty send buffer; the rest, if any, is ``sock_sendall``'s to
        send (pp33, issue 20: every probe passes here)."""
        try:
            sent = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(data):
            await self._loop.sock_sendall(self._sock, data[sent:])

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
    # Non-blocking from its creation (SOCK_NONBLOCK: the socket's timeout is 0, as
    # ``setblocking(False)`` leaves it, without that call's ``ioctl``; pp33, issue 20).
    sock = socket.socket(family, _NONBLOCKING_STREAM)
    loop = asyncio.get_running_loop()
    try:
        # As asyncio's transports do: the request goes out in one segment without waiting.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await connect(loop, sock, address, port, family)
    except BaseException:
        sock.close()
        raise
    return RawStream(sock, limit, loop)


async def connect(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    address: str,
    port: int,
    family: int | None = None,
) -> None:
    """``loop.sock_connect(sock, (address, port))`` for an IP address, with the same errors
    (the same ``OSError`` and text), without its wait when the handshake completed inside
    ``connect()``. ``family``: the socket's, when the caller knows it (``sock.family``
    converts to an enum in Python).

    On loopback and within the host the kernel completes the TCP handshake inside the
    system call (measured: 2,000 of 2,000 connections to the bench's target server), yet a
    non-blocking ``connect()`` still answers ``EINPROGRESS``; asyncio then registers the
    socket for writing, creates a future and a done callback, and the probe waits one loop
    iteration for the writability it already has (issue 20, pp24). A second ``connect()``
    says so here (:func:`_connected`); otherwise the wait is asyncio's, on a writer callback.
    """
    if "%" in address:
        # A scoped IPv6 address (fe80::1%eth0): asyncio resolves it itself; keep its path.
        await loop.sock_connect(sock, (address, port))
        return
    if family is None:
        family = sock.family
    # The address as asyncio's sock_connect builds it (``_ipaddr_info``), so that an error's
    # text ("Connect call failed ('::1', 80, 0, 0)") is the same as before.
    target: tuple[str, int] | tuple[str, int, int, int] = (
        (address, port, 0, 0) if family == socket.AF_INET6 else (address, port)
    )
    try:
        sock.connect(target)
        return
    except (BlockingIOError, InterruptedError):
        pass
    if _connected(sock, target):
        return
    waiter: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()
    loop.add_writer(fd, _connect_ready, waiter, sock, target)
    try:
        await waiter
    finally:
        loop.remove_writer(fd)


def _connected(sock: socket.socket, target: tuple[object, ...]) -> bool:
    """Whether the handshake a non-blocking ``connect()`` began is over, raising its error
    as asyncio's ``_sock_connect_cb`` words it if it failed; False while it is still on.

    The same ``connect()`` again answers what a ``poll`` for writability and a read of
    ``SO_ERROR`` told before (pp24), in one system call instead of two and without a poll
    object (pp33, issue 20): 0 once established, ``EALREADY`` while the handshake is on, the
    connection's error (taken, as reading ``SO_ERROR`` takes it) once it failed."""
    err = sock.connect_ex(target)
    if err == 0 or err == errno.EISCONN:
        return True
    if err in _CONNECTING:
        return False
    raise OSError(err, f"Connect call failed {target}")


def _connect_result(sock: socket.socket, target: tuple[object, ...]) -> None:
    """Raise the connection's error as asyncio's ``_sock_connect_cb`` words it, if any."""
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err != 0:
        raise OSError(err, f"Connect call failed {target}")


def _connect_ready(
    waiter: asyncio.Future[None], sock: socket.socket, target: tuple[object, ...]
) -> None:
    if waiter.done():
        return
    try:
        _connect_result(sock, target)
    except (BlockingIOError, InterruptedError):
        return  # still connecting: the writer stays registered
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # as asyncio's callback: the probe gets it, not the loop
        waiter.set_exception(exc)
    else:
        waiter.set_result(None)


async def receive(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    """``loop.sock_recv(sock, size)`` with the reader removed in the readiness callback
    itself, rather than in a done callback one more ``call_soon`` later (issue 20, pp24)."""
    try:
        return sock.recv(size)
    except (BlockingIOError, InterruptedError):
        pass
    waiter: asyncio.Future[bytes] = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, _receive_ready, waiter, loop, fd, sock, size)
    try:
        return await waiter
    finally:
        if waiter.cancelled():  # a timeout: the callback never ran
            loop.remove_reader(fd)


def _receive_ready(
    waiter: asyncio.Future[bytes],
    loop: asyncio.AbstractEventLoop,
    fd: int,
    sock: socket.socket,
    size: int,
) -> None:
    if waiter.done():
        return
    try:
        data = sock.recv(size)
    except (BlockingIOError, InterruptedError):
        return  # a spurious wake-up: wait on
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # as asyncio's callback: the probe gets it, not the loop
        loop.remove_reader(fd)
        waiter.set_exception(exc)
    else:
        loop.remove_reader(fd)
        waiter.set_result(data)
