"""One test call as a UAC dialog: INVITE (with digest retry), ACK, media, DTMF steps, BYE.

``place_call`` returns a ``CallRecord`` of what happened, never a verdict: judging it against
the target's thresholds is pure work done in ``probes.sip_call``. The one rule enforced here
is that no call is left up. Whatever ends the attempt (failure, the answer timeout, the
probe's own deadline, or the runner cancelling the probe), teardown sends CANCEL while the
INVITE is unanswered and BYE once a 2xx came; teardown runs in a task of its own, shielded,
so a cancellation of the probe cannot stop it half-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from probes.sip.audio import Codec
from probes.sip.digest import Credentials, DigestError, authorize
from probes.sip.headers import ParseError, SessionExpires, parse_session_expires
from probes.sip.media import MediaPlan, MediaReport, MediaSession
from probes.sip.message import (
    SipRequest,
    SipResponse,
    build_2xx_ack,
    new_call_id,
    new_tag,
    parse_name_addr,
)
from probes.sip.ports import RTP_PORTS, PortAllocator, PortRange, PortsExhausted
from probes.sip.sdp import (
    DEFAULT_TELEPHONE_EVENT_PT,
    NegotiatedAudio,
    SdpError,
    build_offer,
    negotiate,
    parse_sdp,
)
from probes.sip.srtp import (
    DEFAULT_SUITES,
    CryptoAttribute,
    SrtpContext,
    new_key,
    select_crypto,
)
from probes.sip.transaction import InviteTransaction, SipEndpoint, SipError, build_request
from probes.sip.transport import Target, TransportError, tls_details

log = structlog.get_logger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"
"""Methods the probe's side of a call accepts (in-dialog requests from the callee)."""

CLEANUP_SECONDS = 4.0
"""Longest the CANCEL or BYE exchange may take in teardown; Timer F (32 s) would outlive the
probe."""
MAX_AUTH_ROUNDS = 2
"""A 401 then a 407 (registrar, then proxy) is normal; a third challenge means bad credentials."""

_TEARDOWNS: set[asyncio.Task[None]] = set()


@dataclass(frozen=True, slots=True)
class DtmfStep:
    """Wait ``pause``, press ``digits``; with ``expect_audio_within`` require voice after it."""

    digits: str
    pause: float
    expect_audio_within: float | None = None


