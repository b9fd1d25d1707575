"""Starting and stopping every program the tests run (Kamailio, baresip, SIPp, Prometheus,
Alertmanager, the slawatch daemon, and any peer added later): one place, so none outlives the run.

``spawn_peer`` starts a program in its own session (so its own process group): ``stop_group``
ends that whole group, workers and helpers included (Kamailio forks a dozen), with SIGTERM,
then SIGKILL after a short grace, and reaps it. Call it from a fixture finalizer or a
``finally``, so a failed or timed-out test stops its peers too.

``leftovers`` is the session-end check (tests/conftest.py): every process started while the
tests ran carries ``SLAWATCH_TEST_RUN=<pytest's pid>`` in its environment (set by conftest and
inherited), so a survivor is found even after it was re-parented to PID 1 or left its group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

RUN_MARKER = "SLAWATCH_TEST_RUN"
"""The environment variable naming the pytest process a program was started under."""

GRACE = 5.0
"""Seconds a group gets between SIGTERM and SIGKILL."""

_spawned: dict[int, str] = {}
"""Every group spawn_peer started and stop_group has not ended: pid (= pgid) -> command."""


def spawn_peer(
    args: Sequence[str | os.PathLike[str]],
    *,
    log: Path | IO[bytes] | None = None,
    stdout: Any = None,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """Start ``args`` in a new session (its own process group) with stdin closed.

    ``log`` (a path, appended to, or an open binary file) takes stdout and stderr; otherwise
    ``stdout`` and the other ``popen`` keywords go to ``subprocess.Popen`` unchanged.
    """
    if "start_new_session" in popen or "preexec_fn" in popen:
        raise ValueError("spawn_peer always starts a new session; do not pass start_new_session")
    popen.setdefault("stdin", subprocess.DEVNULL)
    if popen.get("env") is not None:
        popen["env"] = {**popen["env"], RUN_MARKER: os.environ.get(RUN_MARKER, str(os.getpid()))}
    if log is None:
        proc = subprocess.Popen(args, stdout=stdout, start_new_session=True, **popen)
    elif isinstance(log, Path):
        with log.open("ab") as out:
            proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen
            )
    else:
        proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )
    _spawned[proc.pid] = " ".join(str(a) for a in args)
    return proc


def stop_group(proc: subprocess.Popen[Any], grace: float = GRACE) -> int | None:
    """End ``proc``'s whole process group: SIGTERM, SIGKILL after ``grace`` seconds for
    whatever is left (the leader or any member), then reap the leader and wait until no member
    is alive. Returns the leader's exit status. Safe to call twice."""
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    end = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    while _members(pgid) and time.monotonic() < end:
        time.sleep(0.05)
    if proc.poll() is None or _members(pgid):
        _signal_group(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        end = time.monotonic() + 5
        while _members(pgid) and time.monotonic() < end:
            time.sleep(0.05)
    _spawned.pop(pgid, None)
    return proc.returncode


@contextmanager
def running_peer(
    args: Sequence[str | os.PathLike[str]], log: Path | IO[bytes] | None = None, **popen: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """``spawn_peer`` for a ``with`` block; the group is stopped on the way out, however."""
    proc = spawn_peer(args, log=log, **popen)
    try:
        yield proc
    finally:
        stop_group(proc)


async def run_client(
    *args: str | os.PathLike[str], seconds: float, **popen: Any
) -> tuple[int, bytes]:
    """Run a one-shot client (sipsak, curl) to completion in its own session; if it outlives
    ``seconds`` or the test is cancelled, its group is killed and reaped. Returns (exit status,
    stdout if ``stdout=PIPE`` was given, else b"")."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, start_new_session=True, **popen
    )
    _spawned[proc.pid] = " ".join(str(a) for a in args)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), seconds)
    finally:
        if proc.returncode is None:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
        _spawned.pop(proc.pid, None)
    # communicate() returned: the process was reaped, and wait() gives its status at once (an
    # int, where ``returncode`` is typed as possibly None).
    return await proc.wait(), out or b""


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass(frozen=True)
class Proc:
    """One live process read from /proc."""

    pid: int
    pgid: int
    command: str


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, pgid) of ``pid``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[2])


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip() or "?"


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _members(pgid: int) -> list[int]:
    """Live (not zombie) processes of group ``pgid``: a zombie is dead, whoever must reap it."""
    found = []
    for pid in _pids():
        stat = _stat(pid)
        if stat is not None and stat[1] == pgid and stat[0] not in ("Z", "X"):
            found.append(pid)
    return found


def leftovers(run: str | None = None) -> list[Proc]:
    """Live processes started under this test run (``SLAWATCH_TEST_RUN=run``, default: this
    process's pid) other than this process, plus live members of groups not yet stopped."""
    run = str(os.getpid()) if run is None else run
    marker = f"{RUN_MARKER}={run}".encode()
    me = os.getpid()
    found: dict[int, Proc] = {}
    for pid in _pids():
        if pid == me:
            continue
        stat = _stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in environ or stat[1] in _spawned:
            found[pid] = Proc(pid, stat[1], _command(pid))
    return sorted(found.values(), key=lambda p: p.pid)


def kill_leftovers(found: Sequence[Proc]) -> None:
    """SIGKILL every process in ``found`` (the check reports them; they must not linger)."""
    for proc in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(proc.pid, signal.SIGKILL)
