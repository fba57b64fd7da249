"""The codecs a probe can account for, and how a join asks for them.

aiortc 1.16 knows H.264 only in packetization mode 1 with the (constrained)
baseline profiles 42001f / 42e01f, so an offer from a server sending Main
profile (4d001f) or mode 0 finds nothing in common and the join has no video.
The probe does not need aiortc's decoder to measure (it accounts from RTP
packets), so :func:`register_probe_codecs` adds those variants to aiortc's
codec table: process-wide, like the ICE host pin, and idempotent. Payload
types are only the ones aiortc uses in its own offers; an answer keeps the
server's numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiortc import RTCRtpSender
from aiortc.codecs import CODECS, HEADER_EXTENSIONS
from aiortc.rtcrtpparameters import (
    RTCRtcpFeedback,
    RTCRtpCodecCapability,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
)

from probes.twcc import EXTENSION_URI as TRANSPORT_CC_URI

# (packetization-mode, profile-level-id) the probe offers for H.264, most
# common first; aiortc has the first two of mode 1 already.
H264_VARIANTS = (
    ("1", "42e01f"), ("1", "42001f"), ("1", "4d001f"),
    ("0", "42e01f"), ("0", "42001f"), ("0", "4d001f"),
)
_FIRST_EXTRA_PT = 110  # above aiortc's own 96-102, below its 127 ceiling

_MIME = {"vp8": "video/vp8", "h264": "video/h264"}


def _h264_key(params: Mapping[str, object]) -> tuple[str, str]:
    return (str(params.get("packetization-mode", "0")),
            str(params.get("profile-level-id", "42e01f")).lower())


# Not one aiortc uses for its own extensions (1-3), the same in both kinds:
# under BUNDLE one URI has one id across the media sections.
_TRANSPORT_CC_ID = 5
_TRANSPORT_CC = RTCRtcpFeedback(type="transport-cc")


def offer_transport_cc() -> None:
    """Offer transport-wide congestion control feedback as a browser does:
    the sequence-number extension on audio and video, and ``transport-cc``
    on every media codec, so a libwebrtc sender runs the same controller for
    the probe as for a browser (see :mod:`probes.twcc`). Process-wide and
    idempotent."""
    for kind in ("audio", "video"):
        extensions = HEADER_EXTENSIONS[kind]
        if all(e.uri != TRANSPORT_CC_URI for e in extensions):
            extensions.append(RTCRtpHeaderExtensionParameters(
                id=_TRANSPORT_CC_ID, uri=TRANSPORT_CC_URI))
        for codec in CODECS[kind]:
            if codec.mimeType.lower() == f"{kind}/rtx":
                continue
            if _TRANSPORT_CC not in codec.rtcpFeedback:
                codec.rtcpFeedback.append(_TRANSPORT_CC)


def register_probe_codecs() -> None:
    """Add the H.264 variants aiortc lacks to its codec table (once), and
    transport-wide feedback to what it offers."""
    video = CODECS["video"]
    have = {_h264_key(c.parameters) for c in video if c.mimeType.lower() == "video/h264"}
    used = {c.payloadType for kind in CODECS.values() for c in kind}
    pt = _FIRST_EXTRA_PT
    for mode, profile in H264_VARIANTS:
        if (mode, profile) in have:
            continue
        while pt in used or pt + 1 in used:
            pt += 2
        params: dict[str, str | int | None] = {
            "level-asymmetry-allowed": "1", "packetization-mode": mode,
            "profile-level-id": profile,
        }
        video.append(RTCRtpCodecParameters(
            mimeType="video/H264", clockRate=90000, payloadType=pt,
            rtcpFeedback=[RTCRtcpFeedback(type="nack"),
                          RTCRtcpFeedback(type="nack", parameter="pli"),
                          RTCRtcpFeedback(type="goog-remb")],
            parameters=params))
        video.append(RTCRtpCodecParameters(
            mimeType="video/rtx", clockRate=90000, payloadType=pt + 1,
            parameters={"apt": pt}))
        used.update((pt, pt + 1))
    offer_transport_cc()


def _h264_rank(codec: RTCRtpCodecCapability) -> int:
    key = _h264_key(codec.parameters)
    return H264_VARIANTS.index(key) if key in H264_VARIANTS else len(H264_VARIANTS)


def video_preferences(codecs: Iterable[str]) -> list[RTCRtpCodecCapability]:
    """aiortc codec preferences for the given codec names (``vp8``,
    ``h264``) in that order, each with RTX so lost packets can be repaired."""
    register_probe_codecs()
    caps = RTCRtpSender.getCapabilities("video").codecs
    out: list[RTCRtpCodecCapability] = []
    for name in codecs:
        mime = _MIME[name]
        found = [c for c in caps if c.mimeType.lower() == mime]
        if name == "h264":
            found = sorted((c for c in found if _h264_key(c.parameters) in H264_VARIANTS),
                           key=_h264_rank)
        out.extend(found)
    out.extend(c for c in caps if c.mimeType.lower() == "video/rtx")
    return out


def audio_preferences() -> list[RTCRtpCodecCapability]:
    """Opus only: the audio codec of live shows, and the one the probe accounts for."""
    register_probe_codecs()
    return [c for c in RTCRtpSender.getCapabilities("audio").codecs
            if c.mimeType.lower() == "audio/opus"]


def accountable(codec: RTCRtpCodecParameters | RTCRtpCodecCapability) -> bool:
    """True for a codec whose stream the probe can measure."""
    mime = codec.mimeType.lower()
    if mime in ("video/vp8", "audio/opus", "video/rtx"):
        return True
    return mime == "video/h264" and _h264_key(codec.parameters) in H264_VARIANTS