@dataclass(frozen=True, slots=True)
class CallPlan:
    """Everything one call needs, resolved from the target's options (secrets read)."""

    target: Target
    request_uri: str
    from_uri: str | None
    to_uri: str
    credentials: Credentials | None
    codecs: tuple[Codec, ...]
    answer_timeout: float
    duration: float
    steps: tuple[DtmfStep, ...] = ()
    rtp_range: PortRange = field(default_factory=lambda: PortRange(20000, 20999))
    rtp_bind_host: str | None = None
    tone_hz: float | None = None
    silence_threshold_dbov: float = -50.0
    dtmf_tone_seconds: float = 0.1
    dtmf_gap_seconds: float = 0.1
    t1: float = 0.5
    contact_user: str = "slawatch"
    user_agent: str = "slawatch"
    first_response_timeout: float | None = None
    srtp: str = "off"
    """``off``, ``optional`` (offer keys in RTP/AVP, use SRTP if answered) or ``mandatory``
    (offer RTP/SAVP; an answer without usable keys fails the call)."""
    srtp_suites: tuple[str, ...] = DEFAULT_SUITES
    """How long a silent server may take to send anything (even 100 Trying) before the call
    fails with ``timeout``, so that the next located server can be tried."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """The facts of one call attempt; ``failure`` is a reason token when setup failed."""

    call_id: str
    failure: str | None = None
    timed_out: bool = False
    status: int | None = None
    status_reason: str = ""
    post_dial_delay: float | None = None
    answer_seconds: float | None = None
    final_seconds: float | None = None
    redirect_contact: str | None = None
    codec: str | None = None
    media: MediaReport | None = None
    step_voice: tuple[bool | None, ...] = ()
    cancel_sent: bool = False
    bye_sent: bool = False
    bye_status: int | None = None
    remote_hangup: bool = False
    auth_rounds: int = 0
    detail: str = ""
    early_media: bool = False
    early_media_seconds: float | None = None
    early_media_voiced_frames: int | None = None
    first_audio_seconds: float | None = None
    in_dialog_requests: str = ""
    session_expires: int | None = None
    session_refreshes_sent: int = 0
    tls_version: str | None = None
    certificate_expiry: float | None = None
    srtp_suite: str | None = None


class _Failed(Exception):
    def __init__(self, reason: str, detail: str = "", *, timed_out: bool = False) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail
        self.timed_out = timed_out


class _Call:
    def __init__(self, plan: CallPlan, deadline: float, ports: PortAllocator) -> None:
        self.plan = plan
        self.deadline = deadline
        self.ports = ports
        self.call_id = new_call_id("slawatch")
        self.from_tag = new_tag()
        self.cseq = 1
        self.from_uri = plan.from_uri or ""
        self.endpoint: SipEndpoint | None = None
        self.sock: socket.socket | None = None
        self.rtcp_sock: socket.socket | None = None
        self.tx: InviteTransaction | None = None
        self.ok: SipResponse | None = None
        self.answer: NegotiatedAudio | None = None
        self.media: MediaSession | None = None
        self.remote_bye = asyncio.Event()
        self.started = 0.0
        self.record: dict[str, object] = {}
        self.session_id = int(time.time())
        self.sdp_version = self.session_id
        self.early_task: asyncio.Task[None] | None = None
        self.media_lock = asyncio.Lock()
        self.in_dialog: dict[str, int] = {}
        self.acks: dict[int, asyncio.Event] = {}
        self.refresh_failed = asyncio.Event()
        self.refresh_error = ""
        self.refresh_reason = "session_refresh_failed"
        self.session_timer: SessionExpires | None = None
        self.last_refresh = 0.0
        self.refresh_txs: list[InviteTransaction] = []
        self.side_tasks: set[asyncio.Task[None]] = set()
        self.srtp_key = new_key() if plan.srtp != "off" else b""
        self.local_crypto: dict[int, CryptoAttribute] = (
            {
                tag: CryptoAttribute(tag, suite, self.srtp_key)
                for tag, suite in enumerate(plan.srtp_suites, start=1)
            }
            if plan.srtp != "off"
            else {}
        )
        self.srtp_tag: int | None = None
        self.srtp: SrtpContext | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    # -- the call ----------------------------------------------------------------------------

    async def run(self) -> CallRecord:
        try:
            await self._run()
        except _Failed as failed:
            self.record.setdefault("failure", failed.reason)
            self.record["timed_out"] = failed.timed_out
            self.record["detail"] = failed.detail
        finally:
            teardown = asyncio.create_task(self._teardown(), name="sip-call-teardown")
            _TEARDOWNS.add(teardown)
            teardown.add_done_callback(_TEARDOWNS.discard)
            await asyncio.shield(teardown)
        return CallRecord(call_id=self.call_id, **self.record)  # type: ignore[arg-type]

    async def _run(self) -> None:
        plan = self.plan
        try:
            self.endpoint = await SipEndpoint.open(
                plan.target, t1=plan.t1, on_request=self._on_request
            )
        except SipError as exc:
            raise _Failed(exc.reason, str(exc)) from exc
        tls = tls_details(self.endpoint.transport)
        if tls:
            self.record["tls_version"] = tls.get("tls_version")
            self.record["certificate_expiry"] = tls.get("certificate_expiry_timestamp")
        local_host = self.endpoint.transport.local[0]
        if plan.from_uri is None:
            scheme = "sips" if self.endpoint.transport.name == "tls" else "sip"
            host = f"[{local_host}]" if ":" in local_host else local_host
            self.from_uri = f"{scheme}:{plan.contact_user}@{host}"
        else:
            self.from_uri = plan.from_uri
        try:
            self.sock = self.ports.bind(plan.rtp_bind_host or local_host, plan.rtp_range)
        except PortsExhausted as exc:
            raise _Failed("rtp_ports_exhausted", str(exc)) from exc
        rtp_host, rtp_port = self.sock.getsockname()[:2]
        self.rtcp_sock = _bind_rtcp(rtp_host, rtp_port + 1)
        offer = build_offer(
            address=rtp_host,
            port=rtp_port,
            codecs=plan.codecs,
            session_id=self.session_id,
            profile="RTP/SAVP" if plan.srtp == "mandatory" else "RTP/AVP",
            crypto=[c.format() for c in self.local_crypto.values()],
        ).encode()
        request = build_request(
            "INVITE",
            plan.request_uri,
            from_uri=self.from_uri,
            to_uri=plan.to_uri,
            call_id=self.call_id,
            cseq=self.cseq,
            from_tag=self.from_tag,
            contact=self.endpoint.contact(plan.contact_user),
            user_agent=plan.user_agent,
            body=offer,
            content_type="application/sdp",
            # RFC 4028: we can refresh a session ourselves when the callee asks us to.
            extra=[("Supported", "timer"), ("Allow", ALLOW)],
        )
        self.started = time.monotonic()
        final = await self._invite_until_final(request)
        self.record["final_seconds"] = elapsed = time.monotonic() - self.started
        if 200 <= final.status < 300:
            self.record["answer_seconds"] = elapsed
        if 300 <= final.status < 400:
            contacts = final.headers.get_all("Contact")
            self.record["redirect_contact"] = parse_name_addr(contacts[0]).uri if contacts else ""
        if final.status >= 300:
            return
        self.ok = final
        assert self.tx is not None
        # ACK first: even an answer with unusable SDP is a call that is up until our BYE.
        self.tx.ack(build_2xx_ack(self.tx.request, final))
        answer = self._negotiate(final)
        self._note_session_timer(final)
        await self._media_phase(answer)

    async def _invite_until_final(self, request: SipRequest) -> SipResponse:
        assert self.endpoint is not None
        answer_by = self.started + self.plan.answer_timeout
        rounds = 0
        while True:
            self.tx = self.endpoint.invite(request, on_provisional=self._on_provisional)
            wait = min(answer_by, self.deadline) - time.monotonic()
            try:
                await self._await_first_response(self.tx)
                wait = min(answer_by, self.deadline) - time.monotonic()
                final = await asyncio.wait_for(self.tx.final_response(), max(0.0, wait))
            except TimeoutError:
                ringing = bool(self.tx.provisional)
                if ringing and answer_by <= self.deadline:
                    raise _Failed("no_answer", "no final response within answer_timeout") from None
                raise _Failed("timeout", "no final response to INVITE", timed_out=True) from None
            except SipError as exc:
                raise _Failed(exc.reason, str(exc), timed_out=exc.reason == "timeout") from exc
            self.record["status"] = final.status
            self.record["status_reason"] = final.reason
            if self.media is not None:
                self.record["early_media_voiced_frames"] = self.media.voiced_frames
            if final.status not in (401, 407):
                return final
            rounds += 1
            self.record["auth_rounds"] = rounds
            if self.plan.credentials is None:
                raise _Failed("auth_required", f"{final.status} challenge and no credentials")
            if rounds > MAX_AUTH_ROUNDS:
                raise _Failed(
                    "auth_failed",
                    f"still challenged ({final.status}) after {MAX_AUTH_ROUNDS} answers",
                )
            try:
                request = authorize(self.tx.request, final, self.plan.credentials)
            except DigestError as exc:
                raise _Failed(exc.reason, str(exc)) from exc
            self.cseq += 1

    async def _await_first_response(self, tx: InviteTransaction) -> None:
        """Within ``first_response_timeout``, some response (provisional or final) must come."""
        limit = self.plan.first_response_timeout
        if limit is None or limit >= self.remaining():
            return
        final = asyncio.ensure_future(tx.final_response())
        try:
            ends = time.monotonic() + limit
            while not tx.provisional and not final.done() and time.monotonic() < ends:
                await asyncio.wait({final}, timeout=min(0.01, max(0.0, ends - time.monotonic())))
        finally:
            if final.done() and not final.cancelled():
                final.exception()  # retrieved here; the caller awaits the outcome again
            else:
                final.cancel()
        if not tx.provisional and not final.done():
            raise TimeoutError

    def _on_provisional(self, response: SipResponse) -> None:
        if 180 <= response.status < 190 and "post_dial_delay" not in self.record:
            self.record["post_dial_delay"] = time.monotonic() - self.started
        if 180 <= response.status < 190 and response.body and self.early_task is None:
            # Early media (RFC 3960): an 18x with SDP starts the media now, so a prompt
            # played before the answer is heard and measured.
            try:
                answer = self._negotiate(response)
            except _Failed as exc:
                self.record["detail"] = f"early media SDP unusable: {exc.detail}"
                return
            self.record["early_media"] = True
            self.record["early_media_seconds"] = time.monotonic() - self.started
            self.early_task = asyncio.create_task(self._start_media(answer), name="sip-early")

    async def _start_media(self, answer: NegotiatedAudio) -> None:
        """Start the media session on ``answer``, or point the running one at it."""
        assert self.sock is not None
        async with self.media_lock:
            if self.media is not None:
                self.media.retarget(
                    (answer.address, answer.port),
                    answer.codec,
                    answer.payload_type,
                    answer.telephone_event_pt,
                    self.srtp,
                    answer.rtcp_port,
                )
                return
            self.media = await MediaSession.start(
                self.sock,
                MediaPlan(
                    remote=(answer.address, answer.port),
                    codec=answer.codec,
                    payload_type=answer.payload_type,
                    telephone_event_pt=answer.telephone_event_pt,
                    packet_seconds=answer.ptime_ms / 1000.0,
                    tone_hz=self.plan.tone_hz,
                    silence_threshold_dbov=self.plan.silence_threshold_dbov,
                    srtp=self.srtp,
                    rtcp_port=answer.rtcp_port,
                ),
                self.rtcp_sock,
            )

    def _negotiate(self, final: SipResponse) -> NegotiatedAudio:
        try:
            answer = negotiate(parse_sdp(final.body.decode("utf-8", "replace")), self.plan.codecs)
        except SdpError as exc:
            raise _Failed("bad_sdp", str(exc)) from exc
        self._settle_srtp(answer.crypto)
        self.record["codec"] = answer.codec.value
        return answer

    def _settle_srtp(self, crypto: Sequence[str], *, their_offer: bool = False) -> None:
        """Key the media from an SDP's ``a=crypto`` (RFC 4568): an answer must accept one of
        our tags with its suite; a callee's re-offer may use its own tags. ``mandatory``
        fails the call without a usable line."""
        if self.plan.srtp == "off":
            return
        chosen, problems = select_crypto(
            crypto, self.plan.srtp_suites, None if their_offer else self.local_crypto
        )
        if chosen is None:
            if self.plan.srtp == "mandatory" or crypto:
                why = "; ".join(problems) or "the answer carries no a=crypto line"
                raise _Failed("srtp_not_negotiated", f"no usable SRTP key in the answer: {why}")
            return
        if self.srtp is None or self.srtp.remote_key != chosen.key or self.srtp_tag != chosen.tag:
            self.srtp = SrtpContext(chosen.suite, self.srtp_key, chosen.key)
        self.srtp_tag = chosen.tag
        # Our line for that tag: the same key, the suite the other side chose.
        self.local_crypto[chosen.tag] = CryptoAttribute(chosen.tag, chosen.suite, self.srtp_key)
        self.record["srtp_suite"] = chosen.suite

    async def _media_phase(self, answer: NegotiatedAudio) -> None:
        plan = self.plan
        if self.early_task is not None:
            await self.early_task
        await self._start_media(answer)
        assert self.media is not None
        self.answer = answer
        if plan.steps and answer.telephone_event_pt is None:
            raise _Failed("dtmf_unsupported", "the answer has no telephone-event payload type")
        script = asyncio.create_task(self._script(self.media), name="sip-call-script")
        hangup = asyncio.create_task(self.remote_bye.wait(), name="sip-call-remote-bye")
        refresh_failed = asyncio.create_task(self.refresh_failed.wait(), name="sip-refresh-fail")
        keeper = asyncio.create_task(self._keep_session(), name="sip-session-timer")
        tasks = {script, hangup, refresh_failed, keeper}
        try:
            done, _ = await asyncio.wait(
                tasks,
                timeout=max(0.0, self.remaining()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        if script in done:
            script.result()
        elif hangup in done:
            self.record["remote_hangup"] = True
            raise _Failed("remote_hangup", "the callee sent BYE during the call")
        elif self.refresh_failed.is_set() or keeper in done:
            if keeper in done and not keeper.cancelled() and keeper.exception() is not None:
                keeper.result()  # a bug in the session timer: let the probe report it
            raise _Failed(self.refresh_reason, self.refresh_error)
        else:
            raise _Failed("timeout", "the call outlasted the probe's deadline", timed_out=True)

    async def _script(self, media: MediaSession) -> None:
        plan = self.plan
        answered = time.monotonic()
        voice: list[bool | None] = []
        self.record["step_voice"] = ()
        for step in plan.steps:
            await asyncio.sleep(step.pause)
            await media.press(
                step.digits, tone_seconds=plan.dtmf_tone_seconds, gap_seconds=plan.dtmf_gap_seconds
            )
            if step.expect_audio_within is None:
                voice.append(None)
            else:
                voice.append(await media.wait_for_voice(time.monotonic(), step.expect_audio_within))
            self.record["step_voice"] = tuple(voice)
        await asyncio.sleep(max(0.0, answered + plan.duration - time.monotonic()))

    # -- session timers (RFC 4028) ----------------------------------------------------------

    def _note_session_timer(self, final: SipResponse) -> None:
        value = final.headers.get("Session-Expires")
        if value is None:
            return
        try:
            timer = parse_session_expires(value)
        except ParseError as exc:
            raise _Failed("bad_session_expires", str(exc)) from exc
        self.record["session_expires"] = timer.seconds
        # The 2xx names the refresher; "uac" is us (we sent Supported: timer).
        self.session_timer = timer
        self.last_refresh = time.monotonic()

    async def _keep_session(self) -> None:
        """RFC 4028 for the whole call, following role changes made by later refreshes: as
        refresher a re-INVITE (same SDP) every half interval; otherwise watch that the callee
        refreshes before ``N - min(32, N/3)`` (§10) or the session has expired."""
        while True:
            timer = self.session_timer
            now = time.monotonic()
            if timer is None or timer.seconds <= 0:
                await asyncio.sleep(1.0)
                continue
            if timer.refresher == "uac":
                due = self.last_refresh + timer.seconds / 2
                if now >= due:
                    if not await self._refresh(timer.seconds):
                        return
                    continue
            else:
                due = self.last_refresh + timer.seconds - min(32.0, timer.seconds / 3)
                if now >= due:
                    self.refresh_error = (
                        f"no session refresh from the callee within {timer.seconds} s"
                    )
                    self.refresh_reason = "session_expired"
                    self.refresh_failed.set()
                    return
            await asyncio.sleep(min(1.0, max(0.0, due - now)))

    async def _refresh(self, seconds: int) -> bool:
        """One refresh (retried on 491); False, with the call failing, when it is refused."""
        status = 0
        for _ in range(3):  # 491 Request Pending: the callee's own re-INVITE crossed ours
            status = await self._send_refresh(seconds)
            if status != 491:
                break
            await asyncio.sleep(random.uniform(0.0, 2.0))
        if not 200 <= status < 300:
            self.refresh_error = f"session refresh re-INVITE answered {status}"
            self.refresh_failed.set()
            return False
        self.last_refresh = time.monotonic()
        self.record["session_refreshes_sent"] = (
            int(self.record.get("session_refreshes_sent", 0)) + 1  # type: ignore[call-overload]
        )
        return True

    async def _send_refresh(self, seconds: int) -> int:
        assert self.endpoint is not None
        request = self._in_dialog_request(
            "INVITE",
            body=self._local_sdp(),
            extra=[
                ("Supported", "timer"),
                ("Session-Expires", f"{seconds};refresher=uac"),
                ("Contact", self.endpoint.contact(self.plan.contact_user)),
            ],
        )
        tx = self.endpoint.invite(request)
        self.refresh_txs.append(tx)
        try:
            final = await asyncio.wait_for(tx.final_response(), max(1.0, seconds / 4))
        except (TimeoutError, SipError):
            return 408
        if 200 <= final.status < 300:
            tx.ack(build_2xx_ack(tx.request, final))
            with contextlib.suppress(_Failed):
                self._note_session_timer(final)  # the callee may change the interval or role
        return final.status

    # -- requests from the callee ------------------------------------------------------------

    def _on_request(self, endpoint: SipEndpoint, request: SipRequest) -> None:
        if request.call_id != self.call_id:
            if request.method != "ACK":
                endpoint.respond(request, 481, "Call/Transaction Does Not Exist")
            return
        method = request.method
        if method == "ACK":
            waiter = self.acks.get(request.cseq[0])
            if waiter is not None:
                waiter.set()
            if request.body:
                self._follow_offer(request.body, answer_expected=False)
            return
        self.in_dialog[method] = self.in_dialog.get(method, 0) + 1
        if method == "BYE":
            endpoint.respond(request, 200, "OK")
            self.remote_bye.set()
        elif method in ("INVITE", "UPDATE"):
            self._answer_refresh(endpoint, request)
        elif method == "OPTIONS":
            endpoint.respond(
                request,
                200,
                "OK",
                extra=[("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "timer")],
            )
        elif method == "INFO":
            # INFO carries DTMF relay or vendor data; taking it is all RFC 6086 asks.
            endpoint.respond(request, 200, "OK")
        else:
            endpoint.respond(request, 405, "Method Not Allowed", extra=[("Allow", ALLOW)])

    def _answer_refresh(self, endpoint: SipEndpoint, request: SipRequest) -> None:
        """Answer a re-INVITE or UPDATE from the callee: a new offer gets our answer (the
        media follows it), a session-timer refresh is confirmed (RFC 4028 §9)."""
        extra: list[tuple[str, str]] = [
            ("Contact", endpoint.contact(self.plan.contact_user)),
            ("Allow", ALLOW),
            ("Supported", "timer"),
        ]
        value = request.headers.get("Session-Expires")
        if value is not None:
            try:
                timer = parse_session_expires(value)
            except ParseError as exc:
                endpoint.respond(request, 400, "Bad Session-Expires")
                log.info("sip_call_bad_session_expires", call_id=self.call_id, error=str(exc))
                return
            # The callee sent the refresh, so unless it says otherwise it stays the refresher.
            refresher = timer.refresher or "uac"
            extra.append(("Session-Expires", f"{timer.seconds};refresher={refresher}"))
            extra.append(("Require", "timer"))
            self.record["session_expires"] = timer.seconds
            self.session_timer = SessionExpires(
                timer.seconds, "uas" if refresher == "uac" else "uac"
            )
        self.last_refresh = time.monotonic()
        if request.method == "INVITE" and not endpoint.transport.reliable:
            # Registered before answering so that no ACK can slip past the resender.
            self.acks.setdefault(request.cseq[0], asyncio.Event())
        body = b""
        if request.body:
            answer = self._follow_offer(request.body, answer_expected=True)
            if answer is None:
                endpoint.respond(request, 488, "Not Acceptable Here")
                return
            body = answer
        elif request.method == "INVITE":
            body = self._local_sdp()  # a late-offer re-INVITE: our offer, the answer in the ACK
        if body:
            extra.append(("Content-Type", "application/sdp"))
        response = endpoint.respond(request, 200, "OK", extra=extra, body=body)
        if request.method == "INVITE" and not endpoint.transport.reliable:
            # The UAS core resends a 2xx to INVITE until the ACK (RFC 3261 §13.3.1.4).
            task = asyncio.create_task(self._resend_until_ack(endpoint, request, response))
            self.side_tasks.add(task)
            task.add_done_callback(self.side_tasks.discard)

    async def _resend_until_ack(
        self, endpoint: SipEndpoint, request: SipRequest, response: SipResponse
    ) -> None:
        cseq = request.cseq[0]
        acked = self.acks.setdefault(cseq, asyncio.Event())
        interval = self.plan.t1
        raw = response.encode()
        ends = time.monotonic() + 64 * self.plan.t1
        try:
            while time.monotonic() < ends:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(acked.wait(), interval)
                    return
                with contextlib.suppress(TransportError):
                    endpoint.transport.send(raw)
                interval = min(2 * interval, 4.0)
            log.warning("sip_call_reinvite_not_acked", call_id=self.call_id, cseq=cseq)
        finally:
            self.acks.pop(cseq, None)

    def _follow_offer(self, body: bytes, *, answer_expected: bool) -> bytes | None:
        """Point the media at a new SDP from the callee; our answer, or None if unusable."""
        try:
            offer = negotiate(parse_sdp(body.decode("utf-8", "replace")), self.plan.codecs)
            self._settle_srtp(offer.crypto, their_offer=True)
        except (SdpError, _Failed) as exc:
            log.info("sip_call_unusable_reoffer", call_id=self.call_id, error=str(exc))
            return None
        if self.media is not None:
            self.media.retarget(
                (offer.address, offer.port),
                offer.codec,
                offer.payload_type,
                offer.telephone_event_pt,
                self.srtp,
                offer.rtcp_port,
            )
        self.answer = offer
        if not answer_expected:
            return b""
        self.sdp_version += 1
        return self._local_sdp()

    def _local_sdp(self) -> bytes:
        """Our current description: the settled codec (all offered before an answer)."""
        assert self.sock is not None
        host, port = self.sock.getsockname()[:2]
        answer = self.answer
        return build_offer(
            address=host,
            port=port,
            codecs=(answer.codec,) if answer is not None else self.plan.codecs,
            session_id=self.session_id,
            version=self.sdp_version,
            telephone_event_pt=(
                answer.telephone_event_pt
                if answer is not None and answer.telephone_event_pt is not None
                else DEFAULT_TELEPHONE_EVENT_PT
            ),
            profile="RTP/SAVP" if self.plan.srtp == "mandatory" else "RTP/AVP",
            crypto=(
                [self.local_crypto[self.srtp_tag].format()]
                if self.srtp_tag is not None
                else [c.format() for c in self.local_crypto.values()]
            ),
        ).encode()

    def _in_dialog_request(
        self, method: str, *, body: bytes = b"", extra: Sequence[tuple[str, str]] = ()
    ) -> SipRequest:
        """A request inside our dialog: remote target, route set, tags, next CSeq."""
        ok = self.ok
        assert ok is not None
        contacts = ok.headers.get_all("Contact")
        target = parse_name_addr(contacts[0]).uri if contacts else self.plan.request_uri
        routes = [("Route", r) for r in reversed(ok.headers.get_all("Record-Route"))]
        to_tag = parse_name_addr(ok.headers.get("To") or "").tag
        self.cseq += 1
        return build_request(
            method,
            target,
            from_uri=self.from_uri,
            to_uri=self.plan.to_uri,
            call_id=self.call_id,
            cseq=self.cseq,
            from_tag=self.from_tag,
            to_tag=to_tag,
            user_agent=self.plan.user_agent,
            extra=[*routes, *extra],
            body=body,
            content_type="application/sdp" if body else None,
        )

    # -- teardown ----------------------------------------------------------------------------

    async def _teardown(self) -> None:
        try:
            if self.early_task is not None and not self.early_task.done():
                self.early_task.cancel()
                await asyncio.wait({self.early_task})
            if self.media is not None:
                self.record["media"] = await self.media.stop()
                if self.media.first_voice_at is not None and self.started:
                    self.record["first_audio_seconds"] = self.media.first_voice_at - self.started
            if self.in_dialog:
                self.record["in_dialog_requests"] = ",".join(
                    f"{method}:{count}" for method, count in sorted(self.in_dialog.items())
                )
            if self.tx is not None:
                # One budget for CANCEL, a crossing 200 and BYE together: a cancelled probe
                # waits for its teardown, so this bounds how late the cancellation lands.
                async with asyncio.timeout(CLEANUP_SECONDS):
                    await self._end_dialog(self.tx)
        except TimeoutError:
            log.warning("sip_call_teardown_timeout", call_id=self.call_id)
        except Exception:  # teardown must always reach the close below
            log.exception("sip_call_teardown_failed", call_id=self.call_id)
        finally:
            for task in list(self.side_tasks):
                task.cancel()
            for refresh in self.refresh_txs:
                await refresh.close()
            if self.tx is not None:
                await self.tx.close()
            if self.endpoint is not None:
                await self.endpoint.close()
            if self.sock is not None:
                self.ports.release(self.sock)
            if self.rtcp_sock is not None:
                self.rtcp_sock.close()

    async def _end_dialog(self, tx: InviteTransaction) -> None:
        if self.ok is None and self.record.get("status") is None:
            # CANCEL may only follow a provisional (RFC 3261 section 9.1). A peer that has
            # sent nothing gets a short grace for one, not the whole cleanup budget.
            limit = CLEANUP_SECONDS if tx.provisional else 2 * self.plan.t1
            with contextlib.suppress(TimeoutError, SipError):
                await asyncio.wait_for(tx.cancel(), limit)
            self.record["cancel_sent"] = bool(tx.provisional)
            # A 200 may cross our CANCEL; that call is up and must be ended too.
            with contextlib.suppress(TimeoutError, SipError):
                final = await asyncio.wait_for(
                    tx.final_response(), CLEANUP_SECONDS if tx.provisional else 0.0
                )
                self.record["status"] = final.status
                self.record["status_reason"] = final.reason
                if 200 <= final.status < 300:
                    self.ok = final
                    tx.ack(build_2xx_ack(tx.request, final))
        if self.ok is not None and not self.record.get("remote_hangup"):
            await self._send_bye(self.ok)

    async def _send_bye(self, ok: SipResponse) -> None:
        assert self.endpoint is not None
        self.ok = ok
        bye = self._in_dialog_request("BYE")
        self.record["bye_sent"] = True
        try:
            response = await asyncio.wait_for(self.endpoint.request(bye), CLEANUP_SECONDS)
        except (TimeoutError, SipError) as exc:
            log.warning("sip_call_bye_unanswered", call_id=self.call_id, error=str(exc))
            return
        self.record["bye_status"] = response.status


def _bind_rtcp(host: str, port: int) -> socket.socket | None:
    """The RTCP socket on the odd port above RTP (the allocator never hands odd ports out);
    None when another process holds it: the call then goes on without RTCP figures."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)
    return sock


async def place_call(
    plan: CallPlan, deadline: float, ports: PortAllocator = RTP_PORTS
) -> CallRecord:
    """Make one test call; finish (including teardown) by ``deadline`` where the peer allows."""
    return await _Call(plan, deadline, ports).run()


def pending_teardowns() -> Sequence[asyncio.Task[None]]:
    """Teardowns still running (a cancelled probe's CANCEL/BYE); tests wait on these."""
    return tuple(_TEARDOWNS)
