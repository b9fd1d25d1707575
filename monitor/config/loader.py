"""YAML text -> plain data plus the line of every key and list item.

PyYAML's ``safe_load`` forgets where things were, silently keeps the last of two duplicate keys
and expands anchors; none of that is acceptable for a file that decides what a vendor is asked to
pay. So the file is composed into nodes (which carry marks) and walked here: duplicate keys,
non-string keys, anchors, aliases, merge keys and non-standard tags are problems, and floats keep
their source text (``YamlFloat``) so that money can be read as ``Decimal`` from what was written.
Timestamps stay strings: the models parse them and insist on an offset.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from monitor.config.errors import KeyPath, Problem, YamlFloat, format_path, show_value

_TAG = "tag:yaml.org,2002:"
_SURPRISING_NUMBER = re.compile(r"[-+]?(?:0[0-9_]+(?![.0-9_]*[.eE])|0[xXoObB]|[0-9][0-9_]*:)")
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))

MAX_FILE_BYTES = 8 * 1024 * 1024
"""A configuration file is refused past 8 MiB: 10,000 targets take about 2 MiB, while
``/dev/zero`` or a runaway generator would otherwise be read until memory runs out."""
MAX_DEPTH = 64
"""Mappings and lists nest at most this deep (a slawatch file needs 6): PyYAML composes
recursively, so a 5,000-deep document would otherwise end in ``RecursionError``."""


class ConfigFileError(Exception):
    """Raised by ``read_config_file`` when a file cannot be read as a configuration's text;
    the message is one line (the caller adds the file name)."""


def read_config_file(path: str | Path) -> str:
    """The UTF-8 text of ``path``, refusing more than ``MAX_FILE_BYTES`` without reading them.

    Reads at most one byte past the cap, so a device (``/dev/zero``), a FIFO or a huge file
    costs 8 MiB at worst.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigFileError(f"cannot read file: {exc.strerror or exc}") from exc
    except ValueError as exc:  # an embedded NUL in the path
        raise ConfigFileError(f"cannot read file: {exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigFileError(
            f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB: "
            "not a slawatch configuration (10,000 targets take about 2 MiB)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"must be UTF-8 text: {exc.reason} at byte {exc.start}") from exc


class _TooDeep(Exception):
    """Raised while composing when mappings/lists nest deeper than ``MAX_DEPTH``."""

    def __init__(self, line: int) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH} levels at line {line}")
        self.line = line


class _AliasNode(ScalarNode):
    """Stands where an alias (``*name``) was written, so the walk can report it at its place."""


class _Recording(Composer):
    """A composer that records anchors and replaces aliases instead of expanding them."""

    anchored: dict[int, str]
    depth: int = 0
    # Provided by the parser the composer is mixed with (PyYAML's or libyaml's).
    check_event: Callable[..., bool]
    get_event: Callable[[], Any]
    peek_event: Callable[[], Any]

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            return _AliasNode(_TAG + "null", event.anchor, event.start_mark, event.end_mark)
        event = self.peek_event()
        if isinstance(event, yaml.CollectionStartEvent) and self.depth >= MAX_DEPTH:
            mark = event.start_mark
            raise _TooDeep(1 if mark is None else mark.line + 1)
        anchor = getattr(event, "anchor", None)
        # Anchors are dropped before composing so a later alias cannot resolve to the node.
        if anchor is not None:
            event.anchor = None
        self.depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if anchor is not None and node is not None:
            self.anchored[id(node)] = anchor
        return node


