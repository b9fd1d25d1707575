# --- voice media (probes/sip/rtp.py, audio.py) -------------------------------------------
from hypothesis import strategies as _st

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


# --- availability engine (monitor/sla) -----------------------------------------------------
import random as _random  # noqa: E402
from decimal import Decimal as _Decimal  # noqa: E402
from fractions import Fraction as _Fraction  # noqa: E402
from types import MappingProxyType as _MappingProxyType  # noqa: E402
from typing import Any as _Any  # noqa: E402

from monitor.sla import policy as _policy  # noqa: E402
from monitor.sla.calendar import Month as _Month  # noqa: E402
from monitor.sla.calendar import month_grid as _month_grid  # noqa: E402

STANDARD_CREDIT = _policy.CreditPolicy(
    tiers=(
        _policy.CreditTier(_Decimal(10), upper=_Decimal("99.999"), lower=_Decimal("99.9")),
        _policy.CreditTier(_Decimal(25), upper=_Decimal("99.9"), lower=_Decimal("99.0")),
        _policy.CreditTier(_Decimal(50), upper=_Decimal("99.0")),
    ),
    monthly_fee=_Decimal("10000.00"),
    currency="USD",
)
"""Half-open bands below 99.999 / 99.9 / 99.0 (10 / 25 / 50 %), fee 10000.00 USD."""

ENGINE_TARGETS = ("t0", "t1", "t2")
ENGINE_CANARIES = ("c0", "c1")

_CELLS: tuple[_policy.Tally | None, ...] = (
    None,
    _policy.Tally(ok=2),
    _policy.Tally(ok=1),
    _policy.Tally(ok=1, failed=1, reasons=_MappingProxyType({"timeout": 1})),
    _policy.Tally(failed=2, reasons=_MappingProxyType({"status_code_503": 2})),
    _policy.Tally(failed=1, reasons=_MappingProxyType({"connection_refused": 1})),
)

bucket_rules = _st.one_of(
    _st.builds(
        _policy.BucketRule,
        kind=_st.sampled_from(
            [_policy.BucketRuleKind.ANY_FAILED, _policy.BucketRuleKind.ALL_FAILED]
        ),
        min_probes=_st.integers(min_value=1, max_value=3),
    ),
    _st.builds(
        _policy.BucketRule,
        kind=_st.just(_policy.BucketRuleKind.FAILED_FRACTION),
        min_probes=_st.integers(min_value=1, max_value=3),
        failed_fraction=_st.sampled_from([_Fraction(1, 2), _Fraction(1, 3), _Fraction(1)]),
    ),
)
"""Every bucket rule kind, min_probes 1..3."""

service_rules = _st.one_of(
    _st.builds(
        _policy.ServiceRule,
        kind=_st.sampled_from([_policy.ServiceRuleKind.ANY, _policy.ServiceRuleKind.ALL]),
    ),
    _st.builds(
        _policy.ServiceRule,
        kind=_st.just(_policy.ServiceRuleKind.QUORUM),
        min_down=_st.integers(min_value=1, max_value=2),
    ),
)


