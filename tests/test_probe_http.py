"""The ``http`` probe against real servers on loopback (aiohttp for well-formed answers, raw
asyncio servers for broken ones)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
import struct
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from probes.http import (
    _PLAIN_URL,
    HttpOptions,
    _parse_url,
    _read_body,
    _read_chunked,
    _read_head,
    probe,
)
from probes.registry import PROBE_KINDS
from probes.result import Outcome, ProbeContext, ProbeResult
from probes.tcp import ProbeDown, own_deadline
from probes.tls import CertificateParseError, certificate_not_after
from tests.peers import require_binary
from tests.strategies import chunked_bodies, http_response_noise

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def run(options: dict[str, Any] | HttpOptions, timeout: float = 2.0) -> ProbeResult:  # noqa: ASYNC109
    """One probe, bounded by a test-side timeout so a hung probe fails instead of hanging."""
    if isinstance(options, dict):
        options = HttpOptions.model_validate(options)
    async with asyncio.timeout(timeout + 3):
        return await probe(options, ProbeContext.starting_now("web", timeout))


# --- servers --------------------------------------------------------------------------------


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok: all systems nominal")


async def _status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    headers = {"Location": "/ok"} if 300 <= code < 400 else None
    return web.Response(status=code, text="status", headers=headers)


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(3)
    return web.Response(text="late")


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * (2 * 1024 * 1024))


async def _redirect(request: web.Request) -> web.Response:
    hops = int(request.match_info["n"])
    target = "/ok" if hops <= 1 else f"/redirect/{hops - 1}"
    raise web.HTTPFound(target)


async def _to(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["u"])


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    lines = [f"{request.method} {request.path_qs}", f"body={body.decode()}"]
    lines += [f"{name.lower()}={value}" for name, value in request.headers.items()]
    return web.Response(text="\n".join(lines))


async def _auth(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != request.app[EXPECTED_AUTH][0]:
        return web.Response(status=401, text="who are you")
    return web.Response(text="welcome")


EXPECTED_AUTH = web.AppKey("expected_auth", list[str])


def _app() -> web.Application:
    app = web.Application()
    app[EXPECTED_AUTH] = [""]
    app.router.add_get("/ok", _ok)
    app.router.add_route("*", "/status/{code}", _status)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/big", _big)
    app.router.add_get("/redirect/{n}", _redirect)
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/to", _to)
    app.router.add_get("/auth", _auth)
    return app


@dataclass
class Server:
    app: web.Application
    port: int
    host: str = "127.0.0.1"

    def url(self, path: str, scheme: str = "http") -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{shown}:{self.port}{path}"


Serve = Callable[..., Awaitable[Server]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start aiohttp servers (port 0) on demand; all are stopped after the test."""
    runners: list[web.AppRunner] = []

    async def start(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Server:
        app = _app()
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, host, 0, ssl_context=tls)
        await site.start()
        return Server(app, runner.addresses[0][1], host)

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def server(serve: Serve) -> Server:
    return await serve()


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    """Start an asyncio server on 127.0.0.1 port 0 whose connections run ``handler``."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.transport.abort()

        srv = await asyncio.start_server(guarded, "127.0.0.1", 0)
        servers.append(srv)
        return int(srv.sockets[0].getsockname()[1])

    yield start
    for srv in servers:
        srv.close()


def _answer(payload: bytes, *, then: str = "close") -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(payload)
        await writer.drain()
        if then == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif then == "hang":
            await asyncio.sleep(10)

    return handler


# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    not_after: float


def _make_cert(directory: Path, name: str, days: int) -> tuple[Path, Path]:
    openssl = require_binary("openssl")
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(days),
         "-subj", f"/CN={name}", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"],
        check=True, capture_output=True, timeout=20,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    cert, key = _make_cert(directory, "server", 30)
    client_cert, client_key = _make_cert(directory, "client", 30)
    end = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-enddate"],
        check=True, capture_output=True, text=True, timeout=20,
    ).stdout.strip()  # fmt: skip
    return Pki(cert, key, client_cert, client_key, ssl.cert_time_to_seconds(end.split("=", 1)[1]))


def _not_after(cert: Path) -> float:
    end = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-enddate"],
        check=True, capture_output=True, text=True, timeout=20,
    ).stdout.strip()  # fmt: skip
    return ssl.cert_time_to_seconds(end.split("=", 1)[1])


@pytest.fixture(scope="module")
def short_lived_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA valid 3 days that signed a 30-day leaf: (CA cert, leaf+CA chain, leaf key)."""
    openssl = require_binary("openssl")
    d = tmp_path_factory.mktemp("chain")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for command in (
        [openssl, "req", "-x509", *ec, "-keyout", d / "ca.key", "-out", d / "ca.pem",
         "-days", "3", "-subj", "/CN=slawatch-test-ca",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req", "-new", *ec, "-keyout", d / "leaf.key", "-out", d / "leaf.csr",
         "-subj", "/CN=localhost"],
        [openssl, "x509", "-req", "-in", d / "leaf.csr", "-CA", d / "ca.pem",
         "-CAkey", d / "ca.key", "-CAcreateserial", "-out", d / "leaf.pem", "-days", "30",
         "-extfile", d / "ext.cnf"],
    ):  # fmt: skip
        subprocess.run([str(part) for part in command], check=True, capture_output=True, timeout=20)
    chain = d / "chain.pem"
    chain.write_text((d / "leaf.pem").read_text() + (d / "ca.pem").read_text())
    return d / "ca.pem", chain, d / "leaf.key"


