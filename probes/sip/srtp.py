"""SRTP for test calls: SDES key exchange in SDP (RFC 4568) and libsrtp through pylibsrtp.

A contact centre's edge usually insists on encrypted media; a probe that only speaks plain
RTP is refused there (488) or measures nothing. The keys travel in ``a=crypto`` lines of the
offer and answer (which is why SDES wants TLS signalling); the packets are protected and
checked by libsrtp (the maintained C library, via ``pylibsrtp``), never by code of ours.

Public API:
  SUITES (suite name -> libsrtp profile), DEFAULT_SUITES
  CryptoAttribute (tag, suite, key) / parse_crypto(value) / .format()
  select_crypto(values, suites, offered) -> (CryptoAttribute | None, problems)
  new_key() -> 30 bytes (128-bit master key + 112-bit salt)
  SrtpError(reason); SrtpContext(suite, local_key, remote_key): protect, unprotect,
      protect_rtcp, unprotect_rtcp
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pylibsrtp

SUITES: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
DEFAULT_SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
"""Offered in this order (tags 1, 2): the 80-bit tag first, as RFC 4568 recommends."""
KEY_SALT_BYTES = 30


class SrtpError(ValueError):
    """Raised for an unusable ``a=crypto`` line (``bad_crypto``) and by ``unprotect`` for a
    packet that fails authentication or replay checks (``srtp_auth_failed``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """One ``a=crypto:<tag> <suite> inline:<key||salt>[|lifetime]`` value."""

    tag: int
    suite: str
    key: bytes

    def format(self) -> str:
        """The attribute value (without ``a=crypto:``)."""
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode('ascii')}"


def parse_crypto(value: str) -> CryptoAttribute:
    """Parse an ``a=crypto`` value; ``SrtpError('bad_crypto')`` says what is wrong.

    Only suites in ``SUITES``, one inline key of 30 bytes, no MKI (RFC 4568 §9.2 lets an
    answerer refuse what it does not support; libsrtp is set up here without MKIs).
    """
    parts = value.strip().split()
    if len(parts) < 3 or not parts[0].isascii() or not parts[0].isdigit() or len(parts[0]) > 9:
        raise SrtpError(
            "bad_crypto", f"a=crypto: expected '<tag> <suite> inline:<key>', got {value[:120]!r}"
        )
    tag, suite, params = int(parts[0]), parts[1], parts[2]
    if suite not in SUITES:
        raise SrtpError("bad_crypto", f"a=crypto: unsupported suite {suite[:60]!r}")
    if ";" in params:
        raise SrtpError("bad_crypto", "a=crypto: several keys in one line are not supported")
    if not params.startswith("inline:"):
        raise SrtpError("bad_crypto", f"a=crypto: expected an inline: key, got {params[:60]!r}")
    key_text, _, rest = params[len("inline:") :].partition("|")
    if rest.count("|") >= 1 or ":" in rest:
        raise SrtpError("bad_crypto", "a=crypto: keys with an MKI are not supported")
    try:
        key = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        raise SrtpError("bad_crypto", "a=crypto: the inline key is not base64") from None
    if len(key) != KEY_SALT_BYTES:
        raise SrtpError(
            "bad_crypto", f"a=crypto: expected a 30-byte key and salt, got {len(key)} bytes"
        )
    return CryptoAttribute(tag, suite, key)


def new_key() -> bytes:
    """A fresh random master key and salt."""
    return os.urandom(KEY_SALT_BYTES)


class SrtpContext:
    """Both directions of one call: ours protected with ``local_key``, the peer's checked
    and decrypted with ``remote_key``."""

    def __init__(self, suite: str, local_key: bytes, remote_key: bytes) -> None:
        profile = SUITES[suite]
        self.suite = suite
        self.remote_key = remote_key
        self._out = pylibsrtp.Session(
            policy=pylibsrtp.Policy(
                key=local_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
            )
        )
        self._in = pylibsrtp.Session(
            policy=pylibsrtp.Policy(
                key=remote_key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND, srtp_profile=profile
            )
        )

    def protect(self, packet: bytes) -> bytes:
        return bytes(self._out.protect(packet))

    def protect_rtcp(self, packet: bytes) -> bytes:
        return bytes(self._out.protect_rtcp(packet))

    def unprotect(self, packet: bytes) -> bytes:
        try:
            return bytes(self._in.unprotect(packet))
        except pylibsrtp.Error as exc:
            raise SrtpError("srtp_auth_failed", f"SRTP packet rejected: {exc}") from exc

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        try:
            return bytes(self._in.unprotect_rtcp(packet))
        except pylibsrtp.Error as exc:
            raise SrtpError("srtp_auth_failed", f"SRTCP packet rejected: {exc}") from exc


def select_crypto(
    values: Sequence[str], suites: Sequence[str], offered: Mapping[int, CryptoAttribute] | None
) -> tuple[CryptoAttribute | None, list[str]]:
    """The ``a=crypto`` line to key the media with, and why the others were skipped.

    In an answer to our offer (``offered`` = what we sent) it must name one of our tags with
    that tag's suite (RFC 4568 §6.1). In a callee's offer (``offered`` None: a re-INVITE) any
    line with a suite of ours will do; we answer with its tag (§7.1.1).
    """
    problems: list[str] = []
    for value in values:
        try:
            attribute = parse_crypto(value)
        except SrtpError as exc:
            problems.append(str(exc))
            continue
        if offered is not None:
            ours = offered.get(attribute.tag)
            if ours is None or ours.suite != attribute.suite:
                problems.append(f"tag {attribute.tag} {attribute.suite} was not offered")
                continue
        elif attribute.suite not in suites:
            problems.append(f"suite {attribute.suite} is not one of ours")
            continue
        return attribute, problems
    return None, problems
