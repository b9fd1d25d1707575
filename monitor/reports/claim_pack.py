"""The claim pack: a month's claims, one document per contract, each with ONE Subject line,
and a grand total across availability SLAs and support contracts.

A document gathers what is claimed under one contract: the SLAs and support contracts whose
``claim.contract_reference`` is the same (each on its own when it has none). It opens with
its Subject and the parties (who claims, from whom, under which account and contract), then
one section per SLA (``monitor.sla.render.availability_claim_body``: outages with their bucket
bounds and first and last failed probe, every exclusion applied, the coverage, the evidence
files' digests) and per support contract (``monitor.support.report.support_claim_body``: the
late days that began in the month), and ends with the document's total. The pack ends with a
summary of every document and the grand total per currency; it is no claim itself.

Pure: month results, support summaries and evidence in, text out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING

from monitor.sla.month import MonthResult
from monitor.sla.party import ClaimParty
from monitor.sla.render import availability_claim_body, coverage_words

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.sla.evidence import SlaEvidence
    from monitor.support.contract import ContractSummary

AVAILABILITY_SUBJECT = "SLA Claim"
SUPPORT_SUBJECT = "Service Credit claim (Schedule 1, clause 5.1)"
DOCUMENT_SEPARATOR = "\n\n" + "=" * 78 + "\n\n"
_NO_PARTY = ClaimParty()


@dataclass(frozen=True)
class ClaimContext:
    """What the claim needs beyond the figures: the parties per SLA and per support contract
    (by name), the evidence per SLA, and the command that exports it (cited in the claim)."""

    sla_parties: Mapping[str, ClaimParty] = field(default_factory=lambda: MappingProxyType({}))
    support_parties: Mapping[str, ClaimParty] = field(default_factory=lambda: MappingProxyType({}))
    evidence: Mapping[str, SlaEvidence] | None = None
    export_hint: str = ""
    """``slawatch evidence export ...`` as the user would type it (``{sla}`` is replaced)."""


@dataclass(frozen=True)
class Section:
    """One SLA's or one support contract's part of a document."""

    heading: str
    party: ClaimParty
    lines: tuple[str, ...]
    amount: Decimal
    currency: str
    default_subject: str


@dataclass(frozen=True)
class ClaimDocument:
    """One claim: one contract, one month, one Subject."""

    key: str
    subject: str
    party: ClaimParty
    sections: tuple[Section, ...]

    @property
    def totals(self) -> dict[str, Decimal]:
        return _totals(self.sections)

    def text(self, month_name: str) -> str:
        party = self.party
        to = " ".join(
            part
            for part in (party.vendor, f"<{party.claim_address}>" if party.claim_address else "")
            if part
        )
        sender = ", ".join(
            part
            for part in (party.customer, f"account {party.account}" if party.account else "")
            if part
        )
        lines = [f"Subject: {self.subject}", ""]
        lines += [f"To: {to}"] if to else []
        lines += [f"From: {sender}"] if sender else []
        if party.contract_reference:
            lines.append(f"Contract reference: {party.contract_reference}")
        lines.append(f"Claim period: {month_name}")
        lines.append("")
        for number, section in enumerate(self.sections, start=1):
            if len(self.sections) > 1:
                lines += [f"Part {number}: {section.heading}", ""]
            lines += [*section.lines, ""]
        lines.append(f"Total requested in this claim: {_money(self.totals)}.")
        return "\n".join(lines)


def _totals(sections: Sequence[Section]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for section in sections:
        totals[section.currency] = totals.get(section.currency, Decimal(0)) + section.amount
    return dict(sorted(totals.items()))


def _money(totals: Mapping[str, Decimal]) -> str:
    return " + ".join(f"{amount} {currency}" for currency, amount in totals.items()) or "nothing"


def _key(party: ClaimParty, fallback: str) -> str:
    return f"contract {party.contract_reference}" if party.contract_reference else fallback


def claim_sections(
    results: Sequence[MonthResult],
    summaries: Sequence[ContractSummary],
    context: ClaimContext,
) -> list[tuple[str, Section]]:
    """``(document key, section)`` for every SLA and support contract owing a credit."""
    from monitor.support.report import support_claim_body

    found: list[tuple[str, Section]] = []
    for r in results:
        if r.credit_amount <= 0:
            continue
        party = context.sla_parties.get(r.sla, _NO_PARTY)
        evidence = None if context.evidence is None else context.evidence.get(r.sla)
        hint = context.export_hint.replace("{sla}", r.sla)
        section = Section(
            heading=f"availability SLA {r.sla} ({r.service})",
            party=party,
            lines=tuple(availability_claim_body(r, evidence, hint)),
            amount=r.credit_amount,
            currency=r.currency,
            default_subject=AVAILABILITY_SUBJECT,
        )
        found.append((_key(party, f"sla {r.sla}"), section))
    for s in summaries:
        body = support_claim_body(s)
        if body is None:
            continue
        name = s.contract.name
        party = context.support_parties.get(name, _NO_PARTY)
        section = Section(
            heading=f"support contract {name}",
            party=party,
            lines=tuple(body),
            amount=s.month.amount,
            currency=s.contract.currency,
            default_subject=SUPPORT_SUBJECT,
        )
        found.append((_key(party, f"support contract {name}"), section))
    return found


def claim_documents(
    results: Sequence[MonthResult],
    summaries: Sequence[ContractSummary],
    context: ClaimContext,
) -> list[ClaimDocument]:
    """One document per contract (same ``contract_reference``, or one SLA / support contract
    on its own), in the order their first section appears."""
    grouped: dict[str, list[Section]] = {}
    for key, section in claim_sections(results, summaries, context):
        grouped.setdefault(key, []).append(section)
    documents = []
    for key, sections in grouped.items():
        party = _merged_party([s.party for s in sections])
        subject = party.subject or sections[0].default_subject
        documents.append(ClaimDocument(key, subject, party, tuple(sections)))
    return documents


def _merged_party(parties: Sequence[ClaimParty]) -> ClaimParty:
    """The first non-empty value of each identifier among a document's sections."""

    def first(name: str) -> str:
        return next((value for p in parties if (value := getattr(p, name))), "")

    return ClaimParty(
        customer=first("customer"),
        account=first("account"),
        contract_reference=first("contract_reference"),
        vendor=first("vendor"),
        claim_address=first("claim_address"),
        subject=first("subject"),
    )


