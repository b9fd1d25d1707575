"""The real daemon on a real PostgreSQL that goes away mid-bucket and comes back (issue 14).

Buckets are 5 s long (allow_short_buckets) and the target is probed every second. The outage
is **20 s** (four buckets; the issue says 2 minutes, shortened to keep CI bounded: nothing in
the daemon depends on the outage's length except the memory it holds, bounded separately by
``MAX_PENDING_EVIDENCE``). PostgreSQL is stopped with its whole process group (every client
connection dies), then started again on the same data directory and port.

Checked: the daemon keeps probing; failure evidence beyond ``spool_after`` rows goes to the
spool file and is written back, each row once; ``slawatch_store_up`` drops to 0 with one
``store_unreachable`` log line and returns to 1 with ``store_back``; afterwards the database
holds a tally for every bucket across the outage, their counts add up to every probe the
daemon ran, no gap is recorded, and no bucket across the outage reads unknown, neither in the
daemon's API nor in the stored verdicts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import pg_cluster
from tests.daemon_harness import free_port, running_daemon, wait_until
from tests.test_daemon import BUCKET, http_target, sla, states_between, write_config
from tests.web_target import WebTarget, web_target

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

OUTAGE = 20.0


@pytest.fixture
def target() -> Any:
    with web_target() as t:
        yield t


@pytest.fixture
def cluster() -> Any:
    """A cluster of this test's own (the session's one must not be stopped under others),
    durable: with ``synchronous_commit=off`` (the fast clusters of the other tests) a commit is
    acknowledged before its WAL is written, and stopping the server can drop it; no production
    database runs that way, and the test would blame the daemon for rows PostgreSQL lost."""
    started = pg_cluster.start_cluster(durable=True)
    try:
        yield started
    finally:
        started.remove()


def _probes(daemon: Any, target: str = "api") -> float:
    return sum(
        value
        for (name, labels), value in daemon.metrics().items()
        if name == "slawatch_probes_total" and ("target", target) in labels
    )


class TestDatabaseOutage:
    def test_outage_mid_bucket_loses_no_tally_and_no_bucket_turns_unknown(
        self, tmp_path: Path, target: WebTarget, cluster: pg_cluster.Cluster
    ) -> None:
        """Stop PostgreSQL for 20 s mid-bucket, start it again: store_up 0 then 1, every
        probe's count reaches the database, no gap, no unknown bucket across the outage."""
        target.set("svc", "up")
        port = free_port()
        config = write_config(
            tmp_path,
            port,
            # "bad" fails every probe (nothing listens): its evidence, beyond spool_after=2
            # rows in memory, goes to the spool file during the outage.
            [
                http_target("api", target.url("svc")),
                http_target("bad", f"http://127.0.0.1:{free_port()}/"),
            ],
            [{"name": "web", "targets": ["api"]}],
            [sla("web-sla", "web")],
        )
        text = config.read_text(encoding="utf-8")
        store = '"store": {"backend": "postgresql", "dsn": {"env": "SLAWATCH_PG_DSN"}, '
        store += '"connect_timeout": "2s", "statement_timeout": "5s", "spool_after": 2}, '
        store += '"allow_short_buckets"'
        config.write_text(text.replace('"allow_short_buckets"', store, 1), encoding="utf-8")
        env = {"SLAWATCH_PG_DSN": cluster.dsn()}
        with running_daemon(config, port, env) as daemon:
            wait_until(lambda: _probes(daemon) >= 6, 20, "a few probes stored")
            assert daemon.metric("slawatch_store_up") == 1.0
            # Mid-bucket: 2 s into a 5 s bucket.
            time.sleep((2.0 - time.time() % BUCKET) % BUCKET)
            outage_start = time.time()
            cluster.stop()
            wait_until(lambda: daemon.metric("slawatch_store_up") == 0.0, 15, "slawatch_store_up 0")
            probes_during = _probes(daemon)
            time.sleep(max(0.0, outage_start + OUTAGE - time.time()))
            assert _probes(daemon) >= probes_during + OUTAGE / 2, "probing stopped"
            cluster.start()
            outage_end = time.time()
            wait_until(lambda: daemon.metric("slawatch_store_up") == 1.0, 30, "store_up back")
            time.sleep(2 * BUCKET)  # the buckets around the outage close and are written
            states = states_between(daemon, "web-sla", outage_start, outage_end)
            assert states, "expected buckets across the outage"
            assert set(states) == {"available"}, states
            log = daemon.log()
            assert log.count("store_unreachable") == 1
            assert "store_back" in log
            wait_until(lambda: "evidence_unspooled" in daemon.log(), 15, "spool drained")
            probes_before_stop = _probes(daemon)
            failures_before_stop = _probes(daemon, "bad")
            assert "evidence_spooled" in log
        # The daemon stopped with a final flush: what it counted is what the database holds.
        with psycopg.connect(cluster.dsn()) as conn:
            rows = conn.execute(
                "SELECT bucket_start, ok + failed + errors FROM tallies "
                "WHERE target = 'api' ORDER BY bucket_start"
            ).fetchall()
            # The outage records no gap; the only one is the daemon's own stop at the end.
            gaps = conn.execute(
                "SELECT count(*) FROM gaps WHERE reason <> 'monitor_stopped'"
            ).fetchone()
            evidence = conn.execute(
                "SELECT count(*), count(DISTINCT ts) FROM evidence WHERE target = 'bad'"
            ).fetchone()
            verdicts = conn.execute(
                "SELECT bucket_start, state FROM service_buckets "
                "WHERE bucket_start >= %s AND bucket_start < %s ORDER BY bucket_start",
                (int(outage_start // BUCKET) * BUCKET, int(outage_end // BUCKET) * BUCKET),
            ).fetchall()
        assert gaps == (0,)
        assert evidence is not None
        assert evidence[0] == evidence[1], "evidence written twice"
        assert failures_before_stop <= evidence[0] <= failures_before_stop + 3
        assert not (tmp_path / "state" / "evidence-spool.jsonl").exists()
        stored = sum(count for _, count in rows)
        assert probes_before_stop <= stored <= probes_before_stop + 3
        first = int(outage_start // BUCKET) * BUCKET
        last = int(outage_end // BUCKET) * BUCKET
        starts = {start for start, count in rows if count > 0}
        missing = [b for b in range(first, last + 1, BUCKET) if b not in starts]
        assert missing == [], f"buckets without a stored tally: {missing}"
        assert len(verdicts) >= int(OUTAGE // BUCKET) - 1
        assert {state for _, state in verdicts} == {"available"}
