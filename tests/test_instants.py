"""``monitor.instants``: the one RFC 3339 reader every input goes through."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.instants import InstantError, instant_seconds, parse_instant
from monitor.reports.results import parse_lines

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
AT_TWO = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)


class TestParseInstant:
    @pytest.mark.parametrize(
        "text",
        [
            "2026-11-10T02:00:00Z",
            "2026-11-10t02:00:00z",
            "2026-11-10 02:00:00Z",
            " 2026-11-10T02:00:00Z ",
            "2026-11-10T03:00:00+01:00",
            "2026-11-10T02:00:00.000000000Z",
        ],
    )
    def test_accepted_forms(self, text: str) -> None:
        """RFC 3339 with lower-case t/z, a space for T, surrounding space, any fraction."""
        assert parse_instant(text, "start") == AT_TWO

    @pytest.mark.parametrize(
        "text",
        [
            "2026-11-10T02:00Z",
            "2026-11-10T02:00:00+0100",
            "20261110T020000Z",
            "2026-W46-2T02:00:00Z",
            "2026-11-10",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-10T02:00:00+24:00",
        ],
    )
    def test_refused_forms_name_the_field(self, text: str) -> None:
        """What fromisoformat takes but RFC 3339 does not is refused, naming the field."""
        with pytest.raises(InstantError, match=r"^start: "):
            parse_instant(text, "start")

    def test_naive_time_is_refused_as_naive(self) -> None:
        """A time without offset says so, and is never given the host's zone."""
        with pytest.raises(InstantError, match="expected a UTC offset: add Z or") as caught:
            parse_instant("2026-11-10T02:00:00", "at")
        assert caught.value.naive

    def test_now_only_when_given(self) -> None:
        """'now' is the caller's now where it passes one, and an error elsewhere."""
        assert parse_instant(" NOW ", "at", now=NOW) == NOW
        with pytest.raises(InstantError, match="at: expected an RFC 3339 timestamp"):
            parse_instant("now", "at")

    def test_epoch_only_when_asked(self) -> None:
        """Numbers are epoch seconds where epoch=True; booleans and infinities never."""
        assert parse_instant(AT_TWO.timestamp(), "ts", epoch=True) == AT_TWO
        assert instant_seconds(1.5, "ts", epoch=True) == 1.5
        with pytest.raises(InstantError, match="ts: expected"):
            parse_instant(AT_TWO.timestamp(), "ts")
        with pytest.raises(InstantError, match="or epoch seconds, got True"):
            parse_instant(True, "ts", epoch=True)
        with pytest.raises(InstantError, match="finite"):
            parse_instant(float("inf"), "ts", epoch=True)

    def test_offset_is_kept(self) -> None:
        """The instant keeps the offset it was written with."""
        parsed = parse_instant("2026-11-10T03:00:00+01:00", "start")
        assert parsed.utcoffset() == timedelta(hours=1)

    @given(
        st.datetimes(
            min_value=datetime(1970, 1, 2),
            max_value=datetime(9998, 12, 31),
            timezones=st.sampled_from(
                [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
            ),
        )
    )
    def test_round_trip(self, moment: datetime) -> None:
        """Every aware datetime written as RFC 3339 reads back as itself."""
        assert parse_instant(moment.isoformat(), "t") == moment


# Strings close to RFC 3339, so the fast path and the slow path both get exercised.
_digits = st.text("0123456789", min_size=1, max_size=10)
_near = st.builds(
    lambda base, sep, frac, off, lead: lead + base.replace("T", sep) + frac + off,
    st.sampled_from(["2026-11-10T02:00:00", "2026-02-29T23:59:60", "0001-01-01T00:00:00"]),
    st.sampled_from(["T", "t", " ", "_"]),
    st.one_of(st.just(""), _digits.map(lambda d: "." + d), _digits.map(lambda d: "," + d)),
    st.sampled_from(["Z", "z", "+01:00", "-00:30", "+0100", "+01", "", "+24:00", "+01:00:00"]),
    st.sampled_from(["", " "]),
)


class TestResultsFastPath:
    @given(st.one_of(_near, st.text(max_size=30)))
    def test_fast_path_agrees_with_parse_instant(self, ts: str) -> None:
        """parse_lines' inlined timestamp check accepts exactly what parse_instant accepts,
        with the same instant."""
        line = json.dumps({"ts": ts, "target": "a", "ok": True})
        parsed = parse_lines([line])
        try:
            expected: float | str = parse_instant(ts, "ts", epoch=True).timestamp()
        except InstantError as exc:
            expected = str(exc)
        if isinstance(expected, str):
            assert parsed.epochs == ()
            assert parsed.invalid[0].message == expected
        else:
            assert parsed.epochs == (expected,)
