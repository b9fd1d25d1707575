"""The JSON Lines probe-result reader and its aggregation into bucket tallies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.reports.results import (
    UNSPECIFIED_REASON,
    ResultsError,
    parse_lines,
    parse_timestamp,
    read_results,
    tally_results,
)
from monitor.sla.calendar import Month, month_grid
from monitor.sla.policy import Tally

GRID = month_grid(Month(2026, 11), "UTC", 300)
T0 = GRID.start_epoch


class TestParseTimestamp:
    @pytest.mark.parametrize(
        ("value", "epoch"),
        [
            ("2026-11-01T00:00:00Z", T0),
            ("2026-11-01T01:00:00+01:00", T0),
            ("2026-11-01 00:00:30.500Z", T0 + 30.5),
            ("2026-10-31T20:00:00-04:00", T0),
            (T0, T0),
            (T0 + 0.25, T0 + 0.25),
        ],
    )
    def test_accepted_forms(self, value: object, epoch: float) -> None:
        """RFC 3339 with Z or an offset, or epoch seconds."""
        assert parse_timestamp(value) == epoch

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("2026-11-01T00:00:00", "naive times are refused"),
            ("2026-11-01", "expected an RFC 3339 timestamp"),
            ("2026-13-01T00:00:00Z", "expected an RFC 3339 timestamp"),
            (True, "or epoch seconds, got True"),
            (None, "got None"),
            (float("nan"), "finite"),
        ],
    )
    def test_refused_forms_name_the_value(self, value: object, message: str) -> None:
        """Anything else is refused naming the value."""
        with pytest.raises(ValueError, match=message):
            parse_timestamp(value)


class TestParseLines:
    def test_valid_lines_become_columns(self) -> None:
        """Fields land in parallel columns; an empty error is no error; blank lines skipped."""
        lines = [
            '{"ts": "2026-11-01T00:00:10Z", "target": "sip", "ok": true, "latency_ms": 12}\n',
            "\n",
            '{"ts": 1793491230, "target": "sip", "ok": false, "error": "timeout", "x": 1}\n',
            '{"target": "web", "ok": false, "error": "", "ts": "2026-11-01T00:00:40Z"}',
        ]
        results = parse_lines(lines)
        assert results.targets == ("sip", "sip", "web")
        assert results.oks == (True, False, False)
        assert results.errors == (None, "timeout", None)
        assert results.epochs[0] == T0 + 10
        assert (results.lines, results.invalid) == (4, ())

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("not json", "expected a JSON object, got invalid JSON"),
            ("[1, 2]", "expected a JSON object, got list"),
            ('{"ts": "2026-11-01T00:00:00Z", "ok": true}', "target: expected a value"),
            (
                '{"ts": "2026-11-01T00:00:00Z", "target": "", "ok": true}',
                "target: expected a non-empty",
            ),
            (
                '{"ts": "2026-11-01T00:00:00Z", "target": "a", "ok": "yes"}',
                "ok: expected true or false, got 'yes'",
            ),
            (
                '{"ts": "2026-11-01T00:00:00Z", "target": "a", "ok": 1}',
                "ok: expected true or false, got 1",
            ),
            (
                '{"ts": "2026-11-01T00:00:00", "target": "a", "ok": true}',
                "ts: expected a UTC offset",
            ),
            ('{"ts": "yesterday", "target": "a", "ok": true}', "ts: expected an RFC 3339"),
            (
                '{"ts": 1, "target": "a", "ok": true, "latency_ms": -3}',
                "latency_ms: expected a non-negative number, got -3",
            ),
            (
                '{"ts": 1, "target": "a", "ok": true, "latency_ms": NaN}',
                "latency_ms: expected a non-negative number, got nan",
            ),
            (
                '{"ts": 1, "target": "a", "ok": true, "latency_ms": "5"}',
                "latency_ms: expected a non-negative",
            ),
            (
                '{"ts": 1, "target": "a", "ok": false, "error": 503}',
                "error: expected a string, got 503",
            ),
            ('{"ts": 1, "target": "a", "ok": true} trailing', "invalid JSON"),
        ],
    )
    def test_invalid_lines_are_numbered_and_explained(self, line: str, message: str) -> None:
        """Each invalid line keeps its number and a message naming the key and value."""
        good = '{"ts": 1, "target": "a", "ok": true}'
        results = parse_lines([good, line, good])
        assert len(results) == 2
        assert [bad.line for bad in results.invalid] == [2]
        assert message in results.invalid[0].message


class TestReadResults:
    def test_refuses_invalid_input_by_default(self, tmp_path: Path) -> None:
        """Invalid lines stop the read; the error lists file:line: message."""
        path = tmp_path / "r.jsonl"
        path.write_text('{"ts": 1, "target": "a", "ok": true}\n{"ts": 1}\n', encoding="utf-8")
        with pytest.raises(ResultsError) as info:
            read_results(path)
        assert f"{path}:2: target: expected a value" in str(info.value)
        assert "--skip-invalid" in str(info.value)

    def test_skip_invalid_counts_them(self, tmp_path: Path) -> None:
        """With skipping, valid lines are kept and invalid ones counted."""
        path = tmp_path / "r.jsonl"
        path.write_text('{"ts": 1, "target": "a", "ok": true}\nnope\n', encoding="utf-8")
        results = read_results(path, skip_invalid=True)
        assert (len(results), len(results.invalid)) == (1, 1)

    def test_long_error_lists_are_cut(self, tmp_path: Path) -> None:
        """Hundreds of bad lines show the first twenty and a count of the rest."""
        path = tmp_path / "r.jsonl"
        path.write_text("x\n" * 25, encoding="utf-8")
        with pytest.raises(ResultsError, match="and 5 more invalid lines"):
            read_results(path)

    def test_binary_file_is_refused(self, tmp_path: Path) -> None:
        """Bytes that are not UTF-8 are refused with a clear message."""
        path = tmp_path / "r.jsonl"
        path.write_bytes(b"\xff\xfe\x00")
        with pytest.raises(ResultsError, match="expected UTF-8"):
            read_results(path)


class TestTallyResults:
    def test_counts_per_bucket_and_reason(self) -> None:
        """Results fall into the bucket holding their instant; reasons are counted."""
        rows = [
            {"ts": T0, "target": "sip", "ok": True},
            {"ts": T0 + 299.9, "target": "sip", "ok": False, "error": "timeout"},
            {"ts": T0 + 300, "target": "sip", "ok": False},
            {"ts": T0 + 10, "target": "web", "ok": False, "error": "timeout"},
            {"ts": T0 + 10, "target": "web", "ok": False, "error": "timeout"},
            {"ts": T0 - 1, "target": "sip", "ok": False},
            {"ts": GRID.end_epoch, "target": "sip", "ok": False},
        ]
        tallies = tally_results(parse_lines(json.dumps(r) for r in rows), GRID)
        assert tallies["sip"][T0] == Tally(ok=1, failed=1, reasons={"timeout": 1})
        assert tallies["sip"][T0 + 300] == Tally(failed=1, reasons={UNSPECIFIED_REASON: 1})
        assert tallies["web"][T0] == Tally(failed=2, reasons={"timeout": 2})
        assert set(tallies["sip"]) == {T0, T0 + 300}


class TestTallyProperties:
    @given(
        st.lists(
            st.tuples(
                st.floats(T0 - 3600, GRID.end_epoch + 3600, allow_nan=False),
                st.sampled_from(["a", "b"]),
                st.booleans(),
            ),
            max_size=60,
        )
    )
    def test_every_result_in_the_month_is_counted_once(
        self, rows: list[tuple[float, str, bool]]
    ) -> None:
        """Tallies add up to the results inside the month, each in the bucket holding it."""
        lines = [json.dumps({"ts": ts, "target": t, "ok": ok}) for ts, t, ok in rows]
        tallies = tally_results(parse_lines(lines), GRID)
        inside = [(ts, t, ok) for ts, t, ok in rows if GRID.start_epoch <= ts < GRID.end_epoch]
        assert sum(c.probes for col in tallies.values() for c in col.values()) == len(inside)
        for ts, target, ok in inside:
            cell = tallies[target][GRID.bucket_floor(ts)]
            assert (cell.ok if ok else cell.failed) >= 1


class TestFileForms:
    def test_bom_and_crlf_are_accepted(self, tmp_path: Path) -> None:
        """A UTF-8 byte-order mark and Windows line ends do not make lines invalid."""
        path = tmp_path / "r.jsonl"
        text = '{"ts": 1, "target": "a", "ok": true}\r\n{"ts": 2, "target": "a", "ok": false}\r\n'
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
        results = read_results(path)
        assert results.oks == (True, False)
        assert results.invalid == ()
