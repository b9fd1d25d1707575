"""mem34 (issue 20): the live state keys every target's tally of one bucket by one int object.

A bucket start past 2**30 is an int object of its own wherever it was made (each probe
result's ``bucket_floor``, each row read back from the store); the state keeps one per bucket
for all its tally dicts. These tests hold what it stores equal to what it would without the
sharing (every tally, every eviction count), and the sharing itself, which is what would be
lost silently.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.runtime.state import LiveState, bucket_floor
from monitor.sla.policy import Tally
from probes.result import Outcome, ProbeResult

BASE = 1_795_887_000  # past 2**30: each int is an object of its own
TARGETS = ("a", "b", "c")


def fresh(value: int) -> int:
    """An int equal to ``value`` that is another object (as each probe's bucket floor is)."""
    return int(str(value))


def test_record_load_and_put_share_one_start_per_bucket() -> None:
    state = LiveState()
    start = bucket_floor(BASE, 300)
    state.load(300, {"a": {fresh(start): Tally(ok=10)}})
    state.record(ProbeResult("b", Outcome.UP, float(fresh(start) + 7), 0.01), (300,))
    state.put(300, "c", fresh(start), Tally(ok=3))
    keys = [next(iter(state.tallies(300)[name])) for name in TARGETS]
    assert keys == [start] * 3
    assert keys[0] is keys[1] is keys[2]
    assert dict(state.tallies(300)["a"]) == {start: Tally(ok=10)}
    assert dict(state.tallies(300)["b"]) == {start: Tally(ok=1)}
    assert dict(state.tallies(300)["c"]) == {start: Tally(ok=3)}


def test_the_shared_starts_leave_with_the_eviction() -> None:
    state = LiveState()
    for k in range(6):
        state.load(300, {"a": {BASE - BASE % 300 + k * 300: Tally(ok=1)}})
    first = BASE - BASE % 300
    state.record(ProbeResult("b", Outcome.UP, float(first + 7), 0.01), (300,))  # not written
    assert state.evict_before({300: first + 3 * 300}) == 3  # a's; b's first bucket stays
    assert sorted(state._starts) == [first + k * 300 for k in (0, 3, 4, 5)]
    state.take_dirty()
    state.forget_before(first + 5 * 300)
    assert sorted(state._starts) == [first + 5 * 300]
    # A bucket that comes back after its start left is keyed as before.
    state.put(300, "b", fresh(first + 5 * 300), Tally(ok=2))
    assert next(iter(state.tallies(300)["b"])) is next(iter(state.tallies(300)["a"]))


class _Unshared(dict[int, int]):
    """What the state did before mem34: every start kept as it came."""

    def setdefault(self, key: int, default: int | None = None) -> int:
        assert default is not None
        return default


_events = st.lists(
    st.tuples(
        st.sampled_from(["record", "load", "put", "flush", "evict", "forget"]),
        st.sampled_from(TARGETS),
        st.integers(0, 11),  # bucket
        st.integers(0, 299),  # second in it
        st.booleans(),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_events)
def test_the_state_is_the_unshared_one(
    events: list[tuple[str, str, int, int, bool]],
) -> None:
    """Any sequence of results, loads, puts, flushes, evictions and forgets: the tallies held,
    the rows to write and the counts evicted are those of the state keeping every start as
    it came; and every bucket's tallies are keyed by one int object."""
    shared, unshared = LiveState(), LiveState()
    unshared._starts = _Unshared()
    first = BASE - BASE % 300
    for kind, target, bucket, second, ok in events:
        start = first + bucket * 300
        outs = []
        for state in (shared, unshared):
            if kind == "record":
                outcome = Outcome.UP if ok else Outcome.DOWN
                result = ProbeResult(
                    target, outcome, float(fresh(start) + second), 0.01, "" if ok else "x"
                )
                state.record(result, (300,))
            elif kind == "load":
                state.load(300, {target: {fresh(start): Tally(ok=second + 1)}})
            elif kind == "put":
                state.put(300, target, fresh(start), Tally(ok=second))
            elif kind == "flush":
                outs.append(sorted(state.take_dirty()))
            elif kind == "evict":
                outs.append(state.evict_before({300: fresh(start)}))
            else:
                state.forget_before(fresh(start))
            outs.append({t: dict(b) for t, b in state.tallies(300).items()})
        assert outs[: len(outs) // 2] == outs[len(outs) // 2 :]
    by_value: dict[int, int] = {}
    for buckets in shared.tallies(300).values():
        for key in buckets:
            assert by_value.setdefault(key, id(key)) == id(key)