def _server_context(pki: Pki, require_client: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.key)
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(pki.client_cert)
    return context


# --- tests ----------------------------------------------------------------------------------


class TestRegistry:
    def test_http_is_registered_first(self) -> None:
        """The registry offers ``http`` with this module's options and function."""
        kind = PROBE_KINDS["http"]
        assert next(iter(PROBE_KINDS)) == "http"
        assert kind.options is HttpOptions
        assert kind.run is probe


class TestHttpOptions:
    def test_defaults(self) -> None:
        """Defaults: GET, any 2xx, 1 MiB body limit, redirects followed."""
        options = HttpOptions(url="http://example.com/health")
        assert (options.method, options.max_body_bytes, options.follow_redirects) == (
            "GET",
            1024 * 1024,
            True,
        )
        assert options.plan().valid(204)
        assert not options.plan().valid(301)

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("url", "ftp://example.com/", "expected an absolute http:// or https:// URL"),
            ("url", "http://user:pw@example.com/", "credentials in the URL are not allowed"),
            ("method", "GE T", "expected an HTTP method"),
            ("valid_status_codes", ["2xxx"], "expected a status code, 'Nxx'"),
            ("valid_status_codes", [700], "between 100 and 599"),
            ("valid_status_codes", ["299-200"], "within 100-599"),
            ("headers", {"Content-Length": "3"}, "is set by the probe itself"),
            ("headers", {"X-A": "1\r\nX-B: 2"}, "cannot contain a line break"),
            ("headers", {"X-A": "caf\u00e9"}, "expected an ASCII value"),
            ("url", "http://example.com/caf\u00e9", "expected an ASCII URL"),
            ("fail_if_body_matches_regexp", ["(unclosed"], "expected a regular expression"),
            ("max_body_bytes", -1, "greater than or equal to 0"),
        ],
    )
    def test_rejects_bad_values(self, field: str, value: object, message: str) -> None:
        """Each bad value is refused with a message naming what was expected."""
        data: dict[str, object] = {"url": "http://example.com/", field: value}
        with pytest.raises(pydantic.ValidationError) as info:
            HttpOptions.model_validate(data)
        assert field in str(info.value)
        assert message in str(info.value)

    @given(
        st.from_regex(_PLAIN_URL, fullmatch=True)
        | st.sampled_from(
            ["http://h:65535/", "http://h:65536/", "http://h:0/", "http://:80/", "http://h:/"]
        )
    )
    def test_a_url_taken_without_urlsplit_is_one_urlsplit_accepts(self, url: str) -> None:
        """The validator skips ``_parse_url`` only for what it accepts (issue 20, cl32): a URL
        either validates and parses, or is refused with ``_parse_url``'s own message."""
        try:
            expected = _parse_url(url, ValueError).text
        except ValueError as exc:
            with pytest.raises(pydantic.ValidationError, match=re.escape(str(exc))):
                HttpOptions(url=url)
        else:
            assert HttpOptions(url=url).url == expected

    def test_inline_secret_is_refused(self) -> None:
        """A password written inline (not an env/file reference) does not validate."""
        with pytest.raises(pydantic.ValidationError, match="password"):
            HttpOptions.model_validate(
                {"url": "http://a/", "auth": {"basic": {"username": "u", "password": "pw"}}}
            )

    def test_status_ranges(self) -> None:
        """Codes, ``Nxx`` classes and ``NNN-NNN`` ranges are all accepted."""
        plan = HttpOptions(url="http://a/", valid_status_codes=(200, "3xx", "401-403")).plan()
        assert [s for s in (200, 201, 302, 399, 400, 401, 403, 404) if plan.valid(s)] == [
            200,
            302,
            399,
            401,
            403,
        ]

    def test_plan_is_cached_per_options_object(self) -> None:
        """The derived plan (compiled regexps, request bytes) is built once per options."""
        options = HttpOptions(url="http://a/", fail_if_body_matches_regexp=("x",))
        assert options.plan() is options.plan()


