"""SRTP for sip_call (probes/sip/srtp.py): SDES keys in SDP (RFC 4568), libsrtp via pylibsrtp.

Real peers: baresip with its srtp module and ``mediaenc=srtp-mand`` (it refuses plain RTP
with 488), reached over TLS signalling with a certificate from a test CA; SIPp announcing one
key while echoing packets protected with ours (keys that do not match); plain baresip for
``srtp: optional`` falling back to RTP.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from probes.result import Outcome, ProbeContext, ProbeResult
from probes.sip.audio import Codec
from probes.sip.sdp import build_offer, parse_sdp
from probes.sip.srtp import (
    CryptoAttribute,
    SrtpContext,
    SrtpError,
    new_key,
    parse_crypto,
    select_crypto,
)
from probes.sip_call import SipCallOptions, probe
from tests import sip_peers
from tests.sip_peers import BaresipPeer, CaFiles, SippPeer, make_test_ca

pytestmark = pytest.mark.timeout(40)
baresip_echo = sip_peers.baresip_echo
sipp_srtp_wrong_key = sip_peers.sipp_srtp_wrong_key
DOMAIN = "voice.example.test"


@pytest.fixture(scope="module")
def srtp_ca(tmp_path_factory: pytest.TempPathFactory) -> CaFiles:
    """A test CA and a server certificate for voice.example.test / 127.0.0.1."""
    return make_test_ca(tmp_path_factory.mktemp("srtp-ca"), (DOMAIN,))


@pytest.fixture(scope="module")
def baresip_srtp(
    tmp_path_factory: pytest.TempPathFactory, srtp_ca: CaFiles
) -> Iterator[BaresipPeer]:
    """baresip echo callee with mandatory SRTP and SIP over TLS on sip_port + 1."""
    work = tmp_path_factory.mktemp("baresip-srtp")
    pem = work / "sip-cert.pem"
    pem.write_text(srtp_ca.server_cert.read_text() + srtp_ca.server_key.read_text())
    proc, peer = sip_peers.start_baresip(
        "srtp_echo", work, extra_config=f"module\t\t\tsrtp.so\nsip_certificate\t\t{pem}\n"
    )
    try:
        yield peer
    finally:
        peer.events.close()
        sip_peers.stop_process(proc)


async def _call(uri: str, budget: float = 8.0, **options: Any) -> ProbeResult:
    opts = SipCallOptions.model_validate(
        {"uri": uri, "bind": "127.0.0.1", "duration": "1s", "answer_timeout": "2s", **options}
    )
    return await probe(opts, ProbeContext.starting_now("srtp-call", budget))


def _tls(ca: CaFiles) -> dict[str, str]:
    return {"ca_file": str(ca.ca_cert), "server_name": DOMAIN}


class TestAgainstBaresipSrtp:
    async def test_mandatory_srtp_over_tls_with_dtmf_and_prompt(
        self, baresip_srtp: BaresipPeer, srtp_ca: CaFiles
    ) -> None:
        """sips: + srtp mandatory: TLS 1.3 signalling, AES_CM_128_HMAC_SHA1_80 media; the
        echo returns our tone (prompt detected after DTMF) and our digits; no loss."""
        result = await _call(
            f"sips:echo@127.0.0.1:{baresip_srtp.sip_port + 1}",
            tls=_tls(srtp_ca),
            srtp="mandatory",
            send_tone_hz=1000,
            dtmf=[{"digits": "12", "pause": "200ms", "expect_audio_within": "1s"}],
        )
        assert (result.outcome, result.reason) == (Outcome.UP, ""), result.details
        details = result.details
        assert details["srtp"] is True
        assert details["srtp_suite"] == "AES_CM_128_HMAC_SHA1_80"
        assert details["tls_version"] == "TLS1.3"
        assert (details["dtmf_sent"], details["dtmf_received"]) == ("12", "12")
        assert details["audio_steps"] == "ok"
        assert int(details["rtp_packets_received"]) >= 40  # type: ignore[arg-type]
        assert details["rtp_loss_ratio"] == 0.0
        assert "srtp_failures" not in details

    async def test_plain_rtp_is_refused_by_the_srtp_callee(
        self, baresip_srtp: BaresipPeer, srtp_ca: CaFiles
    ) -> None:
        """Without SRTP the mandatory-SRTP callee answers 488: down, the code named."""
        result = await _call(
            f"sips:echo@127.0.0.1:{baresip_srtp.sip_port + 1}", tls=_tls(srtp_ca), srtp="off"
        )
        assert (result.outcome, result.reason) == (Outcome.DOWN, "rejected_488")

    async def test_only_the_32_bit_tag_suite(
        self, baresip_srtp: BaresipPeer, srtp_ca: CaFiles
    ) -> None:
        """srtp_suites narrows the offer: AES_CM_128_HMAC_SHA1_32 alone is negotiated."""
        result = await _call(
            f"sips:echo@127.0.0.1:{baresip_srtp.sip_port + 1}",
            tls=_tls(srtp_ca),
            srtp="mandatory",
            srtp_suites=["AES_CM_128_HMAC_SHA1_32"],
            send_tone_hz=1000,
        )
        assert result.outcome is Outcome.UP, result.details
        assert result.details["srtp_suite"] == "AES_CM_128_HMAC_SHA1_32"


class TestMismatchAndFallback:
    async def test_mismatched_keys_fail_with_a_clear_reason(
        self, sipp_srtp_wrong_key: SippPeer
    ) -> None:
        """The callee's packets are not protected with the key it announced: every one fails
        authentication; down with srtp_auth_failed and an error saying so."""
        result = await _call(sipp_srtp_wrong_key.uri(), srtp="mandatory")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "srtp_auth_failed")
        assert int(result.details["srtp_failures"]) >= 20  # type: ignore[arg-type]
        assert result.details["rtp_packets_received"] == 0
        assert "failed SRTP authentication" in str(result.details["error"])

    async def test_optional_falls_back_to_rtp(self, baresip_echo: BaresipPeer) -> None:
        """srtp optional against a callee without SRTP: crypto ignored, plain RTP, up."""
        result = await _call(baresip_echo.uri, srtp="optional", send_tone_hz=1000)
        assert result.outcome is Outcome.UP, result.details
        assert result.details["srtp"] is False

    async def test_mandatory_without_keys_in_answer(self, baresip_echo: BaresipPeer) -> None:
        """srtp mandatory against a callee without SRTP: refused (488) or answered without
        keys (srtp_not_negotiated), never a plain-RTP call counted as up."""
        result = await _call(baresip_echo.uri, srtp="mandatory")
        assert result.outcome is Outcome.DOWN
        assert result.reason in ("rejected_488", "srtp_not_negotiated"), result


class TestCryptoAttribute:
    def test_round_trip_and_offer(self) -> None:
        """A formatted attribute parses back; the offer carries it in an RTP/SAVP m-line."""
        attribute = CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_80", new_key())
        assert parse_crypto(attribute.format()) == attribute
        sdp = build_offer(
            address="127.0.0.1",
            port=20000,
            codecs=(Codec.PCMU,),
            session_id=1,
            profile="RTP/SAVP",
            crypto=[attribute.format()],
        )
        media = parse_sdp(sdp).media[0]
        assert media.proto == "RTP/SAVP"
        assert media.crypto == (attribute.format(),)

    def test_lifetime_is_accepted(self) -> None:
        """A key lifetime after the key is allowed (RFC 4568 §9.2)."""
        key = base64.b64encode(bytes(30)).decode()
        assert parse_crypto(f"2 AES_CM_128_HMAC_SHA1_32 inline:{key}|2^20").tag == 2

    @pytest.mark.parametrize(
        ("value", "what"),
        [
            ("1 AES_CM_128_HMAC_SHA1_80", "expected"),
            ("1 F8_128_HMAC_SHA1_80 inline:AAAA", "unsupported suite"),
            ("x AES_CM_128_HMAC_SHA1_80 inline:AAAA", "expected"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:!!!", "base64"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA", "30-byte"),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40 + "|2^20|1:4", "MKI"),
        ],
    )
    def test_rejects(self, value: str, what: str) -> None:
        """Unsupported or malformed attributes are refused with the reason named."""
        with pytest.raises(SrtpError, match=what):
            parse_crypto(value)

    @given(st.text(max_size=200))
    def test_any_text_parses_or_raises_srtp_error(self, value: str) -> None:
        """Hostile a=crypto values never raise anything but SrtpError."""
        with contextlib.suppress(SrtpError):
            parse_crypto(value)

    def test_protect_unprotect_and_wrong_key(self) -> None:
        """libsrtp round trip between two contexts; a third key fails authentication."""
        ours, theirs = new_key(), new_key()
        caller = SrtpContext("AES_CM_128_HMAC_SHA1_80", ours, theirs)
        callee = SrtpContext("AES_CM_128_HMAC_SHA1_80", theirs, ours)
        packet = bytes([0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7]) + b"\xff" * 160
        protected = caller.protect(packet)
        assert protected != packet
        assert callee.unprotect(protected) == packet
        stranger = SrtpContext("AES_CM_128_HMAC_SHA1_80", new_key(), new_key())
        with pytest.raises(SrtpError) as caught:
            stranger.unprotect(caller.protect(packet[:2] + b"\x00\x02" + packet[4:]))
        assert caught.value.reason == "srtp_auth_failed"


_KEY = new_key()


class TestSelectCrypto:
    OURS: ClassVar[dict[int, CryptoAttribute]] = {
        1: CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_80", _KEY),
        2: CryptoAttribute(2, "AES_CM_128_HMAC_SHA1_32", _KEY),
    }
    SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")

    def test_answer_must_use_our_tag_and_suite(self) -> None:
        """An answer's line must name one of our tags with that tag's suite."""
        theirs = CryptoAttribute(2, "AES_CM_128_HMAC_SHA1_32", new_key())
        wrong = CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_32", new_key())
        chosen, problems = select_crypto([wrong.format(), theirs.format()], self.SUITES, self.OURS)
        assert chosen == theirs
        assert problems == ["tag 1 AES_CM_128_HMAC_SHA1_32 was not offered"]

    def test_callee_offer_may_use_its_own_tags(self) -> None:
        """A re-INVITE offer's tag 7 is fine when its suite is one of ours."""
        offer = CryptoAttribute(7, "AES_CM_128_HMAC_SHA1_80", new_key())
        chosen, _ = select_crypto([offer.format()], self.SUITES, None)
        assert chosen == offer

    def test_nothing_usable(self) -> None:
        """No usable line: None with every problem named."""
        chosen, problems = select_crypto(["1 NULL inline:x", "junk"], self.SUITES, None)
        assert chosen is None
        assert len(problems) == 2


class TestOptions:
    def test_unknown_suite_is_a_config_error(self) -> None:
        """srtp_suites names only supported suites."""
        with pytest.raises(ValidationError, match="expected SRTP suites"):
            SipCallOptions(uri="sip:a@127.0.0.1", srtp="mandatory", srtp_suites=("NULL",))  # type: ignore[arg-type]
