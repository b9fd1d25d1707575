"""The spool of a shutdown on a full disk (issue 17): what fits is kept and replayed whole,
what does not is counted, a torn last line is dropped."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sla.policy import BucketState
from monitor.store.base import EvidenceRow, ServiceBucketRow, TallyRow, WriteBatch
from monitor.store.spool import clear_spool, read_spool, reserve_spool, write_spool
from probes.result import Outcome


def batch(n: int) -> WriteBatch:
    return WriteBatch(
        tallies=[TallyRow("v", f"t{i}", 300, 300, 3, 1, {"timeout": 1}) for i in range(n)],
        evidence=[EvidenceRow("v", 301.5, "t0", Outcome.TIMEOUT, "timeout", 5.0, {"a": 1})],
        service_buckets=[ServiceBucketRow("v", "sla", "svc", 300, BucketState.UNAVAILABLE)],
        heartbeat=599.0,
    )


class TestSpool:
    def test_round_trip_through_the_reserve(self, tmp_path: Path) -> None:
        """Rows written into the reserved file read back as the same batch; cleared, the
        reserve stays and reads as no spool."""
        path = tmp_path / "slawatch.db.spool"
        reserve_spool(path, 64 * 1024)
        assert read_spool(path) is None
        written, total = write_spool(path, batch(5))
        assert written == total == 5 + 1 + 1 + 1
        assert read_spool(path) == batch(5)
        clear_spool(path)
        assert path.stat().st_size == 64 * 1024
        assert read_spool(path) is None

    def test_rows_beyond_the_reserve_are_counted(self, tmp_path: Path) -> None:
        """A reserve too small holds whole lines only and says how many of the rows."""
        path = tmp_path / "slawatch.db.spool"
        reserve_spool(path, 1000)
        written, total = write_spool(path, batch(50))
        assert 0 < written < total == 53
        spooled = read_spool(path)
        assert spooled is not None
        assert len(spooled.tallies) == written
        assert path.stat().st_size == 1000

    def test_torn_last_line_is_dropped(self, tmp_path: Path) -> None:
        """A write cut short leaves a partial line: it is not replayed."""
        path = tmp_path / "slawatch.db.spool"
        write_spool(path, batch(2))
        path.write_bytes(path.read_bytes()[:-7])
        spooled = read_spool(path)
        assert spooled is not None
        assert len(spooled.tallies) == 2
        assert spooled.heartbeat is None

    @settings(max_examples=30, deadline=None)
    @given(st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=4))
    def test_latest_tally_wins_across_spills(self, oks: list[int]) -> None:
        """Two shutdowns spooling the same bucket: the later value is replayed."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "s.spool"
            for ok in oks:
                write_spool(path, WriteBatch(tallies=[TallyRow("v", "t", 0, 300, ok, 0)]))
            spooled = read_spool(path)
            assert spooled is not None
            assert [t.ok for t in spooled.tallies] == [oks[-1]]