class TestHttpProbe:
    async def test_up(self, server: Server) -> None:
        """A 200 answer is up, with status, version, size and every phase recorded."""
        result = await run({"url": server.url("/ok")})
        assert result.outcome is Outcome.UP, result
        assert result.reason == ""
        assert result.details["status_code"] == 200
        assert result.details["http_version"] == "1.1"
        assert result.details["body_bytes"] == len(b"ok: all systems nominal")
        assert result.details["redirects"] == 0
        assert set(result.phases) == {"resolve", "connect", "first_byte", "transfer"}
        assert sum(result.phases.values()) <= result.duration_seconds

    async def test_closed_port_is_down(self) -> None:
        """Nothing listening: down, connection_refused."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        result = await run({"url": f"http://127.0.0.1:{port}/"})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "connection_refused")

    async def test_slow_server_times_out_waiting_for_first_byte(
        self, raw: Callable[[Handler], Awaitable[int]]
    ) -> None:
        """A server that reads the request and never answers gives timeout_first_byte, named
        at the probe's own deadline, which is before the runner's.

        hd34: the timeout is 2 s, not 0.4 (the point is the phase, not the timing: under load
        a short one could expire in connect, or the loop wake a few ms past 0.4 s); the
        probe's deadline is checked as computed, not by the wall clock."""
        asked = asyncio.Event()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            asked.set()
            await reader.read()  # until the probe hangs up

        port = await raw(silent)
        result = await run({"url": f"http://127.0.0.1:{port}/"}, timeout=2.0)
        assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "timeout_first_byte")
        assert asked.is_set()  # the request was sent: the wait was for the first byte
        ctx = ProbeContext.starting_now("web", 2.0)
        assert own_deadline(ctx) == ctx.deadline - 0.05  # the probe's, before the runner's
        assert result.duration_seconds >= 2.0 - 0.05 - 1e-3  # it waited until then

    async def test_connect_timeout(self) -> None:
        """A listener whose backlog is full drops SYNs: timeout_connect."""
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(3):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            await asyncio.sleep(0.05)
            result = await run({"url": f"http://127.0.0.1:{port}/"}, timeout=0.5)
        finally:
            for filler in fillers:
                filler.close()
            listener.close()
        assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "timeout_connect")

    @pytest.mark.parametrize("code", [503, 404, 500])
    async def test_wrong_status_is_down(self, server: Server, code: int) -> None:
        """A status outside the valid set is down with status_code_<N>."""
        result = await run({"url": server.url(f"/status/{code}")})
        assert (result.outcome, result.reason) == (Outcome.DOWN, f"status_code_{code}")
        assert result.details["status_code"] == code

    async def test_configured_status_codes(self, server: Server) -> None:
        """A 503 listed in valid_status_codes is up."""
        result = await run({"url": server.url("/status/503"), "valid_status_codes": ["5xx"]})
        assert result.outcome is Outcome.UP

    async def test_body_regex_missing(self, server: Server) -> None:
        """A body lacking the required pattern is down: body_regex_missing."""
        result = await run(
            {"url": server.url("/ok"), "fail_if_body_not_matches_regexp": ["status.*green"]}
        )
        assert (result.outcome, result.reason) == (Outcome.DOWN, "body_regex_missing")

    async def test_body_regex_forbidden(self, server: Server) -> None:
        """A body containing a forbidden pattern is down: body_regex_forbidden."""
        result = await run({"url": server.url("/ok"), "fail_if_body_matches_regexp": ["nomin"]})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "body_regex_forbidden")

    async def test_body_regex_satisfied(self, server: Server) -> None:
        """Required present and forbidden absent: up."""
        result = await run(
            {
                "url": server.url("/ok"),
                "fail_if_body_not_matches_regexp": ["^ok: all"],
                "fail_if_body_matches_regexp": ["error|maintenance"],
            }
        )
        assert result.outcome is Outcome.UP

    async def test_oversized_body_with_length(self, server: Server) -> None:
        """A declared body over max_body_bytes fails as body_too_large."""
        result = await run({"url": server.url("/big"), "max_body_bytes": 1000})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "body_too_large")
        assert "body_bytes" not in result.details

    async def test_default_limit_is_one_mebibyte(self, server: Server) -> None:
        """The 2 MiB body exceeds the 1 MiB default."""
        result = await run({"url": server.url("/big")})
        assert result.reason == "body_too_large"

    async def test_request_shape(self, server: Server) -> None:
        """Method, headers and body are sent as configured, with Connection: close."""
        result = await run(
            {
                "url": server.url("/echo?x=1"),
                "method": "post",
                "headers": {"X-Probe": "slawatch", "User-Agent": "custom"},
                "body": '{"ping": 1}',
                "fail_if_body_not_matches_regexp": [
                    "^POST /echo\\?x=1\n",
                    '\nbody=\\{"ping": 1\\}\n',
                    "\nx-probe=slawatch",
                    "\nuser-agent=custom",
                    "\nconnection=close",
                    "\ncontent-length=11",
                ],
            }
        )
        assert result.outcome is Outcome.UP, result

    async def test_head_request(self, server: Server) -> None:
        """HEAD reads no body even though Content-Length is announced."""
        result = await run({"url": server.url("/ok"), "method": "HEAD"})
        assert result.outcome is Outcome.UP, result
        assert result.details["body_bytes"] == 0