def _month_name(results: Sequence[MonthResult], summaries: Sequence[ContractSummary]) -> str:
    labels = {str(r.month) for r in results} | {s.month_label for s in summaries}
    names = []
    for label in sorted(labels):
        year, month = (int(part) for part in label.split("-"))
        names.append(datetime(year, month, 1).strftime("%B %Y"))
    return ", ".join(names) or "the month"


def render_claim_pack(
    results: Sequence[MonthResult],
    summaries: Sequence[ContractSummary],
    context: ClaimContext,
) -> str:
    """The pack's text: the documents, then the summary with the grand total."""
    month_name = _month_name(results, summaries)
    documents = claim_documents(results, summaries, context)
    coverage = [f"  {r.sla}: {coverage_words(r)}" for r in results]
    if not documents:
        names = ", ".join([r.sla for r in results] + [s.contract.name for s in summaries])
        lines = [
            f"No service credit is due for {month_name} ({names or 'nothing configured'}): "
            "nothing to claim.",
        ]
        if coverage:
            lines += ["Monitoring coverage (a credit counts only proven Unavailable Time):"]
            lines += coverage
        return "\n".join(lines) + "\n"
    grand: dict[str, Decimal] = {}
    summary = [
        f"Claim pack summary for {month_name} (not part of any claim): {len(documents)} "
        "claim document(s), each to be sent on its own."
    ]
    for number, document in enumerate(documents, start=1):
        for currency, amount in document.totals.items():
            grand[currency] = grand.get(currency, Decimal(0)) + amount
        parts = ", ".join(s.heading for s in document.sections)
        summary.append(f"  {number}. {document.key} ({parts}): {_money(document.totals)}")
    summary.append(f"Grand total: {_money(dict(sorted(grand.items())))}.")
    texts = [d.text(month_name) for d in documents]
    return DOCUMENT_SEPARATOR.join([*texts, "\n".join(summary)]) + "\n"


def claim_parties(config: Config) -> tuple[dict[str, ClaimParty], dict[str, ClaimParty]]:
    """``(per SLA, per support contract)`` parties from a loaded configuration."""
    slas = {sla.name: sla.claim.to_party() for sla in config.slas if sla.claim is not None}
    contracts = config.support.contracts if config.support is not None else ()
    support = {c.name: c.claim.to_party() for c in contracts if c.claim is not None}
    return slas, support


def context_for(
    config: Config, evidence: Sequence[SlaEvidence] | None, export_hint: str = ""
) -> ClaimContext:
    """The claim context of ``config`` with ``evidence`` (``None``: not exported)."""
    slas, support = claim_parties(config)
    return ClaimContext(
        sla_parties=MappingProxyType(slas),
        support_parties=MappingProxyType(support),
        evidence=None if evidence is None else MappingProxyType({e.sla: e for e in evidence}),
        export_hint=export_hint,
    )


SEPARATE_FORMATS = ("claim", "csv", "faults-csv")
"""Formats whose availability and support parts are not simply concatenated: the claim is one
pack (one Subject per document, one grand total) and each CSV output is one table (the support
faults are the ``faults-csv`` format)."""


def render_separate(
    results: Sequence[MonthResult],
    fmt: str,
    summaries: Sequence[ContractSummary] | None,
    context: ClaimContext | None,
) -> str:
    """``fmt`` (one of ``SEPARATE_FORMATS``) for the whole report."""
    from monitor.sla.render import render_csv
    from monitor.support.report import support_csv

    if fmt == "claim":
        return render_claim_pack(results, summaries or (), context or ClaimContext())
    if fmt == "csv":
        return render_csv(results)
    if fmt == "faults-csv":
        return support_csv(summaries or ())
    raise ValueError(f"format: expected one of {', '.join(SEPARATE_FORMATS)}, got {fmt!r}")


def render_claim(results: Sequence[MonthResult]) -> str:
    """The claim pack for ``results`` alone (no support contracts, parties or evidence
    digests): one document per SLA that owes a credit."""
    return render_claim_pack(results, (), ClaimContext())
