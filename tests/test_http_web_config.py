"""The exporter-toolkit web configuration (issue 16, problem 4): the real daemon serves over TLS
with basic auth and client certificates, a real Prometheus scrapes it, SIGHUP rotates the
certificate and the users without a restart; options Python cannot honour are refused by name.

Certificates are made by the test with the openssl CLI (an EC P-256 CA, a server certificate
for IP 127.0.0.1, a client certificate, and a client certificate from another CA); they are
valid from the moment the test runs, so nothing depends on the date.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from monitor.http.web_config import (
    PasswordCheck,
    WebConfigError,
    basic_credentials,
    load_web_config,
    parse_web_config,
)
from tests.daemon_harness import ROOT
from tests.peers import require_binary
from tests.test_alerting_e2e import daemon_config
from tests.test_deploy_contract import PROMETHEUS_DIR, free_port, load_yaml, running
from tests.web_target import web_target

pytestmark = pytest.mark.timeout(120)

PASSWORD = "scrape-secret"
# Cost 4 keeps the test fast; the daemon accepts any cost htpasswd writes.
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


def openssl(*args: str, cwd: Path) -> None:
    """Run the openssl CLI in ``cwd``; fail with its output."""
    binary = require_binary("openssl")
    done = subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr


def make_ca(directory: Path, name: str) -> None:
    """``name``.crt/.key: a self-signed EC CA."""
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN={name}", "-days", "2",
        cwd=directory,
    )  # fmt: skip


def make_cert(directory: Path, name: str, ca: str, cn: str, san: str) -> None:
    """``name``.crt/.key signed by ``ca`` with subject ``cn`` and subjectAltName ``san``."""
    openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
        cwd=directory,
    )  # fmt: skip
    (directory / f"{name}.ext").write_text(f"subjectAltName={san}\n")
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
        cwd=directory,
    )  # fmt: skip


def web_config(users: dict[str, str]) -> dict[str, Any]:
    """TLS requiring a client certificate from ``ca``, the users, one header."""
    return {
        "tls_server_config": {
            "cert_file": "server.crt",
            "key_file": "server.key",
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_ca_file": "ca.crt",
            "min_version": "TLS12",
        },
        "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}},
        "basic_auth_users": users,
    }


@dataclass
class Secured:
    """The running daemon and the files a client needs."""

    port: int
    pki: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def context(self, client: str | None = "client") -> ssl.SSLContext:
        """A client context trusting the test CA, presenting ``client``'s certificate."""
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        if client is not None:
            context.load_cert_chain(self.pki / f"{client}.crt", self.pki / f"{client}.key")
        return context

    def get(
        self,
        path: str,
        *,
        user: str = "prometheus",
        password: str = PASSWORD,
        client: str | None = "client",
    ) -> tuple[int, dict[str, str], str]:
        """GET over TLS with basic auth; (status, headers, body)."""
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.port}{path}", headers={"Authorization": f"Basic {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context(client)) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()

    def server_subject(self) -> str:
        """The CN of the certificate the daemon presents now."""
        context = self.context()
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            cert = tls.getpeercert()
        assert cert is not None
        subject: Any = cert["subject"]  # ((("commonName", "..."),), ...)
        return str(dict(rdn[0] for rdn in subject)["commonName"])


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    """The real daemon (`slawatch run --web.config.file`) over TLS with basic auth and a
    required client certificate."""
    pki = tmp_path_factory.mktemp("pki")
    make_ca(pki, "ca")
    make_ca(pki, "other-ca")
    make_cert(pki, "server", "ca", "127.0.0.1", "IP:127.0.0.1")
    make_cert(pki, "client", "ca", "prometheus", "DNS:prometheus.scraper")
    make_cert(pki, "stranger", "other-ca", "prometheus", "DNS:prometheus.scraper")
    (pki / "web.yml").write_text(yaml.safe_dump(web_config({"prometheus": HASH})))
    work = tmp_path_factory.mktemp("daemon")
    with web_target() as target:
        target.set("home", "up")
        port = free_port()
        config = daemon_config(work, port, target.url("home"))
        log = work / "daemon.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "run", "--config", str(config),
                 "--web.config.file", str(pki / "web.yml")],
                cwd=str(work), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
        secured = Secured(port, pki, proc, log)
        try:
            end = time.monotonic() + 20
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if secured.get("/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < end, log.read_text()
                time.sleep(0.1)
            yield secured
        finally:
            proc.terminate()
            proc.wait(10)


class TestSecuredDaemon:
    """The daemon's port with the web configuration in force."""

    def test_right_password_and_certificate(self, secured: Secured) -> None:
        """/metrics answers 200 with the configured header."""
        status, headers, body = secured.get("/metrics")
        assert status == 200
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "slawatch_" in body

    def test_wrong_password_and_unknown_user(self, secured: Secured) -> None:
        """Wrong password or unknown user: 401 with a Basic challenge (the header too)."""
        for user, password in (("prometheus", "wrong"), ("nobody", PASSWORD)):
            status, headers, _ = secured.get("/metrics", user=user, password=password)
            assert status == 401
            assert headers["WWW-Authenticate"] == 'Basic realm="slawatch"'
            assert headers["X-Content-Type-Options"] == "nosniff"

    def test_no_or_foreign_client_certificate(self, secured: Secured) -> None:
        """Without a client certificate, or with one from another CA, the handshake fails."""
        for client in (None, "stranger"):
            with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
                secured.get("/metrics", client=client)

    def test_plain_http_refused(self, secured: Secured) -> None:
        """Plain HTTP on the TLS port gets no answer."""
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{secured.port}/metrics", timeout=5)

    def test_sighup_rotates_certificate_and_users(self, secured: Secured) -> None:
        """A new certificate and a new user take effect on SIGHUP, without a restart."""
        assert secured.server_subject() == "127.0.0.1"
        make_cert(secured.pki, "server", "ca", "127.0.0.1-rotated", "IP:127.0.0.1")
        users = {"prometheus": HASH, "grafana": bcrypt.hashpw(b"g", bcrypt.gensalt(4)).decode()}
        (secured.pki / "web.yml").write_text(yaml.safe_dump(web_config(users)))
        secured.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 10
        while secured.server_subject() != "127.0.0.1-rotated":
            assert time.monotonic() < end, secured.log.read_text()
            time.sleep(0.1)
        assert secured.get("/api/v1/status", user="grafana", password="g")[0] == 200
        assert secured.proc.poll() is None


class TestPrometheusScrapes:
    """A real Prometheus scrapes the daemon with the shipped TLS + basic-auth example."""

    def test_scrape_over_tls_with_basic_auth(self, secured: Secured, tmp_path: Path) -> None:
        """The shipped example job is up; a wrong password is down with 401; a job without a
        client certificate is down."""
        prometheus = require_binary("prometheus")
        example = load_yaml(PROMETHEUS_DIR / "prometheus-tls.yml")
        [job] = example["scrape_configs"]
        job["static_configs"][0]["targets"] = [f"127.0.0.1:{secured.port}"]
        job["scrape_timeout"] = "1s"
        job["tls_config"] = {
            "ca_file": str(secured.pki / "ca.crt"),
            "cert_file": str(secured.pki / "client.crt"),
            "key_file": str(secured.pki / "client.key"),
        }
        (tmp_path / "password").write_text(PASSWORD)
        job["basic_auth"]["password_file"] = str(tmp_path / "password")
        wrong = {**job, "job_name": "wrong-password", "basic_auth": {
            "username": "prometheus", "password": "wrong"}}  # fmt: skip
        no_cert = {**job, "job_name": "no-client-cert", "tls_config": {
            "ca_file": str(secured.pki / "ca.crt")}}  # fmt: skip
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [job, wrong, no_cert],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        prom_port = free_port()
        args = [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ]
        with running(args, tmp_path / "prometheus.log") as proc:
            health = wait_for_targets(f"http://127.0.0.1:{prom_port}", 3, 40, proc)
        assert health["slawatch"] == ("up", "")
        assert health["wrong-password"] == ("down", "server returned HTTP status 401 Unauthorized")
        assert health["no-client-cert"][0] == "down"


def wait_for_targets(
    base: str, count: int, timeout: float, proc: subprocess.Popen[bytes]
) -> dict[str, tuple[str, str]]:
    """job -> (health, last error) once ``count`` targets have been scraped."""
    end = time.monotonic() + timeout
    seen: dict[str, tuple[str, str]] = {}
    while time.monotonic() < end:
        assert proc.poll() is None, f"prometheus exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(base + "/api/v1/targets", timeout=2) as reply:
                active = json.load(reply)["data"]["activeTargets"]
        except (urllib.error.URLError, OSError):
            active = []
        seen = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in active}
        if len(seen) == count and "unknown" not in {h for h, _ in seen.values()}:
            return seen
        time.sleep(0.2)
    raise AssertionError(f"targets not all scraped after {timeout}s: {seen}")


