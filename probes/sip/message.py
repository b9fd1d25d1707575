"""SIP messages (RFC 3261 §7, §20, §25): frozen types, a strict but tolerant parser, builders.

Parsing is the part a hostile or broken peer controls, so ``parse_message`` has one failure
mode: ``ParseError`` (``.reason`` is ``malformed`` or ``too_large``). It accepts what real
servers send -- folded header lines, compact names (``v``, ``f``, ``t``, ``i``...), names in
any case, LF-only line ends, several Via values in one header -- and rejects what cannot be
matched to a transaction safely (no CSeq, a bad start line, a body shorter than its
Content-Length, more than ``MAX_MESSAGE_BYTES``).

Header names are stored canonically (``Via``, ``Call-ID``, ``WWW-Authenticate``); unknown
names keep their spelling and compare case-insensitively. ``encode()`` always writes a
Content-Length computed from the body, last, so a message built here is framed correctly
on streams.

Public API:
  ParseError, MAX_MESSAGE_BYTES
  Headers (get, get_all, values, with_added, with_replaced, without, prepend)
  (Headers, Via, NameAddr and the header parsers live in probes.sip.headers, re-exported here)
  SipRequest, SipResponse, SipMessage; parse_message(data) -> SipMessage
  StreamFramer (feed bytes from TCP/TLS, get complete messages)
  Via / parse_via; NameAddr / parse_name_addr; parse_cseq; split_list; header_params
  new_branch, new_tag, new_call_id; build_request; make_response; build_non2xx_ack;
  build_2xx_ack; build_cancel
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from probes.sip.headers import (
    Headers,
    NameAddr,
    ParseError,
    Via,
    canonical_name,
    header_params,
    is_token,
    parse_cseq,
    parse_name_addr,
    parse_via,
    split_list,
)

__all__ = [
    "BRANCH_COOKIE",
    "MAX_MESSAGE_BYTES",
    "Headers",
    "NameAddr",
    "ParseError",
    "SipMessage",
    "SipRequest",
    "SipResponse",
    "StreamFramer",
    "Via",
    "build_2xx_ack",
    "build_cancel",
    "build_non2xx_ack",
    "build_request",
    "canonical_name",
    "header_params",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse_cseq",
    "parse_message",
    "parse_name_addr",
    "parse_via",
    "split_list",
]

MAX_MESSAGE_BYTES = 64 * 1024
BRANCH_COOKIE = "z9hG4bK"

_STATUS_LINE = re.compile(r"^SIP/2\.0[ \t]+(\d{3})(?:[ \t]+(.*))?$", re.IGNORECASE)
_REQUEST_LINE = re.compile(r"^([A-Za-z0-9.!%*_+`'~-]+)[ \t]+(\S+)[ \t]+SIP/2\.0$", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class _MessageBase:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        """(number, METHOD); ParseError if CSeq is missing or malformed."""
        value = self.headers.get("CSeq")
        if value is None:
            raise ParseError("CSeq header missing")
        return parse_cseq(value)

    @property
    def top_via(self) -> Via:
        values = self.headers.get_all("Via")
        if not values:
            raise ParseError("Via header missing")
        return parse_via(values[0])

    def _encode(self, start_line: str) -> bytes:
        lines = [start_line]
        lines.extend(f"{n}: {v}" for n, v in self.headers.items if n != "Content-Length")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass(frozen=True, slots=True, kw_only=True)
class SipRequest(_MessageBase):
    """A request; ``uri`` is the Request-URI as written."""

    method: str = "OPTIONS"
    uri: str = ""

    def encode(self) -> bytes:
        return self._encode(f"{self.method} {self.uri} SIP/2.0")

    def with_headers(self, headers: Headers) -> SipRequest:
        return replace(self, headers=headers)


@dataclass(frozen=True, slots=True, kw_only=True)
class SipResponse(_MessageBase):
    """A response; ``reason`` is the reason phrase (may be empty)."""

    status: int = 200
    reason: str = ""

    def encode(self) -> bytes:
        return self._encode(f"SIP/2.0 {self.status} {self.reason}".rstrip())


SipMessage = SipRequest | SipResponse


def parse_message(data: bytes) -> SipMessage:
    """Parse one complete message (a datagram, or one framed by ``StreamFramer``)."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ParseError(
            f"message of {len(data)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit", "too_large"
        )
    # Stray CRLFs before a message are keep-alives (RFC 5626 §3.5.1), not part of it.
    data = data.lstrip(b"\r\n")
    head, sep, body = _split_head(data)
    if not sep:
        raise ParseError("no empty line ending the header section")
    text = head.decode("utf-8", errors="replace")
    lines = text.split("\n")
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    start = lines[0].strip()
    headers = _parse_header_lines(lines[1:])
    body = _frame_body(headers, body)
    status_match = _STATUS_LINE.match(start)
    message: SipMessage
    if status_match:
        code = int(status_match.group(1))
        if not 100 <= code <= 699:
            raise ParseError(f"status code {code} outside 100..699")
        message = SipResponse(
            headers=headers, body=body, status=code, reason=(status_match.group(2) or "").strip()
        )
    else:
        request_match = _REQUEST_LINE.match(start)
        if request_match is None:
            raise ParseError(
                f"start line is neither a status line nor a request line: {start!r:.80}"
            )
        method = request_match.group(1).upper()
        message = SipRequest(headers=headers, body=body, method=method, uri=request_match.group(2))
    number, method_name = message.cseq  # raises ParseError when absent/bad
    del number, method_name
    return message


