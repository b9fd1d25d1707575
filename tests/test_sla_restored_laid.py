"""dc31 (issue 20): a month restored from a snapshot of the fourth format adopts the evidence
as the decoder read it (``JudgedState.laid``: the buckets, each one's index into the distinct
cells, the cells) instead of mapping every (bucket, cells) pair back into those arrays.

The month so restored equals, part for part, the month restored from the pairs alone (the
shape of every other format, and of a state built in memory): its evidence arrays and cells
(the very objects), its codes, hidden verdicts, excluded kinds, canary-excused buckets, monitor
errors, first tallied bucket and its result; under windows and canary-excused runs. Stored
arrays that are not what ``BucketEvidence.laid`` would build (buckets out of order, cells
numbered out of the order of their first bucket, equal cells written twice) give no ``laid``
or are laid from the pairs, never another month.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from array import array
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.sla import running_codec
from monitor.sla.calendar import Month
from monitor.sla.policy import CreditPolicy, ServiceDef, ServiceRule, SlaPolicy, Tally
from monitor.sla.running import _A, _U, JudgedState, RunningMonth
from monitor.sla.running_codec import MAGIC, decode, encode
from tests.strategies import (
    ENGINE_CANARIES,
    engine_scenarios,
    judged_states,
    judged_states_repeating_evidence,
)

_EXCUSED = Tally(ok=0, failed=2, reasons={"timeout": 2}, excused=2)
"""A bucket's tally whose every failure a canary excused."""


def _parts(month: RunningMonth) -> dict[str, Any]:
    """Everything a restored month holds that its figures and later judging read."""
    at, which, cells = month._evidence.parts()
    return {
        "at": list(at),
        "which": list(which),
        "cells": [id(c) for c in cells],
        "slot": dict(month._evidence._slot),
        "final": bytes(month._final),
        "packed": month._packed,
        "hidden": dict(month._hidden),
        "excluded": dict(month._excluded),
        "excused": set(month._excused),
        "errors": dict(month._errors),
        "first_tallied": month.first_tallied,
        "elapsed": month.elapsed,
        "applied": month._applied,
    }


def _laid_pairs(state: JudgedState) -> list[tuple[int, object]]:
    """The (bucket, cells) pairs ``state.laid`` holds."""
    assert state.laid is not None
    at, which = array("i"), array("i")
    at.frombytes(state.laid.at)
    which.frombytes(state.laid.which)
    return [(i, state.laid.cells[k]) for i, k in zip(at, which, strict=True)]


class TestLaidEqualsThePairs:
    @settings(max_examples=300, deadline=None)
    @given(st.one_of(judged_states(), judged_states_repeating_evidence()))
    def test_decoded_laid_holds_the_evidence(self, state: JudgedState) -> None:
        """Whatever the state (its evidence in bucket order, as a month writes it), the
        decoder's arrays hold its evidence, the very cells objects of ``evidence``."""
        got = decode(encode(state))
        assert got == state
        assert got.laid is not None
        assert [(i, id(c)) for i, c in _laid_pairs(got)] == [(i, id(c)) for i, c in got.evidence]
        assert dataclasses.replace(got, laid=None) == got  # not part of the state

    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenario=engine_scenarios(), data=st.data())
    def test_restored_from_laid_equals_restored_from_the_pairs(
        self, scenario: dict[str, Any], data: Any
    ) -> None:
        """A month judged under windows, canaries (and canary-excused runs), saved through
        the codec and restored under other windows: the same parts and result from ``laid``
        as from the pairs, and after advancing both to the month's end."""
        policy, service, month = scenario["policy"], scenario["service"], scenario["month"]
        grid = scenario["grid"]
        count = grid.count
        canaries = ENGINE_CANARIES if data.draw(st.booleans(), label="canaries") else ()
        tallies = {name: dict(column) for name, column in scenario["tallies"].items()}
        runs = st.tuples(st.integers(0, count - 1), st.integers(1, 40))
        for first, length in data.draw(st.lists(runs, max_size=4), label="excused runs"):
            for index in range(first, min(count, first + length)):
                for name in service.all_targets:
                    tallies[name][grid.start_epoch + index * grid.bucket_seconds] = _EXCUSED
        windows = scenario["exclusions"]
        then = [w for w in windows if data.draw(st.booleans(), label="window kept then")]
        now_windows = [w for w in windows if data.draw(st.booleans(), label="window kept now")]
        judged = data.draw(st.integers(0, count), label="judged")

        saved = RunningMonth(policy, service, month, then, canaries=canaries)
        saved.advance(tallies, None)
        state = decode(encode(saved.judged_state(judged)))
        assert state.laid is not None
        pairs = dataclasses.replace(state, laid=None)

        restored = [
            RunningMonth.restored(policy, service, month, now_windows, s, canaries=canaries)
            for s in (state, pairs)
        ]
        assert _parts(restored[0]) == _parts(restored[1])
        got, want = (m.result(None) for m in restored)
        assert got.to_json() == want.to_json()
        for m in restored:
            m.advance(tallies, None)
        assert _parts(restored[0]) == _parts(restored[1])
        assert restored[0].result(None).to_json() == restored[1].result(None).to_json()
        assert restored[0].judged_state(count) == restored[1].judged_state(count)


