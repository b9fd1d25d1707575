"""TLS options shared by the ``http`` and ``tcp`` probes, their cached SSL contexts, and the
peer certificate's expiry.

Building an ``SSLContext`` loads the system CA bundle (milliseconds of CPU), so a context is
built once per distinct option set and reused by every probe of every target that shares it;
the connection itself is always new.
"""

from __future__ import annotations

import calendar
import functools
import ssl
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

TlsVersion = Literal["TLS1.0", "TLS1.1", "TLS1.2", "TLS1.3"]

_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS1.0": ssl.TLSVersion.TLSv1,
    "TLS1.1": ssl.TLSVersion.TLSv1_1,
    "TLS1.2": ssl.TLSVersion.TLSv1_2,
    "TLS1.3": ssl.TLSVersion.TLSv1_3,
}
_VERSION_NAMES: dict[str, str] = {
    "TLSv1": "TLS1.0",
    "TLSv1.1": "TLS1.1",
    "TLSv1.2": "TLS1.2",
    "TLSv1.3": "TLS1.3",
}


class TlsOptions(BaseModel):
    """How to set up TLS towards a target.

    ``verify: false`` still completes the handshake and records the certificate's expiry; it
    only stops an untrusted or mismatched certificate from failing the probe.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    verify: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None
    min_version: TlsVersion = "TLS1.2"
    max_version: TlsVersion | None = None
    """Highest version offered (None: what OpenSSL allows); pin ``TLS1.2`` to prove a
    vendor still serves it."""

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"expected an existing file, got {str(value)!r}")
        return value

    @field_validator("server_name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c in value for c in " /:\t\r\n")):
            raise ValueError(f"expected a host name such as api.example.com, got {value!r}")
        return value

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TlsOptions:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError(
                "key_file is set but cert_file is not: give both for a client certificate"
            )
        return self

    @model_validator(mode="after")
    def _version_range(self) -> TlsOptions:
        if (
            self.max_version is not None
            and _VERSIONS[self.max_version] < _VERSIONS[self.min_version]
        ):
            raise ValueError(
                f"max_version {self.max_version} is below min_version {self.min_version}"
            )
        return self


DEFAULT_TLS = TlsOptions()
"""The options nothing was given for, shared: an options model is frozen."""


class TlsConfigError(OSError):
    """Raised by ``client_context`` when a configured CA, certificate or key file cannot be
    loaded: a problem of the monitor's own set-up, never evidence against the vendor.

    An ``OSError`` so that callers written against the ``ssl.SSLError``/``OSError`` that
    loading used to raise keep catching it."""


@functools.lru_cache(maxsize=1024)
def client_context(options: TlsOptions) -> ssl.SSLContext:
    """The (shared, cached) client context for ``options``; raises ``TlsConfigError``."""
    try:
        context = ssl.create_default_context(
            cafile=str(options.ca_file) if options.ca_file is not None else None
        )
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"cannot load ca_file {options.ca_file}: {exc}") from exc
    if not options.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = _VERSIONS[options.min_version]
    if options.max_version is not None:
        context.maximum_version = _VERSIONS[options.max_version]
    if options.cert_file is not None:
        try:
            context.load_cert_chain(
                str(options.cert_file),
                str(options.key_file) if options.key_file is not None else None,
            )
        except (ssl.SSLError, OSError) as exc:
            raise TlsConfigError(
                f"cannot load cert_file {options.cert_file} / key_file {options.key_file}: {exc}"
            ) from exc
    return context


def tls_version_name(ssl_object: ssl.SSLObject | None) -> str:
    """``TLS1.3``-style name of the negotiated protocol (empty when unknown)."""
    if ssl_object is None:
        return ""
    raw = ssl_object.version() or ""
    return _VERSION_NAMES.get(raw, raw)


def peer_certificate_expiry(ssl_object: ssl.SSLObject | None) -> float | None:
    """The earliest notAfter, as epoch seconds, of the peer's certificate chain, or None
    without a certificate.

    Like blackbox's ``probe_ssl_earliest_cert_expiry``: over the verified chain when
    verification is on (so an intermediate or root that expires first is what counts), over
    the chain the peer sent when it is off. Python 3.11 exposes the chains only through the
    private ``_sslobj`` (public from 3.13); where that is missing, the leaf alone is read.
    Read from DER bytes because ``getpeercert()`` returns an empty dict when verification is
    off, and an expiring certificate is worth knowing about exactly then.
    """
    if ssl_object is None:
        return None
    ders = _chain_ders(ssl_object)
    if not ders:
        leaf = ssl_object.getpeercert(binary_form=True)
        ders = [leaf] if leaf else []
    expiries = []
    for der in ders:
        try:
            expiries.append(certificate_not_after(der))
        except CertificateParseError:
            # OpenSSL accepted the handshake; an expiry we cannot read is missing evidence,
            # not a reason to fail the probe.
            continue
    return min(expiries) if expiries else None


def _chain_ders(ssl_object: ssl.SSLObject) -> list[bytes]:
    inner = getattr(ssl_object, "_sslobj", None)
    for name in ("get_verified_chain", "get_unverified_chain"):
        getter = getattr(inner, name, None)
        if getter is None:
            continue
        try:
            chain = getter()
            ders = [cert.public_bytes(_ENCODING_DER) for cert in chain or ()]
        except (ssl.SSLError, AttributeError, TypeError, ValueError):
            continue
        if ders and all(isinstance(der, bytes) for der in ders):
            return ders
    return []


_ENCODING_DER = 2  # _ssl.ENCODING_DER, private like the chain getters


class CertificateParseError(ValueError):
    """Raised by ``certificate_not_after`` when the bytes are not a DER X.509 certificate."""


def certificate_not_after(der: bytes) -> float:
    """The notAfter field of a DER-encoded X.509 certificate, as epoch seconds (UTC)."""
    start = _tlv(der, 0, 0x30)[1]  # Certificate
    _, pos, tbs_end = _tlv(der, start, 0x30)  # TBSCertificate
    if pos < tbs_end and der[pos] == 0xA0:  # optional [0] version
        pos = _tlv(der, pos, 0xA0)[2]
    pos = _tlv(der, pos, 0x02)[2]  # serialNumber
    pos = _tlv(der, pos, 0x30)[2]  # signature algorithm
    pos = _tlv(der, pos, 0x30)[2]  # issuer
    _, validity, _ = _tlv(der, pos, 0x30)
    after = _tlv(der, validity, None)[2]  # skip notBefore
    tag, vstart, vend = _tlv(der, after, None)
    return _asn1_time(tag, der[vstart:vend])


def _tlv(data: bytes, pos: int, expected_tag: int | None) -> tuple[int, int, int]:
    """(tag, value start, value end) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise CertificateParseError(f"truncated DER element at offset {pos}")
    tag = data[pos]
    if expected_tag is not None and tag != expected_tag:
        raise CertificateParseError(
            f"expected DER tag 0x{expected_tag:02x} at offset {pos}, got 0x{tag:02x}"
        )
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise CertificateParseError(f"unsupported DER length at offset {pos - 1}")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise CertificateParseError(f"DER element at offset {pos} runs past the end")
    return tag, pos, pos + length


def _asn1_time(tag: int, raw: bytes) -> float:
    text = raw.decode("ascii", errors="replace")
    if not text[:-1].isdigit() or not text[:-1].isascii():
        raise CertificateParseError(f"unsupported certificate time {text!r}")
    if tag == 0x17 and len(text) == 13 and text.endswith("Z"):  # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        year += 1900 if year >= 50 else 2000
        rest = text[2:12]
    elif tag == 0x18 and len(text) == 15 and text.endswith("Z"):  # GeneralizedTime
        year = int(text[:4])
        rest = text[4:14]
    else:
        raise CertificateParseError(f"unsupported certificate time {text!r} (tag 0x{tag:02x})")
    month, day, hour, minute, second = (int(rest[i : i + 2]) for i in range(0, 10, 2))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        raise CertificateParseError(f"invalid certificate time {text!r}")
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
