"""``sip_register``: can a user register? REGISTER with digest auth, then un-REGISTER.

The registrar is the first thing a phone needs, so this probe does what a phone does:
REGISTER (``Expires: expires``), answer one 401/407 challenge with the configured
credentials, and when registered remove the binding again (``Expires: 0``) so probing
leaves nothing behind. A second challenge (or a 403) after credentials were sent means the
credentials were refused: ``down`` with ``auth_failed``. A 423 Interval Too Brief is
retried once with the registrar's Min-Expires (kept as ``min_expires``). Each step's code
is kept in the details (``register_challenge_status``, ``register_status``,
``unregister_status``); ``sip_status`` is the REGISTER's final code and ``response`` its
time including the challenge round.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from pydantic import Field

from probes.result import DetailValue, Outcome, ProbeContext, ProbeResult
from probes.sip.digest import Credentials, DigestError, authorize
from probes.sip.message import SipRequest, SipResponse, new_call_id, new_tag, parse_name_addr
from probes.sip.options import SipBaseOptions, parse_sip_uri
from probes.sip.transaction import SipEndpoint, build_request
from probes.sip_options import budget, failure_result, response_details, sip_session
from probes.sip_servers import over_servers

_CHALLENGES = (401, 407)


class SipRegisterOptions(SipBaseOptions):
    """The ``sip_register`` block: the shared SIP fields plus the binding's lifetime."""

    expires: int = Field(default=60, ge=1, le=86400)
    unregister: bool = True


class _AuthFailed(Exception):
    """Credentials were sent and the registrar still refused them."""


def address_of_record(options: SipRegisterOptions) -> str:
    """The AOR registered: ``to_uri``, else user (auth username) at the registrar's domain."""
    if options.to_uri:
        return options.to_uri
    uri = parse_sip_uri(options.uri)
    user = options.auth.username if options.auth else options.contact_user
    return f"{uri.scheme}:{user}@{uri.host}"


async def _exchange(
    endpoint: SipEndpoint,
    request: SipRequest,
    credentials: Credentials | None,
    details: dict[str, DetailValue],
    step: str,
) -> SipResponse:
    """One REGISTER, answering at most one challenge; returns the final response."""
    response = await endpoint.request(request)
    if response.status not in _CHALLENGES:
        return response
    details[f"{step}_challenge_status"] = response.status
    if credentials is None:
        return response
    retry = authorize(request, response, credentials)
    second = await endpoint.request(retry)
    if second.status in _CHALLENGES or second.status == 403:
        details[f"{step}_status"] = second.status
        raise _AuthFailed(f"{step}: credentials refused with {second.status} {second.reason}")
    return second


@dataclass(frozen=True)
class _Binding:
    """What stays the same across every REGISTER of one probe run (RFC 3261 §10.2)."""

    aor: str
    call_id: str
    from_tag: str


def _register_request(
    options: SipRegisterOptions, endpoint: SipEndpoint, binding: _Binding, cseq: int, expires: int
) -> SipRequest:
    uri = parse_sip_uri(options.uri)
    return build_request(
        "REGISTER",
        f"{uri.scheme}:{uri.host}" + (f":{uri.port}" if uri.port else ""),
        from_uri=options.from_uri or binding.aor,
        to_uri=binding.aor,
        call_id=binding.call_id,
        cseq=cseq,
        from_tag=binding.from_tag,
        contact=endpoint.contact(options.contact_user),
        user_agent=options.user_agent,
        extra=[("Expires", str(expires))],
    )


async def _register(
    options: SipRegisterOptions,
    endpoint: SipEndpoint,
    binding: _Binding,
    credentials: Credentials | None,
    details: dict[str, DetailValue],
    *,
    cseq: int,
    expires: int,
    step: str,
) -> SipResponse:
    """One REGISTER step; a 423 Interval Too Brief is retried once with its Min-Expires."""
    request = _register_request(options, endpoint, binding, cseq, expires)
    response = await _exchange(endpoint, request, credentials, details, step)
    minimum = (response.headers.get("Min-Expires") or "").strip()
    if response.status != 423 or not minimum.isdigit():
        return response
    details["min_expires"] = int(minimum)
    retry = _register_request(options, endpoint, binding, response.cseq[0] + 1, int(minimum))
    return await _exchange(endpoint, retry, credentials, details, step)


def granted_expiry(response: SipResponse, contact_user: str) -> int | None:
    """The lifetime the registrar granted our binding (Contact expires, else Expires)."""
    for value in response.headers.get_all("Contact"):
        try:
            address = parse_name_addr(value)
        except ValueError:
            continue
        if f":{contact_user}@" in address.uri:
            for key, param in address.params:
                if key == "expires" and param is not None and param.isdigit():
                    return int(param)
    header = response.headers.get("Expires")
    return int(header) if header is not None and header.strip().isdigit() else None


async def probe(options: SipRegisterOptions, ctx: ProbeContext) -> ProbeResult:
    """REGISTER (with digest auth), then un-REGISTER, at each located server in turn."""
    return await over_servers(options, ctx, probe_server)


async def probe_server(options: SipRegisterOptions, ctx: ProbeContext) -> ProbeResult:
    """REGISTER (with digest auth), then un-REGISTER, at one server."""
    phases: dict[str, float] = {}
    details: dict[str, DetailValue] = {"transport": options.effective_transport()}
    try:
        credentials = options.credentials()
        async with (
            asyncio.timeout(budget(ctx)),
            sip_session(options, ctx, phases, details) as endpoint,
        ):
            local_host = endpoint.transport.local[0]
            binding = _Binding(address_of_record(options), new_call_id(local_host), new_tag())
            started = time.monotonic()
            response = await _register(
                options, endpoint, binding, credentials, details,
                cseq=1, expires=options.expires, step="register",
            )  # fmt: skip
            phases["response"] = time.monotonic() - started
            details.update(response_details(response))
            details["register_status"] = response.status
            if response.status in _CHALLENGES:
                details["error"] = "registrar demands credentials and none are configured"
                return ctx.result(Outcome.DOWN, "auth_required", phases=phases, details=details)
            if not options.accepts(response.status):
                reason = f"status_code_{response.status}"
                return ctx.result(Outcome.DOWN, reason, phases=phases, details=details)
            granted = granted_expiry(response, options.contact_user)
            if granted is not None:
                details["expires_granted"] = granted
            if options.unregister:
                started = time.monotonic()
                final = await _register(
                    options, endpoint, binding, credentials, details,
                    cseq=response.cseq[0] + 1, expires=0, step="unregister",
                )  # fmt: skip
                phases["unregister"] = time.monotonic() - started
                details["unregister_status"] = final.status
                if not 200 <= final.status < 300:
                    reason = f"unregister_status_code_{final.status}"
                    return ctx.result(Outcome.DOWN, reason, phases=phases, details=details)
    except asyncio.CancelledError:
        raise
    except _AuthFailed as exc:
        details["error"] = str(exc)
        return ctx.result(Outcome.DOWN, "auth_failed", phases=phases, details=details)
    except DigestError as exc:
        details["error"] = str(exc)
        return ctx.result(Outcome.DOWN, exc.reason, phases=phases, details=details)
    except Exception as exc:
        return failure_result(ctx, exc, phases, details)
    return ctx.result(Outcome.UP, phases=phases, details=details)
