"""Claims filed with the vendor: recorded so that the "claim deadline approaching with an
unclaimed credit" alert stops once the claim is in.

A claim is recorded per SLA and month (``POST /api/v1/claims``) and kept in the store's
key-value table, so it survives restarts. ``slawatch_claim_filed`` shows it for the previous
month, the one whose deadline is running.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.instants import parse_instant
from monitor.sla.calendar import Month

KV_KEY = "claims_filed"
_REFERENCE = re.compile(r"^[\w .:/#@-]{0,200}$")


@dataclass(frozen=True)
class Claim:
    """A claim for one SLA's month: when it was filed and the vendor's ticket reference."""

    sla: str
    month: Month
    filed_at: datetime
    reference: str = ""

    @property
    def key(self) -> str:
        return f"{self.sla}|{self.month}"

    def to_json(self) -> dict[str, Any]:
        return {
            "sla": self.sla,
            "month": str(self.month),
            "filed_at": self.filed_at.isoformat(),
            "reference": self.reference,
        }


def claim_from_json(body: dict[str, Any], slas: set[str], now: datetime) -> Claim:
    """Validate a request body; errors name the field and what was expected."""
    allowed = {"sla", "month", "filed_at", "reference"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValueError(
            f"unknown field(s) {', '.join(unknown)}; expected some of {sorted(allowed)}"
        )
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


def claims_from_kv(value: Any) -> dict[str, Claim]:
    """The stored claims; entries that do not parse are skipped (the store is ours)."""
    out: dict[str, Claim] = {}
    if not isinstance(value, dict):
        return out
    for entry in value.values():
        try:
            claim = Claim(
                sla=str(entry["sla"]),
                month=Month.parse(str(entry["month"])),
                filed_at=datetime.fromisoformat(str(entry["filed_at"])),
                reference=str(entry.get("reference", "")),
            )
        except (KeyError, TypeError, ValueError):
            continue
        out[claim.key] = claim
    return out


def claims_to_kv(claims: dict[str, Claim]) -> dict[str, Any]:
    return {key: claim.to_json() for key, claim in sorted(claims.items())}
