"""A SIP peer answering for another transaction proves nothing (issue 11, defect 8).

RFC 3261 clients match a response to their transaction by the top Via branch and CSeq method
(§17.1.3) and the UAC checks Call-ID, CSeq number and From tag (§8.1.3.3). A confused peer's
200 carrying another dialog's Call-ID, or no From/To at all, matched on branch + CSeq alone and
counted as ``up``. Each hostile peer here is a loopback UDP socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from probes.result import Outcome, ProbeContext, ProbeResult
from probes.sip.message import SipRequest
from probes.sip.transaction import TransactionError
from probes.sip_options import SipOptionsOptions, probe
from tests.test_sip_transaction import (
    UdpResponder,
    answer,
    open_endpoint,
    options_request,
    udp_responder,
)

pytestmark = pytest.mark.timeout(60)

Rewrite = Callable[[SipRequest], SipRequest]


def _replaced(name: str, value: str) -> Rewrite:
    return lambda request: request.with_headers(request.headers.with_replaced(name, value))


def _without(*names: str) -> Rewrite:
    def rewrite(request: SipRequest) -> SipRequest:
        headers = request.headers
        for name in names:
            headers = headers.without(name)
        return request.with_headers(headers)

    return rewrite


def _other_from_tag(request: SipRequest) -> SipRequest:
    value = request.headers.get("From") or ""
    return request.with_headers(
        request.headers.with_replaced("From", value.split(";tag=")[0] + ";tag=someone-else")
    )


HOSTILE: dict[str, Rewrite] = {
    "other_call_id": _replaced("Call-ID", "another-dialog@192.0.2.9"),
    "no_from_no_to": _without("From", "To"),
    "other_cseq_number": _replaced("CSeq", "7 OPTIONS"),
    "other_from_tag": _other_from_tag,
}


def _peer(rewrite: Rewrite, *, then_valid: bool = False) -> Callable[..., Sequence[bytes]]:
    """A peer answering 200 to a rewritten copy of each request (and then, optionally, a
    correct 200)."""

    def behaviour(_: UdpResponder, request: SipRequest) -> Sequence[bytes]:
        out = [answer(rewrite(request), 200, "OK")]
        if then_valid:
            out.append(answer(request, 200, "OK"))
        return out

    return behaviour


async def _probe(port: int, budget: float = 5.0) -> ProbeResult:
    options = SipOptionsOptions(uri=f"sip:ping@127.0.0.1:{port}", t1=0.01)
    ctx = ProbeContext.starting_now("sip-hostile", budget)
    return await asyncio.wait_for(probe(options, ctx), budget + 1)


class TestMismatchedResponses:
    @pytest.mark.parametrize("name", sorted(HOSTILE))
    async def test_probe_is_not_up(self, name: str) -> None:
        """A 200 for another transaction fails the probe with reason mismatched_response
        (Timer F = 64*T1 = 0.64 s), naming what differed; today it read as up."""
        async with udp_responder(_peer(HOSTILE[name])) as peer:
            result = await _probe(peer.port)
        assert result.outcome is Outcome.DOWN, result
        assert result.reason == "mismatched_response"
        assert "a reply with its branch was discarded" in str(result.details["error"])

    @pytest.mark.parametrize("name", sorted(HOSTILE))
    async def test_the_matching_answer_still_counts(self, name: str) -> None:
        """A stray 200 followed by the right one: the right one is the answer (up)."""
        async with udp_responder(_peer(HOSTILE[name], then_valid=True)) as peer:
            result = await _probe(peer.port)
        assert result.outcome is Outcome.UP, result

    async def test_endpoint_counts_the_stray_and_says_why(self) -> None:
        """At the transaction layer: the reply is counted as stray, and the error names the
        Call-ID that differed."""
        rewrite = HOSTILE["other_call_id"]
        async with (
            udp_responder(_peer(rewrite)) as peer,
            await open_endpoint(peer.port, t1=0.005) as endpoint,
        ):
            with pytest.raises(TransactionError) as caught:
                await asyncio.wait_for(endpoint.request(options_request(peer.port)), 5)
            strays = endpoint.stats.stray_responses
        assert caught.value.reason == "mismatched_response"
        assert "Call-ID 'another-dialog@192.0.2.9' is not" in str(caught.value)
        assert strays >= 1
