"""Digest authentication for SIP (RFC 3261 §22, RFC 8760 algorithms, RFC 7616 computation).

Pure functions: the challenge is parsed from a 401/407, the strongest algorithm this Python's
hashlib offers is picked among the challenges (SHA-512-256 > SHA-256 > MD5, each before its
``-sess`` variant), and the retry request carries the credentials with ``qop=auth`` when the
server offers it. ``hashlib`` may lack SHA-512/256 (it depends on the OpenSSL build), so
``supported_algorithms()`` is computed, never assumed.

Public API:
  DigestError (reason ``auth_unsupported`` or ``auth_realm_mismatch``)
  Credentials(username, password, realm=None)
  Challenge / parse_challenge(value, header="WWW-Authenticate")
  challenges_in(response) -> list[Challenge];  choose_challenge(challenges, realm=None)
  digest_response(challenge, *, method, uri, username, password, cnonce, nc, qop, body=b"")
  authorization_value(challenge, credentials, *, method, uri, cnonce, nc=1, body=b"") -> str
  authorize(request, response, credentials, *, cnonce=None, nc=1) -> SipRequest
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from functools import cache

from probes.sip.message import SipRequest, SipResponse, parse_cseq, split_list

_HASHES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
_STRENGTH = ("MD5-sess", "MD5", "SHA-256-sess", "SHA-256", "SHA-512-256-sess", "SHA-512-256")


class DigestError(Exception):
    """Raised when no challenge can be answered; ``reason`` is the probe's reason token."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Credentials:
    """Who we are; ``realm`` (optional) restricts which challenges we answer."""

    username: str
    password: str
    realm: str | None = None

    def __repr__(self) -> str:
        # Keep the password out of logs and tracebacks.
        return f"Credentials(username={self.username!r}, realm={self.realm!r})"


@dataclass(frozen=True)
class Challenge:
    """One parsed ``Digest`` challenge; ``header`` says where it came from."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    header: str = "WWW-Authenticate"

    @property
    def answer_header(self) -> str:
        """Authorization for a 401 challenge, Proxy-Authorization for a 407 one."""
        return "Proxy-Authorization" if self.header == "Proxy-Authenticate" else "Authorization"


@cache
def supported_algorithms() -> frozenset[str]:
    """Algorithm names (with their -sess variants) this interpreter can compute."""
    found: set[str] = set()
    for name, hash_name in _HASHES.items():
        try:
            hashlib.new(hash_name, b"")
        except ValueError:
            continue
        found.update({name, f"{name}-sess"})
    return frozenset(found)


def _canonical_algorithm(value: str) -> str:
    for name in _STRENGTH:
        if name.lower() == value.lower():
            return name
    return value


def parse_challenge(value: str, header: str = "WWW-Authenticate") -> Challenge:
    """Parse ``Digest realm="x", nonce="y", qop="auth,auth-int", algorithm=SHA-256``."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestError("auth_unsupported", f"{header}: scheme {scheme!r} is not Digest")
    params: dict[str, str] = {}
    for item in split_list(rest):
        name, eq, raw = item.partition("=")
        if not eq:
            continue
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[name.strip().lower()] = raw
    if "realm" not in params or "nonce" not in params:
        raise DigestError(
            "auth_unsupported", f"{header}: challenge lacks realm or nonce: {value!r:.120}"
        )
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=_canonical_algorithm(params.get("algorithm", "MD5")),
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
        header=header,
    )


def challenges_in(response: SipResponse) -> list[Challenge]:
    """Every Digest challenge of a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate)."""
    header = "Proxy-Authenticate" if response.status == 407 else "WWW-Authenticate"
    found: list[Challenge] = []
    for value in response.headers.values(header):
        try:
            found.append(parse_challenge(value, header))
        except DigestError:
            continue  # another scheme (Basic, Bearer) may sit beside a Digest challenge
    return found


def choose_challenge(challenges: list[Challenge], realm: str | None = None) -> Challenge:
    """The strongest answerable challenge; DigestError saying what was offered if none."""
    if realm is not None:
        matching = [c for c in challenges if c.realm == realm]
        if challenges and not matching:
            offered = sorted({c.realm for c in challenges})
            raise DigestError(
                "auth_realm_mismatch", f"configured realm {realm!r} not challenged; got {offered}"
            )
        challenges = matching
    usable = [c for c in challenges if c.algorithm in supported_algorithms()]
    if not usable:
        offered = sorted({c.algorithm for c in challenges}) or ["no Digest challenge"]
        raise DigestError(
            "auth_unsupported",
            f"no supported digest algorithm offered: {offered}; "
            f"supported: {sorted(supported_algorithms())}",
        )
    return max(usable, key=lambda c: _STRENGTH.index(c.algorithm))


def _hash(algorithm: str, text: bytes) -> str:
    base = algorithm.removesuffix("-sess")
    return hashlib.new(_HASHES[base], text).hexdigest()


def digest_response(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int,
    qop: str | None,
    body: bytes = b"",
) -> str:
    """The ``response`` value (RFC 7616 §3.4.1; without qop, RFC 2069 form)."""
    alg = challenge.algorithm

    def h(text: str) -> str:
        return _hash(alg, text.encode("utf-8"))

    ha1 = h(f"{username}:{challenge.realm}:{password}")
    if alg.endswith("-sess"):
        ha1 = h(f"{ha1}:{challenge.nonce}:{cnonce}")
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 = f"{a2}:{_hash(alg, body)}"
    ha2 = h(a2)
    if qop is None:
        return h(f"{ha1}:{challenge.nonce}:{ha2}")
    return h(f"{ha1}:{challenge.nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization_value(
    challenge: Challenge,
    credentials: Credentials,
    *,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The Authorization / Proxy-Authorization header value answering ``challenge``."""
    if "auth" in challenge.qop:
        qop: str | None = "auth"
    elif "auth-int" in challenge.qop:
        qop = "auth-int"
    else:
        qop = None
    response = digest_response(
        challenge,
        method=method,
        uri=uri,
        username=credentials.username,
        password=credentials.password,
        cnonce=cnonce,
        nc=nc,
        qop=qop,
        body=body,
    )
    parts = [
        f"username={_quote(credentials.username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if qop is not None:
        parts.extend([f"qop={qop}", f"nc={nc:08x}", f"cnonce={_quote(cnonce)}"])
    return "Digest " + ", ".join(parts)


def authorize(
    request: SipRequest,
    response: SipResponse,
    credentials: Credentials,
    *,
    cnonce: str | None = None,
    nc: int = 1,
) -> SipRequest:
    """The retry of ``request`` answering the 401/407 ``response``.

    CSeq is incremented and the Via removed, so the endpoint sends it as a new transaction
    with a new branch (RFC 3261 §22.2); earlier credentials for the same realm are replaced.
    """
    if response.status not in (401, 407):
        raise ValueError(f"authorize() needs a 401 or 407 response, got {response.status}")
    challenge = choose_challenge(challenges_in(response), credentials.realm)
    value = authorization_value(
        challenge,
        credentials,
        method=request.method,
        uri=request.uri,
        cnonce=cnonce or secrets.token_hex(8),
        nc=nc,
        body=request.body,
    )
    number, method = parse_cseq(request.headers.get("CSeq") or "")
    headers = request.headers.without("Via").with_replaced("CSeq", f"{number + 1} {method}")
    headers = headers.without(challenge.answer_header).with_added(challenge.answer_header, value)
    return replace(request, headers=headers)
