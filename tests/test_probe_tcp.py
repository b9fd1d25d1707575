"""The ``tcp`` probe against real asyncio servers on 127.0.0.1 (port 0)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest
from structlog.testing import capture_logs

from probes.registry import PROBE_KINDS
from probes.result import Outcome, ProbeContext, ProbeResult
from probes.tcp import Attempt, TcpOptions, os_error_reason, probe, run_guarded
from tests.peers import require_binary

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Start = Callable[..., Awaitable[int]]


async def run(timeout: float = 2.0, **options: Any) -> ProbeResult:  # noqa: ASYNC109
    """One probe, bounded by a test-side timeout."""
    parsed = TcpOptions.model_validate({"host": "127.0.0.1", **options})
    async with asyncio.timeout(timeout + 3):
        return await probe(parsed, ProbeContext.starting_now("tcp", timeout))


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start servers running ``handler`` per connection; all closed after the test."""
    servers: list[asyncio.Server] = []

    async def start_server(handler: Handler, tls: ssl.SSLContext | None = None) -> int:
        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.transport.abort()

        srv = await asyncio.start_server(guarded, "127.0.0.1", 0, ssl=tls)
        servers.append(srv)
        return int(srv.sockets[0].getsockname()[1])

    yield start_server
    for srv in servers:
        srv.close()


async def smtp_like(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Banner, then a reply to QUIT."""
    writer.write(b"220-mail.example ESMTP\r\n220 ready\r\n")
    await writer.drain()
    if (await reader.readline()).strip() == b"QUIT":
        writer.write(b"221 bye\r\n")
        await writer.drain()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    """A self-signed certificate for localhost/127.0.0.1, its key and its notAfter."""
    openssl = require_binary("openssl")
    directory = tmp_path_factory.mktemp("tcp-pki")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "7", "-subj", "/CN=tcp",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=20,
    )  # fmt: skip
    end = subprocess.run(
        [openssl, "x509", "-in", str(cert), "-noout", "-enddate"],
        check=True, capture_output=True, text=True, timeout=20,
    ).stdout.strip()  # fmt: skip
    return cert, key, ssl.cert_time_to_seconds(end.split("=", 1)[1])


class TestTcpOptions:
    def test_registered(self) -> None:
        """``tcp`` is in the registry with this module's model and function."""
        assert PROBE_KINDS["tcp"].options is TcpOptions
        assert PROBE_KINDS["tcp"].run is probe

    @pytest.mark.parametrize(
        ("data", "field", "message"),
        [
            ({"port": 0}, "port", "greater than or equal to 1"),
            ({"port": 70000}, "port", "less than or equal to 65535"),
            ({"host": "example.com:25"}, "host", "without port"),
            ({"query_response": [{}]}, "query_response", "needs 'expect'"),
            ({"query_response": [{"expect": "("}]}, "expect", "expected a regular expression"),
            ({"preferred_ip_protocol": "ip5"}, "preferred_ip_protocol", "'ip4', 'ip6' or 'any'"),
            ({"tls": {"ca_file": "/no/such/ca.pem"}}, "ca_file", "expected an existing file"),
            ({"tls": {"key_file": __file__}}, "tls", "key_file is set but cert_file is not"),
        ],
    )
    def test_rejects(self, data: dict[str, Any], field: str, message: str) -> None:
        """Bad values are refused naming the field and what was expected."""
        with pytest.raises(pydantic.ValidationError) as info:
            TcpOptions.model_validate({"host": "127.0.0.1", "port": 25, **data})
        assert field in str(info.value)
        assert message in str(info.value)

    def test_bracketed_ipv6_host(self) -> None:
        """``[::1]`` is accepted and stored bare."""
        assert TcpOptions(host="[::1]", port=1).host == "::1"


class TestTcpProbe:
    async def test_connect(self, start: Start) -> None:
        """A plain connect is up, with resolve and connect phases."""
        port = await start(smtp_like)
        result = await run(port=port)
        assert result.outcome is Outcome.UP, result
        assert set(result.phases) == {"resolve", "connect"}
        assert result.details["ip_address"] == "127.0.0.1"

    async def test_refused(self) -> None:
        """Nothing listening: connection_refused."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        result = await run(port=port)
        assert (result.outcome, result.reason) == (Outcome.DOWN, "connection_refused")

    async def test_banner_dialogue(self, start: Start) -> None:
        """Expect the banner's last line, send QUIT, expect 221: up."""
        port = await start(smtp_like)
        result = await run(
            port=port,
            query_response=[{"expect": "^220 "}, {"send": "QUIT\r\n"}, {"expect": "^221"}],
        )
        assert result.outcome is Outcome.UP, result
        assert "query_response" in result.phases
        assert "last_line" not in result.details

    async def test_expect_mismatch(self, start: Start) -> None:
        """The server closes without the expected line: expect_mismatch at that step."""

        async def banner_then_close(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"220-mail.example ESMTP\r\n220 ready\r\n")
            await writer.drain()

        port = await start(banner_then_close)
        result = await run(port=port, query_response=[{"expect": "^250 "}])
        assert (result.outcome, result.reason) == (Outcome.DOWN, "expect_mismatch")
        assert result.details["failed_step"] == 0
        assert result.details["last_line"] == "220 ready"

    async def test_silent_server_times_out(self, start: Start) -> None:
        """No banner before the deadline: timeout_query_response."""

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(10)

        port = await start(silent)
        result = await run(timeout=0.4, port=port, query_response=[{"expect": "^220"}])
        assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "timeout_query_response")

    async def test_endless_line(self, start: Start) -> None:
        """A line longer than 64 KiB without a newline: line_too_long, no hang."""

        async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"x" * 200_000)
            await writer.drain()
            await asyncio.sleep(10)

        port = await start(flood)
        result = await run(port=port, query_response=[{"expect": "^220"}])
        assert (result.outcome, result.reason) == (Outcome.DOWN, "line_too_long")

    async def test_tls_with_expiry(self, start: Start, tls_files: tuple[Path, Path, float]) -> None:
        """A TLS handshake trusted via ca_file: up, tls phase, certificate expiry recorded."""
        cert, key, not_after = tls_files
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert, key)
        port = await start(smtp_like, tls=server)
        result = await run(
            port=port, tls={"ca_file": str(cert)}, query_response=[{"expect": "^220 "}]
        )
        assert result.outcome is Outcome.UP, result
        assert result.details["certificate_expiry_timestamp"] == not_after
        assert result.phases["tls"] > 0

    async def test_tls_untrusted(self, start: Start, tls_files: tuple[Path, Path, float]) -> None:
        """Default verification against an unknown CA: tls_certificate_invalid."""
        cert, key, _ = tls_files
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(cert, key)
        port = await start(smtp_like, tls=server)
        result = await run(port=port, tls={})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "tls_certificate_invalid")

    async def test_tls_against_plain_server(self, start: Start) -> None:
        """TLS towards a server that speaks plain text: the handshake fails."""
        port = await start(smtp_like)
        result = await run(port=port, tls={"verify": False})
        assert result.outcome is Outcome.DOWN
        assert result.reason in ("tls_handshake_failed", "connection_reset")

    async def test_ipv6_loopback(self) -> None:
        """A listener on ::1 is reached through the IPv6 literal."""
        srv = await asyncio.start_server(smtp_like, "::1", 0)
        try:
            result = await run(host="::1", port=srv.sockets[0].getsockname()[1])
        finally:
            srv.close()
        assert result.outcome is Outcome.UP, result
        assert result.details["ip_address"] == "::1"


