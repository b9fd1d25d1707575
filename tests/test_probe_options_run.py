"""What check-config accepts must run (issue 11, defect 2).

For each probe kind, Hypothesis writes an options block; whatever the kind's options model
(the one ``check-config`` validates with) accepts is then run against a loopback peer started
here. The probe may be up, down or time out -- the peer is simple -- but never ``error``: an
error outcome from options the file was allowed to hold means a bound in the model differs
from the bound at run time (SIP ``t1`` allowed up to 10 s while the transaction layer refused
more than T2 = 4 s, so every probe of such a target was a ``probe_error``).

Peers: aiohttp (http), an asyncio line server (tcp), a dnspython-built answerer (dns), and a
UDP SIP responder (sip_options, sip_register, sip_call: 200 to OPTIONS/REGISTER, 486 to INVITE).
Each example starts its own peer; example counts are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pydantic
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from probes.registry import PROBE_KINDS
from probes.result import Outcome, ProbeContext, ProbeResult
from probes.sip.message import SipRequest
from probes.sip.options import MAX_T1_SECONDS, SipBaseOptions
from probes.sip.transaction import SipEndpoint
from probes.sip_options import SipOptionsOptions
from tests.test_sip_transaction import UdpResponder, answer, udp_responder

pytestmark = pytest.mark.timeout(300)

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
SECRET_FILE = Path(tempfile.mkdtemp(prefix="slawatch-options-")) / "secret"
"""A secret every generated ``{file: ...}`` reference points at (its content is not an option,
so it is a plain token: a missing or odd secret is another issue's error)."""

# -- shared strategies -------------------------------------------------------------------------

_REGEX_PARTS = ["ok", "OK", r"\d+", "(?i)ok", ".*", "^", "$", "[a-z]+", "x|y", "é", "(?u)ok"]
_REGEX_PARTS += [r"\N{DIGIT ONE}", r"\w", "(?a)ok", "(?s).", "a{2,3}", "(", "[", "\\"]
regexps = st.lists(
    st.one_of(
        st.lists(st.sampled_from(_REGEX_PARTS), min_size=1, max_size=3).map("".join),
        st.text(max_size=6),
    ),
    max_size=3,
)
"""Patterns as a file might hold them: common, Unicode-only and broken ones (refused)."""

durations = st.one_of(
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["0s", "250ms", "1s", "5s", "1m", "1h30m", "4s", "4.000001s", "10s", "1w"]),
)
ip_protocols = st.sampled_from(["any", "ip4", "ip6"])
secret_refs = st.just({"file": str(SECRET_FILE)})


def _accepted(kind: str, raw: dict[str, Any]) -> Any:
    """The options ``check-config`` would accept, or the example is rejected."""
    try:
        return PROBE_KINDS[kind].options.model_validate(raw)
    except pydantic.ValidationError:
        reject()


async def _run(kind: str, options: Any, budget: float) -> ProbeResult:
    ctx = ProbeContext.starting_now(f"{kind}-property", budget)
    async with asyncio.timeout(budget + 5):
        return await PROBE_KINDS[kind].run(options, ctx)


def _assert_ran(raw: dict[str, Any], result: ProbeResult) -> None:
    """Up, down or timeout: anything but the monitor's own error."""
    assert result.outcome is not Outcome.ERROR, (raw, result.reason, dict(result.details))


@pytest.fixture(scope="module", autouse=True)
def secret_file() -> Iterator[None]:
    """The secret behind every generated reference (printable ASCII, as tokens are)."""
    SECRET_FILE.write_text("s3cret-token\n", encoding="utf-8")
    yield
    shutil.rmtree(SECRET_FILE.parent, ignore_errors=True)


# -- http --------------------------------------------------------------------------------------


async def _http_any(request: web.Request) -> web.Response:
    path = request.match_info["tail"]
    if path.startswith("status/"):
        code = int(path.split("/")[1])
        return web.Response(status=code, headers={"Location": "/ok"} if code < 400 else None)
    if path.startswith("redirect"):
        raise web.HTTPFound("/ok")
    if path == "big":
        return web.Response(body=b"x" * 300_000)
    return web.Response(text="ok: 1 service nominal")


