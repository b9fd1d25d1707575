"""sip_call as a carrier's callee sees it: early media (183 with SDP) and requests the callee
sends inside the dialog (re-INVITE/UPDATE session refreshes per RFC 4028, OPTIONS, INFO).

Real peers: SIPp scenarios tests/peers/sipp/uas_early_media.xml (a prompt streamed during
the 183) and uas_reinvite.xml (refreshes every 600 ms with a 2 s session interval, and drops
the call if any answer is wrong); baresip for a call without early media.
"""

from __future__ import annotations

from typing import Any

import pytest

from probes.result import Outcome, ProbeContext, ProbeResult
from probes.sip.headers import ParseError, SessionExpires, parse_session_expires
from probes.sip_call import SipCallOptions, probe
from tests import sip_peers
from tests.sip_peers import BaresipPeer, SippPeer

pytestmark = pytest.mark.timeout(40)
sipp_early_media = sip_peers.sipp_early_media
sipp_reinvite = sip_peers.sipp_reinvite
sipp_timer_uac = sip_peers.sipp_timer_uac
sipp_timer_lapse = sip_peers.sipp_timer_lapse
sipp_timer_switch = sip_peers.sipp_timer_switch
baresip_sine = sip_peers.baresip_sine


async def _call(peer_uri: str, budget: float = 8.0, **options: Any) -> ProbeResult:
    opts = SipCallOptions.model_validate(
        {"uri": peer_uri, "bind": "127.0.0.1", "duration": "1s", "answer_timeout": "4s", **options}
    )
    return await probe(opts, ProbeContext.starting_now("call", budget))


class TestEarlyMedia:
    async def test_prompt_heard_before_the_answer(self, sipp_early_media: SippPeer) -> None:
        """A 183 with SDP starts media: the prompt's voiced frames arrive before the 200, the
        post-dial delay to first audio is shorter than the answer time, and the call is up."""
        result = await _call(sipp_early_media.uri(), require_audio=True)
        assert result.outcome is Outcome.UP, result
        details = result.details
        assert details["early_media"] is True
        assert details["prompt_in_early_media"] is True
        assert int(details["early_media_voiced_frames"]) >= 20  # type: ignore[arg-type]
        first_audio = float(details["first_audio_seconds"])  # type: ignore[arg-type]
        answer = float(details["answer_seconds"])  # type: ignore[arg-type]
        assert first_audio < answer
        assert answer >= 1.4  # SIPp answers 1.5 s after the 183
        assert float(details["early_media_seconds"]) < first_audio  # type: ignore[arg-type]
        assert result.phases["first_audio"] == first_audio

    async def test_no_early_media_from_a_plain_callee(self, baresip_sine: BaresipPeer) -> None:
        """baresip answers at once without a 183: early_media is false and first audio comes
        after the answer."""
        result = await _call(baresip_sine.uri)
        assert result.outcome is Outcome.UP, result
        assert result.details["early_media"] is False
        assert "prompt_in_early_media" not in result.details
        first_audio = float(result.details["first_audio_seconds"])  # type: ignore[arg-type]
        assert first_audio >= float(result.details["answer_seconds"])  # type: ignore[arg-type]


class TestInDialogRequests:
    async def test_call_outlives_its_session_interval(self, sipp_reinvite: SippPeer) -> None:
        """A 3 s call with a 2 s session interval: the callee's re-INVITE (new SDP offer),
        UPDATE refreshes, OPTIONS and INFO all get a correct 200, so the callee never drops
        the call; the counts are in the result."""
        result = await _call(
            sipp_reinvite.uri(), duration="3s", media={"min_packets": 10, "min_mos": None}
        )
        assert result.outcome is Outcome.UP, result
        counts = dict(
            item.split(":") for item in str(result.details["in_dialog_requests"]).split(",")
        )
        assert counts["INVITE"] == "1"
        assert counts["OPTIONS"] == "1"
        assert counts["INFO"] == "1"
        assert int(counts["UPDATE"]) >= 3
        assert result.details["session_expires"] == 2
        assert result.details["bye_status"] == 200
        assert "BYE" not in counts

    async def test_short_call_also_fine(self, sipp_reinvite: SippPeer) -> None:
        """A call that ends before the re-INVITE: up, and our BYE ends the SIPp call cleanly."""
        result = await _call(sipp_reinvite.uri(), duration="0.2s")
        assert result.outcome is Outcome.UP, result
        assert result.details["bye_status"] == 200


class TestSessionTimers:
    async def test_we_refresh_when_asked(self, sipp_timer_uac: SippPeer) -> None:
        """The 200 makes us the refresher of a 2 s session: a 3 s call sends a refresh
        re-INVITE every second, each answered 200, and stays up."""
        result = await _call(
            sipp_timer_uac.uri(), duration="3s", media={"min_packets": 10, "min_mos": None}
        )
        assert result.outcome is Outcome.UP, result
        assert result.details["session_expires"] == 2
        assert int(result.details["session_refreshes_sent"]) >= 2  # type: ignore[arg-type]

    async def test_refresher_role_handed_to_us(self, sipp_timer_switch: SippPeer) -> None:
        """The callee refreshes once and hands the role over (refresher=uas in its own
        re-INVITE): we confirm it and refresh from then on, so a 3 s call with a 2 s
        interval stays up."""
        result = await _call(
            sipp_timer_switch.uri(), duration="3s", media={"min_packets": 10, "min_mos": None}
        )
        assert result.outcome is Outcome.UP, result
        assert result.details["in_dialog_requests"] == "INVITE:1"
        assert int(result.details["session_refreshes_sent"]) >= 1  # type: ignore[arg-type]

    async def test_callee_that_stops_refreshing(self, sipp_timer_lapse: SippPeer) -> None:
        """The callee is the refresher of a 2 s session and never refreshes: the session
        lapses (RFC 4028 §10) and the call is down with session_expired, then hung up."""
        result = await _call(
            sipp_timer_lapse.uri(), duration="3s", media={"min_packets": 10, "min_mos": None}
        )
        assert (result.outcome, result.reason) == (Outcome.DOWN, "session_expired")
        assert "within 2 s" in str(result.details["error"])
        assert result.details["bye_status"] == 200


class TestSessionExpiresHeader:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1800;refresher=uac", SessionExpires(1800, "uac")),
            ("90 ; refresher=UAS", SessionExpires(90, "uas")),
            ("600", SessionExpires(600, None)),
            ("600;x=1", SessionExpires(600, None)),
        ],
    )
    def test_parses(self, text: str, expected: SessionExpires) -> None:
        """Delta-seconds plus an optional refresher, case-insensitive; unknown params ignored."""
        assert parse_session_expires(text) == expected

    @pytest.mark.parametrize("text", ["", "soon", "-5", "1800;refresher=both", "１２"])
    def test_rejects(self, text: str) -> None:
        """Anything but digits, or a refresher other than uac/uas, is a ParseError."""
        with pytest.raises(ParseError):
            parse_session_expires(text)
