"""Issue 20 (memory): a loaded configuration shares equal frozen sub-models, field sets and
strings (``monitor.config.slim``), and nothing anyone can observe changes: equality, every
dump (with and without the fields given) and every value equal to the configuration validated
without sharing."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import Config, parse_config_text
from monitor.config.loader import read_plain_yaml
from monitor.config.model import registered_kinds

_TLS = ("", "        tls: {verify: false}\n", "        tls: {verify: true}\n", "        tls: {}\n")
_TIERS = (
    "      - {below: 99.9, credit_percent: 10}\n",
    "      - {below: 99.5, credit_percent: 25}\n",
)


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    """A file of 1-6 http targets (TLS options given or not, some equal), one service and
    one SLA per target (tiers drawn from two), some labels."""
    count = draw(st.integers(1, 6))
    lines = ["monitor:", "  name: slim", "targets:"]
    for index in range(count):
        lines += [
            f"  - name: t{index}",
            "    kind: http",
            f"    interval: {draw(st.sampled_from(['30s', '60s']))}",
        ]
        if draw(st.booleans()):
            lines.append("    labels: {team: web}")
        lines += ["    http:", f"      url: https://127.0.0.1:1/t{index}"]
        lines.append(draw(st.sampled_from(_TLS)).rstrip("\n").replace("        ", "      ", 1))
    lines.append("services:")
    for index in range(count):
        lines += [f"  - name: s{index}", f"    targets: [t{index}]"]
    lines.append("slas:")
    for index in range(count):
        lines += [
            f"  - name: sla{index}",
            f"    service: s{index}",
            "    objective: 99.9",
            '    monthly_fee: "1000.00"',
            "    currency: EUR",
            "    credit_tiers:",
            draw(st.sampled_from(_TIERS)).rstrip("\n"),
        ]
    return "\n".join(line for line in lines if line) + "\n"


def _plain(text: str) -> Config:
    """The same text validated without sharing anything."""
    data = read_plain_yaml(text)
    assert data is not None
    return Config.model_validate(data, context={"kinds": registered_kinds()})


def _walk(value: Any) -> list[Any]:
    """Every model and value under ``value``, depth first."""
    found = [value]
    if isinstance(value, Config) or hasattr(value, "__pydantic_fields_set__"):
        for item in value.__dict__.values():
            found += _walk(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found += _walk(item)
    return found


class TestSlimConfig:
    """A slimmed configuration equals the one validated without sharing."""

    @settings(max_examples=40, deadline=None)
    @given(text=config_texts())
    def test_equal_to_the_unshared_configuration(self, text: str) -> None:
        """Equality, dumps (exclude_unset too), JSON, field sets and every value read."""
        slimmed, plain = parse_config_text(text), _plain(text)
        assert slimmed == plain
        assert slimmed.model_dump() == plain.model_dump()
        assert slimmed.model_dump(exclude_unset=True) == plain.model_dump(exclude_unset=True)
        assert slimmed.model_dump_json() == plain.model_dump_json()
        for mine, theirs in zip(_walk(slimmed), _walk(plain), strict=True):
            assert type(mine) is type(theirs)
            assert mine == theirs
            if hasattr(mine, "__pydantic_fields_set__"):
                assert mine.model_fields_set == theirs.model_fields_set

    @settings(max_examples=20, deadline=None)
    @given(text=config_texts())
    def test_equal_sub_models_are_one(self, text: str) -> None:
        """Equal credit tiers and TLS options are one object each (what saves the memory),
        and the targets themselves stay apart."""
        config = parse_config_text(text)
        tiers = [sla.credit_tiers[0] for sla in config.slas]
        for a in tiers:
            for b in tiers:
                assert (a is b) == (a == b and a.model_fields_set == b.model_fields_set)
        tls = [target.options.tls for target in config.targets]  # type: ignore[attr-defined]
        for a in tls:
            for b in tls:
                assert (a is b) == (a == b and a.model_fields_set == b.model_fields_set)
        assert len({id(target) for target in config.targets}) == len(config.targets)
