"""Issue 20 (memory at a month's end): what a running month shares with the results it hands
out, held equal to what it would have copied.

- A result's states read the running month's own array up to the buckets elapsed when it was
  handed out (``CodedStates.lent``); the month copies the array only before writing below
  them (a late tally re-judged, windows changed), so a bucket close copies nothing. Every
  result handed out keeps its states after any later events.
- An unavailable bucket's evidence is shared by value between buckets (``shared_cells``):
  equal to the cells it stands for.
- A result's ``rules`` are built when read (``monitor.sla.month.Rules``): equal, item for item
  and in order, to the mapping ``_rules`` builds.
"""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.sla.month import Rules, _rules, compute_month
from monitor.sla.policy import BucketState, ExclusionKind, ExclusionWindow, Tally
from monitor.sla.running import CodedStates, RunningMonth, shared_cells
from tests.strategies import engine_scenarios

_CODES = tuple(BucketState)
_P = _CODES.index(BucketState.PENDING)
_X = _CODES.index(BucketState.EXCLUDED)

_LATE = (
    Tally(ok=0, failed=3, reasons={"late": 3}),
    Tally(ok=4),
    Tally(ok=0, errors=2, error_reasons={"secret_unavailable": 2}),
)

events = st.lists(
    st.one_of(
        st.tuples(st.just("close"), st.integers(1, 60)),
        st.tuples(
            st.just("late"), st.integers(0, 2), st.integers(1, 80), st.integers(0, len(_LATE) - 1)
        ),
        st.tuples(st.just("window"), st.integers(-5, 760), st.integers(1, 30)),
    ),
    min_size=1,
    max_size=25,
)

judged_codes = st.lists(st.sampled_from([c for c in range(len(_CODES)) if c != _P]), max_size=60)
_NEITHER = [c for c in range(len(_CODES)) if c not in (_P, _X)]
"""Codes a bucket after the elapsed ones never holds in a running month."""
later_codes = st.lists(st.sampled_from([_P, _X]), max_size=60)


class TestLentStates:
    """A running month's results share its array without ever seeing a later write."""

    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenario=engine_scenarios(), steps=events)
    def test_results_keep_their_states_and_a_close_copies_nothing(
        self, scenario: dict[str, Any], steps: list[tuple[Any, ...]]
    ) -> None:
        """After buckets closing, late tallies into judged buckets and windows added, every
        result handed out (one after each event) reads what it read when handed out, equals
        compute_month's states over the same tallies then, and a close with nothing marked
        writes into the array the last result reads (no copy)."""
        policy, service, grid = scenario["policy"], scenario["service"], scenario["grid"]
        truth = scenario["tallies"]
        live: dict[str, dict[int, Tally]] = {name: {} for name in truth}
        windows: list[ExclusionWindow] = list(scenario["exclusions"])
        canaries = scenario["canaries"]
        month = RunningMonth(policy, service, scenario["month"], windows, canaries=canaries)
        handed: list[tuple[CodedStates, tuple[BucketState, ...]]] = []
        now = grid.start
        for step in steps:
            array = month._final
            if step[0] == "close":
                later = min(grid.end, now + timedelta(hours=step[1]))
                for name, column in truth.items():
                    for start, tally in column.items():
                        if now.timestamp() <= start < later.timestamp():
                            live[name][start] = tally
                now = later
            elif step[0] == "late":
                name = sorted(truth)[step[1] % len(truth)]
                start = grid.bucket_floor(now.timestamp()) - step[2] * 3600
                if start < grid.start_epoch:
                    continue
                live[name][start] = _LATE[step[3]]
                month.mark(start)
            else:
                begin = grid.start + timedelta(hours=step[1])
                windows.append(
                    ExclusionWindow(
                        id=f"w{len(windows)}",
                        start=begin,
                        end=begin + timedelta(hours=step[2]),
                        kind=ExclusionKind.SCHEDULED_MAINTENANCE,
                    )
                )
                month.replace_windows(windows)
            at = None if now >= grid.end else now
            month.advance(live, at)
            if step[0] == "close" and month._packed is None and handed:
                assert month._final is array  # the close wrote in place: nothing copied
            result = month.result(at)
            reference = compute_month(
                policy, service, scenario["month"], live, windows, canaries=canaries, now=at
            )
            assert tuple(result.states) == reference.states
            assert result.rules == reference.rules
            handed.append((result.states, tuple(result.states)))  # type: ignore[arg-type]
        for states, then in handed:
            assert tuple(states) == then
            assert list(states) == [states[i] for i in range(len(states))]

    @settings(max_examples=300, deadline=None)
    @given(head=judged_codes, tail=later_codes, cut=st.integers())
    def test_lent_view_reads_as_a_copy(self, head: list[int], tail: list[int], cut: int) -> None:
        """A lent view (judged codes, then pending and excluded ones) reads as a copy of the
        codes: length, items (negative too), slices, iteration and equality, and keeps
        reading so when the owner writes after its elapsed buckets."""
        codes = bytearray(head + tail)
        copy = CodedStates(bytes(codes))
        lent = CodedStates.lent(codes, len(head))
        assert lent._codes is codes  # shared, not copied
        assert len(lent) == len(copy)
        assert list(lent) == list(copy)
        assert lent == copy
        assert copy == lent
        assert lent == tuple(copy)
        if codes:
            index = cut % len(codes)
            assert lent[index] is copy[index]
            assert lent[index - len(codes)] is copy[index]
            assert lent[index:] == copy[index:]
            assert lent[: index + 1] == copy[: index + 1]
            assert lent[index : index + 7] == copy[index : index + 7]
            assert lent[index::2] == copy[index::2]
            assert lent[-index - 1 : -1] == copy[-index - 1 : -1]
            codes[len(head) :] = bytes([0]) * len(tail)  # the owner judges later buckets
            assert list(lent) == list(copy)

    @given(
        head=judged_codes,
        tail=later_codes,
        odd=st.sampled_from([c for c in range(len(_CODES)) if c not in (_P, _X)]),
    )
    def test_later_codes_not_pending_are_copied(
        self, head: list[int], tail: list[int], odd: int
    ) -> None:
        """A code after the elapsed buckets that is neither pending nor excluded is not what
        a lent view can stand for: the states are a copy."""
        codes = bytearray([*head, *tail, odd])
        states = CodedStates.lent(codes, len(head))
        assert states._codes is not codes
        assert list(states) == [_CODES[c] for c in codes]