@contextlib.asynccontextmanager
async def _http_peer() -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _http_any)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


_TOKEN_CHARS = "!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"
tokens = st.text(st.sampled_from(_TOKEN_CHARS), min_size=1, max_size=10)
status_specs = st.one_of(
    st.integers(min_value=100, max_value=599),
    st.sampled_from(["2xx", "3xx", "5xx", "200-299", "404", "500-503"]),
)
http_auth = st.one_of(
    st.none(),
    st.builds(lambda t: {"bearer": t}, secret_refs),
    st.builds(
        lambda u, p: {"basic": {"username": u, "password": p}}, st.text(max_size=8), secret_refs
    ),
)


@st.composite
def http_raw(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "url": draw(st.sampled_from(["/ok", "/status/503", "/status/302", "/redirect", "/big"])),
        "method": draw(st.one_of(st.sampled_from(["GET", "POST", "HEAD", "put"]), tokens)),
        "headers": draw(st.dictionaries(tokens, st.text(max_size=12), max_size=3)),
        "valid_status_codes": draw(st.lists(status_specs, max_size=3)),
        "fail_if_body_matches_regexp": draw(regexps),
        "fail_if_body_not_matches_regexp": draw(regexps),
        "max_body_bytes": draw(st.integers(min_value=0, max_value=2**63)),
        "follow_redirects": draw(st.booleans()),
        "max_redirects": draw(st.integers(min_value=0, max_value=100)),
        "preferred_ip_protocol": draw(ip_protocols),
        "ip_protocol_fallback": draw(st.booleans()),
    }
    body = draw(st.one_of(st.none(), st.text(max_size=20)))
    if body is not None:
        raw["body"] = body
    auth = draw(http_auth)
    if auth is not None:
        raw["auth"] = auth
    return raw


class TestHttp:
    @EXAMPLES
    @given(raw=http_raw())
    async def test_accepted_options_run(self, raw: dict[str, Any]) -> None:
        """Any accepted http block runs against a loopback server without an error outcome."""
        async with _http_peer() as port:
            raw = {**raw, "url": f"http://127.0.0.1:{port}{raw['url']}"}
            options = _accepted("http", raw)
            result = await _run("http", options, 2.0)
        _assert_ran(raw, result)


# -- tcp ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _line_peer() -> AsyncIterator[int]:
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            writer.write("220 ready é 1\r\n".encode())
            await writer.drain()
            while line := await reader.readline():
                writer.write(b"250 ok " + line)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for writer in writers:
            # Ends a handler still reading (the probe gave up): readline returns b"".
            writer.transport.abort()
        await asyncio.sleep(0)


_steps = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "expect": st.one_of(
                st.lists(st.sampled_from(_REGEX_PARTS), min_size=1, max_size=2).map("".join),
                st.text(max_size=5),
            ),
            "send": st.text(max_size=10).map(lambda s: s + "\r\n"),
        },
    ),
    max_size=3,
)


class TestTcp:
    @EXAMPLES
    @given(steps=_steps, protocol=ip_protocols, fallback=st.booleans())
    async def test_accepted_options_run(
        self, steps: list[dict[str, str]], protocol: str, fallback: bool
    ) -> None:
        """Any accepted tcp block (patterns included) runs without an error outcome."""
        async with _line_peer() as port:
            raw = {
                "host": "127.0.0.1",
                "port": port,
                "query_response": steps,
                "preferred_ip_protocol": protocol,
                "ip_protocol_fallback": fallback,
            }
            options = _accepted("tcp", raw)
            result = await _run("tcp", options, 0.5)
        _assert_ran(raw, result)


# -- dns ---------------------------------------------------------------------------------------


def _dns_answer(wire: bytes) -> bytes:
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    if dns.rdatatype.to_text(question.rdtype) == "A":
        response.answer.append(
            dns.rrset.from_text_list(question.name, 300, "IN", "A", ["192.0.2.1"])
        )
    return response.to_wire()


