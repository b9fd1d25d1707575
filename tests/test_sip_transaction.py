"""Tests for probes/sip/transaction.py and transport.py against tiny asyncio SIP peers.

The peers here are real sockets on 127.0.0.1 that answer with whatever a test scripts:
correct, malformed, oversized, foreign-branch or no replies at all. ``UdpResponder`` and
``tcp_responder`` are also used by tests/test_sip_options.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
from hypothesis import given, settings

from probes.sip.message import (
    SipMessage,
    SipRequest,
    SipResponse,
    build_2xx_ack,
    make_response,
    new_call_id,
    new_tag,
    parse_message,
    parse_name_addr,
)
from probes.sip.transaction import SipEndpoint, TransactionError, build_request
from probes.sip.transport import Target
from tests import sip_peers
from tests.sip_peers import KamailioPeer
from tests.strategies import sip_reply_scripts

Behaviour = Callable[["UdpResponder", SipRequest], Sequence[bytes]]

kamailio = sip_peers.kamailio


def answer(request: SipRequest, status: int, reason: str, **kwargs: object) -> bytes:
    """The encoded response to ``request`` (helper for behaviours)."""
    return make_response(request, status, reason, to_tag="peer", **kwargs).encode()  # type: ignore[arg-type]


class UdpResponder(asyncio.DatagramProtocol):
    """A UDP SIP peer: records every datagram (with arrival time) and answers via a behaviour."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.received: list[tuple[float, bytes]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.client: tuple[str, int] | None = None
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.received.append((time.monotonic(), data))
        self.client = (str(addr[0]), int(addr[1]))
        message = parse_message(data)
        if isinstance(message, SipRequest):
            for out in self.behaviour(self, message):
                self.send(out)

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        assert self.client is not None
        self.transport.sendto(data, self.client)

    def messages(self) -> list[SipMessage]:
        return [parse_message(raw) for _, raw in self.received]

    def requests(self, method: str) -> list[SipRequest]:
        return [m for m in self.messages() if isinstance(m, SipRequest) and m.method == method]