class TestRedirects:
    async def test_followed(self, server: Server) -> None:
        """Redirects are followed and counted; phases sum over the hops."""
        result = await run({"url": server.url("/redirect/3")})
        assert result.outcome is Outcome.UP, result
        assert result.details["redirects"] == 3

    async def test_too_many(self, server: Server) -> None:
        """More hops than max_redirects: too_many_redirects."""
        result = await run({"url": server.url("/redirect/3"), "max_redirects": 2})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "too_many_redirects")

    async def test_not_followed(self, server: Server) -> None:
        """With following off, a 3xx is down as redirect_not_followed."""
        result = await run({"url": server.url("/redirect/1"), "follow_redirects": False})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "redirect_not_followed")
        assert result.details["status_code"] == 302

    async def test_not_followed_but_accepted(self, server: Server) -> None:
        """With following off and 3xx valid, the redirect itself is the expected answer."""
        result = await run(
            {
                "url": server.url("/redirect/1"),
                "follow_redirects": False,
                "valid_status_codes": [302],
            }
        )
        assert result.outcome is Outcome.UP

    async def test_credentials_stay_with_their_origin(
        self, server: Server, serve: Serve, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Authorization goes to the configured origin only, never to a redirect elsewhere."""
        monkeypatch.setenv("SLAWATCH_TEST_TOKEN", "t0ken")
        other = await serve()
        same = await run(
            {
                "url": server.url(f"/to?u={server.url('/echo')}"),
                "auth": {"bearer": {"env": "SLAWATCH_TEST_TOKEN"}},
                "fail_if_body_not_matches_regexp": ["\nauthorization=Bearer t0ken"],
            }
        )
        elsewhere = await run(
            {
                "url": server.url(f"/to?u={other.url('/echo')}"),
                "auth": {"bearer": {"env": "SLAWATCH_TEST_TOKEN"}},
                "fail_if_body_matches_regexp": ["(?i)authorization"],
            }
        )
        assert same.outcome is Outcome.UP, same
        assert elsewhere.outcome is Outcome.UP, elsewhere
        assert elsewhere.details["redirects"] == 1

    async def test_invalid_location(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """A redirect to a non-HTTP scheme: redirect_location_invalid."""
        port = await raw(_answer(b"HTTP/1.1 302 Found\r\nLocation: ftp://x/\r\n\r\n"))
        result = await run({"url": f"http://127.0.0.1:{port}/"})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "redirect_location_invalid")

    async def test_post_becomes_get_after_303(self, server: Server) -> None:
        """A 303 answer to a POST is followed with a GET, as browsers do."""
        result = await run({"url": server.url("/status/303"), "method": "POST", "body": "x"})
        assert result.outcome is Outcome.UP, result
        assert result.details["redirects"] == 1


class TestAuth:
    async def test_basic_from_env(self, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
        """Basic credentials with the password from an environment variable."""
        monkeypatch.setenv("SLAWATCH_TEST_PW", "s3cret")
        server.app[EXPECTED_AUTH][0] = "Basic bW9uOnMzY3JldA=="
        options = {
            "url": server.url("/auth"),
            "auth": {"basic": {"username": "mon", "password": {"env": "SLAWATCH_TEST_PW"}}},
        }
        assert (await run(options)).outcome is Outcome.UP

    async def test_bearer_from_file_is_reread(self, server: Server, tmp_path: Path) -> None:
        """A bearer token from a file; rotating the file takes effect on the next probe."""
        token = tmp_path / "token"
        token.write_text("tok-1\n")
        options = HttpOptions.model_validate(
            {"url": server.url("/auth"), "auth": {"bearer": {"file": str(token)}}}
        )
        server.app[EXPECTED_AUTH][0] = "Bearer tok-1"
        assert (await run(options)).outcome is Outcome.UP
        token.write_text("tok-2\n")
        first = await run(options)
        assert (first.outcome, first.reason) == (Outcome.DOWN, "status_code_401")
        server.app[EXPECTED_AUTH][0] = "Bearer tok-2"
        assert (await run(options)).outcome is Outcome.UP

    async def test_missing_secret_is_an_error(self, server: Server) -> None:
        """An unset secret variable is the monitor's problem (error), not the vendor's."""
        result = await run(
            {"url": server.url("/auth"), "auth": {"bearer": {"env": "SLAWATCH_UNSET_VAR_X"}}}
        )
        assert (result.outcome, result.reason) == (Outcome.ERROR, "secret_unavailable")
        assert "SLAWATCH_UNSET_VAR_X" in str(result.details["error"])


class TestMalformedResponses:
    async def test_garbage_status_line(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """Something that is not HTTP: http_malformed_status_line."""
        port = await raw(_answer(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
        result = await run({"url": f"http://127.0.0.1:{port}/"})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "http_malformed_status_line")

    async def test_huge_headers(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """A head larger than 64 KiB: http_headers_too_large, without hanging."""
        payload = b"HTTP/1.1 200 OK\r\nX-Junk: " + b"a" * 200_000 + b"\r\n\r\n"
        port = await raw(_answer(payload, then="hang"))
        result = await run({"url": f"http://127.0.0.1:{port}/"})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "http_headers_too_large")

    async def test_bad_header_line(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """A header line without a colon: http_malformed_header."""
        port = await raw(_answer(b"HTTP/1.1 200 OK\r\nnot a header\r\n\r\n"))
        result = await run({"url": f"http://127.0.0.1:{port}/"})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "http_malformed_header")

    async def test_empty_reply(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """The server closes without a byte: empty_reply."""
        port = await raw(_answer(b""))
        result = await run({"url": f"http://127.0.0.1:{port}/"})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "empty_reply")

    async def test_reset_mid_body(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """A connection reset after part of the body: connection_reset."""
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100
        port = await raw(_answer(head, then="reset"))
        result = await run({"url": f"http://127.0.0.1:{port}/"})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "connection_reset")
        assert result.details["status_code"] == 200

    async def test_closed_mid_body(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """A clean close before Content-Length bytes arrived: http_incomplete_body."""
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"
        port = await raw(_answer(head))
        result = await run({"url": f"http://127.0.0.1:{port}/"})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "http_incomplete_body")

    async def test_chunked_body(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """A chunked body (with an extension and a trailer) is decoded and matched."""
        payload = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        )
        port = await raw(_answer(payload, then="hang"))
        result = await run(
            {
                "url": f"http://127.0.0.1:{port}/",
                "fail_if_body_not_matches_regexp": ["^hello world$"],
            }
        )
        assert result.outcome is Outcome.UP, result
        assert result.details["body_bytes"] == 11

    async def test_endless_chunked_body(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """A chunked body that never ends stops at max_body_bytes: body_too_large."""

        async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            while True:
                writer.write(b"400\r\n" + b"z" * 1024 + b"\r\n")
                await writer.drain()

        port = await raw(endless)
        result = await run({"url": f"http://127.0.0.1:{port}/", "max_body_bytes": 64 * 1024})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "body_too_large")

    async def test_trickling_body_times_out(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """A body that trickles past the deadline: timeout_transfer."""

        async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
            while True:
                writer.write(b".")
                await writer.drain()
                await asyncio.sleep(0.05)

        port = await raw(trickle)
        result = await run({"url": f"http://127.0.0.1:{port}/"}, timeout=0.4)
        assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "timeout_transfer")

    async def test_bad_chunk_size(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """A chunk size that is not hex: http_malformed_chunked_encoding."""
        payload = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n"
        port = await raw(_answer(payload, then="hang"))
        result = await run({"url": f"http://127.0.0.1:{port}/"})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "http_malformed_chunked_encoding")

    async def test_endless_interim_answers(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """A server answering only 100 Continue forever: http_too_many_interim_responses."""
        port = await raw(_answer(b"HTTP/1.1 100 Continue\r\n\r\n" * 50, then="hang"))
        result = await run({"url": f"http://127.0.0.1:{port}/"})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "http_too_many_interim_responses")

    async def test_body_until_close_and_interim_answer(
        self, raw: Callable[[Handler], Awaitable[int]]
    ) -> None:
        """A 103 before the answer is skipped; a body without length runs to the close."""
        payload = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.0 200 OK\r\n\r\nbye"
        port = await raw(_answer(payload))
        result = await run({"url": f"http://127.0.0.1:{port}/"})
        assert result.outcome is Outcome.UP, result
        assert (result.details["http_version"], result.details["body_bytes"]) == ("1.0", 3)


class TestTls:
    async def test_self_signed_rejected(self, pki: Pki, serve: Serve) -> None:
        """Verification on (default) and an unknown CA: tls_certificate_invalid."""
        srv = await serve(tls=_server_context(pki))
        result = await run({"url": srv.url("/ok", "https")})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "tls_certificate_invalid")
        assert "self-signed" in str(result.details["error"])

    async def test_ca_file_trusts_it(self, pki: Pki, serve: Serve) -> None:
        """With the certificate as CA: up, TLS phase and certificate expiry recorded."""
        srv = await serve(tls=_server_context(pki))
        result = await run({"url": srv.url("/ok", "https"), "tls": {"ca_file": str(pki.cert)}})
        assert result.outcome is Outcome.UP, result
        assert result.details["certificate_expiry_timestamp"] == pki.not_after
        assert result.details["tls_version"] == "TLS1.3"
        assert result.phases["tls"] > 0

    async def test_verify_off_still_records_expiry(self, pki: Pki, serve: Serve) -> None:
        """verify: false accepts the certificate and still records its expiry."""
        srv = await serve(tls=_server_context(pki))
        result = await run({"url": srv.url("/ok", "https"), "tls": {"verify": False}})
        assert result.outcome is Outcome.UP, result
        assert result.details["certificate_expiry_timestamp"] == pki.not_after

    @pytest.mark.parametrize("verify", [True, False])
    async def test_earliest_expiry_in_chain(
        self, short_lived_ca: tuple[Path, Path, Path], serve: Serve, verify: bool
    ) -> None:
        """A CA expiring before its leaf is the expiry reported, verified or not."""
        ca, chain, key = short_lived_ca
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key)
        srv = await serve(tls=context)
        result = await run(
            {"url": srv.url("/ok", "https"), "tls": {"ca_file": str(ca), "verify": verify}}
        )
        assert result.outcome is Outcome.UP, result
        assert result.details["certificate_expiry_timestamp"] == _not_after(ca)
        assert _not_after(ca) < _not_after(chain)

    async def test_wrong_server_name(self, pki: Pki, serve: Serve) -> None:
        """A server_name the certificate does not cover: tls_certificate_invalid."""
        srv = await serve(tls=_server_context(pki))
        result = await run(
            {
                "url": srv.url("/ok", "https"),
                "tls": {"ca_file": str(pki.cert), "server_name": "other.example"},
            }
        )
        assert (result.outcome, result.reason) == (Outcome.DOWN, "tls_certificate_invalid")

    async def test_client_certificate(self, pki: Pki, serve: Serve) -> None:
        """A server requiring a client certificate: refused without one, up with it."""
        srv = await serve(tls=_server_context(pki, require_client=True))
        without = await run({"url": srv.url("/ok", "https"), "tls": {"ca_file": str(pki.cert)}})
        with_cert = await run(
            {
                "url": srv.url("/ok", "https"),
                "tls": {
                    "ca_file": str(pki.cert),
                    "cert_file": str(pki.client_cert),
                    "key_file": str(pki.client_key),
                },
            }
        )
        assert without.outcome is Outcome.DOWN
        assert without.reason in ("tls_error", "connection_reset", "empty_reply"), without
        assert with_cert.outcome is Outcome.UP, with_cert

    async def test_unloadable_client_certificate_is_an_error(
        self, pki: Pki, serve: Serve, tmp_path: Path
    ) -> None:
        """A cert_file that is not a certificate is the monitor's fault: error, not down."""
        srv = await serve(tls=_server_context(pki))
        junk = tmp_path / "junk.pem"
        junk.write_text("not a certificate\n")
        result = await run({"url": srv.url("/ok", "https"), "tls": {"cert_file": str(junk)}})
        assert (result.outcome, result.reason) == (Outcome.ERROR, "tls_config_error")
        assert "junk.pem" in str(result.details["error"])

    async def test_handshake_timeout(self, raw: Callable[[Handler], Awaitable[int]]) -> None:
        """A server that accepts TCP but never answers the ClientHello: timeout_tls."""

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(10)

        port = await raw(silent)
        result = await run({"url": f"https://127.0.0.1:{port}/"}, timeout=0.4)
        assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "timeout_tls")

    def test_certificate_not_after_generalized_time(self, tmp_path: Path) -> None:
        """A certificate valid past 2049 uses GeneralizedTime; both encodings parse."""
        cert, _ = _make_cert(tmp_path, "long", 12000)
        end = subprocess.run(
            ["openssl", "x509", "-in", str(cert), "-noout", "-enddate"],
            check=True, capture_output=True, text=True, timeout=20,
        ).stdout.strip()  # fmt: skip
        der = ssl.PEM_cert_to_DER_cert(cert.read_text())
        assert certificate_not_after(der) == ssl.cert_time_to_seconds(end.split("=", 1)[1])


