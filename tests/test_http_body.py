"""The one body reader (issue 16, problems 1 and 3): bodies read completely up to the limit over a
real socket, 413 above it however the length is sent, 400 for malformed or too deep JSON, API
exclusion ids checked like config names. A real aiohttp server on 127.0.0.1:0; raw sockets send
the bodies in pieces the way a slow network delivers them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitor.config.support import SupportConfig
from monitor.http.api import exclusion_from_json
from monitor.http.common import MAX_WEBHOOK_BODY, BodyError, parse_json
from monitor.http.faults import fault_routes
from monitor.store.sqlite import SqliteStore
from tests.test_support_alertmanager import am_alert, am_payload

pytestmark = pytest.mark.timeout(60)

TOKEN = "s3cret"
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
SUPPORT = SupportConfig.model_validate(
    {
        "contracts": [{"name": "uma", "annual_fee": "120000.00", "currency": "GBP"}],
        "alertmanager": {"default_contract": "uma"},
    }
)


def check_token(request: web.Request) -> web.Response | None:
    """Exact bearer token or 401 (the daemon's rule in miniature)."""
    if request.headers.get("Authorization") == f"Bearer {TOKEN}":
        return None
    return web.json_response({"error": "missing or wrong bearer token"}, status=401)


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[int]:
    """The fault and webhook routes on a fresh app over a fresh database; yields the port."""
    store = SqliteStore(tmp_path / "slawatch.db", "test")
    await store.open()
    app = web.Application()
    app.add_routes(fault_routes(store, lambda: SUPPORT, check_token, clock=lambda: NOW))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield int(runner.addresses[0][1])
    await runner.cleanup()
    await store.close()


def big_payload(alerts: int, target_bytes: int) -> bytes:
    """An Alertmanager body of ``alerts`` alerts, padded by annotations to about
    ``target_bytes``. One alert opens a fault; the rest carry no severity label (skipped)."""
    items = [am_alert()] + [
        am_alert(fingerprint=f"{i:016x}", severity=None) for i in range(1, alerts)
    ]
    base = len(json.dumps(am_payload(*items)).encode())
    pad = max(0, (target_bytes - base) // alerts)
    for item in items:
        item["annotations"]["description"] = "x" * pad
    return json.dumps(am_payload(*items)).encode()


async def exchange(
    port: int, head: str, chunks: AsyncIterator[bytes]
) -> tuple[int, dict[str, Any]]:
    """Send ``head`` then ``chunks`` over a raw socket, each flushed on its own with a pause so
    the server sees them arrive separately; return the response's status and JSON body. Writing
    stops as soon as the server has answered (it may answer before the body ends)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())

    async def send() -> None:
        try:
            async for chunk in chunks:
                writer.write(chunk)
                await writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            pass

    sender = asyncio.create_task(send())
    try:
        status_line = await asyncio.wait_for(reader.readline(), 30)
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    finally:
        sender.cancel()
        writer.close()
    return int(status_line.split()[1]), json.loads(body)


async def pieces(data: bytes, size: int, *, chunked: bool = False) -> AsyncIterator[bytes]:
    """``data`` in pieces of ``size`` bytes (as HTTP chunks when ``chunked``), with a pause
    between pieces so that they arrive in separate reads."""
    for offset in range(0, len(data), size):
        piece = data[offset : offset + size]
        yield (f"{len(piece):x}\r\n".encode() + piece + b"\r\n") if chunked else piece
        await asyncio.sleep(0.002)
    if chunked:
        yield b"0\r\n\r\n"


def head(length: int | None) -> str:
    """A webhook request head: declared length, or chunked when ``length`` is None."""
    framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    return (
        "POST /api/v1/alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    )


class TestWholeBody:
    """Bodies under the limit are read to the end however they arrive (problem 1)."""

    async def test_984_kb_alertmanager_payload_in_pieces(self, port: int) -> None:
        """A 984 KB group of 600 alerts sent in 16 KiB pieces with a declared length is read
        whole: the fault opens and the other 599 alerts are reported as skipped."""
        data = big_payload(600, 984_000)
        assert 980_000 < len(data) <= MAX_WEBHOOK_BODY
        status, body = await exchange(port, head(len(data)), pieces(data, 16384))
        assert status == 200, body
        assert [f["action"] for f in body["faults"]] == ["created"]
        assert len(body["skipped"]) == 599

    async def test_984_kb_alertmanager_payload_chunked(self, port: int) -> None:
        """The same body in HTTP chunks (no declared length) is read whole too."""
        data = big_payload(600, 984_000)
        status, body = await exchange(port, head(None), pieces(data, 16384, chunked=True))
        assert status == 200, body
        assert len(body["skipped"]) == 599


class TestTooLarge:
    """413 above the limit, declared or not."""

    async def test_declared_length_above_limit(self, port: int) -> None:
        """A declared length above 1 MiB is refused before reading."""
        status, body = await exchange(port, head(MAX_WEBHOOK_BODY + 1), pieces(b"", 1))
        assert (status, body) == (413, {"error": f"body larger than {MAX_WEBHOOK_BODY} bytes"})

    async def test_100_mb_chunked(self, port: int) -> None:
        """A 100 MB chunked body is refused with 413 once it passes the limit (not 400)."""

        async def endless() -> AsyncIterator[bytes]:
            chunk = b"[" * 65536
            framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            for _ in range(100 * 1024 * 1024 // len(chunk)):
                yield framed
                await asyncio.sleep(0)

        status, body = await exchange(port, head(None), endless())
        assert (status, body) == (413, {"error": f"body larger than {MAX_WEBHOOK_BODY} bytes"})


class TestMalformed:
    """400 naming the problem, never a 500 (problem 3)."""

    async def test_10000_deep_json(self, port: int) -> None:
        """A 10,000-deep array gets 400 naming the nesting, not a RecursionError's 500."""
        data = b"[" * 10_000 + b"]" * 10_000
        status, body = await exchange(port, head(len(data)), pieces(data, 4096))
        assert (status, body) == (400, {"error": "body: JSON nested deeper than 64 levels"})

    async def test_not_json(self, port: int) -> None:
        """Malformed JSON gets 400 with the parser's position."""
        status, body = await exchange(port, head(5), pieces(b"{oops", 5))
        assert status == 400
        assert body["error"].startswith("body: expected a JSON object: Expecting property name")

    def test_depth_limit_below_recursion_limit(self) -> None:
        """Nesting the parser survives but deeper than 64 levels is refused too; 64 is fine."""
        assert parse_json(b"[" * 64 + b"]" * 64) is not None
        with pytest.raises(BodyError, match="nested deeper than 64 levels"):
            parse_json(b'{"a":' * 65 + b"1" + b"}" * 65)

    def test_not_utf8(self) -> None:
        """Bytes that are not UTF-8 are named as such."""
        with pytest.raises(BodyError, match="body: expected UTF-8 JSON"):
            parse_json(b'{"a": "\xff\xfe"}')


WINDOW = {
    "kind": "scheduled_maintenance",
    "start": "2026-11-10T02:00:00Z",
    "end": "2026-11-10T03:00:00Z",
    "reason": "patching",
}


class TestExclusionIds:
    """API exclusion ids follow the config's name rule (problem 3)."""

    @pytest.mark.parametrize("ident", ["../../etc/passwd", "Upper", "-lead", "a b", "x" * 65])
    def test_refused(self, ident: str) -> None:
        """Path-like, upper-case, leading punctuation, spaces and over-long ids are refused."""
        with pytest.raises(ValueError, match=r"^id: "):
            exclusion_from_json({**WINDOW, "id": ident}, set())

    def test_sixty_kb_id(self) -> None:
        """A 60 KB id is refused by length, and the message does not echo it."""
        with pytest.raises(ValueError, match=r"^id: at most") as info:
            exclusion_from_json({**WINDOW, "id": "a" * 60_000}, set())
        assert str(info.value) == "id: at most 64 characters, got 60000"

    @pytest.mark.parametrize("ident", ["patch-2026.11", "a", "x" * 64, ""])
    def test_accepted(self, ident: str) -> None:
        """Config-style names up to 64 characters are kept; empty lets the store choose."""
        assert exclusion_from_json({**WINDOW, "id": ident}, set()).id == ident
