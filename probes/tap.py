"""The viewer's tap on aiortc's receiver: sees every RTP packet and every
complete encoded frame, and (by default) keeps frames away from the decoder.

aiortc's receiver stats are thin and go wrong with RTX (the media stream's
counters jump backwards when retransmissions come on their own SSRC), so the
probe does its own accounting. The codec of each packet is the one its
payload type was negotiated for. For VP8 and H.264 the probe assembles the
frames from the packets itself (:mod:`probes.frames`) and aiortc's jitter
buffer is skipped; other video codecs are counted as aiortc's jitter buffer
completes their frames. Every private name of aiortc used for this lives in
:mod:`probes.rtc_seams`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtcpSrPacket, RtpPacket

from probes.h264 import parse_h264_packet
from probes.meter import StreamMeter
from probes.nack import NackScheduler
from probes.rtc_seams import Feedback, ReceiverSeam
from probes.vp8 import parse_vp8_frame, parse_vp8_packet

_ARRIVALS_KEPT = 128  # RTP timestamps whose last packet arrival we remember
_OWN_FRAMES = ("VP8", "H264")  # codecs whose frames the probe assembles itself


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0


class ReceiverTap:
    """Feeds a :class:`StreamMeter` from one video ``RTCRtpReceiver``."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        meter: StreamMeter,
        decode: bool = False,
        clock_ms: Callable[[], float] = monotonic_ms,
    ) -> None:
        self.seam = ReceiverSeam(receiver)
        self._meter = meter
        self._clock_ms = clock_ms
        self._arrivals: OrderedDict[int, float] = OrderedDict()
        self._now_ms = 0.0
        self.decode = decode
        self._own_frames = False
        # SSRCs whose SPS and PPS were seen: an IDR is a keyframe only with them.
        self._h264_sps: set[int] = set()
        self._h264_pps: set[int] = set()
        # Once the probe assembles frames itself it also asks for repairs
        # itself, per media SSRC, as a browser would.
        self._nacks: dict[int, NackScheduler] = {}
        self._nack_deadline_ms = meter.settle_ms
        # Per payload type: (RTX?, the media codec's name): looked up once.
        self._pts: dict[int, tuple[bool, str | None]] = {}
        self.seam.tap(self._packet, self._frame, decode,
                      alone=None if decode else self._measured_alone)
        self.seam.tap_rtcp(lambda p: _sender_report(meter, p))

    def _codec_of(self, payload_type: int) -> tuple[bool, str | None] | None:
        known = self._pts.get(payload_type)
        if known is not None:
            return known
        codec = self.seam.codec(payload_type)
        if codec is None:
            return None  # not negotiated (or the receiver not started): ask again
        if _is_rtx(codec):
            apt = codec.parameters.get("apt")
            media = self.seam.codec(apt) if isinstance(apt, int) else None
            known = (True, media.name.upper() if media is not None else None)
        else:
            known = (False, codec.name.upper())
        self._pts[payload_type] = known
        return known

    def _measured_alone(self, codec: RTCRtpCodecParameters) -> bool:
        """Without decoding, the packets of VP8 and H.264 (and their RTX)
        need nothing from aiortc but the sender's feedback."""
        if codec.payloadType is None:
            return False
        known = self._codec_of(codec.payloadType)
        return known is not None and known[1] in _OWN_FRAMES

    def _packet(self, packet: RtpPacket) -> Feedback | None:
        now = self._now_ms = self._clock_ms()
        known = self._codec_of(packet.payload_type)
        if known is None:
            return None
        rtx, name = known
        payload = packet.payload
        media_ssrc: int | None = packet.ssrc
        if rtx:
            media_ssrc = self.seam.rtx_media_ssrc(packet.ssrc)
            if media_ssrc is None or len(payload) < 2:
                return None
            osn = (payload[0] << 8) | payload[1]
            self._meter.rtx_packet(media_ssrc, osn, len(payload), now)
            nacks = self._nacks.get(media_ssrc)
            if nacks is not None:
                nacks.repaired(osn)
            if name is not None:
                self._assemble(name, media_ssrc, osn, packet.marker, packet.timestamp,
                               payload[2:], now, repaired=True)
        else:
            ssrc = packet.ssrc
            seq = packet.sequence_number
            self._meter.media_packet(ssrc, seq, packet.timestamp, len(payload), now)
            self._meter.video_codec = name
            if name in _OWN_FRAMES:
                if not self._own_frames:
                    if not self.decode:
                        self.seam.skip_jitter_buffer()
                    self.seam.own_nacks()
                    self._own_frames = True
                nacks = self._nacks.get(ssrc)
                if nacks is None:
                    nacks = self._nacks[ssrc] = NackScheduler(self._nack_deadline_ms)
                nacks.media(seq, now)
                self._assemble(name, ssrc, seq, packet.marker, packet.timestamp, payload, now)
        if not self._own_frames:
            # For frames aiortc completes: a frame is complete when its last
            # packet (original or RTX) came.
            ts = packet.timestamp
            self._arrivals[ts] = now
            self._arrivals.move_to_end(ts)
            if len(self._arrivals) > _ARRIVALS_KEPT:
                self._arrivals.popitem(last=False)
        return self._feedback(media_ssrc, now)

    def _feedback(self, media_ssrc: int | None, now: float) -> Feedback | None:
        nacks = self._nacks.get(media_ssrc) if media_ssrc is not None else None
        if nacks is None or media_ssrc is None:
            return None
        seqs = nacks.due(now) if nacks.waiting else None
        pli = nacks.pli_due(self._meter.needs_keyframe(media_ssrc), now,
                            self._meter.picture_started(media_ssrc))
        if not seqs and not pli:
            return None
        return Feedback(media_ssrc, seqs or [], pli)

    def _assemble(self, codec: str, ssrc: int, seq: int, marker: int, ts: int,
                  payload: bytes, now: float, repaired: bool = False) -> None:
        if codec == "VP8":
            info = parse_vp8_packet(payload)
            if info is None:
                return
            self._meter.video_packet(ssrc, seq, info.frame_start, bool(marker), info.keyframe,
                                     len(payload), now, info.width, info.height, ts, repaired)
        elif codec == "H264":
            h = parse_h264_packet(payload)
            if h is None:
                return
            if h.sps:
                self._h264_sps.add(ssrc)
            if h.pps:
                self._h264_pps.add(ssrc)
            keyframe = h.idr and ssrc in self._h264_sps and ssrc in self._h264_pps
            self._meter.video_packet(ssrc, seq, h.frame_start, bool(marker), keyframe,
                                     len(payload), now, h.width, h.height, ts, repaired)

    def _frame(self, codec: Any, encoded: Any) -> None:
        if codec.name.upper() in _OWN_FRAMES:
            return  # assembled from packets instead, see probes.frames
        data: bytes = encoded.data
        # aiortc rebased the frame's timestamp to its first frame; undo that
        # to find when the frame's last packet arrived.
        arrival = self._now_ms or self._clock_ms()
        origin = self.seam.timestamp_origin()
        if origin is not None:
            arrival = self._arrivals.get((encoded.timestamp + origin) % (1 << 32), arrival)
        info = parse_vp8_frame(data) if codec.name.upper() == "VP8" else None
        if info is not None:
            self._meter.frame(arrival, len(data), info.width, info.height)
        else:
            self._meter.frame(arrival, len(data))


