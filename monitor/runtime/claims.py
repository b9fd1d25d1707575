"""Claims filed with the vendor: recorded so that the "claim deadline approaching with an
unclaimed credit" alert stops once the claim is in.

A claim is recorded per SLA and month (``POST /api/v1/claims``) and kept in the store's
key-value table, so it survives restarts. ``slawatch_claim_filed`` shows it for the previous
month, the one whose deadline is running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.instants import parse_instant
from monitor.sla.calendar import Month

KV_KEY = "claims_filed"


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
                filed_at=parse_instant(entry["filed_at"], "filed_at"),
                reference=str(entry.get("reference", "")),
            )
        except (KeyError, TypeError, ValueError):
            continue
        out[claim.key] = claim
    return out


def claims_to_kv(claims: dict[str, Claim]) -> dict[str, Any]:
    return {key: claim.to_json() for key, claim in sorted(claims.items())}
