"""Every failure reason a probe can give, classified: the vendor's failure or the monitor's own.

A claim for money may count only what proves the vendor failed. A probe that could not run
(its password file is gone, this host ran out of sockets or RTP ports, its TLS set-up is wrong,
a bug raised an exception) proves nothing about the vendor: such a probe is a *monitor error*,
kept apart from the vendor's failures in every tally, and a bucket whose only failures are
monitor errors is unknown, never unavailable.

This module is the one table. ``tests/test_sla_reasons.py`` reads the probe modules' source and
checks that every reason token they can produce is classified here, and that every reason given
with outcome ``error`` is on the monitor's side.
"""

from __future__ import annotations

import re
from enum import StrEnum

from probes.result import Outcome

_EXCEPTION_NAME = re.compile(r"[A-Z][A-Za-z0-9_]*")


class Side(StrEnum):
    """Whose failure a probe failure is evidence of."""

    VENDOR = "vendor"
    """The endpoint answered wrongly, refused, or did not answer: counts against the vendor
    (unless an exclusion or a canary excuses it)."""
    MONITOR = "monitor"
    """The monitor could not measure: never counts against the vendor."""


MONITOR_REASONS: frozenset[str] = frozenset(
    {
        "secret_unavailable",  # a password/token file or variable could not be read
        "tls_config_error",  # our CA file / client certificate could not be loaded
        "probe_error",  # the probe failed in an unexpected way (a bug)
        "rtp_ports_exhausted",  # no free local RTP port for a test call
        "no_final_response",  # a call ended without a verdict: the probe's own inconsistency
        # Our resolver did not answer in time: it may be our own DNS, so it proves nothing
        # against the vendor (a vendor domain that does not resolve is resolve_failed).
        "resolver_timeout",
    }
)
"""Exact monitor-side reasons."""

MONITOR_PREFIXES: tuple[str, ...] = ("local_",)
"""``local_<errno>``: this host ran out of descriptors, buffers or ports, or a local firewall
refused the socket (see ``probes.tcp.os_error_reason``)."""

VENDOR_REASONS: frozenset[str] = frozenset(
    {
        # connection and transport
        "timeout",
        "connect_timeout",
        "connection_refused",
        "connection_reset",
        "connection_aborted",
        "connection_closed",
        "network_unreachable",
        "host_unreachable",
        "icmp_unreachable",
        "resolve_failed",
        "send_failed",
        "socket_error",
        "empty_reply",
        "line_too_long",
        "expect_mismatch",
        # TLS as the peer presented it
        "tls_certificate_invalid",
        "tls_handshake_failed",
        "tls_error",
        # HTTP
        "too_many_redirects",
        "redirect_location_invalid",
        "redirect_not_followed",
        "body_regex_forbidden",
        "body_regex_missing",
        "body_too_large",
        # DNS
        "dns_error",
        "dns_no_address",
        "dns_no_answer",
        "dns_answer_forbidden",
        "dns_answer_all_forbidden",
        "dns_answer_unexpected",
        "dns_answer_missing",
        "dns_bad_response",
        "dns_connection_closed",
        "dns_malformed_response",
        "dns_unexpected_source",
        # SIP signalling and authentication
        "auth_required",
        "auth_failed",
        "auth_unsupported",
        "auth_realm_mismatch",
        "malformed_response",
        "mismatched_response",  # a reply not to our transaction: the peer is confused
        "all_servers_failed",  # every server RFC 3263 location gave refused or timed out
        "bad_session_expires",  # the callee's Session-Expires header is malformed
        "bad_crypto",  # the callee's SDP crypto attribute is malformed
        "srtp_not_negotiated",  # SRTP mandatory and the callee offered none
        "srtp_auth_failed",  # the callee does not use the key it announced
        "message_too_large",
        "no_answer",
        "remote_hangup",
        "bad_sdp",
        "dtmf_unsupported",
        # call media
        "no_rtp",
        "rtp_loss",
        "rtp_jitter",
        "low_mos",
        "silence",
        "silence_after_dtmf",
        # a results file's failure without a reason
        "unspecified",
    }
)
"""Exact vendor-side reasons."""

VENDOR_PREFIXES: tuple[str, ...] = (
    "timeout_",  # timeout_<phase> (resolve, connect, tls, first_byte, transfer, ...)
    "status_code_",  # HTTP or SIP final status not accepted
    "unregister_status_code_",
    "redirect_",  # SIP 3xx not accepted
    "rejected_",  # SIP 4xx-6xx class
    "http_",  # malformed or incomplete HTTP from the peer
    "dns_",  # resolver answers: dns_nxdomain, dns_servfail, dns_<rcode>, ...
    "socket_",  # socket_<errno> not known to be local
)
"""Vendor-side families."""


def classify(reason: str) -> Side | None:
    """The side of ``reason`` from the table alone; ``None`` if the table does not know it.

    An exception's class name (``RuntimeError``; the reason a probe gives when it raised
    unexpectedly: one identifier starting with a capital letter) is the monitor's side.
    """
    if reason in MONITOR_REASONS or reason.startswith(MONITOR_PREFIXES):
        return Side.MONITOR
    if _EXCEPTION_NAME.fullmatch(reason):
        return Side.MONITOR
    if reason in VENDOR_REASONS or reason.startswith(VENDOR_PREFIXES):
        return Side.VENDOR
    return None


def side_of(outcome: Outcome, reason: str) -> Side:
    """Whose failure one failed probe is: outcome ``error`` is always the monitor's own;
    otherwise the table decides, and a reason it does not know stays the vendor's (the probe
    said ``down`` or ``timeout``, which is evidence about the endpoint)."""
    if outcome is Outcome.ERROR:
        return Side.MONITOR
    return classify(reason) or Side.VENDOR


def side_of_reason(reason: str | None) -> Side:
    """The side of a failure known only by its reason (a results file carries no outcome)."""
    return classify(reason or "unspecified") or Side.VENDOR