class TestRefused:
    """Options Python's ssl or aiohttp cannot honour are refused with one line naming the key."""

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (
                {"tls_server_config": {"cert_file": "a", "key_file": "b",
                                       "client_auth_type": "RequestClientCert"}},
                "tls_server_config.client_auth_type: RequestClientCert is not supported",
            ),
            (
                {"tls_server_config": {"cert_file": "a", "key_file": "b",
                                       "client_auth_type": "RequireAndVerifyClientCert"}},
                "tls_server_config.client_ca_file: required with client_auth_type",
            ),
            (
                {"tls_server_config": {"cert_file": "a", "key_file": "b",
                                       "curve_preferences": [23]}},
                "tls_server_config.curve_preferences: not supported",
            ),
            (
                {"tls_server_config": {"cert_file": "a", "key_file": "b",
                                       "cipher_suites": ["TLS_AES_128_GCM_SHA256"]}},
                "tls_server_config.cipher_suites: 'TLS_AES_128_GCM_SHA256' is not a TLS 1.2",
            ),
            (
                {"tls_server_config": {"cert_file": "a", "key_file": "b", "min_version": "TLS14"}},
                "tls_server_config.min_version: expected one of TLS10, TLS11, TLS12, TLS13",
            ),
            ({"http_server_config": {"http2": True}}, "http_server_config.http2: the daemon"),
            (
                {"http_server_config": {"headers": {"Content-Type": "x"}}},
                "http_server_config.headers: 'Content-Type' may not be set",
            ),
            ({"basic_auth_users": {"u": "plain"}}, "basic_auth_users.u: expected a bcrypt hash"),
            ({"rate_limit": {"interval": "1s", "burst": 1}}, "rate_limit: not supported"),
            ({"tls_config": {}}, "web config: unknown key(s) tls_config"),
        ],
    )  # fmt: skip
    def test_refused(self, data: dict[str, Any], message: str) -> None:
        """Each message starts with the key's path."""
        with pytest.raises(WebConfigError) as info:
            parse_web_config(data, Path("/etc/slawatch"))
        assert str(info.value).startswith(message), str(info.value)

    def test_file_errors_name_the_file(self, tmp_path: Path) -> None:
        """A missing certificate is named when the daemon starts (exit 2, one line)."""
        path = tmp_path / "web.yml"
        path.write_text("tls_server_config: {cert_file: none.crt, key_file: none.key}\n")
        assert load_web_config(path).tls is not None
        config = daemon_config(tmp_path, free_port(), "http://127.0.0.1:9/")
        done = subprocess.run(
            [sys.executable, "-m", "monitor.cli", "run", "--config", str(config),
             "--web.config.file", str(path)],
            capture_output=True, text=True, timeout=60, cwd=str(tmp_path),
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert (
            done.stderr.strip()
            .splitlines()[-1]
            .startswith(
                "tls_server_config.cert_file/key_file: cannot load " + str(tmp_path / "none.crt")
            )
        ), done.stderr


class TestPasswords:
    """bcrypt checks run in a thread and successful ones are remembered."""

    async def test_cache(self) -> None:
        """The second right answer costs no bcrypt check; wrong ones always do."""
        check = PasswordCheck()
        users = {"u": HASH.encode()}
        assert await check.verify(users, "u", PASSWORD)
        assert await check.verify(users, "u", PASSWORD)
        assert check.bcrypt_checks == 1
        assert not await check.verify(users, "u", "nope")
        assert not await check.verify(users, "ghost", PASSWORD)
        assert check.bcrypt_checks == 3

    def test_basic_header(self) -> None:
        """Scheme in any case; garbage is None."""
        token = base64.b64encode(b"u:p:q").decode()
        assert basic_credentials(f"basic {token}") == ("u", "p:q")
        assert basic_credentials("Basic !!!") is None
        assert basic_credentials("Bearer x") is None