class _DnsUdp(asyncio.DatagramProtocol):
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(_dns_answer(data), addr)


@contextlib.asynccontextmanager
async def _dns_peer() -> AsyncIterator[int]:
    async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            length = int.from_bytes(await reader.readexactly(2), "big")
            reply = _dns_answer(await reader.readexactly(length))
            writer.write(len(reply).to_bytes(2, "big") + reply)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.transport.abort()

    # One port for both transports, as a resolver listens. The UDP port of the number the
    # kernel gave TCP can be held by another process (a full run binds many UDP sockets), so
    # a taken one is retried with a new TCP port, a bounded number of times.
    loop = asyncio.get_running_loop()
    for attempt in range(20):
        server = await asyncio.start_server(tcp, "127.0.0.1", 0)
        port = int(server.sockets[0].getsockname()[1])
        try:
            udp, _ = await loop.create_datagram_endpoint(_DnsUdp, local_addr=("127.0.0.1", port))
        except OSError as error:
            server.close()
            if error.errno != errno.EADDRINUSE or attempt == 19:
                raise
            continue
        break
    try:
        yield port
    finally:
        udp.close()
        server.close()


_RCODES = ["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "noerror", "BADVERS", "nope"]
_NAMES = ["up.example", "up.example.", "a.b.c", "xn--bcher-kva.example", "é.example", "*.example"]


@st.composite
def dns_raw(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "query_name": draw(st.one_of(st.sampled_from(_NAMES), st.text(min_size=1, max_size=12))),
        "query_type": draw(st.sampled_from(["A", "aaaa", "MX", "TXT", "SRV", "CAA", "PTR"])),
        "transport": draw(st.sampled_from(["udp", "tcp"])),
        "recursion_desired": draw(st.booleans()),
        "valid_rcodes": draw(st.lists(st.sampled_from(_RCODES), min_size=1, max_size=3)),
        "fail_if_no_answer": draw(st.booleans()),
        "validate_answer_rrs": {
            "fail_if_matches_regexp": draw(regexps),
            "fail_if_all_match_regexp": draw(regexps),
            "fail_if_not_matches_regexp": draw(regexps),
            "fail_if_none_matches_regexp": draw(regexps),
        },
    }


class TestDns:
    @EXAMPLES
    @given(raw=dns_raw())
    async def test_accepted_options_run(self, raw: dict[str, Any]) -> None:
        """Any accepted dns block runs against a loopback answerer without an error outcome."""
        async with _dns_peer() as port:
            raw = {**raw, "resolver": f"127.0.0.1:{port}"}
            options = _accepted("dns", raw)
            result = await _run("dns", options, 1.0)
        _assert_ran(raw, result)


# -- sip ---------------------------------------------------------------------------------------


def _sip_peer(_: UdpResponder, request: SipRequest) -> Sequence[bytes]:
    if request.method == "INVITE":
        return [answer(request, 486, "Busy Here")]
    if request.method == "ACK":
        return []
    return [answer(request, 200, "OK")]


_USERS = st.text(st.sampled_from("abcXYZ019._~!$&'()*+,=%- é<>\"\\"), min_size=1, max_size=8)
"""URI user parts and contact users: the safe characters and some that are not."""


@st.composite
def sip_base_raw(draw: st.DrawFn, port: int) -> dict[str, Any]:
    user = draw(_USERS)
    in_uri = draw(st.booleans())
    params = draw(st.sampled_from(["", ";transport=udp", ";transport=UDP", ";lr"]))
    uri = f"sip:{user}@127.0.0.1{f':{port}' if in_uri else ''}{params}"
    raw: dict[str, Any] = {
        "uri": uri,
        "t1": draw(
            st.one_of(
                st.floats(min_value=0.001, max_value=10, allow_nan=False),
                st.sampled_from(["500ms", "4s", "4.5s", "7s", "10s"]),
            )
        ),
        "expected_codes": draw(
            st.lists(
                st.one_of(
                    st.integers(min_value=200, max_value=699),
                    st.sampled_from(["2xx", "4XX", "486"]),
                ),
                min_size=1,
                max_size=3,
            )
        ),
        "contact_user": draw(_USERS),
        "user_agent": draw(st.text(max_size=20)),
    }
    if not in_uri:
        raw["port"] = port
    if draw(st.booleans()):
        raw["transport"] = "udp"
    if draw(st.booleans()):
        raw["host"] = "127.0.0.1"
    if draw(st.booleans()):
        raw["bind"] = "127.0.0.1"
    for name in ("from_uri", "to_uri"):
        if draw(st.booleans()):
            raw[name] = f"sip:{draw(_USERS)}@example.org"
    if draw(st.booleans()):
        raw["auth"] = {
            "username": draw(st.text(min_size=1, max_size=8)),
            "password": {"file": str(SECRET_FILE)},
        }
    return raw


@st.composite
def sip_call_extra(draw: st.DrawFn) -> dict[str, Any]:
    low = draw(st.integers(min_value=30000, max_value=39000))
    step = st.fixed_dictionaries(
        {"digits": st.text(st.sampled_from("0123456789*#abcdABCD"), min_size=1, max_size=3)},
        optional={"pause": durations, "expect_audio_within": durations},
    )
    return {
        "answer_timeout": draw(durations),
        "duration": draw(durations),
        "dtmf": draw(st.lists(step, max_size=2)),
        "dtmf_tone": draw(durations),
        "dtmf_gap": draw(durations),
        "media": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "min_packets": st.integers(min_value=0, max_value=10**9),
                    "max_loss_ratio": st.floats(min_value=0, max_value=1),
                    "min_mos": st.one_of(st.none(), st.floats(min_value=1, max_value=4.5)),
                    "max_jitter": st.one_of(st.none(), durations),
                },
            )
        ),
        "codecs": draw(st.sampled_from([["PCMU"], ["PCMA"], ["PCMA", "PCMU"]])),
        "require_audio": draw(st.booleans()),
        "silence_threshold_dbov": draw(st.floats(max_value=0, allow_nan=False)),
        "send_tone_hz": draw(st.one_of(st.none(), st.integers(min_value=20, max_value=3400))),
        "rtp_ports": f"{low}-{low + draw(st.integers(min_value=50, max_value=999))}",
    }


