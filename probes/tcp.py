"""The ``tcp`` probe, and the connection plumbing the ``http`` probe shares with it.

One attempt, one fresh connection, no retries (an availability check that retries hides the
outages it exists to count). Every failure is classified into a short reason token; a
timeout names the phase it hit, because "timed out connecting" and "timed out waiting for
the answer" are different complaints to a vendor.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import functools
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

import structlog
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from probes.fields import SecretUnavailable, checked_regex
from probes.result import DetailValue, Outcome, ProbeContext, ProbeResult
from probes.tls import (
    TlsConfigError,
    TlsOptions,
    client_context,
    peer_certificate_expiry,
    tls_version_name,
)

IpProtocol = Literal["ip4", "ip6", "any"]

_LINE_LIMIT = 64 * 1024
_RESOLVER_THREADS = 32
_log = structlog.get_logger(__name__)
_MAX_DETAIL_CHARS = 200


class ProbeDown(Exception):
    """Raised inside a probe when the endpoint failed: the probe result is ``down`` with
    ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Attempt:
    """Phase stopwatch and evidence collected while one probe runs.

    Phases accumulate, so a redirected HTTP request reports the sum over its hops.
    ``expired``: the probe's own deadline passed (``run_guarded``'s timer cancelled it).
    """

    __slots__ = ("_mark", "details", "expired", "phase", "phases")

    def __init__(self) -> None:
        self.phase = "setup"
        self.phases: dict[str, float] = {}
        self.details: dict[str, DetailValue] = {}
        self.expired = False
        self._mark = time.monotonic()

    # ``enter`` and ``stop`` close the running phase inline, not through a shared method:
    # six of a plain HTTP probe's Python calls (pp33, issue 20).
    def enter(self, phase: str) -> None:
        now = time.monotonic()
        current = self.phase
        if current != "setup" and current != "done":
            phases = self.phases
            phases[current] = phases.get(current, 0.0) + (now - self._mark)
        self.phase = phase
        self._mark = now

    def stop(self) -> None:
        """End the current phase without starting another (time between phases is not
        attributed to either)."""
        current = self.phase
        if current != "setup" and current != "done":
            phases = self.phases
            phases[current] = phases.get(current, 0.0) + (time.monotonic() - self._mark)
        self.phase = "done"


def own_deadline(ctx: ProbeContext) -> float:
    """Slightly before the runner's deadline, so the probe names the phase that timed out
    before the runner's cancellation can only say ``timeout``."""
    return ctx.deadline - min(0.05, ctx.timeout_seconds * 0.05)


async def run_guarded(ctx: ProbeContext, body: Callable[[Attempt], Awaitable[None]]) -> ProbeResult:
    """Run ``body`` under the probe's deadline and turn how it ended into a result."""
    attempt = Attempt()
    outcome = Outcome.UP
    reason = ""
    try:
        await _within(own_deadline(ctx), attempt, body)
    except TimeoutError:
        outcome, reason = Outcome.TIMEOUT, f"timeout_{attempt.phase}"
    except ProbeDown as down:
        outcome, reason = Outcome.DOWN, down.reason
    except ssl.SSLCertVerificationError as exc:
        outcome, reason = Outcome.DOWN, "tls_certificate_invalid"
        attempt.details["error"] = _short(exc.verify_message or str(exc))
    except ssl.SSLError as exc:
        outcome = Outcome.DOWN
        reason = "tls_handshake_failed" if attempt.phase == "tls" else "tls_error"
        attempt.details["error"] = _short(exc.reason or str(exc))
    except SecretUnavailable as exc:
        outcome, reason = Outcome.ERROR, "secret_unavailable"
        attempt.details["error"] = _short(str(exc))
    except TlsConfigError as exc:
        outcome, reason = Outcome.ERROR, "tls_config_error"
        attempt.details["error"] = _short(str(exc))
    except OSError as exc:
        reason = os_error_reason(exc)
        # Out of descriptors, buffers or local ports: the monitor's host failed, not the vendor.
        outcome = Outcome.ERROR if reason.startswith("local_") else Outcome.DOWN
        attempt.details["error"] = _short(str(exc))
    except Exception as exc:
        # A bug or a local resource problem, not evidence against the vendor; the traceback
        # is logged here because the result only carries the exception's type.
        outcome, reason = Outcome.ERROR, type(exc).__name__
        attempt.details["error"] = _short(str(exc))
        _log.exception("probe_unexpected_exception", target=ctx.target, phase=attempt.phase)
    attempt.stop()
    return ctx.result(outcome, reason, phases=attempt.phases, details=attempt.details)


