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
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from probes.sip.audio import Codec
from probes.sip.digest import Credentials, DigestError, authorize
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
from probes.sip.sdp import NegotiatedAudio, SdpError, build_offer, negotiate, parse_sdp
from probes.sip.transaction import InviteTransaction, SipEndpoint, SipError, build_request
from probes.sip.transport import Target

log = structlog.get_logger(__name__)

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
        self.tx: InviteTransaction | None = None
        self.ok: SipResponse | None = None
        self.media: MediaSession | None = None
        self.remote_bye = asyncio.Event()
        self.started = 0.0
        self.record: dict[str, object] = {}

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
        offer = build_offer(
            address=rtp_host,
            port=rtp_port,
            codecs=plan.codecs,
            session_id=int(time.time()),
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

    def _negotiate(self, final: SipResponse) -> NegotiatedAudio:
        try:
            answer = negotiate(parse_sdp(final.body.decode("utf-8", "replace")), self.plan.codecs)
        except SdpError as exc:
            raise _Failed("bad_sdp", str(exc)) from exc
        self.record["codec"] = answer.codec.value
        return answer

    async def _media_phase(self, answer: NegotiatedAudio) -> None:
        assert self.sock is not None
        plan = self.plan
        self.media = await MediaSession.start(
            self.sock,
            MediaPlan(
                remote=(answer.address, answer.port),
                codec=answer.codec,
                payload_type=answer.payload_type,
                telephone_event_pt=answer.telephone_event_pt,
                packet_seconds=answer.ptime_ms / 1000.0,
                tone_hz=plan.tone_hz,
                silence_threshold_dbov=plan.silence_threshold_dbov,
            ),
        )
        if plan.steps and answer.telephone_event_pt is None:
            raise _Failed("dtmf_unsupported", "the answer has no telephone-event payload type")
        script = asyncio.create_task(self._script(self.media), name="sip-call-script")
        hangup = asyncio.create_task(self.remote_bye.wait(), name="sip-call-remote-bye")
        try:
            done, _ = await asyncio.wait(
                {script, hangup},
                timeout=max(0.0, self.remaining()),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for task in (script, hangup):
                task.cancel()
            await asyncio.wait({script, hangup})
        if script in done:
            script.result()
        elif hangup in done:
            self.record["remote_hangup"] = True
            raise _Failed("remote_hangup", "the callee sent BYE during the call")
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

    # -- requests from the callee ------------------------------------------------------------

    def _on_request(self, endpoint: SipEndpoint, request: SipRequest) -> None:
        if request.method == "ACK":
            return
        if request.method == "BYE":
            endpoint.respond(request, 200, "OK")
            self.remote_bye.set()
            return
        endpoint.respond(request, 501, "Not Implemented")

    # -- teardown ----------------------------------------------------------------------------

    async def _teardown(self) -> None:
        try:
            if self.media is not None:
                self.record["media"] = await self.media.stop()
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
            if self.tx is not None:
                await self.tx.close()
            if self.endpoint is not None:
                await self.endpoint.close()
            if self.sock is not None:
                self.ports.release(self.sock)

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
        contacts = ok.headers.get_all("Contact")
        target = parse_name_addr(contacts[0]).uri if contacts else self.plan.request_uri
        routes = [("Route", r) for r in reversed(ok.headers.get_all("Record-Route"))]
        to_tag = parse_name_addr(ok.headers.get("To") or "").tag
        self.cseq += 1
        bye = build_request(
            "BYE",
            target,
            from_uri=self.from_uri,
            to_uri=self.plan.to_uri,
            call_id=self.call_id,
            cseq=self.cseq,
            from_tag=self.from_tag,
            to_tag=to_tag,
            user_agent=self.plan.user_agent,
            extra=routes,
        )
        self.record["bye_sent"] = True
        try:
            response = await asyncio.wait_for(self.endpoint.request(bye), CLEANUP_SECONDS)
        except (TimeoutError, SipError) as exc:
            log.warning("sip_call_bye_unanswered", call_id=self.call_id, error=str(exc))
            return
        self.record["bye_status"] = response.status


async def place_call(
    plan: CallPlan, deadline: float, ports: PortAllocator = RTP_PORTS
) -> CallRecord:
    """Make one test call; finish (including teardown) by ``deadline`` where the peer allows."""
    return await _Call(plan, deadline, ports).run()


def pending_teardowns() -> Sequence[asyncio.Task[None]]:
    """Teardowns still running (a cancelled probe's CANCEL/BYE); tests wait on these."""
    return tuple(_TEARDOWNS)