class TestSip:
    def test_t1_bound_is_the_transaction_layer_t2(self) -> None:
        """The options' upper bound for t1 is the T2 SipEndpoint.open runs with; above it the
        file is refused (t1 up to 10 s was accepted, and every probe failed)."""
        t2 = inspect.signature(SipEndpoint.open).parameters["t2"].default
        assert t2 == MAX_T1_SECONDS
        SipOptionsOptions(uri="sip:ping@127.0.0.1", t1=t2)
        with pytest.raises(pydantic.ValidationError, match="less than or equal to 4"):
            SipOptionsOptions(uri="sip:ping@127.0.0.1", t1="7s")
        assert issubclass(SipOptionsOptions, SipBaseOptions)

    @pytest.mark.parametrize("kind", ["sip_options", "sip_register", "sip_call"])
    @EXAMPLES
    @given(data=st.data())
    async def test_accepted_options_run(self, kind: str, data: st.DataObject) -> None:
        """Any accepted SIP block of each kind runs against a loopback UDP responder without
        an error outcome."""
        async with udp_responder(_sip_peer) as peer:
            raw = data.draw(sip_base_raw(peer.port), label="options")
            if kind == "sip_options":
                raw["max_forwards"] = data.draw(st.integers(min_value=0, max_value=255))
            elif kind == "sip_register":
                raw["expires"] = data.draw(st.integers(min_value=1, max_value=86400))
                raw["unregister"] = data.draw(st.booleans())
            else:
                raw.update(data.draw(sip_call_extra(), label="call"))
            options = _accepted(kind, raw)
            result = await _run(kind, options, 3.0)
        _assert_ran(raw, result)