async def _within(
    when: float, attempt: Attempt, body: Callable[[Attempt], Awaitable[None]]
) -> None:
    """``async with asyncio.timeout_at(when): await body(attempt)``, step for step (the same
    timer, the same cancel, ``uncancel`` and ``TimeoutError``), without the ``Timeout``
    object and its two coroutines (pp33, issue 20: every probe passes here; the
    per-phase timeout tests in tests/test_probe_http.py and tests/test_probe_tcp.py hold
    the reasons)."""
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("Timeout should be used inside a task")
    loop = task.get_loop()
    cancelling = task.cancelling()
    if when <= loop.time():
        handle: asyncio.Handle = loop.call_soon(_expire, attempt, task)
    else:
        handle = loop.call_at(when, _expire, attempt, task)
    try:
        await body(attempt)
    except BaseException as exc:
        handle.cancel()
        # As Timeout.__aexit__: the timer's cancel is taken back whenever it fired, and the
        # cancellation becomes TimeoutError only when no other cancel was asked meanwhile.
        if (
            attempt.expired
            and task.uncancel() <= cancelling
            and type(exc) is asyncio.CancelledError
        ):
            raise TimeoutError from exc
        raise
    handle.cancel()
    if attempt.expired:
        task.uncancel()


def _expire(attempt: Attempt, task: asyncio.Task[object]) -> None:
    """The probe's own deadline (``Timeout._on_timeout``): cancel its task."""
    task.cancel()
    attempt.expired = True


def _short(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL_CHARS else text[:_MAX_DETAIL_CHARS] + "..."


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection_refused",
    errno.ECONNRESET: "connection_reset",
    errno.ECONNABORTED: "connection_aborted",
    errno.EPIPE: "connection_reset",
    errno.ENETUNREACH: "network_unreachable",
    errno.EHOSTUNREACH: "host_unreachable",
}
_LOCAL_ERRNOS = frozenset(
    {
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOBUFS,
        errno.ENOMEM,
        errno.EADDRNOTAVAIL,  # on connect: no free local port
        errno.EADDRINUSE,
        errno.EACCES,  # a local firewall or policy refused the socket
        errno.EPERM,
    }
)


def os_error_reason(exc: OSError) -> str:
    """Reason token for a socket-level failure; ``local_*`` for a failure of this host."""
    if exc.errno in _ERRNO_REASONS:
        return _ERRNO_REASONS[exc.errno]
    name = errno.errorcode.get(exc.errno or 0)
    if exc.errno in _LOCAL_ERRNOS and name:
        return f"local_{name.lower()}"
    return f"socket_{name.lower()}" if name else "socket_error"


_GAI_REASONS = {
    socket.EAI_NONAME: "dns_nxdomain",
    socket.EAI_AGAIN: "dns_temporary_failure",
    socket.EAI_FAIL: "dns_servfail",
}
if hasattr(socket, "EAI_NODATA"):
    _GAI_REASONS[socket.EAI_NODATA] = "dns_no_address"


@functools.cache
def _resolver_pool() -> concurrent.futures.ThreadPoolExecutor:
    # getaddrinfo blocks a thread for a whole lookup. asyncio's default pool has cores + 4
    # threads, so 333 lookups/s at a few tens of milliseconds each would queue behind one
    # another and behind whatever else uses that pool. A pool of our own keeps name lookups
    # from delaying (or being delayed by) the store and the rest of the daemon.
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=_RESOLVER_THREADS, thread_name_prefix="slawatch-resolve"
    )


