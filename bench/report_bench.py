"""Benchmark ``slawatch report`` end to end through the real command line.

Generates, in a temporary directory, a configuration with three services (one target each)
and a 31-day month of 30-second probe results for them (2026-10 in Europe/London, which has
an extra hour: 268,200 lines), then runs ``python -m monitor.cli report`` on it in a fresh
interpreter for each format and prints the wall-clock times.

    .venv/bin/python bench/report_bench.py [--runs 3]
    .venv/bin/python bench/report_bench.py --write-sample config/samples/results-2026-11-01.jsonl

``--write-sample`` writes the small deterministic results file the README examples use.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MONTH = "2026-10"
TARGETS = ("sip-edge", "ivr-api", "agent-login")
INTERVAL = 30
FAILURE_RATE = 0.0004
REASONS = ("timeout", "connection_refused", "status_code_503")

CONFIG = """\
targets:
  - {name: sip-edge, kind: tcp, tcp: {host: 127.0.0.1, port: 5060}}
  - {name: ivr-api, kind: http, http: {url: "http://127.0.0.1:8080/ivr"}}
  - {name: agent-login, kind: http, http: {url: "http://127.0.0.1:8080/login"}}
services:
  - {name: voice, targets: [sip-edge]}
  - {name: ivr, targets: [ivr-api]}
  - {name: web, targets: [agent-login]}
slas:
"""
SLA = """\
  - name: {name}
    service: {name}
    objective: 99.9
    timezone: Europe/London
    monthly_fee: "10000.00"
    currency: USD
    credit_tiers:
      - {{below: 99.9, at_least: 99.0, credit_percent: 10}}
      - {{below: 99.0, credit_percent: 25}}
"""
EXCLUSIONS = """\
exclusions:
  - id: mw-1
    kind: scheduled_maintenance
    start: 2026-10-13T01:00:00Z
    end: 2026-10-13T03:00:00Z
"""


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def write_month(path: Path, seed: int = 7) -> int:
    """A month of 30-second results for every target; returns the number of lines."""
    rng = random.Random(seed)
    start = int(datetime(2026, 9, 30, 23, tzinfo=UTC).timestamp())
    end = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
    lines = 0
    with path.open("w", encoding="utf-8") as out:
        for tick in range(start, end, INTERVAL):
            for target in TARGETS:
                ts = _stamp(tick + rng.random())
                latency = round(rng.uniform(5, 80), 1)
                if rng.random() < FAILURE_RATE:
                    reason = rng.choice(REASONS)
                    out.write(
                        f'{{"ts": "{ts}", "target": "{target}", "ok": false, '
                        f'"latency_ms": {latency}, "error": "{reason}"}}\n'
                    )
                else:
                    out.write(
                        f'{{"ts": "{ts}", "target": "{target}", "ok": true, '
                        f'"latency_ms": {latency}}}\n'
                    )
                lines += 1
    return lines


def write_sample(path: Path) -> int:
    """1 November 2026, one probe per target per 5 minutes, with the README's incidents."""
    start = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
    rows = []
    for tick in range(start + 17, start + 86_400, 300):
        hhmm = datetime.fromtimestamp(tick, UTC).strftime("%H:%M")
        for target in ("sip-edge", "ivr-api", "agent-login", "net-canary"):
            error = None
            if target == "sip-edge" and "10:05" <= hhmm < "10:20":
                error = "timeout"
            elif target == "ivr-api" and "02:00" <= hhmm < "02:30":
                error = "status_code_503"
            elif target in ("agent-login", "net-canary") and "14:00" <= hhmm < "14:05":
                error = "network_unreachable"
            elif target == "agent-login" and "16:40" <= hhmm < "16:45":
                error = "status_code_502"
            elif target == "ivr-api" and "20:00" <= hhmm < "20:10":
                continue  # the probe did not run: unknown buckets
            row: dict[str, object] = {"ts": _stamp(tick), "target": target, "ok": error is None}
            row["latency_ms"] = 1000.0 if error == "timeout" else 42.0
            if error:
                row["error"] = error
            rows.append(json.dumps(row))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


def time_report(config: Path, results: Path, fmt: str) -> tuple[float, str]:
    command = [
        sys.executable,
        "-m",
        "monitor.cli",
        "report",
        "--config",
        str(config),
        "--results",
        str(results),
        "--month",
        MONTH,
        "--format",
        fmt,
    ]
    began = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"report failed ({done.returncode}): {done.stderr}")
    return elapsed, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per format (default 3)")
    parser.add_argument("--write-sample", type=Path, help="write the README sample results")
    args = parser.parse_args(argv)
    if args.write_sample:
        print(f"wrote {write_sample(args.write_sample)} lines to {args.write_sample}")
        return 0
    with tempfile.TemporaryDirectory(prefix="slawatch-bench-") as tmp:
        folder = Path(tmp)
        config = folder / "bench.yaml"
        config.write_text(
            CONFIG + "".join(SLA.format(name=n) for n in ("voice", "ivr", "web")) + EXCLUSIONS,
            encoding="utf-8",
        )
        results = folder / "results.jsonl"
        began = time.perf_counter()
        lines = write_month(results)
        generated = time.perf_counter() - began
        size = results.stat().st_size / 1e6
        print(f"generated {lines} lines ({size:.1f} MB) in {generated:.2f} s")
        for fmt in ("json", "text", "csv", "claim"):
            times = []
            for _ in range(args.runs):
                elapsed, _ = time_report(config, results, fmt)
                times.append(elapsed)
            print(
                f"report --format {fmt:5s}: best {min(times):.2f} s, "
                f"median {statistics.median(times):.2f} s over {len(times)} runs"
            )
        report = json.loads(time_report(config, results, "json")[1])["reports"]
        for entry in report:
            print(
                f"  {entry['service']}: {entry['buckets_total']} buckets, "
                f"uptime {entry['uptime_percent']}% ({entry['uptime_ratio_exact']}), "
                f"credit {entry['credit_amount']} {entry['currency']}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
