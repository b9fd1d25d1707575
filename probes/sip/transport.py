"""SIP transports: one connected UDP socket, or one TCP / TLS connection, per endpoint.

A probe talks to exactly one next hop, so a transport is bound to one remote address. UDP
sockets are *connected*: the kernel then reports ICMP port/host unreachable to us (as
``connection_refused`` / ``icmp_unreachable``) instead of the probe waiting out Timer F, and
only datagrams from the target reach the endpoint.

Received bytes are parsed here and handed to a ``TransportSink``: complete messages to
``message_received``; unparseable datagrams to ``garbage_received`` (the RFC says discard
them, the endpoint remembers them as evidence); a dead connection or an ICMP error to
``transport_failed``. Stream input is framed by Content-Length and a framing error
(oversized or malformed) closes the connection, since nothing after it can be trusted.

Public API:
  TransportError(reason, message)   reasons: connection_refused, icmp_unreachable,
      network_unreachable, tls_handshake_failed, connect_timeout, connection_reset,
      connection_closed, resolve_failed, malformed_response, message_too_large, send_failed
  TransportSink (protocol), Target (frozen: transport, host, port, bind_host, bind_port,
      ssl_context, server_hostname, connect_timeout)
  async open_transport(target, sink) -> Transport
  Transport: name ("udp"|"tcp"|"tls"), reliable, local (host, port), remote, ssl_object,
      send(bytes), close()
  tls_details(transport) -> {tls_version, certificate_expiry_timestamp}
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
from dataclasses import dataclass
from typing import Literal, Protocol

import structlog

from probes.sip.message import (
    MAX_MESSAGE_BYTES,
    ParseError,
    SipMessage,
    StreamFramer,
    parse_message,
)
from probes.tls import peer_certificate_expiry, tls_version_name

log = structlog.get_logger(__name__)

TransportName = Literal["udp", "tcp", "tls"]
_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux value


class TransportError(Exception):
    """Raised by ``open_transport``/``send`` and passed to ``transport_failed``.

    ``reason`` is a probe reason token (``connection_refused``, ``tls_handshake_failed``...).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TransportSink(Protocol):
    """Who receives what a transport reads (the endpoint)."""

    def message_received(self, message: SipMessage, raw: bytes) -> None: ...

    def garbage_received(self, error: ParseError, raw: bytes) -> None: ...

    def transport_failed(self, error: TransportError) -> None: ...


@dataclass(frozen=True)
class Target:
    """Where to connect and from where; ``ssl_context`` only for ``tls``."""

    transport: TransportName
    host: str
    port: int
    bind_host: str = "0.0.0.0"
    bind_port: int = 0
    ssl_context: ssl.SSLContext | None = None
    server_hostname: str | None = None
    connect_timeout: float = 5.0


def error_reason(exc: BaseException) -> str:
    """The reason token for an OS-level error (refused, unreachable, reset...)."""
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "tls_handshake_failed"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection_reset"
    if isinstance(exc, socket.gaierror):
        return "resolve_failed"
    if isinstance(exc, TimeoutError):
        return "connect_timeout"
    if isinstance(exc, OSError):
        if exc.errno in (errno.EHOSTUNREACH, errno.EHOSTDOWN):
            return "icmp_unreachable"
        if exc.errno == errno.ENETUNREACH:
            return "network_unreachable"
        if exc.errno == errno.ECONNREFUSED:
            return "connection_refused"
    return "send_failed"


class Transport:
    """Common face of the three transports."""

    name: TransportName
    reliable: bool
    local: tuple[str, int]
    remote: tuple[str, int]

    ssl_object: ssl.SSLObject | None = None

    def send(self, data: bytes) -> None:
        raise TransportError("send_failed", f"{type(self).__name__} cannot send")

    async def close(self) -> None:
        return None


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, sink: TransportSink) -> None:
        self.sink = sink

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            message = parse_message(data)
        except ParseError as exc:
            self.sink.garbage_received(exc, data)
            return
        self.sink.message_received(message, data)

    def error_received(self, exc: Exception) -> None:
        reason = error_reason(exc)
        self.sink.transport_failed(TransportError(reason, f"UDP socket error: {exc}"))


class UdpTransport(Transport):
    def __init__(self, transport: asyncio.DatagramTransport, remote: tuple[str, int]) -> None:
        self.name = "udp"
        self.reliable = False
        self._transport = transport
        sockname = transport.get_extra_info("sockname")
        self.local = (str(sockname[0]), int(sockname[1]))
        self.remote = remote

    def send(self, data: bytes) -> None:
        if len(data) > MAX_MESSAGE_BYTES:
            raise TransportError("send_failed", f"{len(data)}-byte message too large for UDP")
        if self._transport.is_closing():
            raise TransportError("connection_closed", "UDP socket already closed")
        self._transport.sendto(data)

    async def close(self) -> None:
        self._transport.close()


