"""Locating SIP servers (RFC 3263 §4): a domain URI -> NAPTR -> SRV -> A/AAAA.

A carrier's edge is named by a domain, not an address: ``sip:ivr@voice.example.com`` stands
for several servers listed in DNS, tried in the order the vendor published. A probe that
dials one hard-coded address tests one box; one that locates the servers as a phone does
tests the service, including the vendor's failover.

The steps, for a URI whose host is a domain:

* transport: the URI's ``;transport=`` (or the target's ``transport`` option); ``sips:``
  means TLS; an explicit port without a transport means UDP (TLS for ``sips:``); otherwise
  NAPTR records with flag ``s`` and a service we speak (``SIP+D2U``, ``SIP+D2T``,
  ``SIPS+D2T``; only ``SIPS+D2T`` for ``sips:``) in order/preference order decide it, and
  without usable NAPTR records the SRV names ``_sips._tcp``, ``_sip._tcp``, ``_sip._udp`` are
  tried in that order.
* servers: with an explicit port, the domain's A/AAAA records on that port; otherwise the SRV
  records of the chosen name, by priority, weighted random within a priority (RFC 2782), each
  target's A/AAAA records in turn; without SRV records, the domain's A/AAAA on 5060 (5061 TLS).

``order_srv`` and ``naptr_choices`` are pure (an ``rng`` is passed in); ``locate`` is the I/O
edge, always asking the nameservers it is given (the system resolver only when none are).

Public API:
  ServerAddress, Location, LocateError(reason)  reasons: resolve_failed, resolver_timeout
  naptr_choices(records, secure) -> list[(transport, srv name)]
  order_srv(records, rng) -> list[SRV]
  parse_nameserver(text) -> (address, port)
  async locate(uri, *, transport, nameservers, lifetime, rng) -> Location
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from probes.sip.transport import TransportName

MAX_SERVERS = 16
"""Candidates kept at most: each costs a share of the probe's timeout."""

_NAPTR_SERVICES: dict[str, TransportName] = {
    "SIP+D2U": "udp",
    "SIP+D2T": "tcp",
    "SIPS+D2T": "tls",
}
_SRV_PREFIX: dict[TransportName, str] = {
    "tls": "_sips._tcp",
    "tcp": "_sip._tcp",
    "udp": "_sip._udp",
}
_DEFAULT_PORT: dict[TransportName, int] = {"udp": 5060, "tcp": 5060, "tls": 5061}
_NAMESERVER = re.compile(r"^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)|([0-9A-Fa-f:]+))(?::(\d{1,5}))?$")


class LocateError(Exception):
    """Raised by ``locate``: ``resolve_failed`` (the vendor's DNS names no usable server) or
    ``resolver_timeout`` (our resolver did not answer: the monitor's problem, not evidence)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """One server to try: transport, IP address, port, and the DNS name it came from."""

    transport: TransportName
    address: str
    port: int
    name: str

    @property
    def label(self) -> str:
        """``udp:192.0.2.1:5060 (sip1.example.com)``: how the evidence names the server."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.transport}:{host}:{self.port} ({self.name})"


@dataclass(frozen=True, slots=True)
class Location:
    """The servers to try in order, and how DNS led to them (kept as evidence)."""

    servers: tuple[ServerAddress, ...]
    path: str


class NaptrLike(Protocol):
    """The NAPTR fields used (a dnspython ``NAPTR`` rdata satisfies it)."""

    order: int
    preference: int
    flags: bytes
    service: bytes
    replacement: object


class SrvLike(Protocol):
    """The SRV fields used (a dnspython ``SRV`` rdata satisfies it)."""

    priority: int
    weight: int
    port: int
    target: object


def naptr_choices(records: Iterable[NaptrLike], secure: bool) -> list[tuple[TransportName, str]]:
    """Usable NAPTR records as (transport, SRV name), best first (RFC 3263 §4.1).

    Only terminal ``s`` records for a service we speak count; for a ``sips:`` URI only TLS.
    """
    usable: list[tuple[int, int, TransportName, str]] = []
    for record in records:
        flags = bytes(record.flags).decode("ascii", "replace").lower()
        service = bytes(record.service).decode("ascii", "replace").upper()
        transport = _NAPTR_SERVICES.get(service)
        if flags != "s" or transport is None or (secure and transport != "tls"):
            continue
        name = _name_text(record.replacement)
        if not name:
            continue
        usable.append((record.order, record.preference, transport, name))
    usable.sort(key=lambda r: (r[0], r[1]))
    return [(transport, name) for _, _, transport, name in usable]


def order_srv(records: Iterable[SrvLike], rng: random.Random) -> list[SrvLike]:
    """SRV records in the order to try them (RFC 2782): lowest priority first; within a
    priority, a weighted random draw without replacement (weight 0 rarely first).

    A lone record with target ``.`` means "no such service here": the result is empty.
    """
    records = list(records)
    if len(records) == 1 and _name_text(records[0].target) == "":
        return []
    ordered: list[SrvLike] = []
    for priority in sorted({r.priority for r in records}):
        # Zero weights first, as RFC 2782 says, so they get a small chance to be picked.
        group = sorted((r for r in records if r.priority == priority), key=lambda r: r.weight != 0)
        while group:
            total = sum(max(0, r.weight) for r in group)
            pick = rng.randint(0, total)
            running = 0
            for index, record in enumerate(group):
                running += max(0, record.weight)
                if running >= pick:
                    ordered.append(group.pop(index))
                    break
    return [r for r in ordered if _name_text(r.target)]


