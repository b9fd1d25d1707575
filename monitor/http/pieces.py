"""Send a large body given as pieces without joining it, yielding to the event loop between
writes.

``/metrics`` at 10,000 one-target SLAs is ~29 MB. Joined into one ``bytes`` and handed to
``web.Response`` it cost two copies of the body (the join, then the transport's buffer for all
the socket did not take at once) and held the event loop 60-150 ms per scrape (issue 20, sc24).
Here the body keeps the pieces it was rendered as (the cached chunks of text), its length is
declared up front (``Content-Length``: no chunked framing, the bytes on the wire are the
same as before), and the pieces are written a batch at a time: a batch of small pieces is
joined (``BATCH_BYTES`` at most), a large piece goes as it is, and between two batches the
writer waits for the transport to drain (aiohttp's own flow control) and, after
``SLICE_SECONDS`` of work without a wait, yields to the loop anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiohttp import web

BATCH_BYTES = 256 * 1024
"""Small pieces joined into one write up to this size (fewer system calls, a small copy)."""

TRANSPORT_BYTES = 4 * 1024 * 1024
"""The transport's high-water mark while a body is sent (its usual one is 64 KB)."""

SLICE_SECONDS = 0.005
"""Writing time after which the writer yields to the event loop even if the socket drains."""


async def send_pieces(
    request: web.Request, pieces: Sequence[bytes], content_type: str
) -> web.StreamResponse:
    """Answer ``request`` with the concatenation of ``pieces`` (never built)."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    # mem34 (issue 20): pieces that know their length (``monitor.metrics.sla_text``'s,
    # made as they are read) are not made twice for it.
    known = getattr(pieces, "nbytes", None)
    response.content_length = (
        known if isinstance(known, int) else sum(len(piece) for piece in pieces)
    )
    await response.prepare(request)
    if request.method == "HEAD":
        # aiohttp would send what is written even for HEAD: the headers alone.
        await response.write_eof()
        return response
    # The transport may hold up to TRANSPORT_BYTES of the body (one copy of that much at
    # most) so that the socket is refilled by the transport's own writable callback rather
    # than by this task resuming after each drain: on a busy loop every resumption waits a
    # turn of the loop, and a body of 29 MB in 64 KB drains is hundreds of turns.
    transport = request.transport
    limits = None
    if transport is not None:
        limits = transport.get_write_buffer_limits()
        transport.set_write_buffer_limits(high=TRANSPORT_BYTES)
    try:
        await _write(response, pieces)
    finally:
        if transport is not None and limits is not None and not transport.is_closing():
            transport.set_write_buffer_limits(high=limits[1], low=limits[0])
    await response.write_eof()
    return response


async def _write(response: web.StreamResponse, pieces: Sequence[bytes]) -> None:
    batch: list[bytes] = []
    size = 0
    mark = time.perf_counter()
    for piece in pieces:
        if size and size + len(piece) > BATCH_BYTES:
            await response.write(batch[0] if len(batch) == 1 else b"".join(batch))
            batch, size = [], 0
            if time.perf_counter() - mark > SLICE_SECONDS:
                await asyncio.sleep(0)
                mark = time.perf_counter()
        batch.append(piece)
        size += len(piece)
    if batch:
        await response.write(batch[0] if len(batch) == 1 else b"".join(batch))
