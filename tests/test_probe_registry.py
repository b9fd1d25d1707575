"""The probe kinds' table (probes.registry): every kind named resolves to its module's options
model and probe function, though each module is imported only when its kind is looked up
(issue 20, cf30), so a misspelt row would otherwise surface only in a configuration naming it."""

from __future__ import annotations

import subprocess
import sys

from pydantic import BaseModel

from probes.registry import PROBE_KINDS


def test_every_kind_resolves_to_an_options_model_and_a_probe() -> None:
    assert len(PROBE_KINDS) == len(list(PROBE_KINDS)) >= 7
    for name in PROBE_KINDS:
        kind = PROBE_KINDS[name]
        assert kind.name == name
        assert issubclass(kind.options, BaseModel), name
        assert callable(kind.run), name
        assert kind.summary, name
        assert PROBE_KINDS[name] is kind  # one ProbeKind per name, however often looked up
    assert "no_such_kind" not in PROBE_KINDS


def test_looking_up_http_imports_no_sip_module() -> None:
    code = (
        "import sys\n"
        "from probes.registry import PROBE_KINDS\n"
        "PROBE_KINDS['http']\n"
        "print(sorted(m for m in sys.modules if m.startswith('probes.sip')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"
