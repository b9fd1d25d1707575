"""Tests for the sip_register probe (probes/sip_register.py): Kamailio and a scripted registrar."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from probes.result import Outcome, ProbeContext, ProbeResult
from probes.sip.message import SipRequest, parse_name_addr
from probes.sip_register import SipRegisterOptions, address_of_record, probe
from tests import sip_peers
from tests.peers import require_binary
from tests.procs import run_client
from tests.sip_peers import KAMAILIO_PASSWORD, KamailioPeer
from tests.test_sip_transaction import UdpResponder, answer, udp_responder

kamailio = sip_peers.kamailio


async def run(**options: object) -> ProbeResult:
    ctx = ProbeContext.starting_now("register-test", 5.0)
    return await asyncio.wait_for(probe(SipRegisterOptions(**options), ctx), 6)  # type: ignore[arg-type]


def _auth(env: str = "SLAWATCH_TEST_SIP_PASSWORD") -> dict[str, object]:
    return {"username": "alice", "password": {"env": env}}


class TestAgainstKamailio:
    @pytest.mark.parametrize("transport", ["udp", "tcp"])
    async def test_right_password_registers_and_unregisters(
        self, kamailio: KamailioPeer, transport: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """401 challenge answered -> 200; un-REGISTER also challenged and answered -> 200."""
        monkeypatch.setenv("SLAWATCH_TEST_SIP_PASSWORD", KAMAILIO_PASSWORD)
        result = await run(
            uri=f"sip:{kamailio.host}:{kamailio.port}", transport=transport, auth=_auth()
        )
        assert result.outcome is Outcome.UP, result
        assert result.details["register_challenge_status"] == 401
        assert result.details["register_status"] == 200
        assert result.details["sip_status"] == 200
        assert result.details["unregister_status"] == 200
        assert result.details["expires_granted"] == 60
        assert 0 < result.phases["response"] < 1
        assert "unregister" in result.phases

    async def test_agrees_with_sipsak(
        self, kamailio: KamailioPeer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """sipsak's usrloc mode (exit 0 registered, 2 auth failed) agrees with the probe."""
        sipsak = require_binary("sipsak")
        for password, expected in ((KAMAILIO_PASSWORD, Outcome.UP), ("wrong", Outcome.DOWN)):
            monkeypatch.setenv("SLAWATCH_TEST_SIP_PASSWORD", password)
            ours = await run(uri=f"sip:{kamailio.host}:{kamailio.port}", auth=_auth())
            returncode, _ = await run_client(
                sipsak, "-U", "-C", "sip:alice@127.0.0.1:9", "-s", kamailio.uri("alice"),
                "-a", password, seconds=10, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            assert ours.outcome is expected
            assert returncode == (0 if expected is Outcome.UP else 2)

    async def test_password_from_file(self, kamailio: KamailioPeer, tmp_path: Path) -> None:
        """The secret may live in a file (first line)."""
        secret = tmp_path / "sip-password"
        secret.write_text(f"{KAMAILIO_PASSWORD}\n")
        auth = {"username": "alice", "password": {"file": str(secret)}}
        result = await run(uri=f"sip:{kamailio.host}:{kamailio.port}", auth=auth)
        assert result.outcome is Outcome.UP, result

    async def test_wrong_password_is_auth_failed(
        self, kamailio: KamailioPeer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A second 401 after credentials were sent -> down/auth_failed with both codes kept."""
        monkeypatch.setenv("SLAWATCH_TEST_SIP_PASSWORD", "not-the-password")
        result = await run(uri=f"sip:{kamailio.host}:{kamailio.port}", auth=_auth())
        assert (result.outcome, result.reason) == (Outcome.DOWN, "auth_failed")
        assert result.details["register_challenge_status"] == 401
        assert result.details["register_status"] == 401

    async def test_no_credentials_configured(self, kamailio: KamailioPeer) -> None:
        """A challenge with no auth configured -> down/auth_required."""
        result = await run(uri=f"sip:{kamailio.host}:{kamailio.port}")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "auth_required")

    async def test_missing_secret_is_our_error(self, kamailio: KamailioPeer) -> None:
        """An unset password variable is a monitor problem (error), never vendor evidence."""
        result = await run(
            uri=f"sip:{kamailio.host}:{kamailio.port}", auth=_auth("SLAWATCH_TEST_UNSET_VARIABLE")
        )
        assert (result.outcome, result.reason) == (Outcome.ERROR, "secret_unavailable")
        assert "SLAWATCH_TEST_UNSET_VARIABLE" in str(result.details["error"])


def _registrar(
    *, after_auth: int = 200, unregister: int = 200, min_expires: int = 0
) -> tuple[list[SipRequest], object]:
    seen: list[SipRequest] = []

    def behaviour(_: UdpResponder, request: SipRequest) -> Sequence[bytes]:
        seen.append(request)
        if request.headers.get("Authorization") is None:
            challenges = [
                ("WWW-Authenticate", 'Digest realm="voice", nonce="n1", qop="auth", algorithm=MD5'),
                (
                    "WWW-Authenticate",
                    'Digest realm="voice", nonce="n2", qop="auth", algorithm=SHA-256',
                ),
            ]
            return [answer(request, 401, "Unauthorized", extra=challenges)]
        expires = request.headers.get("Expires") or ""
        if expires != "0" and int(expires) < min_expires:
            brief = [("Min-Expires", str(min_expires))]
            return [answer(request, 423, "Interval Too Brief", extra=brief)]
        if expires == "0":
            return [answer(request, unregister, "Unregister")]
        contact = f"{request.headers.get('Contact')};expires={int(expires) // 2}"
        return [answer(request, after_auth, "Registered", extra=[("Contact", contact)])]

    return seen, behaviour


class TestAgainstScriptedRegistrar:
    async def test_request_sequence(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """REGISTER, retry with SHA-256 (the strongest offered), un-REGISTER with Expires: 0."""
        monkeypatch.setenv("SLAWATCH_TEST_SIP_PASSWORD", "pw")
        seen, behaviour = _registrar()
        async with udp_responder(behaviour) as peer:  # type: ignore[arg-type]
            result = await run(uri=f"sip:127.0.0.1:{peer.port}", auth=_auth(), expires=30)
        assert result.outcome is Outcome.UP, result
        assert result.details["expires_granted"] == 15
        assert [r.cseq for r in seen] == [
            (1, "REGISTER"),
            (2, "REGISTER"),
            (3, "REGISTER"),
            (4, "REGISTER"),
        ]
        assert [r.headers.get("Expires") for r in seen] == ["30", "30", "0", "0"]
        assert len({r.call_id for r in seen}) == 1
        assert len({r.top_via.branch for r in seen}) == 4
        assert "algorithm=SHA-256" in (seen[1].headers.get("Authorization") or "")
        assert parse_name_addr(seen[0].headers.get("To") or "").uri == "sip:alice@127.0.0.1"
        assert seen[0].uri == f"sip:127.0.0.1:{peer.port}"

    async def test_403_after_credentials_is_auth_failed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """403 Forbidden to the authenticated retry counts as refused credentials."""
        monkeypatch.setenv("SLAWATCH_TEST_SIP_PASSWORD", "pw")
        _, behaviour = _registrar(after_auth=403)
        async with udp_responder(behaviour) as peer:  # type: ignore[arg-type]
            result = await run(uri=f"sip:127.0.0.1:{peer.port}", auth=_auth())
        assert (result.outcome, result.reason) == (Outcome.DOWN, "auth_failed")
        assert result.details["register_status"] == 403

    async def test_other_final_code_is_down_with_code(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A 500 to the authenticated REGISTER -> down/status_code_500."""
        monkeypatch.setenv("SLAWATCH_TEST_SIP_PASSWORD", "pw")
        _, behaviour = _registrar(after_auth=500)
        async with udp_responder(behaviour) as peer:  # type: ignore[arg-type]
            result = await run(uri=f"sip:127.0.0.1:{peer.port}", auth=_auth())
        assert (result.outcome, result.reason) == (Outcome.DOWN, "status_code_500")

    async def test_failed_unregister_is_down(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A binding that cannot be removed is reported: down/unregister_status_code_500."""
        monkeypatch.setenv("SLAWATCH_TEST_SIP_PASSWORD", "pw")
        _, behaviour = _registrar(unregister=500)
        async with udp_responder(behaviour) as peer:  # type: ignore[arg-type]
            result = await run(uri=f"sip:127.0.0.1:{peer.port}", auth=_auth())
        assert (result.outcome, result.reason) == (Outcome.DOWN, "unregister_status_code_500")
        assert result.details["register_status"] == 200

    async def test_interval_too_brief_is_retried_with_min_expires(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """423 + Min-Expires: 3600 -> one retry asking 3600 s; CSeq keeps rising throughout."""
        monkeypatch.setenv("SLAWATCH_TEST_SIP_PASSWORD", "pw")
        seen, behaviour = _registrar(min_expires=3600)
        async with udp_responder(behaviour) as peer:  # type: ignore[arg-type]
            result = await run(uri=f"sip:127.0.0.1:{peer.port}", auth=_auth(), expires=60)
        assert result.outcome is Outcome.UP, result
        assert result.details["min_expires"] == 3600
        assert result.details["expires_granted"] == 1800
        assert [r.headers.get("Expires") for r in seen] == ["60", "60", "3600", "3600", "0", "0"]
        assert [r.cseq[0] for r in seen] == [1, 2, 3, 4, 5, 6]

    async def test_unregister_can_be_skipped(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """unregister: false leaves the binding to expire; only two REGISTERs are sent."""
        monkeypatch.setenv("SLAWATCH_TEST_SIP_PASSWORD", "pw")
        seen, behaviour = _registrar()
        async with udp_responder(behaviour) as peer:  # type: ignore[arg-type]
            result = await run(uri=f"sip:127.0.0.1:{peer.port}", auth=_auth(), unregister=False)
        assert result.outcome is Outcome.UP
        assert len(seen) == 2
        assert "unregister_status" not in result.details


class TestRegisterOptions:
    def test_address_of_record_defaults(self) -> None:
        """AOR: to_uri if given, else the auth user (or contact user) at the registrar host."""
        auth = {"username": "bob", "password": {"env": "X"}}
        assert address_of_record(SipRegisterOptions(uri="sip:reg.example.org", auth=auth)) == (
            "sip:bob@reg.example.org"
        )
        assert address_of_record(SipRegisterOptions(uri="sips:reg.example.org")) == (
            "sips:slawatch@reg.example.org"
        )
        explicit = SipRegisterOptions(uri="sip:reg.example.org", to_uri="sip:7001@pbx.example.org")
        assert address_of_record(explicit) == "sip:7001@pbx.example.org"

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"uri": "sip:r", "expires": 0}, "greater than or equal to 1"),
            ({"uri": "sip:r", "auth": {"username": "a", "password": "inline"}}, "password"),
            ({"uri": "sip:r", "auth": {"username": "", "password": {"env": "X"}}}, "at least 1"),
        ],
    )
    def test_bad_options(self, options: dict[str, object], message: str) -> None:
        """Bad expiry, inline passwords and empty user names are refused."""
        with pytest.raises(ValidationError, match=message):
            SipRegisterOptions(**options)  # type: ignore[arg-type]
