"""Client transactions (RFC 3261 §17.1) and a minimal server side, over one transport.

``SipEndpoint`` owns one transport to one peer. It stamps each new request with a top Via
(fresh ``z9hG4bK`` branch, ``rport``), retransmits over UDP (Timer A/E start at T1 and
double; non-INVITE capped at T2; an INVITE stops once a provisional arrives), gives up after
Timer B/F = 64*T1 (``TransactionError('timeout')``), and matches responses by top-Via branch
+ CSeq method: replies belonging to nobody are counted and ignored. Over TCP/TLS nothing is
retransmitted but B/F still bound the wait.

A response with the transaction's branch must also carry its Call-ID, CSeq number and From
tag (RFC 3261 §8.1.3.3, §17.1.3): a confused or hostile peer answering 200 for another
dialog proves nothing about ours, so such a reply is discarded as stray, and if nothing
better came when the timer fires the reason is ``mismatched_response``.

If only unparseable replies arrived when the timer fires, the error reason is
``malformed_response`` (or ``message_too_large``), not ``timeout``: the peer did answer, and
the claim evidence should say so. A dead connection or an ICMP error fails every pending
transaction at once with the transport's reason.

Requests from the peer (a BYE during a test call, an OPTIONS keep-alive) go to the
``on_request`` handler, which answers with ``endpoint.respond(...)``; retransmissions of a
request already answered get the cached response again. Without a handler the endpoint
answers 501 itself.

Public API:
  SipError(reason), TransactionError(reason)
  build_request(method, uri, *, from_uri, to_uri, call_id, cseq, from_tag, ...) -> SipRequest
      (defined in message, re-exported here)
  SipEndpoint.open(target, *, t1=0.5, t2=4.0, on_request=None) -> SipEndpoint  (async ctx mgr)
    .request(req, *, on_provisional=None) -> SipResponse      non-INVITE, await the final
    .invite(req, *, on_provisional=None) -> InviteTransaction
    .send_ack(ack) -> SipRequest                               ACK for a 2xx (caller's job)
    .respond(req, status, reason, *, to_tag=None, extra=(), body=b"") -> SipResponse
    .contact(user) -> str;  .stamp_via(req) -> SipRequest;  .stats;  .close()
  InviteTransaction
    .request (as sent)   .provisional (list)   await .final_response() -> SipResponse
    await .cancel() -> SipResponse | None      CANCEL once a provisional arrived; the INVITE's
                                               487 is then ACKed by the transaction
    .ack(ack)                                  send the 2xx ACK, resent on 2xx retransmissions
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import structlog

from probes.sip.message import (
    ParseError,
    SipMessage,
    SipRequest,
    SipResponse,
    build_cancel,
    build_non2xx_ack,
    make_response,
    new_branch,
    new_tag,
    parse_name_addr,
)
from probes.sip.message import build_request as build_request  # re-exported: part of this API
from probes.sip.transport import Target, Transport, TransportError, open_transport

log = structlog.get_logger(__name__)

ProvisionalCallback = Callable[[SipResponse], None]
RequestHandler = Callable[["SipEndpoint", SipRequest], Awaitable[None] | None]


class SipError(Exception):
    """Base of the SIP stack's failures; ``reason`` is the probe reason token."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TransactionError(SipError):
    """Raised when a client transaction ends without a final response (timeout, transport)."""


@dataclass
class EndpointStats:
    """Counters kept as evidence and for tests (retransmissions really happen)."""

    requests_sent: int = 0
    retransmissions: int = 0
    responses_received: int = 0
    stray_responses: int = 0
    garbage_received: int = 0
    requests_received: int = 0


@dataclass(eq=False)
class _ClientTransaction:
    request: SipRequest
    raw: bytes
    key: tuple[str, str]
    final: asyncio.Future[SipResponse]
    on_provisional: ProvisionalCallback | None
    started: float
    provisional: list[SipResponse] = field(default_factory=list)
    progressed: asyncio.Event = field(default_factory=asyncio.Event)
    ack_raw: bytes | None = None
    garbage: ParseError | None = None
    mismatch: str | None = None


