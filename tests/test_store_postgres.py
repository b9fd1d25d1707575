"""What the PostgreSQL store adds beyond the shared contract (tests/test_store_contract.py):
versioned forward-only migrations, refusing a newer or foreign schema, the bulk write path,
an unreachable server, read-only use, and the ``monitor.store`` configuration. Also the
``schema_version()`` / ``migrate()`` pair on SQLite, which ``slawatch store`` calls.

Every PostgreSQL test runs against the real throw-away cluster of tests/pg_cluster.py, each in
a schema of its own.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from monitor.config import parse_config_text
from monitor.config.errors import ConfigError
from monitor.config.store import StoreSettings
from monitor.sla.policy import Tally
from monitor.store import postgres_schema, schema
from monitor.store.base import StoreError, StoreOpenError, TallyRow, WriteBatch
from monitor.store.postgres import COPY_THRESHOLD, PostgresStore, describe_dsn
from monitor.store.sqlite import SqliteStore
from monitor.store.versions import SchemaStatus, VersionedStore
from tests import pg_cluster

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def dsn(tmp_path: Path) -> str:
    """A DSN on the session cluster whose search_path is a fresh, empty schema."""
    return pg_cluster.cluster().schema_dsn(pg_cluster.schema_for(tmp_path))


def _sql(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


class TestMigrations:
    async def test_fresh_schema_migrates_to_the_latest(self, dsn: str) -> None:
        """An empty schema reads version 0; migrate() brings it to this build's version and
        is idempotent; open() on it finds the version and changes nothing."""
        store = PostgresStore(dsn, "v1")
        assert isinstance(store, VersionedStore)
        before = await store.schema_version()
        assert (before.version, before.known, before.pending) == (
            0,
            postgres_schema.SCHEMA_VERSION,
            postgres_schema.SCHEMA_VERSION,
        )
        after = await store.migrate()
        assert after.version == postgres_schema.SCHEMA_VERSION
        assert after.pending == 0
        assert (await store.migrate()).version == postgres_schema.SCHEMA_VERSION
        await store.open()
        try:
            assert store.schema_version_at_open == postgres_schema.SCHEMA_VERSION
        finally:
            await store.close()
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT version FROM slawatch_schema ORDER BY version").fetchall()
        assert [r[0] for r in rows] == list(range(1, postgres_schema.SCHEMA_VERSION + 1))
        assert "up to date" in after.line()

    async def test_daemons_starting_together_migrate_once(self, dsn: str) -> None:
        """Three stores opening a fresh schema at once: the advisory lock serialises them, one
        migrates, all open, and every version row exists exactly once."""
        stores = [PostgresStore(dsn, f"v{i}") for i in range(3)]
        await asyncio.gather(*(s.open() for s in stores))
        try:
            found = sorted(s.schema_version_at_open or 0 for s in stores)
            assert found[-1] <= postgres_schema.SCHEMA_VERSION
        finally:
            await asyncio.gather(*(s.close() for s in stores))
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*), max(version) FROM slawatch_schema").fetchone()
        assert row == (postgres_schema.SCHEMA_VERSION, postgres_schema.SCHEMA_VERSION)

    async def test_newer_schema_is_refused_in_one_line(self, dsn: str) -> None:
        """A schema written by a newer slawatch: open() and migrate() refuse with one line
        naming the server and both versions; schema_version() reports it as newer."""
        await PostgresStore(dsn, "v1").migrate()
        newer = postgres_schema.SCHEMA_VERSION + 1
        _sql(dsn, f"INSERT INTO slawatch_schema (version) VALUES ({newer})")
        store = PostgresStore(dsn, "v1")
        with pytest.raises(StoreOpenError) as caught:
            await store.open()
        message = str(caught.value)
        assert "\n" not in message
        assert f"schema version {newer} was written by a newer slawatch" in message
        assert f"knows versions up to {postgres_schema.SCHEMA_VERSION}" in message
        assert message.startswith("postgresql://")
        with pytest.raises(StoreOpenError, match="newer slawatch"):
            await store.migrate()
        with pytest.raises(StoreOpenError, match="newer slawatch"):
            await store.schema_version()

    async def test_foreign_tables_are_not_migrated(self, dsn: str) -> None:
        """A schema holding a table named like ours but no version table is another
        program's: refused, and left untouched."""
        _sql(dsn, "CREATE TABLE tallies (x integer)")
        with pytest.raises(StoreOpenError, match=r"not a slawatch schema .*tallies"):
            await PostgresStore(dsn, "v1").open()
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT to_regclass('slawatch_schema')").fetchone()
        assert row == (None,)

    async def test_read_only_needs_a_current_schema_and_refuses_writes(self, dsn: str) -> None:
        """A read-only store (reports) does not migrate: an unmigrated schema is refused;
        on a current one, reads work and writes raise StoreError."""
        with pytest.raises(StoreOpenError, match="slawatch store migrate"):
            await PostgresStore(dsn, "v1", read_only=True).open()
        await PostgresStore(dsn, "v1").migrate()
        reader = PostgresStore(dsn, "v1", read_only=True)
        await reader.open()
        try:
            assert await reader.load_tallies(0, 300) == {}
            with pytest.raises(StoreError, match="read-only"):
                await reader.write_batch(WriteBatch(heartbeat=1.0))
            with pytest.raises(StoreError, match="read-only"):
                await reader.kv_set("k", 1)
        finally:
            await reader.close()


