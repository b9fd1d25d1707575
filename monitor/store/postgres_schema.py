"""PostgreSQL schema and its versioned, forward-only migrations.

The version lives in the table ``slawatch_schema`` (one row per applied migration, with the
time it was applied), not in a catalogue setting, so ``slawatch store status`` can show the
history and a database holding tables of another program is recognised: a schema with
``tallies`` but no ``slawatch_schema`` is refused instead of being "migrated" into something
else. Every migration runs in ONE transaction with its version row, under a transaction-level
advisory lock keyed on the schema's name: several daemons starting together on a fresh
database serialise, the first migrates, the others find the work done. DDL is transactional in
PostgreSQL, so a failed migration leaves the previous version intact.

The numbering is PostgreSQL's own (1 = the tables SQLite reached at its version 3); the SQLite
file keeps its ``user_version``. Tables live in the connection's current schema (the first of
``search_path``), so one database can hold several independent slawatch schemas.

JSON columns are ``text`` holding :func:`~monitor.store.base.encode_json`'s canonical form, as
in SQLite: ``jsonb`` would refuse a ``\\u0000`` inside a string that a probe reported, and
would renormalise numbers and key order the evidence export hashes.
"""

from __future__ import annotations

from typing import Final

VERSION_TABLE: Final = "slawatch_schema"

_STATES = "'available','unavailable','excluded','unknown','pending'"
_OUTCOMES = "'up','down','timeout','error'"

