"""cpu28 (issue 20): a tally row's fast check and the checksum's shared encoder change no
outcome. A row is accepted or refused, with the same message, exactly as the full checks
alone decide; a checksum is the CRC of the same text ``json.dumps`` gave."""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.store.base import TallyRow
from monitor.store.checksum import evidence_crc, tally_crc

# Mostly what a flush writes (so that rows passing every check are drawn often), sometimes
# anything the full checks refuse.
_NAMES = st.one_of(
    st.sampled_from(["v1", "web", "ü-target"]),
    st.sampled_from(["v1", "web", "a b"]),
    st.sampled_from([" web", "web ", "", "\t", None, 3, b"web"]),
    st.text(max_size=4),
)
_COUNTS = st.one_of(
    st.integers(min_value=0, max_value=4),
    st.integers(min_value=0, max_value=4),
    st.integers(min_value=-2, max_value=6),
    st.sampled_from([True, False, 1.0, 2.5, None, "3"]),
)
_EMPTY: MappingProxyType[str, int] = MappingProxyType({})
_REASONS: st.SearchStrategy[object] = st.one_of(
    st.just(_EMPTY),
    st.just(_EMPTY),
    st.just({}),
    st.dictionaries(st.sampled_from(["timeout", " x", "", "refused"]), _COUNTS, max_size=2),
    st.dictionaries(st.sampled_from(["timeout", "refused"]), _COUNTS, max_size=2).map(
        MappingProxyType
    ),
)


def _outcome(build: object) -> object:
    """The row built (its fields, the reasons' types) or the error's type and message."""
    try:
        row = build() if callable(build) else build
    except Exception as exc:
        return (type(exc), str(exc))
    assert isinstance(row, TallyRow)
    values = [getattr(row, f.name) for f in dataclasses.fields(row)]
    return (values, type(row.reasons), type(row.error_reasons))


def _fully_checked(*args: object) -> TallyRow:
    """The row as the full checks alone build it (the fast check skipped)."""
    row = object.__new__(TallyRow)
    for f, value in zip(dataclasses.fields(TallyRow), args, strict=True):
        object.__setattr__(row, f.name, value)
    row._check_fully()
    return row


# TallyRow's fields in order (vantage, target, bucket start and length, ok, failed, reasons,
# errors, error reasons, excused, location): plain values and every kind of wrong one.
_ROW_ARGUMENTS = st.tuples(
    _NAMES,
    _NAMES,
    st.one_of(st.sampled_from([0, 300, 600]), st.sampled_from([601, -300]), _COUNTS),
    st.one_of(st.sampled_from([300, 60]), st.sampled_from([0, -300]), _COUNTS),
    _COUNTS,
    _COUNTS,
    _REASONS,
    _COUNTS,
    _REASONS,
    _COUNTS,
    st.one_of(st.just(""), _NAMES),
)


@settings(max_examples=1500)
@given(_ROW_ARGUMENTS)
def test_fast_check_decides_as_the_full_checks(args: tuple[object, ...]) -> None:
    """Any row, plain or wrong in any field: the same row or the same one-line error as the
    full checks alone."""
    assert _outcome(lambda: TallyRow(*args)) == _outcome(lambda: _fully_checked(*args))  # type: ignore[arg-type]


def test_plain_rows_take_the_fast_check() -> None:
    """The common row (plain names, counts, no reasons) is accepted and keeps its shared
    empty reasons; a refused one still names its field."""
    empty: MappingProxyType[str, int] = MappingProxyType({})
    row = TallyRow("v1", "web", 600, 300, 7, 0, empty, 0, empty, 0)
    assert row.location == "v1"
    assert row.reasons is empty
    assert row.error_reasons is empty
    for bad, message in (
        ({"ok": -1}, "tally web@600: ok: expected a non-negative integer, got -1"),
        ({"target": "web "}, "tally web @600: target: expected a non-empty name"),
        ({"excused": 1}, "excused: expected at most failed=0, got 1"),
    ):
        fields = {"vantage": "v1", "target": "web", "bucket_start": 600, "bucket_seconds": 300}
        fields.update({"ok": 7, "failed": 0, "reasons": empty, "error_reasons": empty})
        fields.update(bad)
        with pytest.raises(ValueError, match=re.escape(message)):
            TallyRow(**fields)  # type: ignore[arg-type]


_SCALARS = st.one_of(
    st.text(max_size=8),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
)


@given(values=st.lists(_SCALARS, min_size=10, max_size=10))
def test_checksum_text_is_json_dumps(values: list[object]) -> None:
    """The shared encoder writes what ``json.dumps`` with the canonical arguments wrote."""
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    expected = zlib.crc32(text.encode("utf-8", "surrogatepass"))
    assert tally_crc(*values) == expected  # type: ignore[arg-type]


@given(
    values=st.tuples(
        st.text(max_size=5),
        st.floats(allow_nan=True),
        st.text(max_size=5),
        st.text(max_size=5),
        st.text(max_size=5),
        st.floats(allow_nan=True),
        st.text(max_size=5),
    )
)
def test_evidence_checksum_text_is_json_dumps(
    values: tuple[str, float, str, str, str, float, str],
) -> None:
    vantage, ts, target, outcome, reason, duration, details = values
    canonical = [vantage, float(ts), target, outcome, reason, float(duration), details]
    text = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    assert evidence_crc(*values) == zlib.crc32(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=400)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=3), min_size=4, max_size=4),
    reasons=_REASONS,
    error_reasons=_REASONS,
    location=st.sampled_from(["", "v1", "there"]),
)
def test_fast_check_at_its_edges(
    counts: list[int], reasons: object, error_reasons: object, location: str
) -> None:
    """Plain names and bucket, small counts, any reasons: the rows the fast check must tell
    from the ones only the full checks may accept or refuse."""
    ok, failed, errors, excused = counts
    args = ("v1", "web", 600, 300, ok, failed, reasons, errors, error_reasons, excused, location)
    assert _outcome(lambda: TallyRow(*args)) == _outcome(lambda: _fully_checked(*args))  # type: ignore[arg-type]
