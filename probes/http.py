"""The ``http`` probe: one HTTP/1.1 request over a fresh connection, judged like blackbox's
``http`` prober.

A small HTTP/1.1 client over asyncio streams rather than aiohttp: it costs about three
quarters of aiohttp's CPU per probe and under 0.4 of the blackbox exporter's (the daemon
must run 10,000 targets at 30 s on two cores; bench/http_probe_bench.py), and owning the
parser lets every way a response can be wrong (garbage status line, oversized head, endless
chunked body, reset mid-body) end as a precise reason instead of a generic client error.
The request always carries ``Connection: close`` and the connection is dropped after the
response: an availability check must never ride a pooled connection.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import ssl
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from probes.fields import SecretRef, SecretUnavailable, checked_regex
from probes.rawconn import open_raw
from probes.result import ProbeContext, ProbeResult
from probes.tcp import Attempt, IpProtocol, ProbeDown, drop, open_stream, run_guarded
from probes.tls import DEFAULT_TLS, TlsOptions, client_context

_HEAD_LIMIT = 64 * 1024
_READ_SIZE = 64 * 1024
_MAX_INTERIM = 8
_USER_AGENT = "slawatch/0.1"
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_STATUS_LINE = re.compile(rb"^HTTP/(\d\.\d) (\d{3})(?: [^\r\n]*)?$")
_CHUNK_SIZE = re.compile(rb"^[0-9A-Fa-f]{1,16}$")
_RESERVED_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})
_STATUS_SPEC = re.compile(r"^([1-5])xx$|^(\d{3})(?:-(\d{3}))?$")
# A URL ``_parse_url`` surely accepts: http(s), a host of letters, digits, dots and dashes, a
# port of at most five digits (checked against 65535 apart), a plain path. Every target's URL
# is checked at load (issue 20: 10,000 of them took 0.08 s through urlsplit, 0.01 s here);
# anything else goes through ``_parse_url``, which says what is wrong with it.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::([0-9]{1,5}))?(?:/[A-Za-z0-9._~/-]*)?")


class BasicAuth(BaseModel):
    """HTTP basic credentials; the password is a secret reference, never inline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str
    password: SecretRef

    @field_validator("username")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        if ":" in value or "\n" in value or "\r" in value:
            raise ValueError(
                f"a basic-auth username cannot contain ':' or a newline, got {value!r}"
            )
        return value


