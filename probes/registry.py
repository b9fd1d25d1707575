"""The one registry of probe kinds: name -> options model and probe function.

Configuration validation reads this mapping's keys, so the kinds a config may name and the
kinds the daemon can run never drift apart. Adding a probe kind = one module in ``probes/``
plus one line here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from probes.result import ProbeContext, ProbeResult

ProbeFunction = Callable[[Any, ProbeContext], Awaitable[ProbeResult]]


@dataclass(frozen=True)
class ProbeKind:
    """A probe kind: its options model (validated from the target's config) and its function."""

    name: str
    options: type[BaseModel]
    run: ProbeFunction
    summary: str


def _kinds() -> Mapping[str, ProbeKind]:
    # Imported here so that importing the registry's types never drags every probe in.
    from monitor.promsource import options as prometheus
    from probes import dns, http, sip_call, sip_options, sip_register, tcp

    kinds: list[ProbeKind] = [
        ProbeKind("http", http.HttpOptions, http.probe, "HTTP(S) request judged by status/body"),
        ProbeKind("tcp", tcp.TcpOptions, tcp.probe, "TCP connect, optional TLS and send/expect"),
        ProbeKind("dns", dns.DnsOptions, dns.probe, "one DNS query to a named resolver"),
        ProbeKind("sip_options", sip_options.SipOptionsOptions, sip_options.probe, "SIP OPTIONS"),
        ProbeKind("sip_register", sip_register.SipRegisterOptions, sip_register.probe, "REGISTER"),
        ProbeKind("sip_call", sip_call.SipCallOptions, sip_call.probe, "SIP test call, media+DTMF"),
        # Read, not probed: the daemon leaves it out of the schedule (monitor.promsource.live).
        ProbeKind("prometheus", prometheus.PrometheusOptions, prometheus.not_a_probe, "0/1 series"),
    ]
    return {kind.name: kind for kind in kinds}


PROBE_KINDS: Mapping[str, ProbeKind] = _kinds()