class StreamTransport(Transport):
    """TCP or TLS: a reader task frames messages by Content-Length."""

    def __init__(
        self,
        name: TransportName,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        sink: TransportSink,
    ) -> None:
        self.name = name
        self.reliable = True
        self._writer = writer
        sockname = writer.get_extra_info("sockname")
        peername = writer.get_extra_info("peername")
        self.local = (str(sockname[0]), int(sockname[1]))
        self.remote = (str(peername[0]), int(peername[1]))
        self.ssl_object = writer.get_extra_info("ssl_object")
        self._sink = sink
        self._closing = False
        self._task = asyncio.create_task(self._read(reader), name=f"sip-{name}-reader")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        framer = StreamFramer()
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    if not self._closing:
                        self._sink.transport_failed(
                            TransportError("connection_closed", "peer closed the connection")
                        )
                    return
                for raw in framer.feed(chunk):
                    try:
                        message = parse_message(raw)
                    except ParseError as exc:
                        self._fail_framing(exc)
                        return
                    self._sink.message_received(message, raw)
        except ParseError as exc:
            self._fail_framing(exc)
        except (OSError, ssl.SSLError) as exc:
            if not self._closing:
                reason = error_reason(exc)
                self._sink.transport_failed(TransportError(reason, f"read failed: {exc}"))

    def _fail_framing(self, exc: ParseError) -> None:
        reason = "message_too_large" if exc.reason == "too_large" else "malformed_response"
        self._sink.transport_failed(TransportError(reason, str(exc)))
        self._closing = True
        self._writer.close()

    def send(self, data: bytes) -> None:
        if self._closing or self._writer.is_closing():
            raise TransportError("connection_closed", f"{self.name} connection already closed")
        self._writer.write(data)

    async def close(self) -> None:
        self._closing = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)


async def open_transport(target: Target, sink: TransportSink) -> Transport:
    """Connect to ``target``; raises ``TransportError`` with the reason token on failure."""
    loop = asyncio.get_running_loop()
    if target.transport == "udp":
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(sink),
                local_addr=(target.bind_host, target.bind_port),
                remote_addr=(target.host, target.port),
                family=_family(target.host),
            )
        except OSError as exc:
            raise TransportError(
                error_reason(exc), f"cannot open UDP to {target.host}:{target.port}: {exc}"
            ) from exc
        peer = transport.get_extra_info("peername")
        return UdpTransport(transport, (str(peer[0]), int(peer[1])))
    ssl_context = target.ssl_context if target.transport == "tls" else None
    if target.transport == "tls" and ssl_context is None:
        raise TransportError("tls_handshake_failed", "TLS transport needs an SSL context")
    where = f"{target.transport} to {target.host}:{target.port}"
    try:
        sock = await asyncio.wait_for(_connect_stream(target), target.connect_timeout)
    except (OSError, TimeoutError) as exc:
        raise TransportError(error_reason(exc), f"cannot connect {where}: {exc}") from exc
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                sock=sock,
                ssl=ssl_context,
                server_hostname=(target.server_hostname or target.host) if ssl_context else None,
                limit=MAX_MESSAGE_BYTES,
            ),
            target.connect_timeout,
        )
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        sock.close()
        # TCP is up, so whatever failed now failed in the TLS handshake.
        raise TransportError("tls_handshake_failed", f"TLS handshake {where}: {exc!r}") from exc
    return StreamTransport(target.transport, reader, writer, sink)


async def _connect_stream(target: Target) -> socket.socket:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        target.host, target.port, family=_family(target.host), type=socket.SOCK_STREAM
    )
    family, _, proto, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM, proto)
    try:
        sock.setblocking(False)
        if target.bind_port == 0 and family == socket.AF_INET:
            # Defer the ephemeral port choice to connect(): bind(port 0) scans for a port
            # free for *any* peer and costs milliseconds once TIME_WAIT sockets pile up.
            sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((target.bind_host, target.bind_port))
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


def tls_details(transport: Transport) -> dict[str, str | float]:
    """The negotiated TLS version and the peer chain's earliest expiry (as the tcp/http probes
    report them); empty for UDP and TCP."""
    if transport.ssl_object is None:
        return {}
    details: dict[str, str | float] = {"tls_version": tls_version_name(transport.ssl_object)}
    expiry = peer_certificate_expiry(transport.ssl_object)
    if expiry is not None:
        details["certificate_expiry_timestamp"] = expiry
    return details


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_UNSPEC
