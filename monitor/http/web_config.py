"""The exporter-toolkit web configuration (``--web.config.file``): TLS, basic auth, headers.

Operators protect every Prometheus exporter with the same ``web-config.yml``
(https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md); the
daemon reads that file for its one port (``/metrics``, the API, the webhook, the web pages).

What Python's ``ssl`` cannot do is refused with a one-line message naming the key, never
ignored: ``RequestClientCert``/``RequireAnyClientCert`` (no "ask but do not verify" mode),
``curve_preferences``, ``client_allowed_sans``, inline ``cert``/``key``/``client_ca``,
``http2: true`` (aiohttp serves HTTP/1.1) and ``rate_limit``.

Basic auth: bcrypt hashes (``htpasswd -nBC 10 USER``). A check costs 70-300 ms of CPU, so it
runs in a worker thread (bcrypt releases the GIL), one at a time, and successful checks are
remembered (keyed by a SHA-256 of user, hash and password) so a scrape every 15 s costs one
bcrypt check per process lifetime. Unknown users are checked against a fixed hash so that the
answer's timing does not reveal which users exist.

Write endpoints keep the bearer token on top: a request carrying ``Authorization: Bearer`` is
authenticated by the API token instead of a password (Alertmanager's webhook sends it), and the
write routes still refuse a request without the token.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import structlog
import yaml
from aiohttp import web

log = structlog.get_logger(__name__)


class WebConfigError(Exception):
    """A web configuration the daemon cannot honour; the message is one line naming the key."""


TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
CLIENT_AUTH_REFUSED = {
    "RequestClientCert": "Python's ssl cannot ask for a certificate without verifying it",
    "RequireAnyClientCert": "Python's ssl cannot require a certificate without verifying it",
}

GO_CIPHERS = {
    # Go's names (crypto/tls) -> OpenSSL's; they apply to TLS 1.2 and lower only, as in Go.
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
}

ALLOWED_HEADERS = (
    # The exporter-toolkit's list: security headers only, never Content-Type and the like.
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
)

FAKE_HASH = b"$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"
"""The exporter-toolkit's hash of "fakepassword": unknown users cost the same check."""

