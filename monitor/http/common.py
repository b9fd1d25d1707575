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


async def json_body(request: web.Request, *, limit: int = MAX_BODY) -> Any:
    """The request's body parsed as JSON, read no further than ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyError(413, f"body larger than {limit} bytes")
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise BodyError(413, f"body larger than {limit} bytes")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(400, f"body: expected a JSON object: {exc}") from None


def only_fields(body: object, allowed: Iterable[str]) -> dict[str, Any]:
    """``body`` as an object holding no field outside ``allowed`` (``ValueError`` otherwise)."""
    if not isinstance(body, dict):
        raise ValueError(f"body: expected a JSON object, got {type(body).__name__}")
    known = set(allowed)
    unknown = sorted(set(body) - known)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; expected some of {sorted(known)}")
    return body
