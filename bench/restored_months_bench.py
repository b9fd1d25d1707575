#!/usr/bin/env python3
"""Benchmark (ms28, issue 20): every snapshot of a seeded store decoded, its month restored,
then its first result, process CPU per phase (the collector off, as during start-up).

    .venv/bin/python bench/restored_months_bench.py DIR [TREE]

``DIR`` holds ``bench.yaml`` and ``slawatch.db`` as ``bench/startup_bench.py``'s ``seed``
leaves them. The months are restored without windows and their results taken one minute
after the seed's ``now`` (day 28 of December 2026, noon). ``TREE``: another checkout whose
``monitor`` is measured (an A/B: run each tree in fresh interpreters, alternated).
"""

from __future__ import annotations

import gc
import json
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from memory_bench import DAY, MONTH_START  # noqa: E402


def main() -> None:
    if len(sys.argv) > 2:
        sys.path.insert(0, sys.argv[2])
    from monitor.config import load_config
    from monitor.instants import utc_from_epoch
    from monitor.runtime.daemon import Daemon
    from monitor.sla.calendar import Month
    from monitor.sla.running import RunningMonth
    from monitor.sla.running_codec import decode

    directory = Path(sys.argv[1])
    config = directory / "bench.yaml"
    inputs = Daemon(load_config(config), config)._inputs()
    policies = {policy.name: policy for policy in inputs.policies}
    with sqlite3.connect(str(directory / "slawatch.db")) as conn:
        rows = conn.execute("SELECT sla, month, state FROM month_snapshots").fetchall()
    gc.disable()
    began = time.process_time()
    states = [(policies[sla], Month.parse(month), decode(blob)) for sla, month, blob in rows]
    decoded = time.process_time()
    months = [
        RunningMonth.restored(p, inputs.services[p.service], month, (), state)
        for p, month, state in states
    ]
    restored = time.process_time()
    now = utc_from_epoch(MONTH_START + 28 * DAY + 12 * 3600 + 60)
    results = [month.result(now) for month in months]
    done = time.process_time()
    print(
        json.dumps(
            {
                "months": len(months),
                "decode_s": round(decoded - began, 2),
                "restored_s": round(restored - decoded, 2),
                "result_s": round(done - restored, 2),
                "outages": sum(len(result.outages) for result in results),
            }
        )
    )


if __name__ == "__main__":
    main()