async def resolve(host: str, port: int, preferred: IpProtocol, fallback: bool) -> str:
    """One IP address for ``host``, honouring the family preference.

    An IP literal is used as written. Raises ``ProbeDown`` when the name does not resolve or
    has no address of an acceptable family.
    """
    if _is_ip(host):
        return host
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.run_in_executor(
            _resolver_pool(),
            functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM),
        )
    except socket.gaierror as exc:
        raise ProbeDown(_GAI_REASONS.get(exc.errno or 0, "dns_error")) from exc
    addresses = [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in infos]
    if not addresses:
        raise ProbeDown("dns_no_address")
    if preferred == "any":
        return addresses[0][1]
    wanted = socket.AF_INET if preferred == "ip4" else socket.AF_INET6
    for family, address in addresses:
        if family == wanted:
            return address
    if fallback:
        return addresses[0][1]
    raise ProbeDown(f"dns_no_{preferred}_address")


def drop(writer: asyncio.StreamWriter) -> None:
    """Close the connection at once (no lingering close handshake) and keep asyncio quiet.

    When a connection dies with an error, asyncio stores that error in the stream protocol's
    private close future. If the error's traceback ties that future into a reference cycle,
    the garbage collector may free the future first and asyncio then logs "Future exception
    was never retrieved" for a failure the probe has already reported. Observing the future
    stops that. It is private API, so a missing attribute is simply skipped.
    """
    transport = writer.transport
    # Over TLS the socket transport is under the TLS protocol's (read before abort clears it).
    inner = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
    transport.abort()
    closed = getattr(getattr(writer, "_protocol", None), "_closed", None)
    if isinstance(closed, asyncio.Future):
        closed.add_done_callback(_observe)
    # asyncio's socket transport keeps a bound method of itself (``_read_ready_cb``): every
    # connection was a reference cycle (transport, its dict, the method, the socket and its
    # wrapper) that only the cyclic collector could free, 333 a second at 10,000 targets:
    # young collections of 40-70 ms of CPU on the event loop (issue 20). The reader is
    # removed by ``abort``; a read callback already queued in this loop iteration finds a
    # function that does nothing. Private API: skipped where the attribute does not exist.
    for socket_transport in (transport, inner):
        if socket_transport is not None and hasattr(socket_transport, "_read_ready_cb"):
            socket_transport._read_ready_cb = _nothing


def _nothing() -> None:
    """Stands in for an aborted transport's read callback (see ``drop``)."""