def parse_nameserver(text: str) -> tuple[str, int]:
    """``192.0.2.53``, ``192.0.2.53:5353``, ``2001:db8::53`` or ``[2001:db8::53]:5353``."""
    match = _NAMESERVER.match(text.strip())
    if match is None:
        raise ValueError(f"expected a nameserver IP such as 192.0.2.53 or [::1]:5353, got {text!r}")
    v6_bracketed, v4, v6, port_text = match.groups()
    address = v6_bracketed or v4 or v6 or ""
    if v6 and port_text:  # "2001:db8::53:53" is ambiguous: the regex put the port in the address
        address, port_text = v6 + ":" + port_text, None
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"expected a nameserver IP such as 192.0.2.53, got {text!r}") from None
    port = int(port_text) if port_text else 53
    if not 0 < port < 65536:
        raise ValueError(f"expected a nameserver port in 1..65535, got {text!r}")
    return address, port


def _name_text(name: object) -> str:
    """A DNS name as text without the trailing dot; ``""`` for the root."""
    return str(name).rstrip(".")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _Dns:
    """One resolver with a shared lifetime for every query of one location."""

    def __init__(self, nameservers: Sequence[str], lifetime: float) -> None:
        if nameservers:
            self.resolver = dns.asyncresolver.Resolver(configure=False)
            servers: list[str | dns.nameserver.Nameserver] = []
            for text in nameservers:
                address, port = parse_nameserver(text)
                servers.append(dns.nameserver.Do53Nameserver(address, port))
            self.resolver.nameservers = servers
        else:
            self.resolver = dns.asyncresolver.Resolver()
        self.resolver.lifetime = max(0.001, lifetime)
        self.resolver.timeout = max(0.001, lifetime)
        self.steps: list[str] = []

    async def query(self, name: str, rdtype: str) -> list[object]:
        """The records, ``[]`` for NXDOMAIN/no data; ``LocateError`` when nobody answers."""
        try:
            answer = await self.resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            self.steps.append(f"{rdtype} {name}: none")
            return []
        except dns.exception.Timeout as exc:
            raise LocateError("resolver_timeout", f"{rdtype} {name}: no answer ({exc})") from exc
        except dns.resolver.NoNameservers as exc:
            # SERVFAIL/REFUSED from every nameserver: the domain cannot be resolved.
            raise LocateError("resolve_failed", f"{rdtype} {name}: {exc}") from exc
        except dns.exception.DNSException as exc:
            raise LocateError("resolve_failed", f"{rdtype} {name}: {exc}") from exc
        records = list(answer)
        self.steps.append(f"{rdtype} {name}: {len(records)}")
        return records

    async def addresses(self, name: str) -> list[str]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            found.extend(str(getattr(r, "address", "")) for r in await self.query(name, rdtype))
        return [a for a in found if _is_ip(a)]


async def locate(
    host: str,
    *,
    secure: bool,
    transport: TransportName | None,
    port: int | None,
    nameservers: Sequence[str] = (),
    lifetime: float = 5.0,
    rng: random.Random | None = None,
) -> Location:
    """The servers for a URI's ``host`` (a domain; an IP literal is returned as it is)."""
    rng = rng or random.Random()
    if _is_ip(host.strip("[]")):
        chosen: TransportName = transport or ("tls" if secure else "udp")
        literal = ServerAddress(chosen, host.strip("[]"), port or _DEFAULT_PORT[chosen], host)
        return Location((literal,), "IP literal")
    lookup = _Dns(nameservers, lifetime)
    domain = host.rstrip(".")
    servers: list[ServerAddress] = []
    if port is not None:
        chosen = transport or ("tls" if secure else "udp")
        for address in await lookup.addresses(domain):
            servers.append(ServerAddress(chosen, address, port or _DEFAULT_PORT[chosen], domain))
    else:
        srv_names: list[tuple[TransportName, str]]
        if transport is not None:
            srv_names = [(transport, f"{_SRV_PREFIX[transport]}.{domain}")]
        else:
            naptr = naptr_choices(await lookup.query(domain, "NAPTR"), secure)  # type: ignore[arg-type]
            wanted: tuple[TransportName, ...] = ("tls",) if secure else ("tls", "tcp", "udp")
            srv_names = naptr or [(t, f"{_SRV_PREFIX[t]}.{domain}") for t in wanted]
        found_srv = False
        for srv_transport, srv_name in srv_names:
            records = await lookup.query(srv_name, "SRV")
            if not records:
                continue
            found_srv = True
            for record in order_srv(records, rng):  # type: ignore[arg-type]
                target = _name_text(record.target)
                for address in await lookup.addresses(target):
                    servers.append(ServerAddress(srv_transport, address, record.port, target))
                if len(servers) >= MAX_SERVERS:
                    break
            # RFC 3263 §4.1: the first NAPTR/SRV name with records decides the transport.
            break
        if not found_srv:
            chosen = transport or ("tls" if secure else "udp")
            for address in await lookup.addresses(domain):
                servers.append(ServerAddress(chosen, address, _DEFAULT_PORT[chosen], domain))
    path = "; ".join(lookup.steps)
    if not servers:
        raise LocateError("resolve_failed", f"no SIP server found for {domain} ({path})")
    unique = list(dict.fromkeys(servers))[:MAX_SERVERS]
    return Location(tuple(unique), path)
