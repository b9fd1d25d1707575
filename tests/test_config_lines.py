"""The line reader (issue 20, cl32): ``loader._plain_lines`` reads a file written in the simple
block style straight from its lines, in place of libyaml's events. Whenever it returns data, the
event walk (``_plain_events``, itself held to ``read_yaml`` by ``test_config_fast``) returns the
same data, value for value and type for type; anything it is not sure of, it declines.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import cycle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import load_config, loader
from monitor.config.loader import _plain_lines, read_events, read_plain_yaml
from tests.test_config_fast import VALID, same

events = read_events
"""The event walk's data, or ``None`` where it declines (a syntax error included)."""


def agree(text: str) -> dict[str, Any] | None:
    lined = _plain_lines(text)
    if lined is not None:
        walked = events(text)
        assert walked is not None, text
        assert same(lined, walked), text
    return lined


COMMON = st.sampled_from(
    [
        "a",
        "a b",
        "http://h:9/p?q=1&r=2",
        "2026-12-01T00:00:00+01:00",
        "-1",
        "10",
        "99.9",
        "true",
        "",
        "30s",
        "'q'",
        '"1000.00"',
        "[a, b]",
        "[]",
        "{below: 99.9, credit_percent: 10}",
    ]
)
ANY = st.sampled_from(
    [
        "a",
        "a b",
        "a  b",
        "http://h:9/p?q=1&r=2",
        "x:y",
        "a :b",
        "a - b",
        "a ? b",
        "-1",
        "-.5",
        "-x",
        "- x",
        "~",
        "null",
        "",
        "true",
        "No",
        "on",
        "10",
        "010",
        "0x1f",
        "1:30",
        "99.9",
        "1e3",
        ".inf",
        ".nan",
        "+1",
        "1_000",
        "2026-12-01",
        "2026-12-01T00:00:00+01:00",
        "30s",
        "=",
        "?x",
        ":x",
        "a:",
        "a: b",
        "a #b",
        "a#b",
        "#x",
        "&a x",
        "*a",
        "!x y",
        "!!str 5",
        "|",
        ">",
        "%x",
        "@x",
        "'q'",
        "'it''s'",
        "'a #b'",
        "'a' # c",
        '"d"',
        '"a\\tb"',
        '"a #b"',
        '"a # b" # c',
        '"x" # c',
        '"it\'s"',
        '""',
        "''",
        '"x" y',
        "[]",
        "[ ]",
        "{}",
        "[a, b]",
        "[a,b]",
        "[ a , b ]",
        "[a, ]",
        "[, a]",
        "[a, [b]]",
        "[a b]",
        "[x:y]",
        "[a: b]",
        "['a', \"b\"]",
        "['a,b']",
        "['a', 'b'] # c",
        "[-1, .5, ~, 1e3, 010]",
        "[a] b",
        "[-x]",
        "[- x]",
        "{a: - x}",
        "{a: -x}",
        "[?x]",
        "[a, ?b]",
        "[:x]",
        "[a#b]",
        "[a #b]",
        "[!x]",
        "[&a x]",
        "[*a]",
        "[%x]",
        "[@x]",
        "[x:y, a: b]",
        "{a: x:y}",
        "{a: b c}",
        "[a b, c]",
        "[1:30]",
        "[010, 0x1f]",
        "[null, ~, yes, '']",
        "{a: [b]}",
        "[{a: 1}]",
        "['a''b']",
        '["a\\\\"b"]',
        "[a,  b ,c]",
        "[ ]  # c",
        "{a: 1,b: 2}",
        "{ a: 1 }",
        "{a: 1}",
        "{a:1}",
        "{a: 1, a: 2}",
        "{a: 1, b: [c]}",
        "{'a': 1}",
        "{a: b: c}",
        "{on: 1}",
        "{a: }",
        "{below: 99.9, credit_percent: 10}",
        "{a: 'x'} # c",
        "é",
        "a\tb",
        "a\rb",
        "a\x07b",
        "1000.00",
        '"1000.00"',
        "...",
        "---",
        "a ... b",
        "a # b # c",
    ]
)
GOOD_KEYS = st.sampled_from(["a", "b", "c", "name", "kind", "url", "x-y", "a.b", "_k", "k" * 40])
BAD_KEYS = st.sampled_from(["on", "null", "true", "1", "'q'", "<<", "-k"])
SCALARS = st.one_of(COMMON, ANY)
KEYS = st.one_of(GOOD_KEYS, GOOD_KEYS, BAD_KEYS)


