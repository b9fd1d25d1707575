"""rd28 (issue 20): ``running_codec.decode`` time per month of a bench-shaped judged state (one
failing bucket in 100, as ``bench/month_end.py`` writes), in the format this tree writes.
A/B: run it with ``PYTHONPATH=<other tree>`` for the other tree's codec."""

import time

from monitor.sla import running_codec as c
from monitor.sla.policy import Tally
from monitor.sla.running import _JUDGED_CODES, _U, JudgedState

ok = min(set(_JUDGED_CODES) - {_U})


def state(judged: int, name: str) -> JudgedState:
    raw = bytearray([ok]) * judged
    ev = []
    for i in range(0, judged, 100):
        raw[i] = _U
        ev.append((i, ((name, Tally(ok=9, failed=1, reasons={"http_503": 1})),)))
    return JudgedState(judged, bytes(raw), (), (), tuple(ev), 0)


states = [state(8064 if k % 2 else 8640, f"t-{k // 2:05d}") for k in range(4000)]
for label, enc in ((c.MAGIC.decode(), c.encode),):
    blobs = [enc(s) for s in states]
    best = 1e9
    for _ in range(3):
        c._TALLIES.clear()
        t = time.perf_counter()
        for b in blobs:
            c.decode(b)
        best = min(best, time.perf_counter() - t)
    print(
        f"{label}: {1e6 * best / len(blobs):.1f} us/month decode, "
        f"{sum(map(len, blobs)) / len(blobs):.0f} B/month"
    )