@_st.composite
def engine_scenarios(draw: _st.DrawFn, *, min_probes_one: bool = False) -> dict[str, _Any]:
    """A month of hourly buckets (few enough to be fast) with random tallies per target.

    Keys: ``policy``, ``service``, ``month``, ``grid``, ``tallies``, ``exclusions``,
    ``canaries``. Hourly buckets keep every calendar and DST rule of the 5-minute grid.
    ``min_probes_one`` pins min_probes to 1 (where adding a failed probe is monotone).
    """
    month = draw(_st.builds(_Month, _st.integers(2024, 2028), _st.integers(1, 12)))
    tz = draw(_st.sampled_from(["UTC", "Europe/London", "America/New_York"]))
    rule = draw(bucket_rules)
    if min_probes_one:
        rule = _policy.BucketRule(
            kind=rule.kind, min_probes=1, failed_fraction=rule.failed_fraction
        )
    targets = ENGINE_TARGETS[: draw(_st.integers(min_value=2, max_value=3))]
    policy = _policy.SlaPolicy(
        name="sla",
        service="svc",
        objective_percent=_Decimal("99.9"),
        credit=STANDARD_CREDIT,
        bucket_seconds=3600,
        timezone=tz,
        bucket_rule=rule,
        unknown_policy=draw(_st.sampled_from(list(_policy.UnknownPolicy))),
        partial_exclusion=draw(_st.sampled_from(list(_policy.PartialExclusion))),
    )
    service = _policy.ServiceDef("svc", targets, draw(service_rules))
    grid = _month_grid(month, tz, 3600)
    # A seeded generator, not st.randoms(): thousands of cells would each be a Hypothesis draw.
    rng = _random.Random(draw(_st.integers(0, 2**32)))
    weights = [draw(_st.integers(0, 10)) for _ in _CELLS]
    if not any(weights):
        weights[1] = 1
    tallies: dict[str, dict[int, _policy.Tally]] = {}
    for name in (*targets, *ENGINE_CANARIES):
        column: dict[int, _policy.Tally] = {}
        for start in grid.starts():
            cell = rng.choices(_CELLS, weights)[0]
            if cell is not None:
                column[start] = cell
        tallies[name] = column
    exclusions = [
        _policy.ExclusionWindow(
            id=f"x{n}",
            start=grid.start + _timedelta(minutes=offset),
            end=grid.start + _timedelta(minutes=offset + length),
            kind=draw(_st.sampled_from(list(_policy.ExclusionKind))),
        )
        for n, (offset, length) in enumerate(
            draw(
                _st.lists(_st.tuples(_st.integers(-600, 44_000), _st.integers(1, 3000)), max_size=3)
            )
        )
    ]
    canaries = ENGINE_CANARIES if draw(_st.booleans()) else ()
    return {
        "policy": policy,
        "service": service,
        "month": month,
        "grid": grid,
        "tallies": tallies,
        "exclusions": exclusions,
        "canaries": canaries,
    }


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


@_st.composite
def store_located_tally_rows(draw: _st.DrawFn) -> "_TallyRow":
    """A tally upsert by one of four members spread over two locations (issue 14): members
    d1, d2 at dublin, p1 at paris, and v1 named like its own location; small key space, so
    members of one location overlap on (target, bucket) and their sums are exercised."""
    from monitor.store.base import TallyRow as _TallyRow

    row = draw(store_tally_rows())
    member, location = draw(
        _st.sampled_from([("d1", "dublin"), ("d2", "dublin"), ("p1", "paris"), ("v1", "")])
    )
    return _TallyRow(
        vantage=member,
        target=row.target,
        bucket_start=row.bucket_start,
        bucket_seconds=row.bucket_seconds,
        ok=row.ok,
        failed=row.failed,
        reasons=row.reasons,
        errors=draw(_st.integers(min_value=0, max_value=3)),
        excused=min(row.failed, draw(_st.integers(min_value=0, max_value=2))),
        location=location,
    )


# --- configuration (tests/test_config.py): durations as whole milliseconds, in seconds ---


def config_durations(min_ms: int = 0, max_ms: int = 70 * 86_400_000) -> _st.SearchStrategy[float]:
    """Durations in whole milliseconds (default 0 to ten weeks), in seconds, as the config
    file can write them."""
    return _st.integers(min_value=min_ms, max_value=max_ms).map(lambda ms: ms / 1000)


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


@_st.composite
def credit_tables(draw: _st.DrawFn) -> _policy.CreditPolicy:
    """1-4 adjacent bands between 90% and 100% (some very narrow), credit rising as uptime falls;
    each shared edge belongs to a random side; the lowest band is open below."""
    edges = sorted(
        set(draw(_st.lists(_st.integers(90_000, 99_999), min_size=1, max_size=4))), reverse=True
    )
    upper_inclusive = [draw(_st.booleans()) for _ in edges]
    tiers = tuple(
        _policy.CreditTier(
            credit_percent=_Decimal(5 * (number + 1)),
            upper=_Decimal(upper).scaleb(-3),
            upper_inclusive=upper_inclusive[number],
            lower=_Decimal(edges[number + 1]).scaleb(-3) if number + 1 < len(edges) else None,
            # The edge shared with the band below belongs to exactly one of the two.
            lower_inclusive=number + 1 >= len(edges) or not upper_inclusive[number + 1],
        )
        for number, upper in enumerate(edges)
    )
    return _policy.CreditPolicy(tiers, _Decimal("1000.00"), "EUR")


# --- SIP signalling (probes/sip/message.py) ------------------------------------------------
from probes.sip import message as _sipmsg  # noqa: E402