def _rewritten(state: JudgedState, slots: list[int], cells: list[Any], at: list[int]) -> bytes:
    """``state``'s fourth-format bytes with the evidence buckets, slots and table replaced
    (what a changed or hostile snapshot may hold, its checksum whole)."""
    body = zlib.decompress(encode(state)[len(MAGIC) :])
    head = list(running_codec._HEAD_V4.unpack_from(body))
    judged, _, runs, excused, _, size = head
    lo = running_codec._HEAD_V4.size
    hi = lo + (judged if runs == running_codec._RAW_CODES else runs * running_codec._RUN.size)
    doc = json.loads(body[len(body) - size :]) if size else {}
    doc["cells"] = cells
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    head[4], head[5] = len(at), len(text)
    parts = (
        running_codec._HEAD_V4.pack(*head),
        body[lo : hi + 4 * excused],
        running_codec._packed(array("I", at)),
        running_codec._packed(array("I", slots)),
        text,
    )
    return MAGIC + zlib.compress(b"".join(parts))


class TestNotLaid:
    """Stored arrays ``BucketEvidence.laid`` would not build as they are: no ``laid`` (the
    pairs are laid), or cells that share into one object (laid from the pairs): the same
    month as from the pairs."""

    def _state(self) -> tuple[JudgedState, list[Any]]:
        one = (("a", Tally(0, 1, {"x": 1})),)
        two = (("a", Tally(0, 2, {"y": 2})),)
        raw = bytes((_U, _U, _A, _U))
        state = JudgedState(4, raw, (), (), ((0, one), (1, two), (3, one)), 0)
        table = [[["a", running_codec._tally(c[0][1])]] for c in (one, two)]
        return state, table

    def test_cells_numbered_out_of_order(self) -> None:
        """The table in another order than the buckets first hold it: the same state, read
        without ``laid``."""
        state, table = self._state()
        got = decode(_rewritten(state, [1, 0, 1], table[::-1], [0, 1, 3]))
        assert got == state
        assert got.laid is None

    def test_buckets_out_of_order(self) -> None:
        """Evidence buckets not strictly increasing: read without ``laid``."""
        state, table = self._state()
        got = decode(_rewritten(state, [1, 0, 0], table, [1, 0, 3]))
        assert [i for i, _ in got.evidence] == [1, 0, 3]
        assert got.laid is None

    def test_equal_cells_written_twice(self) -> None:
        """Two table entries of equal cells (``encode`` writes one): the month is laid from
        the pairs, and equals the month restored from the pairs."""
        policy = SlaPolicy(
            "s", "svc", Decimal("99.9"), CreditPolicy((), Decimal(100), "EUR"), 300, "UTC"
        )
        service, month = ServiceDef("svc", ("a",), ServiceRule()), Month(2026, 11)
        state, table = self._state()
        got = decode(_rewritten(state, [0, 1, 0], [table[0], table[0]], [0, 1, 3]))
        assert got.laid is not None
        restored = [
            RunningMonth.restored(policy, service, month, (), s)
            for s in (got, dataclasses.replace(got, laid=None))
        ]
        assert _parts(restored[0]) == _parts(restored[1])
        assert len(restored[0]._evidence.parts()[2]) == 1