class TestIpFamilies:
    async def test_ipv6_literal(self, serve: Serve) -> None:
        """A server on [::1] is reached through an IPv6 literal URL."""
        srv = await serve(host="::1")
        result = await run({"url": srv.url("/ok")})
        assert result.outcome is Outcome.UP, result
        assert result.details["ip_address"] == "::1"

    async def test_preferred_family_without_fallback(self, server: Server) -> None:
        """localhost resolved with ip4 preference connects over 127.0.0.1."""
        result = await run(
            {
                "url": f"http://localhost:{server.port}/ok",
                "preferred_ip_protocol": "ip4",
                "ip_protocol_fallback": False,
            }
        )
        assert result.outcome is Outcome.UP, result
        assert result.details["ip_address"] == "127.0.0.1"

    async def test_unresolvable_name(self) -> None:
        """A name under .invalid never resolves: a dns_* reason, down."""
        result = await run({"url": "http://no-such-host.invalid/"})
        assert result.outcome is Outcome.DOWN
        assert result.reason.startswith("dns_"), result.reason


class TestCancellation:
    async def test_cancellation_propagates(self, server: Server) -> None:
        """The runner's cancellation is re-raised, never turned into a result."""
        options = HttpOptions(url=server.url("/slow"))
        task = asyncio.create_task(probe(options, ProbeContext.starting_now("web", 5)))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(2):
                await task


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=64 * 1024)
    reader.feed_data(data)
    reader.feed_eof()
    return reader


