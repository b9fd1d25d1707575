"""``POST /api/v1/claims``: a claim recorded from a request body, each error naming its field."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from monitor.http.common import only_fields
from monitor.instants import parse_instant
from monitor.runtime.claims import Claim
from monitor.sla.calendar import Month

_REFERENCE = re.compile(r"^[\w .:/#@-]{0,200}$")


def claim_from_json(body: dict[str, Any], slas: set[str], now: datetime) -> Claim:
    """Validate a request body; errors name the field and what was expected."""
    only_fields(body, {"sla", "month", "filed_at", "reference"})
    sla = body.get("sla")
    if sla not in slas:
        raise ValueError(f"sla: expected one of {', '.join(sorted(slas))}, got {sla!r}")
    month_text = body.get("month")
    if not isinstance(month_text, str):
        raise ValueError(f"month: expected YYYY-MM, got {month_text!r}")
    month = Month.parse(month_text)
    filed = body.get("filed_at")
    filed_at = now if filed is None else parse_instant(filed, "filed_at")
    reference = body.get("reference", "")
    if not isinstance(reference, str) or not _REFERENCE.match(reference):
        raise ValueError(
            "reference: expected up to 200 letters, digits or .:/#@- (a ticket id), "
            f"got {reference!r}"
        )
    return Claim(sla=sla, month=month, filed_at=filed_at, reference=reference)
