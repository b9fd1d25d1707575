"""A bound computed from another field that overflows (a DTMF pause of 400 digits makes the
longest scripted call infinite) is still one problem line naming the field, never an internal
error (found by tests/test_hostile_config.py's structured fuzz)."""

from __future__ import annotations

import math

import pytest

from monitor.config import ConfigError, parse_config_text
from monitor.config.fieldtypes import format_duration

pytestmark = pytest.mark.timeout(60)

HUGE = "1" + "0" * 400 + "s"

CONFIG = f"""
monitor:
  name: overflow
targets:
  - name: ivr-call
    kind: sip_call
    interval: 2m
    timeout: 45s
    sip_call:
      uri: sip:+15550100@127.0.0.1
      duration: 12s
      dtmf:
        - {{digits: "1", pause: "{HUGE}"}}
"""


class TestOverflowingBound:
    def test_format_duration_of_an_infinite_bound(self) -> None:
        """``format_duration`` of a non-finite number of seconds is a word, not an
        OverflowError; finite values are written as before."""
        assert format_duration(math.inf) == "forever"
        assert format_duration(1e308) == "forever"  # finite, but not in milliseconds
        assert format_duration(5400) == "1h30m"

    def test_an_infinite_longest_call_is_one_problem_on_the_timeout(self) -> None:
        """The file is refused with one line on ``targets[0].timeout`` saying the call it
        allows has no bound."""
        with pytest.raises(ConfigError) as raised:
            parse_config_text(CONFIG, "overflow.yaml")
        text = str(raised.value)
        assert "targets[0].timeout: must cover the longest sip_call run" in text
        assert "(forever)" in text
        assert "Traceback" not in text
        assert "internal error" not in text
