"""rb28 (issue 20): ``MonthSnapshots.restorable`` keeps each proven snapshot encoded
(``ProvenSnapshot``), and ``MonthSnapshots.judged_state`` decodes it when its month is built.

- a snapshot that decodes to the buckets it was proven for gives the judged state the codec
  gives; the month restored from it (``RunningMonth.restored``) keeps evidence naming targets
  with the service's own strings (one string per target, not one per evidence cell);
- one that does not decode, or decodes to other buckets than its ``judged_through``, gives
  None: it is no longer counted restored and vouches for no stored verdict (the daemon reads
  all of that month's tallies: ``tests/test_daemon_snapshots.py``).
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from structlog.testing import capture_logs

from monitor.runtime.snapshots import MonthSnapshots, ProvenSnapshot
from monitor.sla import running as running_module
from monitor.sla.calendar import Month
from monitor.sla.policy import CreditPolicy, ServiceDef, ServiceRule, SlaPolicy
from monitor.sla.running import JudgedState, RunningMonth
from monitor.sla.running_codec import encode, encode_v1
from tests.strategies import judged_states

MONTH = Month(2026, 11)


def _policy_and_service(state: JudgedState) -> tuple[SlaPolicy, ServiceDef]:
    # Copies of the evidence's names (other string objects of equal value), plus one more.
    names = sorted({name for _, cells in state.evidence for name, _ in cells} | {"other"})
    targets = tuple("".join(list(name)) for name in names)
    service = ServiceDef("svc", targets, ServiceRule())
    return SlaPolicy(
        "s", "svc", Decimal("99.9"), CreditPolicy((), Decimal(100), "EUR"), 300, "UTC"
    ), service


class TestJudgedState:
    @settings(max_examples=100, deadline=None)
    @given(judged_states())
    def test_decodes_to_the_state_with_the_services_names(self, state: JudgedState) -> None:
        policy, service = _policy_and_service(state)
        snapshots = MonthSnapshots(None)
        for blob in (encode(state), encode_v1(state)):
            snapshots.restored = 1
            got = snapshots.judged_state(
                policy, MONTH, ProvenSnapshot(state.judged, blob, targets=len(service.targets))
            )
            assert got == state
            assert snapshots.restored == 1
            # Cells shared across months (``shared_cells``) may be an earlier example's.
            running_module._CELLS.clear()
            running = RunningMonth.restored(policy, service, MONTH, (), got)
            kept = running.judged_state(state.judged)
            assert kept.evidence == state.evidence
            own = {name: name for name in service.targets}
            for _, cells in kept.evidence:
                for name, _ in cells:
                    assert name is own[name]

    @settings(max_examples=50, deadline=None)
    @given(judged_states())
    def test_unusable_when_built_is_not_restored_and_vouches_for_nothing(
        self, state: JudgedState
    ) -> None:
        policy, _ = _policy_and_service(state)
        blob = encode(state)
        for proven, unreadable in (
            (ProvenSnapshot(state.judged, blob[: len(blob) // 2]), 1),
            (ProvenSnapshot(state.judged, b"SWJS9junk"), 1),
            (ProvenSnapshot(state.judged + 1, blob), 0),  # other buckets than proven for
        ):
            snapshots = MonthSnapshots(None)
            snapshots.restored = 2
            snapshots.vouched[("s", MONTH)] = (0, 300, "digest")
            snapshots.vouched[("s", MONTH.previous())] = (0, 300, "digest")
            with capture_logs() as logs:
                assert snapshots.judged_state(policy, MONTH, proven) is None
            assert snapshots.restored == 1
            assert ("s", MONTH) not in snapshots.vouched
            assert ("s", MONTH.previous()) in snapshots.vouched  # another month's: kept
            events = [e for e in logs if e["event"] == "month_snapshot_unreadable"]
            assert len(events) == unreadable, logs
