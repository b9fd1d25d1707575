"""Shared pytest configuration, and the session-end check that no started process survives."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests import pg_cluster, procs

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "calendar: reads the wall clock's month (buckets, month figures); scripts/test-dates.sh "
        "runs it at fixed fake instants (docs/testing.md)",
    )
    # Inherited by every process the tests start, so the check below finds survivors even
    # after they left their group or were re-parented to PID 1.
    os.environ[procs.RUN_MARKER] = str(os.getpid())
    # SIGTERM (a CI job's timeout, `kill`) ends the run like Ctrl-C does: pytest then tears
    # every fixture down, so the peers are stopped instead of being orphaned.
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def _postgres_cluster() -> Iterator[None]:
    """Stops the throw-away PostgreSQL cluster (tests/pg_cluster.py) if a test started one."""
    yield
    pg_cluster.stop_cluster()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a process started by the tests (a peer, the daemon, a client) is still
    alive once every fixture has been torn down; kill it, so it does not outlive the run."""
    if os.environ.get(procs.RUN_MARKER) != str(os.getpid()):
        return  # not the process that configured the run (a pytester child, ...)
    left = procs.leftovers()
    if not left:
        return
    procs.kill_leftovers(left)
    lines = [f"  pid {p.pid} (group {p.pgid}): {p.command[:200]}" for p in left]
    message = "\n".join(
        [
            f"{len(left)} process(es) started by the tests were still running at the end "
            "(killed now); start peers with tests.procs.spawn_peer and end them with stop_group:",
            *lines,
        ]
    )
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("=", "processes left running", red=True)
        reporter.write_line(message)
    else:
        print(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