class TestParserProperties:
    @given(chunked_bodies())
    def test_chunked_round_trip(self, case: tuple[bytes, bytes]) -> None:
        """Any valid chunked encoding decodes to the original body and its length."""
        body, wire = case

        async def decode() -> tuple[bytes, int]:
            return await _read_chunked(_reader(wire), 1 << 20, keep=True)

        assert asyncio.run(decode()) == (body, len(body))

    @given(chunked_bodies())
    def test_chunked_limit(self, case: tuple[bytes, bytes]) -> None:
        """A chunked body one byte over the limit is refused as body_too_large."""
        body, wire = case

        async def decode() -> tuple[bytes, int]:
            return await _read_chunked(_reader(wire), len(body) - 1, keep=False)

        if body:
            with pytest.raises(ProbeDown, match="body_too_large"):
                asyncio.run(decode())

    @given(http_response_noise)
    def test_noise_ends_in_a_reason(self, noise: bytes) -> None:
        """Whatever a server sends, parsing ends (EOF is fed) in a result or a ProbeDown."""
        options = HttpOptions(url="http://a/", max_body_bytes=1000)

        async def parse() -> None:
            reader = _reader(noise)
            _, _, headers = await _read_head(reader, b"")
            await _read_body(reader, headers, options, keep=True)

        reason = ""
        try:
            asyncio.run(parse())
        except ProbeDown as down:
            reason = down.reason
        assert reason == "" or reason.startswith(("http_", "body_")), reason

    @given(st.binary(max_size=400))
    def test_certificate_parser_on_noise(self, noise: bytes) -> None:
        """Random bytes give a time or CertificateParseError, never another exception."""
        with contextlib.suppress(CertificateParseError):
            certificate_not_after(noise)

    @given(st.data())
    def test_certificate_parser_on_mutations(self, pki: Pki, data: st.DataObject) -> None:
        """A real certificate with one byte changed still parses or fails cleanly."""
        der = bytearray(ssl.PEM_cert_to_DER_cert(pki.cert.read_text()))
        index = data.draw(st.integers(min_value=0, max_value=len(der) - 1))
        der[index] = data.draw(st.integers(min_value=0, max_value=255))
        with contextlib.suppress(CertificateParseError):
            certificate_not_after(bytes(der))
