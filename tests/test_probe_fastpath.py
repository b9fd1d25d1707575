"""The per-probe fast paths of issue 20 (pp24) against the code they replace.

- ``probes.rawconn.connect``: no wait when the handshake completed inside ``connect()``, and
  otherwise asyncio's wait; the same outcome and the same ``OSError`` (errno and text) as
  ``loop.sock_connect`` on either path.
- ``probes.rawconn.receive``: the same bytes as ``loop.sock_recv``, and no reader left
  registered after a timeout.
- ``ProbeScheduler._run``: the target's timeout as a plain loop timer, the probe and the sink
  in one coroutine; every result (outcome, reason, phases, details, and the duration of a
  timeout) equal to ``run_probe``'s, the reference, for any probe behaviour.
Loopback only.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from monitor.runtime.scheduler import ProbeScheduler, ScheduledTarget, run_probe
from probes import rawconn, tcp
from probes.registry import ProbeKind
from probes.result import Outcome, ProbeContext, ProbeResult
from tests.peers import missing_peer

pytestmark = pytest.mark.timeout(120)


def _closed_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _closed_port_ipv6() -> int:
    """An IPv6 loopback port nothing listens on. The host's stack, not a feature: without
    IPv6 loopback the test is skipped locally and fails in CI (tests/peers.py)."""
    if not socket.has_ipv6:
        missing_peer("no IPv6 in this Python build")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            return int(s.getsockname()[1])
    except OSError as exc:
        missing_peer(f"no IPv6 loopback on this host ({exc}): enable ::1 on lo")


def _plain(sock: socket.socket) -> socket.socket:
    sock.setblocking(False)
    return sock


def _never_ready(sock: socket.socket, target: tuple[object, ...]) -> bool:
    """Stands in for ``rawconn._connected``: the handshake is never seen as done at once, so
    ``connect`` takes its waiting path."""
    return False


@pytest.fixture(params=["at once", "waiting"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "waiting":
        monkeypatch.setattr(rawconn, "_connected", _never_ready)
    return str(request.param)


@pytest.fixture
async def listener() -> AsyncIterator[int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield int(server.sockets[0].getsockname()[1])


class TestConnect:
    """``rawconn.connect`` against ``loop.sock_connect``."""

    async def test_connects(self, path: str, listener: int) -> None:
        """A listening port: connected (the peer is the listener), on either path."""
        loop = asyncio.get_running_loop()
        with _plain(socket.socket()) as sock:
            await rawconn.connect(loop, sock, "127.0.0.1", listener)
            assert sock.getpeername() == ("127.0.0.1", listener)
            assert await rawconn.receive(loop, sock, 100) == b"hello"

    async def test_refused_same_error(self, path: str) -> None:
        """A closed port: the same errno and text as asyncio's, on either path."""
        loop = asyncio.get_running_loop()
        port = _closed_port()
        with (
            _plain(socket.socket()) as sock,
            pytest.raises(OSError, match="Connect call failed") as ours,
        ):
            await rawconn.connect(loop, sock, "127.0.0.1", port)
        with (
            _plain(socket.socket()) as sock,
            pytest.raises(OSError, match="Connect call failed") as theirs,
        ):
            await loop.sock_connect(sock, ("127.0.0.1", port))
        assert (ours.value.errno, str(ours.value)) == (theirs.value.errno, str(theirs.value))
        assert "Connect call failed ('127.0.0.1'" in str(ours.value)

    async def test_refused_same_error_ipv6(self, path: str) -> None:
        """IPv6 loopback: asyncio words the address as a 4-tuple, and so does ``connect``."""
        port = _closed_port_ipv6()
        loop = asyncio.get_running_loop()
        with (
            _plain(socket.socket(socket.AF_INET6)) as sock,
            pytest.raises(OSError, match="Connect call failed") as ours,
        ):
            await rawconn.connect(loop, sock, "::1", port)
        with (
            _plain(socket.socket(socket.AF_INET6)) as sock,
            pytest.raises(OSError, match="Connect call failed") as theirs,
        ):
            await loop.sock_connect(sock, ("::1", port))
        assert (ours.value.errno, str(ours.value)) == (theirs.value.errno, str(theirs.value))

    async def test_waiting_connect_cancelled_leaves_no_writer(
        self, listener: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A connect cancelled while waiting (a probe's timeout) unregisters its socket."""
        monkeypatch.setattr(rawconn, "_connected", _never_ready)
        loop = asyncio.get_running_loop()
        with _plain(socket.socket()) as sock:
            task = asyncio.create_task(rawconn.connect(loop, sock, "127.0.0.1", listener))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not loop.remove_writer(sock.fileno())  # nothing was left registered


class TestReceive:
    """``rawconn.receive`` against ``loop.sock_recv``."""

    async def test_same_bytes_then_end_of_file(self) -> None:
        """Data sent in two writes arrive as ``sock_recv`` gives them; then ``b""``."""
        loop = asyncio.get_running_loop()
        ours, peer = socket.socketpair()
        with _plain(ours), peer:

            async def later() -> None:
                await asyncio.sleep(0.01)
                peer.sendall(b"abc")
                await asyncio.sleep(0.01)
                peer.sendall(b"def")
                peer.shutdown(socket.SHUT_WR)

            sender = asyncio.create_task(later())
            got = [await rawconn.receive(loop, ours, 100) for _ in range(3)]
            await sender
            assert got == [b"abc", b"def", b""]

    async def test_timeout_leaves_no_reader(self) -> None:
        """A receive cancelled by a timeout unregisters its socket; the next one works."""
        loop = asyncio.get_running_loop()
        ours, peer = socket.socketpair()
        with _plain(ours), peer:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.02):
                    await rawconn.receive(loop, ours, 100)
            assert not loop.remove_reader(ours.fileno())
            peer.sendall(b"x")
            assert await rawconn.receive(loop, ours, 100) == b"x"


# -- run_guarded's deadline against asyncio.timeout_at (pp33) ---------------------------------


async def _guarded_body(kind: str, started: asyncio.Event) -> str:
    """A probe body: answers at once, outlives the deadline (swallowing its cancel or not),
    raises, or waits for an outside cancel."""
    started.set()
    if kind == "at once":
        return "answered"
    if kind == "raises":
        raise ValueError("bad")
    if kind == "swallows":
        try:
            await asyncio.sleep(1.0)
        except asyncio.CancelledError:
            return "swallowed"
    await asyncio.sleep(1.0)
    return "slept"


async def _ending(runner: Any, kind: str, after: float, cancel: bool) -> tuple[object, ...]:
    """How a task running ``runner`` over a body of ``kind`` with the deadline ``after``
    seconds away ends, and its cancel count then."""
    started = asyncio.Event()
    loop = asyncio.get_running_loop()
    seen: list[object] = []

    async def main() -> object:
        try:
            await runner(loop.time() + after, kind, started)
        except BaseException:
            seen.append(asyncio.current_task().cancelling())  # type: ignore[union-attr]
            raise
        seen.append(asyncio.current_task().cancelling())  # type: ignore[union-attr]
        return "returned"

    task = asyncio.create_task(main())
    await started.wait()
    if cancel:
        task.cancel()
    try:
        ended: object = await task
    except BaseException as exc:
        ended = type(exc).__name__
    return ended, tuple(seen)


async def _ours(when: float, kind: str, started: asyncio.Event) -> None:
    async def body(attempt: tcp.Attempt) -> None:
        await _guarded_body(kind, started)

    await tcp._within(when, tcp.Attempt(), body)


async def _asyncio_timeout(when: float, kind: str, started: asyncio.Event) -> None:
    async with asyncio.timeout_at(when):
        await _guarded_body(kind, started)


class TestWithinEqualsTimeoutAt:
    """``probes.tcp._within`` ends as ``asyncio.timeout_at`` does, whatever the body does."""

    @pytest.mark.parametrize("kind", ["at once", "raises", "swallows", "sleeps"])
    @pytest.mark.parametrize("after", [-1.0, 0.02])
    @pytest.mark.parametrize("cancel", [False, True])
    async def test_same_ending(self, kind: str, after: float, cancel: bool) -> None:
        ours = await _ending(_ours, kind, after, cancel)
        theirs = await _ending(_asyncio_timeout, kind, after, cancel)
        assert ours == theirs


# -- the scheduler's run against run_probe ---------------------------------------------------


class _Behaviour(BaseModel):
    """What a test probe does: wait ``delay`` seconds (checking the deadline or not), then
    answer, raise, or swallow one cancellation."""

    delay: float
    outcome: Outcome
    reason: str
    detail: int
    raises: str | None
    swallow_cancel: bool


_SLOW = _Behaviour(
    delay=1.0, outcome=Outcome.UP, reason="", detail=0, raises=None, swallow_cancel=False
)
"""A probe that would answer up after a second (past the tests' timeouts)."""

_ERRORS: dict[str, type[Exception]] = {"ValueError": ValueError, "OSError": OSError}


async def _behave(options: Any, ctx: ProbeContext) -> ProbeResult:
    behaviour: _Behaviour = options
    try:
        await asyncio.sleep(behaviour.delay)
    except asyncio.CancelledError:
        if not behaviour.swallow_cancel:
            raise
        # A badly written probe that eats the runner's cancellation and answers anyway.
        return ctx.result(Outcome.DOWN, "swallowed", details={"n": behaviour.detail})
    if behaviour.raises is not None:
        raise _ERRORS[behaviour.raises]("boom")
    return ctx.result(
        behaviour.outcome,
        behaviour.reason,
        phases={"connect": 0.001},
        details={"n": behaviour.detail},
    )


BEHAVE = ProbeKind("behave", _Behaviour, _behave, "does what its options say")
TIMEOUT = 0.05

LATE = 60.0
"""A probe still waiting at any timeout of these tests (the timeout cancels it first)."""

ANSWERS_WITHIN = 5.0
"""hd34: the timeout of a probe that answers after 0 or 5 ms. Which of the two comes first,
the answer or the timeout, is part of the behaviour, never left to how busy the machine is
(with 0.05 s, a loop late by 45 ms under load turned an answer into a timeout in one run)."""

behaviours = st.builds(
    _Behaviour,
    delay=st.sampled_from([0.0, 0.005, LATE]),
    outcome=st.sampled_from(list(Outcome)),
    reason=st.sampled_from(["", "status_code_503", "timeout_connect"]),
    detail=st.integers(min_value=0, max_value=9),
    raises=st.sampled_from([None, "ValueError", "OSError"]),
    swallow_cancel=st.booleans(),
)


def _comparable(result: ProbeResult) -> tuple[object, ...]:
    """Everything a result records except when it ran (a timeout's duration included)."""
    timed_out = result.outcome is Outcome.TIMEOUT and result.reason == "timeout"
    return (
        result.target,
        result.outcome,
        result.reason,
        dict(result.phases),
        dict(result.details),
        result.duration_seconds if timed_out else None,
    )


async def _through_scheduler(target: ScheduledTarget) -> list[ProbeResult]:
    recorded: list[ProbeResult] = []
    scheduler = ProbeScheduler(lambda t, r: recorded.append(r))
    task = asyncio.create_task(scheduler._run(target))
    scheduler._running[target.name] = task
    scheduler._tasks.add(task)
    await task
    assert not scheduler._running
    assert not scheduler._tasks
    assert not scheduler._expired  # a timeout's cancel taken back, its task forgotten
    return recorded


class TestRunEqualsRunProbe:
    """The scheduler's run records what ``run_probe`` returns, for any probe behaviour."""

    @settings(max_examples=40, deadline=None)
    @given(behaviour=behaviours)
    def test_same_result(self, behaviour: _Behaviour) -> None:
        """Answer, crash, time out, swallow the cancel: the same recorded result. A probe
        either answers long before its timeout or is still waiting at it (``LATE``)."""
        timeout = TIMEOUT if behaviour.delay >= LATE else ANSWERS_WITHIN
        target = ScheduledTarget("t", BEHAVE, behaviour, interval=1.0, timeout=timeout)

        async def both() -> tuple[ProbeResult, list[ProbeResult]]:
            return await run_probe(target), await _through_scheduler(target)

        reference, recorded = asyncio.run(both())
        assert len(recorded) == 1
        assert _comparable(recorded[0]) == _comparable(reference)

    async def test_timeout_recorded_as_timeout(self) -> None:
        """A probe still running at the timeout: ``timeout``, with the timeout as duration."""
        target = ScheduledTarget("t", BEHAVE, _SLOW, interval=1.0, timeout=TIMEOUT)
        (result,) = await _through_scheduler(target)
        assert (result.outcome, result.reason, result.duration_seconds) == (
            Outcome.TIMEOUT,
            "timeout",
            TIMEOUT,
        )

    async def test_cancelled_from_outside_is_not_a_timeout(self) -> None:
        """A cancel that is not the timeout's propagates and records nothing."""
        target = ScheduledTarget("t", BEHAVE, _SLOW, interval=1.0, timeout=0.5)
        recorded: list[ProbeResult] = []
        scheduler = ProbeScheduler(lambda t, r: recorded.append(r))
        task = asyncio.create_task(scheduler._run(target))
        scheduler._running[target.name] = task
        scheduler._tasks.add(task)
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert recorded == []
        assert not scheduler._running
        assert not scheduler._tasks
