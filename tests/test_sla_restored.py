"""Issue 20 (e23): a month restored from its judged state (``RunningMonth.restored``, what a
restart starts from) equals the month judged afresh from its tallies.

``restored`` lays the exclusion windows once (the month's constructor lays them over the
all-pending month; the restored verdicts go under them) and the canary-excused runs only
when the state holds any; the evidence of equal unavailable buckets is shared. The windows
may change while the daemon is stopped (an exclusion added or removed through the API), so the
state is saved under one set of windows and restored under another.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor.sla.month import compute_month
from monitor.sla.policy import Tally
from monitor.sla.running import (
    _A,
    _Q,
    _RUN_OF_U,
    _U,
    _X,
    BucketEvidence,
    RunningMonth,
    _runs_of_evidence,
)
from monitor.sla.running_codec import decode, encode
from tests.strategies import ENGINE_CANARIES, engine_scenarios

_EXCUSED = Tally(ok=0, failed=2, reasons={"timeout": 2}, excused=2)
"""A bucket's tally whose every failure a canary excused."""


def _at(scenario: dict[str, Any], index: int) -> datetime:
    grid = scenario["grid"]
    return datetime.fromtimestamp(grid.start_epoch + index * grid.bucket_seconds, tz=UTC)


class TestRestoredEqualsJudgedAfresh:
    """A restored month, advanced on from the tallies after its state, equals the month
    judged from every tally (and compute_month's), under any windows."""

    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenario=engine_scenarios(), data=st.data())
    def test_restored_with_windows_equals_the_month_from_its_tallies(
        self, scenario: dict[str, Any], data: Any
    ) -> None:
        """Saved after ``judged`` buckets under some of the windows, restored under others
        (through the snapshot codec), advanced to ``now`` from the later tallies only: the
        result, its states and excluded kinds equal a month built from every tally, and
        compute_month's."""
        policy, service, month = scenario["policy"], scenario["service"], scenario["month"]
        count = scenario["grid"].count
        # Runs of buckets whose every failure a canary excused (the scenarios hold none):
        # the canary-excused runs restored with the windows.
        canaries = ENGINE_CANARIES if data.draw(st.booleans(), label="canaries") else ()
        tallies = {name: dict(column) for name, column in scenario["tallies"].items()}
        runs = st.tuples(st.integers(0, count - 1), st.integers(1, 40))
        for first, length in data.draw(st.lists(runs, max_size=4), label="excused runs"):
            for index in range(first, min(count, first + length)):
                epoch = scenario["grid"].start_epoch + index * scenario["grid"].bucket_seconds
                for name in service.all_targets:
                    tallies[name][epoch] = _EXCUSED
        windows = scenario["exclusions"]
        then = [w for w in windows if data.draw(st.booleans(), label="window kept then")]
        now_windows = [w for w in windows if data.draw(st.booleans(), label="window kept now")]
        judged = data.draw(st.integers(0, count), label="judged")
        upto = data.draw(st.integers(judged, count), label="now")
        now = _at(scenario, upto)

        saved = RunningMonth(policy, service, month, then, canaries=canaries)
        saved.advance(tallies, _at(scenario, judged))
        state = decode(encode(saved.judged_state(judged)))

        first = scenario["grid"].start_epoch + judged * scenario["grid"].bucket_seconds
        later = {n: {e: t for e, t in col.items() if e >= first} for n, col in tallies.items()}
        restored = RunningMonth.restored(
            policy, service, month, now_windows, state, canaries=canaries
        )
        restored.advance(later, now)

        fresh = RunningMonth(policy, service, month, now_windows, canaries=canaries)
        fresh.advance(tallies, now)
        got, want = restored.result(now), fresh.result(now)
        assert got.to_json() == want.to_json()
        assert tuple(got.states) == tuple(want.states)
        assert dict(got.excluded_kinds) == dict(want.excluded_kinds)
        assert restored.judged_state(upto) == fresh.judged_state(upto)

        before = scenario["grid"].start_epoch + upto * scenario["grid"].bucket_seconds
        so_far = {n: {e: t for e, t in col.items() if e < before} for n, col in tallies.items()}
        reference = compute_month(
            policy, service, month, so_far, now_windows, canaries=canaries, now=now
        )
        assert tuple(got.states) == reference.states
        assert got.to_json() == reference.to_json()


class _WalkOnly(RunningMonth):
    """A running month whose first outages are always found by the run-by-run walk."""

    def _fresh_outages(self, final: bytes | bytearray, unavailable: int | None = None) -> None:
        return None


