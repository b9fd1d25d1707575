"""Finding the real peer programs (Kamailio, baresip, Prometheus, ...) the tests run against.

scripts/test.sh installs them and sets SLAWATCH_REQUIRE_PEERS=1; then a missing binary is a
test failure, never a silent skip. On a developer machine without them the test is skipped
with the package to install named.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_binary(name: str, package: str | None = None) -> str:
    """The absolute path of ``name``; skips (or fails under SLAWATCH_REQUIRE_PEERS=1) if absent."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path:
        return path
    message = f"{name} not found: install the Debian package {package or name}"
    if os.environ.get("SLAWATCH_REQUIRE_PEERS") == "1":
        pytest.fail(message)
    pytest.skip(message)
