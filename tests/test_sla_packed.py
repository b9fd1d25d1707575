"""Issue 20 (memory): the compact forms of a month's bucket codes read back exactly.

A complete running month keeps its codes packed (``monitor.sla.packed``) and a result's states
are either packed or lent from the running month's array (copied before the month writes it).
These hold a month kept compact equal to one never packed, after any sequence of buckets
elapsing, late tallies, exclusions added and removed and the month's end, and every result
handed out equal to what it was when handed out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.sla.packed import pack, unpack
from monitor.sla.policy import BucketState, ExclusionKind, ExclusionWindow, Tally
from monitor.sla.running import CodedStates, RunningMonth
from tests.strategies import engine_scenarios

codes = st.binary(max_size=3000) | st.lists(
    st.tuples(st.integers(0, len(BucketState) - 1), st.integers(1, 900)), max_size=12
).map(lambda runs: b"".join(bytes([code]) * n for code, n in runs))

_LATE = (
    Tally(ok=0, failed=3, reasons={"late": 3}),
    Tally(ok=4),
    Tally(ok=0, errors=2, error_reasons={"secret_unavailable": 2}),
    Tally(ok=0, failed=2, reasons={"timeout": 2}, excused=2),
)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(1, 300)),
        st.tuples(
            st.just("late"), st.integers(0, 2), st.integers(1, 800), st.integers(0, len(_LATE) - 1)
        ),
        st.tuples(st.just("exclude"), st.integers(-5, 760), st.integers(1, 30)),
        st.tuples(st.just("unexclude")),
        st.tuples(st.just("end")),
        st.tuples(st.just("result")),
    ),
    min_size=1,
    max_size=30,
)


class _NeverPacked(RunningMonth):
    """The reference: the same month, its arrays never packed."""

    def _settle(self) -> None:
        return


def _same_month(a: RunningMonth, b: RunningMonth, at: datetime | None) -> None:
    assert a.elapsed == b.elapsed
    assert a.version == b.version
    ra, rb = a.result(at), b.result(at)
    assert ra.to_json() == rb.to_json()
    assert tuple(ra.states) == tuple(rb.states)
    assert ra.states == rb.states
    assert [a.state_at(i) for i in range(a.grid.count)] == list(rb.states)
    assert a.judged_state(a.elapsed) == b.judged_state(b.elapsed)


class TestPacked:
    @settings(max_examples=200, deadline=None)
    @given(data=codes)
    def test_unpack_gives_back_what_was_packed(self, data: bytes) -> None:
        """Any codes, runs or not, come back byte for byte (also from the recent cache)."""
        packed = pack(data)
        assert unpack(packed) == data
        assert unpack(packed) == data
        assert unpack(pack(bytearray(data))) == data

    @settings(max_examples=200, deadline=None)
    @given(data=codes.filter(lambda b: all(c < len(BucketState) for c in b)), cut=st.integers())
    def test_packed_states_equal_plain_states(self, data: bytes, cut: int) -> None:
        """A result's packed states read as the plain ones: length, items, slices, equality."""
        plain, packed = CodedStates(data), CodedStates.of_packed(pack(data), len(data))
        assert len(packed) == len(plain)
        assert list(packed) == list(plain)
        assert packed == plain
        assert packed == tuple(plain)
        if data:
            index = cut % len(data)
            assert packed[index] is plain[index]
            assert packed[index:] == plain[index:]
            assert packed[-1] is plain[-1]


class TestCompactMonthEqualsPlain:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenario=engine_scenarios(), events=steps, data=st.data())
    def test_any_sequence_of_events(
        self, scenario: dict[str, Any], events: list[tuple[Any, ...]], data: Any
    ) -> None:
        """A running month whose arrays are packed once complete equals one never packed,
        after buckets elapsing, late tallies (into the complete month too), exclusions added
        and removed and the month's end; every result handed out keeps its states."""
        policy, service, grid = scenario["policy"], scenario["service"], scenario["grid"]
        truth = scenario["tallies"]
        live: dict[str, dict[int, Tally]] = {name: {} for name in truth}
        windows: list[ExclusionWindow] = list(scenario["exclusions"])
        kw = {"canaries": scenario["canaries"]}
        compact = RunningMonth(policy, service, scenario["month"], windows, **kw)
        plain = _NeverPacked(policy, service, scenario["month"], windows, **kw)
        handed: list[tuple[CodedStates, tuple[BucketState, ...]]] = []
        now = grid.start + timedelta(minutes=1)
        complete = False
        for event in events:
            if event[0] in ("advance", "end"):
                later = grid.end if event[0] == "end" else now + timedelta(hours=event[1])
                floor = grid.bucket_floor(now.timestamp())
                for name, column in truth.items():
                    for start, tally in column.items():
                        if floor <= start < later.timestamp():
                            live[name][start] = tally
                now = later
                complete = complete or now >= grid.end
            elif event[0] == "late":
                names = sorted(truth)
                name = names[event[1] % len(names)]
                start = grid.bucket_floor(min(now, grid.end).timestamp()) - event[2] * 3600
                if start < grid.start_epoch:
                    continue
                live[name][start] = _LATE[event[3]]
                compact.mark(start)
                plain.mark(start)
            elif event[0] == "exclude":
                begin = grid.start + timedelta(hours=event[1])
                windows.append(
                    ExclusionWindow(
                        id=f"w{len(windows)}",
                        start=begin,
                        end=begin + timedelta(hours=event[2]),
                        kind=ExclusionKind.SCHEDULED_MAINTENANCE,
                    )
                )
                compact.replace_windows(windows)
                plain.replace_windows(windows)
            elif event[0] == "unexclude":
                if windows:
                    windows.pop(data.draw(st.integers(0, len(windows) - 1)))
                compact.replace_windows(windows)
                plain.replace_windows(windows)
            at = None if complete else now
            compact.advance(live, at)
            plain.advance(live, at)
            if event[0] == "result":
                states = compact.result(at).states
                assert isinstance(states, CodedStates)
                handed.append((states, tuple(states)))
            # Complete and nothing marked: packed (what this test is about).
            assert (compact._packed is not None) == complete
            _same_month(compact, plain, at)
        for states, then in handed:
            assert tuple(states) == then