_SIP_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
sip_tokens = _st.text(alphabet=_SIP_TOKEN_CHARS, min_size=1, max_size=12)
"""An RFC 3261 token (header names, methods)."""

sip_header_values = _st.text(
    alphabet=_st.characters(whitelist_categories=("L", "N", "P", "S"), max_codepoint=0x2FFF)
    | _st.sampled_from(" \t"),
    max_size=40,
).map(str.strip)
"""A header value as the parser stores it: one line, no surrounding blanks."""


@_st.composite
def sip_messages(draw: _st.DrawFn) -> _sipmsg.SipMessage:
    """A well-formed request or response with arbitrary extra headers and a binary body."""
    number = draw(_st.integers(min_value=0, max_value=2**31 - 1))
    method = draw(sip_tokens).upper()
    pairs = [("Via", f"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{draw(sip_tokens)}")]
    pairs.append(("CSeq", f"{number} {method}"))
    for _ in range(draw(_st.integers(min_value=0, max_value=6))):
        name = draw(sip_tokens)
        if _sipmsg.canonical_name(name) in ("CSeq", "Content-Length"):
            continue
        pairs.append((name, draw(sip_header_values)))
    headers = _sipmsg.Headers.of(pairs)
    body = draw(_st.binary(max_size=200))
    if draw(_st.booleans()):
        reason = draw(sip_header_values)
        status = draw(_st.integers(min_value=100, max_value=699))
        return _sipmsg.SipResponse(headers=headers, body=body, status=status, reason=reason)
    uri = "sip:" + draw(sip_tokens) + "@example.org"
    return _sipmsg.SipRequest(headers=headers, body=body, method=method, uri=uri)


# --- DTMF (probes/sip/dtmf.py) -----------------------------------------------------------
dtmf_keys = _st.sampled_from("0123456789*#ABCD")
"""One DTMF key."""

dtmf_tone_packets = _st.integers(min_value=1, max_value=200)
"""How many 20 ms packet intervals a key is held (up to 4 s, within the 16-bit duration)."""


sip_reply_scripts = _st.lists(
    _st.one_of(
        _st.sampled_from(["valid", "foreign_branch", "other_method", "provisional", "truncated"]),
        _st.binary(max_size=300),
    ),
    max_size=6,
)
"""What a hostile SIP peer answers to one request: named reply kinds or raw garbage datagrams."""


# --- web probes (probes/http.py, probes/tls.py) ------------------------------------------


@_st.composite
def chunked_bodies(draw: _st.DrawFn) -> tuple[bytes, bytes]:
    """A body and one valid chunked encoding of it: random chunk boundaries, upper- or
    lower-case hex sizes, chunk extensions, and an optional trailer."""
    body = draw(_st.binary(max_size=2000))
    cuts = sorted(draw(_st.lists(_st.integers(min_value=0, max_value=len(body)), max_size=8)))
    bounds = list(zip([0, *cuts], [*cuts, len(body)], strict=True))
    wire = b""
    for start, end in bounds:
        if end == start:
            continue
        size = f"{end - start:x}".encode()
        size = size.upper() if draw(_st.booleans()) else size
        extension = draw(_st.sampled_from([b"", b";a=1", b'; name="v"']))
        wire += size + extension + b"\r\n" + body[start:end] + b"\r\n"
    trailer = draw(_st.sampled_from([b"", b"X-Checksum: 1\r\n"]))
    return body, wire + b"0\r\n" + trailer + b"\r\n"


_HTTP_FRAGMENTS = [
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.0 503 Service Unavailable\r\n",
    b"HTTP/1.1 100 Continue\r\n",
    b"HTTP/9 2000\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 99999999\r\n",
    b"Content-Length: -1\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip\r\n",
    b"Location: /x\r\n",
    b"X-Bad header\r\n",
    b" folded\r\n",
    b"\r\n",
    b"\n",
    b"5\r\nhello\r\n",
    b"0\r\n\r\n",
    b"fffffffffffffffff\r\n",
    b"zz\r\n",
]

http_response_noise = _st.one_of(
    _st.binary(max_size=3000),
    _st.lists(
        _st.one_of(_st.sampled_from(_HTTP_FRAGMENTS), _st.binary(max_size=40)), max_size=14
    ).map(b"".join),
)
"""Bytes a broken or hostile server might send back: noise, or HTTP-shaped fragments in any
order."""


