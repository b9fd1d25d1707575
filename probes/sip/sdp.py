"""SDP (RFC 8866) for one audio stream: the call probe's offer and the callee's answer.

The offer lists the G.711 codecs in preference order plus telephone-event for DTMF. The
answer parser keeps what the probe needs (where to send RTP, which payload types were
accepted) and rejects malformed text with the line number and what was expected, so a vendor
returning broken SDP shows up as exactly that in the evidence.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from probes.sip.audio import Codec

DEFAULT_TELEPHONE_EVENT_PT = 101
_DIRECTIONS = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})


class SdpError(ValueError):
    """Raised for SDP that cannot be parsed or negotiated; the message says where and why."""


@dataclass(frozen=True, slots=True)
class RtpMap:
    """An ``a=rtpmap`` entry: encoding name, clock rate and channel count."""

    encoding: str
    clock_rate: int
    channels: int = 1


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One ``m=`` section with the session-level connection folded in when it has none."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    address: str | None
    rtpmaps: dict[int, RtpMap] = field(default_factory=dict)
    fmtps: dict[int, str] = field(default_factory=dict)
    direction: str = "sendrecv"
    ptime_ms: int | None = None
    crypto: tuple[str, ...] = ()
    """The ``a=crypto`` values (RFC 4568), unparsed: the SRTP layer judges them."""
    rtcp_port: int | None = None
    """``a=rtcp:<port>`` (RFC 3605): where RTCP goes when it is not RTP port + 1."""

    @property
    def rejected(self) -> bool:
        """Port 0 in an answer declines the stream (RFC 3264 section 6)."""
        return self.port == 0


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A parsed SDP body."""

    origin: str
    address: str | None
    media: tuple[MediaDescription, ...]


@dataclass(frozen=True, slots=True)
class NegotiatedAudio:
    """What the answer settles for the call: where RTP goes and in which payload types."""

    address: str
    port: int
    codec: Codec
    payload_type: int
    telephone_event_pt: int | None
    direction: str
    ptime_ms: int
    proto: str = "RTP/AVP"
    crypto: tuple[str, ...] = ()
    rtcp_port: int | None = None


def build_offer(
    *,
    address: str,
    port: int,
    codecs: Sequence[Codec],
    session_id: int,
    telephone_event_pt: int = DEFAULT_TELEPHONE_EVENT_PT,
    ptime_ms: int = 20,
    version: int | None = None,
    profile: str = "RTP/AVP",
    crypto: Sequence[str] = (),
) -> str:
    """An SDP offer for one sendrecv audio stream (CRLF line ends, as SIP bodies use).

    Also the answer to a callee's re-offer, with the one codec settled and ``version`` (the
    o= line's, RFC 3264 §8) raised when the description changed."""
    if not codecs:
        raise ValueError("codecs: expected at least one of PCMU, PCMA, got none")
    if len(set(codecs)) != len(codecs):
        raise ValueError(f"codecs: each codec once, got {[str(c) for c in codecs]}")
    if not 0 < port < 65536:
        raise ValueError(f"RTP port must be in 1..65535, got {port}")
    if not 96 <= telephone_event_pt <= 127:
        raise ValueError(f"telephone_event_pt must be dynamic (96..127), got {telephone_event_pt}")
    family = "IP6" if ipaddress.ip_address(address).version == 6 else "IP4"
    pts = [str(c.payload_type) for c in codecs] + [str(telephone_event_pt)]
    lines = [
        "v=0",
        f"o=slawatch {session_id} {version or session_id} IN {family} {address}",
        "s=slawatch",
        f"c=IN {family} {address}",
        "t=0 0",
        f"m=audio {port} {profile} {' '.join(pts)}",
        *(f"a=rtpmap:{c.payload_type} {c.value}/8000" for c in codecs),
        f"a=rtpmap:{telephone_event_pt} telephone-event/8000",
        f"a=fmtp:{telephone_event_pt} 0-15",
        f"a=ptime:{ptime_ms}",
        "a=sendrecv",
        *(f"a=crypto:{value}" for value in crypto),
    ]
    return "\r\n".join(lines) + "\r\n"


def _connection_address(value: str, line_no: int) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"SDP line {line_no}: c= must be 'IN IP4|IP6 <address>', got {value!r}")
    # Multicast c= lines may carry /ttl; the probe only ever talks unicast.
    return parts[2].split("/")[0]


def _int(text: str, line_no: int, what: str, low: int, high: int) -> int:
    try:
        number = int(text)
    except ValueError:
        raise SdpError(f"SDP line {line_no}: {what} must be an integer, got {text!r}") from None
    if not low <= number <= high:
        raise SdpError(f"SDP line {line_no}: {what} must be in {low}..{high}, got {number}")
    return number


def _rtpmap(value: str, line_no: int) -> tuple[int, RtpMap]:
    pt_text, _, spec = value.partition(" ")
    pt = _int(pt_text, line_no, "rtpmap payload type", 0, 127)
    parts = spec.strip().split("/")
    if len(parts) not in (2, 3) or not parts[0]:
        raise SdpError(
            f"SDP line {line_no}: rtpmap must be '<pt> <encoding>/<clock rate>[/<channels>]', "
            f"got {value!r}"
        )
    clock = _int(parts[1], line_no, "rtpmap clock rate", 1, 10_000_000)
    channels = _int(parts[2], line_no, "rtpmap channels", 1, 255) if len(parts) == 3 else 1
    return pt, RtpMap(encoding=parts[0], clock_rate=clock, channels=channels)