class TestAttempt:
    def test_phases_accumulate(self) -> None:
        """Re-entering a phase adds to it; time after stop() is attributed to no phase."""
        attempt = Attempt()
        attempt.enter("connect")
        attempt.enter("transfer")
        attempt.enter("connect")
        attempt.stop()
        assert set(attempt.phases) == {"connect", "transfer"}
        assert attempt.phase == "done"

    @pytest.mark.parametrize(
        ("exc", "reason"),
        [
            (ConnectionRefusedError(111, "refused"), "connection_refused"),
            (ConnectionResetError(104, "reset"), "connection_reset"),
            (OSError(101, "unreachable"), "network_unreachable"),
            (OSError(24, "too many files"), "local_emfile"),
            (OSError(99, "cannot assign requested address"), "local_eaddrnotavail"),
            (OSError(110, "timed out"), "socket_etimedout"),
            (OSError("no errno"), "socket_error"),
        ],
    )
    def test_os_error_reasons(self, exc: OSError, reason: str) -> None:
        """Socket errors map to short reason tokens."""
        assert os_error_reason(exc) == reason


class TestRunGuarded:
    async def test_unexpected_exception_is_error_and_logged(self) -> None:
        """A bug inside a probe becomes an error result named by type, with a logged event."""

        async def broken(attempt: Attempt) -> None:
            attempt.enter("connect")
            raise RuntimeError("boom")

        with capture_logs() as logs:
            result = await run_guarded(ProbeContext.starting_now("t", 1.0), broken)
        assert (result.outcome, result.reason) == (Outcome.ERROR, "RuntimeError")
        assert result.details["error"] == "boom"
        assert [(e["event"], e["target"], e["phase"]) for e in logs] == [
            ("probe_unexpected_exception", "t", "connect")
        ]

    async def test_local_failure_is_error(self) -> None:
        """Out of file descriptors is this host's failure: error, never down."""

        async def exhausted(attempt: Attempt) -> None:
            attempt.enter("connect")
            raise OSError(24, "Too many open files")

        result = await run_guarded(ProbeContext.starting_now("t", 1.0), exhausted)
        assert (result.outcome, result.reason) == (Outcome.ERROR, "local_emfile")

    async def test_cancellation_is_reraised(self) -> None:
        """Cancellation from the runner propagates instead of becoming a result."""
        started = asyncio.Event()

        async def waits(attempt: Attempt) -> None:
            started.set()
            await asyncio.sleep(10)

        task = asyncio.create_task(run_guarded(ProbeContext.starting_now("t", 5.0), waits))
        async with asyncio.timeout(2):
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