class TestShortcutsEqualTheWalk:
    """ms28 (issue 20): a restored month's evidence laid at once (``BucketEvidence.laid``)
    and its first outages found in C (``RunningMonth._fresh_outages``) equal, part for part,
    what a put per bucket and the run-by-run walk of ``_find_outages`` build."""

    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenario=engine_scenarios(), data=st.data())
    def test_fresh_outages_equal_the_walk(self, scenario: dict[str, Any], data: Any) -> None:
        policy, service, month = scenario["policy"], scenario["service"], scenario["month"]
        count = scenario["grid"].count
        tallies = scenario["tallies"]
        windows = scenario["exclusions"]
        then = [w for w in windows if data.draw(st.booleans(), label="window kept then")]
        now_windows = [w for w in windows if data.draw(st.booleans(), label="window kept now")]
        judged = data.draw(st.integers(0, count), label="judged")
        saved = RunningMonth(policy, service, month, then)
        saved.advance(tallies, _at(scenario, judged))
        state = decode(encode(saved.judged_state(judged)))

        def found(walk: bool) -> tuple[Any, ...]:
            # The shortcut declined (_WalkOnly): _find_outages walks every run. A subclass,
            # not an attribute set on the month: RunningMonth has slots (mem29, issue 20).
            kind = _WalkOnly if walk else RunningMonth
            restored = kind.restored(policy, service, month, now_windows, state)
            result = restored.result(_at(scenario, judged))
            outages = restored._found
            return (*outages.parts(), tuple(result.outages), restored._evidence.parts())

        got, want = found(False), found(True)
        assert got[:4] == want[:4]
        assert got[4] == want[4]
        at, which, cells = got[5]
        w_at, w_which, w_cells = want[5]
        assert (at, which) == (w_at, w_which)
        assert [id(c) for c in cells] == [id(c) for c in w_cells]

    @settings(max_examples=200, deadline=None)
    @given(
        pairs=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 4)), max_size=40),
        ordered=st.booleans(),
    )
    def test_laid_equals_a_put_per_bucket(
        self, pairs: list[tuple[int, int]], ordered: bool
    ) -> None:
        """Any indices (in order and unique, as a snapshot holds them, or not): the arrays
        and distinct cells of ``laid`` are those of a put per pair in turn."""
        pool = [((f"t{k}", Tally(ok=0, failed=k + 1)),) for k in range(5)]
        if ordered:
            pairs = sorted(dict(pairs).items())
        indices = [i for i, _ in pairs]
        cells = [pool[k] for _, k in pairs]
        laid, put = BucketEvidence(), BucketEvidence()
        laid.laid(indices, cells)
        for index, held in zip(indices, cells, strict=True):
            put.put(index, held)
        (a1, w1, c1), (a2, w2, c2) = laid.parts(), put.parts()
        assert (a1, w1) == (a2, w2)
        assert [id(c) for c in c1] == [id(c) for c in c2]
        assert [laid.get(i) for i in range(62)] == [put.get(i) for i in range(62)]

    @settings(max_examples=400, deadline=None)
    @given(
        codes=st.lists(st.sampled_from([_A, _U, _X, _Q]), max_size=60),
        drop=st.sets(st.integers(0, 59)),
        extra=st.sets(st.integers(-2, 62)),
    )
    def test_runs_of_evidence_equal_the_search(
        self, codes: list[int], drop: set[int], extra: set[int]
    ) -> None:
        """dy29 (issue 20): any codes and any evidence indices (the unavailable buckets, some
        dropped, others added: excluded, unknown, outside the month): the runs read off the
        evidence are the runs the regular expression finds and their offsets the bisection's,
        or None whenever the evidence is not exactly the unavailable buckets."""
        final = bytes(codes)
        unavailable = [i for i, c in enumerate(codes) if c == _U]
        at = array("i", sorted((set(unavailable) - drop) | extra))
        got = _runs_of_evidence(final, at)
        # fs31: the caller's count of unavailable codes, when given, is the one compared.
        assert _runs_of_evidence(final, at, len(unavailable)) == got
        if at:
            assert _runs_of_evidence(final, at, len(at) + 1) is None
        if list(at) != unavailable:
            assert got is None
            return
        assert got is not None
        spans = [m.span() for m in _RUN_OF_U.finditer(final)]
        firsts = [a for a, _ in spans]
        assert tuple(map(list, got)) == (
            firsts,
            [b - a for a, b in spans],
            [bisect_left(at, first) for first in firsts],
        )
        # The runs are arrays of their own (a CompactOutages' parts), never ``at`` itself.
        assert got[0] is not at
        # and the same indices out of order are refused, not misread
        if len(at) > 1:
            assert _runs_of_evidence(final, array("i", reversed(at))) is None

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenario=engine_scenarios(), data=st.data())
    def test_fresh_outages_decline_evidence_missing(
        self, scenario: dict[str, Any], data: Any
    ) -> None:
        """Runs' buckets without evidence (never so in a month: the check is what makes the
        shortcut safe) are declined (``None``), not read from another run's evidence."""
        policy, service, month = scenario["policy"], scenario["service"], scenario["month"]
        count = scenario["grid"].count
        running = RunningMonth(policy, service, month, ())
        running.advance(scenario["tallies"], _at(scenario, count))
        at = list(running._evidence.parts()[0])
        assume(at)
        # Any buckets' evidence dropped (one, or most of a long run before a short one: a
        # run's last offset past the evidence while the last run's is not).
        for index in data.draw(st.sets(st.sampled_from(at), min_size=1), label="dropped"):
            running._evidence.pop(index)
        final = bytes(running.judged_state(count).raw)
        assert running._fresh_outages(final) is None
