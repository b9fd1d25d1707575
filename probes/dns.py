"""The ``dns`` probe: one query to one named resolver, judged like blackbox's ``dns`` prober.

The resolver is always explicit (never the host's ``/etc/resolv.conf``): the vendor's DNS
service is what is measured, not whatever the monitor host happens to use.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from probes.fields import checked_regex
from probes.result import ProbeContext, ProbeResult
from probes.tcp import Attempt, ProbeDown, run_guarded

QueryType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "PTR", "CAA"]

_MAX_ANSWER_DETAIL = 200


def _regexps(value: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in value:
        checked_regex(pattern, over_bytes=False)
    return value


class RRValidation(BaseModel):
    """Regexps over the answer records, each rendered as
    ``name<TAB>ttl<TAB>class<TAB>type<TAB>rdata`` (the text blackbox matches against)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fail_if_matches_regexp: tuple[str, ...] = ()
    """Down if any record matches one of these."""
    fail_if_all_match_regexp: tuple[str, ...] = ()
    """Down if every record matches one of these (any single one of them)."""
    fail_if_not_matches_regexp: tuple[str, ...] = ()
    """Down if any record fails to match one of these."""
    fail_if_none_matches_regexp: tuple[str, ...] = ()
    """Down if one of these matches no record."""

    _check = field_validator(
        "fail_if_matches_regexp",
        "fail_if_all_match_regexp",
        "fail_if_not_matches_regexp",
        "fail_if_none_matches_regexp",
    )(_regexps)


