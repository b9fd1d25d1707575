"""The claim pack (issue 12, problem 6): one document per contract with one Subject, the
parties, outages with their first and last failure, the coverage, the evidence export and its
digests, a grand total; the CSV report as one table; ``slawatch claim record``."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.cli import main as cli
from monitor.config import ConfigError, parse_config_text
from monitor.reports.build import build_reports, grid_tallies
from monitor.reports.claim_pack import DOCUMENT_SEPARATOR
from monitor.reports.evidence import from_results
from monitor.reports.results import parse_lines
from monitor.sla.calendar import Month

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent


def _sample_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "claim_pack_sample", ROOT / "scripts" / "claim_pack_sample.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SAMPLE = _sample_module()


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The sample claim pack of docs/claim-pack.md, built with the real CLI."""
    out = tmp_path_factory.mktemp("pack")
    return out, SAMPLE.build(out)


def documents(text: str) -> list[str]:
    """The claim documents of a pack (the last part is the summary)."""
    return text.split(DOCUMENT_SEPARATOR)


class TestSamplePack:
    """The demo month's pack, as a vendor's account manager reads it."""

    def test_one_subject_per_document(self, pack: tuple[Path, str]) -> None:
        """Each document opens with its one Subject; the summary has none (the bug: the
        availability and support claims were one text with two Subject lines)."""
        *docs, summary = documents(pack[1])
        assert len(docs) == 2
        for doc in docs:
            assert doc.startswith("Subject: ")
            assert len(re.findall(r"^Subject:", doc, flags=re.M)) == 1
        assert "Subject:" not in summary

    def test_parties(self, pack: tuple[Path, str]) -> None:
        """Customer, account, contract reference and the vendor's claim address."""
        ujet, uma, _ = documents(pack[1])
        assert "To: UJET, Inc. <support@ujet.cx>" in ujet
        assert "From: Example Contact Centre Ltd, account ECC-4471" in ujet
        assert "Contract reference: UJET-MSA-2025-0192" in ujet
        assert "To: UMA Ltd <accounts@uma.example>" in uma
        assert "Contract reference: UMA-LIC-2024-031" in uma

    def test_outage_has_bounds_and_first_and_last_failure(self, pack: tuple[Path, str]) -> None:
        """A failure from 13:54:17 to 13:56:17 UTC reads as such, beside its buckets."""
        text = pack[1]
        assert "2026-11-14 08:50 EST to 09:00 EST (2026-11-14 13:50 UTC to 14:00 UTC)" in text
        assert (
            "first failure 2026-11-14 08:54:17 EST (13:54:17 UTC), "
            "last failure 2026-11-14 08:56:17 EST (13:56:17 UTC)"
        ) in text

    def test_exclusions_and_coverage(self, pack: tuple[Path, str]) -> None:
        """The maintenance window is listed as applied; coverage is stated per SLA."""
        text = pack[1]
        assert "scheduled_maintenance (mw-2026-11-08, SBC software upgrade)" in text
        assert "Monitoring coverage: 100.00% (8640 of 8640 eligible buckets measured)" in text

    def test_digests_match_the_export(self, pack: tuple[Path, str]) -> None:
        """Every digest the claim cites is the SHA-256 of an exported file, and SHA256SUMS
        lists the same (a vendor can check them with sha256sum -c)."""
        out, text = pack
        cited = dict(
            (name, digest)
            for digest, name in re.findall(r"^  ([0-9a-f]{64})  (evidence-\S+)$", text, re.M)
        )
        assert set(cited) == {
            "evidence-2026-11-ujet-voice.csv",
            "evidence-2026-11-ujet-voice.jsonl",
            "evidence-2026-11-ujet-ivr.csv",
            "evidence-2026-11-ujet-ivr.jsonl",
        }
        for name, digest in cited.items():
            assert hashlib.sha256((out / "evidence" / name).read_bytes()).hexdigest() == digest
        sums = (out / "evidence" / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
        assert sorted(sums) == sorted(f"{d}  {n}" for n, d in cited.items())

    def test_export_holds_every_probe_of_each_outage(self, pack: tuple[Path, str]) -> None:
        """The voice export: 45 probe results in its two outages, 34 of them failed; CSV and
        JSON Lines carry the same records."""
        evidence = pack[0] / "evidence"
        rows = list(
            csv.DictReader(io.StringIO((evidence / "evidence-2026-11-ujet-voice.csv").read_text()))
        )
        lines = (evidence / "evidence-2026-11-ujet-voice.jsonl").read_text().splitlines()
        assert len(rows) == len(lines) == 45
        assert sum(r["ok"] == "false" for r in rows) == 34
        first = json.loads(lines[0])
        assert (first["outage"], first["ts_utc"], first["ok"]) == (
            1,
            "2026-11-14T13:50:17.000Z",
            True,
        )
        assert first["ts_local"] == "2026-11-14T08:50:17.000-05:00"

    def test_grand_total(self, pack: tuple[Path, str]) -> None:
        """The summary totals every document, per currency."""
        summary = documents(pack[1])[-1]
        assert "1. contract UJET-MSA-2025-0192" in summary
        assert summary.rstrip().endswith("Grand total: 105000.00 GBP + 2900.00 USD.")

    def test_docs_show_this_pack(self, pack: tuple[Path, str]) -> None:
        """docs/claim-pack.md shows exactly what the command prints today."""
        docs = (ROOT / "docs" / "claim-pack.md").read_text(encoding="utf-8")
        assert pack[1] in docs


class TestConsecutiveMonths:
    """Claims for October, November, December and January through the real CLI."""

    def test_support_credit_claimed_once(
        self,
        pack: tuple[Path, str],
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """UMA-5521's 6 late days: 5 claimed in November, 1 in December, none in October or
        January; the claims add up to its whole credit (the bug: every month claimed all 6)."""
        monkeypatch.chdir(pack[0])
        totals = {}
        for month in ("2026-10", "2026-11", "2026-12", "2027-01"):
            argv = ["report", "--config", "slawatch.yaml", "--results", "results.jsonl"]
            argv += ["--month", month, "--as-of", "2027-02-01T00:00:00Z", "--format", "claim"]
            assert cli.main(argv) == 0
            text = capsys.readouterr().out
            found = re.findall(r"Total support credit requested for \S+: .* = (\S+) GBP", text)
            totals[month] = sum(Decimal(x) for x in found)
        assert totals == {
            "2026-10": 0,
            "2026-11": Decimal("105000.00"),
            "2026-12": Decimal("21000.00"),
            "2027-01": 0,
        }
        assert cli.main(["fault", "list", "--config", "slawatch.yaml", "--format", "json",
                         "--as-of", "2027-02-01T00:00:00Z"]) == 0  # fmt: skip
        listed = json.loads(capsys.readouterr().out)
        whole = Decimal(listed["contracts"][0]["faults"][0]["credit_amount"])
        assert sum(totals.values()) == whole == Decimal("126000.00")


class TestCsvIsOneTable:
    """``--format csv`` is the SLAs' table only; ``faults-csv`` is the support faults'."""

    def test_csv_and_faults_csv(
        self,
        pack: tuple[Path, str],
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """One header each (the bug: the support table was appended under the SLAs')."""
        monkeypatch.chdir(pack[0])  # the sample's state_dir is "."
        argv = ["report", "--config", "slawatch.yaml", "--month", "2026-11"]
        argv += ["--results", "results.jsonl", "--as-of", SAMPLE.AS_OF]
        assert cli.main([*argv, "--format", "csv"]) == 0
        table = capsys.readouterr().out
        assert table.count("\nsla,") + table.startswith("sla,") == 1
        assert "contract,fault" not in table
        assert [r["sla"] for r in csv.DictReader(io.StringIO(table))] == [
            "ujet-voice",
            "ujet-ivr",
        ]
        assert cli.main([*argv, "--format", "faults-csv"]) == 0
        faults = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert {r["fault"] for r in faults} == {"UMA-5521"}
        assert {r["month_credit_percent"] for r in faults} == {"25"}


class TestClaimRecord:
    """``slawatch claim record`` and ``list`` through the store."""

    def test_record_and_list(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A recorded claim is listed; a second SLA's claim joins it."""
        config = tmp_path / "c.yaml"
        config.write_text(
            SAMPLE.CONFIG.format(state_dir=json.dumps(str(tmp_path))), encoding="utf-8"
        )
        base = ["claim", "record", "--config", str(config), "--month", "2026-11"]
        assert cli.main([*base, "--sla", "ujet-voice", "--reference", "UJ-123",
                         "--filed-at", "2026-12-01T09:00:00Z"]) == 0  # fmt: skip
        assert cli.main([*base, "--sla", "ujet-ivr", "--filed-at", "2026-12-01T10:00:00Z"]) == 0
        capsys.readouterr()
        assert cli.main(["claim", "list", "--config", str(config)]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "ujet-ivr 2026-11 filed 2026-12-01T10:00:00+00:00",
            "ujet-voice 2026-11 filed 2026-12-01T09:00:00+00:00 UJ-123",
        ]

    def test_unknown_sla_is_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unknown SLA exits 2 with one line naming the known ones."""
        config = tmp_path / "c.yaml"
        config.write_text(
            SAMPLE.CONFIG.format(state_dir=json.dumps(str(tmp_path))), encoding="utf-8"
        )
        argv = ["claim", "record", "--config", str(config), "--sla", "fax", "--month", "2026-11"]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err == (
            "slawatch claim record: sla: expected one of ujet-ivr, ujet-voice, got 'fax'\n"
        )


class TestClaimConfig:
    """The ``claim:`` section is validated like the rest of the configuration."""

    def test_newline_is_refused(self) -> None:
        """A value that would start a second line (a second Subject) is refused at its key."""
        text = SAMPLE.CONFIG.format(state_dir='"."').replace(
            "vendor: UMA Ltd", 'vendor: "UMA Ltd\\nSubject: pay us"'
        )
        with pytest.raises(ConfigError, match=r"support\.contracts\[0\]\.claim\.vendor"):
            parse_config_text(text)

    def test_unknown_key_is_refused(self) -> None:
        """A misspelt identifier is named."""
        text = SAMPLE.CONFIG.format(state_dir='"."').replace(
            "account: ECC-4471", "acount: ECC-4471", 1
        )
        with pytest.raises(ConfigError, match=r"slas\[0\]\.claim\.acount: unknown key"):
            parse_config_text(text)


CONFIG = """
targets:
  - {name: a, kind: tcp, tcp: {host: 127.0.0.1, port: 9}}
  - {name: b, kind: tcp, tcp: {host: 127.0.0.1, port: 9}}
services: [{name: s, targets: [a, b], down_when: all}]
slas:
  - name: s-sla
    service: s
    objective: 99.9
    monthly_fee: "100"
    currency: USD
    credit_tiers: [{below: 99.9, credit_percent: 10}]
"""


class TestEvidenceProperties:
    """``from_results``: the records behind each outage, and only those."""

    @settings(max_examples=40, deadline=None)
    @given(
        failures=st.lists(
            st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3 * 3600 - 1)), max_size=60
        ),
    )
    def test_records_lie_in_their_outage(self, failures: list[tuple[str, int]]) -> None:
        """Every record is inside its outage; first and last failures bound the failed ones;
        every failed probe of both targets in an outage bucket is exported."""
        config = parse_config_text(CONFIG)
        base = 1793491200  # 2026-11-01T00:00:00Z
        lines = [
            json.dumps({"ts": base + t, "target": name, "ok": True})
            for t in range(0, 3 * 3600, 60)
            for name in ("a", "b")
        ]
        lines += [
            json.dumps({"ts": base + t, "target": name, "ok": False, "error": "x"})
            for name, t in failures
        ]
        results = parse_lines(lines)
        (report,) = build_reports(
            config, grid_tallies(results, config.canary_intervals()), Month(2026, 11)
        )
        evidence = from_results(report, results)
        for item in evidence.outages:
            lo, hi = item.outage.start.timestamp(), item.outage.end.timestamp()
            assert all(lo <= r.ts < hi for r in item.records)
            failed = [r.ts for r in item.records if not r.ok]
            expected = sorted(base + t for _, t in failures if lo <= base + t < hi)
            assert sorted(failed) == expected
            if failed:
                assert item.first_failure is not None
                assert item.first_failure.timestamp() == min(failed)
        assert sum(len(o.failures) for o in evidence.outages) <= len(failures)


PACK_CONFIG = """
targets:
  - {name: t0, kind: tcp, tcp: {host: 127.0.0.1, port: 9}}
  - {name: t1, kind: tcp, tcp: {host: 127.0.0.1, port: 9}}
  - {name: t2, kind: tcp, tcp: {host: 127.0.0.1, port: 9}}
services:
  - {name: s0, targets: [t0]}
  - {name: s1, targets: [t1]}
  - {name: s2, targets: [t2]}
slas:
"""


class TestPackProperties:
    """Whatever SLAs owe and however they share contracts, the pack adds up."""

    @settings(max_examples=25, deadline=None)
    @given(
        failing=st.lists(st.sets(st.integers(0, 23), max_size=4), min_size=3, max_size=3),
        references=st.lists(st.sampled_from(["", "A", "B"]), min_size=3, max_size=3),
        currencies=st.lists(st.sampled_from(["USD", "EUR"]), min_size=3, max_size=3),
    )
    def test_documents_and_grand_total(
        self, failing: list[set[int]], references: list[str], currencies: list[str]
    ) -> None:
        """One document per contract reference (or per SLA without one), one Subject each,
        and the grand total is the sum of every SLA's credit, per currency."""
        from monitor.reports.claim_pack import claim_documents, context_for

        text = PACK_CONFIG
        for n in range(3):
            claim = f"    claim: {{contract_reference: {references[n]}}}\n" if references[n] else ""
            text += (
                f"  - name: sla{n}\n    service: s{n}\n    objective: 99.9\n"
                f'    monthly_fee: "100"\n    currency: {currencies[n]}\n'
                "    credit_tiers: [{below: 99.9, credit_percent: 10}]\n" + claim
            )
        config = parse_config_text(text)
        base = 1793491200  # 2026-11-01T00:00:00Z, hourly probes for a day
        lines = [
            json.dumps({"ts": base + hour * 3600, "target": f"t{n}", "ok": hour not in failing[n]})
            for n in range(3)
            for hour in range(24)
        ]
        results = parse_lines(lines)
        reports = build_reports(
            config, grid_tallies(results, config.canary_intervals()), Month(2026, 11)
        )
        context = context_for(config, [from_results(r, results) for r in reports])
        docs = claim_documents(reports, (), context)
        owing = [(r, references[int(r.sla[-1])]) for r in reports if r.credit_amount > 0]
        keys = {ref or f"sla {r.sla}" for r, ref in owing}
        assert len(docs) == len(keys)
        pack = render_claim_pack_text(reports, context)
        parts = pack.split(DOCUMENT_SEPARATOR)
        if not owing:
            assert parts[0].startswith("No service credit is due")
            return
        for doc in parts[:-1]:
            assert len(re.findall(r"^Subject:", doc, re.M)) == 1
        expected: dict[str, Decimal] = {}
        for r, _ in owing:
            expected[r.currency] = expected.get(r.currency, Decimal(0)) + r.credit_amount
        grand = " + ".join(f"{v} {c}" for c, v in sorted(expected.items()))
        assert parts[-1].rstrip().endswith(f"Grand total: {grand}.")


def render_claim_pack_text(reports: list[Any], context: Any) -> str:
    """The pack's text for availability SLAs only."""
    from monitor.reports.claim_pack import render_claim_pack

    return render_claim_pack(reports, (), context)