_LOCATED_TABLES = ("tallies", "evidence", "service_buckets", "gaps", "heartbeats")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: everything SQLite schema version 3 holds (availability, exclusions, faults, kv).
    (
        """CREATE TABLE tallies (
            vantage text NOT NULL,
            target text NOT NULL,
            bucket_start bigint NOT NULL CHECK (bucket_start >= 0),
            bucket_seconds integer NOT NULL CHECK (bucket_seconds > 0),
            ok bigint NOT NULL CHECK (ok >= 0),
            failed bigint NOT NULL CHECK (failed >= 0),
            reasons text NOT NULL DEFAULT '{}',
            errors bigint NOT NULL DEFAULT 0 CHECK (errors >= 0),
            error_reasons text NOT NULL DEFAULT '{}',
            excused bigint NOT NULL DEFAULT 0 CHECK (excused >= 0),
            PRIMARY KEY (vantage, bucket_start, target, bucket_seconds)
        )""",
        # As in SQLite: time leads the key so one flush (every target, the current bucket)
        # touches few index pages; this index serves reads of named targets.
        "CREATE INDEX tallies_by_target ON tallies (vantage, target, bucket_start)",
        f"""CREATE TABLE evidence (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            vantage text NOT NULL,
            ts double precision NOT NULL,
            target text NOT NULL,
            outcome text NOT NULL CHECK (outcome IN ({_OUTCOMES})),
            reason text NOT NULL,
            duration double precision NOT NULL,
            details text NOT NULL DEFAULT '{{}}'
        )""",
        "CREATE INDEX evidence_by_ts ON evidence (ts)",
        "CREATE INDEX evidence_by_target_ts ON evidence (target, ts)",
        f"""CREATE TABLE service_buckets (
            vantage text NOT NULL,
            sla text NOT NULL,
            service text NOT NULL,
            bucket_start bigint NOT NULL CHECK (bucket_start >= 0),
            state text NOT NULL CHECK (state IN ({_STATES})),
            kind text,
            PRIMARY KEY (vantage, sla, bucket_start),
            CHECK ((state = 'excluded') = (kind IS NOT NULL))
        )""",
        """CREATE TABLE gaps (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            vantage text NOT NULL,
            start_ts double precision NOT NULL,
            end_ts double precision NOT NULL,
            reason text NOT NULL,
            CHECK (end_ts > start_ts)
        )""",
        "CREATE INDEX gaps_by_start ON gaps (start_ts)",
        """CREATE TABLE heartbeats (
            vantage text PRIMARY KEY,
            ts double precision NOT NULL
        )""",
        """CREATE TABLE kv (
            key text PRIMARY KEY,
            value text NOT NULL
        )""",
        """CREATE TABLE exclusions (
            id text PRIMARY KEY,
            kind text NOT NULL,
            start_ts double precision NOT NULL,
            end_ts double precision NOT NULL,
            start_iso text NOT NULL,
            end_iso text NOT NULL,
            reason text NOT NULL,
            services text NOT NULL DEFAULT '[]',
            announced_iso text,
            source text NOT NULL,
            added_by text NOT NULL,
            CHECK (end_ts > start_ts)
        )""",
        """CREATE TABLE faults (
            fault_id text PRIMARY KEY,
            contract text NOT NULL,
            alert_key text UNIQUE,
            is_open boolean NOT NULL,
            doc text NOT NULL
        )""",
        "CREATE INDEX faults_by_contract ON faults (contract, is_open)",
        """CREATE TABLE fault_events (
            fault_id text NOT NULL REFERENCES faults (fault_id) ON DELETE CASCADE,
            seq integer NOT NULL CHECK (seq > 0),
            event text NOT NULL,
            PRIMARY KEY (fault_id, seq)
        )""",
    ),
    # 2: sealed months (as SQLite's version 4): one record per SLA month, written once.
    (
        """CREATE TABLE month_seals (
            sla text NOT NULL,
            month text NOT NULL,
            sealed_at double precision NOT NULL,
            config_hash text NOT NULL,
            tallies_digest text NOT NULL,
            doc text NOT NULL,
            digest text NOT NULL,
            PRIMARY KEY (sla, month)
        )""",
    ),
    # 3: monitoring locations (issue 14; as SQLite's version 5): every row names the location
    # of the vantage point (member) that wrote it; rows written before get their vantage's
    # name, which is what a daemon without ``monitor.location`` writes.
    (
        *(
            statement
            for table in _LOCATED_TABLES
            for statement in (
                f"ALTER TABLE {table} ADD COLUMN location text",
                f"UPDATE {table} SET location = vantage",
                f"ALTER TABLE {table} ALTER COLUMN location SET NOT NULL",
            )
        ),
        # One location's tallies summed over its members: a range of one location's rows.
        "CREATE INDEX tallies_by_location ON tallies (location, bucket_start, target)",
    ),
    # 4 (issue 14, sharding inside a location): the membership leases
    # of the daemons sharing a location's targets (monitor/store/lease.py).
    (
        """CREATE TABLE shard_leases (
            location text NOT NULL,
            member text NOT NULL,
            holder text NOT NULL,
            started_at timestamptz NOT NULL,
            heartbeat_at timestamptz NOT NULL,
            expires_at timestamptz NOT NULL,
            PRIMARY KEY (location, member)
        )""",
    ),
    # 5 (as SQLite's version 6): one probe is one evidence row. A COMMIT whose acknowledgement
    # was lost (the database went away just after it) makes the daemon send the batch again;
    # the row must not count twice in a claim's evidence.
    (
        "DELETE FROM evidence a USING evidence b WHERE a.id > b.id "
        "AND a.vantage = b.vantage AND a.target = b.target AND a.ts = b.ts",
        "CREATE UNIQUE INDEX evidence_once ON evidence (vantage, target, ts)",
    ),
)

SCHEMA_VERSION: Final = len(MIGRATIONS)

CREATE_VERSION_TABLE: Final = f"""CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    version integer PRIMARY KEY CHECK (version > 0),
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

# Tables a slawatch schema holds; any of them without the version table means "not ours".
OWN_TABLES: Final = (
    "tallies",
    "evidence",
    "service_buckets",
    "gaps",
    "heartbeats",
    "kv",
    "exclusions",
    "faults",
    "fault_events",
    "month_seals",
    "shard_leases",
)

# Serialises migrations of one schema across every process: the lock id is derived from the
# schema's name, so two slawatch schemas in one database do not wait for each other.
MIGRATION_LOCK: Final = (
    "SELECT pg_advisory_xact_lock(hashtext('slawatch-migrate:' || current_schema()))"
)
