"""Who claims from whom: the contract identifiers a claim document is addressed with.

Configured per SLA and per support contract (the ``claim:`` section, ``monitor.config.claim``)
so the vendor's account manager can match a claim to the account and contract it is made
under without asking. Every field is optional and a single line: a claim is a plain-text
document whose first line is its only ``Subject:``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClaimParty:
    """The identifiers of one contract as the claim states them (empty: not configured)."""

    customer: str = ""
    account: str = ""
    contract_reference: str = ""
    vendor: str = ""
    claim_address: str = ""
    subject: str = ""
    """The claim's Subject; empty: the default of its kind ("SLA Claim", the form UJET's SLA
    requires, for availability; the clause for support credits)."""

    def __post_init__(self) -> None:
        for name in (
            "customer",
            "account",
            "contract_reference",
            "vendor",
            "claim_address",
            "subject",
        ):
            value = getattr(self, name)
            if "\n" in value or "\r" in value:
                raise ValueError(f"claim.{name}: expected a single line, got {value!r}")
