"""Hostile configuration files: deep nesting, devices, huge files, random bytes (issue 11).

``check-config`` gates deployments and reloads, so whatever it is fed it answers with one line
per problem and exit status 1 -- never a traceback, never unbounded memory -- and the daemon's
reload reports such a file as a failed reload.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from monitor.cli.check_config import run as check_config
from monitor.config import ConfigError, load_config
from monitor.config.loader import MAX_DEPTH, MAX_FILE_BYTES, read_yaml
from monitor.runtime import daemon as daemon_module
from tests.daemon_harness import free_port, running_daemon, wait_until
from tests.test_daemon import http_target, sla, write_config
from tests.web_target import web_target

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent


def deep_mapping(depth: int) -> str:
    """``{a: {a: ... 1}}``: ``depth`` mappings nested in flow style, on one line."""
    return "{a: " * depth + "1" + "}" * depth + "\n"


def check(path: Path) -> tuple[int, list[str]]:
    """Run ``check-config`` in-process; its exit status and stderr lines."""
    out, err = io.StringIO(), io.StringIO()
    status = check_config(argparse.Namespace(config=str(path)), out, err)
    return status, err.getvalue().splitlines()


def assert_one_line_problems(path: Path, status: int, lines: list[str]) -> None:
    """Exit status 1; each line names the file (one problem per line) and a summary ends it."""
    assert status == 1, lines
    assert lines, "no problem reported"
    assert lines[-1].endswith(f"in {path}"), lines[-1]
    for line in lines[:-1]:
        assert line.startswith(f"{path}:"), line
    assert not any("Traceback" in line for line in lines)


class TestNesting:
    @pytest.mark.parametrize("pure", [False, True], ids=["libyaml", "pyyaml"])
    def test_five_thousand_deep_mapping_is_one_problem(self, pure: bool) -> None:
        """A 5,000-deep mapping is refused with one problem, with both parsers (it raised
        RecursionError)."""
        document, problems = read_yaml(deep_mapping(5000), "deep.yaml", pure=pure)
        assert document.data is None
        assert [(p.line, p.message) for p in problems] == [
            (
                1,
                f"mappings and lists nest deeper than {MAX_DEPTH} levels: "
                "not a slawatch configuration",
            )
        ]

    def test_the_cap_is_at_sixty_four(self) -> None:
        """64 nested mappings are plain data; 65 are refused."""
        document, problems = read_yaml(deep_mapping(MAX_DEPTH), "ok.yaml")
        assert problems == []
        assert document.data is not None
        _, problems = read_yaml(deep_mapping(MAX_DEPTH + 1), "deep.yaml")
        assert len(problems) == 1

    def test_deep_mapping_through_check_config_subprocess(self, tmp_path: Path) -> None:
        """``slawatch check-config`` on a 5,000-deep mapping prints two lines and exits 1 (it
        printed a 2,997-line traceback)."""
        path = tmp_path / "deep.yaml"
        path.write_text("targets: " + deep_mapping(5000), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "monitor.cli", "check-config", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert done.returncode == 1
        assert done.stderr.splitlines() == [
            f"{path}:1: mappings and lists nest deeper than 64 levels: "
            "not a slawatch configuration",
            f"1 problem in {path}",
        ]

    @pytest.mark.parametrize("pure", [False, True], ids=["libyaml", "pyyaml"])
    def test_five_thousand_nested_lists(self, pure: bool) -> None:
        """5,000 nested flow lists: one problem on line 1 (libyaml's own nesting limit may
        speak first, with its own words)."""
        _, problems = read_yaml("targets: " + "[" * 5000 + "]" * 5000, "deep.yaml", pure=pure)
        assert len(problems) == 1
        assert problems[0].line == 1
        assert "nest" in problems[0].message


class TestSize:
    def test_dev_zero_is_refused_after_the_cap(self) -> None:
        """``/dev/zero`` is refused once 8 MiB are read (it ran to a MemoryError at 3.8 GB)."""
        with pytest.raises(ConfigError) as caught:
            load_config("/dev/zero")
        assert str(caught.value) == (
            "/dev/zero:1: file is larger than 8 MiB: not a slawatch configuration "
            "(10,000 targets take about 2 MiB)"
        )

    def test_huge_sparse_file_is_refused(self, tmp_path: Path) -> None:
        """A 4 GiB file (sparse: no disk used) is refused without being read."""
        path = tmp_path / "huge.yaml"
        with path.open("wb") as handle:
            handle.truncate(4 * 1024**3)
        status, lines = check(path)
        assert_one_line_problems(path, status, lines)
        assert "larger than 8 MiB" in lines[0]

    def test_file_at_the_cap_is_read(self, tmp_path: Path) -> None:
        """Exactly 8 MiB (a comment) is read and judged on its content, not its size."""
        path = tmp_path / "big.yaml"
        path.write_bytes(b"#" * (MAX_FILE_BYTES - 1) + b"\n")
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert "is empty" in str(caught.value)

    def test_text_past_the_cap_is_refused_in_process(self) -> None:
        """Text handed to the parser directly is capped too (an API or test caller)."""
        _, problems = read_yaml("#" * (MAX_FILE_BYTES + 1), "big.yaml")
        assert [p.message for p in problems] == ["big.yaml is larger than 8 MiB"]


class TestOddBytes:
    def test_nul_byte_is_one_line(self, tmp_path: Path) -> None:
        """A NUL character is reported on one line (PyYAML's message spans two)."""
        path = tmp_path / "nul.yaml"
        path.write_bytes(b"targets: [a\x00b]\n")
        status, lines = check(path)
        assert_one_line_problems(path, status, lines)

    def test_directory_and_missing_file(self, tmp_path: Path) -> None:
        """A directory or a missing path is one line each."""
        for path in (tmp_path, tmp_path / "missing.yaml"):
            status, lines = check(path)
            assert_one_line_problems(path, status, lines)
            assert "cannot read file" in lines[0]

    def test_key_with_line_break_stays_one_line(self, tmp_path: Path) -> None:
        """A quoted key holding a line break cannot split a problem over two lines."""
        path = tmp_path / "key.yaml"
        path.write_text('"targets\\nx": 1\n', encoding="utf-8")
        status, lines = check(path)
        assert_one_line_problems(path, status, lines)


class TestRegexps:
    def test_patterns_are_refused_on_one_line_with_the_reason(self, tmp_path: Path) -> None:
        """A broken pattern and one Python only warns about ("possible nested set": a later
        Python reads ``[[``, ``--``, ``&&`` in a set as set syntax) are each one line naming
        the option, the reason and the pattern, for HTTP, TCP and DNS; nothing is printed by
        the warnings module (it printed two lines naming probes/http.py, and the file was
        accepted)."""
        path = tmp_path / "regexps.yaml"
        path.write_text(
            "targets:\n"
            "  - name: page\n"
            "    kind: http\n"
            "    http:\n"
            "      url: http://example.com/\n"
            "      fail_if_body_matches_regexp: ['[[a]']\n"
            "      fail_if_body_not_matches_regexp: ['(unclosed']\n"
            "  - name: mail\n"
            "    kind: tcp\n"
            "    tcp:\n"
            "      host: 192.0.2.1\n"
            "      port: 25\n"
            "      query_response: [{expect: '^220 [a--z]'}]\n"
            "  - name: names\n"
            "    kind: dns\n"
            "    dns:\n"
            "      query_name: a.example\n"
            "      resolver: 192.0.2.53\n"
            "      validate_answer_rrs: {fail_if_matches_regexp: ['[a&&b]']}\n",
            encoding="utf-8",
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            status, lines = check(path)
        assert [str(w.message) for w in caught] == []
        assert_one_line_problems(path, status, lines)
        later = "must be a regular expression that a later Python reads the same way"
        escape = "escape a literal character with a backslash"
        assert lines[:-1] == [
            f"{path}:6: targets[0].http.fail_if_body_matches_regexp: {later} (possible nested "
            f"set at position 1: {escape}), got ['[[a]']",
            f"{path}:7: targets[0].http.fail_if_body_not_matches_regexp: must be a regular "
            "expression (missing ), unterminated subpattern at position 0), got ['(unclosed']",
            f"{path}:13: targets[1].tcp.query_response[0].expect: {later} (possible set "
            f"difference at position 7: {escape}), got '^220 [a--z]'",
            f"{path}:19: targets[2].dns.validate_answer_rrs.fail_if_matches_regexp: {later} "
            f"(possible set intersection at position 2: {escape}), got ['[a&&b]']",
        ]

    def test_the_escaped_pattern_is_accepted(self, tmp_path: Path) -> None:
        """The fix the message names works: ``\\[`` keeps today's meaning, and is accepted."""
        path = tmp_path / "escaped.yaml"
        path.write_text(
            "targets:\n"
            "  - name: page\n"
            "    kind: http\n"
            "    http: {url: 'http://example.com/', fail_if_body_matches_regexp: ['[\\[a]']}\n",
            encoding="utf-8",
        )
        status, lines = check(path)
        assert (status, lines) == (0, [])


_HOSTILE_FRAGMENTS = [
    "targets:",
    "  - name: a",
    "    kind: http",
    "    http: {url: 'http://127.0.0.1:1/'}",
    "slas:",
    "  - {name: s, service: web, objective: 1e999999999, monthly_fee: -1e-999999999}",
    "monthly_fee: 1e999999999",
    "&a [*a]",
    "<<: *a",
    "!!python/object:os.system x",
    "? [a, b]\n: c",
    "{" * 200,
    "[" * 70 + "]" * 70,
    "interval: 1e308s",
    "timeout: 99999999999999999999999w",
    '"\\u0000": x',
    "- - - - -",
    "%YAML 1.1\n---",
    "--- |\n  text",
    "'\\x85'",
    "0x10: 010",
]


class TestFuzz:
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.binary(max_size=400))
    def test_random_bytes(self, tmp_path: Path, data: bytes) -> None:
        """Random bytes: exit status 1 and one line per problem, never an internal error."""
        path = tmp_path / "fuzz.yaml"
        path.write_bytes(data)
        status, lines = check(path)
        assert_one_line_problems(path, status, lines)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        parts=st.lists(
            st.one_of(
                st.sampled_from(_HOSTILE_FRAGMENTS),
                st.text(st.characters(codec="utf-8"), max_size=30),
            ),
            max_size=12,
        )
    )
    def test_hostile_yaml(self, tmp_path: Path, parts: list[str]) -> None:
        """Hostile YAML fragments in any order: the same contract as random bytes."""
        path = tmp_path / "fuzz.yaml"
        path.write_text("\n".join(parts), encoding="utf-8", errors="surrogatepass")
        status, lines = check(path)
        assert_one_line_problems(path, status, lines)


