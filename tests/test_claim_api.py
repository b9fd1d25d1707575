"""The daemon's `/api/v1/report?format=claim` is the same claim pack as the CLI: one Subject,
first and last failure from the stored evidence, its digests (issue 12, problem 6)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from monitor.reports.claim_pack import DOCUMENT_SEPARATOR
from tests.daemon_harness import free_port, running_daemon, wait_until
from tests.test_daemon import BUCKET, http_target, write_config
from tests.web_target import web_target

pytestmark = pytest.mark.timeout(120)


class TestClaimFromTheDaemon:
    """A real daemon, a real outage, the claim from its API."""

    def test_claim_from_stored_evidence(self, tmp_path: Path) -> None:
        """Two failing buckets give one document with one Subject, the first and last failed
        probe (to the second) and the digests of the store's evidence."""
        with web_target() as target:
            target.set("svc", "up")
            port = free_port()
            sla = {
                "name": "web-sla",
                "service": "web",
                "objective": 100,
                "bucket": f"{BUCKET}s",
                "timezone": "UTC",
                "monthly_fee": "1000.00",
                "currency": "EUR",
                "credit_tiers": [{"below": 100, "credit_percent": 10}],
                "claim": {"customer": "Example Ltd", "contract_reference": "MSA-1"},
            }
            config = write_config(
                tmp_path,
                port,
                [http_target("api", target.url("svc"))],
                [{"name": "web", "targets": ["api"]}],
                [sla],
            )
            with running_daemon(config, port) as daemon:
                wait_until(
                    lambda: daemon.metric("slawatch_probe_success", target="api") == 1.0,
                    10,
                    "api up",
                )
                time.sleep(BUCKET - time.time() % BUCKET + 0.05)
                target.set("svc", "status")
                time.sleep(2 * BUCKET)
                target.set("svc", "up")
                wait_until(
                    lambda: (daemon.metric("slawatch_month_buckets", sla="web-sla",
                                           state="unavailable") or 0) >= 2,
                    4 * BUCKET,
                    "outage buckets closed",
                )  # fmt: skip
                # The store is written once a second: give the evidence rows a flush.
                time.sleep(2)
                status, text = daemon.get("/api/v1/report?format=claim")
        assert status == 200, text
        *documents, summary = text.split(DOCUMENT_SEPARATOR)
        [document] = documents
        assert len(re.findall(r"^Subject:", document, re.M)) == 1
        assert "Contract reference: MSA-1" in document
        assert re.search(
            r"first failure \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\S+ UTC\), last failure", document
        )
        assert re.search(r"record\(s\), \d+ failed, from store test-vantage", document)
        assert len(re.findall(r"^  [0-9a-f]{64}  evidence-\S+-web-sla\.(csv|jsonl)$",
                              document, re.M)) == 2  # fmt: skip
        assert "Grand total: 100.00 EUR." in summary