class InviteTransaction:
    """An INVITE client transaction, running in the background from ``SipEndpoint.invite``."""

    def __init__(self, endpoint: SipEndpoint, tx: _ClientTransaction) -> None:
        self._endpoint = endpoint
        self._tx = tx
        self.request = tx.request
        self._task = asyncio.create_task(endpoint._drive(tx, invite=True), name="sip-invite")
        # A caller that gave up on the call (closed the endpoint, hit its deadline) never
        # awaits the outcome; mark it retrieved so asyncio does not log it as lost.
        self._task.add_done_callback(_mark_retrieved)

    @property
    def provisional(self) -> list[SipResponse]:
        return self._tx.provisional

    async def final_response(self) -> SipResponse:
        """The final response; raises ``TransactionError`` on Timer B or a transport failure."""
        return await asyncio.shield(self._task)

    def ack(self, ack: SipRequest) -> SipRequest:
        """Send the caller's ACK for a 2xx and resend it whenever the 2xx is retransmitted."""
        stamped = self._endpoint.send_ack(ack)
        self._tx.ack_raw = stamped.encode()
        return stamped

    async def cancel(self) -> SipResponse | None:
        """CANCEL the INVITE (RFC 3261 §9.1); None if a final response already came.

        A CANCEL may only follow a provisional response, so this waits for one (or for the
        final, or Timer B) first.
        """
        tx = self._tx
        if not tx.provisional and not tx.final.done():
            progressed: asyncio.Future[object] = asyncio.ensure_future(tx.progressed.wait())
            waiters: set[asyncio.Future[object]] = {tx.final, progressed}  # type: ignore[arg-type]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                progressed.cancel()
        if tx.final.done():
            return None
        return await self._endpoint.request(build_cancel(tx.request))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SipError):
            await self._task


