"""Options shared by the SIP probe kinds (``sip_options``, ``sip_register``).

A target names a SIP URI; where the probe connects and how is derived from it the way a UA
would (RFC 3263 without DNS: ``sips:`` or ``;transport=tls`` means TLS, ``;transport=tcp``
TCP, else UDP; port 5061 for TLS, else 5060), and every part can be overridden. The local
bind address defaults to 127.0.0.1 for a loopback target (so tests never listen on every
interface) and 0.0.0.0 otherwise.

Public API: SipUri / parse_sip_uri, CodeSet / parse_codes, SipAuth, SipBaseOptions
(.effective_transport(), .destination(), .bind_address(), .target(ssl_context),
.accepts(code), .credentials()).
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from probes.fields import Duration, SecretRef
from probes.sip.digest import Credentials
from probes.sip.locate import parse_nameserver
from probes.sip.transport import Target, TransportName
from probes.tls import TlsOptions

_URI = re.compile(
    r"^(sips?):(?:([^@;?]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?((?:;[^?]*)?)(\?.*)?$",
    re.IGNORECASE,
)
_CODE_CLASS = re.compile(r"^([2-6])xx$", re.IGNORECASE)

MAX_T1_SECONDS = 4.0
"""T1 may be raised for a slow path, but not past T2 (RFC 3261's 4 s, which ``SipEndpoint.open``
uses and refuses a larger T1 against): a larger bound here let check-config accept a target
whose every probe then failed."""


@dataclass(frozen=True)
class SipUri:
    """The parts of a ``sip:``/``sips:`` URI a probe needs."""

    scheme: str
    user: str | None
    host: str
    port: int | None
    params: tuple[tuple[str, str | None], ...]

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    @property
    def bare_host(self) -> str:
        return self.host[1:-1] if self.host.startswith("[") else self.host


def parse_sip_uri(value: str) -> SipUri:
    """Parse ``sip:user@host:port;params``; ValueError naming what was expected."""
    match = _URI.match(value.strip())
    if match is None:
        raise ValueError(f"expected a SIP URI such as sip:ping@192.0.2.10:5060, got {value!r}")
    port = int(match.group(4)) if match.group(4) else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"expected a port in 1..65535 in {value!r}, got {port}")
    params: list[tuple[str, str | None]] = []
    for part in match.group(5).split(";"):
        if part:
            name, eq, val = part.partition("=")
            params.append((name.lower(), val if eq else None))
    return SipUri(match.group(1).lower(), match.group(2), match.group(3), port, tuple(params))


@dataclass(frozen=True)
class CodeSet:
    """Accepted final status codes: single codes and whole classes (``2xx``)."""

    codes: frozenset[int]
    classes: frozenset[int]

    def __contains__(self, code: object) -> bool:
        return isinstance(code, int) and (code in self.codes or code // 100 in self.classes)


def parse_codes(values: tuple[int | str, ...]) -> CodeSet:
    """``(200, "404", "2xx")`` -> CodeSet; ValueError for anything not a final code or class."""
    if not values:
        raise ValueError("expected at least one final status code such as 200 or 2xx, got none")
    codes: set[int] = set()
    classes: set[int] = set()
    for value in values:
        text = str(value).strip()
        klass = _CODE_CLASS.match(text)
        if klass:
            classes.add(int(klass.group(1)))
        elif text.isdigit() and 200 <= int(text) <= 699:
            codes.add(int(text))
        else:
            raise ValueError(
                f"expected a final status code 200..699 or a class like 2xx, got {value!r}"
            )
    return CodeSet(frozenset(codes), frozenset(classes))


class SipAuth(BaseModel):
    """Digest credentials; the password is a secret reference (``{env: ...}``/``{file: ...}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(min_length=1)
    password: SecretRef
    realm: str | None = None


class SipBaseOptions(BaseModel):
    """The fields every SIP probe kind's options block has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str
    transport: Literal["udp", "tcp", "tls"] | None = None
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    bind: str | None = None
    bind_port: int = Field(default=0, ge=0, le=65535)
    from_uri: str | None = None
    to_uri: str | None = None
    contact_user: str = Field(default="slawatch", pattern=r"^[A-Za-z0-9._~!$&'()*+,;=%-]+$")
    auth: SipAuth | None = None
    expected_codes: tuple[int | str, ...] = (200,)
    t1: Duration = Field(default=0.5, gt=0, le=MAX_T1_SECONDS)
    tls: TlsOptions = Field(default_factory=TlsOptions)
    user_agent: str = Field(default="slawatch", max_length=200)

    # RFC 3263 server location (probes.sip.locate, probes.sip_servers): nameservers to ask
    # ("192.0.2.53", "[2001:db8::53]:5353"), empty = the system's; the time one server may
    # take before the next is tried (default: an equal share of what is left).
    resolver: tuple[str, ...] = ()
    server_timeout: Duration | None = Field(default=None, gt=0)

    @field_validator("resolver")
    @classmethod
    def _nameservers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            parse_nameserver(text)
        return value

    def declared_transport(self) -> TransportName | None:
        """The transport the target or URI names, None when DNS (NAPTR/SRV) may choose."""
        if self.transport is not None:
            return self.transport
        uri = self.parsed_uri()
        declared = (uri.param("transport") or "").lower()
        if declared in ("udp", "tcp", "tls"):
            return declared  # type: ignore[return-value]
        return "tls" if uri.scheme == "sips" else None

    def needs_location(self) -> bool:
        """True when the URI names a domain to locate servers for (RFC 3263) and no ``host``
        overrides it. Single-label names (``localhost``) stay with the system resolver."""
        if self.host is not None:
            return False
        host = self.parsed_uri().bare_host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return "." in host.strip(".")
        return False

    @field_validator("uri", "from_uri", "to_uri")
    @classmethod
    def _sip_uri(cls, value: str | None) -> str | None:
        if value is not None:
            parse_sip_uri(value)
        return value

    @field_validator("expected_codes")
    @classmethod
    def _codes(cls, value: tuple[int | str, ...]) -> tuple[int | str, ...]:
        parse_codes(value)
        return value

    @field_validator("bind")
    @classmethod
    def _ip_literal(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"expected an IP address such as 0.0.0.0, got {value!r}") from None
        return value

    @field_validator("user_agent")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n"):
            raise ValueError(f"expected a single-line user agent, got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SipBaseOptions:
        uri = parse_sip_uri(self.uri)
        if uri.scheme == "sips" and self.transport not in (None, "tls"):
            raise ValueError(f"a sips: URI needs transport tls, got transport {self.transport!r}")
        declared = uri.param("transport")
        if declared is not None and declared.lower() not in ("udp", "tcp", "tls"):
            raise ValueError(f"expected ;transport=udp|tcp|tls in uri, got {declared!r}")
        return self

    def parsed_uri(self) -> SipUri:
        return parse_sip_uri(self.uri)

    def effective_transport(self) -> TransportName:
        if self.transport is not None:
            return self.transport
        uri = self.parsed_uri()
        declared = (uri.param("transport") or "").lower()
        if uri.scheme == "sips" or declared == "tls":
            return "tls"
        return "tcp" if declared == "tcp" else "udp"

    def destination(self) -> tuple[str, int]:
        """Where requests go: ``host``/``port`` when set, else the URI's."""
        uri = self.parsed_uri()
        default_port = 5061 if self.effective_transport() == "tls" else 5060
        return self.host or uri.bare_host, self.port or uri.port or default_port

    def bind_address(self) -> tuple[str, int]:
        if self.bind is not None:
            return self.bind, self.bind_port
        host, _ = self.destination()
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if loopback:
            return ("::1" if ":" in host else "127.0.0.1"), self.bind_port
        return ("::" if ":" in host else "0.0.0.0"), self.bind_port

    def target(self, ssl_context: ssl.SSLContext | None, connect_timeout: float = 5.0) -> Target:
        host, port = self.destination()
        bind_host, bind_port = self.bind_address()
        transport = self.effective_transport()
        return Target(
            transport=transport,
            host=host,
            port=port,
            bind_host=bind_host,
            bind_port=bind_port,
            ssl_context=ssl_context if transport == "tls" else None,
            server_hostname=self.tls.server_name or self.parsed_uri().bare_host,
            connect_timeout=connect_timeout,
        )

    def accepts(self, code: int) -> bool:
        return code in parse_codes(self.expected_codes)

    def credentials(self) -> Credentials | None:
        """The digest credentials, reading the secret now (``SecretUnavailable`` if missing)."""
        if self.auth is None:
            return None
        return Credentials(self.auth.username, self.auth.password.read(), self.auth.realm)