# -- month scenarios for the agreement test (tests/test_agreement.py) -----------------------
_SCENARIO_DAY = _datetime(2026, 11, 2, tzinfo=_UTC)
SCENARIO_BUCKETS = 72
"""Six hours of 5-minute buckets, from 2 November 2026 00:00 UTC."""


def _scenario_window(ident: str, *, kinds: tuple[str, ...]) -> _st.SearchStrategy[dict[str, _Any]]:
    def build(
        first: int, length: int, notice: int | None, kind: str, all_services: bool
    ) -> dict[str, _Any]:
        start = _SCENARIO_DAY + _timedelta(minutes=5 * first)
        window: dict[str, _Any] = {
            "id": ident,
            "kind": kind,
            "start": start.isoformat(),
            "end": (start + _timedelta(minutes=5 * length)).isoformat(),
        }
        if not all_services:
            window["services"] = ["svc"]
        if notice is not None:
            window["announced_at"] = (start - _timedelta(minutes=notice)).isoformat()
        return window

    return _st.builds(
        build,
        _st.integers(0, SCENARIO_BUCKETS - 1),
        _st.integers(1, 8),
        _st.one_of(_st.none(), _st.sampled_from([5, 30, 59, 60, 120, 1440])),
        _st.sampled_from(kinds),
        _st.booleans(),
    )


@_st.composite
def month_scenarios(draw: _st.DrawFn) -> dict[str, _Any]:
    """A configuration (as YAML data), probe outcomes per target and bucket ('u' up, 'f'
    failed, '-' none), API windows, gaps and an as-of instant: every input a month takes."""
    kinds = ("scheduled_maintenance", "force_majeure")
    down_when = draw(_st.sampled_from(["any", "all", "quorum"]))
    service: dict[str, _Any] = {"name": "svc", "targets": ["a", "b"], "down_when": down_when}
    if down_when == "quorum":
        service["quorum"] = draw(_st.integers(1, 2))
    sla: dict[str, _Any] = {
        "name": "svc-sla",
        "service": "svc",
        "objective": "99.9",
        "timezone": draw(_st.sampled_from(["UTC", "Europe/London", "Asia/Kolkata"])),
        "unknown_buckets": draw(_st.sampled_from(["exclude", "unavailable"])),
        "monthly_fee": "1000.00",
        "currency": "EUR",
        "credit_tiers": [
            {"below": "99.9", "at_least": "99.0", "credit_percent": 10},
            {"below": "99.0", "credit_percent": 25},
        ],
    }
    notice = draw(
        _st.one_of(
            _st.none(),
            _st.fixed_dictionaries(
                {
                    "min_notice": _st.sampled_from(["10m", "1h", "1d"]),
                    "policy": _st.sampled_from(["flag", "reject"]),
                }
            ),
        )
    )
    if notice is not None:
        sla["maintenance_notice"] = notice
    fixed = [
        draw(_scenario_window(f"cfg-{i}", kinds=kinds)) for i in range(draw(_st.integers(0, 2)))
    ]
    api = [draw(_scenario_window(f"api-{i}", kinds=kinds)) for i in range(draw(_st.integers(0, 2)))]
    config: dict[str, _Any] = {
        "monitor": {"name": "agree"},
        "targets": [
            {"name": name, "kind": "tcp", "tcp": {"host": "127.0.0.1", "port": 9}}
            for name in ("a", "b")
        ],
        "services": [service],
        "slas": [sla],
        "exclusions": fixed,
    }
    if draw(_st.booleans()):
        config["targets"].append(
            {"name": "c", "kind": "tcp", "role": "canary", "tcp": {"host": "127.0.0.1", "port": 9}}
        )
    if draw(_st.booleans()):
        config["recurring_exclusions"] = [
            {
                "id": "nightly",
                "kind": "scheduled_maintenance",
                "rrule": f"FREQ=DAILY;BYHOUR={draw(_st.integers(0, 5))};BYMINUTE=0;BYSECOND=0",
                "dtstart": "2026-10-01T00:00:00",
                "timezone": "UTC",
                "duration": "20m",
            }
        ]
    outcome = _st.text("uuuuf-", min_size=SCENARIO_BUCKETS, max_size=SCENARIO_BUCKETS)
    probes = {t["name"]: draw(outcome) for t in config["targets"]}
    gaps = draw(
        _st.lists(_st.tuples(_st.integers(0, SCENARIO_BUCKETS - 1), _st.integers(1, 6)), max_size=2)
    )
    # As of: during the six hours, later in November, or once November is over.
    now = _SCENARIO_DAY + _timedelta(
        minutes=draw(
            _st.sampled_from([5 * SCENARIO_BUCKETS, 5 * SCENARIO_BUCKETS + 7, 20 * 1440, 31 * 1440])
        )
    )
    return {
        "config": config,
        "probes": probes,
        "api": api,
        "gaps": [
            (
                _SCENARIO_DAY + _timedelta(minutes=5 * g),
                _SCENARIO_DAY + _timedelta(minutes=5 * (g + n)),
            )
            for g, n in gaps
        ],
        "day": _SCENARIO_DAY,
        "now": now,
    }


