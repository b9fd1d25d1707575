"""The sealed month's digest: one definition for the writer and ``slawatch store check``."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(doc: Any) -> str:
    """The one JSON encoding digests are taken over (sorted keys, no spaces)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def seal_digest(doc: Any) -> str:
    """``sha256:<hex>`` of the canonical encoding of a sealed month's document."""
    return "sha256:" + hashlib.sha256(canonical(doc).encode("utf-8")).hexdigest()