def _observe(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


async def open_stream(
    attempt: Attempt,
    host: str,
    port: int,
    *,
    preferred: IpProtocol,
    fallback: bool,
    tls: ssl.SSLContext | None,
    server_name: str,
    limit: int = _LINE_LIMIT,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A new connection (resolve, connect, optional TLS handshake), phases recorded."""
    attempt.enter("resolve")
    address = await resolve(host, port, preferred, fallback)
    attempt.details["ip_address"] = address
    attempt.enter("connect")
    reader, writer = await asyncio.open_connection(address, port, limit=limit)
    if tls is None:
        return reader, writer
    attempt.enter("tls")
    try:
        await writer.start_tls(tls, server_hostname=server_name)
    except BaseException:
        drop(writer)
        raise
    ssl_object = writer.get_extra_info("ssl_object")
    attempt.details["tls_version"] = tls_version_name(ssl_object)
    expiry = peer_certificate_expiry(ssl_object)
    if expiry is not None:
        attempt.details["certificate_expiry_timestamp"] = expiry
    return reader, writer


# --- the tcp probe -------------------------------------------------------------------------


class QueryStep(BaseModel):
    """One step of a line dialogue: wait for a line matching ``expect``, then write ``send``.

    ``send`` is written exactly as given: include the line ending (``"QUIT\\r\\n"``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    expect: str | None = None
    send: str | None = None

    @field_validator("expect")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            checked_regex(value, over_bytes=True)  # as patterns() compiles it: over bytes
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QueryStep:
        if self.expect is None and self.send is None:
            raise ValueError("a query_response step needs 'expect' (a regexp), 'send', or both")
        return self


class TcpOptions(BaseModel):
    """Options of a ``tcp`` target (the ``tcp:`` block)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    preferred_ip_protocol: IpProtocol = "any"
    ip_protocol_fallback: bool = True
    tls: TlsOptions | None = None
    query_response: tuple[QueryStep, ...] = ()

    _patterns: tuple[re.Pattern[bytes] | None, ...] | None = PrivateAttr(default=None)

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        value = value.strip("[]")
        if any(c in value for c in " /\t\r\n") or (":" in value and not _is_ip(value)):
            raise ValueError(f"expected a host name or IP address without port, got {value!r}")
        return value

    def patterns(self) -> tuple[re.Pattern[bytes] | None, ...]:
        """Compiled ``expect`` patterns, built once per options object."""
        # Through the private-attribute dict: pydantic's ``__getattr__`` costs ~12 us a call.
        private = self.__pydantic_private__
        patterns = private.get("_patterns") if private is not None else None
        if patterns is None:
            patterns = self._patterns = tuple(
                re.compile(step.expect.encode()) if step.expect is not None else None
                for step in self.query_response
            )
        return patterns


@functools.lru_cache(maxsize=65536)
def _is_ip(value: str) -> bool:
    # Cached: parsing the literal again on every probe is measurable at 10,000 targets.
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


async def probe(options: TcpOptions, ctx: ProbeContext) -> ProbeResult:
    """Connect (and optionally complete a TLS handshake and a send/expect dialogue)."""

    async def body(attempt: Attempt) -> None:
        if options.tls is None:
            # Plain TCP on the loop's socket calls, as the plain HTTP probe (issue 20).
            from probes.rawconn import open_raw  # it builds on this module

            stream = await open_raw(
                attempt,
                options.host,
                options.port,
                preferred=options.preferred_ip_protocol,
                fallback=options.ip_protocol_fallback,
                limit=_LINE_LIMIT,
            )
            try:
                if options.query_response:
                    attempt.enter("query_response")
                    await _dialogue(stream, stream.write, options, attempt)
            finally:
                stream.close()
            return
        context = client_context(options.tls)
        server_name = options.tls.server_name or options.host
        reader, writer = await open_stream(
            attempt,
            options.host,
            options.port,
            preferred=options.preferred_ip_protocol,
            fallback=options.ip_protocol_fallback,
            tls=context,
            server_name=server_name,
        )

        async def send(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        try:
            if options.query_response:
                attempt.enter("query_response")
                await _dialogue(reader, send, options, attempt)
        finally:
            drop(writer)

    return await run_guarded(ctx, body)


class _LineReader(Protocol):
    """``asyncio.StreamReader`` (TLS) or ``probes.rawconn.RawStream`` (plain)."""

    async def readuntil(self, separator: bytes = ...) -> bytes: ...


async def _dialogue(
    reader: _LineReader,
    send: Callable[[bytes], Awaitable[None]],
    options: TcpOptions,
    attempt: Attempt,
) -> None:
    for index, (step, pattern) in enumerate(
        zip(options.query_response, options.patterns(), strict=True)
    ):
        if pattern is not None:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as exc:
                    attempt.details["failed_step"] = index
                    if exc.partial:
                        attempt.details["last_line"] = _short(exc.partial.decode(errors="replace"))
                    raise ProbeDown("expect_mismatch") from exc
                except asyncio.LimitOverrunError as exc:
                    attempt.details["failed_step"] = index
                    raise ProbeDown("line_too_long") from exc
                line = line.rstrip(b"\r\n")
                if pattern.search(line):
                    break
                attempt.details["last_line"] = _short(line.decode(errors="replace"))
        if step.send is not None:
            await send(step.send.encode())
    attempt.details.pop("last_line", None)