def _is_rtx(codec: RTCRtpCodecParameters) -> bool:
    return codec.mimeType.lower().endswith("/rtx")


def _sender_report(meter: StreamMeter, packet: object) -> None:
    if isinstance(packet, RtcpSrPacket):
        meter.sender_report(packet.ssrc, packet.sender_info.ntp_timestamp,
                            packet.sender_info.rtp_timestamp)


class AudioTap:
    """Feeds the audio figures of a :class:`StreamMeter` from one audio
    ``RTCRtpReceiver``. Nothing is decoded: aiortc's audio jitter buffer and
    decoder are bypassed."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        meter: StreamMeter,
        clock_ms: Callable[[], float] = monotonic_ms,
    ) -> None:
        self.seam = ReceiverSeam(receiver)
        self._meter = meter
        self._clock_ms = clock_ms
        self._bypassed = False
        self._rates: dict[int, int] = {}  # payload type -> clock rate, 0 for RTX
        # Opus needs nothing from aiortc but the sender's feedback.
        self.seam.tap(self._packet, lambda codec, frame: None, decode=False,
                      alone=lambda codec: not _is_rtx(codec))
        self.seam.tap_rtcp(lambda p: _sender_report(meter, p))

    def _packet(self, packet: RtpPacket) -> None:
        rate = self._rates.get(packet.payload_type)
        if rate is None:
            codec = self.seam.codec(packet.payload_type)
            if codec is None:
                return
            rate = self._rates[packet.payload_type] = 0 if _is_rtx(codec) else codec.clockRate
        if not rate:
            return
        if not self._bypassed:
            self.seam.skip_jitter_buffer()
            self._bypassed = True
        self._meter.audio_packet(packet.ssrc, packet.sequence_number, packet.timestamp,
                                 len(packet.payload), self._clock_ms(), rate)
