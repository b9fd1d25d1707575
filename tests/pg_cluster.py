"""A real, throw-away PostgreSQL cluster for the tests (no containers).

``cluster()`` starts ONE cluster per test session on first use: ``initdb`` into a fresh
directory under /tmp, then the ``postgres`` server in the foreground through
``tests.procs.spawn_peer`` (its own process group, stopped by ``stop_cluster`` with
``stop_group``; tests/conftest.py calls it at session end, before the leak check). The server
listens on 127.0.0.1 at a free port and on a unix socket in its directory; the tests connect
through the socket. As root, initdb and the server run as the unprivileged ``postgres`` user
(Debian's package creates it; else ``nobody``) through ``runuser``, since PostgreSQL refuses
to run as root; the test process itself stays root.

Durability is switched off (``fsync=off``): the tests check semantics, not crash safety.
Each caller gets its own schema (``schema_dsn``), so a test starts from an empty database
without the cost of ``CREATE DATABASE``; a store's tables go in the first schema of its
``search_path``.

Debian installs the binaries in /usr/lib/postgresql/<version>/bin, not on PATH: they are
looked up there (newest version first), then on PATH. Missing binaries skip, or fail under
``SLAWATCH_REQUIRE_PEERS=1`` (tests/peers.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from monitor.store.base import Store
from tests import procs
from tests.peers import missing_peer

_DIR_PREFIX = "slawatch-pg-"


def pg_bindir() -> Path | None:
    """The directory holding initdb and postgres (Debian's versioned one, else PATH)."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bindir in versions:
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return bindir
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    return None


def require_pg_bindir() -> Path:
    bindir = pg_bindir()
    if bindir is not None:
        return bindir
    missing_peer("PostgreSQL server binaries not found: install the Debian package postgresql")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """One running server: ``dsn`` reaches its ``postgres`` database as superuser ``slawatch``."""

    directory: Path
    port: int
    proc: subprocess.Popen[bytes] | None
    bindir: Path
    run_as: str | None
    durable: bool = False

    @property
    def socket_dir(self) -> str:
        return str(self.directory)

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.directory} port={self.port} user=slawatch dbname={dbname}"

    def schema_dsn(self, name: str) -> str:
        """A DSN whose search_path is the schema ``name`` (created if absent)."""
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
        return f"{self.dsn()} options='-c search_path={name}'"

    def _as_user(self, args: list[str]) -> list[str]:
        return args if self.run_as is None else ["runuser", "-u", self.run_as, "--", *args]

    def start(self) -> None:
        """Start the server (again, after ``stop``) on the same directory and port."""
        if self.proc is not None and self.proc.poll() is None:
            return
        log = self.directory / "server.log"
        args = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.directory / "data"),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.directory}",
            "-c",
            "max_connections=200",
        ]
        if not self.durable:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            args += ["-c", "full_page_writes=off"]
        with log.open("ab") as out:
            self.proc = procs.spawn_peer(self._as_user(args), log=out)
        if self.run_as is not None:
            with contextlib.suppress(OSError):
                shutil.chown(log, user=self.run_as)
        self._wait_ready(log)

    def _wait_ready(self, log: Path, seconds: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + seconds
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (its whole process group); the data directory stays."""
        if self.proc is not None:
            procs.stop_group(self.proc)
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_cluster(*, durable: bool = False) -> Cluster:
    """initdb into a new directory under /tmp and start the server; the caller removes it.
    ``durable`` keeps PostgreSQL's default fsync/commit settings (the benchmark)."""
    bindir = require_pg_bindir()
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres"
        try:
            pwd.getpwnam(run_as)
        except KeyError:
            run_as = "nobody"
    # Under /tmp, not pytest's tmp_path: that is mode 700 for root, which the server's user
    # could not enter; and the socket path must stay short (108 bytes).
    directory = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX, dir="/tmp"))
    cluster = Cluster(directory, _free_port(), None, bindir, run_as, durable)
    try:
        if run_as is not None:
            shutil.chown(directory, user=run_as)
        init = cluster._as_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(directory / "data"),
                "-U",
                "slawatch",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )
        done = subprocess.run(init, capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.decode(errors='replace')[-2000:]}")
        cluster.start()
    except BaseException:
        cluster.remove()
        raise
    return cluster


_session: Cluster | None = None


def cluster() -> Cluster:
    """The session's cluster, started on first use."""
    global _session
    if _session is None:
        _session = start_cluster()
    elif _session.proc is None:
        _session.start()
    return _session


def stop_cluster() -> None:
    """End the session's cluster, if one was started (tests/conftest.py, at session end)."""
    global _session
    if _session is not None:
        _session.remove()
        _session = None


def schema_for(directory: Path) -> str:
    """A schema name per test directory: two stores built for one directory share it."""
    return "t_" + hashlib.sha1(str(directory).encode()).hexdigest()[:20]


def store_factory(directory: Path, vantage: str, location: str | None = None) -> Store:
    """``BACKENDS`` factory for tests/test_store_contract.py: a PostgresStore on the session
    cluster, in the schema belonging to ``directory`` (``location``: issue 14)."""
    from monitor.store.postgres import PostgresStore

    return PostgresStore(
        cluster().schema_dsn(schema_for(directory)),
        vantage,
        connect_timeout=5,
        location=location,
    )
