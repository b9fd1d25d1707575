"""The one registry of probe kinds: name -> options model and probe function.

Configuration validation reads this mapping's keys, so the kinds a config may name and the
kinds the daemon can run never drift apart. Adding a probe kind = one module in ``probes/``
plus one line here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import import_module
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


_KINDS: tuple[tuple[str, str, str, str, str], ...] = (
    # name, module, options model, probe function, summary
    ("http", "probes.http", "HttpOptions", "probe", "HTTP(S) request judged by status/body"),
    ("tcp", "probes.tcp", "TcpOptions", "probe", "TCP connect, optional TLS and send/expect"),
    ("dns", "probes.dns", "DnsOptions", "probe", "one DNS query to a named resolver"),
    ("sip_options", "probes.sip_options", "SipOptionsOptions", "probe", "SIP OPTIONS"),
    ("sip_register", "probes.sip_register", "SipRegisterOptions", "probe", "REGISTER"),
    ("sip_call", "probes.sip_call", "SipCallOptions", "probe", "SIP test call, media+DTMF"),
    # Read, not probed: the daemon leaves it out of the schedule (monitor.promsource.live).
    (
        "prometheus",
        "monitor.promsource.options",
        "PrometheusOptions",
        "not_a_probe",
        "0/1 series",
    ),
)


class _Kinds(Mapping[str, ProbeKind]):
    """The kinds by name; a kind's module is imported when its kind is first looked up.

    Issue 20 (start-up): importing every probe module cost about 0.15 s of the daemon's
    start (the SIP call's media stack and dnspython alone 0.13 s) for a configuration that
    names only ``http``. The names (what a configuration may say, and what an unknown kind's
    error lists) need no import; iterating the values imports every kind."""

    def __init__(self, table: tuple[tuple[str, str, str, str, str], ...]) -> None:
        self._table = {row[0]: row[1:] for row in table}
        self._loaded: dict[str, ProbeKind] = {}

    def __getitem__(self, name: str) -> ProbeKind:
        kind = self._loaded.get(name)
        if kind is None:
            module_name, options, run, summary = self._table[name]
            module = import_module(module_name)
            kind = ProbeKind(name, getattr(module, options), getattr(module, run), summary)
            # setdefault: two threads (a reload runs in a worker) keep one ProbeKind.
            kind = self._loaded.setdefault(name, kind)
        return kind

    def __contains__(self, name: object) -> bool:
        return name in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


PROBE_KINDS: Mapping[str, ProbeKind] = _Kinds(_KINDS)
