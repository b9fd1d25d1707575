"""Issue 17, problem 2: the daemon on a full disk, for real.

The store lives on a small tmpfs the test mounts (``mount -t tmpfs -o size=4m``, as root;
CI runs the suite as root, see scripts/test.sh) and fills with a file until ENOSPC. A
target on a closed loopback port fails every probe, so each probe is one evidence row and
one ``failed`` count in a tally: after filling, SIGTERM on the full disk, freeing the space
and restarting, the store must hold exactly as many evidence rows as failed counts (no
duplicate from a batch re-queued after its commit, nothing lost across the full disk or the
shutdown), and no evidence row twice.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import DaemonProcess, free_port, wait_until
from tests.peers import missing_peer, require_binary
from tests.test_daemon import http_target, sla, write_config

pytestmark = pytest.mark.timeout(180)

NAMES = [f"down-{n}" for n in range(30)]
"""Enough failing targets (one evidence row each a second) that the WAL outgrows its file
soon after the disk is full."""


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``where`` for the test, unmounted after."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"mounting a tmpfs failed ({mounted.stderr.strip()}): this test needs root "
            "(CI runs as root) to give the store a disk that fills"
        )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Write a file in ``directory`` until the filesystem is full; returns it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as handle:
        block = b"\xff" * 65536
        while True:
            try:
                handle.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        # Finer steps take the last partial block too.
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\xff" * 512)
    return filler


def counts(database: Path) -> tuple[int, int, int]:
    """(failed counts in tallies, evidence rows, evidence rows stored more than once)."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        failed = conn.execute("SELECT coalesce(sum(failed), 0) FROM tallies").fetchone()[0]
        evidence = conn.execute("SELECT count(*) FROM evidence").fetchone()[0]
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT ts, target FROM evidence GROUP BY ts, target "
            "HAVING count(*) > 1)"
        ).fetchone()[0]
    return int(failed), int(evidence), int(twice)


class TestDiskFull:
    def test_fill_sigterm_recover_no_duplicates_no_loss(self, tmp_path: Path) -> None:
        """Writes fail on the full disk: /readyz turns 503, pending rows show; SIGTERM exits 0
        with one line and spools the rows; the next start (space freed) replays them; the
        store then holds every failure once."""
        require_binary("mount", "mount")
        if os.geteuid() != 0:
            # Like a missing peer: CI (root, SLAWATCH_REQUIRE_PEERS=1) fails instead.
            missing_peer("mounting the small tmpfs needs root (scripts/test.sh runs as root in CI)")
        with small_tmpfs(tmp_path / "state") as state:
            port = free_port()
            closed = free_port()
            config = write_config(
                tmp_path,
                port,
                [http_target(name, f"http://127.0.0.1:{closed}/") for name in NAMES],
                [{"name": "web", "targets": NAMES, "down_when": "any"}],
                [sla("web-sla", "web")],
            )
            database = state / "slawatch.db"
            assert not database.exists()
            daemon = DaemonProcess(config, port, tmp_path / "daemon.log")
            try:
                daemon.wait_ready()
                wait_until(lambda: database.exists() and counts(database)[1] >= 2, 20, "rows")
                filler = fill(state)
                wait_until(lambda: daemon.get("/readyz")[0] == 503, 60, "/readyz 503")
                assert "store writes failing" in daemon.get("/readyz")[1]
                pending = wait_until(
                    lambda: daemon.metric("slawatch_store_pending_rows") or 0, 10, "pending"
                )
                assert pending >= 1
                wait_until(
                    lambda: (daemon.metric("slawatch_store_pending_rows") or 0) >= 40,
                    20,
                    "failures kept in memory while the disk is full",
                )
                # Space comes back while running: the kept rows are written, ready again.
                filler.unlink()
                wait_until(lambda: daemon.get("/readyz")[0] == 200, 30, "/readyz 200 again")
                # Full again, and SIGTERM while it is.
                filler = fill(state)
                wait_until(lambda: daemon.get("/readyz")[0] == 503, 60, "/readyz 503 again")
                status = daemon.stop(timeout=15)
            finally:
                daemon.stop()
            log = daemon.log()
            assert status == 0, log
            assert "Traceback" not in log
            spooled = [line for line in log.splitlines() if "store_rows_spooled" in line]
            assert len(spooled) == 1, log
            assert "rows spooled to" in spooled[0]
            filler.unlink()
            again = DaemonProcess(config, port, tmp_path / "daemon2.log")
            try:
                again.wait_ready()
                assert "store_spool_replayed" in again.log()
                assert again.get("/readyz")[0] == 200
                wait_until(lambda: counts(database)[1] >= 2, 10, "rows after restart")
                assert again.stop(timeout=15) == 0
            finally:
                again.stop()
            assert "Traceback" not in again.log()
            failed, evidence, twice = counts(database)
            assert twice == 0
            assert failed == evidence
            assert evidence >= 8