_TOP_KEYS = {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"}
_TLS_KEYS = {
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "min_version",
    "max_version",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
    "client_allowed_sans",
    "cert",
    "key",
    "client_ca",
}


@dataclass(frozen=True)
class TlsSettings:
    """``tls_server_config`` as Python's ssl can honour it; file paths already resolved."""

    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True


@dataclass(frozen=True)
class WebConfig:
    """The whole file: TLS (or plain HTTP), basic-auth users (name -> bcrypt hash), headers."""

    tls: TlsSettings | None = None
    users: Mapping[str, bytes] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


def _mapping(value: Any, key: str, allowed: set[str] | None = None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise WebConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
    if allowed is not None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise WebConfigError(
                f"{key}: unknown key(s) {', '.join(unknown)}; expected some of "
                f"{', '.join(sorted(allowed))}"
            )
    return value


def _text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise WebConfigError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _tls(data: dict[str, Any], base: Path) -> TlsSettings:
    key = "tls_server_config"
    for inline in ("cert", "key", "client_ca"):
        if inline in data:
            raise WebConfigError(
                f"{key}.{inline}: inline PEM is not supported; use {inline}_file with a path"
            )
    if data.get("curve_preferences"):
        raise WebConfigError(
            f"{key}.curve_preferences: not supported (Python's ssl sets one curve only); remove it"
        )
    if data.get("client_allowed_sans"):
        raise WebConfigError(f"{key}.client_allowed_sans: not supported; remove it")
    for needed in ("cert_file", "key_file"):
        if needed not in data:
            raise WebConfigError(f"{key}.{needed}: required when tls_server_config is given")
    auth = data.get("client_auth_type", "NoClientCert")
    if auth in CLIENT_AUTH_REFUSED:
        raise WebConfigError(
            f"{key}.client_auth_type: {auth} is not supported ({CLIENT_AUTH_REFUSED[auth]}); "
            "use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
        )
    if auth not in CLIENT_AUTH:
        raise WebConfigError(
            f"{key}.client_auth_type: expected one of {', '.join(CLIENT_AUTH)}, got {auth!r}"
        )
    ca = data.get("client_ca_file")
    if auth != "NoClientCert" and ca is None:
        raise WebConfigError(f"{key}.client_ca_file: required with client_auth_type {auth}")
    versions = {}
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        version = data.get(name, default)
        if version not in TLS_VERSIONS:
            raise WebConfigError(
                f"{key}.{name}: expected one of {', '.join(TLS_VERSIONS)}, got {version!r}"
            )
        versions[name] = version
    if TLS_VERSIONS[versions["min_version"]] > TLS_VERSIONS[versions["max_version"]]:
        raise WebConfigError(f"{key}.min_version: must not be above max_version")
    suites = data.get("cipher_suites") or []
    if not isinstance(suites, list):
        raise WebConfigError(f"{key}.cipher_suites: expected a list of Go cipher suite names")
    for suite in suites:
        if suite not in GO_CIPHERS:
            raise WebConfigError(
                f"{key}.cipher_suites: {suite!r} is not a TLS 1.2 suite Python's ssl offers; "
                f"expected some of {', '.join(sorted(GO_CIPHERS))}"
            )
    prefer = data.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise WebConfigError(f"{key}.prefer_server_cipher_suites: expected true or false")
    return TlsSettings(
        cert_file=base / _text(data["cert_file"], f"{key}.cert_file"),
        key_file=base / _text(data["key_file"], f"{key}.key_file"),
        client_auth_type=auth,
        client_ca_file=None if ca is None else base / _text(ca, f"{key}.client_ca_file"),
        min_version=versions["min_version"],
        max_version=versions["max_version"],
        cipher_suites=tuple(suites),
        prefer_server_cipher_suites=prefer,
    )


def parse_web_config(data: Any, base: Path) -> WebConfig:
    """The file's parsed YAML as a :class:`WebConfig`; relative paths are taken from ``base``
    (the file's directory, as the exporter-toolkit does)."""
    top = _mapping(data, "web config", _TOP_KEYS)
    if top.get("rate_limit"):
        raise WebConfigError("rate_limit: not supported; remove it")
    http = _mapping(top.get("http_server_config"), "http_server_config", {"http2", "headers"})
    if http.get("http2", False) is not False:
        raise WebConfigError(
            "http_server_config.http2: the daemon serves HTTP/1.1 only; set false or remove it"
        )
    headers = _mapping(http.get("headers"), "http_server_config.headers")
    for name, value in headers.items():
        if name not in ALLOWED_HEADERS:
            raise WebConfigError(
                f"http_server_config.headers: {name!r} may not be set; expected some of "
                f"{', '.join(ALLOWED_HEADERS)}"
            )
        _text(value, f"http_server_config.headers.{name}")
    users = {}
    for user, hashed in _mapping(top.get("basic_auth_users"), "basic_auth_users").items():
        text = _text(hashed, f"basic_auth_users.{user}")
        if not text.startswith(("$2a$", "$2b$", "$2y$")):
            raise WebConfigError(
                f"basic_auth_users.{user}: expected a bcrypt hash ($2y$...), such as "
                "`htpasswd -nBC 10 USER` prints"
            )
        users[user] = text.encode()
    tls_data = top.get("tls_server_config")
    tls = (
        None if tls_data is None else _tls(_mapping(tls_data, "tls_server_config", _TLS_KEYS), base)
    )
    return WebConfig(tls=tls, users=users, headers=dict(headers))


def load_web_config(path: Path) -> WebConfig:
    """Read and check ``path``; :class:`WebConfigError` names the file and the key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WebConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise WebConfigError(f"{path}{where}: not valid YAML: {exc}") from None
    try:
        return parse_web_config(data, path.parent)
    except WebConfigError as exc:
        raise WebConfigError(f"{path}: {exc}") from None


def _load_into(context: ssl.SSLContext, tls: TlsSettings) -> None:
    """Load ``tls``'s certificates and settings into ``context`` (new or in service)."""
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(
            f"tls_server_config.cert_file/key_file: cannot load {tls.cert_file} with "
            f"{tls.key_file}: {exc}"
        ) from None
    context.verify_mode = CLIENT_AUTH[tls.client_auth_type]
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(
                f"tls_server_config.client_ca_file: cannot load {tls.client_ca_file}: {exc}"
            ) from None
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    context.maximum_version = TLS_VERSIONS[tls.max_version]
    if tls.cipher_suites:
        context.set_ciphers(":".join(GO_CIPHERS[s] for s in tls.cipher_suites))
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    """A server SSLContext for ``tls``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_into(context, tls)
    return context


class PasswordCheck:
    """bcrypt checks off the event loop, one at a time, successful ones remembered."""

    def __init__(self, remember: int = 64) -> None:
        self._lock = asyncio.Lock()
        self._good: OrderedDict[bytes, None] = OrderedDict()
        self._remember = remember
        self.bcrypt_checks = 0

    async def verify(self, users: Mapping[str, bytes], user: str, password: str) -> bool:
        hashed = users.get(user)
        key = hashlib.sha256(b"\0".join([user.encode(), hashed or b"", password.encode()])).digest()
        if hashed is not None and key in self._good:
            self._good.move_to_end(key)
            return True
        async with self._lock:
            self.bcrypt_checks += 1
            ok = await asyncio.to_thread(_checkpw, password.encode(), hashed or FAKE_HASH)
        if ok and hashed is not None:
            self._good[key] = None
            while len(self._good) > self._remember:
                self._good.popitem(last=False)
            return True
        return False


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bool(bcrypt.checkpw(password, hashed))
    except ValueError:  # a malformed hash: no password matches it
        return False


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic`` header, None when absent or garbled."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


TokenCheck = Callable[[web.Request], web.Response | None]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebSecurity:
    """The web configuration in force: the SSLContext the listener uses (reloaded in place),
    the basic-auth middleware and the response headers. ``reload`` re-reads the file."""

    def __init__(self, path: Path, check_token: TokenCheck) -> None:
        self.path = path
        self.check_token = check_token
        self.config = load_web_config(path)
        self.context = None if self.config.tls is None else server_context(self.config.tls)
        self.passwords = PasswordCheck()

    def reload(self) -> bool:
        """Re-read the file and apply it (new certificates, users, headers) without a restart;
        keep the old settings and log why when it is not valid."""
        try:
            new = load_web_config(self.path)
            if (new.tls is None) != (self.context is None):
                raise WebConfigError(
                    f"{self.path}: tls_server_config: turning TLS on or off needs a restart"
                )
            if new.tls is not None and self.context is not None:
                # Check on a fresh context first so that a bad file leaves the old one serving.
                server_context(new.tls)
                _load_into(self.context, new.tls)
        except WebConfigError as exc:
            log.error("web_config_reload_failed", problem=str(exc))
            return False
        self.config = new
        log.info("web_config_reloaded", path=str(self.path), users=len(new.users))
        return True

    def install(self, app: web.Application) -> None:
        """Add the authentication middleware and the headers to ``app`` (before it starts)."""
        app.middlewares.insert(0, self._middleware)
        app.on_response_prepare.append(self._headers)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        users = self.config.users
        if not users:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            # The API token stands in for a password; write routes check it again anyway.
            denied = self.check_token(request)
            return denied if denied is not None else await handler(request)
        given = basic_credentials(header)
        if given is not None and await self.passwords.verify(users, *given):
            return await handler(request)
        return web.json_response(
            {"error": "missing or wrong user name or password"},
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="slawatch"'},
        )

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        for name, value in self.config.headers.items():
            response.headers[name] = value
