"""The systemd notification protocol (sd_notify(3)), without libsystemd.

A ``Type=notify`` unit gets ``NOTIFY_SOCKET`` in its environment: an ``AF_UNIX`` datagram
socket, either a path or an abstract name written with a leading ``@``. Each notification is
one datagram of newline-separated ``KEY=VALUE`` assignments. Outside systemd (tests, a shell,
a container without it) there is no such variable and every call here is a silent no-op, so
the daemon can call these functions unconditionally.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

_log = structlog.get_logger(__name__)


def _address(raw: str) -> str | bytes | None:
    if raw.startswith("@"):
        # Abstract namespace: the kernel wants a leading NUL, which an env var cannot carry.
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    # systemd also accepts vsock: addresses (for VMs); a daemon on the host never sees them.
    return None


def notify(state: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to the service manager.

    Returns True when a datagram was sent, False when there is no manager to tell or it could
    not be reached. Failing to notify is logged, never raised: a lost ``WATCHDOG=1`` should
    cost one missed ping, not crash the monitor.
    """
    env = os.environ if environ is None else environ
    raw = env.get("NOTIFY_SOCKET", "")
    if not raw:
        return False
    address = _address(raw)
    if address is None:
        _log.warning("sd_notify_unsupported_socket", notify_socket=raw)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        _log.warning("sd_notify_failed", notify_socket=raw, state=state, error=str(exc))
        return False
    return True


def ready(status: str | None = None, *, environ: Mapping[str, str] | None = None) -> bool:
    """Tell systemd start-up is complete (``READY=1``), with an optional human-readable status."""
    message = "READY=1" if status is None else f"READY=1\nSTATUS={status}"
    return notify(message, environ=environ)


def reloading(*, environ: Mapping[str, str] | None = None) -> bool:
    """Tell systemd a configuration reload has begun; follow with ``ready()`` when it is done."""
    return notify("RELOADING=1", environ=environ)


def stopping(*, environ: Mapping[str, str] | None = None) -> bool:
    """Tell systemd the daemon is shutting down (``STOPPING=1``)."""
    return notify("STOPPING=1", environ=environ)


def status(text: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Set the one-line status ``systemctl status`` shows."""
    return notify(f"STATUS={text}", environ=environ)


def watchdog(*, environ: Mapping[str, str] | None = None) -> bool:
    """Ping the service manager's watchdog (``WATCHDOG=1``)."""
    return notify("WATCHDOG=1", environ=environ)


def watchdog_interval(*, environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds within which systemd expects a ``WATCHDOG=1``, or None if no watchdog applies.

    Mirrors sd_watchdog_enabled(3): ``WATCHDOG_USEC`` must be a positive integer, and when
    ``WATCHDOG_PID`` is set it must name this process (a child that inherited the environment
    must not ping on its parent's behalf). Callers should ping at about half this interval.
    """
    env = os.environ if environ is None else environ
    usec_raw = env.get("WATCHDOG_USEC")
    if not usec_raw:
        return None
    try:
        usec = int(usec_raw)
    except ValueError:
        _log.warning("sd_watchdog_bad_usec", watchdog_usec=usec_raw)
        return None
    if usec <= 0:
        return None
    pid_raw = env.get("WATCHDOG_PID")
    if pid_raw:
        try:
            pid = int(pid_raw)
        except ValueError:
            _log.warning("sd_watchdog_bad_pid", watchdog_pid=pid_raw)
            return None
        if pid != os.getpid():
            return None
    return usec / 1_000_000
