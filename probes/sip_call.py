"""The ``sip_call`` probe: a real test call, judged on what a caller would hear.

An OPTIONS ping only shows that a proxy answers. The availability SLA covers callers
reaching the IVR, so this probe places a call: INVITE with a G.711 offer, digest retry,
ACK, RTP both ways for ``duration`` (loss, jitter, an E-model MOS), optional DTMF steps that
walk the IVR menu with a check that a prompt plays after each, then BYE. The call engine is
``probes.sip.call``; this module holds the options, and ``judge`` (pure) turns the call's
record into the result: outcome, one reason token, and the figures kept as evidence.
"""

from __future__ import annotations

import ipaddress
import ssl
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator

from probes.fields import Duration, SecretUnavailable
from probes.result import DetailValue, Outcome, ProbeContext, ProbeResult
from probes.sip.audio import Codec
from probes.sip.call import CallPlan, CallRecord, DtmfStep, place_call
from probes.sip.dtmf import validate_digits
from probes.sip.media import MIN_VOICED_FRAMES
from probes.sip.mos import estimate_mos
from probes.sip.options import SipBaseOptions
from probes.sip.ports import DEFAULT_RANGE, PortRange
from probes.sip.srtp import DEFAULT_SUITES, SUITES
from probes.sip_servers import over_servers
from probes.tls import client_context

log = structlog.get_logger(__name__)

TEARDOWN_RESERVE_SECONDS = 1.0
"""Time kept back from the target's timeout for BYE/CANCEL, so the call ends before the runner
cancels the probe (the teardown survives a cancellation anyway, but then nobody records it)."""


class DtmfStepOptions(BaseModel):
    """One IVR menu step: wait ``pause``, press ``digits``, optionally expect a prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    digits: str
    pause: Duration = 1.0
    expect_audio_within: Duration | None = None

    @field_validator("digits")
    @classmethod
    def _keys(cls, value: str) -> str:
        return validate_digits(value)


class MediaThresholds(BaseModel):
    """What the received audio must meet for the call to count as ``up``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_packets: int = Field(default=10, ge=0)
    max_loss_ratio: float = Field(default=0.05, ge=0.0, le=1.0)
    min_mos: float | None = Field(default=3.5, ge=1.0, le=4.5)
    max_jitter: Duration | None = None


