"""SIP header values (RFC 3261 §7.3, §20, §25): names, lists, Via, name-addr, CSeq.

Pure parsing of the parts a transaction layer matches on. Every failure is a ``ParseError``
naming the value and what was expected; ``probes.sip.message`` re-exports all of this.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

_COMPACT_FORMS = (
    "v=Via f=From t=To i=Call-ID m=Contact l=Content-Length c=Content-Type "
    "k=Supported s=Subject e=Content-Encoding o=Event r=Refer-To b=Referred-By "
    "u=Allow-Events x=Session-Expires a=Accept-Contact j=Reject-Contact "
    "d=Request-Disposition y=Identity n=Identity-Info"
)
_COMPACT = dict(pair.split("=") for pair in _COMPACT_FORMS.split())
_KNOWN_NAMES = (
    "Via From To Call-ID CSeq Contact Content-Length Content-Type Max-Forwards Expires "
    "Route Record-Route Allow Supported Require User-Agent Server WWW-Authenticate "
    "Proxy-Authenticate Authorization Proxy-Authorization Accept Warning Retry-After "
    "Subject Content-Encoding Event Reason Date"
)
_CANONICAL = {name.lower(): name for name in _KNOWN_NAMES.split()}
# Headers whose value is a comma-separated list (RFC 3261 §7.3.1): only these are split, so
# a digest challenge or a Date with a comma stays whole.
_LIST_HEADERS = frozenset(
    {"via", "contact", "route", "record-route", "allow", "supported", "require", "accept"}
)
_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_VIA = re.compile(
    r"^SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*([A-Za-z0-9-]+)[ \t]+"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?:[ \t]*:[ \t]*(\d{1,5}))?[ \t]*(.*)$",
    re.IGNORECASE,
)


class ParseError(ValueError):
    """Raised by the parser (and the framer) for bytes that are not an acceptable SIP message.

    ``reason`` is ``malformed`` or ``too_large``; the message says what was wrong and where.
    """

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


def is_token(text: str) -> bool:
    """Whether ``text`` is an RFC 3261 token (a header name, a method)."""
    return _TOKEN.match(text) is not None


def canonical_name(name: str) -> str:
    """The stored spelling of a header name: compact forms expanded, known names canonical."""
    lowered = name.lower()
    expanded = _COMPACT.get(lowered)
    if expanded is not None:
        return expanded
    return _CANONICAL.get(lowered, name)


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, ignoring commas inside quotes or ``<...>``."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    angle = False
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle = True
        elif not quoted and ch == ">":
            angle = False
        elif ch == "," and not quoted and not angle:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


@dataclass(frozen=True, slots=True)
class Headers:
    """An ordered, immutable header list; names compare case-insensitively."""

    items: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        return cls(tuple((canonical_name(n), v) for n, v in pairs))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def values(self, name: str) -> list[str]:
        """Every raw value of ``name`` in order (one per header line)."""
        key = canonical_name(name).lower()
        return [v for n, v in self.items if n.lower() == key]

    def get(self, name: str) -> str | None:
        """The first value (for list headers: the first list element), or None."""
        found = self.get_all(name)
        return found[0] if found else None

    def get_all(self, name: str) -> list[str]:
        """Every value; list headers (Via, Contact, Route...) are split at top-level commas."""
        raw = self.values(name)
        if canonical_name(name).lower() in _LIST_HEADERS:
            return [part for value in raw for part in split_list(value)]
        return raw

    def with_added(self, name: str, value: str) -> Headers:
        return Headers((*self.items, (canonical_name(name), value)))

    def prepend(self, name: str, value: str) -> Headers:
        return Headers(((canonical_name(name), value), *self.items))

    def without(self, name: str) -> Headers:
        key = canonical_name(name).lower()
        return Headers(tuple((n, v) for n, v in self.items if n.lower() != key))

    def with_replaced(self, name: str, value: str) -> Headers:
        """``name`` set to one value, at the place of its first occurrence (else appended)."""
        key = canonical_name(name).lower()
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self.items:
            if n.lower() == key:
                if not placed:
                    out.append((canonical_name(name), value))
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.append((canonical_name(name), value))
        return Headers(tuple(out))


def header_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """``;a=b;c`` -> (("a", "b"), ("c", None)); names lower-cased, quotes removed."""
    params: list[tuple[str, str | None]] = []
    for part in _split_outside_quotes(text, ";"):
        part = part.strip()
        if not part:
            continue
        name, eq, value = part.partition("=")
        cleaned = value.strip()
        if len(cleaned) >= 2 and cleaned[0] == cleaned[-1] == '"':
            cleaned = cleaned[1:-1]
        params.append((name.strip().lower(), cleaned if eq else None))
    return tuple(params)


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _param(params: tuple[tuple[str, str | None], ...], name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...;rport``."""

    transport: str
    host: str
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()

    @property
    def branch(self) -> str | None:
        return _param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return _param(self.params, "received")

    @property
    def rport(self) -> int | None:
        value = _param(self.params, "rport")
        return int(value) if value and value.isdigit() else None

    def __str__(self) -> str:
        sent_by = self.host if self.port is None else f"{self.host}:{self.port}"
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params)
        return f"SIP/2.0/{self.transport.upper()} {sent_by}{params}"


