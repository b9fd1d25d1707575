"""The snapshot codec's fourth format (issue 20, rd28: ``SWJS4``, each distinct bucket evidence
written once in a table and the buckets as packed indices into it, the excused buckets packed;
decoding every unavailable bucket's tallies from JSON was half of decoding a month at
start-up).

Any judged state written in it reads back the same, and the same as from the three formats
before it (still read); equal evidence is written once and read back as one shared object;
strict prefixes and changed bytes are refused or read the same; counts, indices and tables
that do not agree are refused with one line.
"""

from __future__ import annotations

import contextlib
import json
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sla import running_codec
from monitor.sla.policy import Tally
from monitor.sla.running import _JUDGED_CODES, _U, JudgedState
from monitor.sla.running_codec import (
    MAGIC,
    SnapshotError,
    decode,
    encode,
    encode_runs,
    encode_v1,
    encode_v2,
)
from tests.strategies import judged_states, judged_states_repeating_evidence

pytestmark = pytest.mark.timeout(120)


STATES = st.one_of(judged_states(), judged_states_repeating_evidence())


def _refusal(blob: bytes) -> str | None:
    """Why ``decode`` refused ``blob``, None if it read a judged state (any other exception
    propagates: the test fails)."""
    try:
        decode(blob)
    except SnapshotError as refused:
        return str(refused)
    return None


def _table(blob: bytes) -> tuple[tuple[int, ...], bytes]:
    body = zlib.decompress(blob[len(MAGIC) :])
    return running_codec._HEAD_V4.unpack_from(body), body


class TestTable:
    """The fourth format against the three before it."""

    @settings(max_examples=300, deadline=None)
    @given(STATES)
    def test_any_state_reads_back_the_same_in_every_format(self, state: JudgedState) -> None:
        """``decode`` of the fourth format equals the state and what the first three formats
        (written by earlier releases, still read) give back."""
        blob = encode(state)
        assert blob.startswith(MAGIC)
        got = decode(blob)
        assert got == state
        for old in (encode_runs(state), encode_v2(state), encode_v1(state)):
            assert decode(old) == got

    @settings(max_examples=200, deadline=None)
    @given(judged_states_repeating_evidence())
    def test_equal_evidence_is_written_once_and_read_as_one(self, state: JudgedState) -> None:
        """The table holds one entry per distinct evidence (by value, whatever the objects),
        and the buckets holding equal evidence read back the very same cells."""
        distinct = {running_codec._cells_key(cells) for _, cells in state.evidence}
        head, body = _table(encode(state))
        assert head[4] == len(state.evidence)
        size = head[5]
        table = json.loads(body[len(body) - size :]) if size else {}
        assert len(table.get("cells", [])) == len(distinct)
        got = decode(encode(state))
        by_key: dict[tuple[object, ...], int] = {}
        for _, cells in got.evidence:
            assert by_key.setdefault(running_codec._cells_key(cells), id(cells)) == id(cells)

    def test_a_month_of_one_failure_repeated(self) -> None:
        """2,000 unavailable buckets failing the same way: one table entry, 8 bytes a bucket
        before compression, and the same state back."""
        cells = (("sip-1", Tally(0, 3, {"timeout": 3})),)
        raw = bytes((_U,)) * 2000 + bytes((min(set(_JUDGED_CODES) - {_U}),)) * 6000
        state = JudgedState(8000, raw, (), (), tuple((i, cells) for i in range(2000)), 0)
        head, body = _table(encode(state))
        assert head[2] == 2
        assert head[4] == 2000
        assert len(json.loads(body[len(body) - head[5] :])["cells"]) == 1
        assert decode(encode(state)) == state


class TestTableRefused:
    """Counts, indices and tables of the fourth format that do not agree are refused with one
    line, never another exception or another state (strict prefixes and changed bytes of every
    format: ``tests/test_snapshot_codec.py::TestRefused``)."""

    @settings(max_examples=200, deadline=None)
    @given(STATES, st.integers(0, 5), st.sampled_from([-1, 1, 7]), st.data())
    def test_a_changed_count_or_index_is_refused_or_consistent(
        self, state: JudgedState, field: int, step: int, data: st.DataObject
    ) -> None:
        """A head field changed (buckets, first, runs, excused, evidence, table bytes) or an
        evidence index pointing elsewhere, in a body whose checksum is whole: refused with
        one line, or a consistent judged state (``JudgedState`` checks itself)."""
        head, body = _table(encode(state))
        fields = list(head)
        fields[field] += step
        changed = [body]
        with_head = running_codec._HEAD_V4.size
        with contextlib.suppress(struct.error):  # a count changed out of its range
            changed.append(running_codec._HEAD_V4.pack(*fields) + body[with_head:])
        if head[4]:  # the last evidence bucket's table index
            at = len(body) - head[5] - 4
            slot = data.draw(st.integers(0, 2**32 - 1))
            changed.append(body[:at] + struct.pack("<I", slot) + body[at + 4 :])
        for candidate in changed[1:]:
            why = _refusal(MAGIC + zlib.compress(candidate))
            assert why is None or (why.startswith("judged state: unreadable (") and "\n" not in why)

    def test_an_unused_table_entry_is_refused(self) -> None:
        """A table holding an evidence no bucket holds is not what ``encode`` writes."""
        cells = (("t", Tally(0, 1, {"x": 1})),)
        state = JudgedState(2, bytes((_U, _U)), (), (), ((0, cells), (1, cells)), 0)
        head, body = _table(encode(state))
        table = body[len(body) - head[5] :]
        doc = json.loads(table)
        doc["cells"].append(doc["cells"][0])
        text = json.dumps(doc).encode()
        fields = list(head)
        fields[5] = len(text)
        new = (
            running_codec._HEAD_V4.pack(*fields)
            + body[running_codec._HEAD_V4.size : len(body) - head[5]]
        )
        with pytest.raises(SnapshotError, match="every distinct evidence"):
            decode(MAGIC + zlib.compress(new + text))
