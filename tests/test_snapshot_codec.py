"""Issue 20, r22: the snapshot codec's second format (``SWJS2``, raw codes instead of base64
inside JSON) round-trips every judged state, the first format (``SWJS1``) still loads to the
same state, and bytes that are not one whole judged state are refused with
``SnapshotError`` (the daemon then rebuilds the month from its tallies), never another
exception. The digest's canonical text is the reflection walk it replaced, character for
character, so snapshots stored before the change keep their digests."""

from __future__ import annotations

import contextlib
import dataclasses
import zlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import StrEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sla import running_codec
from monitor.sla.policy import (
    BucketRule,
    CreditPolicy,
    CreditTier,
    PartialExclusion,
    ServiceDef,
    ServiceRule,
    SlaPolicy,
)
from monitor.sla.running import JudgedState
from monitor.sla.running_codec import (
    MAGIC,
    MAGIC_V1,
    MAGIC_V2,
    SnapshotError,
    decode,
    encode,
    encode_runs,
    encode_v1,
    encode_v2,
)
from tests.strategies import credit_tables, judged_states, snapshot_states

pytestmark = pytest.mark.timeout(120)


# Every format a snapshot has been written in, newest first: the current one (SWJS4) and the
# three before it, still read from stores written by earlier releases.
WRITERS = (encode, encode_runs, encode_v2, encode_v1)
WRITER_NAMES = ("SWJS4", "SWJS3", "SWJS2", "SWJS1")


def _reflected(value: object) -> str:
    """The canonical text as the first release wrote it (``dataclasses.fields`` per call)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ",".join(
            f"{f.name}={_reflected(getattr(value, f.name))}" for f in dataclasses.fields(value)
        )
        return f"{type(value).__name__}({fields})"
    if isinstance(value, set | frozenset):
        return "{" + ",".join(sorted(_reflected(v) for v in value)) + "}"
    if isinstance(value, Mapping):
        items = sorted((_reflected(k), _reflected(v)) for k, v in value.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(value, tuple | list):
        return "(" + ",".join(_reflected(v) for v in value) + ")"
    return repr(value)


class TestRoundTrip:
    """Both formats give back the state they were written from."""

    @settings(max_examples=200, deadline=None)
    @given(judged_states())
    def test_current_format_round_trips(self, state: JudgedState) -> None:
        """``decode(encode(s)) == s`` and the bytes carry the current header."""
        blob = encode(state)
        assert blob.startswith(MAGIC)
        assert decode(blob) == state

    @settings(max_examples=100, deadline=None)
    @given(judged_states())
    def test_first_format_still_loads(self, state: JudgedState) -> None:
        """A snapshot written by the release before (``SWJS1``) loads to the same state as
        the current format does."""
        old = encode_v1(state)
        assert old.startswith(MAGIC_V1)
        assert decode(old) == decode(encode(state)) == state


class TestRefused:
    """Bytes that are not one whole judged state raise ``SnapshotError`` and nothing else."""

    @pytest.mark.parametrize("writer", WRITERS, ids=WRITER_NAMES)
    @settings(max_examples=200, deadline=None)
    @given(snapshot_states(), st.data())
    def test_truncated_is_refused(
        self, writer: Callable[[JudgedState], bytes], state: JudgedState, data: st.DataObject
    ) -> None:
        """Any strict prefix of any format is refused."""
        blob = writer(state)
        cut = data.draw(st.integers(0, len(blob) - 1))
        with pytest.raises(SnapshotError):
            decode(blob[:cut])

    @pytest.mark.parametrize("writer", WRITERS, ids=WRITER_NAMES)
    @settings(max_examples=200, deadline=None)
    @given(snapshot_states(), st.data())
    def test_flipped_byte_is_refused_or_same(
        self, writer: Callable[[JudgedState], bytes], state: JudgedState, data: st.DataObject
    ) -> None:
        """A changed byte is refused, or decodes to the very same state (a flag of the zlib
        header that does not change the stream): never another exception, never another
        state (the stream's checksum covers the codes, the runs, the table and the sparse
        parts)."""
        blob = bytearray(writer(state))
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] ^= data.draw(st.integers(1, 255))
        try:
            got = decode(bytes(blob))
        except SnapshotError:
            return
        assert got == state

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=200), st.sampled_from([MAGIC, MAGIC_V2, MAGIC_V1, b""]))
    def test_arbitrary_bytes_are_refused(self, body: bytes, head: bytes) -> None:
        """Random bytes, with or without a header, and whole zlib streams of random bytes,
        decode to a judged state or raise ``SnapshotError``: never another exception."""
        for blob in (head + body, head + zlib.compress(body)):
            with contextlib.suppress(SnapshotError):
                decode(blob)

    @given(judged_states())
    @settings(max_examples=50, deadline=None)
    def test_inconsistent_lengths_are_refused(self, state: JudgedState) -> None:
        """A head claiming more or fewer buckets than the body holds is refused."""
        body = zlib.decompress(encode_v2(state)[len(MAGIC_V2) :])
        judged, first, size = running_codec._HEAD.unpack_from(body)
        for other in (judged + 1, max(0, judged - 1)):
            if other == judged:
                continue
            head = running_codec._HEAD.pack(other, first, size)
            blob = MAGIC_V2 + zlib.compress(head + body[running_codec._HEAD.size :])
            with pytest.raises(SnapshotError):
                decode(blob)


class TestCanonicalText:
    """The digest's text did not change with its faster walk (stored digests stay valid)."""

    @settings(max_examples=100, deadline=None)
    @given(
        credit_tables(),
        st.sampled_from(["UTC", "Europe/Amsterdam"]),
        st.sampled_from([60, 300, 900]),
        st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=4, unique=True),
        st.frozensets(st.text(max_size=4), max_size=3),
    )
    def test_same_text_as_the_reflection_walk(
        self,
        credit: CreditPolicy,
        zone: str,
        size: int,
        targets: list[str],
        extra: frozenset[str],
    ) -> None:
        """Policies, services (nested), sets and mappings give the text the reflection walk
        gave."""
        policy = SlaPolicy("s", "svc", Decimal("99.9"), credit, size, zone)
        inner = ServiceDef("inner", tuple(targets[:1]), ServiceRule())
        service = ServiceDef("svc", tuple(targets), ServiceRule(), (inner,))
        for value in (
            policy,
            service,
            BucketRule(),
            CreditTier(credit_percent=credit.tiers[0].credit_percent),
            extra,
            {"a": extra, "b": (policy.bucket_rule, None, True, 1.5)},
        ):
            assert running_codec._canonical(value) == _reflected(value)

    def test_equal_members_of_two_enums_keep_their_own_text(self) -> None:
        """Enum texts are kept per class: a ``StrEnum`` member equal to another class's
        (both ``"full"``) is still written with its own class's name."""

        class Other(StrEnum):
            FULL = "full"

        assert str(PartialExclusion.FULL) == str(Other.FULL)  # equal, and equal hashes
        for value in (PartialExclusion.FULL, Other.FULL, PartialExclusion.FULL, Other.FULL):
            assert running_codec._canonical(value) == _reflected(value)
        assert running_codec._canonical(Other.FULL) != running_codec._canonical(
            PartialExclusion.FULL
        )