class SipCallOptions(SipBaseOptions):
    """The ``sip_call`` block of a target: the shared SIP fields plus the call's own."""

    answer_timeout: Duration = 20.0
    duration: Duration = 5.0
    dtmf: tuple[DtmfStepOptions, ...] = ()
    dtmf_tone: Duration = 0.1
    dtmf_gap: Duration = 0.1
    media: MediaThresholds = MediaThresholds()
    codecs: tuple[Codec, ...] = (Codec.PCMU, Codec.PCMA)
    require_audio: bool = False
    silence_threshold_dbov: float = Field(default=-50.0, le=0.0)
    send_tone_hz: int | None = Field(default=None, ge=20, le=3400)
    rtp_ports: str = f"{DEFAULT_RANGE[0]}-{DEFAULT_RANGE[1]}"
    srtp: Literal["off", "optional", "mandatory"] = "off"
    srtp_suites: tuple[str, ...] = DEFAULT_SUITES

    @field_validator("srtp_suites")
    @classmethod
    def _suites(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [s for s in value if s not in SUITES]
        if not value or unknown or len(set(value)) != len(value):
            raise ValueError(
                f"expected SRTP suites from {sorted(SUITES)}, each once, got {list(value)}"
            )
        return value

    @field_validator("codecs")
    @classmethod
    def _unique_codecs(cls, value: tuple[Codec, ...]) -> tuple[Codec, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"expected PCMU and/or PCMA, each once, got {list(value)}")
        return value

    @field_validator("rtp_ports")
    @classmethod
    def _port_range(cls, value: str) -> str:
        port_range_of(value)
        return value

    def longest_call_seconds(self) -> float:
        """Worst-case time from INVITE to hang-up, plus the teardown reserve: a target's
        ``timeout`` below this cuts calls short (reason ``timeout``)."""
        steps = sum(
            s.pause
            + len(s.digits) * (self.dtmf_tone + self.dtmf_gap)
            + (s.expect_audio_within or 0.0)
            for s in self.dtmf
        )
        return self.answer_timeout + max(self.duration, steps) + TEARDOWN_RESERVE_SECONDS

    def plan(
        self, connect_timeout: float = 5.0, first_response_timeout: float | None = None
    ) -> CallPlan:
        """The call to place; reads the password (``SecretUnavailable`` if it is missing) and
        the TLS files (``ssl.SSLError``/``OSError`` if they cannot be loaded)."""
        tls = client_context(self.tls) if self.effective_transport() == "tls" else None
        bind_host, _ = self.bind_address()
        return CallPlan(
            target=self.target(tls, connect_timeout=connect_timeout),
            request_uri=self.uri,
            from_uri=self.from_uri,
            to_uri=self.to_uri or self.uri,
            credentials=self.credentials(),
            codecs=self.codecs,
            answer_timeout=self.answer_timeout,
            duration=self.duration,
            steps=tuple(DtmfStep(s.digits, s.pause, s.expect_audio_within) for s in self.dtmf),
            rtp_range=port_range_of(self.rtp_ports),
            # A wildcard bind would put 0.0.0.0 in the SDP; the SIP socket's address is real.
            rtp_bind_host=None if ipaddress.ip_address(bind_host).is_unspecified else bind_host,
            tone_hz=self.send_tone_hz,
            silence_threshold_dbov=self.silence_threshold_dbov,
            dtmf_tone_seconds=self.dtmf_tone,
            dtmf_gap_seconds=self.dtmf_gap,
            t1=self.t1,
            contact_user=self.contact_user,
            user_agent=self.user_agent,
            first_response_timeout=first_response_timeout,
            srtp=self.srtp,
            srtp_suites=self.srtp_suites,
        )


def port_range_of(text: str) -> PortRange:
    """``"20000-20999"`` as a ``PortRange``; ``ValueError`` says what was expected."""
    low, sep, high = text.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError(f"expected an RTP port range such as 20000-20999, got {text!r}")
    return PortRange(int(low), int(high))


def _status_reason(status: int) -> str:
    if 300 <= status < 400:
        return f"redirect_{status}"
    if 400 <= status < 500 or status >= 600:
        return f"rejected_{status}"
    return f"status_code_{status}"


def judge(
    record: CallRecord, options: SipCallOptions
) -> tuple[Outcome, str, dict[str, float], dict[str, DetailValue]]:
    """Outcome, reason, phases and details for one call record (pure)."""
    phases: dict[str, float] = {}
    details: dict[str, DetailValue] = {
        "call_id": record.call_id,
        "sip_status": record.status,
        "sip_reason": record.status_reason,
        "cancel_sent": record.cancel_sent,
        "bye_sent": record.bye_sent,
    }
    if record.post_dial_delay is not None:
        phases["post_dial_delay"] = details["post_dial_delay_seconds"] = record.post_dial_delay
    if record.answer_seconds is not None:
        phases["answer"] = details["answer_seconds"] = record.answer_seconds
    if record.final_seconds is not None:
        details["final_response_seconds"] = record.final_seconds
    if record.bye_status is not None:
        details["bye_status"] = record.bye_status
    if record.redirect_contact is not None:
        details["redirect_contact"] = record.redirect_contact
    if record.auth_rounds:
        details["auth_rounds"] = record.auth_rounds
    details["early_media"] = record.early_media
    if record.early_media:
        details["early_media_seconds"] = record.early_media_seconds
        voiced = record.early_media_voiced_frames or 0
        details["early_media_voiced_frames"] = voiced
        details["prompt_in_early_media"] = voiced >= MIN_VOICED_FRAMES
    if record.first_audio_seconds is not None:
        phases["first_audio"] = details["first_audio_seconds"] = record.first_audio_seconds
    if record.in_dialog_requests:
        details["in_dialog_requests"] = record.in_dialog_requests
    if record.session_expires is not None:
        details["session_expires"] = record.session_expires
    if record.session_refreshes_sent:
        details["session_refreshes_sent"] = record.session_refreshes_sent
    details["srtp"] = record.srtp_suite is not None
    if record.srtp_suite is not None:
        details["srtp_suite"] = record.srtp_suite
    if record.tls_version is not None:
        details["tls_version"] = record.tls_version
    if record.certificate_expiry is not None:
        details["certificate_expiry_timestamp"] = record.certificate_expiry
    if record.detail:
        details["error"] = record.detail[:300]
    media = record.media
    mos: float | None = None
    if media is not None:
        summary = media.summary
        details.update(
            codec=record.codec,
            rtp_packets_sent=media.packets_sent,
            rtp_packets_received=summary.received,
            rtp_packets_expected=summary.expected,
            rtp_loss_ratio=summary.loss_ratio,
            rtp_jitter_seconds=summary.jitter_seconds,
            rtp_stray_packets=media.stray_packets,
            rtp_voiced_frames=media.voiced_frames,
            rtp_first_packet_seconds=media.first_packet_seconds,
            dtmf_sent=media.digits_sent,
            dtmf_received=media.digits_received,
        )
        if media.srtp_failures:
            details["srtp_failures"] = media.srtp_failures
        figures = media.rtcp
        rtt = figures.rtt_mean if figures is not None else None
        if figures is not None:
            details["rtcp_reports_sent"] = figures.sent
            details["rtcp_reports_received"] = figures.received
            if figures.malformed:
                details["rtcp_malformed"] = figures.malformed
            if rtt is not None:
                details["rtt_seconds"] = rtt
                details["rtt_max_seconds"] = max(figures.rtt_seconds)
            if figures.remote_fraction_lost is not None:
                details["remote_loss_fraction"] = figures.remote_fraction_lost
                details["remote_cumulative_lost"] = figures.remote_cumulative_lost
                details["remote_jitter_seconds"] = figures.remote_jitter_seconds
        if summary.received:
            mos = estimate_mos(
                summary.loss_ratio,
                record.codec or "PCMU",
                jitter_seconds=summary.jitter_seconds,
                round_trip_seconds=rtt,
            )
            details["mos"] = round(mos, 3)
            details["mos_delay"] = "rtcp_rtt" if rtt is not None else "local_estimate"
    if record.step_voice:
        details["audio_steps"] = ",".join(
            "-" if v is None else ("ok" if v else "silent") for v in record.step_voice
        )
    if record.failure is not None:
        if record.failure == "rtp_ports_exhausted":
            return Outcome.ERROR, record.failure, phases, details
        outcome = Outcome.TIMEOUT if record.timed_out else Outcome.DOWN
        return outcome, record.failure, phases, details
    status = record.status
    if status is None:
        return Outcome.ERROR, "no_final_response", phases, details
    if not options.accepts(status):
        return Outcome.DOWN, _status_reason(status), phases, details
    if status >= 300:
        return Outcome.UP, "", phases, details
    reason = _media_verdict(record, options, mos)
    if reason == "srtp_auth_failed" and media is not None:
        details["error"] = (
            f"all {media.srtp_failures} media packets from the callee failed SRTP "
            "authentication: the callee does not use the key its SDP answer announced"
        )
    return (Outcome.DOWN if reason else Outcome.UP), reason, phases, details


def _media_verdict(record: CallRecord, options: SipCallOptions, mos: float | None) -> str:
    media = record.media
    limits = options.media
    if media is not None and media.srtp_failures and not media.summary.received:
        return "srtp_auth_failed"
    if media is None or media.summary.received < max(1, limits.min_packets):
        return "no_rtp"
    summary = media.summary
    if summary.loss_ratio > limits.max_loss_ratio:
        return "rtp_loss"
    if limits.max_jitter is not None and summary.jitter_seconds > limits.max_jitter:
        return "rtp_jitter"
    if limits.min_mos is not None and mos is not None and mos < limits.min_mos:
        return "low_mos"
    if options.require_audio and media.voiced_frames < MIN_VOICED_FRAMES:
        return "silence"
    if any(v is False for v in record.step_voice):
        return "silence_after_dtmf"
    return ""


async def probe(options: SipCallOptions, ctx: ProbeContext) -> ProbeResult:
    """Place one test call (through the first located server that takes it) and judge it."""
    return await over_servers(options, ctx, probe_server, keep_deadline=True)


async def probe_server(options: SipCallOptions, ctx: ProbeContext) -> ProbeResult:
    """Place one test call through one server and judge it.

    ``ctx.timeout_seconds`` bounds the wait for the server's first response (its share when
    several servers were located); ``ctx.deadline`` bounds the whole call.
    """
    try:
        plan = options.plan(
            connect_timeout=max(0.001, min(ctx.remaining(), ctx.timeout_seconds)),
            first_response_timeout=ctx.timeout_seconds,
        )
    except SecretUnavailable as exc:
        return ctx.result(Outcome.ERROR, "secret_unavailable", details={"error": str(exc)})
    except (ssl.SSLError, OSError) as exc:
        return ctx.result(Outcome.ERROR, "tls_config_error", details={"error": str(exc)[:300]})
    reserve = min(TEARDOWN_RESERVE_SECONDS, ctx.timeout_seconds / 4)
    try:
        record = await place_call(plan, ctx.deadline - reserve)
    except Exception as exc:
        # A bug or a local resource problem, not evidence against the vendor.
        log.exception("sip_call_probe_failed", target=ctx.target)
        return ctx.result(Outcome.ERROR, type(exc).__name__, details={"error": str(exc)[:300]})
    outcome, reason, phases, details = judge(record, options)
    return ctx.result(outcome, reason, phases=phases, details=details)