class DnsOptions(BaseModel):
    """Options of a ``dns`` target (the ``dns:`` block)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query_name: str = Field(min_length=1)
    query_type: QueryType = "A"
    resolver: str
    transport: Literal["udp", "tcp"] = "udp"
    recursion_desired: bool = True
    valid_rcodes: tuple[str, ...] = ("NOERROR",)
    fail_if_no_answer: bool = True
    validate_answer_rrs: RRValidation = Field(default_factory=RRValidation)

    _plan: _DnsPlan | None = PrivateAttr(default=None)

    @field_validator("query_name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        try:
            dns.name.from_text(value)
        except dns.exception.DNSException as exc:
            raise ValueError(f"expected a domain name such as example.com, got {value!r}") from exc
        return value

    @field_validator("query_type", mode="before")
    @classmethod
    def _upper_type(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("resolver")
    @classmethod
    def _resolver_address(cls, value: str) -> str:
        parse_resolver(value)
        return value

    @field_validator("valid_rcodes")
    @classmethod
    def _rcodes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("expected at least one rcode such as NOERROR")
        for name in value:
            try:
                dns.rcode.from_text(name)
            except dns.rcode.UnknownRcode as exc:
                raise ValueError(
                    f"expected an rcode name such as NOERROR, NXDOMAIN or SERVFAIL, got {name!r}"
                ) from exc
        return tuple(name.upper() for name in value)

    def plan(self) -> _DnsPlan:
        """Parsed resolver, query parameters and compiled regexps, built once."""
        # Through the private-attribute dict: pydantic's ``__getattr__`` costs ~12 us a call.
        private = self.__pydantic_private__
        plan = private.get("_plan") if private is not None else None
        if plan is None:
            plan = self._plan = _DnsPlan(self)
        return plan


class _DnsPlan:
    __slots__ = ("address", "all", "any", "name", "none", "not_", "port", "rcodes", "rdtype")

    def __init__(self, options: DnsOptions) -> None:
        self.address, self.port = parse_resolver(options.resolver)
        self.name = dns.name.from_text(options.query_name)
        self.rdtype = dns.rdatatype.from_text(options.query_type)
        self.rcodes = frozenset(dns.rcode.from_text(name) for name in options.valid_rcodes)
        rules = options.validate_answer_rrs
        self.any = tuple(re.compile(p) for p in rules.fail_if_matches_regexp)
        self.all = tuple(re.compile(p) for p in rules.fail_if_all_match_regexp)
        self.not_ = tuple(re.compile(p) for p in rules.fail_if_not_matches_regexp)
        self.none = tuple(re.compile(p) for p in rules.fail_if_none_matches_regexp)


def parse_resolver(text: str) -> tuple[str, int]:
    """``(ip, port)`` from ``1.2.3.4``, ``1.2.3.4:5353``, ``::1`` or ``[::1]:5353``."""
    expected = (
        "expected a resolver IP address with an optional port"
        f" (such as 192.0.2.53:53 or [2001:db8::53]:53), got {text!r}"
    )
    host, port_text = text, ""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(expected)
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(expected) from exc
    if text.startswith("[") and address.version != 6:
        raise ValueError(expected)
    if port_text == "" and not text.endswith(":"):
        return str(address), 53
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(expected)
    return str(address), int(port_text)


def record_lines(response: dns.message.Message) -> list[str]:
    """Answer records as ``name<TAB>ttl<TAB>class<TAB>type<TAB>rdata`` lines."""
    lines: list[str] = []
    for rrset in response.answer:
        prefix = (
            f"{rrset.name}\t{rrset.ttl}\t{dns.rdataclass.to_text(rrset.rdclass)}"
            f"\t{dns.rdatatype.to_text(rrset.rdtype)}\t"
        )
        lines.extend(prefix + rdata.to_text() for rdata in rrset)
    return lines


async def probe(options: DnsOptions, ctx: ProbeContext) -> ProbeResult:
    """Ask the resolver once and judge the rcode and the answer records."""
    plan = options.plan()

    async def body(attempt: Attempt) -> None:
        query = dns.message.make_query(plan.name, plan.rdtype)
        if not options.recursion_desired:
            query.flags &= ~dns.flags.RD
        attempt.enter("resolve")
        response = await _ask(query, plan, options.transport, ctx, attempt)
        attempt.stop()
        _judge(response, plan, options, attempt)

    return await run_guarded(ctx, body)


async def _ask(
    query: dns.message.Message,
    plan: _DnsPlan,
    transport: str,
    ctx: ProbeContext,
    attempt: Attempt,
) -> dns.message.Message:
    # dnspython's own timeout is a backstop; the probe's deadline normally fires first.
    timeout = ctx.remaining()
    try:
        if transport == "tcp":
            response = await dns.asyncquery.tcp(query, plan.address, timeout, plan.port)
            attempt.details["transport"] = "tcp"
        else:
            response, used_tcp = await dns.asyncquery.udp_with_fallback(
                query, plan.address, timeout, plan.port
            )
            # A truncated UDP answer is retried over TCP, as any resolver would.
            attempt.details["transport"] = "tcp" if used_tcp else "udp"
    except dns.exception.Timeout as exc:
        raise TimeoutError(str(exc)) from exc
    except dns.query.UnexpectedSource as exc:
        raise ProbeDown("dns_unexpected_source") from exc
    except dns.query.BadResponse as exc:
        raise ProbeDown("dns_bad_response") from exc
    except EOFError as exc:
        raise ProbeDown("dns_connection_closed") from exc
    except dns.exception.DNSException as exc:
        raise ProbeDown("dns_malformed_response") from exc
    return response


def _judge(
    response: dns.message.Message, plan: _DnsPlan, options: DnsOptions, attempt: Attempt
) -> None:
    rcode = response.rcode()
    rcode_name = dns.rcode.to_text(rcode)
    lines = record_lines(response)
    attempt.details["rcode"] = rcode_name
    attempt.details["answer_count"] = len(lines)
    if lines:
        shown = "; ".join(line.replace("\t", " ") for line in lines)
        if len(shown) > _MAX_ANSWER_DETAIL:
            shown = shown[:_MAX_ANSWER_DETAIL] + "..."
        attempt.details["answer"] = shown
    if rcode not in plan.rcodes:
        raise ProbeDown(f"dns_{rcode_name.lower()}")
    if not lines:
        if options.fail_if_no_answer:
            raise ProbeDown("dns_no_answer")
        return
    if any(p.search(line) for p in plan.any for line in lines):
        raise ProbeDown("dns_answer_forbidden")
    if any(all(p.search(line) for line in lines) for p in plan.all):
        raise ProbeDown("dns_answer_all_forbidden")
    if any(not p.search(line) for p in plan.not_ for line in lines):
        raise ProbeDown("dns_answer_unexpected")
    if any(not any(p.search(line) for line in lines) for p in plan.none):
        raise ProbeDown("dns_answer_missing")