@contextlib.asynccontextmanager
async def udp_responder(
    behaviour: Behaviour, host: str = "127.0.0.1"
) -> AsyncIterator[UdpResponder]:
    """A running ``UdpResponder`` on ``host``, port picked by the kernel."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: UdpResponder(behaviour), local_addr=(host, 0)
    )
    try:
        yield protocol
    finally:
        transport.close()


StreamBehaviour = Callable[[bytes], bytes | None]


@contextlib.asynccontextmanager
async def tcp_responder(behaviour: StreamBehaviour) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A TCP peer: for each chunk read, sends ``behaviour(chunk)``; None closes the connection."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                received.append(chunk)
                out = behaviour(chunk)
                if out is None:
                    break
                writer.write(out)
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], received
    finally:
        server.close()


def options_request(port: int) -> SipRequest:
    return build_request(
        "OPTIONS",
        f"sip:ping@127.0.0.1:{port}",
        from_uri="sip:probe@127.0.0.1",
        to_uri=f"sip:ping@127.0.0.1:{port}",
        call_id=new_call_id("127.0.0.1"),
        cseq=1,
        from_tag=new_tag(),
    )


def invite_request(port: int, endpoint: SipEndpoint) -> SipRequest:
    return build_request(
        "INVITE",
        f"sip:ivr@127.0.0.1:{port}",
        from_uri="sip:probe@127.0.0.1",
        to_uri=f"sip:ivr@127.0.0.1:{port}",
        call_id=new_call_id("127.0.0.1"),
        cseq=1,
        from_tag=new_tag(),
        contact=endpoint.contact("probe"),
    )


async def open_endpoint(port: int, transport: str = "udp", **kwargs: object) -> SipEndpoint:
    target = Target(transport, "127.0.0.1", port, bind_host="127.0.0.1")  # type: ignore[arg-type]
    return await SipEndpoint.open(target, **kwargs)  # type: ignore[arg-type]


def silent(_: UdpResponder, __: SipRequest) -> Sequence[bytes]:
    return []


class TestNonInviteTransaction:
    async def test_retransmits_over_udp_doubling_up_to_t2_then_times_out(self) -> None:
        """Timer E: gaps T1, 2T1, 4T1 then T2; Timer F = 64*T1 ends it with reason timeout."""
        t1, t2 = 0.02, 0.08
        async with (
            udp_responder(silent) as peer,
            await open_endpoint(peer.port, t1=t1, t2=t2) as ep,
        ):
            started = time.monotonic()
            with pytest.raises(TransactionError, match="Timer F") as info:
                await asyncio.wait_for(ep.request(options_request(peer.port)), 5)
            elapsed = time.monotonic() - started
        assert info.value.reason == "timeout"
        assert 64 * t1 <= elapsed < 64 * t1 + 1.0
        times = [at for at, _ in peer.received]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # Timers never fire early; on a busy machine they may fire late, so fewer sends.
        for gap, expected in zip(gaps, [t1, 2 * t1, 4 * t1] + [t2] * 20, strict=False):
            assert gap >= expected * 0.8
        assert 10 <= len(times) <= 18
        assert ep.stats.retransmissions == len(times) - 1
        assert len({raw for _, raw in peer.received}) == 1  # retransmissions are identical

    async def test_no_retransmission_over_tcp(self) -> None:
        """Over TCP the request is sent once; Timer F still ends the wait."""
        silent_tcp = tcp_responder(lambda chunk: b"")
        async with silent_tcp as (port, received), await open_endpoint(port, "tcp", t1=0.01) as ep:
            with pytest.raises(TransactionError) as info:
                await asyncio.wait_for(ep.request(options_request(port)), 5)
        assert info.value.reason == "timeout"
        assert b"".join(received).count(b"OPTIONS sip:") == 1

    async def test_replies_for_other_transactions_are_ignored(self) -> None:
        """A reply with a foreign branch or another CSeq method does not complete the request."""

        def behaviour(_: UdpResponder, request: SipRequest) -> Sequence[bytes]:
            foreign = request.with_headers(
                request.headers.with_replaced("Via", "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKother")
            )
            wrong_method = request.with_headers(request.headers.with_replaced("CSeq", "1 INVITE"))
            return [
                answer(foreign, 500, "Foreign"),
                answer(wrong_method, 500, "Wrong Method"),
                answer(request, 200, "Mine"),
            ]

        async with udp_responder(behaviour) as peer, await open_endpoint(peer.port, t1=0.05) as ep:
            response = await asyncio.wait_for(ep.request(options_request(peer.port)), 5)
        assert (response.status, response.reason) == (200, "Mine")
        assert ep.stats.stray_responses == 2

    async def test_only_malformed_replies_fail_as_malformed_response(self) -> None:
        """If every reply is unparseable, the reason says so instead of a bare timeout."""
        garbage = udp_responder(lambda p, r: [b"SIP/2.0 abc\r\n\r\n"])
        async with garbage as peer, await open_endpoint(peer.port, t1=0.005) as ep:
            with pytest.raises(TransactionError, match="unparseable") as info:
                await asyncio.wait_for(ep.request(options_request(peer.port)), 5)
        assert info.value.reason == "malformed_response"
        assert ep.stats.garbage_received >= 1

    async def test_garbage_before_the_answer_does_not_stall(self) -> None:
        """Hostile noise followed by a real answer: the answer wins, at once."""
        noise = [b"\x00\xff" * 50, b"SIP/2.0 200 OK\r\nCSeq: 1\r\n\r\n", b"\r\n\r\n"]
        behaviour: Behaviour = lambda p, r: [*noise, answer(r, 200, "OK")]  # noqa: E731
        async with udp_responder(behaviour) as peer, await open_endpoint(peer.port, t1=1) as ep:
            response = await asyncio.wait_for(ep.request(options_request(peer.port)), 0.5)
        assert response.status == 200

    async def test_provisional_reaches_callback_then_final(self) -> None:
        """A 100 Trying goes to on_provisional; the final is returned."""
        seen: list[int] = []
        behaviour: Behaviour = lambda p, r: [answer(r, 100, "Trying"), answer(r, 503, "Busy")]  # noqa: E731
        async with udp_responder(behaviour) as peer, await open_endpoint(peer.port) as ep:
            request = options_request(peer.port)
            response = await asyncio.wait_for(
                ep.request(request, on_provisional=lambda r: seen.append(r.status)), 5
            )
        assert seen == [100]
        assert response.status == 503

    async def test_icmp_port_unreachable_is_connection_refused(self) -> None:
        """UDP to a closed port fails fast with connection_refused, long before Timer F."""
        async with udp_responder(silent) as peer:
            port = peer.port
        started = time.monotonic()
        async with await open_endpoint(port, t1=0.5) as ep:
            with pytest.raises(TransactionError) as info:
                await asyncio.wait_for(ep.request(options_request(port)), 5)
        assert info.value.reason == "connection_refused"
        assert time.monotonic() - started < 1.0

    async def test_tcp_connect_refused(self) -> None:
        """A closed TCP port fails at open with connection_refused."""
        async with tcp_responder(lambda c: b"") as (port, _):
            pass
        with pytest.raises(TransactionError) as info:
            await open_endpoint(port, "tcp")
        assert info.value.reason == "connection_refused"

    async def test_oversized_tcp_reply_fails_with_reason(self) -> None:
        """A reply over 64 KiB on a stream fails the transaction with message_too_large."""

        def huge(chunk: bytes) -> bytes:
            request = parse_message(chunk)
            assert isinstance(request, SipRequest)
            return make_response(request, 200, "OK", body=b"x" * 70_000).encode()

        async with tcp_responder(huge) as (port, _), await open_endpoint(port, "tcp") as ep:
            with pytest.raises(TransactionError, match="exceeds") as info:
                await asyncio.wait_for(ep.request(options_request(port)), 5)
        assert info.value.reason == "message_too_large"

    async def test_connection_closed_by_peer(self) -> None:
        """The peer hanging up mid-transaction fails it with connection_closed."""
        async with (
            tcp_responder(lambda c: None) as (port, _),
            await open_endpoint(port, "tcp") as ep,
        ):
            with pytest.raises(TransactionError) as info:
                await asyncio.wait_for(ep.request(options_request(port)), 5)
        assert info.value.reason == "connection_closed"

    async def test_tcp_reply_split_and_framed(self) -> None:
        """A 200 preceded by a keep-alive CRLF and carrying a body is framed by Content-Length."""

        def reply(chunk: bytes) -> bytes:
            request = parse_message(chunk)
            assert isinstance(request, SipRequest)
            return b"\r\n" + make_response(request, 200, "OK", body=b"v=0\r\n").encode()

        async with tcp_responder(reply) as (port, _), await open_endpoint(port, "tcp") as ep:
            response = await asyncio.wait_for(ep.request(options_request(port)), 5)
        assert response.body == b"v=0\r\n"


def _invite_peer(final: int, *, repeat: int = 1, ring: bool = False) -> Behaviour:
    def behaviour(peer: UdpResponder, request: SipRequest) -> Sequence[bytes]:
        if request.method == "INVITE":
            out = [answer(request, 180, "Ringing")] if ring else []
            if final:
                extra = [("Contact", f"<sip:ivr@127.0.0.1:{peer.port}>")]
                out += [answer(request, final, "Final", extra=extra)] * repeat
            return out
        if request.method == "CANCEL":
            invite = peer.requests("INVITE")[0]
            return [answer(request, 200, "OK"), answer(invite, 487, "Request Terminated")]
        return []

    return behaviour


class TestInviteTransaction:
    async def test_non2xx_final_is_acked_by_the_transaction(self) -> None:
        """486 -> the transaction sends ACK with the INVITE's branch and the 486's To tag."""
        async with udp_responder(_invite_peer(486)) as peer, await open_endpoint(peer.port) as ep:
            tx = ep.invite(invite_request(peer.port, ep))
            response = await asyncio.wait_for(tx.final_response(), 5)
            await asyncio.sleep(0.05)
        assert response.status == 486
        [ack] = peer.requests("ACK")
        assert ack.top_via.branch == tx.request.top_via.branch
        assert ack.cseq == (1, "ACK")
        assert parse_name_addr(ack.headers.get("To") or "").tag == "peer"

    async def test_retransmitted_final_is_acked_again(self) -> None:
        """Each copy of a retransmitted 486 gets an ACK (the peer's Timer G path)."""
        peer_cm = udp_responder(_invite_peer(486, repeat=3))
        async with peer_cm as peer, await open_endpoint(peer.port) as ep:
            tx = ep.invite(invite_request(peer.port, ep))
            await asyncio.wait_for(tx.final_response(), 5)
            await asyncio.sleep(0.05)
        assert len(peer.requests("ACK")) == 3

    async def test_invite_retransmits_without_cap_and_times_out_with_timer_b(self) -> None:
        """Timer A doubles with no T2 cap; Timer B = 64*T1."""
        t1 = 0.02
        async with (
            udp_responder(silent) as peer,
            await open_endpoint(peer.port, t1=t1, t2=0.04) as ep,
        ):
            tx = ep.invite(invite_request(peer.port, ep))
            with pytest.raises(TransactionError, match="Timer B"):
                await asyncio.wait_for(tx.final_response(), 5)
        times = [at for at, _ in peer.received]
        # 0, T1, 3T1, 7T1, 15T1, 31T1, 63T1: seven sends before 64*T1.
        assert 5 <= len(times) <= 7
        assert times[-1] - times[-2] >= 8 * t1 * 0.8

    async def test_provisional_stops_retransmission_and_cancel_ends_with_487(self) -> None:
        """After 180 nothing is resent; CANCEL gets 200, the INVITE 487, which is ACKed."""
        ringing: list[int] = []
        peer_cm = udp_responder(_invite_peer(0, ring=True))
        async with peer_cm as peer, await open_endpoint(peer.port, t1=0.05) as ep:
            tx = ep.invite(
                invite_request(peer.port, ep), on_provisional=lambda r: ringing.append(r.status)
            )
            await asyncio.sleep(0.4)  # would be 3 retransmissions without the 180
            cancel_response = await asyncio.wait_for(tx.cancel(), 5)
            final = await asyncio.wait_for(tx.final_response(), 5)
            await asyncio.sleep(0.05)
        assert ringing == [180]
        assert len(peer.requests("INVITE")) == 1
        assert cancel_response is not None
        assert cancel_response.status == 200
        assert final.status == 487
        [cancel] = peer.requests("CANCEL")
        assert cancel.top_via.branch == tx.request.top_via.branch
        assert len(peer.requests("ACK")) == 1

    async def test_closing_the_endpoint_ends_a_pending_invite(self) -> None:
        """close() fails a still-running INVITE with connection_closed instead of leaving it."""
        async with udp_responder(silent) as peer:
            ep = await open_endpoint(peer.port)
            tx = ep.invite(invite_request(peer.port, ep))
            await asyncio.sleep(0.01)
            await ep.close()
            with pytest.raises(TransactionError) as info:
                await asyncio.wait_for(tx.final_response(), 1)
        assert info.value.reason == "connection_closed"

    async def test_provisional_turns_non_invite_retransmission_to_t2(self) -> None:
        """After a 100 Trying a non-INVITE is resent every T2 until Timer F (RFC 3261 §17.1.2.2)."""
        t1, t2 = 0.02, 0.16

        def trying_once(peer: UdpResponder, request: SipRequest) -> Sequence[bytes]:
            return [answer(request, 100, "Trying")] if len(peer.received) == 1 else []

        async with (
            udp_responder(trying_once) as peer,
            await open_endpoint(peer.port, t1=t1, t2=t2) as ep,
        ):
            with pytest.raises(TransactionError):
                await asyncio.wait_for(ep.request(options_request(peer.port)), 5)
        times = [at for at, _ in peer.received]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # Without the 100 the first gaps would be T1, 2T1, 4T1 (0.02, 0.04, 0.08).
        assert all(gap >= t2 * 0.8 for gap in gaps[1:])
        assert 5 <= len(times) <= 9

    async def test_cancel_after_final_is_a_no_op(self) -> None:
        """Once the final response is in, cancel() sends nothing and returns None."""
        async with udp_responder(_invite_peer(486)) as peer, await open_endpoint(peer.port) as ep:
            tx = ep.invite(invite_request(peer.port, ep))
            await asyncio.wait_for(tx.final_response(), 5)
            assert await tx.cancel() is None
        assert peer.requests("CANCEL") == []

    async def test_2xx_ack_is_the_callers_and_is_resent_on_retransmission(self) -> None:
        """The transaction does not ACK a 2xx; the caller's ACK (new branch) is resent per 2xx."""
        async with udp_responder(_invite_peer(200)) as peer, await open_endpoint(peer.port) as ep:
            tx = ep.invite(invite_request(peer.port, ep))
            response = await asyncio.wait_for(tx.final_response(), 5)
            await asyncio.sleep(0.05)
            assert peer.requests("ACK") == []
            sent = tx.ack(build_2xx_ack(tx.request, response))
            invite = peer.requests("INVITE")[0]
            peer.send(answer(invite, 200, "Again", extra=[("Contact", "<sip:ivr@127.0.0.1>")]))
            await asyncio.sleep(0.05)
        acks = peer.requests("ACK")
        assert len(acks) == 2
        assert acks[0].uri == f"sip:ivr@127.0.0.1:{peer.port}"
        assert sent.top_via.branch != tx.request.top_via.branch
        assert {a.top_via.branch for a in acks} == {sent.top_via.branch}


class TestPeerRequests:
    async def test_bye_reaches_handler_and_retransmission_gets_cached_answer(self) -> None:
        """A BYE from the peer is handed to on_request; its retransmission is answered again."""
        got: list[str] = []

        def handler(ep: SipEndpoint, request: SipRequest) -> None:
            got.append(request.method)
            ep.respond(request, 200, "OK")

        peer_cm = udp_responder(_invite_peer(200))
        async with peer_cm as peer, await open_endpoint(peer.port, on_request=handler) as ep:
            tx = ep.invite(invite_request(peer.port, ep))
            response = await asyncio.wait_for(tx.final_response(), 5)
            bye = build_request(
                "BYE", "sip:probe@127.0.0.1", from_uri="sip:ivr@127.0.0.1",
                to_uri="sip:probe@127.0.0.1", call_id=response.call_id, cseq=1, from_tag="peer",
                to_tag=parse_name_addr(tx.request.headers.get("From") or "").tag,
            )  # fmt: skip
            via = f"SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bKbye"
            raw = bye.with_headers(bye.headers.prepend("Via", via)).encode()
            peer.send(raw)
            peer.send(raw)
            await asyncio.sleep(0.1)
        assert got == ["BYE"]
        answers = [m for m in peer.messages() if isinstance(m, SipResponse)]
        assert [(a.status, a.cseq[1]) for a in answers] == [(200, "BYE"), (200, "BYE")]

    async def test_without_handler_the_endpoint_answers_501(self) -> None:
        """Requests nobody handles get 501 Not Implemented, not silence."""
        async with udp_responder(_invite_peer(486)) as peer, await open_endpoint(peer.port) as ep:
            tx = ep.invite(invite_request(peer.port, ep))
            await asyncio.wait_for(tx.final_response(), 5)
            info = build_request(
                "INFO", "sip:probe@127.0.0.1", from_uri="sip:ivr@127.0.0.1",
                to_uri="sip:probe@127.0.0.1", call_id="x", cseq=9, from_tag="p",
            )  # fmt: skip
            info = info.with_headers(
                info.headers.prepend("Via", "SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKi")
            )
            peer.send(info.encode())
            await asyncio.sleep(0.1)
        answers = [m for m in peer.messages() if isinstance(m, SipResponse)]
        assert [(a.status, a.cseq) for a in answers] == [(501, (9, "INFO"))]


class TestEndpointValidation:
    async def test_bad_timer_values_rejected(self) -> None:
        """T1 must be positive and not above T2."""
        with pytest.raises(ValueError, match="t1 must be"):
            await SipEndpoint.open(Target("udp", "127.0.0.1", 9), t1=5, t2=4)

    async def test_request_refuses_invite(self) -> None:
        """request() is for non-INVITE; INVITE must go through invite()."""
        async with udp_responder(silent) as peer, await open_endpoint(peer.port) as ep:
            with pytest.raises(ValueError, match="use invite"):
                await ep.request(invite_request(peer.port, ep))


def _scripted(script: list[str | bytes]) -> Behaviour:
    def behaviour(_: UdpResponder, request: SipRequest) -> Sequence[bytes]:
        out: list[bytes] = []
        for step in script:
            if isinstance(step, bytes):
                out.append(step)
            elif step == "valid":
                out.append(answer(request, 200, "OK"))
            elif step == "provisional":
                out.append(answer(request, 100, "Trying"))
            elif step == "truncated":
                out.append(answer(request, 200, "OK", body=b"0123456789")[:-4])
            else:
                header = ("Via", "SIP/2.0/UDP x;branch=z9hG4bKzz")
                if step == "other_method":
                    header = ("CSeq", "1 REGISTER")
                other = request.with_headers(request.headers.with_replaced(*header))
                out.append(answer(other, 200, "OK"))
        return out

    return behaviour


class TestHostilePeers:
    @settings(max_examples=25, deadline=None)
    @given(sip_reply_scripts)
    async def test_any_reply_script_ends_cleanly(self, script: list[str | bytes]) -> None:
        """Whatever a peer sends, the request ends with its own 200 or a clear reason, quickly."""
        script_peer = udp_responder(_scripted(script))
        async with script_peer as peer, await open_endpoint(peer.port, t1=0.002) as ep:
            pending = asyncio.wait_for(ep.request(options_request(peer.port)), 2)
            if "valid" in script:
                response = await pending
                assert (response.status, response.reason) == (200, "OK")
            else:
                with pytest.raises(TransactionError) as info:
                    await pending
                assert info.value.reason in ("timeout", "malformed_response")

    async def test_failing_request_handler_answers_500(self) -> None:
        """A handler that raises gets the request answered 500; the endpoint keeps working."""

        def broken(ep: SipEndpoint, request: SipRequest) -> None:
            raise RuntimeError("handler bug")

        peer_cm = udp_responder(_invite_peer(486))
        async with peer_cm as peer, await open_endpoint(peer.port, on_request=broken) as ep:
            tx = ep.invite(invite_request(peer.port, ep))
            await asyncio.wait_for(tx.final_response(), 5)
            bye = build_request(
                "BYE", "sip:probe@127.0.0.1", from_uri="sip:ivr@127.0.0.1",
                to_uri="sip:probe@127.0.0.1", call_id="x", cseq=2, from_tag="p",
            )  # fmt: skip
            via = "SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKb"
            raw = bye.with_headers(bye.headers.prepend("Via", via)).encode()
            peer.send(raw)
            await asyncio.sleep(0.05)
            peer.send(raw)  # the retransmission gets the same 500: the endpoint still works
            await asyncio.sleep(0.05)
        answers = [m for m in peer.messages() if isinstance(m, SipResponse)]
        assert [(a.status, a.cseq[1]) for a in answers] == [(500, "BYE"), (500, "BYE")]

    async def test_cancel_waits_for_a_late_provisional(self) -> None:
        """CANCEL before any provisional waits for the 180, then goes out (RFC 3261 §9.1)."""

        def late_ringing(peer: UdpResponder, request: SipRequest) -> Sequence[bytes]:
            if request.method == "INVITE":
                loop = asyncio.get_running_loop()
                loop.call_later(0.1, peer.send, answer(request, 180, "Ringing"))
                return []
            return _invite_peer(0)(peer, request)

        async with udp_responder(late_ringing) as peer, await open_endpoint(peer.port) as ep:
            tx = ep.invite(invite_request(peer.port, ep))
            started = time.monotonic()
            cancelled = await asyncio.wait_for(tx.cancel(), 5)
            waited = time.monotonic() - started
            final = await asyncio.wait_for(tx.final_response(), 5)
        assert cancelled is not None
        assert cancelled.status == 200
        assert waited >= 0.09
        assert final.status == 487


class TestAgainstKamailio:
    @pytest.mark.parametrize("transport", ["udp", "tcp"])
    async def test_busy_invite_is_486_and_options_200(
        self, kamailio: KamailioPeer, transport: str
    ) -> None:
        """Kamailio's busy user: INVITE ends 486; an OPTIONS on the same endpoint gets 200."""
        async with await open_endpoint(kamailio.port, transport) as ep:
            invite = build_request(
                "INVITE", kamailio.uri("busy"), from_uri="sip:probe@127.0.0.1",
                to_uri=kamailio.uri("busy"), call_id=new_call_id("127.0.0.1"), cseq=1,
                from_tag=new_tag(), contact=ep.contact("probe"),
            )  # fmt: skip
            final = await asyncio.wait_for(ep.invite(invite).final_response(), 5)
            options = await asyncio.wait_for(ep.request(options_request(kamailio.port)), 5)
        assert (final.status, final.reason) == (486, "Busy Here")
        assert options.status == 200
        assert ep.stats.stray_responses == 0

    async def test_rport_is_filled_in_by_kamailio(self, kamailio: KamailioPeer) -> None:
        """We ask for rport (RFC 3581); Kamailio's reply names our real source port."""
        async with await open_endpoint(kamailio.port) as ep:
            response = await asyncio.wait_for(ep.request(options_request(kamailio.port)), 5)
        assert response.top_via.rport == ep.transport.local[1]
        assert response.top_via.received == "127.0.0.1"
