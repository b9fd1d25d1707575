"""The store's row types refuse bad input where it is built, naming the field and value."""

from __future__ import annotations

import math

import pytest

from monitor.sla.policy import BucketState, ExclusionKind, Tally
from monitor.store.base import (
    EvidenceRow,
    Gap,
    ServiceBucketRow,
    TallyRow,
    WriteBatch,
    encode_json,
    evidence_from_result,
)
from probes.result import Outcome, ProbeResult


class TestTallyRow:
    def test_valid_row_gives_engine_tally(self) -> None:
        """A valid row converts to the engine's Tally with the same counts."""
        row = TallyRow("v1", "web", 600, 300, 4, 2, {"timeout": 2})
        assert row.tally() == Tally(ok=4, failed=2, reasons={"timeout": 2})

    def test_reasons_cannot_exceed_failures(self) -> None:
        """More reason counts than failures is a contradiction and is refused."""
        with pytest.raises(ValueError, match="counts add up to 3, more than failed=2"):
            TallyRow("v1", "web", 600, 300, 4, 2, {"timeout": 3})

    def test_bucket_start_must_align(self) -> None:
        """A bucket start that is not a multiple of the bucket length is refused."""
        with pytest.raises(ValueError, match="bucket_start: expected a multiple of 300, got 601"):
            TallyRow("v1", "web", 601, 300, 1, 0)

    @pytest.mark.parametrize(
        ("field", "kwargs", "message"),
        [
            ("ok", {"ok": -1}, "ok: expected a non-negative integer, got -1"),
            ("failed", {"failed": True}, "failed: expected a non-negative integer, got True"),
            ("vantage", {"vantage": ""}, "vantage: expected a non-empty name"),
            ("bucket_seconds", {"bucket_seconds": 0}, "bucket_seconds: expected > 0, got 0"),
        ],
    )
    def test_bad_field_is_named(self, field: str, kwargs: dict[str, object], message: str) -> None:
        """Each bad field is refused with its name and value."""
        values: dict[str, object] = {
            "vantage": "v1",
            "target": "web",
            "bucket_start": 0,
            "bucket_seconds": 300,
            "ok": 1,
            "failed": 0,
        }
        values.update(kwargs)
        with pytest.raises(ValueError, match=message):
            TallyRow(**values)  # type: ignore[arg-type]

    def test_reasons_are_frozen(self) -> None:
        """The row keeps its own read-only copy of the reasons mapping."""
        reasons = {"timeout": 1}
        row = TallyRow("v1", "web", 0, 300, 0, 1, reasons)
        reasons["timeout"] = 9
        assert row.reasons == {"timeout": 1}
        with pytest.raises(TypeError):
            row.reasons["x"] = 1  # type: ignore[index]


class TestEvidenceRow:
    def test_nan_detail_is_refused_with_key(self) -> None:
        """A NaN in details would not survive strict JSON; it is refused naming the key."""
        with pytest.raises(ValueError, match=r"details\['rtp_loss_ratio'\]: expected a finite"):
            EvidenceRow("v1", 1.0, "ivr", Outcome.DOWN, "no_rtp", 1.0, {"rtp_loss_ratio": math.nan})

    def test_non_scalar_detail_is_refused(self) -> None:
        """Details hold scalars only, as ProbeResult promises."""
        with pytest.raises(ValueError, match=r"details\['hops'\]: expected str, int, float"):
            EvidenceRow("v1", 1.0, "web", Outcome.DOWN, "x", 1.0, {"hops": [1, 2]})  # type: ignore[dict-item]

    def test_from_probe_result(self) -> None:
        """A probe result maps field by field onto an evidence row."""
        result = ProbeResult(
            "web", Outcome.TIMEOUT, 100.5, 10.0, "timeout", details={"status_code": 0}
        )
        row = evidence_from_result("v1", result)
        assert row == EvidenceRow(
            "v1", 100.5, "web", Outcome.TIMEOUT, "timeout", 10.0, {"status_code": 0}
        )


class TestServiceBucketRow:
    def test_kind_exactly_when_excluded(self) -> None:
        """An excluded verdict needs its kind; any other verdict must not have one."""
        with pytest.raises(ValueError, match="exactly when state is excluded"):
            ServiceBucketRow("v1", "sla", "voice", 0, BucketState.EXCLUDED)
        with pytest.raises(ValueError, match="exactly when state is excluded"):
            ServiceBucketRow(
                "v1", "sla", "voice", 0, BucketState.UNKNOWN, ExclusionKind.FORCE_MAJEURE
            )


class TestWriteBatchAndGap:
    def test_empty_batch(self) -> None:
        """A batch with nothing, not even a heartbeat, is empty; any row makes it non-empty."""
        assert WriteBatch().empty
        assert not WriteBatch(heartbeat=1.0).empty
        assert not WriteBatch(tallies=[TallyRow("v1", "w", 0, 300, 1, 0)]).empty

    def test_infinite_heartbeat_is_refused(self) -> None:
        """A heartbeat must be a finite epoch."""
        with pytest.raises(ValueError, match="heartbeat: expected a finite number, got inf"):
            WriteBatch(heartbeat=math.inf)

    def test_gap_needs_a_reason(self) -> None:
        """A gap without a reason cannot be explained later, so it is refused."""
        with pytest.raises(ValueError, match="gap: reason: expected a non-empty name"):
            Gap("v1", 1.0, 2.0, "")


class TestEncodeJson:
    def test_canonical_and_strict(self) -> None:
        """Keys are sorted and compact; NaN is refused with the place named."""
        assert encode_json("x", {"b": 1, "a": [True, None]}) == '{"a":[true,null],"b":1}'
        with pytest.raises(ValueError, match="fault F-1: doc: expected a JSON-encodable"):
            encode_json("fault F-1: doc", {"x": math.nan})