class _MediaBuilder:
    def __init__(self, line_no: int, value: str) -> None:
        parts = value.split()
        if len(parts) < 4:
            raise SdpError(
                f"SDP line {line_no}: m= must be '<media> <port> <proto> <fmt>...', got {value!r}"
            )
        self.media, port_text, self.proto = parts[0], parts[1], parts[2]
        # "<port>/<count>" is legal for layered streams; only the base port matters here.
        self.port = _int(port_text.split("/")[0], line_no, "m= port", 0, 65535)
        self.formats = tuple(parts[3:])
        self.address: str | None = None
        self.rtpmaps: dict[int, RtpMap] = {}
        self.fmtps: dict[int, str] = {}
        self.direction: str | None = None
        self.ptime: int | None = None
        self.crypto: list[str] = []
        self.rtcp_port: int | None = None

    def build(self, session_address: str | None, session_direction: str) -> MediaDescription:
        return MediaDescription(
            media=self.media,
            port=self.port,
            proto=self.proto,
            formats=self.formats,
            address=self.address or session_address,
            rtpmaps=self.rtpmaps,
            fmtps=self.fmtps,
            direction=self.direction or session_direction,
            ptime_ms=self.ptime,
            crypto=tuple(self.crypto),
            rtcp_port=self.rtcp_port,
        )


def parse_sdp(text: str) -> SessionDescription:
    """Parse an SDP body; ``SdpError`` names the line and what was expected."""
    lines = [line for line in text.replace("\r\n", "\n").split("\n")]
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise SdpError("SDP body is empty, expected 'v=0' on line 1")
    if lines[0] != "v=0":
        raise SdpError(f"SDP line 1: expected 'v=0', got {lines[0]!r}")
    origin = ""
    session_address: str | None = None
    session_direction = "sendrecv"
    media: list[_MediaBuilder] = []
    for line_no, line in enumerate(lines[1:], start=2):
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise SdpError(f"SDP line {line_no}: expected '<letter>=<value>', got {line!r}")
        kind, value = line[0], line[2:]
        current = media[-1] if media else None
        if kind == "o":
            origin = value
        elif kind == "c":
            address = _connection_address(value, line_no)
            if current is None:
                session_address = address
            else:
                current.address = address
        elif kind == "m":
            media.append(_MediaBuilder(line_no, value))
        elif kind == "a":
            name, _, attr = value.partition(":")
            if name in _DIRECTIONS:
                if current is None:
                    session_direction = name
                else:
                    current.direction = name
            elif current is None:
                continue
            elif name == "rtpmap":
                pt, rtpmap = _rtpmap(attr, line_no)
                current.rtpmaps[pt] = rtpmap
            elif name == "fmtp":
                pt_text, _, params = attr.partition(" ")
                current.fmtps[_int(pt_text, line_no, "fmtp payload type", 0, 127)] = params
            elif name == "crypto":
                current.crypto.append(attr)
            elif name == "rtcp":
                current.rtcp_port = _int(
                    attr.split()[0] if attr.split() else "", line_no, "rtcp port", 1, 65535
                )
            elif name == "ptime":
                current.ptime = _int(attr.strip(), line_no, "ptime", 1, 1000)
    return SessionDescription(
        origin=origin,
        address=session_address,
        media=tuple(m.build(session_address, session_direction) for m in media),
    )


def _codec_of(media: MediaDescription, pt: int) -> Codec | None:
    rtpmap = media.rtpmaps.get(pt)
    if rtpmap is not None:
        name = rtpmap.encoding.upper()
        if rtpmap.clock_rate == 8000 and name in Codec.__members__:
            return Codec(name)
        return None
    # Static payload types may come without rtpmap (RFC 3551 table 4).
    return next((c for c in Codec if c.payload_type == pt), None)


def negotiate(answer: SessionDescription, offered: Sequence[Codec]) -> NegotiatedAudio:
    """The audio stream an answer settles on; ``SdpError`` says why there is none.

    The answerer lists the accepted formats in its own preference order (RFC 3264 section
    6.1), so the first one that is a codec we offered wins. Telephone-event is optional: a
    callee that declines it still gets the call, only DTMF steps then fail.
    """
    audio = [m for m in answer.media if m.media == "audio"]
    if not audio:
        raise SdpError("SDP answer has no m=audio stream")
    stream = audio[0]
    if stream.rejected:
        raise SdpError("SDP answer rejected the audio stream (m=audio port 0)")
    if stream.address is None:
        raise SdpError("SDP answer has no c= connection address for the audio stream")
    try:
        # RTP is matched by source address, and resolving a name here would block the loop.
        address = str(ipaddress.ip_address(stream.address))
    except ValueError:
        raise SdpError(
            f"SDP answer: c= must carry an IP address for RTP, got {stream.address!r}"
        ) from None
    chosen: tuple[Codec, int] | None = None
    te_pt: int | None = None
    for fmt in stream.formats:
        try:
            pt = int(fmt)
        except ValueError:
            raise SdpError(
                f"SDP answer: RTP/AVP format must be a payload number, got {fmt!r}"
            ) from None
        rtpmap = stream.rtpmaps.get(pt)
        if rtpmap is not None and rtpmap.encoding.lower() == "telephone-event":
            te_pt = pt if te_pt is None else te_pt
            continue
        codec = _codec_of(stream, pt)
        if chosen is None and codec is not None and codec in offered:
            chosen = (codec, pt)
    if chosen is None:
        raise SdpError(
            f"SDP answer accepted none of the offered codecs {[str(c) for c in offered]}: "
            f"formats {' '.join(stream.formats)}"
        )
    return NegotiatedAudio(
        address=address,
        port=stream.port,
        codec=chosen[0],
        payload_type=chosen[1],
        telephone_event_pt=te_pt,
        direction=stream.direction,
        ptime_ms=stream.ptime_ms or 20,
        proto=stream.proto,
        crypto=stream.crypto,
        rtcp_port=stream.rtcp_port,
    )
