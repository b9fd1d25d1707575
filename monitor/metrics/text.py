"""Writing exposition text by hand, byte for byte as ``generate_latest`` writes it.

The families with one series per target or per SLA are written as cached text (``TargetFamilies``,
``monitor.metrics.sla_text``) instead of going through prometheus_client objects: these are the
few rules of the Prometheus text format (0.0.4) they rely on.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.utils import floatToGoString


def header(name: str, help_text: str, kind: str) -> str:
    """``# HELP`` and ``# TYPE`` of one family, escaped as generate_latest escapes them."""
    escaped = help_text.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {escaped}\n# TYPE {name} {kind}\n"


def label_value(text: str) -> str:
    """A label value escaped for the text format (backslash, newline, double quote)."""
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def num(value: float) -> str:
    """``floatToGoString``, with the common case (a float's own repr) taken without its
    checks: it is called for every sample written."""
    number = float(value)
    if -1e6 < number < 1e6:
        return repr(number)
    return _go_float(number)


# prometheus_client leaves it unannotated; this is how generate_latest writes every value.
_go_float: Callable[[float], str] = floatToGoString