def _scalar_paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a scalar, mapping or list in ``data`` (the places a value can be wrong)."""
    paths = [path] if path else []
    if isinstance(data, dict):
        for key, value in data.items():
            paths += _scalar_paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            paths += _scalar_paths(value, (*path, index))
    return paths


def _replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {k: (_replaced(v, rest, value) if k == head else v) for k, v in data.items()}
    return [(_replaced(v, rest, value) if i == head else v) for i, v in enumerate(data)]


EXAMPLE = read_yaml((ROOT / "config" / "ujet-voice.yaml").read_text(encoding="utf-8"), "x")[0].data
hostile_scalars = st.one_of(
    st.sampled_from(
        [
            2**63,
            -(2**63),
            1e308,
            -1e308,
            -1,
            0,
            "",
            "1e999999999",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "1" * 500,
            "nan",
            "-0",
            None,
            True,
            "\u00e9\u202e",
            "1000000000000w",
            "0.0000001s",
            "1" + "0" * 400 + "s",
        ]
    ),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)


class TestStructuredFuzz:
    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_one_hostile_value_anywhere_in_a_real_config(
        self, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
    ) -> None:
        """config/ujet-voice.yaml with one value inside a section replaced by a hostile
        scalar: valid, or one line per problem, never an internal error."""
        inside = [p for p in _scalar_paths(EXAMPLE) if len(p) > 1]
        path = data.draw(st.sampled_from(inside), label="path")
        value = data.draw(hostile_scalars, label="value")
        file = tmp_path_factory.mktemp("fuzz") / "slawatch.yaml"
        # JSON is YAML, and writes 10**20 and every string exactly.
        file.write_text(json.dumps(_replaced(EXAMPLE, path, value)), encoding="utf-8")
        status, lines = check(file)
        if status == 0:
            return
        assert_one_line_problems(file, status, lines)


KNOWN_CRASHES = {
    # Found by the structured fuzz with lists, mappings and huge integers: the cross-section
    # checks (monitor/config/checks.py, monitor/config/support.py) indexed by unchecked values.
    "list_as_service_member": (("services", 0, "targets", 0), []),
    "mapping_as_target_name": (("targets", 0, "name"), {}),
    "huge_min_probes": (("slas", 0, "min_probes"), 10**400),
    "slas_not_a_list": (("slas",), 5),
}


class TestKnownCrashes:
    @pytest.mark.parametrize("name", sorted(KNOWN_CRASHES))
    def test_is_one_line_problem(self, tmp_path: Path, name: str) -> None:
        """Each value is refused with one line per problem, not an internal error."""
        path, value = KNOWN_CRASHES[name]
        file = tmp_path / "slawatch.yaml"
        file.write_text(json.dumps(_replaced(EXAMPLE, path, value)), encoding="utf-8")
        status, lines = check(file)
        assert_one_line_problems(file, status, lines)


class TestDaemonReload:
    def test_deep_file_on_sighup_is_a_failed_reload(self, tmp_path: Path) -> None:
        """SIGHUP with a 5,000-deep file: slawatch_config_last_reload_successful turns 0 and the
        old configuration keeps running (the RecursionError left it at 1)."""
        port = free_port()
        with web_target() as target:
            target.set("a", "up")
            config = write_config(
                tmp_path,
                port,
                [http_target("a", target.url("a"))],
                [{"name": "web", "targets": ["a"]}],
                [sla("web-sla", "web")],
            )
            with running_daemon(config, port) as daemon:
                wait_until(
                    lambda: daemon.metric("slawatch_config_last_reload_successful") == 1.0,
                    10,
                    "first load counted as successful",
                )
                config.write_text(deep_mapping(5000), encoding="utf-8")
                daemon.signal(signal.SIGHUP)
                wait_until(
                    lambda: daemon.metric("slawatch_config_last_reload_successful") == 0.0,
                    20,
                    "reload flagged as failed",
                )
                assert "config_reload_rejected" in daemon.log()
                status = daemon.json("/api/v1/status")
                assert json.dumps(status).count('"a"') >= 1

    def test_any_exception_reading_the_file_is_a_failed_reload(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Whatever reading the new file raises -- here a RecursionError injected where PyYAML
        raised it before the depth cap -- is a failed reload, logged with its traceback, and
        the running configuration stays (only ConfigError was caught)."""
        path = write_config(
            tmp_path,
            free_port(),
            [http_target("a", "http://127.0.0.1:1/")],
            [{"name": "web", "targets": ["a"]}],
            [sla("web-sla", "web")],
        )
        running = daemon_module.Daemon(load_config(path), path)
        before = running.config

        def explode(_: object) -> None:
            raise RecursionError("maximum recursion depth exceeded")

        monkeypatch.setattr(daemon_module, "load_config", explode)
        with capture_logs() as logs:
            assert running.reload() is False
        assert running.health.reload_successful is False
        assert running.config is before
        assert [(e["event"], e["log_level"]) for e in logs] == [("config_reload_failed", "error")]
        assert logs[0]["exc_info"] is True