class _PyLoader(_Recording, yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self.anchored = {}


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _CLoader(_Recording, CParser, SafeConstructor, Resolver):
        # libyaml's parser under PyYAML's composer (the part overridden above): a
        # 10,000-target file is read in about 2 s instead of 10 s.
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self.anchored = {}


def _loader(text: str, pure: bool) -> _Recording:
    if pure or not yaml.__with_libyaml__:
        return _PyLoader(text)
    return _CLoader(text)


@dataclass(frozen=True)
class YamlDocument:
    """The file's data as plain Python values, and the 1-based line of each key path."""

    data: Any
    lines: Mapping[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int:
        """The line of ``path``, or of its nearest ancestor that exists (a missing key's map)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1


class _Walker:
    def __init__(self, anchored: Mapping[int, str]) -> None:
        self.anchored = anchored
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()

    def problem(self, line: int, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(line, format_path(path), message))

    def walk(self, node: Node, path: KeyPath) -> Any:
        line = node.start_mark.line + 1
        self.lines.setdefault(path, line)
        if isinstance(node, _AliasNode):
            self.problem(
                line, path, f"aliases are not allowed (write the value out), got *{node.value}"
            )
            return None
        anchor = self.anchored.get(id(node))
        if anchor is not None:
            self.problem(line, path, f"anchors are not allowed (write plain data), got &{anchor}")
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _TAG + "seq":
                self._bad_tag(node, path)
            return [self.walk(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node, path)

    def _bad_tag(self, node: Node, path: KeyPath) -> None:
        line = node.start_mark.line + 1
        shown = "!!" + node.tag.removeprefix(_TAG) if node.tag.startswith(_TAG) else node.tag
        self.problem(line, path, f"YAML tags are not allowed (write plain data), got {shown}")

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        if node.tag != _TAG + "map":
            self._bad_tag(node, path)
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode) or isinstance(key_node, _AliasNode):
                self.problem(key_line, path, "keys must be plain strings, got a complex key")
                continue
            if key_node.tag == _TAG + "merge":
                self.problem(key_line, path, "merge keys (<<) are not allowed: write the keys out")
                continue
            if key_node.tag != _TAG + "str":
                key = self._scalar(key_node, path)
                self.problem(
                    key_line,
                    path,
                    f"keys must be strings (quote it), got {show_value(key)}",
                )
                continue
            key = key_node.value
            if not key.isprintable():
                # The key would be printed raw in key paths: a line break would split the
                # one-line error; no slawatch key has control characters.
                self.problem(key_line, path, f"keys must be printable text, got {key!r}")
                continue
            key_path = (*path, key)
            if key in out:
                self.problem(
                    key_line,
                    key_path,
                    f"duplicate key (first written on line {first_line[key]}): "
                    "YAML would silently keep only the last one",
                )
                continue
            first_line[key] = key_line
            self.lines[key_path] = key_line
            out[key] = self.walk(value_node, key_path)
        return out

    def _scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            self._bad_tag(node, path)
            return node.value
        if tag in (_TAG + "int", _TAG + "float") and _SURPRISING_NUMBER.match(node.value):
            # YAML 1.1 reads 010 as 8, 0x10 as 16 and 1:30 as 90: never what a fee or a
            # percentage meant, so the file must say it plainly.
            self.problem(
                node.start_mark.line + 1,
                path,
                "write numbers in plain decimal (YAML 1.1 reads a leading 0 as octal, "
                f"0x as hex and 1:30 as 90; quote it if it is text), got {node.value}",
            )
            return None
        if tag == _TAG + "float":
            value = self._constructor.construct_yaml_float(node)
            return YamlFloat(value, node.value)
        if tag in (_TAG + "str", _TAG + "timestamp"):
            return node.value
        try:
            return self._constructor.construct_object(node)
        except ValueError:
            # int() refuses more than 4,300 digits (sys.get_int_max_str_digits): a number
            # no contract writes; said here at its line, not as a traceback.
            self.problem(
                node.start_mark.line + 1,
                path,
                f"numbers must be shorter (no slawatch value needs {len(node.value)} digits), "
                f"got {show_value(node.value)}",
            )
            return None


def read_yaml(text: str, source: str, *, pure: bool = False) -> tuple[YamlDocument, list[Problem]]:
    """Compose ``text`` into a ``YamlDocument`` and the structural problems found on the way.

    A syntax error is returned as a single problem at its line and column (nothing can be
    checked past it); an empty file is a problem too. ``pure`` forces PyYAML's own parser
    (the fallback when libyaml is missing).
    """
    if len(text) > MAX_FILE_BYTES:
        return YamlDocument(None), [
            Problem(1, "", f"{source} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        ]
    loader = _loader(text, pure)
    try:
        node = loader.get_single_node()
    except _TooDeep as exc:
        return YamlDocument(None), [
            Problem(
                exc.line,
                "",
                f"mappings and lists nest deeper than {MAX_DEPTH} levels: "
                "not a slawatch configuration",
            )
        ]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        column = mark.column + 1 if mark is not None else 1
        what = ": ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        return YamlDocument(None), [
            Problem(line, "", f"YAML syntax error at column {column}: {what}")
        ]
    except yaml.YAMLError as exc:
        # A ReaderError (a NUL or other control character) renders over two lines.
        what = " ".join(str(exc).split())
        return YamlDocument(None), [Problem(1, "", f"cannot read YAML: {what}")]
    finally:
        dispose = getattr(loader, "dispose", None)
        if dispose is not None:
            dispose()
    if node is None:
        return YamlDocument(None), [
            Problem(1, "", f"{source} is empty: expected a mapping with targets, services and slas")
        ]
    walker = _Walker(loader.anchored)
    data = walker.walk(node, ())
    return YamlDocument(data, walker.lines), walker.problems


# -- the fast path (issue 20) ------------------------------------------------------------------
# A valid file needs no line numbers: they only place problems. So a file is first read
# straight from libyaml's events into plain data, without nodes, marks kept or key paths
# recorded, and refusing nothing itself: anything the walk above would report (an anchor,
# an alias, a tag, a complex, duplicate or non-string key, a surprising number, deep nesting,
# a syntax error, several documents) sends the caller to ``read_yaml``, which reports it at its
# line. The caller also goes there when the data does not validate, for the lines of its
# problems. At 10,000 SLAs this reads the file in about a third of ``read_yaml``'s time.

_STR = _TAG + "str"
_INT = _TAG + "int"
_FLOAT = _TAG + "float"
_TIMESTAMP = _TAG + "timestamp"
_KEY = object()  # a mapping waiting for its next key


def _implicit_tag(value: str) -> str:
    """The tag YAML's resolver gives a plain scalar (``Resolver.resolve`` without path
    resolvers, which slawatch never adds)."""
    table = Resolver.yaml_implicit_resolvers
    for tag, regexp in [*table.get(value[0] if value else "", ()), *table.get(None, ())]:
        if regexp.match(value):
            return str(tag)
    return _STR


def read_plain_yaml(text: str) -> dict[str, Any] | None:
    """The data of ``text`` when it is one plain mapping that ``read_yaml`` reads without a
    problem (then equal to its ``YamlDocument.data``), else ``None``: call ``read_yaml``."""
    if not yaml.__with_libyaml__ or len(text) > MAX_FILE_BYTES:
        return None
    lined = _plain_lines(text)
    if lined is not None:
        return lined
    return read_events(text)


def read_events(text: str) -> dict[str, Any] | None:
    """``text``'s data by the event walk (libyaml's events), or ``None`` where the walk
    declines (a syntax error included): what the line reader falls back to."""
    parser = CParser(text)
    try:
        return _plain_events(parser.get_event)
    except yaml.YAMLError:
        return None
    finally:
        parser.dispose()


def _plain_events(next_event: Callable[[], Any]) -> dict[str, Any] | None:
    # Iterative (an explicit stack), so depth costs no recursion; MAX_DEPTH still applies.
    # Issue 20 (me24): the open container, whether it is a mapping and its pending key are
    # locals (the parents' on ``stack``), and a plain scalar's meaning is looked up once per
    # spelling (``as_value``, ``as_key``): ``tests/test_config_plain_events.py``
    # holds this equal to the walk it replaced on any document.
    if type(next_event()) is not yaml.StreamStartEvent:
        return None
    if type(next_event()) is not yaml.DocumentStartEvent:
        return None  # an empty file
    scalar_event, mapping_start, sequence_start = (
        yaml.ScalarEvent,
        yaml.MappingStartEvent,
        yaml.SequenceStartEvent,
    )
    mapping_end, sequence_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
    as_value: dict[str, Any] = {}  # a plain scalar's text -> its value, or _DECLINE
    as_key: dict[str, bool] = {}  # a scalar's text -> whether it may be a mapping's key
    constructor = SafeConstructor()
    stack: list[tuple[Any, bool, Any]] = []  # the parents: (container, is a mapping, key)
    top: Any = None  # the open container (None before the root)
    in_mapping = False
    key: Any = _KEY
    depth_left = MAX_DEPTH - 1
    while True:
        event = next_event()
        kind = type(event)
        if kind is scalar_event:
            if event.anchor is not None or event.tag is not None:
                return None
            text = event.value
            plain = event.implicit[0]
            if in_mapping and key is _KEY:
                fit = as_key.get(text) if plain else None
                if fit is None:
                    fit = (not plain or _implicit_tag(text) == _STR) and text.isprintable()
                    if plain:
                        as_key[text] = fit
                if not fit or text in top:
                    return None
                key = text
                continue
            if plain:
                value = as_value.get(text, _UNSEEN)
                if value is _UNSEEN:
                    value = as_value[text] = _plain_value(text, constructor)
                if value is _DECLINE:
                    return None
            else:
                value = text
        elif kind is mapping_start or kind is sequence_start:
            if event.anchor is not None or event.tag is not None:
                return None
            if top is not None and len(stack) + 1 >= depth_left:
                return None
            if in_mapping and key is _KEY:
                return None  # a complex key
            if top is not None:
                stack.append((top, in_mapping, key))
            in_mapping = kind is mapping_start
            top = {} if in_mapping else []
            key = _KEY
            continue
        elif kind is mapping_end or kind is sequence_end:
            value = top
            if not stack:
                break
            top, in_mapping, key = stack.pop()
        else:  # an alias, or anything a well-formed single document does not hold here
            return None
        if top is None:
            return None  # a scalar as the whole document: not a mapping
        if in_mapping:
            top[key] = value
            key = _KEY
        else:
            top.append(value)
    if type(next_event()) is not yaml.DocumentEndEvent:
        return None
    if type(next_event()) is not yaml.StreamEndEvent:
        return None  # another document follows
    return value if type(value) is dict else None


_UNSEEN = object()
_DECLINE = object()  # a plain scalar read_yaml would report (or read otherwise): decline


def _plain_value(text: str, constructor: SafeConstructor) -> Any:
    """A plain scalar's value as ``read_yaml`` reads it, or ``_DECLINE``: immutable, so one
    object per spelling (a float's ``YamlFloat`` keeps that spelling)."""
    tag = _implicit_tag(text)
    if tag in (_STR, _TIMESTAMP):
        return text
    if tag not in _SCALAR_TAGS or (tag in (_INT, _FLOAT) and _SURPRISING_NUMBER.match(text)):
        return _DECLINE
    if tag == _FLOAT:
        return YamlFloat(constructor.construct_yaml_float(ScalarNode(tag, text)), text)
    try:  # int, bool, null: immutable, so one object per spelling
        return constructor.construct_object(ScalarNode(tag, text))
    except ValueError:  # an int too long for int(): read_yaml reports it
        return _DECLINE


# -- the line reader (issue 20, cl32) -----------------------------------------------------------
# Most of the plain read is libyaml's events themselves: PyYAML makes a Python event and two
# marks for each of a 10,000-SLA file's 300,000 events (0.40 s of the read's 0.55 s). A file as
# slawatch's examples and the bench write it is block mappings and lists, one key a line, with
# plain or simply quoted scalars and one-line flow lists and mappings of such scalars, comments
# on their own lines or after a value: that is read here straight from its lines, each scalar
# meaning what ``_plain_value`` says, as in the event walk. Anything else (a tab, a character
# outside printable ASCII, an escape, a comment that might be inside quotes, a scalar over
# several lines, a line indented where YAML might read it another way, anything the walk would
# decline) declines, and the events read the file as before (0.29 s instead of 0.55 s at
# 10,000 SLAs): ``tests/test_config_lines.py`` holds this reader equal to the event walk.

_KEY_TEXT = r"[A-Za-z_][A-Za-z0-9_.-]{0,127}"  # libyaml refuses a key over 1,024 characters
# One line, spaces on its right removed: its indentation, the "- " of a list item, and either
# "key:" with the value after it (if any), or the rest (a list item's value, or a comment);
# printable ASCII only (a tab, a carriage return or a control character declines).
_LINE = re.compile(rf"( *)(- +)?(?:({_KEY_TEXT}):(?: +([ -~]*))?|([ -~]*))", re.ASCII)
# A plain scalar in a block: no indicator first, no ": " or " #" inside, no ":" last (and a
# conservative set of characters: anything else declines).
_BLOCK_PLAIN = re.compile(
    r"(?:[A-Za-z0-9_./~+]|-(?=[0-9.]))(?:[A-Za-z0-9_./~+=@%&$?()-]+|:(?=[^ ])| +(?=[^ :#]))*+"
)
# A plain scalar inside [...] or {...}: one word without ":" or flow indicators.
_FLOW_PLAIN = re.compile(r"(?:[A-Za-z0-9_./~+]|-(?=[0-9.]))[A-Za-z0-9_./~+=@%&$()-]*")
_FLOW_PAIR = re.compile(rf"({_KEY_TEXT}): +(.+)", re.ASCII)
_DOUBLE_QUOTED = re.compile(r'"[^"\\]*"')  # no escapes: the text between the quotes
_SINGLE_QUOTED = re.compile(r"'[^']*'")
_LINE_DEPTH = 32  # open blocks; deeper files decline (the events apply MAX_DEPTH)


def _plain_lines(text: str) -> dict[str, Any] | None:
    """``text``'s data as ``_plain_events`` reads it, when it is written in the simple block
    style described above; else ``None`` (read the events)."""
    if not text.isascii():
        return None
    constructor = SafeConstructor()
    scalars: dict[str, Any] = {}  # a scalar as written -> its value, or _DECLINE
    flows: dict[str, tuple[Any, ...] | None] = {}  # a flow collection as written -> its items
    as_key: dict[str, bool] = {}
    null = _plain_value("", constructor)  # a key with nothing after it, nor below it

    def value_of(written: str) -> Any:
        value = scalars.get(written, _UNSEEN)
        if value is not _UNSEEN:
            return value
        first = written[0]
        if first == "[" or first == "{":
            items = flows.get(written, _UNSEEN)
            if items is _UNSEEN:
                items = flows[written] = _flow_items(written, scalar_of, key_fits)
            if items is None:
                return _DECLINE
            # A new list or dict each time: equal to the events', and nothing shared to mutate.
            return list(items) if first == "[" else dict(items)
        value = scalars[written] = scalar_of(written, _BLOCK_PLAIN)
        return value

    def scalar_of(written: str, plain: re.Pattern[str]) -> Any:
        first = written[0]
        if first == '"':
            return written[1:-1] if _DOUBLE_QUOTED.fullmatch(written) else _DECLINE
        if first == "'":
            return written[1:-1] if _SINGLE_QUOTED.fullmatch(written) else _DECLINE
        if plain.fullmatch(written) is None:
            return _DECLINE
        return _plain_value(written, constructor)

    def key_fits(key: str) -> bool:
        fit = as_key.get(key)
        if fit is None:
            fit = as_key[key] = _implicit_tag(key) == _STR
        return fit

    # The open blocks, innermost last: (the column of its keys or dashes, its dict or list).
    stack: list[tuple[int, Any]] = []
    pending: dict[str, Any] | None = None  # a mapping whose last key has no value yet
    pending_key = ""
    pending_column = 0
    top: Any = None  # the innermost open block (the last on ``stack``), its column, its kind
    top_column = -1
    in_mapping = True
    match_line = _LINE.fullmatch
    for line in text.split("\n"):
        line = line.rstrip(" ")
        if not line:
            continue
        if "#" in line:
            if line.lstrip(" ")[0] == "#":
                continue  # a comment line
            # A comment after the content (" #") is cut off. Before it, no quote, or one quoted
            # scalar just before it (else the " #" might be inside quotes: declined).
            cut = line.find(" #")
            if cut >= 0:
                line = line[:cut].rstrip(" ")
                quotes = line.count('"') + line.count("'")
                if quotes and (quotes != 2 or line[-1] not in "'\"" or line.count(line[-1]) != 2):
                    return None
        found = match_line(line)
        if found is None:
            return None
        indent, dash, key, value, rest = found.groups()
        column = len(indent)
        if pending is not None:
            if column > pending_column:
                # The key's value is the block that starts here: a mapping or a list (a scalar
                # alone on the next line, or a list at the key's own column, declines).
                if dash is None and key is None:
                    return None
                in_mapping = dash is None
                top = pending[pending_key] = {} if in_mapping else []
                top_column = column
                stack.append((column, top))
                if len(stack) > _LINE_DEPTH:
                    return None
            else:
                pending[pending_key] = null
            pending = None
        elif not stack:  # the first line: the root mapping, at column 0
            if column or dash is not None or key is None:
                return None
            top, top_column, in_mapping = {}, 0, True
            stack.append((0, top))
        if column != top_column:
            # Back out of the blocks deeper than this line: it must be at one's column.
            while stack[-1][0] > column:
                stack.pop()
            top_column, top = stack[-1]
            if top_column != column:
                return None  # between two blocks' columns: a continued scalar, or an error
            in_mapping = type(top) is dict
        if in_mapping:
            if dash is not None or key is None:
                return None
            target = top
        else:
            if dash is None:
                return None
            if key is None:
                item = scalars.get(rest, _UNSEEN)
                if item is _UNSEEN:
                    item = value_of(rest)
                if item is _DECLINE:
                    return None
                top.append(item)
                continue
            # "- key: ...": a mapping in the list, its keys at the column after the dash.
            column += len(dash)
            target = {}
            top.append(target)
            stack.append((column, target))
            if len(stack) > _LINE_DEPTH:
                return None
            top, top_column, in_mapping = target, column, True
        fit = as_key.get(key)
        if fit is None:
            fit = key_fits(key)
        if not fit or key in target:
            return None
        if value is None:
            pending, pending_key, pending_column = target, key, column
            continue
        item = scalars.get(value, _UNSEEN)
        if item is _UNSEEN:
            item = value_of(value)
        if item is _DECLINE:
            return None
        target[key] = item
    if not stack:
        return None  # nothing but comments and blank lines
    if pending is not None:
        pending[pending_key] = null
    root: dict[str, Any] = stack[0][1]
    return root


def _flow_items(
    written: str,
    scalar_of: Callable[[str, re.Pattern[str]], Any],
    key_fits: Callable[[str], bool],
) -> tuple[Any, ...] | None:
    """The items of a one-line ``[a, b]`` (values) or ``{k: v}`` (key-value pairs), or
    ``None``: anything nested, quoted with a comma or written otherwise declines."""
    mapping = written[0] == "{"
    if written[-1] != ("}" if mapping else "]"):
        return None
    inside = written[1:-1]
    if not inside.strip(" "):
        return ()
    items: list[Any] = []
    keys: set[str] = set()
    for part in inside.split(","):
        part = part.strip(" ")
        if not part:
            return None
        if mapping:
            pair = _FLOW_PAIR.fullmatch(part)
            if pair is None:
                return None
            key, part = pair.groups()
            if not key_fits(key) or key in keys:
                return None
            keys.add(key)
        value = scalar_of(part, _FLOW_PLAIN)
        if value is _DECLINE:
            return None
        items.append((key, value) if mapping else value)
    return tuple(items)


def lines_of(text: str, paths: Iterable[KeyPath]) -> YamlDocument:
    """The lines ``read_yaml`` records for ``paths`` and their ancestors (no data), for a text
    ``read_plain_yaml`` accepted: where a model's or a cross-check's problems are, looked up
    only once there are problems (issue 20), from libyaml's events again."""
    wanted = {path[:end] for path in paths for end in range(len(path) + 1)}
    lines: dict[KeyPath, int] = {}
    parser = CParser(text)
    # One frame per open mapping or list: its path, and the key being read (a mapping) or the
    # index of the next item (a list).
    paths_open: list[KeyPath] = []
    at: list[Any] = []
    try:
        while True:
            event: Any = parser.get_event()
            kind = type(event)
            if kind in (yaml.StreamStartEvent, yaml.DocumentStartEvent):
                continue
            if kind in (yaml.DocumentEndEvent, yaml.StreamEndEvent):
                break
            if kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                paths_open.pop()
                at.pop()
                _advance(at)
                continue
            if at and at[-1] is _KEY and kind is yaml.ScalarEvent:
                key_path = (*paths_open[-1], event.value)
                if key_path in wanted:
                    lines[key_path] = event.start_mark.line + 1
                at[-1] = event.value
                continue
            path = (*paths_open[-1], at[-1]) if at else ()
            if path in wanted:
                lines.setdefault(path, event.start_mark.line + 1)
            if kind is yaml.MappingStartEvent:
                paths_open.append(path)
                at.append(_KEY)
            elif kind is yaml.SequenceStartEvent:
                paths_open.append(path)
                at.append(0)
            else:
                _advance(at)
    finally:
        parser.dispose()
    return YamlDocument(None, lines)


def _advance(at: list[Any]) -> None:
    # A value was read: a mapping waits for its next key, a list moves to its next item.
    if at:
        at[-1] = at[-1] + 1 if type(at[-1]) is int else _KEY