def _tree(scalars: st.SearchStrategy[str], keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(st.tuples(keys, inner), max_size=4, unique_by=lambda kv: kv[0]).map(
                lambda kv: ("map", kv)
            ),
            st.lists(st.tuples(keys, inner), max_size=4).map(lambda kv: ("map", kv)),
            st.lists(inner, max_size=4).map(lambda items: ("seq", items)),
        ),
        max_leaves=14,
    )


def _render(node: Any, indent: int, noise: Iterator[int], out: list[str], lead: str = "") -> None:
    """Block style, with the noise a person's file has: comments, blank lines, trailing spaces,
    odd indentation steps (most of which YAML reads otherwise or refuses)."""

    def line(text: str) -> None:
        extra = next(noise)
        if extra == 1:
            out.append(" " * indent + "# a comment")
        elif extra == 2:
            out.append("")
        elif extra == 3:
            text += "   # says why"
        elif extra == 4:
            text += "  "
        elif extra == 5:
            text = " " + text
        elif extra == 11:
            out.append(text)  # twice: a duplicate key, or a list item again
        out.append(text)

    def step() -> int:
        return {6: 0, 7: 1, 8: 4}.get(next(noise), 2)

    pad = " " * indent
    kind, items = node
    if not items:
        line(f"{pad}{lead}{'{}' if kind == 'map' else '[]'}")
        return
    first = True
    for item in items:
        start = lead if first else " " * len(lead)
        first = False
        if kind == "map":
            key, child = item
            head = f"{pad}{start}{key}:"
        else:
            child = item
            head = f"{pad}{start}-" + (" " if next(noise) == 12 else "")
        if not isinstance(child, str) and not child[1] and next(noise) != 10:
            child = "{}" if child[0] == "map" else "[]"  # written on the key's line
        if isinstance(child, str):
            line(f"{head} {child}" if child else head)
        elif kind == "seq" and child[0] == "map" and child[1] and next(noise) != 9:
            # "- key: value", the mapping's keys at the column after the dash.
            _render(child, indent + len(start), noise, out, lead="- ")
        else:
            line(head)
            _render(child, indent + len(start) + step(), noise, out)


_CLEAN = st.lists(
    st.tuples(GOOD_KEYS, _tree(st.deferred(lambda: COMMON), st.deferred(lambda: GOOD_KEYS))),
    min_size=1,
    max_size=5,
    unique_by=lambda kv: kv[0],
)
_CLEAN_NOISE = st.lists(st.integers(0, 60).filter(lambda n: n not in (6, 9, 10)), min_size=1)
_ANYTHING = st.lists(
    st.tuples(KEYS, _tree(st.deferred(lambda: SCALARS), st.deferred(lambda: KEYS))),
    min_size=1,
    max_size=5,
)
_ANY_NOISE = st.lists(st.integers(0, 40), min_size=1, max_size=40)


@st.composite
def _documents(draw: st.DrawFn) -> str:
    """Half of them written as a file is (the common scalars and keys; comments, blank lines,
    trailing spaces, indentation steps of 1, 2 or 4, now and then a line twice or one space
    further in), so that most
    of those are read from their lines; half with anything YAML might make of a line."""
    clean = draw(st.booleans())
    kv = draw(_CLEAN if clean else _ANYTHING)
    noise = draw(_CLEAN_NOISE if clean else _ANY_NOISE)
    out: list[str] = []
    _render(("map", kv), 0, cycle(noise), out)
    return "\n".join(out) + "\n"


