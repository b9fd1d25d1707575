"""The plain reader's event walk (issue 20, me24): ``loader._plain_events``, rewritten for speed
(the open container in locals, each plain scalar's meaning looked up once per spelling), reads
any document exactly as the walk it replaced: the same data, value for value and type for type,
and the same documents declined. The replaced walk is kept here, verbatim, as the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from yaml._yaml import CParser
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode

from monitor.config.errors import YamlFloat
from monitor.config.loader import (
    _FLOAT,
    _INT,
    _KEY,
    _SCALAR_TAGS,
    _STR,
    _SURPRISING_NUMBER,
    _TIMESTAMP,
    MAX_DEPTH,
    _implicit_tag,
    _plain_events,
)
from tests.test_config_fast import _documents, same


def reference_events(next_event: Callable[[], Any]) -> dict[str, Any] | None:
    # Iterative (an explicit stack), so depth costs no recursion; MAX_DEPTH still applies.
    if type(next_event()) is not yaml.StreamStartEvent:
        return None
    if type(next_event()) is not yaml.DocumentStartEvent:
        return None  # an empty file
    tags: dict[str, str] = {}
    constructed: dict[tuple[str, str], Any] = {}
    floats: dict[str, float] = {}
    constructor = SafeConstructor()
    containers: list[Any] = []
    keys: list[Any] = []
    root: Any = _KEY
    while root is _KEY:
        event = next_event()
        kind = type(event)
        if kind is yaml.ScalarEvent:
            if event.anchor is not None or event.tag is not None:
                return None
            text = event.value
            tag = _STR
            if event.implicit[0]:
                found = tags.get(text)
                if found is None:
                    found = tags[text] = _implicit_tag(text)
                tag = found
            if containers and keys[-1] is _KEY and type(containers[-1]) is dict:
                if tag != _STR or not text.isprintable() or text in containers[-1]:
                    return None
                keys[-1] = text
                continue
            if tag in (_STR, _TIMESTAMP):
                value: Any = text
            elif tag not in _SCALAR_TAGS or (
                tag in (_INT, _FLOAT) and _SURPRISING_NUMBER.match(text)
            ):
                return None
            elif tag == _FLOAT:
                number = floats.get(text)
                if number is None:
                    number = floats[text] = constructor.construct_yaml_float(ScalarNode(tag, text))
                value = YamlFloat(number, text)
            else:  # int, bool, null: immutable, so one object per spelling
                key = (tag, text)
                if key not in constructed:
                    try:
                        constructed[key] = constructor.construct_object(ScalarNode(tag, text))
                    except ValueError:  # an int too long for int(): read_yaml reports it
                        return None
                value = constructed[key]
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            if event.anchor is not None or event.tag is not None:
                return None
            if len(containers) >= MAX_DEPTH - 1:
                return None
            if containers and keys[-1] is _KEY and type(containers[-1]) is dict:
                return None  # a complex key
            containers.append({} if kind is yaml.MappingStartEvent else [])
            keys.append(_KEY)
            continue
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            value = containers.pop()
            keys.pop()
        else:  # an alias, or anything a well-formed single document does not hold here
            return None
        if not containers:
            root = value
        elif type(containers[-1]) is list:
            containers[-1].append(value)
        else:
            containers[-1][keys[-1]] = value
            keys[-1] = _KEY
    if type(next_event()) is not yaml.DocumentEndEvent:
        return None
    if type(next_event()) is not yaml.StreamEndEvent:
        return None  # another document follows
    return root if type(root) is dict else None


def both(text: str) -> tuple[Any, Any]:
    """``text`` through the new walk and through the reference, each over its own parser
    (a syntax error is a decline, ``None``, as ``read_plain_yaml`` makes it)."""
    out = []
    for walk in (_plain_events, reference_events):
        parser = CParser(text)
        try:
            try:
                out.append(walk(parser.get_event))
            except yaml.YAMLError:  # read_plain_yaml declines it: the same as None
                out.append(None)
        finally:
            parser.dispose()
    return out[0], out[1]


def agree(text: str) -> None:
    new, old = both(text)
    if old is None:
        assert new is None
    else:
        assert same(new, old)


EXTRA = st.sampled_from(
    [
        "a: 1\na: 2\n",
        "a: {b: 1, b: 2}\n",
        "? [a]\n: 1\n",
        "a: &x [1]\nb: *x\n",
        "1: a\n",
        "'1': a\n",
        '"a\\tb": 1\n',
        "a: [1.5, 1.5, 2.50, .inf, -.inf, .nan]\n",
        "a: 1.0\nb: 1.0\nc: [1.0]\n",
        "a: 0o17\n",
        "a: 017\n",
        "a: 1_000\n",
        "a: 1:2:3\n",
        "a: " + "9" * 5000 + "\n",
        "a: b\n---\nc: d\n",
        "- a\n",
        "just text\n",
        "",
        "a: [1\n",
        "a: {b: [c, {d: e}], f: []}\n",
        "a: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2) + "\n",
        "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n",
        "a: " + "{b: " * (MAX_DEPTH - 2) + "1" + "}" * (MAX_DEPTH - 2) + "\n",
        "a: " + "{b: " * (MAX_DEPTH - 1) + "1" + "}" * (MAX_DEPTH - 1) + "\n",
        "a: !!str 1\n",
        "a: true\nb: True\nc: ~\nd: null\ne: 2026-12-01\n",
        "a:\n  - x\n  - y: 1\n    y: 2\n",
    ]
)


class TestPlainEventsEqualTheReference:
    """The rewritten walk against the walk it replaced."""

    @settings(max_examples=500, deadline=None)
    @given(_documents())
    def test_any_document_is_read_or_declined_the_same(self, text: str) -> None:
        """Any generated document (anchors, aliases, tags, duplicates, merge keys, non-string
        keys, surprising numbers, nesting) gives the same data or the same decline."""
        agree(text)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(EXTRA, min_size=1, max_size=3))
    def test_edge_documents_and_their_joins_are_read_the_same(self, parts: list[str]) -> None:
        """Duplicate keys at depth, complex keys, the depth bound on each side, repeated
        floats (one text per occurrence), several documents, scalar roots, syntax errors."""
        for text in (*parts, "".join(parts)):
            agree(text)

    @pytest.mark.parametrize(
        "text",
        ["a: 1.0\nb: 1.00\nc: 1.0\n", "a: [2.50, 2.50]\n"],
    )
    def test_a_float_keeps_the_text_it_was_written_with_each_time(self, text: str) -> None:
        """Equal spellings share a number, each occurrence keeps its own written text."""
        new, old = both(text)
        assert same(new, old)

    def test_the_bench_configuration_is_read_the_same(self, tmp_path: Any) -> None:
        """A configuration shaped like the start-up bench's (targets, services, SLAs with
        credit tables) is read identically."""
        lines = ["monitor:", "  name: bench", "targets:"]
        for i in range(50):
            lines += [
                f"  - name: t{i:05d}",
                "    kind: http",
                "    interval: 30s",
                "    timeout: 5s",
                "    http:",
                f"      url: http://127.0.0.1:9/t/t{i:05d}",
            ]
        lines += ["slas:", "  - name: s", "    objective: 99.9", "    credit_tiers:"]
        lines += [
            "      - {below: 99.9, credit_percent: 10}",
            "      - {below: 99.0, credit_percent: 25.0}",
        ]
        text = "\n".join(lines) + "\n"
        new, old = both(text)
        assert old is not None
        assert same(new, old)