def _split_head(data: bytes) -> tuple[bytes, bool, bytes]:
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        return data[:crlf], True, data[crlf + 4 :]
    if lf >= 0:
        return data[:lf], True, data[lf + 2 :]
    return data, False, b""


def _parse_header_lines(lines: list[str]) -> Headers:
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        if line[0] in " \t":
            if not pairs:
                raise ParseError(f"line {number}: continuation line before any header")
            name, value = pairs[-1]
            pairs[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not is_token(name):
            raise ParseError(f"line {number}: expected 'Name: value', got {line!r:.80}")
        pairs.append((canonical_name(name), value.strip()))
    return Headers(tuple(pairs))


def _frame_body(headers: Headers, rest: bytes) -> bytes:
    length_text = headers.get("Content-Length")
    if length_text is None:
        return rest
    length = _content_length(length_text)
    if length > len(rest):
        raise ParseError(f"body truncated: Content-Length {length}, {len(rest)} bytes present")
    return rest[:length]


def _content_length(text: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise ParseError(f"Content-Length: expected a non-negative integer, got {text!r:.40}")
    length = int(text)
    if length > MAX_MESSAGE_BYTES:
        raise ParseError(
            f"Content-Length {length} exceeds the {MAX_MESSAGE_BYTES}-byte limit", "too_large"
        )
    return length


class StreamFramer:
    """Cuts a TCP/TLS byte stream into messages by Content-Length (RFC 3261 §18.3).

    ``feed`` returns every complete message's bytes; it raises ``ParseError`` when the
    stream cannot be framed any more (header section or body beyond the size limit, a bad
    Content-Length): the connection is then unusable and must be closed.
    """

    def __init__(self, limit: int = MAX_MESSAGE_BYTES) -> None:
        self._buffer = bytearray()
        self._limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer.extend(data)
        out: list[bytes] = []
        while True:
            # Keep-alive CRLFs between messages carry nothing.
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > self._limit:
                    raise ParseError(
                        f"header section exceeds the {self._limit}-byte limit", "too_large"
                    )
                return out
            head_len = end + 4
            length = 0
            for line in bytes(self._buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() in (b"content-length", b"l"):
                    length = _content_length(value.decode("latin-1"))
            if head_len + length > self._limit:
                raise ParseError(
                    f"message of {head_len + length} bytes exceeds the {self._limit}-byte limit",
                    "too_large",
                )
            if len(self._buffer) < head_len + length:
                return out
            out.append(bytes(self._buffer[: head_len + length]))
            del self._buffer[: head_len + length]


def new_branch() -> str:
    """A fresh RFC 3261 branch (magic cookie + 64 random bits)."""
    return BRANCH_COOKIE + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


def make_response(
    request: SipRequest,
    status: int,
    reason: str,
    *,
    to_tag: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> SipResponse:
    """A response to ``request`` (RFC 3261 §8.2.6): Via/From/Call-ID/CSeq copied, To tagged."""
    pairs: list[tuple[str, str]] = [("Via", v) for v in request.headers.values("Via")]
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = request.headers.get(name)
        if value is None:
            continue
        if name == "To" and to_tag and status > 100:
            address = parse_name_addr(value)
            if address.tag is None:
                value = str(address.with_tag(to_tag))
        pairs.append((name, value))
    pairs.extend(extra)
    return SipResponse(headers=Headers.of(pairs), body=body, status=status, reason=reason)


def build_non2xx_ack(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK the INVITE client transaction itself sends for a 3xx-6xx (RFC 3261 §17.1.1.3)."""
    number, _ = invite.cseq
    pairs: list[tuple[str, str]] = [("Via", invite.headers.get_all("Via")[0])]
    pairs.extend(("Route", r) for r in invite.headers.values("Route"))
    pairs.append(("Max-Forwards", "70"))
    pairs.append(("From", invite.headers.get("From") or ""))
    pairs.append(("To", response.headers.get("To") or invite.headers.get("To") or ""))
    pairs.append(("Call-ID", invite.call_id))
    pairs.append(("CSeq", f"{number} ACK"))
    return SipRequest(headers=Headers.of(pairs), method="ACK", uri=invite.uri)


def build_2xx_ack(invite: SipRequest, response: SipResponse, body: bytes = b"") -> SipRequest:
    """The caller's ACK for a 2xx (RFC 3261 §13.2.2.4): to the Contact, along the route set.

    It carries no Via: ``SipEndpoint.send_ack`` adds one with a new branch, as the ACK for
    a 2xx is a transaction of its own.
    """
    number, _ = invite.cseq
    contacts = response.headers.get_all("Contact")
    target = parse_name_addr(contacts[0]).uri if contacts else invite.uri
    pairs: list[tuple[str, str]] = []
    pairs.extend(("Route", r) for r in reversed(response.headers.get_all("Record-Route")))
    pairs.append(("Max-Forwards", "70"))
    pairs.append(("From", invite.headers.get("From") or ""))
    pairs.append(("To", response.headers.get("To") or ""))
    pairs.append(("Call-ID", invite.call_id))
    pairs.append(("CSeq", f"{number} ACK"))
    return SipRequest(headers=Headers.of(pairs), body=body, method="ACK", uri=target)


def build_cancel(invite: SipRequest) -> SipRequest:
    """CANCEL for a sent INVITE (RFC 3261 §9.1): same top Via, URI, Call-ID and CSeq number."""
    number, _ = invite.cseq
    pairs: list[tuple[str, str]] = [("Via", invite.headers.get_all("Via")[0])]
    pairs.extend(("Route", r) for r in invite.headers.values("Route"))
    pairs.append(("Max-Forwards", "70"))
    for name in ("From", "To", "Call-ID"):
        pairs.append((name, invite.headers.get(name) or ""))
    pairs.append(("CSeq", f"{number} CANCEL"))
    return SipRequest(headers=Headers.of(pairs), method="CANCEL", uri=invite.uri)


def build_request(
    method: str,
    uri: str,
    *,
    from_uri: str,
    to_uri: str,
    call_id: str,
    cseq: int,
    from_tag: str,
    to_tag: str | None = None,
    contact: str | None = None,
    user_agent: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    max_forwards: int = 70,
) -> SipRequest:
    """A request without Via (the endpoint adds it, with the branch, when sending)."""
    pairs: list[tuple[str, str]] = [
        ("Max-Forwards", str(max_forwards)),
        ("From", f"<{from_uri}>;tag={from_tag}"),
        ("To", f"<{to_uri}>" + (f";tag={to_tag}" if to_tag else "")),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
    ]
    if contact:
        pairs.append(("Contact", contact))
    if user_agent:
        pairs.append(("User-Agent", user_agent))
    pairs.extend(extra)
    if content_type:
        pairs.append(("Content-Type", content_type))
    return SipRequest(headers=Headers.of(pairs), body=body, method=method, uri=uri)
