"""The evidence spool file (monitor/store/spool.py): what a store outage pushes out of memory
comes back oldest first, exactly once, across restarts, and a torn append loses nothing else."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.store.base import EvidenceRow
from monitor.store.evidence_spool import EvidenceSpool
from probes.result import Outcome


def row(i: int, details: dict[str, str | int | float | bool | None] | None = None) -> EvidenceRow:
    return EvidenceRow(
        "v1", 1000.0 + i, f"t{i % 3}", Outcome.TIMEOUT, "timeout", 1.5, details or {}
    )


class TestSpool:
    def test_round_trip_in_order_then_empty(self, tmp_path: Path) -> None:
        """Rows come back as appended, oldest first, in chunks; the files go once drained."""
        spool = EvidenceSpool(tmp_path / "s" / "spool.jsonl")
        assert spool.empty
        rows = [row(i, {"status_code": 503, "note": "a\u0000b", "ok": False}) for i in range(7)]
        spool.append(rows[:4])
        spool.append(rows[4:])
        first, offset = spool.peek(limit=5)
        assert first == rows[:5]
        spool.consume(offset)
        assert not spool.empty
        rest, offset = spool.peek(limit=5)
        assert rest == rows[5:]
        spool.consume(offset)
        assert spool.empty
        assert not spool.path.exists()

    def test_progress_survives_a_restart(self, tmp_path: Path) -> None:
        """A new spool on the same file (the next daemon run) resumes after the last chunk
        consumed: nothing is written back twice, nothing skipped."""
        path = tmp_path / "spool.jsonl"
        EvidenceSpool(path).append([row(i) for i in range(4)])
        first, offset = EvidenceSpool(path).peek(limit=3)
        EvidenceSpool(path).consume(offset)
        again, _ = EvidenceSpool(path).peek()
        assert [r.ts for r in first + again] == [1000.0 + i for i in range(4)]

    def test_torn_last_line_is_skipped(self, tmp_path: Path) -> None:
        """A crash mid-append leaves a line without its newline: it is not read (nor the
        rows before it lost), and later appends still come back."""
        path = tmp_path / "spool.jsonl"
        spool = EvidenceSpool(path)
        spool.append([row(0)])
        with path.open("a", encoding="utf-8") as out:
            out.write('{"vantage": "v1", "ts": 10')
        rows, _ = spool.peek()
        assert rows == [row(0)]

    @settings(max_examples=30, deadline=None)
    @given(
        sizes=st.lists(st.integers(min_value=0, max_value=6), max_size=6), chunk=st.integers(1, 5)
    )
    def test_any_appends_and_chunks_drain_exactly_once(
        self, tmp_path_factory: object, sizes: list[int], chunk: int
    ) -> None:
        """Any sequence of appends drained in any chunk size yields each row once, in order."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            spool = EvidenceSpool(Path(tmp) / "spool.jsonl")
            expected: list[EvidenceRow] = []
            n = 0
            for size in sizes:
                batch = [row(n + i) for i in range(size)]
                n += size
                spool.append(batch)
                expected.extend(batch)
            drained: list[EvidenceRow] = []
            while not spool.empty:
                rows, offset = spool.peek(limit=chunk)
                drained.extend(rows)
                spool.consume(offset)
            assert drained == expected
