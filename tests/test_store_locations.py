"""Issue 14, the store part: the forward migrations that add ``location`` to every row
(SQLite schema 5, PostgreSQL schema 3) keep old rows as one location named like their vantage,
and ``monitor.location`` reaches the store. The behaviour of locations itself is in the
contract suite (tests/test_store_contract.py, ``TestLocations``), run on both backends."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from monitor.config import load_config
from monitor.sla.policy import Tally
from monitor.store import postgres_schema, schema
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SqliteStore
from tests import pg_cluster

pytestmark = pytest.mark.timeout(60)

TARGETS = "targets:\n  - {name: web, kind: http, http: {url: 'http://127.0.0.1:9/'}}\n"


class TestSqliteMigration:
    async def test_version_4_rows_get_their_vantage_as_location(self, tmp_path: Path) -> None:
        """A file at schema 4 holding tallies, evidence, gaps and a heartbeat of two vantage
        points migrates to 5; every old row's location is its vantage, and a location read of
        each equals its vantage read."""
        path = tmp_path / "slawatch.db"
        conn = sqlite3.connect(path, isolation_level=None)
        schema.migrate(conn, path, 0, target=4)
        conn.execute(
            "INSERT INTO tallies (vantage, target, bucket_start, bucket_seconds, ok, failed, "
            "reasons) VALUES ('v1', 'web', 600, 300, 7, 1, '{\"timeout\":1}'), "
            "('v2', 'web', 600, 300, 3, 0, '{}')"
        )
        conn.execute(
            "INSERT INTO evidence (vantage, ts, target, outcome, reason, duration) "
            "VALUES ('v1', 601.0, 'web', 'timeout', 'timeout', 10.0)"
        )
        conn.execute(
            "INSERT INTO gaps (vantage, start_ts, end_ts, reason) VALUES ('v2', 1, 2, 'x')"
        )
        conn.execute("INSERT INTO heartbeats (vantage, ts) VALUES ('v2', 5.0)")
        conn.close()
        store = SqliteStore(path, "v1")
        await store.open()
        try:
            assert store.schema_version_at_open == 4
            rows = await store.load_tally_rows(0, 3600)
            assert [(r.vantage, r.location) for r in rows] == [("v1", "v1"), ("v2", "v2")]
            assert await store.load_tallies(0, 3600, location="v1") == {
                "web": {600: Tally(ok=7, failed=1, reasons={"timeout": 1})}
            }
            assert [e.location for e in await store.load_evidence(0, 3600)] == ["v1"]
            assert [g.location for g in await store.load_gaps(0, 10, vantage="v2")] == ["v2"]
            assert await store.locations() == ["v1", "v2"]
        finally:
            await store.close()
        with sqlite3.connect(path) as check:
            assert check.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
            assert schema.SCHEMA_VERSION == 5


class TestPostgresMigration:
    async def test_version_2_rows_get_their_vantage_as_location(self, tmp_path: Path) -> None:
        """A schema at version 2 with rows of two vantage points migrates to 3 (NOT NULL
        location, old rows named like their vantage)."""
        dsn = pg_cluster.cluster().schema_dsn(pg_cluster.schema_for(tmp_path))
        with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction():
            conn.execute(postgres_schema.CREATE_VERSION_TABLE)
            for version in (1, 2):
                for statement in postgres_schema.MIGRATIONS[version - 1]:
                    conn.execute(statement.encode())
                conn.execute("INSERT INTO slawatch_schema (version) VALUES (%s)", (version,))
            conn.execute(
                "INSERT INTO tallies (vantage, target, bucket_start, bucket_seconds, ok, failed)"
                " VALUES ('v1', 'web', 600, 300, 7, 1), ('v2', 'web', 600, 300, 3, 0)"
            )
            conn.execute("INSERT INTO heartbeats (vantage, ts) VALUES ('v2', 5.0)")
        store = PostgresStore(dsn, "v1", connect_timeout=5)
        await store.open()
        try:
            assert store.schema_version_at_open == 2
            rows = await store.load_tally_rows(0, 3600)
            assert [(r.vantage, r.location) for r in rows] == [("v1", "v1"), ("v2", "v2")]
            assert await store.locations() == ["v1", "v2"]
            assert (await store.load_tallies(0, 3600, location="v2"))["web"][600].ok == 3
        finally:
            await store.close()
        assert postgres_schema.SCHEMA_VERSION >= 3  # 4: the shard leases (issue 14, s14)
        with psycopg.connect(dsn) as conn:
            nullable = conn.execute(
                "SELECT is_nullable FROM information_schema.columns WHERE table_schema = "
                "current_schema() AND table_name = 'tallies' AND column_name = 'location'"
            ).fetchone()
        assert nullable == ("NO",)


class TestConfig:
    def test_location_defaults_to_the_name_and_reaches_the_store(self, tmp_path: Path) -> None:
        """Without ``monitor.location`` a daemon is one location named like itself; with it,
        the store it builds writes that location."""
        plain = tmp_path / "plain.yaml"
        plain.write_text(f"monitor: {{name: d1, state_dir: {tmp_path}}}\n{TARGETS}")
        config = load_config(plain)
        assert config.monitor.location is None
        assert config.monitor.location_name == "d1"
        located = tmp_path / "located.yaml"
        located.write_text(
            f"monitor: {{name: d1, location: dublin, state_dir: {tmp_path}}}\n{TARGETS}"
        )
        monitor = load_config(located).monitor
        store = monitor.store.build(
            monitor.name, monitor.database_path, location=monitor.location_name
        )
        assert (store.vantage, store.location) == ("d1", "dublin")

    def test_bad_location_names_the_field(self, tmp_path: Path) -> None:
        """A location that is not a name is refused in one line naming monitor.location."""
        path = tmp_path / "bad.yaml"
        path.write_text(f"monitor: {{name: d1, location: 'Dub lin'}}\n{TARGETS}")
        with pytest.raises(Exception, match=r"monitor\.location") as caught:
            load_config(path)
        assert len(str(caught.value).strip().splitlines()) == 1
