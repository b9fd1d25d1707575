"""The snapshot codec's third format (issue 20, me24: ``SWJS3``, the verdict codes as runs of
equal codes instead of one byte per bucket, which was half of decoding a month at start-up).

Any judged state written in it reads back the same, and the same as in the second format
(``SWJS2``, still read, and still written for a month whose codes change too often); a month of
long runs is written in it; strict prefixes and changed bytes are refused or read the same
(zlib's checksum covers the runs); runs that do not add up to the buckets judged are refused.
"""

from __future__ import annotations

import tracemalloc
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sla import running_codec
from monitor.sla.running import _JUDGED_CODES, JudgedState
from monitor.sla.running_codec import (
    MAGIC,
    MAGIC_V3,
    SnapshotError,
    decode,
    encode,
    encode_runs,
    encode_v1,
    encode_v2,
)
from tests.strategies import judged_states, judged_states_in_long_runs

STATES = st.one_of(judged_states(), judged_states_in_long_runs())


class TestRuns:
    """The third format against the second."""

    @settings(max_examples=300, deadline=None)
    @given(STATES)
    def test_any_state_reads_back_the_same_in_both_formats(self, state: JudgedState) -> None:
        """``decode`` of the third format, of the second and of what ``encode`` chose all
        give back the state."""
        assert decode(encode_runs(state)) == state
        assert decode(encode_v2(state)) == state
        assert decode(encode(state)) == state

    @settings(max_examples=200, deadline=None)
    @given(judged_states_in_long_runs())
    def test_long_runs_are_written_as_runs(self, state: JudgedState) -> None:
        """``encode`` writes the codes as runs when they change at most once per
        ``_MOST_RUNS`` buckets, else one byte per bucket (rd28: both in the fourth format)."""
        runs = sum(1 for i in range(state.judged) if i == 0 or state.raw[i] != state.raw[i - 1])
        blob = encode(state)
        assert blob.startswith(MAGIC)
        written = running_codec._HEAD_V4.unpack_from(zlib.decompress(blob[len(MAGIC) :]))[2]
        if runs * running_codec._MOST_RUNS <= state.judged:
            assert written == runs
        else:
            assert written == running_codec._RAW_CODES

    def test_a_month_of_alternating_codes_is_written_as_codes(self) -> None:
        """Codes changing at every bucket stay one byte per bucket."""
        a, b = sorted(_JUDGED_CODES)[:2]
        state = JudgedState(600, bytes((a, b)) * 300, (), (), (), 0)
        body = zlib.decompress(encode(state)[len(MAGIC) :])
        assert running_codec._HEAD_V4.unpack_from(body)[2] == running_codec._RAW_CODES
        assert decode(encode(state)) == state

    def test_a_month_of_one_state_is_one_run(self) -> None:
        """8,640 buckets of one code are one run of five bytes."""
        state = JudgedState(8640, bytes((min(_JUDGED_CODES),)) * 8640, (), (), (), 0)
        body = zlib.decompress(encode(state)[len(MAGIC) :])
        assert running_codec._HEAD_V4.unpack_from(body)[2] == 1
        assert decode(encode(state)) == state


