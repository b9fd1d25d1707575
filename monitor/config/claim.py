"""The optional ``claim:`` section of an SLA and of a support contract: the contract's
identifiers as a claim states them (see ``monitor.sla.party``)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictStr

from monitor.sla.party import ClaimParty

_LINE = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")


def _one_line(value: str) -> str:
    # A control character (a newline above all) would let a value start a second
    # "Subject:" line or forge a header in the claim document.
    if not _LINE.match(value) or value != value.strip():
        raise ValueError("must be one line of 1 to 200 characters, no leading/trailing spaces")
    return value


ClaimLine = Annotated[StrictStr, AfterValidator(_one_line)]


class ClaimConfig(BaseModel):
    """``claim:``: customer, account, contract_reference, vendor, claim_address, subject."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer: ClaimLine | None = None
    account: ClaimLine | None = None
    contract_reference: ClaimLine | None = None
    vendor: ClaimLine | None = None
    claim_address: ClaimLine | None = None
    subject: ClaimLine | None = None

    def to_party(self) -> ClaimParty:
        return ClaimParty(
            customer=self.customer or "",
            account=self.account or "",
            contract_reference=self.contract_reference or "",
            vendor=self.vendor or "",
            claim_address=self.claim_address or "",
            subject=self.subject or "",
        )
