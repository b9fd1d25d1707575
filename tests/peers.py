"""Finding the real peer programs (Kamailio, baresip, Prometheus, ...) the tests run against.

scripts/test.sh installs them and sets SLAWATCH_REQUIRE_PEERS=1; then a missing binary is a
test failure, never a silent skip. On a developer machine without them the test is skipped
with the package to install named.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def missing_peer(message: str) -> NoReturn:
    """Something a test needs from the host is absent (a program, root, IPv6 loopback): a
    failure under SLAWATCH_REQUIRE_PEERS=1 (CI installs and provides everything), otherwise a
    skip that names what to install or enable."""
    if os.environ.get("SLAWATCH_REQUIRE_PEERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def require_binary(name: str, package: str | None = None) -> str:
    """The absolute path of ``name``; skips (or fails under SLAWATCH_REQUIRE_PEERS=1) if absent."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path:
        return path
    missing_peer(f"{name} not found: install the Debian package {package or name}")