class TestWrites:
    async def test_bulk_batch_goes_through_copy_and_last_write_wins(self, dsn: str) -> None:
        """A batch above the COPY threshold, repeating keys, stores the last row per key; a
        second bulk batch replaces the counts (absolute upsert) instead of adding to them."""
        store = PostgresStore(dsn, "v1")
        await store.open()
        try:
            count = COPY_THRESHOLD * 2
            first = [TallyRow("v1", f"t{i:05d}", 300, 300, 1, 0) for i in range(count)]
            repeat = [TallyRow("v1", f"t{i:05d}", 300, 300, 7, 1, {"timeout": 1}) for i in range(5)]
            await store.write_batch(WriteBatch(tallies=first + repeat))
            loaded = await store.load_tallies(0, 600)
            assert len(loaded) == count
            assert loaded["t00000"][300] == Tally(ok=7, failed=1, reasons={"timeout": 1})
            assert loaded["t00999"][300] == Tally(ok=1, failed=0)
            second = [TallyRow("v1", f"t{i:05d}", 300, 300, 2, 0) for i in range(count)]
            await store.write_batch(WriteBatch(tallies=second))
            again = await store.load_tallies(0, 600)
            assert {t[300].ok for t in again.values()} == {2}
        finally:
            await store.close()

    async def test_bulk_batch_is_all_or_nothing(self, dsn: str) -> None:
        """A bulk batch whose evidence the database refuses leaves no tally behind."""
        store = PostgresStore(dsn, "v1")
        await store.open()
        try:
            rows = [TallyRow("v1", f"t{i}", 0, 300, 1, 0) for i in range(COPY_THRESHOLD)]
            _sql(dsn, "ALTER TABLE heartbeats ADD CONSTRAINT no_late CHECK (ts < 10)")
            with pytest.raises(StoreError, match="nothing written"):
                await store.write_batch(WriteBatch(tallies=rows, heartbeat=99.0))
            assert await store.load_tallies(0, 300) == {}
        finally:
            await store.close()


class TestUnreachable:
    async def test_no_server_fails_open_quickly_without_the_password(self) -> None:
        """Nothing listening: open() raises StoreOpenError within the connect timeout, with
        one line naming host, port and database and never the password."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        dsn = f"postgresql://slawatch:hunter2@127.0.0.1:{port}/slawatch"
        store = PostgresStore(dsn, "v1", connect_timeout=2)
        started = time.monotonic()
        with pytest.raises(StoreOpenError) as caught:
            await store.open()
        assert time.monotonic() - started < 10
        message = str(caught.value)
        assert message.startswith(f"postgresql://127.0.0.1:{port}/slawatch: cannot connect")
        assert "hunter2" not in message
        assert "\n" not in message

    def test_describe_dsn_drops_credentials(self) -> None:
        """Messages name the server from either DSN form, never a password."""
        assert describe_dsn("host=db port=6543 dbname=sla password=x user=u") == (
            "postgresql://db:6543/sla"
        )
        assert describe_dsn("postgresql://u:pw@db/sla") == "postgresql://db:5432/sla"


class TestSqliteVersions:
    async def test_status_and_migrate_of_a_file(self, tmp_path: Path) -> None:
        """SQLite: a missing file reads 0 and is not created by status; migrate creates it at
        this build's version; a newer file is reported by status and refused by migrate."""
        path = tmp_path / "state" / "slawatch.db"
        store = SqliteStore(path, "v1")
        assert isinstance(store, VersionedStore)
        assert (await store.schema_version()).version == 0
        assert not path.exists()
        migrated = await store.migrate()
        assert migrated == SchemaStatus(
            "sqlite", str(path), schema.SCHEMA_VERSION, schema.SCHEMA_VERSION
        )
        with sqlite3.connect(path) as conn:
            conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
        status = await store.schema_version()
        assert status.newer
        assert "NEWER than this build" in status.line()
        with pytest.raises(StoreOpenError, match="newer slawatch"):
            await store.migrate()


