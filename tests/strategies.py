# --- voice media (probes/sip/rtp.py, audio.py) -------------------------------------------
from hypothesis import strategies as _st  # noqa: E402

pcm_samples = _st.integers(min_value=-32768, max_value=32767)
"""One 16-bit signed linear audio sample."""

rtp_sequence_starts = _st.integers(min_value=0, max_value=65535)
"""A first RTP sequence number anywhere in the 16-bit space (so runs cross the wrap)."""


@_st.composite
def rtp_arrivals(draw: _st.DrawFn) -> tuple[int, list[int]]:
    """A start sequence and a sorted list of offsets received out of a run (the rest lost).

    Offsets are kept below 3000 apart so no gap looks like a restarted source (RFC 3550 A.1).
    """
    start = draw(rtp_sequence_starts)
    total = draw(_st.integers(min_value=1, max_value=400))
    kept = draw(_st.lists(_st.booleans(), min_size=total, max_size=total))
    offsets = [i for i, keep in enumerate(kept) if keep or i == 0]
    return start, offsets


# --- support SLA (monitor/support) ---------------------------------------------------------
from datetime import UTC as _UTC  # noqa: E402
from datetime import datetime as _datetime  # noqa: E402
from datetime import timedelta as _timedelta  # noqa: E402


def support_instants() -> _st.SearchStrategy[_datetime]:
    """UTC instants across 2026-2027 (both DST changes, every holiday), minute resolution."""
    base = _datetime(2026, 1, 1, tzinfo=_UTC)
    minutes = _st.integers(min_value=0, max_value=2 * 365 * 24 * 60)
    return minutes.map(lambda m: base + _timedelta(minutes=m))


@_st.composite
def support_spans(draw: _st.DrawFn) -> tuple[_datetime, _timedelta]:
    """A start instant and an amount of support time up to 10 Business Days, second resolution."""
    start = draw(support_instants())
    seconds = draw(_st.integers(min_value=0, max_value=80 * 3600))
    return start, _timedelta(seconds=seconds)


# --- durable state (monitor/store) ---------------------------------------------------------
from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from monitor.store.base import TallyRow as _TallyRow


@_st.composite
def store_tally_rows(draw: _st.DrawFn) -> "_TallyRow":
    """A tally upsert over a deliberately small key space, so sequences hit the same
    (vantage, target, bucket_seconds, bucket_start) key repeatedly and bucket lengths overlap."""
    # Imported here so importing this module does not import the probe result types for
    # every other test module.
    from monitor.store.base import TallyRow as _TallyRow

    seconds = draw(_st.sampled_from([60, 300]))
    failed = draw(_st.integers(min_value=0, max_value=50))
    reason_count = draw(_st.integers(min_value=0, max_value=failed))
    reasons = {"timeout": reason_count} if reason_count else {}
    return _TallyRow(
        vantage=draw(_st.sampled_from(["v1", "v2"])),
        target=draw(_st.sampled_from(["sip-options", "web-login", "ivr-call"])),
        bucket_start=draw(_st.integers(min_value=0, max_value=3)) * 300,
        bucket_seconds=seconds,
        ok=draw(_st.integers(min_value=0, max_value=10_000)),
        failed=failed,
        reasons=reasons,
    )


# --- configuration (tests/test_config.py): durations as whole milliseconds, in seconds ---


def config_durations() -> _st.SearchStrategy[float]:
    """Durations from 0 to ten weeks in whole milliseconds, as the config file can write them."""
    return _st.integers(min_value=0, max_value=70 * 86_400_000).map(lambda ms: ms / 1000)


# --- configuration: credit-tier bands written the way the file writes them ---

from fractions import Fraction as _TierFraction  # noqa: E402

TIER_EDGES = ("98", "99", "99.9", "100")
"""Edges shared between generated tiers, so that touching bands are common."""

TIER_POINTS = tuple(
    _TierFraction(p) for p in ("97", "98", "98.5", "99", "99.5", "99.9", "99.95", "100")
)
"""Uptimes covering every edge and every gap between edges in TIER_EDGES."""


@_st.composite
def tier_bounds(draw: _st.DrawFn) -> dict[str, str]:
    """A non-empty band: at most one upper form (below | at_most), one lower (at_least | above)."""
    upper = draw(_st.sampled_from((None, "below", "at_most")))
    lower = draw(_st.sampled_from((None, "at_least", "above")))
    bounds: dict[str, str] = {}
    high = draw(_st.sampled_from(TIER_EDGES))
    if upper is not None:
        bounds[upper] = high
    if lower is not None:
        candidates = [e for e in TIER_EDGES if _TierFraction(e) < _TierFraction(high)]
        if upper is None:
            # "above: 100" alone is an empty band, which the config refuses for its own reason.
            candidates = [e for e in TIER_EDGES if lower == "at_least" or e != "100"]
        if candidates:
            bounds[lower] = draw(_st.sampled_from(candidates))
    return bounds
