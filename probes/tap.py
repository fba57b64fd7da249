"""The viewer's tap on aiortc's receiver: sees every RTP packet and every
complete encoded frame, and (by default) keeps frames away from the decoder.

aiortc's receiver stats are thin and go wrong with RTX (see recipes.md), so the
probe does its own accounting. Two private seams of ``RTCRtpReceiver`` (aiortc
1.16) are used, on one receiver instance only:

- ``_handle_rtp_packet(packet, arrival_time_ms)``: wrapped, to see each packet
  (media SSRC and RTX SSRC apart) before aiortc unwraps retransmissions;
- ``_RTCRtpReceiver__decoder_queue``: replaced before ``receive()`` starts the
  decoder thread, with a queue that records each complete encoded frame as it
  leaves the jitter buffer and drops it, so nothing is decoded unless asked.
"""

from __future__ import annotations

import queue
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from probes.meter import StreamMeter
from probes.vp8 import parse_vp8_frame, parse_vp8_packet

_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
_CODECS_ATTR = "_RTCRtpReceiver__codecs"
_RTX_SSRC_ATTR = "_RTCRtpReceiver__rtx_ssrc"
_MAPPER_ATTR = "_RTCRtpReceiver__timestamp_mapper"
_JITTER_ATTR = "_RTCRtpReceiver__jitter_buffer"
_ARRIVALS_KEPT = 128  # RTP timestamps whose last packet arrival we remember


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0


class _FrameTapQueue(queue.Queue):
    """Stands in for the receiver's decoder queue."""

    def __init__(self, on_frame: Callable[[Any, Any], None], decode: bool) -> None:
        super().__init__()
        self._on_frame = on_frame
        self._decode = decode

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:  # the stop sentinel must reach the decoder thread
            super().put(item, block, timeout)
            return
        self._on_frame(item[0], item[1])
        if self._decode:
            super().put(item, block, timeout)


class _NoFrames:
    """Stands in for aiortc's jitter buffer when the probe assembles the
    frames itself and nothing is decoded: saves its per-packet work."""

    capacity = 512

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        return False, None


class ReceiverTap:
    """Feeds a :class:`StreamMeter` from one ``RTCRtpReceiver``."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        meter: StreamMeter,
        decode: bool = False,
        clock_ms: Callable[[], float] = monotonic_ms,
    ) -> None:
        self._receiver = receiver
        self._meter = meter
        self._clock_ms = clock_ms
        self._arrivals: OrderedDict[int, float] = OrderedDict()
        self._now_ms = 0.0
        self.decode = decode
        self._own_frames = False
        if getattr(receiver, "_RTCRtpReceiver__started", False):
            raise RuntimeError("install the tap before the receiver starts")
        original = receiver._handle_rtp_packet

        async def tapped(packet: RtpPacket, arrival_time_ms: int) -> None:
            self._packet(packet)
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = tapped  # type: ignore[method-assign]
        setattr(receiver, _QUEUE_ATTR, _FrameTapQueue(self._frame, decode))

    def _packet(self, packet: RtpPacket) -> None:
        now = self._now_ms = self._clock_ms()
        codec = getattr(self._receiver, _CODECS_ATTR).get(packet.payload_type)
        if codec is None:
            return
        if codec.mimeType.lower().endswith("/rtx"):
            media_ssrc = getattr(self._receiver, _RTX_SSRC_ATTR).get(packet.ssrc)
            if media_ssrc is None or len(packet.payload) < 2:
                return
            osn = (packet.payload[0] << 8) | packet.payload[1]
            self._meter.rtx_packet(media_ssrc, osn, now)
            apt = getattr(self._receiver, _CODECS_ATTR).get(codec.parameters.get("apt"))
            if apt is not None and apt.name.upper() == "VP8":
                self._vp8(media_ssrc, osn, packet.marker, packet.payload[2:], now)
        else:
            self._meter.media_packet(
                packet.ssrc, packet.sequence_number, packet.timestamp, len(packet.payload), now
            )
            if codec.name.upper() == "VP8":
                if not self.decode and not self._own_frames:
                    setattr(self._receiver, _JITTER_ATTR, _NoFrames())
                    self._own_frames = True
                self._vp8(packet.ssrc, packet.sequence_number, packet.marker, packet.payload,
                          now)
        # The frame is complete when its last packet (original or RTX) came.
        ts = packet.timestamp
        self._arrivals[ts] = now
        self._arrivals.move_to_end(ts)
        if len(self._arrivals) > _ARRIVALS_KEPT:
            self._arrivals.popitem(last=False)

    def _vp8(self, ssrc: int, seq: int, marker: int, payload: bytes, now: float) -> None:
        info = parse_vp8_packet(payload)
        if info is None:
            return
        self._meter.video_packet(ssrc, seq, info.frame_start, bool(marker), info.keyframe,
                                 len(payload), now, info.width, info.height)

    def _frame(self, codec: Any, encoded: Any) -> None:
        if codec.name.upper() == "VP8":
            return  # assembled from packets instead, see probes.frames
        data: bytes = encoded.data
        # aiortc rebased the frame's timestamp to its first frame; undo that
        # to find when the frame's last packet arrived.
        arrival = self._now_ms or self._clock_ms()
        origin = getattr(getattr(self._receiver, _MAPPER_ATTR, None), "_origin", None)
        if origin is not None:
            arrival = self._arrivals.get((encoded.timestamp + origin) % (1 << 32), arrival)
        info = parse_vp8_frame(data) if codec.name.upper() == "VP8" else None
        if info is not None:
            self._meter.frame(arrival, len(data), info.width, info.height)
        else:
            self._meter.frame(arrival, len(data))