class HttpAuth(BaseModel):
    """Exactly one of ``basic`` or ``bearer`` (a token secret reference)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    basic: BasicAuth | None = None
    bearer: SecretRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> HttpAuth:
        if (self.basic is None) == (self.bearer is None):
            raise ValueError("give exactly one of 'basic' ({username, password}) or 'bearer'")
        return self


StatusSpec = int | str


@dataclasses.dataclass(frozen=True, slots=True)
class _Url:
    scheme: str
    host: str
    port: int
    target: str
    host_header: str
    text: str


def _parse_url(text: str, error: type[Exception]) -> _Url:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise error(f"expected an http:// or https:// URL, got {text!r}: {exc}") from exc
    # Each of urllib's hostname, username and password properties splits the network location
    # again: the host is read once, and an '@' in it is exactly when urllib finds a username
    # (perhaps empty) or a password (issue 20: every target's URL is parsed at load).
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise error(f"expected an absolute http:// or https:// URL, got {text!r}")
    if "@" in parts.netloc:
        raise error(f"credentials in the URL are not allowed (use auth:), got {host!r}")
    if not text.isascii():
        raise error(f"expected an ASCII URL (percent-encode other characters), got {text!r}")
    if any(c in text for c in " \r\n\t\0"):
        raise error(f"a URL cannot contain spaces or line breaks, got {text!r}")
    default = 443 if parts.scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    host_header = shown if port in (None, default) else f"{shown}:{port}"
    return _Url(parts.scheme, host, port or default, target, host_header, text)


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    url: _Url
    method: str
    header_block: bytes
    has_host_header: bool
    body: bytes
    ranges: tuple[tuple[int, int], ...]
    fail_if_matches: tuple[re.Pattern[bytes], ...]
    fail_if_not_matches: tuple[re.Pattern[bytes], ...]
    first_request: bytes | None

    def valid(self, status: int) -> bool:
        if not self.ranges:
            return 200 <= status <= 299
        return any(low <= status <= high for low, high in self.ranges)


class HttpOptions(BaseModel):
    """Options of an ``http`` target (the ``http:`` block)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    valid_status_codes: tuple[StatusSpec, ...] = ()
    fail_if_body_matches_regexp: tuple[str, ...] = ()
    fail_if_body_not_matches_regexp: tuple[str, ...] = ()
    max_body_bytes: int = Field(default=1024 * 1024, ge=0)
    follow_redirects: bool = True
    max_redirects: int = Field(default=10, ge=0, le=100)
    preferred_ip_protocol: IpProtocol = "any"
    ip_protocol_fallback: bool = True
    # One default object for every target that gives no ``tls:`` (frozen, so shared, as
    # ``slim`` would share it anyway): not one validated per target (issue 20, cl32).
    tls: TlsOptions = Field(default_factory=lambda: DEFAULT_TLS)
    auth: HttpAuth | None = None

    _plan: _Plan | None = PrivateAttr(default=None)

    @field_validator("url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        plain = _PLAIN_URL.fullmatch(value)
        if plain is None or int(plain.group(1) or 0) > 65535:
            _parse_url(value, ValueError)
        return value

    @field_validator("method")
    @classmethod
    def _method_token(cls, value: str) -> str:
        if not _TOKEN.match(value):
            raise ValueError(f"expected an HTTP method such as GET or POST, got {value!r}")
        return value.upper()

    @field_validator("headers")
    @classmethod
    def _header_lines(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _TOKEN.match(name):
                raise ValueError(f"expected a header name (letters, digits, '-'), got {name!r}")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the probe itself and cannot be given")
            if any(c in text for c in "\r\n\0"):
                raise ValueError(f"header {name!r}: a value cannot contain a line break")
            if not text.isascii():
                raise ValueError(f"header {name!r}: expected an ASCII value, got {text!r}")
        return value

    @field_validator("valid_status_codes")
    @classmethod
    def _status_specs(cls, value: tuple[StatusSpec, ...]) -> tuple[StatusSpec, ...]:
        for spec in value:
            _status_range(spec)
        return value

    @field_validator("fail_if_body_matches_regexp", "fail_if_body_not_matches_regexp")
    @classmethod
    def _regexps(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            checked_regex(pattern, over_bytes=True)
        return value

    def plan(self) -> _Plan:
        """Everything derivable from the options alone, computed once per options object."""
        # Read through the private-attribute dict, not ``self._plan``: pydantic resolves a
        # private attribute in a Python ``__getattr__`` (about 12 us a call, measured), and
        # this runs on every probe (issue 20: CPU per probe).
        private = self.__pydantic_private__
        plan = private.get("_plan") if private is not None else None
        if plan is None:
            plan = self._plan = _build_plan(self)
        return plan


def _status_range(spec: StatusSpec) -> tuple[int, int]:
    if isinstance(spec, bool):
        raise ValueError(f"expected a status code, 'Nxx' or 'NNN-NNN', got {spec!r}")
    if isinstance(spec, int):
        if not 100 <= spec <= 599:
            raise ValueError(f"expected a status code between 100 and 599, got {spec}")
        return spec, spec
    match = _STATUS_SPEC.match(spec.strip())
    if match is None:
        raise ValueError(f"expected a status code, 'Nxx' (such as 2xx) or 'NNN-NNN', got {spec!r}")
    if match.group(1):
        low = int(match.group(1)) * 100
        return low, low + 99
    low = int(match.group(2))
    high = int(match.group(3) or low)
    if not 100 <= low <= high <= 599:
        raise ValueError(f"expected a range of status codes within 100-599, got {spec!r}")
    return low, high


def _build_plan(options: HttpOptions) -> _Plan:
    lines = [f"User-Agent: {_USER_AGENT}\r\n", "Accept: */*\r\n"]
    names = {name.lower() for name in options.headers}
    lines = [line for line in lines if line.split(":", 1)[0].lower() not in names]
    lines += [f"{name}: {value}\r\n" for name, value in options.headers.items()]
    plan = _Plan(
        url=_parse_url(options.url, ValueError),
        method=options.method,
        header_block="".join(lines).encode("latin-1", errors="strict"),
        has_host_header="host" in names,
        body=options.body.encode() if options.body is not None else b"",
        ranges=tuple(_status_range(spec) for spec in options.valid_status_codes),
        fail_if_matches=tuple(re.compile(p.encode()) for p in options.fail_if_body_matches_regexp),
        fail_if_not_matches=tuple(
            re.compile(p.encode()) for p in options.fail_if_body_not_matches_regexp
        ),
        first_request=None,
    )
    if options.auth is None:
        # The common case: the first request's bytes never change, so build them once.
        request = _request_bytes(plan, plan.url, plan.method, plan.body, "")
        plan = dataclasses.replace(plan, first_request=request)
    return plan


def _request_bytes(plan: _Plan, url: _Url, method: str, body: bytes, auth: str) -> bytes:
    head = f"{method} {url.target} HTTP/1.1\r\n"
    if not plan.has_host_header:
        head += f"Host: {url.host_header}\r\n"
    tail = auth
    if body or method in ("POST", "PUT", "PATCH"):
        tail += f"Content-Length: {len(body)}\r\n"
    tail += "Connection: close\r\n\r\n"
    return head.encode("latin-1") + plan.header_block + tail.encode("latin-1") + body


def _auth_header(auth: HttpAuth | None) -> str:
    # Read at every probe so that a rotated secret file is picked up without a reload.
    if auth is None:
        return ""
    if auth.basic is not None:
        pair = f"{auth.basic.username}:{auth.basic.password.read()}".encode()
        return f"Authorization: Basic {base64.b64encode(pair).decode('ascii')}\r\n"
    assert auth.bearer is not None
    token = auth.bearer.read()
    if not token.isprintable():
        raise SecretUnavailable(f"the bearer token in {auth.bearer.describe()} is not printable")
    return f"Authorization: Bearer {token}\r\n"


@dataclasses.dataclass(slots=True)
class _Response:
    status: int
    version: str
    headers: dict[str, str]
    body: bytes
    body_bytes: int


async def probe(options: HttpOptions, ctx: ProbeContext) -> ProbeResult:
    """Send the configured request, follow redirects if asked, and judge the final answer."""
    plan = options.plan()

    async def body(attempt: Attempt) -> None:
        await _exchange(options, plan, attempt)

    return await run_guarded(ctx, body)


async def _exchange(options: HttpOptions, plan: _Plan, attempt: Attempt) -> None:
    auth = _auth_header(options.auth)
    url, method, body = plan.url, plan.method, plan.body
    request = plan.first_request or _request_bytes(plan, url, method, body, auth)
    need_body = bool(plan.fail_if_matches or plan.fail_if_not_matches)
    redirects = 0
    while True:
        response = await _fetch(options, url, request, method == "HEAD", need_body, attempt)
        location = response.headers.get("location")
        if not (options.follow_redirects and location and _is_redirect(response.status)):
            break
        if redirects >= options.max_redirects:
            attempt.details["redirects"] = redirects
            raise ProbeDown("too_many_redirects")
        redirects += 1
        try:
            next_url = _parse_url(urljoin(url.text, location.strip()), ProbeDown)
        except ProbeDown as exc:
            attempt.details["redirects"] = redirects
            raise ProbeDown("redirect_location_invalid") from exc
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            # What browsers and Go do: the redirected request becomes a GET without a body.
            method, body = ("HEAD" if method == "HEAD" else "GET"), b""
        same_origin = (next_url.scheme, next_url.host, next_url.port) == (
            url.scheme,
            url.host,
            url.port,
        )
        # Credentials go only where they were configured for, never to another origin.
        request = _request_bytes(plan, next_url, method, body, auth if same_origin else "")
        url = next_url
    attempt.details["redirects"] = redirects
    status = response.status
    if not plan.valid(status):
        if _is_redirect(status) and not options.follow_redirects:
            raise ProbeDown("redirect_not_followed")
        raise ProbeDown(f"status_code_{status}")
    for pattern in plan.fail_if_matches:
        if pattern.search(response.body):
            raise ProbeDown("body_regex_forbidden")
    for pattern in plan.fail_if_not_matches:
        if not pattern.search(response.body):
            raise ProbeDown("body_regex_missing")


def _is_redirect(status: int) -> bool:
    return status in (301, 302, 303, 307, 308)


class _Reader(Protocol):
    """What the parser reads with: ``asyncio.StreamReader`` (TLS) or ``RawStream`` (plain)."""

    async def read(self, n: int) -> bytes: ...
    async def readexactly(self, n: int) -> bytes: ...
    async def readuntil(self, separator: bytes = ...) -> bytes: ...


async def _fetch(
    options: HttpOptions,
    url: _Url,
    request: bytes,
    head_request: bool,
    keep_body: bool,
    attempt: Attempt,
) -> _Response:
    if url.scheme != "https":
        # Plain HTTP on the loop's socket calls (issue 20: a third less CPU per probe and
        # fewer loop iterations before the request is sent; probes/rawconn.py).
        stream = await open_raw(
            attempt,
            url.host,
            url.port,
            preferred=options.preferred_ip_protocol,
            fallback=options.ip_protocol_fallback,
            limit=_HEAD_LIMIT,
        )
        try:
            attempt.enter("first_byte")
            await stream.write(request)
            return await _answer(stream, head_request, keep_body, options, attempt)
        finally:
            stream.close()
    return await _fetch_streams(
        options, url, request, head_request, keep_body, attempt, client_context(options.tls)
    )


async def _fetch_streams(
    options: HttpOptions,
    url: _Url,
    request: bytes,
    head_request: bool,
    keep_body: bool,
    attempt: Attempt,
    tls: ssl.SSLContext | None,
) -> _Response:
    """The same exchange over asyncio streams: HTTPS (``tls``), and plain HTTP before issue
    20 (``bench/http_probe_bench.py --streams`` measures it against the socket calls)."""
    reader, writer = await open_stream(
        attempt,
        url.host,
        url.port,
        preferred=options.preferred_ip_protocol,
        fallback=options.ip_protocol_fallback,
        tls=tls,
        server_name=options.tls.server_name or url.host,
        limit=_HEAD_LIMIT,
    )
    try:
        attempt.enter("first_byte")
        writer.write(request)
        return await _answer(reader, head_request, keep_body, options, attempt)
    finally:
        drop(writer)


async def _answer(
    reader: _Reader, head_request: bool, keep_body: bool, options: HttpOptions, attempt: Attempt
) -> _Response:
    """Read and check the answer to the request just sent (phase ``first_byte`` running)."""
    first = await reader.read(1)
    if not first:
        raise ProbeDown("empty_reply")
    for interim in range(_MAX_INTERIM + 1):
        if interim == _MAX_INTERIM:
            raise ProbeDown("http_too_many_interim_responses")
        status, version, headers = await _read_head(reader, first)
        first = b""
        attempt.details["status_code"] = status
        attempt.details["http_version"] = version
        # Interim answers (100 Continue, 103 Early Hints) precede the real one.
        if not 100 <= status <= 199 or status == 101:
            break
    attempt.enter("transfer")
    no_body = head_request or status in (204, 304) or 100 <= status <= 199
    body, size = (b"", 0) if no_body else await _read_body(reader, headers, options, keep_body)
    attempt.details["body_bytes"] = size
    attempt.stop()
    return _Response(status, version, headers, body, size)


async def _read_head(reader: _Reader, first: bytes) -> tuple[int, str, dict[str, str]]:
    try:
        raw = first + await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise ProbeDown("http_headers_too_large") from exc
    except asyncio.IncompleteReadError as exc:
        raise ProbeDown("http_incomplete_head") from exc
    lines = raw[:-4].split(b"\r\n")
    match = _STATUS_LINE.match(lines[0])
    if match is None:
        raise ProbeDown("http_malformed_status_line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name or b"\t" in name:
            raise ProbeDown("http_malformed_header")
        key = name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        if key == "content-length" and key in headers and headers[key] != text:
            raise ProbeDown("http_malformed_header")
        if key in headers and key != "content-length":
            text = f"{headers[key]}, {text}"
        headers[key] = text
    return int(match.group(2)), match.group(1).decode(), headers


async def _read_body(
    reader: _Reader,
    headers: dict[str, str],
    options: HttpOptions,
    keep: bool,
) -> tuple[bytes, int]:
    limit = options.max_body_bytes
    encoding = headers.get("transfer-encoding", "").lower()
    if encoding.rsplit(",", 1)[-1].strip() == "chunked":
        return await _read_chunked(reader, limit, keep)
    length_text = headers.get("content-length") if not encoding else None
    if length_text is not None:
        if not length_text.isdigit():
            raise ProbeDown("http_malformed_header")
        length = int(length_text)
        if length > limit:
            raise ProbeDown("body_too_large")
        try:
            data = await reader.readexactly(length)
        except asyncio.IncompleteReadError as exc:
            raise ProbeDown("http_incomplete_body") from exc
        return (data if keep else b""), length
    return await _read_to_eof(reader, limit, keep)


async def _read_to_eof(reader: _Reader, limit: int, keep: bool) -> tuple[bytes, int]:
    parts: list[bytes] = []
    size = 0
    while chunk := await reader.read(_READ_SIZE):
        size += len(chunk)
        if size > limit:
            raise ProbeDown("body_too_large")
        if keep:
            parts.append(chunk)
    return b"".join(parts), size


async def _read_chunked(reader: _Reader, limit: int, keep: bool) -> tuple[bytes, int]:
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            line = await reader.readuntil(b"\r\n")
            digits = line[:-2].split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.match(digits):
                raise ProbeDown("http_malformed_chunked_encoding")
            chunk_size = int(digits, 16)
            if chunk_size == 0:
                break
            size += chunk_size
            if size > limit:
                raise ProbeDown("body_too_large")
            data = await reader.readexactly(chunk_size + 2)
            if data[-2:] != b"\r\n":
                raise ProbeDown("http_malformed_chunked_encoding")
            if keep:
                parts.append(data[:-2])
        trailer_bytes = 0
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            trailer_bytes += len(line)
            if trailer_bytes > _HEAD_LIMIT:
                raise ProbeDown("http_headers_too_large")
    except asyncio.LimitOverrunError as exc:
        raise ProbeDown("http_malformed_chunked_encoding") from exc
    except asyncio.IncompleteReadError as exc:
        raise ProbeDown("http_incomplete_body") from exc
    return b"".join(parts), size