# --- the monitor's own errors and canary-excused failures (issues 11 and 12) ---------------
@_st.composite
def unproven_tallies(draw: _st.DrawFn) -> _policy.Tally:
    """A tally mixing ok probes, vendor failures (some excused by a canary) and the monitor's
    own errors, in small counts so that every bucket rule's edges are reached."""
    failed = draw(_st.integers(0, 4))
    errors = draw(_st.integers(0, 3))
    return _policy.Tally(
        ok=draw(_st.integers(0, 4)),
        failed=failed,
        reasons=_MappingProxyType({"timeout": failed} if failed else {}),
        errors=errors,
        error_reasons=_MappingProxyType({"secret_unavailable": errors} if errors else {}),
        excused=draw(_st.integers(0, failed)),
    )


@_st.composite
def unproven_scenarios(draw: _st.DrawFn) -> dict[str, _Any]:
    """``engine_scenarios`` with some buckets' tallies replaced by ``unproven_tallies``."""
    scenario = draw(engine_scenarios())
    grid = scenario["grid"]
    tallies = {name: dict(column) for name, column in scenario["tallies"].items()}
    for _ in range(draw(_st.integers(0, 6))):
        name = draw(_st.sampled_from(sorted(tallies)))
        index = draw(_st.integers(0, grid.count - 1))
        tallies[name][grid.bucket_start(index)] = draw(unproven_tallies())
    scenario["tallies"] = tallies
    return scenario


# --- carrier-grade SIP (probes/sip/locate.py, srtp.py, headers.py) ---------------------------
_DNS_NAMES = _st.sampled_from(
    [".", "a.example.test.", "_sip._udp.example.test.", "_sips._tcp.example.test.", "x."]
)
naptr_rdata_texts = _st.builds(
    lambda order, pref, flags, service, name: f'{order} {pref} "{flags}" "{service}" "" {name}',
    _st.integers(0, 65535),
    _st.integers(0, 65535),
    _st.sampled_from(["s", "S", "a", "u", "", "sa"]),
    _st.sampled_from(["SIP+D2U", "SIP+D2T", "SIPS+D2T", "SIP+D2S", "E2U+sip", "sip+d2u", "x"]),
    _DNS_NAMES,
)
"""NAPTR records as zone text: any order/preference, flags and services we do and do not use."""
srv_rdata_texts = _st.builds(
    lambda priority, weight, port, name: f"{priority} {weight} {port} {name}",
    _st.integers(0, 65535),
    _st.integers(0, 65535),
    _st.integers(0, 65535),
    _DNS_NAMES,
)
"""SRV records as zone text, including weight 0, port 0 and the '.' target."""
session_expires_values = _st.one_of(
    _st.text(max_size=40),
    _st.builds(
        lambda n, params: f"{n}{params}",
        _st.integers(-5, 10**12),
        _st.sampled_from(["", ";refresher=uac", ";refresher=UAS", ";refresher=", ";x", ";;"]),
    ),
)
"""Session-Expires values a hostile or broken callee might send."""