BASE_CONFIG = """
monitor:
  name: dublin
  state_dir: {state}
{store}
targets:
  - name: web
    kind: tcp
    tcp: {{host: 127.0.0.1, port: 9}}
services:
  - name: web
    targets: [web]
slas:
  - name: web-sla
    service: web
    objective: 99.9
    monthly_fee: 100
    currency: EUR
"""


class TestConfig:
    def test_sqlite_is_the_default(self, tmp_path: Path) -> None:
        """Without monitor.store the daemon's store is the SQLite file, as before."""
        config = parse_config_text(BASE_CONFIG.format(state=tmp_path, store=""), "c.yaml")
        assert config.monitor.store == StoreSettings()
        store = config.monitor.store.build("dublin", config.monitor.database_path)
        assert isinstance(store, SqliteStore)
        assert store.path == tmp_path / "slawatch.db"

    def test_postgresql_needs_a_dsn_secret(self, tmp_path: Path) -> None:
        """backend postgresql without dsn is refused at its line, saying what to write; an
        inline dsn string is refused (it carries a password)."""
        text = BASE_CONFIG.format(state=tmp_path, store="  store: {backend: postgresql}")
        with pytest.raises(ConfigError, match="needs dsn"):
            parse_config_text(text, "c.yaml")
        inline = "  store: {backend: postgresql, dsn: 'postgresql://u:p@db/x'}"
        with pytest.raises(ConfigError, match="dsn"):
            parse_config_text(BASE_CONFIG.format(state=tmp_path, store=inline), "c.yaml")

    async def test_postgresql_store_from_config(
        self, tmp_path: Path, dsn: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A configuration naming the dsn through an environment variable builds a
        PostgresStore with its pool settings, which opens against the real server."""
        store_text = (
            "  store: {backend: postgresql, dsn: {env: SLAWATCH_TEST_DSN}, pool_size: 2, "
            "connect_timeout: 5s, statement_timeout: 10s}"
        )
        config = parse_config_text(BASE_CONFIG.format(state=tmp_path, store=store_text), "c.yaml")
        monkeypatch.delenv("SLAWATCH_TEST_DSN", raising=False)
        with pytest.raises(StoreOpenError, match="SLAWATCH_TEST_DSN is not set"):
            config.monitor.store.build("dublin", config.monitor.database_path)
        monkeypatch.setenv("SLAWATCH_TEST_DSN", dsn)
        store = config.monitor.store.build("dublin", config.monitor.database_path)
        assert isinstance(store, PostgresStore)
        await store.open()
        try:
            await store.kv_set("k", [1, "x"])
            assert await store.kv_get("k") == [1, "x"]
        finally:
            await store.close()

    def test_sqlite_install_never_imports_psycopg(self) -> None:
        """The daemon, the CLI and a SQLite store load without importing psycopg."""
        code = (
            "import sys; import monitor.cli.main, monitor.runtime.daemon, monitor.store.sqlite; "
            "assert not [m for m in sys.modules if m.startswith('psycopg')], 'psycopg imported'"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert done.returncode == 0, done.stderr.decode()


class TestReload:
    def test_reload_refuses_another_store(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """SIGHUP with monitor.store switched to postgresql is rejected (the store is built
        once at start); the running configuration stays."""
        from monitor.config import load_config
        from monitor.runtime.daemon import Daemon

        path = tmp_path / "slawatch.yaml"
        path.write_text(BASE_CONFIG.format(state=tmp_path, store=""), encoding="utf-8")
        daemon = Daemon(load_config(path), path)
        assert isinstance(daemon.store, SqliteStore)
        monkeypatch.setenv("SLAWATCH_TEST_DSN", "postgresql://u@127.0.0.1/x")
        store_text = "  store: {backend: postgresql, dsn: {env: SLAWATCH_TEST_DSN}}"
        path.write_text(BASE_CONFIG.format(state=tmp_path, store=store_text), encoding="utf-8")
        assert daemon.reload() is False
        assert daemon.config.monitor.store.backend == "sqlite"
        assert daemon.health.reload_successful is False
