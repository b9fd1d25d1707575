"""monitor.host.sdnotify against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.host import sdnotify


class _Listener:
    """A bound datagram socket playing the service manager's side of NOTIFY_SOCKET."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env = {"NOTIFY_SOCKET": env_value}

    def receive(self) -> str:
        return self.sock.recv(4096).decode()

    def nothing_pending(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.recv(4096)
        except BlockingIOError:
            return True
        finally:
            self.sock.setblocking(True)
        return False


@pytest.fixture
def path_listener(tmp_path: Path) -> Iterator[_Listener]:
    """A listener bound to a filesystem path, as systemd uses (/run/systemd/notify)."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    sock.bind(str(path))
    try:
        yield _Listener(sock, str(path))
    finally:
        sock.close()


@pytest.fixture
def abstract_listener() -> Iterator[_Listener]:
    """A listener in the abstract namespace, which NOTIFY_SOCKET spells with a leading '@'."""
    name = f"slawatch-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(2.0)
    sock.bind(b"\0" + name.encode())
    try:
        yield _Listener(sock, "@" + name)
    finally:
        sock.close()


class TestNotify:
    def test_ready_reaches_a_path_socket(self, path_listener: _Listener) -> None:
        """READY=1 arrives as one datagram on a filesystem socket."""
        assert sdnotify.ready(environ=path_listener.env) is True
        assert path_listener.receive() == "READY=1"

    def test_ready_reaches_an_abstract_socket(self, abstract_listener: _Listener) -> None:
        """An '@name' NOTIFY_SOCKET is the abstract socket '\\0name'."""
        assert sdnotify.ready(environ=abstract_listener.env) is True
        assert abstract_listener.receive() == "READY=1"

    def test_ready_with_status_is_one_datagram(self, path_listener: _Listener) -> None:
        """READY and STATUS travel together, newline-separated, in a single datagram."""
        sdnotify.ready("probing 3 targets", environ=path_listener.env)
        assert path_listener.receive() == "READY=1\nSTATUS=probing 3 targets"
        assert path_listener.nothing_pending()

    def test_each_state_keyword(self, path_listener: _Listener) -> None:
        """stopping, watchdog, reloading and status send exactly their protocol keywords."""
        sdnotify.stopping(environ=path_listener.env)
        sdnotify.watchdog(environ=path_listener.env)
        sdnotify.reloading(environ=path_listener.env)
        sdnotify.status("reloaded", environ=path_listener.env)
        received = [path_listener.receive() for _ in range(4)]
        assert received == ["STOPPING=1", "WATCHDOG=1", "RELOADING=1", "STATUS=reloaded"]

    def test_utf8_status(self, abstract_listener: _Listener) -> None:
        """A non-ASCII status is sent as UTF-8."""
        sdnotify.status("vantage München", environ=abstract_listener.env)
        assert abstract_listener.receive() == "STATUS=vantage München"

    def test_reads_process_environment_by_default(
        self, path_listener: _Listener, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without an explicit mapping the real NOTIFY_SOCKET of the process is used."""
        monkeypatch.setenv("NOTIFY_SOCKET", path_listener.env["NOTIFY_SOCKET"])
        assert sdnotify.watchdog() is True
        assert path_listener.receive() == "WATCHDOG=1"

    def test_no_socket_is_a_silent_no_op(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Outside systemd nothing is sent and nothing is raised."""
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
        assert sdnotify.ready() is False
        assert sdnotify.notify("READY=1", environ={"NOTIFY_SOCKET": ""}) is False

    def test_unreachable_socket_is_reported_not_raised(self, tmp_path: Path) -> None:
        """A NOTIFY_SOCKET path nobody listens on yields False instead of an exception."""
        env = {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}
        assert sdnotify.stopping(environ=env) is False

    def test_unsupported_address_family(self) -> None:
        """A vsock: address (systemd inside a VM) is declined rather than misread as a path."""
        assert sdnotify.ready(environ={"NOTIFY_SOCKET": "vsock:2:1234"}) is False


class TestWatchdogInterval:
    def test_interval_in_seconds(self) -> None:
        """WATCHDOG_USEC is microseconds; the interval is returned in seconds."""
        assert sdnotify.watchdog_interval(environ={"WATCHDOG_USEC": "30000000"}) == 30.0

    def test_pid_of_this_process(self) -> None:
        """A WATCHDOG_PID naming this process enables the watchdog."""
        env = {"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}
        assert sdnotify.watchdog_interval(environ=env) == 0.5

    def test_pid_of_another_process(self) -> None:
        """A WATCHDOG_PID inherited from a parent disables it for this process."""
        env = {"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid() + 1)}
        assert sdnotify.watchdog_interval(environ=env) is None

    @pytest.mark.parametrize("usec", ["", "0", "-5", "abc"])
    def test_absent_or_invalid_usec(self, usec: str) -> None:
        """Missing, zero, negative or non-numeric WATCHDOG_USEC means no watchdog."""
        assert sdnotify.watchdog_interval(environ={"WATCHDOG_USEC": usec}) is None

    def test_invalid_pid(self) -> None:
        """A non-numeric WATCHDOG_PID means no watchdog rather than an exception."""
        env = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "self"}
        assert sdnotify.watchdog_interval(environ=env) is None

    def test_unset(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With nothing in the process environment there is no watchdog."""
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        assert sdnotify.watchdog_interval() is None