# -- prometheus samples (monitor.promsource.bucketing) ----------------------------------------
@_st.composite
def prom_series(draw: _st.DrawFn) -> tuple[int, list[tuple[int, float]]]:
    """(scrape interval ms, samples): a 0/1 series with jitter, gaps, duplicates and NaNs,
    starting before a range of 6 buckets of 10 s from epoch 1000 (so 1000..1060 s)."""
    interval = draw(_st.sampled_from([1000, 2000, 3000, 5000]))
    t = 990_000 - draw(_st.integers(0, interval))
    samples: list[tuple[int, float]] = []
    while t < 1_062_000:
        roll = draw(_st.integers(0, 99))
        if roll < 6:
            t += draw(_st.integers(1, 8)) * interval  # a scrape gap
            continue
        value = 0.0 if roll < 20 else (float("nan") if roll < 23 else 1.0)
        samples.append((t, value))
        if roll % 17 == 0:
            samples.append((t, value))  # a duplicate, as chunk edges give on Prometheus 2.x
        t += interval + draw(_st.integers(-interval // 10, interval // 10))
    return interval, samples


# --- monitoring locations (tests/test_sla_quorum.py, issue 14) -------------------------------


@_st.composite
def location_rules(draw: _st.DrawFn) -> _policy.LocationRule:
    """A location rule over 1-4 of five location names, any valid quorum."""
    names = draw(
        _st.lists(
            _st.sampled_from(["dublin", "frankfurt", "paris", "madrid", "oslo"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    quorum = draw(_st.integers(min_value=1, max_value=len(names)))
    return _policy.LocationRule(quorum=quorum, of=tuple(names))


def location_tallies() -> _st.SearchStrategy[_policy.Tally | None]:
    """One location's tally of one target's bucket: none (unheard), too few, clean, failing,
    or holding unproven probes."""
    return _st.one_of(
        _st.none(),
        _st.builds(_policy.Tally, ok=_st.integers(0, 3)),
        _st.builds(
            lambda ok, failed: _policy.Tally(ok=ok, failed=failed, reasons={"timeout": failed}),
            _st.integers(0, 3),
            _st.integers(1, 3),
        ),
        unproven_tallies(),
    )


# --- a daemon's life, step by step (tests/test_metrics_sla_text.py's Harness) ----------------
# Steps the daemon property tests draw (tests/test_flush_slices.py, test_verdict_resume.py,
# test_accounting_verdicts.py, test_metrics_sla_text.py, test_summary_due.py); each test adds
# the steps of its own (flush, restart, scrape, ...). The Harness's targets and services.
HARNESS_TARGETS = ("a1", "b1", "b2", "c1")
HARNESS_SERVICES = ("sa", "sb", "sc")


def harness_results(max_age: int = 3600) -> _st.SearchStrategy[tuple[str, str, bool, int]]:
    """``("result", target, ok, age)``: a result stamped ``age`` seconds before the clock, so
    late ones (in buckets already closed) are drawn too."""
    return _st.tuples(
        _st.just("result"),
        _st.sampled_from(HARNESS_TARGETS),
        _st.booleans(),
        _st.integers(0, max_age),
    )


def harness_advances(most: int = 1200) -> _st.SearchStrategy[tuple[str, int]]:
    """``("advance", seconds)``: the clock moves on by 1 to ``most`` seconds."""
    return _st.tuples(_st.just("advance"), _st.integers(1, most))


harness_exclusions = _st.tuples(_st.just("exclude"), _st.sampled_from(HARNESS_SERVICES))
"""``("exclude", service)``: an exclusion window added through the API for one service."""


def harness_steps(
    *others: _st.SearchStrategy[tuple[_Any, ...]], max_age: int = 3600, most: int = 1200
) -> _st.SearchStrategy[tuple[_Any, ...]]:
    """One step: a result, the clock moving on, or one of ``others`` (in that order: the
    order Hypothesis shrinks towards)."""
    return _st.one_of(harness_results(max_age), harness_advances(most), *others)


# --- sharding inside a location (monitor/sla/shard.py) -------------------------------------
shard_member_names = _st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=16
)
"""A ``monitor.name``: one member of a location."""

shard_members = _st.lists(shard_member_names, min_size=1, max_size=8, unique=True)
"""The live members of one location (distinct names, in any order)."""


@_st.composite
def shard_targets(draw: _st.DrawFn, *, count: int = 400) -> list[str]:
    """``count`` distinct target names sharing a drawn prefix (as a configuration's do)."""
    prefix = draw(_st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=0, max_size=10))
    return [f"{prefix}{index}" for index in range(count)]


# --- a running month's judged state (issue 20, r22: the snapshot codec) --------------------
@_st.composite
def judged_states(draw: _st.DrawFn) -> "_JudgedState":
    """A ``JudgedState`` as a month leaves it: judged codes (never pending), the sparse parts
    on buckets among those judged, unavailable buckets holding tallies of one to three
    targets."""
    from monitor.sla.running import _JUDGED_CODES, _U, JudgedState

    judged = draw(_st.integers(0, 300))
    raw = bytearray(
        draw(_st.lists(_st.sampled_from(list(_JUDGED_CODES)), min_size=judged, max_size=judged))
    )
    if not judged:
        return JudgedState(0, b"", (), (), (), None)
    indices = _st.integers(0, judged - 1)
    counts = _st.dictionaries(_st.text(min_size=1, max_size=12), _st.integers(0, 2**31), max_size=3)
    tally = _st.builds(
        _policy.Tally,
        ok=_st.integers(0, 1000),
        failed=_st.integers(0, 1000),
        reasons=counts,
        errors=_st.integers(0, 1000),
        error_reasons=counts,
        excused=_st.integers(0, 1000),
    )
    cells = _st.lists(_st.tuples(_st.text(min_size=1, max_size=8), tally), min_size=1, max_size=3)
    evidence = draw(_st.dictionaries(indices, cells, max_size=4))
    for index in evidence:
        raw[index] = _U
    return JudgedState(
        judged=judged,
        raw=bytes(raw),
        excused=tuple(sorted(draw(_st.sets(indices, max_size=5)))),
        errors=tuple(sorted(draw(_st.dictionaries(indices, counts, max_size=4)).items())),
        evidence=tuple((i, tuple(c)) for i, c in sorted(evidence.items())),
        first_tallied=draw(_st.none() | indices),
    )


@_st.composite
def judged_states_in_long_runs(draw: _st.DrawFn) -> "_JudgedState":
    """A judged state as months mostly are: a few long runs of one code (its evidence buckets
    unavailable, as they must be), the sparse parts of any judged state (the runs format,
    ``SWJS3``)."""
    from monitor.sla.running import _JUDGED_CODES, _U, JudgedState

    base = draw(judged_states())
    raw = bytearray()
    while len(raw) < base.judged:
        code = draw(_st.sampled_from(list(_JUDGED_CODES)))
        raw += bytes((code,)) * draw(_st.integers(1, 400))
    raw = raw[: base.judged]
    for index, _ in base.evidence:
        raw[index] = _U
    return JudgedState(
        base.judged, bytes(raw), base.excused, base.errors, base.evidence, base.first_tallied
    )


@_st.composite
def judged_states_repeating_evidence(draw: _st.DrawFn) -> "_JudgedState":
    """A judged state as a failing month leaves it: long runs of codes, many unavailable
    buckets holding one of a few distinct evidences (equal cells, equal or fresh tallies; the
    table format, ``SWJS4``)."""
    import dataclasses

    from monitor.sla.running import _JUDGED_CODES, _U, JudgedState

    base = draw(judged_states().filter(lambda s: s.judged > 0))
    raw = bytearray()
    while len(raw) < base.judged:
        code = draw(_st.sampled_from(list(_JUDGED_CODES)))
        raw += bytes((code,)) * draw(_st.integers(1, 60))
    raw = raw[: base.judged]
    kinds = [cells for _, cells in base.evidence] or [
        (("t", _policy.Tally(0, 1, {"http_503": 1})),)
    ]
    chosen = sorted(draw(_st.sets(_st.integers(0, base.judged - 1), max_size=80)))
    evidence = []
    for index in chosen:
        cells = draw(_st.sampled_from(kinds))
        if draw(_st.booleans()):  # an equal evidence in fresh objects: still written once
            cells = tuple((name, dataclasses.replace(t)) for name, t in cells)
        evidence.append((index, cells))
        raw[index] = _U
    return JudgedState(
        base.judged, bytes(raw), base.excused, base.errors, tuple(evidence), base.first_tallied
    )


def snapshot_states() -> "_st.SearchStrategy[_JudgedState]":
    """Judged states of every shape a snapshot format is chosen for: any, long runs, evidence
    repeated (the refusal tests run each format over all of them)."""
    return _st.one_of(
        judged_states(), judged_states_in_long_runs(), judged_states_repeating_evidence()
    )


if TYPE_CHECKING:
    from monitor.sla.running import JudgedState as _JudgedState