class TestRunsRefused:
    """Runs in the third format that do not add up are refused (strict prefixes and changed
    bytes of every format: ``tests/test_snapshot_codec.py::TestRefused``)."""

    @settings(max_examples=100, deadline=None)
    @given(judged_states_in_long_runs().filter(lambda s: s.judged > 0), st.sampled_from([-1, 1]))
    def test_runs_that_do_not_add_up_are_refused(self, state: JudgedState, step: int) -> None:
        """A head or a run claiming one bucket more or fewer than the other is refused, and so
        is a run of no bucket."""
        body = zlib.decompress(encode_runs(state)[len(MAGIC_V3) :])
        judged, first, count, size = running_codec._HEAD_RUNS.unpack_from(body)
        lo = running_codec._HEAD_RUNS.size
        head = running_codec._HEAD_RUNS.pack(judged + step, first, count, size)
        with pytest.raises(SnapshotError):
            decode(MAGIC_V3 + zlib.compress(head + body[lo:]))
        code, length = running_codec._RUN.unpack_from(body, lo)
        for other in (length + step, 0):
            run = running_codec._RUN.pack(code, max(other, 0))
            changed = body[:lo] + run + body[lo + running_codec._RUN.size :]
            with pytest.raises(SnapshotError):
                decode(MAGIC_V3 + zlib.compress(changed))

    def test_a_run_of_billions_is_refused_before_its_bytes_are_made(self) -> None:
        """A run claiming 2**32 - 1 buckets in a body whose checksum holds is refused by the
        lengths' sum, without making 4 GB of codes first (review of round 29, issue 20)."""
        state = JudgedState(3, bytes((min(_JUDGED_CODES),)) * 3, (), (), (), 0)
        body = zlib.decompress(encode_runs(state)[len(MAGIC_V3) :])
        lo = running_codec._HEAD_RUNS.size
        code, _ = running_codec._RUN.unpack_from(body, lo)
        huge = running_codec._RUN.pack(code, 2**32 - 1)
        changed = MAGIC_V3 + zlib.compress(body[:lo] + huge + body[lo + running_codec._RUN.size :])
        tracemalloc.start()
        try:
            with pytest.raises(SnapshotError, match="expected runs of 3 buckets in all"):
                decode(changed)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2**20


class TestInflate:
    """dy29 (issue 20): the runs' codes made of cached pieces are the plain expansion."""

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.integers(0, 255),
                st.one_of(st.integers(0, 3), st.integers(250, 260), st.integers(0, 9000)),
            ),
            max_size=40,
        ),
        st.integers(-1, 1),
    )
    def test_inflate_is_the_plain_expansion(self, runs: list[tuple[int, int]], off: int) -> None:
        """Any runs (of any code, short, around the longest piece kept, long; zero-length
        ones), any claimed total: the codes are each code repeated its length, in order, or
        the runs are refused (a run of no bucket, a total not the lengths' sum)."""
        packed = b"".join(running_codec._RUN.pack(code, length) for code, length in runs)
        total = sum(length for _, length in runs) + off
        plain = b"".join(bytes([code]) * length for code, length in runs)
        if off or any(length == 0 for _, length in runs):
            with pytest.raises(ValueError, match="expected runs"):
                running_codec._inflate(packed, total)
        else:
            assert running_codec._inflate(packed, total) == plain
            assert running_codec._inflate(packed, total) == plain  # pieces now cached


class TestOneLineErrors:
    """Damaged bytes in each of the three formats are refused with one line naming why."""

    @settings(max_examples=100, deadline=None)
    @given(STATES, st.sampled_from([encode, encode_runs, encode_v2, encode_v1]), st.data())
    def test_a_damaged_snapshot_is_one_line(
        self, state: JudgedState, writer: Callable[[JudgedState], bytes], data: st.DataObject
    ) -> None:
        """A strict prefix past the header: ``judged state: unreadable (why)``, one line."""
        blob = writer(state)
        cut = data.draw(st.integers(len(MAGIC), len(blob) - 1))  # every header is 5 bytes
        with pytest.raises(SnapshotError) as refused:
            decode(blob[:cut])
        assert str(refused.value).startswith("judged state: unreadable (")
        assert "\n" not in str(refused.value)

    def test_an_unknown_header_names_the_three_formats(self) -> None:
        """Bytes in no format: the one line names every header read."""
        with pytest.raises(SnapshotError, match=r"^judged state: unknown format") as refused:
            decode(b"SWJS9" + zlib.compress(b"{}"))
        assert all(magic in str(refused.value) for magic in ("SWJS4", "SWJS3", "SWJS2", "SWJS1"))