def parse_via(value: str) -> Via:
    """Parse one Via value (already split from its list)."""
    match = _VIA.match(value.strip())
    if match is None:
        raise ParseError(
            f"Via: expected 'SIP/2.0/<transport> host[:port];params', got {value!r:.80}"
        )
    port = int(match.group(3)) if match.group(3) else None
    if port is not None and not 0 < port < 65536:
        raise ParseError(f"Via: port {port} outside 1..65535")
    rest = match.group(4).strip()
    if rest and not rest.startswith(";"):
        raise ParseError(f"Via: unexpected text after sent-by: {rest!r:.40}")
    return Via(match.group(1).upper(), match.group(2), port, header_params(rest))


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A From/To/Contact value: optional display name, URI, header parameters."""

    uri: str
    display: str = ""
    params: tuple[tuple[str, str | None], ...] = ()

    @property
    def tag(self) -> str | None:
        return _param(self.params, "tag")

    def with_tag(self, tag: str) -> NameAddr:
        kept = tuple((k, v) for k, v in self.params if k != "tag")
        return replace(self, params=(*kept, ("tag", tag)))

    def __str__(self) -> str:
        display = f'"{self.display}" ' if self.display else ""
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params)
        return f"{display}<{self.uri}>{params}"


def parse_name_addr(value: str) -> NameAddr:
    """Parse ``"Name" <uri>;tag=x`` or a bare ``uri;tag=x`` (then params belong to the header)."""
    text = value.strip()
    lt = text.find("<")
    if lt >= 0:
        gt = text.find(">", lt)
        if gt < 0:
            raise ParseError(f"name-addr: '<' without '>' in {value!r:.80}")
        display = text[:lt].strip().strip('"').strip()
        return NameAddr(text[lt + 1 : gt].strip(), display, header_params(text[gt + 1 :]))
    uri, _, params = text.partition(";")
    if not uri.strip():
        raise ParseError(f"name-addr: no URI in {value!r:.80}")
    return NameAddr(uri.strip(), "", header_params(params))


def parse_cseq(value: str) -> tuple[int, str]:
    """``"42 INVITE"`` -> (42, "INVITE")."""
    parts = value.split()
    if len(parts) != 2 or not parts[0].isdigit() or not parts[0].isascii():
        raise ParseError(f"CSeq: expected '<number> <METHOD>', got {value!r:.60}")
    number = int(parts[0])
    if number >= 2**31:
        raise ParseError(f"CSeq: number {number} not below 2**31")
    if not _TOKEN.match(parts[1]):
        raise ParseError(f"CSeq: method {parts[1]!r:.30} is not a token")
    return number, parts[1].upper()


MIN_SESSION_EXPIRES = 90
"""RFC 4028 §4: the smallest session interval a UA must accept (Min-SE default)."""


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """A ``Session-Expires`` value (RFC 4028 §4): the interval and who refreshes."""

    seconds: int
    refresher: str | None  # "uac", "uas" or None (not yet chosen)


def parse_session_expires(value: str) -> SessionExpires:
    """``1800;refresher=uac`` -> SessionExpires(1800, "uac"); ``ParseError`` otherwise."""
    head, _, rest = value.strip().partition(";")
    head = head.strip()
    if not head.isascii() or not head.isdigit() or len(head) > 10:
        raise ParseError(f"Session-Expires: expected delta-seconds, got {value[:80]!r}")
    refresher: str | None = None
    for name, param in header_params(rest):
        if name == "refresher":
            lowered = (param or "").lower()
            if lowered not in ("uac", "uas"):
                raise ParseError(f"Session-Expires: refresher must be uac or uas, got {param!r}")
            refresher = lowered
    return SessionExpires(int(head), refresher)
