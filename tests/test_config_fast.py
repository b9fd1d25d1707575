"""The configuration's fast path (issue 20): a valid file is read without line numbers, and
anything else goes through the recorded path, which reports every problem as before.

``read_plain_yaml`` may decline any document (the caller then reads it with ``read_yaml``),
but whenever it returns data, ``read_yaml`` finds no problem in that document and returns the
same data, value for value and type for type (a float keeps its written text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import ConfigError, load_config, parse_config_text
from monitor.config.errors import YamlFloat
from monitor.config.loader import MAX_DEPTH, lines_of, read_plain_yaml, read_yaml
from monitor.config.model import share_unchanged

ROOT = Path(__file__).resolve().parent.parent
VALID = sorted((ROOT / "config").rglob("*.yaml"))
INVALID = sorted((ROOT / "tests" / "config_invalid").glob("*.yaml"))


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types all the way down (``1 == 1.0 == True`` is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, YamlFloat):
        return a.text == b.text and (a == b or a != a)  # NaN is written .nan
    return bool(a == b)


def agrees(text: str) -> dict[str, Any] | None:
    """``read_plain_yaml(text)``, checked against ``read_yaml`` when it returns data."""
    plain = read_plain_yaml(text)
    if plain is not None:
        document, problems = read_yaml(text, "t.yaml")
        assert problems == []
        assert same(plain, document.data)
    return plain


SCALARS = st.sampled_from(
    [
        "a",
        "'quoted'",
        '"double"',
        "10",
        "010",
        "0x1f",
        "1:30",
        "99.9",
        "1e3",
        ".inf",
        ".nan",
        "-0.5",
        "true",
        "no",
        "null",
        "~",
        "",
        "2026-12-01",
        "2026-12-01T00:00:00Z",
        "=",
        "!!str 5",
        "!!int '7'",
        "!custom x",
        "&a 1",
        "*a",
        "'<<'",
        "http://h/p?a=1&b=2",
        "30s",
        '"10000.00"',
    ]
)
KEYS = st.sampled_from(["a", "b", "name", "'quoted key'", "10", "true", "null", "<<", "!!str k"])


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, list) and value and value[0] == "map":
        lines = []
        for key, item in value[1:]:
            if isinstance(item, str):
                lines.append(f"{pad}{key}: {item}")
            else:
                lines.append(f"{pad}{key}:")
                lines += _block(item, indent + 2)
        return lines or [f"{pad}{{}}"]
    if isinstance(value, list) and value and value[0] == "seq":
        lines = []
        for item in value[1:]:
            if isinstance(item, str):
                lines.append(f"{pad}- {item}")
            else:
                lines.append(f"{pad}-")
                lines += _block(item, indent + 2)
        return lines or [f"{pad}[]"]
    return [f"{pad}{value}"]


def _documents() -> st.SearchStrategy[str]:
    tree = st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(st.tuples(KEYS, inner), max_size=4).map(lambda kv: ["map", *kv]),
            st.lists(inner, max_size=4).map(lambda items: ["seq", *items]),
            st.lists(SCALARS, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        ),
        max_leaves=12,
    )
    top = st.lists(st.tuples(KEYS, tree), min_size=1, max_size=5)
    return top.map(lambda kv: "\n".join(_block(["map", *kv], 0)) + "\n")


class TestPlainReader:
    @settings(max_examples=400, deadline=None)
    @given(_documents())
    def test_any_document_read_plainly_is_read_the_same_with_lines(self, text: str) -> None:
        """Whenever the fast reader returns data, the recorded reader finds no problem in the
        document and returns the same data (duplicates, anchors, aliases, tags, merge keys,
        surprising numbers, non-string keys all go to the recorded reader)."""
        agrees(text)

    @pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
    def test_shipped_configurations_are_read_plainly(self, path: Path) -> None:
        """The shipped configurations take the fast path, with the data the recorded path
        gives."""
        assert agrees(path.read_text(encoding="utf-8")) is not None

    @pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
    def test_invalid_files_still_fail_with_their_lines(self, path: Path) -> None:
        """Every refused file is still refused, and every problem names a line: the fast
        reader never stands in for a file with a problem."""
        agrees(path.read_text(encoding="utf-8"))
        with pytest.raises(ConfigError) as raised:
            load_config(path)
        assert raised.value.problems
        for line in raised.value.lines():
            assert line.startswith(f"{path}:")

    @pytest.mark.parametrize("path", VALID + INVALID, ids=lambda p: p.name)
    def test_lines_looked_up_later_are_the_recorded_lines(self, path: Path) -> None:
        """For a file the fast reader accepts, the line ``lines_of`` finds for any key path
        (and a path below it that is not written) is the line ``read_yaml`` recorded."""
        text = path.read_text(encoding="utf-8")
        if read_plain_yaml(text) is None:
            return
        document, _ = read_yaml(text, path.name)
        paths = [*document.lines, ("monitor", "not_written"), ("slas", 99, "x")]
        found = lines_of(text, paths)
        for key_path in paths:
            assert found.line_of(key_path) == document.line_of(key_path), key_path
        for key_path in list(document.lines)[:: max(1, len(document.lines) // 20)]:
            assert lines_of(text, [key_path]).line_of(key_path) == document.line_of(key_path)

    @pytest.mark.parametrize(
        "text",
        [
            "a: 1\na: 2\n",
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: 010\n",
            "? [a]\n: 1\n",
            "1: a\n",
            "<<: {a: 1}\n",
            "a: 1\n---\nb: 2\n",
            "- 1\n",
            "",
            "a: [1\n",
            "a: =\n",
        ],
    )
    def test_declines_what_the_recorded_reader_reports(self, text: str) -> None:
        """Each thing the recorded reader reports (or a root that is not a mapping, or a syntax
        error) makes the fast reader decline."""
        assert read_plain_yaml(text) is None

    def test_a_number_too_long_for_int_is_a_problem_at_its_line(self) -> None:
        """A 5,000-digit integer (past ``int()``'s digit limit) is declined by the fast reader
        and reported as one line at its place, not raised as a traceback."""
        digits = "9" * 5000
        text = (
            "targets:\n"
            f"  - {{name: a, kind: tcp, tcp: {{host: 127.0.0.1, port: 9}}, interval: {digits}}}\n"
        )
        assert read_plain_yaml(text) is None
        with pytest.raises(ConfigError) as raised:
            parse_config_text(text, "x.yaml")
        (line,) = raised.value.lines()
        assert line.startswith("x.yaml:2: targets[0].interval: numbers must be shorter")

    def test_deep_nesting_is_declined_without_recursion(self) -> None:
        """Nesting past ``MAX_DEPTH`` is declined (the recorded reader reports it); 5,000 levels
        cost no recursion."""
        assert read_plain_yaml("a: " + "[" * 5000 + "]" * 5000 + "\n") is None
        assert read_plain_yaml("a: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)) is not None

    def test_a_valid_file_with_a_cross_check_problem_reports_its_line(self) -> None:
        """Data that reads plainly but fails a rule across sections is reported at its line by
        the recorded path."""
        text = (
            "targets:\n"
            "  - name: web\n"
            "    kind: http\n"
            "    http: {url: 'http://127.0.0.1:9/'}\n"
            "services:\n"
            "  - name: svc\n"
            "    targets: [nope]\n"
        )
        assert read_plain_yaml(text) is not None
        with pytest.raises(ConfigError) as raised:
            parse_config_text(text, "x.yaml")
        assert any(
            line.startswith("x.yaml:7: services[0].targets[0]") for line in raised.value.lines()
        )


NESTED = """\
targets:
  - {name: a, kind: tcp, tcp: {host: 127.0.0.1, port: 9}}
  - {name: b, kind: tcp, tcp: {host: 127.0.0.1, port: 9}}
services:
  - {name: top, services: [one, two], down_when: all}
  - {name: one, targets: [a]}
  - {name: two, targets: [b]}
slas:
  - {name: s1, service: one, objective: OBJ, monthly_fee: "10.00", currency: EUR}
  - {name: s2, service: top, objective: 99.9, monthly_fee: "10.00", currency: EUR}
  - {name: s3, service: two, objective: 99.9, monthly_fee: "10.00", currency: EUR}
"""


class TestShareUnchanged:
    @pytest.mark.parametrize("objective", ["99.9", "99.90", "99.5"])
    def test_equal_to_a_fresh_build_and_shares_only_what_is_written_the_same(
        self, objective: str
    ) -> None:
        """``share_unchanged`` gives exactly a fresh build's policies and services (values and
        the services' order); an SLA or service written exactly as before is the old object,
        and ``99.90`` is not taken for ``99.9``."""
        old = parse_config_text(NESTED.replace("OBJ", "99.9"))
        old_policies, old_defs = old.sla_policies(), old.service_defs()
        new = parse_config_text(NESTED.replace("OBJ", objective))
        fresh = parse_config_text(NESTED.replace("OBJ", objective))
        share_unchanged(new, old)
        assert new.sla_policies() == fresh.sla_policies()
        assert list(new.service_defs().items()) == list(fresh.service_defs().items())
        assert (new.sla_policies()[0] is old_policies[0]) == (objective == "99.9")
        assert str(new.sla_policies()[0].objective_percent) == objective
        assert new.sla_policies()[1] is old_policies[1]
        assert new.sla_policies()[2] is old_policies[2]
        assert new.service_defs()["one"] is old_defs["one"]
        assert new.service_defs()["two"] is old_defs["two"]


TIERS = """\
targets:
  - {name: a, kind: tcp, tcp: {host: 127.0.0.1, port: 9}}
  - {name: b, kind: tcp, tcp: {host: 127.0.0.1, port: 9}}
services:
  - {name: one, targets: [a]}
  - {name: two, targets: [b]}
slas:
  - name: s1
    service: one
    objective: 99.9
    monthly_fee: "10.00"
    currency: EUR
    credit_tiers: [{below: BELOW1, credit_percent: 10}]
  - name: s2
    service: two
    objective: OBJ2
    monthly_fee: "10.00"
    currency: EUR
    credit_tiers: [{below: BELOW2, credit_percent: 10}]
"""


class TestCreditTablesOnce:
    """Issue 20: a credit table written alike by many SLAs is validated once; what it means
    and every refusal stay those of a table validated on its own."""

    def test_a_table_written_alike_is_one_object(self) -> None:
        text = TIERS.replace("OBJ2", "99.9").replace("BELOW1", "99.9").replace("BELOW2", "99.9")
        config = parse_config_text(text)
        assert config.slas[0].credit_tiers is config.slas[1].credit_tiers
        assert config == parse_config_text(text)

    def test_a_table_fit_under_one_objective_is_still_checked_under_another(self) -> None:
        """The same table, already found fit under 99.9 (in this file and before it), is
        refused under 99.0 at its own line."""
        text = TIERS.replace("BELOW1", "99.9").replace("BELOW2", "99.9")
        parse_config_text(text.replace("OBJ2", "99.9"))
        with pytest.raises(ConfigError) as raised:
            parse_config_text(text.replace("OBJ2", "99.0"), "x.yaml")
        assert raised.value.lines() == [
            "x.yaml:19: slas[1].credit_tiers[0]: a tier with a credit must lie below the "
            "objective (99.0): bound it with below: 99.0"
        ]

    def test_a_refused_table_is_refused_each_time(self) -> None:
        text = TIERS.replace("OBJ2", "99.9").replace("BELOW1", "101").replace("BELOW2", "101")
        for _ in range(2):
            with pytest.raises(ConfigError) as raised:
                parse_config_text(text, "x.yaml")
            assert [line.split(": ", 1)[0] for line in raised.value.lines()] == [
                "x.yaml:13",
                "x.yaml:19",
            ]
