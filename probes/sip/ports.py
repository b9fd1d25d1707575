"""The process-wide RTP port allocator.

Calls running at the same time must never share a port (one call would count the other's
packets), and firewalls in front of vendors usually open a fixed range, so ports come from a
configured range. RTP takes an even port and leaves the odd one above it for RTCP
(RFC 3550 section 11). Ports are handed out round-robin so a just-released port is not
reused at once: late packets of the previous call would otherwise land in the next one.
A port another process holds is found when binding and skipped.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

DEFAULT_RANGE = (20000, 20999)


class PortsExhausted(RuntimeError):
    """Raised by ``PortAllocator.bind`` when every even port of the range is taken."""


@dataclass(frozen=True, slots=True)
class PortRange:
    """An inclusive port range with at least one even port whose odd neighbour is inside."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if not 1024 <= self.low <= self.high <= 65535:
            raise ValueError(
                f"RTP port range must satisfy 1024 <= low <= high <= 65535, "
                f"got {self.low}-{self.high}"
            )
        if not self.even_ports():
            raise ValueError(
                f"RTP port range {self.low}-{self.high} holds no even port with its RTCP "
                "port (the odd one above) inside the range"
            )

    def even_ports(self) -> range:
        first = self.low + (self.low % 2)
        return range(first, self.high, 2)


def candidates(port_range: PortRange, start_after: int | None, in_use: set[int]) -> list[int]:
    """Even ports of the range not in use, in round-robin order after ``start_after``."""
    ports = list(port_range.even_ports())
    if start_after is not None:
        split = next((i for i, p in enumerate(ports) if p > start_after), 0)
        ports = ports[split:] + ports[:split]
    return [p for p in ports if p not in in_use]


class PortAllocator:
    """Hands out RTP ports; one instance (``RTP_PORTS``) serves the whole process.

    A lock guards the state because the benchmark and tests may call from several threads;
    the probe itself runs on one event loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_use: set[int] = set()
        # Keyed by the socket object's id: the port must be freed even if the caller
        # closed the socket already (getsockname then fails).
        self._held: dict[int, int] = {}
        self._last: dict[PortRange, int] = {}

    def in_use(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._in_use)

    def bind(self, host: str, port_range: PortRange) -> socket.socket:
        """A non-blocking UDP socket bound to ``host`` on a free even port of the range.

        The caller owns the socket and must hand it back with ``release``.
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with self._lock:
            tried = candidates(port_range, self._last.get(port_range), self._in_use)
            for port in tried:
                sock = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    sock.bind((host, port))
                except OSError:
                    sock.close()
                    continue
                sock.setblocking(False)
                self._in_use.add(port)
                self._held[id(sock)] = port
                self._last[port_range] = port
                return sock
        raise PortsExhausted(
            f"no free RTP port in {port_range.low}-{port_range.high} on {host}: "
            f"{len(tried)} tried, {len(self._in_use)} held by this process"
        )

    def release(self, sock: socket.socket) -> None:
        """Close the socket and make its port available again."""
        sock.close()
        with self._lock:
            port = self._held.pop(id(sock), None)
            if port is not None:
                self._in_use.discard(port)


RTP_PORTS = PortAllocator()
"""The allocator every call in this process uses."""
