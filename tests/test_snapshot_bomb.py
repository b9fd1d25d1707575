"""hd34 (issue 20): a stored snapshot is never inflated past what its month can need.

A damaged or hostile blob holding a valid zlib stream of hundreds of megabytes (a zip bomb
in the store) is refused as damaged having inflated at most the length its head declares (or
that the longest month of the bound can need), never its whole size: tracemalloc's peak stays
far below the bomb's inflated size. The daemon then reads that month from its tallies, and its
figures are those of a start without snapshots. Valid snapshots still decode under the exact
bound the daemon passes (the buckets proven, the service's targets).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given, settings
from structlog.testing import capture_logs

from monitor.sla import running_codec
from monitor.sla.running import JudgedState
from monitor.sla.running_codec import SnapshotError, decode, encode
from tests.strategies import judged_states, judged_states_repeating_evidence
from tests.test_daemon_eviction import same_as_store
from tests.test_daemon_snapshots import NOW, _months, _start, saved_sample

pytestmark = pytest.mark.timeout(180)

BOMB = 256 << 20
"""Bytes of zeros each bomb inflates to after its valid prefix."""

PEAK = 24 << 20
"""The most tracemalloc may see allocated at once while a bomb is refused: a tenth of it."""

T = TypeVar("T")


@functools.cache
def _zeros_stream(prefix: bytes, size: int = BOMB) -> bytes:
    """A zlib stream of ``prefix`` and ``size`` zero bytes (256 MB: about 250 KB)."""
    packer = zlib.compressobj(9)
    zeros = bytes(1 << 20)
    parts = [packer.compress(prefix)]
    parts += [packer.compress(zeros) for _ in range(size >> 20)]
    return b"".join(parts) + packer.flush()


def _peak(call: Callable[[], T]) -> tuple[T | BaseException, int]:
    """``call()``'s result (or the exception it raised) and tracemalloc's peak during it."""
    tracemalloc.start()
    try:
        try:
            out: T | BaseException = call()
        except Exception as exc:
            out = exc
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _body(blob: bytes, magic: bytes) -> bytes:
    return zlib.decompress(blob[len(magic) :])


def _month() -> JudgedState:
    """A 30-day month of 5-minute buckets, one in a hundred unavailable with one target's
    evidence, as a daemon saves it."""
    from monitor.sla.policy import Tally
    from monitor.sla.running import _A, _U

    raw = bytearray([_A]) * 8640
    evidence = []
    for index in range(0, 8640, 100):
        raw[index] = _U
        evidence.append((index, (("web", Tally(ok=1, failed=9, reasons={"timeout": 9})),)))
    return JudgedState(8640, bytes(raw), (), (), tuple(evidence), 0)


class TestCodecBound:
    def test_every_format_refuses_a_bomb_after_a_valid_month(self) -> None:
        """A valid month's bytes followed by 256 MB of zeros, in each of the four formats:
        refused as unreadable, allocating a small part of the bomb at most."""
        state = _month()
        for magic, blob in (
            (running_codec.MAGIC, encode(state)),
            (running_codec.MAGIC_V3, running_codec.encode_runs(state)),
            (running_codec.MAGIC_V2, running_codec.encode_v2(state)),
            (running_codec.MAGIC_V1, running_codec.encode_v1(state)),
        ):
            assert decode(blob, buckets=8640) == state
            bomb = magic + _zeros_stream(_body(blob, magic))
            assert len(bomb) < BOMB // 500
            got, peak = _peak(lambda bomb=bomb: decode(bomb, buckets=8640))
            assert isinstance(got, SnapshotError), (magic, got)
            assert peak < PEAK, (magic, peak)

    def test_a_head_declaring_more_than_the_month_holds_is_refused_before_inflating(
        self,
    ) -> None:
        """Heads claiming a table, runs or buckets past the month's bound are refused at the
        head: the bomb after them is never inflated (the peak is a few kilobytes)."""
        state = _month()
        body = _body(encode(state), running_codec.MAGIC)
        judged, first, runs, excused, evidence, size = running_codec._HEAD_V4.unpack_from(body)
        most_table = running_codec._most_json(judged, evidence, 1)
        for head, why in (
            ((judged, first, runs, excused, evidence, BOMB), "bytes of table"),
            ((judged, first, runs, excused, evidence, most_table + 1), "bytes of table"),
            ((judged, first, judged + 1, excused, evidence, size), "runs"),
            ((judged, first, runs, judged + 1, evidence, size), "excused buckets"),
            ((8641, first, runs, excused, evidence, size), "buckets judged"),
        ):
            bomb = running_codec.MAGIC + _zeros_stream(running_codec._HEAD_V4.pack(*head))
            got, peak = _peak(lambda bomb=bomb: decode(bomb, buckets=8640))
            assert isinstance(got, SnapshotError), (head, got)
            assert "expected at most" in str(got), got
            assert why in str(got), got
            assert peak < 1 << 20, (head, peak)

    def test_the_table_bound_counts_the_services_targets(self) -> None:
        """300 buckets judged, each unavailable with its own evidence of 100 targets (a
        1.5 MB table): decoded when the bound is told the service's 100 targets, refused as
        past the bound when told one."""
        from monitor.sla.policy import Tally
        from monitor.sla.running import _U

        evidence = tuple(
            (
                index,
                tuple(
                    (f"web-{n:03d}", Tally(ok=index, failed=9, reasons={"http_503": 9}))
                    for n in range(100)
                ),
            )
            for index in range(300)
        )
        wide = JudgedState(300, bytes([_U]) * 300, (), (), evidence, 0)
        blob = encode(wide)
        assert decode(blob, buckets=300, targets=100) == wide
        with pytest.raises(SnapshotError, match="bytes of table"):
            decode(blob, buckets=300, targets=1)

    @settings(max_examples=150, deadline=None)
    @given(judged_states() | judged_states_repeating_evidence())
    def test_round_trip_under_the_exact_bound(self, state: JudgedState) -> None:
        """Under the bound the daemon passes (the buckets it judged, the most targets one
        bucket's evidence names), every format gives the state back, or refuses it only
        when its JSON is longer than the bound allows (never another state); with fewer
        buckets than it judged, it is refused."""
        targets = max((len(cells) for _, cells in state.evidence), default=1)
        table = running_codec._HEAD_V4.unpack_from(_body(encode(state), running_codec.MAGIC))[5]
        distinct = len({running_codec._cells_key(cells) for _, cells in state.evidence})
        sparse = len(running_codec._sparse(state))
        fits = running_codec._most_json(state.judged, len(state.evidence), targets)
        most = running_codec._most_json(state.judged, state.judged, targets)
        assert distinct <= len(state.evidence)
        v1 = running_codec.encode_v1(state)
        for blob, whole in (
            (encode(state), table <= fits),
            (running_codec.encode_runs(state), sparse <= most),
            (running_codec.encode_v2(state), sparse <= most),
            (v1, len(_body(v1, running_codec.MAGIC_V1)) <= 4 * (state.judged // 3 + 1) + most),
        ):
            if whole:
                assert decode(blob, buckets=state.judged, targets=targets) == state
            else:
                with pytest.raises(SnapshotError, match="bytes of"):
                    decode(blob, buckets=state.judged, targets=targets)
            assert decode(blob) == state  # the default bound: the longest month
        if state.judged:
            with pytest.raises(SnapshotError, match="buckets judged"):
                decode(encode(state), buckets=state.judged - 1, targets=targets)


class TestDaemonRefusesABomb:
    def test_a_bomb_stored_as_a_snapshot_is_read_from_the_tallies(self, tmp_path: Path) -> None:
        """One SLA's current-month snapshot replaced by a bomb whose head and body are its
        own, followed by 256 MB of zeros (about 250 KB stored): the start refuses it with
        one log line and allocates a tenth of it at most; that month is read from its
        tallies, every other month starts from its snapshot, and every month's figures are
        those of the start without snapshots (and of the store)."""
        config, database, expected = saved_sample(tmp_path)

        async def run() -> None:
            conn = sqlite3.connect(database)
            rowid, state, sla = conn.execute(
                "SELECT rowid, state, sla FROM month_snapshots WHERE month = ? ORDER BY sla",
                (str(NOW.strftime("%Y-%m")),),
            ).fetchone()
            assert bytes(state).startswith(running_codec.MAGIC)
            bomb = running_codec.MAGIC + _zeros_stream(_body(bytes(state), running_codec.MAGIC))
            conn.execute("UPDATE month_snapshots SET state = ? WHERE rowid = ?", (bomb, rowid))
            conn.commit()
            conn.close()

            tracemalloc.start()
            try:
                with capture_logs() as logs:
                    second = await _start(config)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            try:
                assert peak < PEAK, peak
                months = len(second.accounting.inputs.policies) * 2
                assert second.snapshots.restored == months - 1
                (unreadable,) = [e for e in logs if e["event"] == "month_snapshot_unreadable"]
                assert unreadable["sla"] == sla
                assert "inflated" in unreadable["error"]
                assert await _months(second) == expected
                await same_as_store(second, NOW)
            finally:
                await second.store.close()

        asyncio.run(run())