class TestLinesEqualTheEvents:
    @settings(max_examples=1500, deadline=None)
    @given(_documents())
    def test_any_document_is_read_as_the_events_read_it_or_declined(self, text: str) -> None:
        """Generated documents with every kind of scalar, key, flow collection, comment,
        blank line, trailing space and indentation step: whatever the line reader accepts, the
        event walk reads the same."""
        agree(text)

    @pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
    def test_shipped_configurations_agree(self, path: Path) -> None:
        agree(path.read_text(encoding="utf-8"))

    @pytest.mark.parametrize(
        "name", ["demo.yaml", "minimal.yaml", "report.yaml"], ids=lambda name: name
    )
    def test_the_examples_are_read_from_their_lines(self, name: str) -> None:
        """The examples (comments after values, quoted fees, flow lists) take the line path."""
        (path,) = [p for p in VALID if p.name == name]
        assert agree(path.read_text(encoding="utf-8")) is not None

    @pytest.mark.parametrize(
        "name", ["demo.yaml", "minimal.yaml", "report.yaml"], ids=lambda name: name
    )
    def test_the_examples_load_to_the_configuration_the_events_give(
        self, name: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (path,) = [p for p in VALID if p.name == name]
        from_lines = load_config(path)
        monkeypatch.setattr(loader, "_plain_lines", lambda text: None)
        assert load_config(path) == from_lines

    def test_the_bench_configuration_is_read_from_its_lines(self) -> None:
        """A configuration shaped like the start-up bench's is read from its lines, equal to
        the events (every flow collection a new object, as the events make it)."""
        lines = ["monitor:", "  name: bench", "  listen: 127.0.0.1:9", "targets:"]
        for i in range(20):
            lines += [
                f"  - name: t{i:05d}",
                "    kind: http",
                "    interval: 30s",
                "    http:",
                f"      url: http://127.0.0.1:9/t/t{i:05d}",
            ]
        lines += ["services:", "  - name: svc0", "    targets: [t00000]", "slas:"]
        for i in range(2):
            lines += [
                f"  - name: sla{i}",
                "    objective: 99.9",
                '    monthly_fee: "1000.00"',
                "    credit_tiers:",
                "      - {below: 99.9, credit_percent: 10}",
            ]
        text = "\n".join(lines) + "\n"
        data = agree(text)
        assert data is not None
        assert read_plain_yaml(text) == data
        first, second = (sla["credit_tiers"] for sla in data["slas"])
        assert first == second
        assert first is not second
        assert first[0] is not second[0]

    @pytest.mark.parametrize(
        "text",
        [
            "a: 1\na: 2\n",
            "a:\n- x\n",
            "a: x\n  y\n",
            "a: 1\n b: 2\n",
            "a:\n    b: 1\n  c: 2\n",
            "- a\n",
            "  a: 1\n",
            "a: 'x # c' # d\n",
            "a: 'x #' # c\n",
            "a:\tb\n",
            "a: b\r\n",
            "a: \u00e9\n",
            "---\na: 1\n",
            "a: |\n  x\n",
            "on: 1\n",
            "a: " + "9" * 5000 + "\n",
            "k" * 129 + ": 1\n",
            "a: [x,\n  y]\n",
            "# only a comment\n",
            "",
        ],
    )
    def test_declines_what_it_is_not_sure_of(self, text: str) -> None:
        """Duplicates, a list at its key's column, continued scalars, a list or indented root,
        quotes around a comment, tabs, CRs, non-ASCII, markers, block scalars, keys YAML
        reads as other than text, a number too long for int(), a long key, flow over lines,
        nothing at all: the events decide."""
        assert _plain_lines(text) is None
