"""What the probe reads from an encoded VP8 frame without decoding it
(RFC 6386 section 9.1): the keyframe flag and, on keyframes, the size."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Vp8FrameInfo:
    keyframe: bool
    width: int | None = None
    height: int | None = None


_START_CODE = b"\x9d\x01\x2a"


def parse_vp8_frame(data: bytes) -> Vp8FrameInfo | None:
    """``data`` is a whole depayloaded frame; None if it is not VP8-shaped."""
    if len(data) < 3:
        return None
    keyframe = (data[0] & 0x01) == 0
    if not keyframe:
        return Vp8FrameInfo(keyframe=False)
    if len(data) < 10 or data[3:6] != _START_CODE:
        return None
    width = (data[6] | (data[7] << 8)) & 0x3FFF
    height = (data[8] | (data[9] << 8)) & 0x3FFF
    return Vp8FrameInfo(keyframe=True, width=width, height=height)


@dataclass(frozen=True)
class Vp8PacketInfo:
    """From one RTP packet's VP8 payload descriptor (RFC 7741 section 4.2)."""

    frame_start: bool  # S=1 and partition 0: the first packet of a frame
    keyframe: bool  # only meaningful on the frame's first packet
    width: int | None = None
    height: int | None = None


# Made once: most packets continue a frame, and a frozen dataclass is slow to build.
_CONTINUES = Vp8PacketInfo(frame_start=False, keyframe=False)
_STARTS = Vp8PacketInfo(frame_start=True, keyframe=False)


def parse_vp8_packet(payload: bytes) -> Vp8PacketInfo | None:
    if not payload:
        return None
    b0 = payload[0]
    pos = 1
    if b0 & 0x80:  # X: extension byte follows
        if len(payload) < 2:
            return None
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= pos:
                return None
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            pos += 1
    start = bool(b0 & 0x10) and (b0 & 0x07) == 0
    if not start:
        return _CONTINUES
    frame = parse_vp8_frame(payload[pos:pos + 10])  # the header is all that is read
    if frame is None:
        return _STARTS
    return Vp8PacketInfo(frame_start=True, keyframe=frame.keyframe, width=frame.width,
                         height=frame.height)
