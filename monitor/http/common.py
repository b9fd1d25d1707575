"""What every HTTP route shares: the JSON error shape, the bounded JSON body reader and the
unknown-field check (the exclusion, claim and fault routes use the same ones)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

MAX_BODY = 64 * 1024
"""Exclusions and claims are small."""
MAX_WEBHOOK_BODY = 1024 * 1024
"""Alertmanager groups can be large (up to its max_alerts); the fault routes share this limit."""
MAX_DEPTH = 64
"""No payload we accept nests deeper than a few levels; deeper is refused with 400."""


def json_error(status: int, message: str) -> web.Response:
    """``{"error": message}`` with ``status``: every refusal looks the same."""
    return web.json_response({"error": message}, status=status)


class BodyError(Exception):
    """Raised by :func:`json_body` for a body too large (413) or not JSON (400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def response(self) -> web.Response:
        return json_error(self.status, str(self))


async def read_body(request: web.Request, *, limit: int) -> bytes:
    """The whole request body, refused with 413 as soon as it exceeds ``limit`` bytes.

    ``request.content.read(n)`` returns only what is already buffered, so a body arriving in
    several TCP segments (or chunks) was cut short; this reads until the end of the body.
    A declared ``Content-Length`` above the limit is refused before anything is read."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyError(413, f"body larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            # Chunked or lying about its length: stop reading, the connection is closed.
            raise BodyError(413, f"body larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def nesting_depth_exceeds(value: object, limit: int) -> bool:
    """True when ``value`` nests arrays/objects deeper than ``limit`` (iterative, no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_json(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``raw`` as JSON, or :class:`BodyError` 400 naming the problem (never a RecursionError)."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BodyError(400, f"body: JSON nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError as exc:
        raise BodyError(
            400, f"body: expected UTF-8 JSON: {exc.reason} at byte {exc.start}"
        ) from None
    except ValueError as exc:
        raise BodyError(400, f"body: expected a JSON object: {exc}") from None
    if nesting_depth_exceeds(value, max_depth):
        raise BodyError(400, f"body: JSON nested deeper than {max_depth} levels")
    return value


async def json_body(request: web.Request, *, limit: int = MAX_BODY) -> Any:
    """The request's body parsed as JSON: read completely up to ``limit`` bytes (413 beyond),
    400 for malformed or too deeply nested JSON. Every route reads its body through here."""
    return parse_json(await read_body(request, limit=limit))


def only_fields(body: object, allowed: Iterable[str]) -> dict[str, Any]:
    """``body`` as an object holding no field outside ``allowed`` (``ValueError`` otherwise)."""
    if not isinstance(body, dict):
        raise ValueError(f"body: expected a JSON object, got {type(body).__name__}")
    known = set(allowed)
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; expected some of {sorted(known)}")
    return body
