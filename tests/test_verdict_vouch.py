"""A restart from month snapshots reads back only the stored verdicts after the point the
snapshots vouch for (issue 20, vm26; ``monitor.runtime.verdict_resume``).

- After any sequence of results (late ones included), time, flushes, failed writes, snapshot
  saves, exclusions added while running or while the daemon is down, verdict rows deleted
  behind the daemon's back while it is down (a running daemon does not look for them),
  crashes mid-flush and restarts (from snapshots or not), the store holds exactly the
  reference month's verdicts (``compute_month`` via ``month_result``), from the first bucket
  with a tally to the last settled.
- A restart from a snapshot with nothing changed reads back only the rows after its vouched
  bucket (the last hour) and writes none; a row deleted, or an exclusion added while down,
  before that bucket is found and written again.

Daemons over fixed clocks, results fed through their own path; nothing depends on the date.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.instants import utc_from_epoch
from monitor.runtime.daemon import Daemon
from monitor.sla.policy import ExclusionKind, ExclusionWindow
from tests.test_metrics_sla_text import Harness
from tests.test_verdict_resume import (
    EVENTS,
    _counting,
    assert_store_equals_reference,
    play,
    restart,
    settle_and_check,
)

pytestmark = pytest.mark.timeout(600)


def _reading(d: Daemon) -> list[tuple[str, int, int]]:
    """(SLA, first bucket start, rows) of every stored-verdict read the daemon makes."""
    reads: list[tuple[str, int, int]] = []
    inner = d.store.load_service_buckets

    async def load(sla: str, start: int, end: int, vantage: str | None = None) -> Any:
        rows = await inner(sla, start, end, vantage)
        reads.append((sla, start, len(rows)))
        return rows

    d.store.load_service_buckets = load  # type: ignore[method-assign]
    return reads


def _delete_verdict(h: Harness, index: int) -> None:
    """Delete one stored verdict row (the ``index``-th, wrapping) through another connection,
    as an operator's ``DELETE`` would."""
    path = h.daemon.config.monitor.database_path
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT sla, bucket_start FROM service_buckets ORDER BY 1, 2"
        ).fetchall()
        if rows:
            sla, start = rows[index % len(rows)]
            conn.execute(
                "DELETE FROM service_buckets WHERE sla = ? AND bucket_start = ?", (sla, start)
            )


async def _cycle(h: Harness) -> None:
    """Flush, save the snapshots (with the verdict marks), restart from them."""
    assert await h.daemon.flush()
    await h.daemon._save_snapshots(h.clock())
    await restart(h)


class TestVouchedRestartsWriteTheReference:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        st.lists(
            st.one_of(
                *EVENTS,
                st.tuples(st.just("save")),
                st.tuples(st.just("cycle")),
                st.tuples(st.just("delete"), st.integers(0, 200)),
            ),
            max_size=20,
        )
    )
    def test_after_any_events_and_restarts_the_store_holds_the_reference(
        self,
        tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch,
        events: list[tuple[Any, ...]],
    ) -> None:
        """Whatever happened before, across and between restarts from snapshots, once time
        has passed and the daemon flushed, the store holds the reference month's verdicts."""

        async def run() -> None:
            h = Harness(tmp_path_factory.mktemp("vouch"))
            h.history(3)
            await h.daemon.store.open()
            assert await h.daemon.flush()  # as tests/test_verdict_resume.py: history stored
            await _cycle(h)  # guards armed, marks resumed, snapshots vouching: the start
            try:
                for number, event in enumerate(events):
                    if event[0] == "save":
                        await h.daemon._save_snapshots(h.clock())
                    elif event[0] == "cycle":
                        await _cycle(h)
                    elif event[0] == "delete":  # while down: a running daemon never looks
                        await h.daemon.store.close()
                        _delete_verdict(h, event[1])
                        await h.daemon.store.open()
                        await restart(h)
                    else:
                        await play(h, number, event, monkeypatch)
                await settle_and_check(h)
            finally:
                await h.daemon.store.close()

        asyncio.run(run())


class TestVouchedRestartReadsTheLastHour:
    def test_restart_reads_only_after_the_vouched_bucket(self, tmp_path: Any) -> None:
        """Three hours stored and snapshotted with their verdict marks: a restart reads back
        only the buckets after the snapshot's (an hour and a bit), and writes nothing; a row
        deleted before it, then an exclusion added while down, are found and written."""

        async def run() -> None:
            h = Harness(tmp_path)
            h.history(3)
            await h.daemon.store.open()
            try:
                assert await h.daemon.flush()
                await _cycle(h)
                await _cycle(h)  # now saved by a daemon with marks: the snapshots vouch
                d = h.daemon
                vouched = dict(d.snapshots.vouched)
                policies = d.accounting.inputs.policies
                assert {name for name, _ in vouched} == {p.name for p in policies}
                reads = _reading(d)
                counts = _counting(d)
                for _ in range(3):
                    assert await d.flush()
                assert sum(counts) == 0
                assert d.snapshots.vouched == {}
                now = h.clock()
                settle = d._settle_seconds()
                through_of = {sla: v[1] for (sla, _), v in vouched.items()}
                total = 0
                for sla, start, rows in reads:
                    through = through_of[sla]
                    assert start == through, sla  # read from the vouched bucket on
                    total += rows
                size = policies[0].bucket_seconds
                hour = (3600 + settle) // size + 2  # the snapshot is an hour and a settle old
                assert 0 < total <= len(policies) * hour
                assert all(int(now - settle - t) // size <= hour for _, t, _ in reads)
                await assert_store_equals_reference(h)

                # A verdict deleted behind the daemon's back, before the vouched bucket.
                await _cycle(h)
                _delete_verdict(h, 3)
                await restart(h)
                counts = _counting(h.daemon)
                for _ in range(3):
                    assert await h.daemon.flush()
                assert sum(counts) > 0
                await assert_store_equals_reference(h)

                # An exclusion added while down over buckets the snapshot vouches for (2 h to
                # 1.5 h ago: the snapshot ends an hour and a settle ago).
                await _cycle(h)
                await h.daemon.store.add_exclusion(
                    ExclusionWindow(
                        id="down",
                        start=utc_from_epoch(h.clock() - 7200),
                        end=utc_from_epoch(h.clock() - 5400),
                        kind=ExclusionKind.TELECOM_PROVIDER,
                        reason="carrier outage",
                        services=frozenset({"sa"}),
                        source="api",
                    )
                )
                await restart(h)
                counts = _counting(h.daemon)
                for _ in range(3):
                    assert await h.daemon.flush()
                assert sum(counts) > 0
                await assert_store_equals_reference(h)
            finally:
                await h.daemon.store.close()

        asyncio.run(run())