class SipEndpoint:
    """One transport plus the transactions running over it; create with ``open``."""

    def __init__(
        self, transport: Transport, *, t1: float, t2: float, on_request: RequestHandler | None
    ) -> None:
        self.transport = transport
        self.t1 = t1
        self.t2 = t2
        self.on_request = on_request
        self.stats = EndpointStats()
        self.local_tag = new_tag()
        self._clients: dict[tuple[str, str], _ClientTransaction] = {}
        self._server: dict[tuple[str, str], bytes | None] = {}
        self._dead: TransportError | None = None
        self._handlers: set[asyncio.Future[None]] = set()
        self._timers: list[asyncio.TimerHandle] = []

    @classmethod
    async def open(
        cls,
        target: Target,
        *,
        t1: float = 0.5,
        t2: float = 4.0,
        on_request: RequestHandler | None = None,
    ) -> SipEndpoint:
        """Open the transport (raises ``TransactionError`` with its reason on failure)."""
        if not 0 < t1 <= t2:
            raise ValueError(f"t1 must be > 0 and <= t2, got t1={t1} t2={t2}")
        sink = _Sink()
        try:
            transport = await open_transport(target, sink)
        except TransportError as exc:
            raise TransactionError(exc.reason, str(exc)) from exc
        endpoint = cls(transport, t1=t1, t2=t2, on_request=on_request)
        sink.endpoint = endpoint
        return endpoint

    async def __aenter__(self) -> SipEndpoint:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def via_transport(self) -> str:
        return self.transport.name.upper()

    def contact(self, user: str) -> str:
        """A Contact value reaching this endpoint (transport parameter for TCP/TLS)."""
        host, port = self.transport.local
        host = f"[{host}]" if ":" in host else host
        scheme = "sips" if self.transport.name == "tls" else "sip"
        param = f";transport={self.transport.name}" if self.transport.name != "udp" else ""
        return f"<{scheme}:{user}@{host}:{port}{param}>"

    def stamp_via(self, request: SipRequest, branch: str | None = None) -> SipRequest:
        """``request`` with a new top Via for this transport and a fresh branch."""
        host, port = self.transport.local
        host = f"[{host}]" if ":" in host else host
        via = f"SIP/2.0/{self.via_transport} {host}:{port};branch={branch or new_branch()};rport"
        return request.with_headers(request.headers.prepend("Via", via))

    async def request(
        self, request: SipRequest, *, on_provisional: ProvisionalCallback | None = None
    ) -> SipResponse:
        """Run a non-INVITE client transaction and return its final response."""
        if request.method in ("INVITE", "ACK"):
            raise ValueError(f"use invite()/send_ack() for {request.method}, not request()")
        tx = self._begin(request, on_provisional)
        try:
            return await self._drive(tx, invite=False)
        finally:
            self._clients.pop(tx.key, None)

    def invite(
        self, request: SipRequest, *, on_provisional: ProvisionalCallback | None = None
    ) -> InviteTransaction:
        """Start an INVITE client transaction in the background."""
        if request.method != "INVITE":
            raise ValueError(f"invite() needs an INVITE, got {request.method}")
        return InviteTransaction(self, self._begin(request, on_provisional))

    def send_ack(self, ack: SipRequest) -> SipRequest:
        """Send an ACK for a 2xx (its own transaction: new branch, no response expected)."""
        stamped = ack if ack.headers.get("Via") else self.stamp_via(ack)
        self._send(stamped.encode())
        return stamped

    def respond(
        self,
        request: SipRequest,
        status: int,
        reason: str,
        *,
        to_tag: str | None = None,
        extra: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> SipResponse:
        """Answer a request from the peer; a final answer is cached for its retransmissions."""
        response = make_response(
            request, status, reason, to_tag=to_tag or self.local_tag, extra=extra, body=body
        )
        raw = response.encode()
        if status >= 200:
            key = _server_key(request)
            if key is not None:
                self._server[key] = raw
                self._later(64 * self.t1, lambda: self._server.pop(key, None))
        self._send(raw)
        return response

    async def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        for task in list(self._handlers):
            task.cancel()
        for tx in list(self._clients.values()):
            if not tx.final.done():
                tx.final.set_exception(TransactionError("connection_closed", "endpoint closed"))
                tx.final.exception()  # nobody may be waiting any more: mark it retrieved
        self._clients.clear()
        await self.transport.close()

    # -- internals ---------------------------------------------------------------------------

    def _begin(
        self, request: SipRequest, on_provisional: ProvisionalCallback | None
    ) -> _ClientTransaction:
        if self._dead is not None:
            raise TransactionError(self._dead.reason, f"transport unusable: {self._dead}")
        stamped = request if request.headers.get("Via") else self.stamp_via(request)
        branch = stamped.top_via.branch or ""
        _, method = stamped.cseq
        key = (branch, method)
        if key in self._clients:
            raise ValueError(f"a transaction with branch {branch} and method {method} is running")
        loop = asyncio.get_running_loop()
        tx = _ClientTransaction(
            request=stamped,
            raw=stamped.encode(),
            key=key,
            final=loop.create_future(),
            on_provisional=on_provisional,
            started=loop.time(),
        )
        self._clients[key] = tx
        return tx

    async def _drive(self, tx: _ClientTransaction, *, invite: bool) -> SipResponse:
        loop = asyncio.get_running_loop()
        reliable = self.transport.reliable
        deadline = tx.started + 64 * self.t1
        interval = self.t1
        self.stats.requests_sent += 1
        try:
            self._send(tx.raw)
            while not tx.final.done():
                proceeding = bool(tx.provisional)
                if invite and proceeding:
                    # Timer B only runs in Calling; a ringing INVITE waits for its final or a
                    # CANCEL (the caller's deadline), RFC 3261 §17.1.1.2.
                    deadline = math.inf
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise self._timeout(tx, "B" if invite else "F")
                retransmit = not reliable and not (invite and proceeding)
                wait = min(remaining, interval) if retransmit else remaining
                await asyncio.wait({tx.final}, timeout=None if math.isinf(wait) else wait)
                if tx.final.done() or not retransmit or loop.time() >= deadline:
                    continue
                if invite and tx.provisional:
                    continue  # a provisional arrived while waiting: Proceeding, no resend
                self._send(tx.raw)
                self.stats.retransmissions += 1
                interval = interval * 2 if invite else min(interval * 2, self.t2)
                if not invite and tx.provisional:
                    interval = self.t2
            return tx.final.result()
        finally:
            if invite:
                self._linger(tx)

    def _timeout(self, tx: _ClientTransaction, timer: str) -> TransactionError:
        waited = 64 * self.t1
        if tx.garbage is not None:
            reason = (
                "message_too_large" if tx.garbage.reason == "too_large" else "malformed_response"
            )
            return TransactionError(
                reason, f"no valid response after {waited:.3g}s; unparseable reply: {tx.garbage}"
            )
        if tx.mismatch is not None:
            return TransactionError(
                "mismatched_response",
                f"no matching response to {tx.key[1]} within Timer {timer} ({waited:.3g}s); "
                f"a reply with its branch was discarded: {tx.mismatch}",
            )
        return TransactionError(
            "timeout", f"no final response to {tx.key[1]} within Timer {timer} ({waited:.3g}s)"
        )

    def _linger(self, tx: _ClientTransaction) -> None:
        # Keep a finished INVITE matchable for 64*T1 (Timer D / RFC 6026 Timer M) so a
        # retransmitted final response is ACKed again instead of counted as stray.
        if tx.final.done() and not tx.final.cancelled() and tx.final.exception() is None:
            self._later(64 * self.t1, lambda: self._clients.pop(tx.key, None))
        else:
            self._clients.pop(tx.key, None)

    def _later(self, delay: float, callback: Callable[[], object]) -> None:
        loop = asyncio.get_running_loop()
        self._timers = [t for t in self._timers if not t.cancelled()]
        self._timers.append(loop.call_later(delay, callback))

    def _send(self, raw: bytes) -> None:
        try:
            self.transport.send(raw)
        except TransportError as exc:
            raise TransactionError(exc.reason, str(exc)) from exc

    def _on_message(self, message: SipMessage, raw: bytes) -> None:
        if isinstance(message, SipResponse):
            self._on_response(message, raw)
        else:
            self._on_request(message)

    def _on_response(self, response: SipResponse, raw: bytes) -> None:
        self.stats.responses_received += 1
        try:
            key = (response.top_via.branch or "", response.cseq[1])
        except ParseError as exc:
            self._on_garbage(exc, raw)
            return
        tx = self._clients.get(key)
        mismatch = None if tx is None else _mismatch(tx.request, response)
        if tx is None or mismatch is not None:
            self.stats.stray_responses += 1
            log.debug(
                "sip_stray_response",
                status=response.status,
                branch=key[0],
                method=key[1],
                mismatch=mismatch,
            )
            if tx is not None and not tx.final.done():
                tx.mismatch = mismatch
            return
        if response.status < 200:
            if not tx.final.done():
                tx.provisional.append(response)
                tx.progressed.set()
                if tx.on_provisional is not None:
                    try:
                        tx.on_provisional(response)
                    except Exception:
                        # The caller's bug must not kill the receive path of every transaction.
                        log.exception("sip_provisional_callback_failed", status=response.status)
            return
        if key[1] == "INVITE":
            self._invite_final(tx, response)
        elif not tx.final.done():
            tx.final.set_result(response)

    def _invite_final(self, tx: _ClientTransaction, response: SipResponse) -> None:
        if response.status >= 300:
            if tx.ack_raw is None:
                tx.ack_raw = build_non2xx_ack(tx.request, response).encode()
            self._send_quietly(tx.ack_raw)
        elif tx.final.done() and tx.ack_raw is not None:
            self._send_quietly(tx.ack_raw)
        if not tx.final.done():
            tx.final.set_result(response)

    def _send_quietly(self, raw: bytes) -> None:
        # An ACK lost to a transport error is recovered by the peer's retransmission.
        with contextlib.suppress(TransactionError):
            self._send(raw)

    def _on_request(self, request: SipRequest) -> None:
        self.stats.requests_received += 1
        key = _server_key(request)
        if request.method != "ACK" and key is not None:
            if key in self._server:
                cached = self._server[key]
                if cached is not None:
                    self._send_quietly(cached)
                return
            self._server[key] = None
        if self.on_request is None:
            if request.method != "ACK":
                self.respond(request, 501, "Not Implemented")
            return
        try:
            outcome = self.on_request(self, request)
        except Exception:
            log.exception("sip_request_handler_failed", method=request.method)
            if request.method != "ACK" and key is not None and self._server.get(key) is None:
                self.respond(request, 500, "Server Internal Error")
            return
        if outcome is not None:
            task = asyncio.ensure_future(outcome)
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    def _on_garbage(self, error: ParseError, raw: bytes) -> None:
        self.stats.garbage_received += 1
        log.debug("sip_unparseable_message", error=str(error), size=len(raw))
        for tx in self._clients.values():
            if not tx.final.done():
                tx.garbage = error

    def _on_failure(self, error: TransportError) -> None:
        if self.transport.reliable:
            self._dead = error
        for tx in self._clients.values():
            if not tx.final.done():
                tx.final.set_exception(TransactionError(error.reason, str(error)))


def _mark_retrieved(task: asyncio.Task[SipResponse]) -> None:
    if not task.cancelled():
        task.exception()


def _mismatch(request: SipRequest, response: SipResponse) -> str | None:
    """Why ``response`` (same branch and method) is not the answer to ``request``, or None."""
    if response.call_id != request.call_id:
        return f"Call-ID {response.call_id!r} is not {request.call_id!r}"
    number = request.cseq[0]
    if response.cseq[0] != number:
        return f"CSeq number {response.cseq[0]} is not {number}"
    theirs = response.headers.get("From")
    if theirs is None:
        return "no From header"
    ours = request.headers.get("From") or ""
    if theirs == ours:
        return None  # echoed verbatim, as RFC 3261 §8.2.6.2 asks (even a From we cannot parse)
    try:
        tag, expected = parse_name_addr(theirs).tag, parse_name_addr(ours).tag
    except ParseError as exc:
        return f"From header unparseable: {exc}"
    if tag != expected:
        return f"From tag {tag!r} is not {expected!r}"
    return None


def _server_key(request: SipRequest) -> tuple[str, str] | None:
    try:
        return (request.top_via.branch or "", request.cseq[1])
    except ParseError:
        return None


class _Sink:
    """Routes transport events to the endpoint created after the transport opened."""

    endpoint: SipEndpoint | None = None

    def message_received(self, message: SipMessage, raw: bytes) -> None:
        if self.endpoint is not None:
            self.endpoint._on_message(message, raw)

    def garbage_received(self, error: ParseError, raw: bytes) -> None:
        if self.endpoint is not None:
            self.endpoint._on_garbage(error, raw)

    def transport_failed(self, error: TransportError) -> None:
        if self.endpoint is not None:
            self.endpoint._on_failure(error)