class TestRules:
    """A result's rules built when read equal the mapping they stand for."""

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scenario=engine_scenarios(), quorum=st.integers(0, 3))
    def test_built_when_read_equals_the_mapping(
        self, scenario: dict[str, Any], quorum: int
    ) -> None:
        """Rules read as the mapping _rules builds: items in order, lookups, length, equality
        either way (also with a read-only mapping), and every read the same."""
        policy, service, canaries = scenario["policy"], scenario["service"], scenario["canaries"]
        built = _rules(policy, service, quorum, canaries)
        rules = Rules(policy, service, quorum, tuple(canaries))
        assert list(rules.items()) == list(built.items())
        assert dict(rules) == built
        assert len(rules) == len(built)
        assert rules == MappingProxyType(built)
        assert MappingProxyType(built) == rules
        assert rules == Rules(policy, service, quorum, tuple(canaries))
        assert all(rules[key] == value for key, value in built.items())
        assert rules.get("no such reading") is None
        mine = rules["service_targets"]
        mine.append("changed by a reader")
        assert rules["service_targets"] == built["service_targets"]

    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(scenario=engine_scenarios())
    def test_unequal_rules_differ(self, scenario: dict[str, Any]) -> None:
        """Rules of another quorum are not equal (the comparison is not always true)."""
        policy, service = scenario["policy"], scenario["service"]
        assert Rules(policy, service, 1, ()) != Rules(policy, service, 2, ())
        assert Rules(policy, service, 1, ()) != _rules(policy, service, 2, ())


reasons = st.dictionaries(st.sampled_from(["http_503", "timeout", "late"]), st.integers(1, 3))
tallies = st.builds(
    Tally,
    ok=st.integers(0, 3),
    failed=st.integers(0, 3),
    reasons=reasons,
    errors=st.integers(0, 2),
    error_reasons=reasons,
    excused=st.integers(0, 1),
)
cells_lists = st.lists(
    st.lists(st.tuples(st.sampled_from(["t0", "t1", "t2"]), tallies), max_size=3).map(tuple),
    min_size=1,
    max_size=8,
)


class TestSharedEvidence:
    """Evidence shared by value stands for the cells it replaces."""

    @settings(max_examples=200, deadline=None)
    @given(many=cells_lists)
    def test_shared_cells_equal_the_originals(
        self, many: list[tuple[tuple[str, Tally], ...]]
    ) -> None:
        """Every cells shared equal the originals field for field (reasons in the same
        order), and value-equal cells given again are the one kept first."""
        kept = [shared_cells(cells) for cells in many]
        for cells, shared in zip(many, kept, strict=True):
            assert shared == cells
            assert [
                (n, list(t.reasons.items()), list(t.error_reasons.items())) for n, t in shared
            ] == [(n, list(t.reasons.items()), list(t.error_reasons.items())) for n, t in cells]
            again = tuple(
                (
                    name,
                    Tally(
                        t.ok, t.failed, dict(t.reasons), t.errors, dict(t.error_reasons), t.excused
                    ),
                )
                for name, t in cells
            )
            assert shared_cells(again) is shared_cells(cells)
